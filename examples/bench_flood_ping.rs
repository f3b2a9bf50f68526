//! PING under a UDP flood (issue 18): a release `hbmon` server on
//! 127.15.0.1; PING round trips (a new connection each, every 10 ms) for
//! 10 s quiet, then during a 10 s flood at full speed (two sender threads,
//! sendmmsg: heartbeats of 10,000 hbd-style names, every one answered, and
//! 1,000 forged names beyond `hbd_senders`), then for the 10 s after it.
//! Prints median / p99 / max per phase and what the server counted.
//! Run: `cargo build --release && cargo run --release --example bench_flood_ping`.

use hbmon::bench_udp::datagrams;
use hbmon::event_loop::mmsg::{send_batch, BATCH};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn cmd(addr: SocketAddr, line: &str) -> String {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_secs(30)) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = s.write_all(format!("{line}\n").as_bytes());
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Prints a phase's median / p99 / max; returns (median, p99).
fn summary(name: &str, v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        println!("  {name}: no PING answered");
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "  {name}: {} PINGs, median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        v.len(),
        p(0.5),
        p(0.99),
        p(1.0)
    );
    (p(0.5), p(0.99))
}

/// PING every 10 ms for `secs`: the round trips in ms (a lost one counts 30 s).
fn pings(addr: SocketAddr, secs: f64) -> Vec<f64> {
    let t = Instant::now();
    let mut v = Vec::new();
    while t.elapsed().as_secs_f64() < secs {
        let s = Instant::now();
        let ok = cmd(addr, "PING").contains("PONG");
        v.push(if ok { s.elapsed().as_secs_f64() * 1e3 } else { 30_000.0 });
        std::thread::sleep(Duration::from_millis(10));
    }
    v
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = "127.15.0.1";
    let srv = hbmon::bench_daemon::start_hbd_server(dir.path(), ip.parse().expect("ip"), 10_000)
        .expect("start hbmon");
    let (mut child, to) = (srv.child, srv.addr);
    let mut dg = datagrams(10_000, 10.0);
    dg.extend(datagrams(11_000, 10.0).into_iter().skip(10_000));
    let dg = Arc::new(dg);
    println!("flood: 2 senders at full speed for 10 s, PING every 10 ms");
    let mut quiet = pings(to, 10.0);
    let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (stop, sent, dg) = (stop.clone(), sent.clone(), dg.clone());
            std::thread::spawn(move || {
                let sock = UdpSocket::bind((ip, 0)).expect("bind");
                let addrs = vec![to; BATCH];
                let mut next = 0;
                while !stop.load(Ordering::Relaxed) {
                    let n = BATCH.min(dg.len() - next);
                    let k = send_batch(&sock, &dg[next..next + n], &addrs[..n]);
                    sent.fetch_add(k as u64, Ordering::Relaxed);
                    next = (next + n) % dg.len();
                }
            })
        })
        .collect();
    let mut during = pings(to, 10.0);
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    let mut after = pings(to, 10.0);
    let n = sent.load(Ordering::Relaxed);
    println!("  sent {n} datagrams in 10 s ({:.0}/s)", n as f64 / 10.0);
    let (_, quiet99) = summary("quiet ", &mut quiet);
    let (dmed, d99) = summary("during", &mut during);
    let (amed, a99) = summary("after ", &mut after);
    use hbmon::bench_daemon::{figure, Better};
    figure("bench_flood_ping", "PING p99 quiet", quiet99, "ms", Better::Lower);
    figure("bench_flood_ping", "PING p99 during the flood", d99, "ms", Better::Lower);
    figure("bench_flood_ping", "PING p99 after the flood", a99, "ms", Better::Lower);
    let rate = n as f64 / 10.0;
    for (what, med, p99) in [("during", dmed, d99), ("in the 10 s after", amed, a99)] {
        hbmon::bench_daemon::summary(
            &format!("PING p99 {what} a 10 s flood at full speed (`bench_flood_ping`)"),
            &format!("{p99:.2} ms (median {med:.2} ms; {rate:.0} datagrams/s sent; quiet p99 {quiet99:.2} ms)"),
            "under 5 ms",
            Some(p99 < 5.0),
        );
    }
    let st = cmd(to, "STATE");
    for l in st.lines().filter(|l| {
        l.starts_with("-- udp received")
            || l.starts_with("-- strangers")
            || l.starts_with("-- loop")
    }) {
        println!("  server: {}", l.trim_start_matches("-- "));
    }
    let _ = child.kill();
    let _ = child.wait();
}
