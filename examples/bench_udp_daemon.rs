//! The heartbeat path through the real daemon: a release `hbmon` server on
//! 127.11.0.1 fed by `hbmon bench udp` (real HTB datagrams as N distinct
//! hosts). First 100,000 hosts at a 10 s interval (10,000 datagrams/s):
//! the server's CPU share and RSS; then rising rates until loss appears.
//! Run: `cargo build --release && cargo run --release --example bench_udp_daemon`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

fn bench(bin: &str, to: SocketAddr, hosts: u32, rate: u64, secs: f64, procs: u32) -> String {
    let out = Command::new(bin)
        .args(["bench", "udp", "--to", &to.to_string(), "--cmd", &to.to_string()])
        .args(["--hosts", &hosts.to_string(), "--rate", &rate.to_string()])
        .args(["--secs", &secs.to_string(), "--procs", &procs.to_string()])
        .output()
        .expect("hbmon bench udp");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = "127.11.0.1";
    let port = hbmon::bench_daemon::free_port(ip.parse().expect("ip")).expect("free port");
    let work = format!("host srv.bench.example srv {ip}\nserver srv\nport {port}\nhb_port {port}\nival_make_state 1h\nhbd_senders 100000\n");
    let srv = hbmon::bench_daemon::start_server(
        dir.path(),
        ip.parse().expect("ip"),
        port,
        &work,
        "",
        Duration::from_secs(10),
    )
    .expect("start hbmon");
    let (mut child, to) = (srv.child, srv.addr);
    // Every host's first heartbeat (a `new` host each) before measuring.
    // (Same announced interval as the steady state, so no host turns late.)
    print!("{}", bench(hbmon::bench_daemon::RELEASE_BIN, to, 100_000, 10_000, 12.0, 1));
    println!("--- steady state: 100,000 hosts at a 10 s interval");
    print!("{}", bench(hbmon::bench_daemon::RELEASE_BIN, to, 100_000, 10_000, 20.0, 1));
    println!("server RSS {:.1} MiB", rss_kib(child.id()) as f64 / 1024.0);
    println!("--- rising rates (10,000 hosts)");
    for rate in [50_000u64, 100_000, 200_000, 300_000] {
        print!("{}", bench(hbmon::bench_daemon::RELEASE_BIN, to, 10_000, rate, 3.0, 2));
    }
    let mut s = TcpStream::connect(to).expect("connect");
    let _ = s.write_all(b"PING\n");
    let mut a = String::new();
    let _ = s.read_to_string(&mut a);
    let _ = child.kill();
    let _ = child.wait();
}
