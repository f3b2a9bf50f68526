//! The heartbeat path through the real daemon: a release `hbmon` server on
//! 127.11.0.1 fed by `hbmon bench udp` (real HTB datagrams as N distinct
//! hosts). First 100,000 hosts at a 10 s interval (10,000 datagrams/s),
//! twice, each on a fresh server: hbd-style senders (no `ack` field, every
//! HTB ACKed) and hbmon-style ones (`ack=1` on one HTB in 4 per host, as a
//! client asks): the server's CPU share and RSS. One sender process keeps
//! every host's schedule from its first heartbeat to its last (a pause
//! between a warm-up run and a measured run would make each host late at
//! the server by the pause: the bench's fault, not the server's); the CPU
//! is read from /proc/PID/stat over the steady part only, after a warm-up
//! of 42 s (each host new in its first 10 s; past the daemon's start-up
//! trim; every host judged by the tuned phi). Then rising rates until loss appears,
//! on a third server. The server runs the default (tuned) detector, as a
//! real one does; how many hosts it saw late or down is printed.
//! (It holds for any binary, `HBMON_BENCH_BIN` included; the load
//! generator is always this tree's release binary.)
//! Run: `cargo build --release && cargo run --release --example bench_udp_daemon`.

use hbmon::bench_daemon::Daemon;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bench_cmd(to: SocketAddr, hosts: u32, rate: u64, secs: f64, procs: u32, style: &str) -> Command {
    let mut c = Command::new(hbmon::bench_daemon::RELEASE_BIN);
    c.args(["bench", "udp", "--to", &to.to_string(), "--cmd", &to.to_string()])
        .args(["--hosts", &hosts.to_string(), "--rate", &rate.to_string()])
        .args(["--secs", &secs.to_string(), "--procs", &procs.to_string(), "--style", style]);
    c
}

fn output(c: std::process::Output) -> String {
    String::from_utf8_lossy(&c.stdout).into_owned() + &String::from_utf8_lossy(&c.stderr)
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Minor page faults of `pid` and its context switches (voluntary +
/// involuntary, all threads): what a measured part cost beside its CPU.
fn faults_switches(pid: u32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let minflt = f.get(7).and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut sw = 0;
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            let st = std::fs::read_to_string(t.path().join("status")).unwrap_or_default();
            sw += st
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>();
        }
    }
    (minflt, sw)
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

fn server(dir: &std::path::Path) -> (Daemon, SocketAddr) {
    let ip = "127.11.0.1".parse().expect("ip");
    let srv = hbmon::bench_daemon::start_hbd_server(dir, ip, 100_000).expect("start hbmon");
    (srv.child, srv.addr)
}

/// STATE's lines about the hosts' states and the loop, to see why it worked.
fn state_lines(cmd: SocketAddr) -> String {
    let st = hbmon::bench_udp::query_state(cmd).unwrap_or_else(|e| format!("STATE: {e}\n"));
    let keep = ["-- udp ", "-- hbd ", "-- hosts ", "-- events ", "-- loop ", "-- detector "];
    st.lines()
        .filter(|l| keep.iter().any(|k| l.starts_with(k)))
        .map(|l| format!("  {l}\n"))
        .collect()
}

/// The warm-up: each host new in its first 10 s, then past the daemon's
/// one-off start-up trim (`footprint::TRIM_AFTER`, 30 s: its code pages
/// dropped and faulted back, the heap trimmed) and until every host has the
/// history the tuned detector judges by (`detector::MIN_SAMPLES` gaps), so
/// the measured part is the steady state a long-running server is in.
const WARM: f64 = 42.0;
const STEADY: f64 = 20.0;

/// 100,000 hosts at 10 s in `style` on a fresh server: (CPU %, RSS MiB, ACKs/s).
fn steady(style: &str) -> (f64, f64, f64) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, to) = server(dir.path());
    println!("--- 100,000 hosts at a 10 s interval, {style}-style senders");
    println!("({WARM} s warm-up: each host new; then {STEADY} s measured)");
    let load = bench_cmd(to, 100_000, 10_000, WARM + STEADY, 1, style)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hbmon bench udp");
    let t = Instant::now();
    let at = |s: f64| Duration::from_secs_f64(s).saturating_sub(t.elapsed());
    // sleep: the load runs on its own schedule; these are its marks.
    std::thread::sleep(at(WARM));
    let (c0, t0, fs0) = (cpu_s(child.id()), Instant::now(), faults_switches(child.id()));
    std::thread::sleep(at(WARM + STEADY));
    let (c1, el) = (cpu_s(child.id()), t0.elapsed().as_secs_f64());
    let fs1 = faults_switches(child.id());
    let rss = rss_kib(child.id()) as f64 / 1024.0;
    let out = output(load.wait_with_output().expect("hbmon bench udp"));
    print!("{out}");
    let cpu = 100.0 * (c1 - c0) / el;
    // ACKs over the whole run: per second of it.
    let acked = acked_rate(&out).unwrap_or(0.0);
    println!("server CPU {cpu:.1} % of a core over the {el:.1} s steady part (/proc stat), RSS {rss:.1} MiB");
    let (flt, sw) = (fs1.0.saturating_sub(fs0.0), fs1.1.saturating_sub(fs0.1));
    println!("  in the measured part: {flt} minor page faults, {sw} context switches");
    print!("{}", state_lines(to));
    let _ = child.kill();
    let _ = child.wait();
    (cpu, rss, acked)
}

fn main() {
    let hbd = steady("hbd");
    let hbm = steady("hbmon");
    println!("--- rising rates (10,000 hosts, fresh server)");
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut child, to) = server(dir.path());
    let mut rising = Vec::new();
    for rate in [50_000u64, 100_000, 200_000, 300_000] {
        let out = output(bench_cmd(to, 10_000, rate, 3.0, 2, "hbd").output().expect("bench udp"));
        print!("{out}");
        rising.push((rate, acked_rate(&out).unwrap_or(0.0)));
    }
    let _ = child.kill();
    let _ = child.wait();
    use hbmon::bench_daemon::{figure, summary, Better};
    for (style, (cpu, rss, acked)) in [("hbd", hbd), ("hbmon", hbm)] {
        let name = format!("100k hosts at 10 s, {style}-style: server CPU");
        figure("bench_udp_daemon", &name, cpu, "% of a core", Better::Lower);
        let name = format!("100k hosts at 10 s, {style}-style: server RSS");
        figure("bench_udp_daemon", &name, rss, "MiB", Better::Lower);
        let what = format!(
            "server, 100,000 hosts at a 10 s interval, {style}-style senders: CPU (`bench_udp_daemon`)"
        );
        let res = format!("{cpu:.1} % of a core ({acked:.0} ACKs/s)");
        summary(&what, &res, "under 3 %", Some(cpu < 3.0));
        let what = format!("server, 100,000 hosts, {style}-style senders: RSS");
        summary(&what, &format!("{rss:.1} MiB"), "under 100 MiB", Some(rss < 100.0));
    }
    for &(rate, got) in &rising {
        let what = format!("offered {rate}/s: acked");
        figure("bench_udp_daemon", &what, got, "/s", Better::Higher);
    }
    let res: Vec<String> =
        rising.iter().map(|(r, g)| format!("{}k offered: {:.0}k", r / 1000, g / 1000.0)).collect();
    summary("ingest, sender on the same 2 cores: ACKed/s", &res.join(", "), "", None);
}
