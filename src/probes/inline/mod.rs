//! The inline probes: cheap reads of /proc and /sys done on the loop
//! thread, and statvfs ([`mount_sample`]), which a hung mount can block
//! forever, so the client runs it on a helper thread. Owns the state kept
//! between rounds (CPU jiffies, interface byte counters) and the /proc and
//! /sys roots. Never spawns, never touches the network.

use super::procfs::{self, CpuTimes};
use super::Sample;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Where the inline probes read the kernel's view from.
#[derive(Clone, Debug)]
pub struct ProcRoot {
    pub proc: PathBuf,
    pub sys: PathBuf,
}

impl ProcRoot {
    /// `HBMON_PROC_ROOT` (default `/proc`) and `HBMON_SYS_ROOT` (default
    /// `/sys`): read once, when the probes are built.
    pub fn from_env() -> ProcRoot {
        let get = |k: &str, d: &str| std::env::var_os(k).map_or_else(|| d.into(), PathBuf::from);
        ProcRoot { proc: get("HBMON_PROC_ROOT", "/proc"), sys: get("HBMON_SYS_ROOT", "/sys") }
    }
}

/// The last reading of one interface counter.
#[derive(Clone, Copy, Debug)]
struct Counter {
    bytes: u64,
    at: f64,
}

/// Inline probes plus what they remember between rounds.
pub struct Inline {
    root: ProcRoot,
    prev_cpu: Option<CpuTimes>,
    /// (interface, is_tx) -> last reading.
    prev_net: HashMap<(String, bool), Counter>,
    /// (round time, comm -> process count) of the last /proc scan.
    proc_scan: Option<(f64, HashMap<String, usize>)>,
}

impl Inline {
    pub fn new(root: ProcRoot) -> Inline {
        Inline { root, prev_cpu: None, prev_net: HashMap::new(), proc_scan: None }
    }

    /// Roots from the environment (see [`ProcRoot::from_env`]).
    pub fn from_env() -> Inline {
        Inline::new(ProcRoot::from_env())
    }

    /// Explicit roots: tests point these at fixture trees.
    pub fn with_roots(proc: impl Into<PathBuf>, sys: impl Into<PathBuf>) -> Inline {
        Inline::new(ProcRoot { proc: proc.into(), sys: sys.into() })
    }

    /// One sample of an inline item. `now_mono` is monotonic seconds, used for
    /// rates. Never panics: whatever fails becomes the sample's error.
    pub fn sample(&mut self, item: &str, now_mono: f64) -> Sample {
        match self.value(item, now_mono) {
            Ok((v, msg)) => Sample::ok(item, v, msg),
            Err(e) => Sample::failed(item, e),
        }
    }

    fn value(&mut self, item: &str, now: f64) -> Result<(f64, String), String> {
        let (name, arg) = match item.split_once(':') {
            Some((n, a)) => (n, Some(a)),
            None => (item, None),
        };
        match (name, arg) {
            ("cpu_load", None) => {
                Ok((procfs::parse_loadavg(&self.read_proc("loadavg")?)?, "".into()))
            }
            ("cpu_pct", None) => self.cpu_pct(),
            ("mem_used", None) => {
                let m = procfs::parse_meminfo(&self.read_proc("meminfo")?)?;
                // No arcstats file simply means no ZFS.
                let arc = self
                    .read_proc("spl/kstat/zfs/arcstats")
                    .ok()
                    .and_then(|t| procfs::parse_arcstats(&t).ok());
                let msg = if arc.is_some() { "ZFS ARC counted as available" } else { "" };
                Ok((m.used_pct(arc.unwrap_or(0)), msg.into()))
            }
            ("swap_used", None) => {
                let m = procfs::parse_meminfo(&self.read_proc("meminfo")?)?;
                let msg = if m.swap_total == 0 { "no swap" } else { "" };
                Ok((m.swap_used_pct(), msg.into()))
            }
            ("uptime", None) => Ok((procfs::parse_uptime(&self.read_proc("uptime")?)?, "".into())),
            ("procs", None) => Ok((self.pids()?.len() as f64, "".into())),
            ("proc", Some(n)) if !n.is_empty() => Ok((self.count_named(n, now)? as f64, "".into())),
            ("disk_used", Some(p)) => disk(p, DiskWhat::UsedPct),
            ("disk_avail", Some(p)) => disk(p, DiskWhat::AvailGib),
            ("inode_used", Some(p)) => disk(p, DiskWhat::InodePct),
            ("net_rx", Some(i)) if !i.is_empty() => self.net_rate(i, false, now),
            ("net_tx", Some(i)) if !i.is_empty() => self.net_rate(i, true, now),
            _ => Err(format!("'{item}' is not an inline probe")),
        }
    }

