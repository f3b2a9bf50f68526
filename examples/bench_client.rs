//! The client's steady-state footprint: a release `hbmon` client (of a
//! release server beside it) running the embedded solo work's standard item
//! set (one round a minute, history kept), measured from /proc over several
//! minutes: RSS and PSS (medians), CPU seconds per hour, wake-ups per
//! minute, and at the end where the resident memory is, per mapping.
//! Run: `cargo run --release --example bench_client [SECONDS]`
//! (default 180; the first 40 s of start-up, until its trim, are not
//! counted). `HBMON_BENCH_BIN=PATH` measures another binary and
//! `BENCH_CLIENT_NET=127.14.N` moves the pair to other addresses, so two
//! binaries can be measured side by side in the same minutes (an A/B).

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

/// CPU seconds of the process's live threads from their schedstat (in ns:
/// /proc/PID/stat counts 10 ms ticks, and the aim, 0.3 s an hour, is one
/// tick in 120 s). Threads that exited are missing here, not in `stat`.
fn sched_cpu(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0.0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// A `smaps_rollup` field in KiB.
fn rollup(text: &str, key: &str) -> Option<u64> {
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Voluntary context switches of all the process's threads: each is a
/// sleep the thread woke from (a wake-up).
fn switches(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("status")).ok())
        .filter_map(|s| {
            let l = s.lines().find(|l| l.starts_with("voluntary_ctxt_switches:"))?;
            l.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .sum()
}

/// Resident memory per kind of mapping (KiB: RSS, PSS, anonymous), from
/// /proc/PID/smaps: the binary's text and other parts, the heap, thread
/// stacks (an anonymous mapping right after a guard page), malloc arenas
/// (one right before a reserve), each library.
fn breakdown(pid: u32) -> Vec<(String, [u64; 3])> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    let exe = exe.to_string_lossy();
    // (start, end, perms, path, [rss, pss, anon]) per mapping.
    let mut maps: Vec<(u64, u64, String, String, [u64; 3])> = Vec::new();
    for l in smaps.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let Some(first) = f.first() else { continue };
        if let Some((a, b)) = first.split_once('-') {
            if let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) {
                let path = f.get(5..).map(|p| p.join(" ")).unwrap_or_default();
                maps.push((a, b, f.get(1).unwrap_or(&"").to_string(), path, [0; 3]));
                continue;
            }
        }
        let i = match *first {
            "Rss:" => 0,
            "Pss:" => 1,
            "Anonymous:" => 2,
            _ => continue,
        };
        if let (Some(m), Some(v)) = (maps.last_mut(), f.get(1).and_then(|v| v.parse().ok())) {
            m.4[i] = v;
        }
    }
    let mut out: Vec<(String, [u64; 3])> = Vec::new();
    for (i, (a, b, perms, path, kib)) in maps.iter().enumerate() {
        let guard_before = i > 0 && maps[i - 1].2 == "---p" && maps[i - 1].1 == *a;
        let reserve_after = maps.get(i + 1).is_some_and(|n| n.2 == "---p" && n.0 == *b);
        let kind = if path.as_str() == exe {
            if perms.contains('x') {
                "binary text".into()
            } else {
                format!("binary {perms}")
            }
        } else if path.starts_with('/') {
            path.rsplit('/').next().unwrap_or("").split(".so").next().unwrap_or("").to_string()
        } else if !path.is_empty() {
            path.clone()
        } else if guard_before {
            "thread stacks".into()
        } else if reserve_after {
            "malloc arenas".into()
        } else {
            "other anonymous".into()
        };
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, t)) => (0..3).for_each(|j| t[j] += kib[j]),
            None => out.push((kind, *kib)),
        }
    }
    out.retain(|(_, t)| t[0] > 0);
    out.sort_by(|x, y| y.1[0].cmp(&x.1[0]));
    out
}

