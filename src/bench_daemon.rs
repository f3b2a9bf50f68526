//! A release hbmon server started for a bench (`examples/bench_*.rs`):
//! its work and conf written into a directory the bench owns, the child
//! process, and its command address once it accepts connections; and the
//! two kinds of result lines `bench/run.sh` and `bench/ab.sh` collect from
//! a bench's output. Lab use only; the daemon never calls this.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release binary the benches measure (`cargo build --release` first).
pub const RELEASE_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/hbmon");

/// The daemon a bench starts: `$HBMON_BENCH_BIN` if set (bench/ab.sh runs
/// the same bench against an older commit's binary), else [`RELEASE_BIN`].
/// Load generators (`hbmon bench udp`) stay on [`RELEASE_BIN`], so both
/// sides of an A/B run get the same load.
pub fn bench_bin() -> String {
    std::env::var("HBMON_BENCH_BIN")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| RELEASE_BIN.to_string())
}

/// Which way a [`figure`] is better, for the A/B ratio's reading.
#[derive(Clone, Copy)]
pub enum Better {
    Lower,
    Higher,
}

/// One measured figure, for bench/ab.sh (median per side, ratio new/old):
/// `figure|BENCH|NAME|VALUE|UNIT|lower` (or `higher`). `|` in a name
/// would split it, so it is replaced.
pub fn figure(bench: &str, name: &str, value: f64, unit: &str, better: Better) {
    println!("{}", figure_line(bench, name, value, unit, better));
}

fn figure_line(bench: &str, name: &str, value: f64, unit: &str, better: Better) -> String {
    let b = match better {
        Better::Lower => "lower",
        Better::Higher => "higher",
    };
    format!("figure|{bench}|{}|{value:.4}|{unit}|{b}", name.replace('|', "/"))
}

/// One row of `make bench`'s closing table: what, the result, the aim and
/// whether it was met (`None`: no aim, shown as `-`). bench/run.sh turns
/// the `summary|` lines into a Markdown table.
pub fn summary(what: &str, result: &str, aim: &str, met: Option<bool>) {
    println!("{}", summary_line(what, result, aim, met));
}

fn summary_line(what: &str, result: &str, aim: &str, met: Option<bool>) -> String {
    let verdict = match met {
        Some(true) => "met",
        Some(false) => "**not met**",
        None => "-",
    };
    // A `|` inside a cell would end it in the Markdown table.
    let cell = |t: &str| t.replace('|', "/");
    format!("summary| {} | {} | {} | {verdict} |", cell(what), cell(result), cell(aim))
}

/// The `q` quantile (0..=1) of `v`, sorted in place; 0 when empty.
pub fn quantile(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n => v[((n - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize],
    }
}

/// A port free on `ip` now (TCP; the daemon takes the same number for UDP).
pub fn free_port(ip: IpAddr) -> io::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// A started server: kill it with `child` when the bench is done.
pub struct BenchServer {
    pub child: Daemon,
    /// Its command port.
    pub addr: SocketAddr,
}

/// The daemon's child process, killed and reaped when dropped: a bench
/// that panics half-way (an `expect` on a figure it could not read) leaves
/// no server behind holding its ports and a core.
pub struct Daemon(pub Child);

impl std::ops::Deref for Daemon {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A lone server on `ip` (a free port for commands and heartbeats, no
/// rounds) that keeps records for up to `hbd_senders` senders the work does
/// not name, the load generators' hosts: the flood and 100k-host benches.
pub fn start_hbd_server(dir: &Path, ip: IpAddr, hbd_senders: usize) -> io::Result<BenchServer> {
    let port = free_port(ip)?;
    let work = format!(
        "host srv.bench.example srv {ip}\nserver srv\nport {port}\nhb_port {port}\nival_make_state 1h\nhbd_senders {hbd_senders}\n"
    );
    start_server(dir, ip, port, &work, "", Duration::from_secs(10))
}

/// Writes `dir/work` and `dir/hbmon.conf` (host `srv.bench.example` bound
/// to `ip`, paths under `dir`, `loglvl quiet`, then `conf_extra`), starts
/// the release binary in the foreground and waits up to `wait` for its
/// command port at `ip:port` (the port the work names).
pub fn start_server(
    dir: &Path,
    ip: IpAddr,
    port: u16,
    work: &str,
    conf_extra: &str,
    wait: Duration,
) -> io::Result<BenchServer> {
    std::fs::write(dir.join("work"), work)?;
    let conf = dir.join("hbmon.conf");
    std::fs::write(
        &conf,
        format!(
            "hostname srv.bench.example\nbind {ip}\nvardir {d}/var\nlogdir {d}/log\nrundir {d}/run\nworkconf {d}/work\nloglvl quiet\n{conf_extra}",
            d = dir.display()
        ),
    )?;
    let bin = bench_bin();
    let mut child = Command::new(&bin)
        .args(["-c", &conf.display().to_string(), "start", "-i"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            io::Error::new(e.kind(), format!("{bin}: {e} (cargo build --release first)"))
        })?;
    let addr = SocketAddr::new(ip, port);
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if t.elapsed() > wait || child.try_wait()?.is_some() {
            let _ = child.kill();
            return Err(io::Error::new(io::ErrorKind::TimedOut, "hbmon did not start"));
        }
        // sleep: polling a port that is not yet open; nothing to wait on.
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(BenchServer { child: Daemon(child), addr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_unsorted_and_empty_samples() {
        let mut v = vec![5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(quantile(&mut v, 0.5), 3.0);
        assert_eq!(quantile(&mut v, 1.0), 5.0);
        assert_eq!(quantile(&mut v, 0.0), 1.0);
        assert_eq!(quantile(&mut [], 0.99), 0.0);
    }

    #[test]
    fn a_dropped_daemon_is_killed_and_reaped() {
        let child = Command::new("sleep").arg("30").spawn().expect("spawn sleep");
        let pid = child.id();
        drop(Daemon(child));
        let gone = !Path::new(&format!("/proc/{pid}")).exists();
        assert!(gone, "sleep {pid} still there after its Daemon was dropped");
    }

    #[test]
    fn result_lines_keep_their_columns() {
        let f = figure_line("bench_x", "a|b", 1.5, "ms", Better::Lower);
        assert_eq!(f, "figure|bench_x|a/b|1.5000|ms|lower");
        let s = summary_line("PING p99", "4 ms | 5 ms", "under 5 ms", Some(true));
        assert_eq!(s, "summary| PING p99 | 4 ms / 5 ms | under 5 ms | met |");
        assert!(summary_line("x", "y", "", Some(false)).ends_with("| **not met** |"));
        assert!(summary_line("x", "y", "", None).ends_with("| - |"));
    }
}
