//! Pure parsers for the /proc text the inline probes read: text in, values or
//! a short error text out. No file access here (that is `inline.rs`), so each
//! parser is tested on literal kernel output.

/// Cumulative CPU jiffies from the first `cpu` line of /proc/stat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuTimes {
    /// Everything but idle and iowait.
    pub busy: u64,
    /// user+nice+system+idle+iowait+irq+softirq+steal (guest is already in user).
    pub total: u64,
}

impl CpuTimes {
    /// Busy % between `prev` and `self`; `None` when no time passed (or the
    /// counters went backwards, which only a reset does).
    pub fn pct_since(&self, prev: &CpuTimes) -> Option<f64> {
        let dt = self.total.checked_sub(prev.total)?;
        let db = self.busy.checked_sub(prev.busy)?;
        if dt == 0 {
            return None;
        }
        Some((db as f64 / dt as f64 * 100.0).min(100.0))
    }

    /// Busy % since boot: the first cpu_pct sample has no previous reading.
    pub fn pct_since_boot(&self) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        self.busy as f64 / self.total as f64 * 100.0
    }
}

/// The 1-minute load average from /proc/loadavg.
pub fn parse_loadavg(text: &str) -> Result<f64, String> {
    let first = text.split_whitespace().next().ok_or("empty /proc/loadavg")?;
    first.parse::<f64>().map_err(|_| format!("bad load average '{first}'"))
}

/// The aggregate `cpu` line of /proc/stat.
pub fn parse_stat_cpu(text: &str) -> Result<CpuTimes, String> {
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some("cpu"))
        .ok_or("no 'cpu' line in /proc/stat")?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse::<u64>().map_err(|_| format!("bad number '{f}' in /proc/stat cpu line")))
        .collect::<Result<_, _>>()?;
    if nums.len() < 4 {
        return Err("short 'cpu' line in /proc/stat".into());
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let total: u64 = nums.iter().take(8).sum();
    let idle = nums[3] + nums.get(4).copied().unwrap_or(0);
    Ok(CpuTimes { busy: total - idle, total })
}

/// The /proc/meminfo fields the memory probes need, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

impl MemInfo {
    /// % of RAM in use; `arc_reclaimable` (bytes) counts as available.
    pub fn used_pct(&self, arc_reclaimable: u64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let avail = (self.available + arc_reclaimable / 1024).min(self.total);
        (self.total - avail) as f64 / self.total as f64 * 100.0
    }

    /// % of swap in use; 0 when there is no swap.
    pub fn swap_used_pct(&self) -> f64 {
        if self.swap_total == 0 {
            return 0.0;
        }
        let used = self.swap_total.saturating_sub(self.swap_free);
        used as f64 / self.swap_total as f64 * 100.0
    }
}

/// /proc/meminfo; kernels before 3.14 have no MemAvailable, then
/// MemFree+Buffers+Cached stands in for it.
pub fn parse_meminfo(text: &str) -> Result<MemInfo, String> {
    let mut get = std::collections::HashMap::new();
    for line in text.lines() {
        let Some((key, rest)) = line.split_once(':') else { continue };
        if let Some(Ok(v)) = rest.split_whitespace().next().map(str::parse::<u64>) {
            get.insert(key.trim(), v);
        }
    }
    let total = *get.get("MemTotal").ok_or("no MemTotal in /proc/meminfo")?;
    let available = match get.get("MemAvailable") {
        Some(v) => *v,
        None => ["MemFree", "Buffers", "Cached"].iter().filter_map(|k| get.get(k)).sum(),
    };
    Ok(MemInfo {
        total,
        available,
        swap_total: get.get("SwapTotal").copied().unwrap_or(0),
        swap_free: get.get("SwapFree").copied().unwrap_or(0),
    })
}

/// Bytes of ZFS ARC the kernel could give back (`size` above `c_min`), from
/// /proc/spl/kstat/zfs/arcstats. The ARC is not page cache, so MemAvailable
/// misses it and a ZFS host would otherwise look full.
pub fn parse_arcstats(text: &str) -> Result<u64, String> {
    let mut size = None;
    let mut c_min = None;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 3 {
            match f[0] {
                "size" => size = f[2].parse::<u64>().ok(),
                "c_min" => c_min = f[2].parse::<u64>().ok(),
                _ => {}
            }
        }
    }
    let size = size.ok_or("no 'size' in arcstats")?;
    Ok(size.saturating_sub(c_min.unwrap_or(0)))
}

/// Seconds since boot from /proc/uptime.
pub fn parse_uptime(text: &str) -> Result<f64, String> {
    let first = text.split_whitespace().next().ok_or("empty /proc/uptime")?;
    first.parse::<f64>().map_err(|_| format!("bad uptime '{first}'"))
}

/// (rx bytes, tx bytes) of interface `iface` from /proc/net/dev.
pub fn parse_net_dev(text: &str, iface: &str) -> Result<(u64, u64), String> {
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else { continue };
        if name.trim() != iface {
            continue;
        }
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() < 9 {
            return Err(format!("short /proc/net/dev line for {iface}"));
        }
        let num = |s: &str| s.parse::<u64>().map_err(|_| format!("bad counter '{s}' for {iface}"));
        return Ok((num(f[0])?, num(f[8])?));
    }
    Err(format!("no interface '{iface}' in /proc/net/dev"))
}

/// The command name of a /proc/[pid]/stat line: between the first `(` and
/// the last `)` (a name may itself contain parentheses and spaces).
pub fn parse_pid_stat_comm(text: &str) -> Option<&str> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    (close > open).then(|| &text[open + 1..close])
}

