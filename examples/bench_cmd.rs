//! Command-port round trips against a real release `hbmon` (solo, embedded
//! work) on 127.0.0.1: PING and STATE median/p99 over sequential
//! connections, then connections per second with concurrent clients.
//! A connection that fails (refused, reset, a short answer) is counted and
//! printed, not fatal: the figures go on and the count says how many.
//! Run: `cargo build --release && cargo run --release --example bench_cmd`.

use hbmon::bench_daemon::{figure, Better};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Connections that failed, and the first failure's text.
static FAILED: AtomicU64 = AtomicU64::new(0);
static FIRST_FAILURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn try_round_trip(addr: SocketAddr, line: &[u8]) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    s.write_all(line).map_err(|e| format!("send: {e}"))?;
    let mut out = Vec::with_capacity(4096);
    s.read_to_end(&mut out).map_err(|e| format!("read: {e}"))?;
    if !out.ends_with(b"COMMAND DONE\n") {
        return Err(format!("bad answer: {}", String::from_utf8_lossy(&out)));
    }
    Ok(t.elapsed())
}

fn round_trip(addr: SocketAddr, line: &[u8]) -> Option<Duration> {
    try_round_trip(addr, line)
        .map_err(|e| {
            FAILED.fetch_add(1, Ordering::Relaxed);
            let _ = FIRST_FAILURE.set(e);
        })
        .ok()
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let bin = hbmon::bench_daemon::bench_bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let conf = dir.path().join("hbmon.conf");
    std::fs::write(
        &conf,
        format!(
            "hostname bench.example.org\nbind 127.0.0.1\nport {port}\nhb_port {port}\nhttp_port {}\nvardir {d}/var\nlogdir {d}/log\nrundir {d}/run\nloglvl quiet\n",
            port + 1,
            d = dir.path().display()
        ),
    )
    .expect("conf");
    let mut child = Command::new(&bin)
        .args(["-c", &conf.display().to_string(), "start", "-i"])
        .stderr(Stdio::null())
        .spawn()
        .expect("start hbmon (cargo build --release first)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(t.elapsed() < Duration::from_secs(10), "hbmon did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..200 {
        round_trip(addr, b"PING\n");
    }
    println!("command port, {n} sequential connections each (connect, one line, read to close):");
    for (name, line) in [("PING", &b"PING\n"[..]), ("STATE", &b"STATE\n"[..])] {
        let mut v: Vec<Duration> = (0..n).filter_map(|_| round_trip(addr, line)).collect();
        let (med, p99) = (pct(&mut v, 0.5), pct(&mut v, 0.99));
        println!("  {name:<6} median {med:>7.1} us   p99 {p99:>7.1} us");
        figure("bench_cmd", &format!("{name} median"), med, "us", Better::Lower);
        figure("bench_cmd", &format!("{name} p99"), p99, "us", Better::Lower);
    }
    for clients in [4, 16] {
        let per = n / clients;
        let t = Instant::now();
        let hs: Vec<_> = (0..clients)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..per).for_each(|_| {
                        round_trip(addr, b"PING\n");
                    })
                })
            })
            .collect();
        for h in hs {
            h.join().expect("client thread");
        }
        let rate = (per * clients) as f64 / t.elapsed().as_secs_f64();
        println!("  PING with {clients:>2} concurrent clients: {rate:>8.0} connections/s");
        let what = format!("PING, {clients} concurrent clients");
        figure("bench_cmd", &what, rate, "connections/s", Better::Higher);
    }
    let failed = FAILED.load(Ordering::Relaxed);
    if failed > 0 {
        let first = FIRST_FAILURE.get().map_or("", |s| s.as_str());
        println!("  {failed} connections failed (the first: {first})");
    }
    figure("bench_cmd", "failed connections", failed as f64, "", Better::Lower);
    let _ = child.kill();
    let _ = child.wait();
}