fn main() {
    let secs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(180);
    let bin = hbmon::bench_daemon::bench_bin();
    let bin = bin.as_str();
    let dir = tempfile::tempdir().expect("tempdir");
    let net = std::env::var("BENCH_CLIENT_NET").unwrap_or_else(|_| "127.14.0".into());
    let (srv, cli) = (format!("{net}.1"), format!("{net}.2"));
    let (srv, cli) = (srv.as_str(), cli.as_str());
    let port = {
        let l = std::net::TcpListener::bind((srv, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    // The standard item set of the solo work, on a plain client of a server.
    let solo = hbmon::work::SOLO_WORK;
    let items: String = solo
        .lines()
        .filter(|l| l.starts_with("get ") || l.starts_with("fit "))
        .map(|l| format!("{l}\n"))
        .collect();
    let work = format!(
        "host srv.bench.example srv {srv}\nhost cli.bench.example cli {cli}\nserver srv\nport {port}\nhb_port {port}\n{items}"
    );
    std::fs::write(dir.path().join("work"), work).expect("work");
    let mut confs = Vec::new();
    for (name, ip, extra) in [
        ("srv", srv, format!("workconf {}/work\n", dir.path().display())),
        ("cli", cli, format!("server {srv}:{port}\n")),
    ] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        let c = d.join("hbmon.conf");
        let text = format!(
            "hostname {name}.bench.example\nbind {ip}\nvardir {0}/var\nlogdir {0}/log\nrundir {0}/run\nloglvl quiet\n{extra}",
            d.display()
        );
        std::fs::write(&c, text).expect("conf");
        confs.push(c);
    }
    // The server stands for another host: it runs its own copy of the
    // binary, so the client neither shares its pages (PSS halved) nor
    // maps around its faults code the server keeps in the page cache.
    let server_bin = dir.path().join("hbmon-server");
    std::fs::copy(bin, &server_bin).expect("copy the binary for the server");
    let spawn = |exe: &std::path::Path, c: &std::path::Path| {
        Command::new(exe)
            .args(["-c", &c.display().to_string(), "start", "-i"])
            .stderr(Stdio::null())
            .spawn()
            .expect("start hbmon (cargo build --release first)")
    };
    let mut server = spawn(&server_bin, &confs[0]);
    std::thread::sleep(Duration::from_secs(1));
    let mut child = spawn(std::path::Path::new(bin), &confs[1]);
    let pid = child.id();
    // Past start-up and the trim 30 s after it (footprint.rs).
    std::thread::sleep(Duration::from_secs(40));
    let (cpu0, _) = proc_stat(pid).expect("the client is running");
    let sched0 = sched_cpu(pid);
    let t0 = Instant::now();
    let (mut rss, mut pss) = (Vec::new(), Vec::new());
    let sw0 = switches(pid);
    while t0.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_secs(5));
        if let Some((_, r)) = proc_stat(pid) {
            rss.push(r as f64);
        }
        let roll = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
        if let Some(p) = rollup(&roll, "Pss:") {
            pss.push(p as f64);
        }
    }
    let (cpu1, _) = proc_stat(pid).expect("still running");
    let sched1 = sched_cpu(pid);
    let sw1 = switches(pid);
    let el = t0.elapsed().as_secs_f64();
    let mib = |v: &mut Vec<f64>, q: f64| hbmon::bench_daemon::quantile(v, q) / 1024.0;
    let (rss_med, rss_max) = (mib(&mut rss, 0.5), mib(&mut rss, 1.0));
    let (pss_med, pss_max) = (mib(&mut pss, 0.5), mib(&mut pss, 1.0));
    // The tick count can only be rounded down by up to one tick per field;
    // the live threads' schedstat misses exited threads: take the larger.
    let cpu = (sched1 - sched0).max(cpu1 - cpu0 - 0.02).max(0.0);
    let per_hour = cpu / el * 3600.0;
    println!("client footprint: a plain client of a server, the solo work's standard items (8, 1-minute rounds, history kept, 10 s heartbeats), {el:.0} s measured:");
    println!("  RSS median {rss_med:.2} MiB, max {rss_max:.2} MiB");
    println!("  PSS median {pss_med:.2} MiB, max {pss_max:.2} MiB (the server beside it maps the same binary)");
    println!(
        "  CPU {cpu:.3} s over {el:.0} s = {per_hour:.2} CPU-seconds per hour (/proc stat ticks: {:.2} s)",
        cpu1 - cpu0
    );
    println!(
        "  {:.1} wake-ups per minute (voluntary context switches of all threads)",
        sw1.saturating_sub(sw0) as f64 / el * 60.0
    );
    // RSS counts the binary's code pages mapped from the page cache; the
    // process's own (anonymous) memory is what it really costs.
    let roll = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    for key in ["Rss:", "Pss:", "Anonymous:", "Shared_Clean:", "Private_Clean:", "Private_Dirty:"] {
        if let Some(l) = roll.lines().find(|l| l.starts_with(key)) {
            println!("  {}", l.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    println!("  resident at the end, per mapping (KiB): RSS / PSS / anonymous");
    for (kind, [r, p, a]) in breakdown(pid) {
        println!("    {kind:<18} {r:>6} {p:>6} {a:>6}");
    }
    let anon = rollup(&roll, "Anonymous:").unwrap_or(0) as f64 / 1024.0;
    // Threads (each a stack and maybe a malloc arena) and the binary's size.
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0);
    let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
    println!("  threads {threads}; binary {:.2} MB", size as f64 / 1e6);
    use hbmon::bench_daemon::{figure, summary, Better};
    figure("bench_client", "RSS median", rss_med, "MiB", Better::Lower);
    figure("bench_client", "PSS median", pss_med, "MiB", Better::Lower);
    figure("bench_client", "CPU per hour", per_hour, "s", Better::Lower);
    let what = format!("plain client RSS, median over {el:.0} s (`bench_client`)");
    let res = format!("{rss_med:.2} MiB ({anon:.2} MiB anonymous, {threads} threads)");
    summary(&what, &res, "under 4 MiB", Some(rss_med < 4.0));
    summary(
        "plain client PSS, median",
        &format!("{pss_med:.2} MiB"),
        "under 3 MiB",
        Some(pss_med < 3.0),
    );
    summary(
        "plain client CPU",
        &format!("{per_hour:.2} s/hour ({cpu:.3} s in {el:.0} s)"),
        "under 0.3 s/hour",
        Some(per_hour < 0.3),
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = server.kill();
    let _ = server.wait();
}
