//! Hostile load on a real release `hbmon` server (issue 13 items 2 and 7):
//! 1,000,000 forged heartbeat names at full speed from 127.12.0.200, with
//! PING round trips measured before (baseline) and during the flood, RSS
//! after; then 1,000 maximal REPORTs (1000 items, ~510 KiB each) spread
//! over the 11 work hosts, RSS after.
//! Run: `cargo build --release && cargo run --release --example bench_hostile`.

use hbmon::bench_daemon::{figure, Better};
use hbmon::wire::{encode, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FORGED: usize = 1_000_000;
const SENDERS: usize = 2;
const REPORTS: usize = 1000;

fn cmd(addr: SocketAddr, line: &str) -> String {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(line.as_bytes()).expect("send");
    s.write_all(b"\n").expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn ping(addr: SocketAddr) -> Duration {
    let t = Instant::now();
    let a = cmd(addr, "PING");
    assert!(a.contains("PONG"), "no PONG: {a}");
    t.elapsed()
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

fn summary(v: &mut [Duration]) -> String {
    format!(
        "{} PINGs: median {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        v.len(),
        pct(v, 0.5),
        pct(v, 0.99),
        pct(v, 1.0)
    )
}

fn rss_mib(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = s
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn state_line(state: &str, prefix: &str) -> String {
    state.lines().find(|l| l.starts_with(prefix)).unwrap_or("").to_string()
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = "127.12.0.1";
    let port = hbmon::bench_daemon::free_port(ip.parse().expect("ip")).expect("free port");
    let mut work = format!("host srv.bench.example srv {ip}\n");
    for i in 0..10 {
        work.push_str(&format!("host h{i}.bench.example h{i} 127.12.0.{}\n", 10 + i));
    }
    work.push_str(&format!("server srv\nport {port}\nhb_port {port}\nival_make_state 1h\n"));
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
    println!("server: release hbmon on {ip}, 11 work hosts, default hbd_senders 64");
    for _ in 0..200 {
        ping(to);
    }
    let mut base: Vec<Duration> = (0..2000).map(|_| ping(to)).collect();
    println!("baseline (no flood): {}", summary(&mut base));
    println!("RSS before the flood {:.1} MiB", rss_mib(child.id()));

    // Each sender encodes its share first, so the flood runs at full speed.
    let per = FORGED / SENDERS;
    let batches: Vec<Vec<Vec<u8>>> = (0..SENDERS)
        .map(|s| {
            (0..per)
                .map(|i| {
                    let name = format!("forged-{s}-{i}.example");
                    encode(
                        "HTB",
                        &[
                            ("name", Value::Str(name)),
                            ("ts", Value::Float(1.0e9)),
                            ("seq", Value::Int(1)),
                            ("interval", Value::Int(10)),
                        ],
                    )
                })
                .collect()
        })
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let senders: Vec<_> = batches
        .into_iter()
        .map(|b| {
            let (done, sent) = (done.clone(), sent.clone());
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.12.0.200:0").expect("bind sender");
                for d in &b {
                    if sock.send_to(d, to).is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                }
                done.store(true, Ordering::Relaxed);
            })
        })
        .collect();
    let mut during = Vec::new();
    while !done.load(Ordering::Relaxed) {
        during.push(ping(to));
    }
    for s in senders {
        let _ = s.join();
    }
    let secs = t.elapsed().as_secs_f64();
    let n = sent.load(Ordering::Relaxed);
    println!("flood: {n} forged names in {secs:.2} s ({:.0}/s) from 2 threads", n as f64 / secs);
    println!("during the flood: {}", summary(&mut during));
    figure(
        "bench_hostile",
        "PING p99 during the forged-name flood",
        pct(&mut during, 0.99),
        "ms",
        Better::Lower,
    );
    std::thread::sleep(Duration::from_millis(500));
    let st = cmd(to, "STATE");
    println!("{}", state_line(&st, "-- udp received"));
    println!("{}", state_line(&st, "-- udp refused stranger"));
    println!("{}", state_line(&st, "-- strangers held"));
    println!("{}", state_line(&st, "-- hosts total"));
    println!("RSS after the flood {:.1} MiB", rss_mib(child.id()));
    figure("bench_hostile", "RSS after the flood", rss_mib(child.id()), "MiB", Better::Lower);
    let mut after: Vec<Duration> = (0..2000).map(|_| ping(to)).collect();
    println!("after the flood: {}", summary(&mut after));

    // 1,000 maximal reports, from localhost (which speaks for every host).
    let hosts: Vec<String> = std::iter::once("srv.bench.example".to_string())
        .chain((0..10).map(|i| format!("h{i}.bench.example")))
        .collect();
    let body = |host: &str| {
        let m: serde_json::Map<String, serde_json::Value> = (0..1000)
            .map(|i| {
                (format!("item{i:04}"), serde_json::json!({"value": i, "error": "e".repeat(480)}))
            })
            .collect();
        format!("REPORT {}", serde_json::json!({"host": host, "items": m}))
    };
    let lines: Vec<String> = hosts.iter().map(|h| body(h)).collect();
    println!(
        "--- {REPORTS} maximal REPORTs ({} bytes each) over {} hosts",
        lines[0].len(),
        hosts.len()
    );
    let t = Instant::now();
    for i in 0..REPORTS {
        let a = cmd(to, &lines[i % lines.len()]);
        assert!(a.ends_with("COMMAND DONE\n"), "report {i}: {a}");
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{REPORTS} reports in {secs:.2} s; RSS after {:.1} MiB", rss_mib(child.id()));
    figure("bench_hostile", "maximal REPORTs", secs, "s", Better::Lower);
    let t = Instant::now();
    let c = cmd(to, "CLIENTS");
    println!(
        "CLIENTS then: {} bytes in {:.0} ms; RSS {:.1} MiB",
        c.len(),
        t.elapsed().as_secs_f64() * 1e3,
        rss_mib(child.id())
    );
    let _ = child.kill();
    let _ = child.wait();
}
