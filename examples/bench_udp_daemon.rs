//! The heartbeat path through the real daemon: a release `hbmon` server on
//! 127.11.0.1 fed by `hbmon bench udp` (real HTB datagrams as N distinct
//! hosts). First 100,000 hosts at a 10 s interval (10,000 datagrams/s):
//! the server's CPU share and RSS; then rising rates until loss appears.
//! The server's CPU is read from /proc/PID/stat around the steady-state
//! run (so it holds for any binary, `HBMON_BENCH_BIN` included); the load
//! generator is always this tree's release binary.
//! (No PING at the end: an older binary, bench/ab.sh's baseline, can hold
//! its loop for minutes judging the 90,000 hosts that went silent.)
//! Run: `cargo build --release && cargo run --release --example bench_udp_daemon`.

use std::net::SocketAddr;
use std::process::Command;

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

/// user+system CPU seconds of `pid` (10 ms ticks).
fn cpu_s(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

/// The `acked N (R/s)` rate of a `hbmon bench udp` report.
fn acked_rate(out: &str) -> Option<f64> {
    let l = out.lines().find_map(|l| l.strip_prefix("acked "))?;
    l.split_once('(')?.1.split_once("/s")?.0.parse().ok()
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = "127.11.0.1";
    let srv = hbmon::bench_daemon::start_hbd_server(dir.path(), ip.parse().expect("ip"), 100_000)
        .expect("start hbmon");
    let (mut child, to) = (srv.child, srv.addr);
    // Every host's first heartbeat (a `new` host each) before measuring.
    // (Same announced interval as the steady state, so no host turns late.)
    print!("{}", bench(hbmon::bench_daemon::RELEASE_BIN, to, 100_000, 10_000, 12.0, 1));
    println!("--- steady state: 100,000 hosts at a 10 s interval");
    let gen = hbmon::bench_daemon::RELEASE_BIN;
    let (c0, t0) = (cpu_s(child.id()), std::time::Instant::now());
    let steady = bench(gen, to, 100_000, 10_000, 20.0, 1);
    let (c1, el) = (cpu_s(child.id()), t0.elapsed().as_secs_f64());
    print!("{steady}");
    let cpu = 100.0 * (c1 - c0) / el;
    let rss = rss_kib(child.id()) as f64 / 1024.0;
    let acked = acked_rate(&steady).unwrap_or(0.0);
    println!("server CPU {cpu:.1} % of a core over {el:.1} s (/proc stat), RSS {rss:.1} MiB");
    println!("--- rising rates (10,000 hosts)");
    let mut rising = Vec::new();
    for rate in [50_000u64, 100_000, 200_000, 300_000] {
        let out = bench(gen, to, 10_000, rate, 3.0, 2);
        print!("{out}");
        rising.push((rate, acked_rate(&out).unwrap_or(0.0)));
    }
    use hbmon::bench_daemon::{figure, summary, Better};
    figure("bench_udp_daemon", "100k hosts at 10 s: server CPU", cpu, "% of a core", Better::Lower);
    figure("bench_udp_daemon", "100k hosts at 10 s: server RSS", rss, "MiB", Better::Lower);
    for &(rate, got) in &rising {
        let what = format!("offered {rate}/s: acked");
        figure("bench_udp_daemon", &what, got, "/s", Better::Higher);
    }
    let what = "server, 100,000 hosts at a 10 s interval: CPU (`bench_udp_daemon`)";
    let res = format!("{cpu:.1} % of a core ({acked:.0} ACKs/s)");
    summary(what, &res, "under 3 %", Some(cpu < 3.0));
    let res = format!("{rss:.1} MiB");
    summary("server, 100,000 hosts: RSS", &res, "under 100 MiB", Some(rss < 100.0));
    let res: Vec<String> =
        rising.iter().map(|(r, g)| format!("{}k offered: {:.0}k", r / 1000, g / 1000.0)).collect();
    summary("ingest, sender on the same 2 cores: ACKed/s", &res.join(", "), "", None);
    let _ = child.kill();
    let _ = child.wait();
}
