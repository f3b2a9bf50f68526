//! A 10,000-host outage against a real release `hbmon` server (issue 14):
//! 10,000 work hosts heartbeat (real signed HTB datagrams over loopback,
//! from this process), then all go silent at once. Measured: the time from
//! the silence until every host's down event is in server.db (read with
//! SQLite from here, WAL lets it read beside the writer) and until every
//! host's alert reached a webhook receiver in this process; the server's
//! commits for it (STATE `-- store`); and PING round trips during all of
//! it (a new connection each, as `hbmon ping` does), whose p99 the loop
//! must keep low while the store thread writes.
//! Run: `cargo build --release && cargo run --release --example bench_outage [HOSTS]`.

use hbmon::wire::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "bench-outage-key";

fn cmd(addr: SocketAddr, line: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    s.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn wait<T>(what: &str, secs: f64, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed().as_secs_f64() < secs, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn heartbeat(i: usize, seq: i64) -> Vec<u8> {
    hbmon::wire::encode_signed(
        "HTB",
        &[
            ("name", Value::Str(format!("h{i}.bench.example"))),
            ("ts", Value::Float(hbmon::clock::Now::wall_now())),
            ("seq", Value::Int(seq)),
            ("interval", Value::Float(1.0)),
            ("bid", Value::Int(1000 + i as i64)),
            ("ver", Value::Str(hbmon::VERSION.into())),
        ],
        Some(KEY.as_bytes()),
    )
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len().max(1) - 1) as f64 * p).round() as usize).copied().unwrap_or(0.0)
}