/// Whether a process named `comm` (truncated by the kernel to 15 bytes)
/// is a process called `name`.
pub fn comm_matches(comm: &str, name: &str) -> bool {
    const TASK_COMM_LEN: usize = 15;
    if name.len() > TASK_COMM_LEN {
        let mut end = TASK_COMM_LEN;
        while !name.is_char_boundary(end) {
            end -= 1;
        }
        comm == &name[..end]
    } else {
        comm == name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loadavg() {
        assert_eq!(parse_loadavg("0.52 0.58 0.59 2/1043 123456\n"), Ok(0.52));
        assert!(parse_loadavg("").is_err());
        assert!(parse_loadavg("x 1 2").is_err());
    }

    const STAT: &str = "cpu  100 10 50 800 40 0 0 0 5 0\n\
        cpu0 50 5 25 400 20 0 0 0 0 0\nintr 1234 5 6\nctxt 999\nbtime 1700000000\n";

    #[test]
    fn stat_cpu_totals() {
        let c = parse_stat_cpu(STAT).unwrap();
        assert_eq!(c, CpuTimes { busy: 160, total: 1000 });
        assert!((c.pct_since_boot() - 16.0).abs() < 1e-9);
    }

    #[test]
    fn stat_cpu_delta() {
        let a = CpuTimes { busy: 160, total: 1000 };
        let b = CpuTimes { busy: 210, total: 1100 };
        assert_eq!(b.pct_since(&a), Some(50.0));
        assert_eq!(a.pct_since(&a), None);
        assert_eq!(a.pct_since(&b), None);
    }

    #[test]
    fn stat_cpu_old_kernel_and_errors() {
        // 2.6-era kernels print only four fields.
        let c = parse_stat_cpu("cpu 1 2 3 4\n").unwrap();
        assert_eq!(c, CpuTimes { busy: 6, total: 10 });
        assert!(parse_stat_cpu("cpu0 1 2 3 4\n").is_err());
        assert!(parse_stat_cpu("cpu 1 2\n").is_err());
        assert!(parse_stat_cpu("cpu 1 x 3 4\n").is_err());
    }

    const MEMINFO: &str = "MemTotal:       16000000 kB\nMemFree:         1000000 kB\n\
        MemAvailable:    4000000 kB\nBuffers:          100000 kB\nCached:          2000000 kB\n\
        SwapCached:            0 kB\nSwapTotal:       2000000 kB\nSwapFree:        1500000 kB\n";

    #[test]
    fn meminfo_used() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total, 16_000_000);
        assert_eq!(m.available, 4_000_000);
        assert!((m.used_pct(0) - 75.0).abs() < 1e-9);
        assert!((m.swap_used_pct() - 25.0).abs() < 1e-9);
        // 4 GB of reclaimable ARC: now 8 of 16 GB are available.
        assert!((m.used_pct(4_000_000 * 1024) - 50.0).abs() < 1e-9);
        // ARC can never make more than all of RAM available.
        assert_eq!(m.used_pct(u64::MAX / 2), 0.0);
    }

    #[test]
    fn meminfo_without_memavailable_or_swap() {
        let m =
            parse_meminfo("MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n")
                .unwrap();
        assert_eq!(m.available, 400);
        assert_eq!(m.swap_used_pct(), 0.0);
        assert!(parse_meminfo("MemFree: 1 kB\n").is_err());
    }

    #[test]
    fn arcstats() {
        let t = "13 1 0x01 123 33456 1234 5678\nname                            type data\n\
            hits                            4    12345\nsize                            4    3000\n\
            c_min                           4    1000\nc_max                           4    9000\n";
        assert_eq!(parse_arcstats(t), Ok(2000));
        // ARC below its minimum gives nothing back.
        assert_eq!(parse_arcstats("size 4 10\nc_min 4 20\n"), Ok(0));
        assert!(parse_arcstats("hits 4 1\n").is_err());
    }

    #[test]
    fn uptime() {
        assert_eq!(parse_uptime("35235.20 68493.12\n"), Ok(35235.2));
        assert!(parse_uptime("\n").is_err());
    }

    const NETDEV: &str = "Inter-|   Receive                                                |  Transmit\n \
        face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
        lo: 1234567     100    0    0    0     0          0         0  1234567     100    0    0    0     0       0          0\n  \
        eth0:987654321 5000    0    0    0     0          0        12 123456789  4000    0    0    0     0       0          0\n";

    #[test]
    fn net_dev() {
        assert_eq!(parse_net_dev(NETDEV, "lo"), Ok((1_234_567, 1_234_567)));
        // No space between the colon and a large rx counter.
        assert_eq!(parse_net_dev(NETDEV, "eth0"), Ok((987_654_321, 123_456_789)));
        assert!(parse_net_dev(NETDEV, "eth1").unwrap_err().contains("eth1"));
        assert!(parse_net_dev("h\nh\n x: 1 2 3\n", "x").is_err());
    }

    #[test]
    fn pid_stat_comm() {
        assert_eq!(parse_pid_stat_comm("1 (systemd) S 0 1 1 0"), Some("systemd"));
        assert_eq!(parse_pid_stat_comm("42 (my (odd) name) R 1"), Some("my (odd) name"));
        assert_eq!(parse_pid_stat_comm("42 (a b) R 1"), Some("a b"));
        assert_eq!(parse_pid_stat_comm("garbage"), None);
        assert_eq!(parse_pid_stat_comm(") ("), None);
    }

    #[test]
    fn comm_truncation() {
        assert!(comm_matches("sshd", "sshd"));
        assert!(!comm_matches("sshd", "ssh"));
        assert!(comm_matches("systemd-journal", "systemd-journald"));
        assert!(!comm_matches("systemd-journal", "systemd-journax"));
    }
}
