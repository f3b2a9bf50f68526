//! What one round of probes costs: the median time of each inline item
//! (real /proc, /sys and statvfs of this machine), and of a few blocking
//! ones run through `run_blocking` (external commands, tcp on 127.0.0.1).
//!
//! `cargo run --release --example bench_probes [ROUNDS]` (default 2000
//! inline rounds, 20 blocking runs); well under a minute.

use hbmon::probes::{run_blocking, Inline};
use hbmon::work::model::ProbeSpec;
use std::path::Path;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2000);
    let iface = std::fs::read_dir("/sys/class/net")
        .ok()
        .and_then(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).next())
        .unwrap_or_else(|| "lo".into());
    let items = [
        "cpu_load".to_string(),
        "cpu_pct".into(),
        "mem_used".into(),
        "swap_used".into(),
        "uptime".into(),
        "disk_used:/".into(),
        "disk_avail:/".into(),
        "inode_used:/".into(),
        format!("net_rx:{iface}"),
        format!("net_tx:{iface}"),
        "procs".into(),
        "proc:sshd".into(),
    ];
    let mut p = Inline::from_env();
    println!("inline probes, {rounds} rounds, median per sample:");
    let mut round_total = Duration::ZERO;
    for item in &items {
        let mut times = Vec::with_capacity(rounds);
        let mut errors = 0;
        for r in 0..rounds {
            let t0 = Instant::now();
            let s = p.sample(item, r as f64);
            times.push(t0.elapsed());
            errors += usize::from(s.error.is_some());
        }
        let m = median(times);
        round_total += m;
        println!("  {item:<16} {:>8.1} us  ({errors} errors)", m.as_secs_f64() * 1e6);
    }
    println!("  one round of all {} items: {:.1} us", items.len(), round_total.as_secs_f64() * 1e6);

    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    let blocking: Vec<(String, ProbeSpec)> = vec![
        (format!("tcp:127.0.0.1:{port}"), ProbeSpec::Builtin),
        ("nagios:true".into(), ProbeSpec::Nagios { argv: vec!["/bin/true".into()] }),
        (
            "nagios:check_load".into(),
            ProbeSpec::Nagios {
                argv: vec!["check_load".into(), "-w".into(), "99".into(), "-c".into(), "99".into()],
            },
        ),
    ];
    let runs = 20;
    println!("blocking probes, {runs} runs, median per run:");
    for (item, spec) in &blocking {
        let times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t0 = Instant::now();
                run_blocking(item, spec, Path::new("/nonexistent"), Duration::from_secs(10));
                t0.elapsed()
            })
            .collect();
        println!("  {item:<22} {:>8.2} ms", median(times).as_secs_f64() * 1e3);
    }
}