/// Hosts with a down event stored after event `since` (the last one
/// before the silence: a host the warm-up's sender left behind under load
/// may have gone down before it, and those do not count). A range of the
/// primary key, so the look every 100 ms costs the box little.
fn count_down(db: &rusqlite::Connection, since: i64) -> i64 {
    db.query_row(
        "SELECT count(DISTINCT host) FROM events WHERE seq > ?1 AND item = 'heartbeat' AND json LIKE '%\"new_level\":\"dead\"%'",
        [since],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

fn main() {
    let hosts: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let rx = tiny_http::Server::http("127.0.0.1:0").expect("receiver");
    let rport = rx.server_addr().to_ip().map(|a| a.port()).unwrap_or(0);
    let alerts = Arc::new(AtomicU64::new(0));
    let last_alert: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let (a, l) = (alerts.clone(), last_alert.clone());
    std::thread::spawn(move || {
        for req in rx.incoming_requests() {
            if req.url().contains("new=dead") {
                a.fetch_add(1, Ordering::SeqCst);
                *l.lock().unwrap() = Some(Instant::now());
            }
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = Ipv4Addr::new(127, 12, 0, 1);
    let port = hbmon::bench_daemon::free_port(srv.into()).expect("free port");
    let mut work = format!(
        "host srv.bench.example srv {srv}\nserver srv\nport {port}\nhb_port {port}\n\
         ival_make_state 1h\nival_heartbeat 1s\ngrace 1s\nmissed 3\ndetector fixed\n\
         flap 1000000 1s\nstorm 1000000 1s\nival_renotify 1h\n\
         channel hook webhook http://127.0.0.1:{rport}/hook?host={{HOST}}&new={{NEW}} method=GET\n\
         user ops hook\nalert all heartbeat dead ops\n"
    );
    for i in 0..hosts {
        let ip = Ipv4Addr::new(127, 13, (i / 250) as u8, (i % 250 + 1) as u8);
        work.push_str(&format!("host h{i}.bench.example h{i} {ip}\n"));
    }
    let started = hbmon::bench_daemon::start_server(
        dir.path(),
        srv.into(),
        port,
        &work,
        &format!("key {KEY}\n"),
        Duration::from_secs(60),
    )
    .expect("start hbmon");
    let mut child = started.child;
    let addr = SocketAddr::new(srv.into(), port);
    wait("the server", 60.0, || cmd(addr, "PING"));
    // Every host heartbeats once a second until all are up.
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
    sock.set_nonblocking(true).expect("nonblocking");
    let mut seq = 0;
    let mut ack_buf = [0u8; 512];
    let up = |s: &str| -> usize {
        s.lines()
            .find_map(|l| l.strip_prefix("-- hosts total "))
            .and_then(|l| l.split(" up ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    let t = Instant::now();
    loop {
        seq += 1;
        let round = Instant::now();
        for i in 0..hosts {
            let d = heartbeat(i, seq);
            while sock.send_to(&d, addr).is_err() {
                while sock.recv_from(&mut ack_buf).is_ok() {}
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        while sock.recv_from(&mut ack_buf).is_ok() {}
        let st = cmd(addr, "STATE").unwrap_or_default();
        if up(&st) >= hosts && seq >= 3 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "hosts not up:\n{}",
            &st[..st.len().min(3000)]
        );
        std::thread::sleep(Duration::from_secs(1).saturating_sub(round.elapsed()));
    }
    // The baseline: PING while all hosts heartbeat (two more rounds).
    let mut base = Vec::new();
    for _ in 0..2 {
        seq += 1;
        let round = Instant::now();
        for (k, i) in (0..hosts).enumerate() {
            let d = heartbeat(i, seq);
            while sock.send_to(&d, addr).is_err() {
                while sock.recv_from(&mut ack_buf).is_ok() {}
                std::thread::sleep(Duration::from_micros(100));
            }
            if k % 100 == 0 {
                while sock.recv_from(&mut ack_buf).is_ok() {}
                let t = Instant::now();
                let _ = cmd(addr, "PING");
                base.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(round.elapsed()));
    }
    let before = cmd(addr, "STATE").unwrap_or_default();
    // The server's own host is one of the up ones.
    let up_at_silence = up(&before).saturating_sub(1).min(hosts);
    if up_at_silence < hosts {
        println!(
            "  ({} of {hosts} hosts not up at the silence: the sender fell behind)",
            hosts - up_at_silence
        );
    }
    let db = rusqlite::Connection::open(dir.path().join("var/server.db")).expect("server.db");
    let _ = db.busy_timeout(Duration::from_secs(5));
    let since: i64 =
        db.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0)).unwrap_or(0);
    let alerts_before = alerts.load(Ordering::SeqCst) as usize;
    eprintln!("silence (server pid {})", child.id());
    let commits = |s: &str| -> u64 {
        s.lines()
            .find_map(|l| l.strip_prefix("-- store thread server.db requests "))
            .and_then(|l| l.split(" commits ").nth(1))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // Silence: the senders stop; PINGs go on until every alert arrived.
    let silence = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let pinger = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut v = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                let a = cmd(addr, "PING").unwrap_or_default();
                assert!(a.contains("PONG"), "PING: {a}");
                v.push(t.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_millis(5));
            }
            v
        })
    };
    let mut first_down = None;
    let stored = wait("all down events stored", 300.0, || {
        let n = count_down(&db, since);
        if n > 0 && first_down.is_none() {
            first_down = Some(silence.elapsed());
        }
        // The count is a scan: every 100 ms keeps this process's share small.
        std::thread::sleep(Duration::from_millis(100));
        (n as usize >= up_at_silence).then(|| silence.elapsed())
    });
    wait("all alerts delivered", 600.0, || {
        (alerts.load(Ordering::SeqCst) as usize >= alerts_before + up_at_silence).then_some(())
    });
    let notified = last_alert.lock().unwrap().map(|t| t - silence).unwrap_or_default();
    stop.store(true, Ordering::SeqCst);
    let mut pings = pinger.join().expect("pinger");
    let after = cmd(addr, "STATE").unwrap_or_default();
    let first = first_down.unwrap_or_default().as_secs_f64();
    println!("{hosts} hosts silent at once (heartbeat 1 s, grace 1 s, missed 3, detector fixed):");
    println!(
        "  down events stored: first {first:.2} s, all {:.2} s after the silence ({:.2} s from first to last)",
        stored.as_secs_f64(),
        stored.as_secs_f64() - first
    );
    println!(
        "  alerts delivered to the webhook: all {hosts} {:.2} s after the silence",
        notified.as_secs_f64()
    );
    println!(
        "  server.db commits during it: {} (store thread, one per drain)",
        commits(&after).saturating_sub(commits(&before))
    );
    let n = pings.len();
    println!(
        "  PING during it ({n} round trips): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&mut pings, 0.5),
        pct(&mut pings, 0.99),
        pct(&mut pings, 1.0)
    );
    let nb = base.len();
    let base99 = pct(&mut base, 0.99);
    println!(
        "  PING before it, while all hosts heartbeat ({nb} round trips): median {:.2} ms, p99 {base99:.2} ms",
        pct(&mut base, 0.5),
    );
    // The loop's own account of its turns (STATE `-- loop`, issue 18).
    for l in after.lines().filter(|l| l.starts_with("-- loop")) {
        println!("  server: {}", l.trim_start_matches("-- "));
    }
    use hbmon::bench_daemon::{figure, summary, Better};
    let (med, p99) = (pct(&mut pings, 0.5), pct(&mut pings, 0.99));
    let (st, nt) = (stored.as_secs_f64(), notified.as_secs_f64());
    figure("bench_outage", "all down events stored", st, "s", Better::Lower);
    figure("bench_outage", "all alerts delivered", nt, "s", Better::Lower);
    figure("bench_outage", "PING p99 during it", p99, "ms", Better::Lower);
    let what = format!("{hosts} hosts silent at once: all down events stored / all alerts delivered, after the silence (`bench_outage`)");
    let res = format!(
        "{st:.2} s / {nt:.2} s ({} server.db commits)",
        commits(&after).saturating_sub(commits(&before))
    );
    summary(&what, &res, "", None);
    let res = format!("{p99:.2} ms (median {med:.2} ms; before it {base99:.2} ms)");
    summary("PING p99 during that outage", &res, "under 5 ms", Some(p99 < 5.0));
    let _ = child.kill();
    let _ = child.wait();
}
