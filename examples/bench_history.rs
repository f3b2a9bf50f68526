//! History benchmark (issue 4): one year of 1-minute samples for 20 items
//! written straight into a fresh history.db, then ZAP; prints the row count
//! and file size after ZAP and the median latency of HIST Y and HIST D.
//! Aim: under 15 MB and under 20 ms.
//!
//! Run: `cargo run --release --example bench_history [ITEMS] [DAYS]`

use hbmon::store::History;
use std::time::Instant;

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// This thread's CPU time in seconds: on a shared, loaded machine the wall
/// time of a short query mostly measures the wait for a core.
fn thread_cpu_s() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let items: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let days: i64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(365);
    // A third argument keeps the database there (and reuses it when it
    // exists, skipping generation and ZAP: for timing HIST alone).
    let keep = args.next().map(std::path::PathBuf::from);
    let dir = tempfile::tempdir()?;
    let path = keep.clone().unwrap_or_else(|| dir.path().join("history.db"));
    let reuse = keep.is_some() && path.exists();
    let now: i64 = 1_790_000_000;
    let per_item = days * 1440;
    println!(
        "bench_history: {items} items x {days} days at 1-minute samples = {} rows",
        per_item * items as i64
    );

    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine load average: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    let mut h = History::open(&path)?;
    if !reuse {
        generate(&mut h, &path, items, per_item, now)?;
    }
    hist_latency(&h, now)?;
    if !reuse {
        steady_hour(&mut h, items, now)?;
    }
    Ok(())
}

fn generate(
    h: &mut History,
    path: &std::path::Path,
    items: usize,
    per_item: i64,
    now: i64,
) -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    for i in 0..items {
        let name = format!("item{i:02}");
        let series: Vec<(i64, f64)> = (0..per_item)
            .map(|k| {
                let t = now - (per_item - k) * 60;
                // A daily wave plus a little deterministic jitter.
                let phase = (t % 86400) as f64 / 86400.0 * std::f64::consts::TAU;
                (t, 50.0 + 30.0 * phase.sin() + ((k * 7919 + i as i64) % 100) as f64 / 50.0)
            })
            .collect();
        h.insert_series(&name, &series)?;
    }
    h.checkpoint()?;
    let load_s = t0.elapsed().as_secs_f64();
    let raw_size = std::fs::metadata(path)?.len();
    println!("load: {load_s:.1} s, file {:.1} MB", raw_size as f64 / 1e6);

    let t0 = Instant::now();
    let (before, after) = h.zap(now as f64, 0.0)?;
    let zap_s = t0.elapsed().as_secs_f64();
    h.checkpoint()?;
    let size = std::fs::metadata(path)?.len();
    println!(
        "ZAP: {before} -> {after} rows in {zap_s:.1} s; file {:.2} MB (aim < 15 MB)",
        size as f64 / 1e6
    );
    let t0 = Instant::now();
    let again = h.zap(now as f64, 0.0)?;
    println!("ZAP again (idempotent): {:?} in {:.2} s", again, t0.elapsed().as_secs_f64());
    Ok(())
}

/// An hour of rounds (one a minute) then the hourly ZAP, as a client does.
fn steady_hour(h: &mut History, items: usize, now: i64) -> Result<(), Box<dyn std::error::Error>> {
    let names: Vec<String> = (0..items).map(|i| format!("item{i:02}")).collect();
    let c0 = thread_cpu_s();
    for m in 1..=60 {
        let vals: Vec<(&str, f64)> = names.iter().map(|n| (n.as_str(), m as f64)).collect();
        h.insert_round((now + m * 60) as f64, &vals)?;
    }
    let c1 = thread_cpu_s();
    let t0 = Instant::now();
    let (b, a) = h.zap((now + 3600) as f64, 0.0)?;
    println!(
        "steady hour: 60 rounds of {items} items {:.1} ms CPU; hourly ZAP {b} -> {a} rows, \
         {:.1} ms CPU, {:.1} ms wall",
        (c1 - c0) * 1000.0,
        (thread_cpu_s() - c1) * 1000.0,
        t0.elapsed().as_secs_f64() * 1000.0
    );
    Ok(())
}

fn hist_latency(h: &History, now: i64) -> Result<(), Box<dyn std::error::Error>> {
    for ival in ["Y", "D", "H"] {
        let mut times = Vec::new();
        let mut cpu = Vec::new();
        let mut rows = String::new();
        for _ in 0..21 {
            let t0 = Instant::now();
            let c0 = thread_cpu_s();
            let v = h.hist(ival, None, &[], now as f64)?;
            let s = v.to_string();
            cpu.push((thread_cpu_s() - c0) * 1000.0);
            times.push(t0.elapsed().as_secs_f64() * 1000.0);
            rows = format!("{} ({} bytes JSON)", v["resp"], s.len());
        }
        println!(
            "HIST {ival}: median {:.2} ms wall, {:.2} ms CPU over 21 runs, {rows} (aim < 20 ms)",
            median_ms(times),
            median_ms(cpu)
        );
    }
    Ok(())
}
