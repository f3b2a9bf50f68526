//! A release hbmon server started for a bench (`examples/bench_*.rs`):
//! its work and conf written into a directory the bench owns, the child
//! process, and its command address once it accepts connections. Lab use
//! only; the daemon never calls this.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The release binary the benches measure (`cargo build --release` first).
pub const RELEASE_BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/hbmon");

/// A port free on `ip` now (TCP; the daemon takes the same number for UDP).
pub fn free_port(ip: IpAddr) -> io::Result<u16> {
    Ok(TcpListener::bind((ip, 0))?.local_addr()?.port())
}

/// A started server: kill it with `child` when the bench is done.
pub struct BenchServer {
    pub child: Child,
    /// Its command port.
    pub addr: SocketAddr,
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
    let mut child = Command::new(RELEASE_BIN)
        .args(["-c", &conf.display().to_string(), "start", "-i"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            io::Error::new(e.kind(), format!("{RELEASE_BIN}: {e} (cargo build --release first)"))
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
    Ok(BenchServer { child, addr })
}
