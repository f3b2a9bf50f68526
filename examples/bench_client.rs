//! The client's steady-state footprint: a release `hbmon` running the
//! embedded solo work's standard item set (one round a minute, history
//! kept), measured from /proc over several minutes: RSS and CPU seconds per
//! hour. Run: `cargo run --release --example bench_client [SECONDS]`
//! (default 300; the first 20 s of start-up are not counted).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn proc_stat(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit(')').next()?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tck = 100.0; // USER_HZ on Linux
    let cpu = (f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / tck;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((cpu, rss))
}

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(180);
    let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/target/release/hbmon");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = Command::new(bin)
        .args(["start", "-i"])
        .env("XDG_STATE_HOME", dir.path())
        .env("HOME", dir.path())
        .current_dir(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hbmon (cargo build --release first)");
    let pid = child.id();
    std::thread::sleep(Duration::from_secs(20));
    let (cpu0, _) = proc_stat(pid).expect("hbmon running (is port 50006 free?)");
    let t0 = Instant::now();
    let mut rss = Vec::new();
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(5));
        if let Some((_, r)) = proc_stat(pid) {
            rss.push(r);
        }
    }
    let (cpu1, _) = proc_stat(pid).expect("still running");
    let el = t0.elapsed().as_secs_f64();
    rss.sort();
    let med = rss.get(rss.len() / 2).copied().unwrap_or(0);
    let max = rss.last().copied().unwrap_or(0);
    println!("client footprint, embedded solo work (8 items, 1-minute rounds, history kept), {el:.0} s measured:");
    println!("  RSS median {:.2} MiB, max {:.2} MiB", med as f64 / 1024.0, max as f64 / 1024.0);
    println!(
        "  CPU {:.3} s over {el:.0} s = {:.2} CPU-seconds per hour",
        cpu1 - cpu0,
        (cpu1 - cpu0) / el * 3600.0
    );
    // RSS counts the binary's code pages shared with the page cache; the
    // process's own (anonymous) memory is what it really costs.
    let roll = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    for key in ["Anonymous:", "Shared_Clean:", "Private_Dirty:"] {
        if let Some(l) = roll.lines().find(|l| l.starts_with(key)) {
            println!("  {}", l.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}