    fn read_proc(&self, rel: &str) -> Result<String, String> {
        read(&self.root.proc.join(rel))
    }

    fn cpu_pct(&mut self) -> Result<(f64, String), String> {
        let now = procfs::parse_stat_cpu(&self.read_proc("stat")?)?;
        let prev = self.prev_cpu.replace(now);
        match prev.and_then(|p| now.pct_since(&p)) {
            Some(pct) => Ok((pct, "".into())),
            // First sample (or no tick since the last): a real figure beats
            // none, since a missing value would be the worst level.
            None => Ok((now.pct_since_boot(), "average since boot".into())),
        }
    }

    fn pids(&self) -> Result<Vec<std::fs::DirEntry>, String> {
        let dir = &self.root.proc;
        let entries =
            std::fs::read_dir(dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
        Ok(entries
            .flatten()
            .filter(|e| {
                let name = e.file_name();
                let b = name.as_encoded_bytes();
                !b.is_empty() && b.iter().all(u8::is_ascii_digit)
            })
            .collect())
    }

    /// Processes named `want`. One scan of /proc per round (the items of
    /// a round share `now`) serves every `proc:NAME` item of that round:
    /// reading one small file per process is the costly part.
    fn count_named(&mut self, want: &str, now: f64) -> Result<usize, String> {
        let fresh = matches!(&self.proc_scan, Some((at, _)) if *at == now);
        if !fresh {
            let mut counts: HashMap<String, usize> = HashMap::new();
            for entry in self.pids()? {
                // A process may exit between read_dir and this read: skip it.
                let Some(comm) = read_comm(&entry.path()) else { continue };
                *counts.entry(comm).or_default() += 1;
            }
            self.proc_scan = Some((now, counts));
        }
        let counts = self.proc_scan.as_ref().map(|(_, c)| c);
        Ok(counts
            .into_iter()
            .flatten()
            .filter(|(comm, _)| procfs::comm_matches(comm, want))
            .map(|(_, n)| n)
            .sum())
    }

    /// Bytes/s of one interface direction. The sysfs counter is one small
    /// file; /proc/net/dev is the fallback (e.g. a container without /sys).
    fn net_rate(&mut self, iface: &str, tx: bool, now: f64) -> Result<(f64, String), String> {
        if iface.contains('/') || iface == "." || iface == ".." {
            return Err(format!("bad interface name '{iface}'"));
        }
        let file = if tx { "tx_bytes" } else { "rx_bytes" };
        let sys = self.root.sys.join("class/net").join(iface).join("statistics").join(file);
        let bytes = match std::fs::read_to_string(&sys) {
            Ok(t) => {
                t.trim().parse::<u64>().map_err(|_| format!("bad counter in {}", sys.display()))?
            }
            Err(_) => {
                let (rx, txb) = procfs::parse_net_dev(&self.read_proc("net/dev")?, iface)?;
                if tx {
                    txb
                } else {
                    rx
                }
            }
        };
        let key = (iface.to_string(), tx);
        let prev = self.prev_net.insert(key, Counter { bytes, at: now });
        match prev {
            Some(p) if now > p.at => {
                // A counter that went down was reset (driver reload, 32-bit
                // wrap): count from zero over the interval.
                let delta = bytes.checked_sub(p.bytes).unwrap_or(bytes);
                Ok((delta as f64 / (now - p.at), "".into()))
            }
            _ => {
                let up = procfs::parse_uptime(&self.read_proc("uptime")?)?;
                let rate = if up > 0.0 { bytes as f64 / up } else { 0.0 };
                Ok((rate, "average since boot".into()))
            }
        }
    }
}

/// A process's name: /proc/PID/comm, or from /proc/PID/stat on kernels
/// before 2.6.33 that have no comm file.
fn read_comm(pid_dir: &Path) -> Option<String> {
    if let Ok(c) = std::fs::read_to_string(pid_dir.join("comm")) {
        return Some(c.strip_suffix('\n').unwrap_or(&c).to_string());
    }
    let stat = std::fs::read_to_string(pid_dir.join("stat")).ok()?;
    procfs::parse_pid_stat_comm(&stat).map(str::to_string)
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

#[derive(Clone, Copy)]
enum DiskWhat {
    UsedPct,
    AvailGib,
    InodePct,
}

/// `disk_used:`, `disk_avail:`, `inode_used:` on a helper thread (may
/// block as long as the mount does).
pub fn mount_sample(item: &str) -> Sample {
    let r = match item.split_once(':') {
        Some(("disk_used", p)) => disk(p, DiskWhat::UsedPct),
        Some(("disk_avail", p)) => disk(p, DiskWhat::AvailGib),
        Some(("inode_used", p)) => disk(p, DiskWhat::InodePct),
        _ => Err(format!("'{item}' does not read a mount point")),
    };
    match r {
        Ok((v, msg)) => Sample::ok(item, v, msg),
        Err(e) => Sample::failed(item, e),
    }
}

/// The env var of the hung-mount fault hook (debug builds only): a path
/// prefix whose statvfs never returns, as on a dead NFS server.
pub const HANG_ENV: &str = "HBMON_FAULT_HANG_MOUNT";

/// Debug builds: blocks forever if `path` is under the hook's prefix
/// (read once). Release builds never look.
fn fault_hang(path: &str) {
    static PREFIX: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if !cfg!(debug_assertions) {
        return;
    }
    let prefix = PREFIX.get_or_init(|| std::env::var(HANG_ENV).ok().filter(|p| !p.is_empty()));
    if prefix.as_deref().is_some_and(|p| path.starts_with(p)) {
        loop {
            // sleep: the fault being simulated is a statvfs that never returns
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

/// statvfs on the mount point; a path that is not itself a mount point
/// reports the filesystem it lives on, a missing path is an error.
fn disk(path: &str, what: DiskWhat) -> Result<(f64, String), String> {
    if !path.starts_with('/') {
        return Err(format!("'{path}' is not an absolute path"));
    }
    fault_hang(path);
    let st = nix::sys::statvfs::statvfs(path).map_err(|e| format!("statvfs {path}: {e}"))?;
    let v = DiskStat {
        blocks: st.blocks() as u64,
        bfree: st.blocks_free() as u64,
        bavail: st.blocks_available() as u64,
        frsize: st.fragment_size() as u64,
        files: st.files() as u64,
        ffree: st.files_free() as u64,
    };
    Ok(match what {
        DiskWhat::UsedPct => (v.used_pct(), "".into()),
        DiskWhat::AvailGib => (v.avail_gib(), "".into()),
        DiskWhat::InodePct => match v.inode_pct() {
            Some(p) => (p, "".into()),
            // btrfs and some network filesystems have no fixed inode table.
            None => (0.0, "filesystem reports no inode counts".into()),
        },
    })
}

/// The statvfs fields the disk probes use; the arithmetic is pure.
#[derive(Clone, Copy, Debug)]
pub struct DiskStat {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub frsize: u64,
    pub files: u64,
    pub ffree: u64,
}

impl DiskStat {
    /// % used as df shows it: reserved blocks count as neither used nor
    /// available to users.
    pub fn used_pct(&self) -> f64 {
        let used = self.blocks.saturating_sub(self.bfree);
        let denom = used + self.bavail;
        if denom == 0 {
            return 0.0;
        }
        used as f64 / denom as f64 * 100.0
    }

    pub fn avail_gib(&self) -> f64 {
        (self.bavail as f64) * (self.frsize as f64) / (1u64 << 30) as f64
    }

    pub fn inode_pct(&self) -> Option<f64> {
        (self.files > 0)
            .then(|| self.files.saturating_sub(self.ffree) as f64 / self.files as f64 * 100.0)
    }
}

#[cfg(test)]
mod tests;
