//! Issues 14 and 18: a mass outage must not hold the loop. Thousands of
//! work hosts heartbeat (real signed HTB datagrams, so one sender socket
//! speaks for all), then go silent at once; the server judges them down,
//! stores the events (server.db, read here with rusqlite beside the writer)
//! and delivers one webhook alert each to a receiver in this process that
//! answers slowly, through the bounded worker pool.
//!
//! - PING keeps being answered while the down events are still being
//!   stored and their alerts delivered: each answer is followed by a look
//!   at what is done so far, and many answers came while it was not.
//! - Deliveries never run on more threads than the pool's cap: STATE's
//!   `-- workers` lines and /proc/PID/task are read all along.

mod common;
use common::*;
use hbmon::wire::Value;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const KEY: &str = "outage-test-key";

fn heartbeat(name: &str, seq: i64) -> Vec<u8> {
    hbmon::wire::encode_signed(
        "HTB",
        &[
            ("name", Value::Str(name.into())),
            ("ts", Value::Float(hbmon::clock::Now::wall_now())),
            ("seq", Value::Int(seq)),
            ("interval", Value::Float(4.0)),
            ("bid", Value::Int(7)),
            ("ver", Value::Str("test".into())),
        ],
        Some(KEY.as_bytes()),
    )
}

/// A webhook receiver counting `new=dead` alerts, each answered after
/// `delay` (a slow channel keeps deliveries in flight).
fn receiver(delay: Duration) -> (u16, Arc<AtomicU64>) {
    let rx = tiny_http::Server::http("127.0.0.1:0").expect("receiver");
    let port = rx.server_addr().to_ip().map(|a| a.port()).expect("receiver port");
    let alerts = Arc::new(AtomicU64::new(0));
    let a = alerts.clone();
    std::thread::spawn(move || {
        for req in rx.incoming_requests() {
            // sleep: the slow channel under test (each delivery takes this long)
            std::thread::sleep(delay);
            if req.url().contains("new=dead") {
                a.fetch_add(1, Ordering::SeqCst);
            }
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        }
    });
    (port, alerts)
}

struct Outage {
    f: Fleet,
    names: Vec<String>,
    alerts: Arc<AtomicU64>,
    sock: UdpSocket,
    to: SocketAddr,
}

/// A server whose work has `n` hosts (never started: this process sends
/// their heartbeats) and one alert per host going dead; `conf` is added.
fn outage(n: usize, delay: Duration, conf: &str) -> Outage {
    let (rport, alerts) = receiver(delay);
    let mut work = format!(
        "ival_make_state 1h\nival_heartbeat 4s\ngrace 4s\nmissed 3\ndetector fixed\n\
         flap 1000000 1s\nstorm 1000000 1s\nival_renotify 1h\nival_check_work 1h\n\
         channel hook webhook http://127.0.0.1:{rport}/hook?host={{HOST}}&new={{NEW}} method=GET\n\
         user ops hook\nalert all heartbeat dead ops\n"
    );
    let names: Vec<String> = (0..n).map(|i| format!("h{i}.outage.test")).collect();
    for (i, name) in names.iter().enumerate() {
        // Addresses nobody listens on: with the fixed detector nothing calls them.
        let ip = Ipv4Addr::new(127, 251, (i / 250) as u8, (i % 250 + 1) as u8);
        work.push_str(&format!("host {name} h{i} {ip}\n"));
    }
    let mut f = Fleet::new(&["srv"], &work, &format!("key {KEY}\n{conf}"));
    f.hosts[0].start_within(120.0);
    let to = SocketAddr::new(f.hosts[0].ip.into(), f.port);
    let sock = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("sender");
    sock.set_nonblocking(true).expect("nonblocking");
    Outage { f, names, alerts, sock, to }
}

impl Outage {
    /// One heartbeat from every host (ACKs read and dropped as they come).
    fn round(&self, seq: i64) {
        let mut buf = [0u8; 512];
        for name in &self.names {
            let d = heartbeat(name, seq);
            while self.sock.send_to(&d, self.to).is_err() {
                while self.sock.recv_from(&mut buf).is_ok() {}
                // sleep: the socket buffer is full; let the server catch up
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        while self.sock.recv_from(&mut buf).is_ok() {}
    }

    /// A heartbeat round every 2 s (each host is late only after 8 s of
    /// silence: a debug build on a loaded machine is slow to take 2,000)
    /// until STATE counts every host up.
    fn all_up(&self) {
        let n = self.names.len();
        let t = std::time::Instant::now();
        for seq in 1.. {
            let round = std::time::Instant::now();
            self.round(seq);
            let st = self.f.hosts[0].try_cmd("STATE").unwrap_or_default();
            if up(&st) >= n && seq >= 3 {
                return;
            }
            if t.elapsed() > Duration::from_secs(120) {
                panic!("not every host up: {st}\n{}", self.f.hosts[0].diag());
            }
            // sleep: the pace of the heartbeat rounds
            std::thread::sleep(Duration::from_secs(2).saturating_sub(round.elapsed()));
        }
    }

    fn stored_down(&self, db: &rusqlite::Connection) -> usize {
        db.query_row(
            "SELECT count(DISTINCT host) FROM events WHERE item = 'heartbeat' \
             AND json LIKE '%\"new_level\":\"dead\"%'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap_or(0) as usize
    }
}

/// `-- hosts total N up M ...`: M.
fn up(state: &str) -> usize {
    state
        .lines()
        .find_map(|l| l.strip_prefix("-- hosts total "))
        .and_then(|l| l.split(" up ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// `-- workers notify busy B/C ...`: (B, C).
fn notify_busy(state: &str) -> Option<(usize, usize)> {
    let l = state.lines().find(|l| l.starts_with("-- workers notify busy "))?;
    let (b, c) = l.split_whitespace().nth(4)?.split_once('/')?;
    Some((b.parse().ok()?, c.parse().ok()?))
}

/// `-- workers size N threads T ...`: (N, T).
fn pool(state: &str) -> Option<(usize, usize)> {
    let l = state.lines().find(|l| l.starts_with("-- workers size "))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    Some((w.get(3)?.parse().ok()?, w.get(5)?.parse().ok()?))
}

#[test]
fn ping_is_answered_while_a_mass_outage_is_stored_and_notified() {
    let n = 2000;
    // One delivery at a time (a pool of 4 gives notifications 1), 4 ms
    // each: the alerts take 8 s or more to go out.
    let o = outage(n, Duration::from_millis(4), "workers 4\n");
    o.all_up();
    let srv = &o.f.hosts[0];
    let db = rusqlite::Connection::open(srv.vardir().join("server.db")).expect("server.db");
    let _ = db.busy_timeout(Duration::from_secs(5));
    // Silence: no more heartbeats. PING until every alert is delivered.
    let (mut pings, mut storing, mut notifying) = (0, 0, 0);
    let mut first_down_seen = false;
    wait_for(300.0, "every alert delivered", || {
        let a = srv.cmd("PING");
        assert!(a.contains("PONG"), "PING during the outage: {a}");
        pings += 1;
        // Read after the answer: what was still to do when it came.
        let stored = o.stored_down(&db);
        let alerted = o.alerts.load(Ordering::SeqCst) as usize;
        first_down_seen |= stored > 0;
        if first_down_seen && stored < n {
            storing += 1;
        }
        if first_down_seen && alerted < n {
            notifying += 1;
        }
        (alerted >= n).then_some(())
    });
    eprintln!("{pings} PINGs: {storing} while storing, {notifying} while notifying");
    assert_eq!(o.stored_down(&db), n, "every down event stored");
    assert!(notifying >= 20, "only {notifying} PINGs answered while alerts went out");
    assert!(storing >= 1, "no PING answered while the down events were being stored");
    // The loop's own account of its turns is in STATE.
    let st = srv.cmd("STATE");
    let turns = st.lines().find(|l| l.starts_with("-- loop turns ")).expect("-- loop line");
    assert!(st.contains("-- loop timers runs "), "{st}");
    assert!(st.contains("-- loop results runs "), "{st}");
    eprintln!("{}", st.lines().filter(|l| l.starts_with("-- loop")).collect::<Vec<_>>().join("\n"));
    assert!(
        turns.split_whitespace().nth(3).and_then(|t| t.parse::<u64>().ok()).is_some(),
        "{turns}"
    );
}

#[test]
fn deliveries_never_exceed_the_pools_cap() {
    let n = 200;
    // A pool of 8 lets 4 deliveries run at once; each takes 100 ms, so
    // 200 alerts keep every notify worker busy for seconds.
    let o = outage(n, Duration::from_millis(100), "workers 8\nworkers_queue 1000\n");
    o.all_up();
    let srv = &o.f.hosts[0];
    let pid = srv.pid().expect("pid");
    let tasks = || std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0);
    let base = tasks();
    let (mut at_cap, mut most_tasks) = (0, 0);
    wait_for(120.0, "every alert delivered", || {
        let st = srv.cmd("STATE");
        let (busy, cap) = notify_busy(&st).expect("-- workers notify line");
        let (size, threads) = pool(&st).expect("-- workers size line");
        assert_eq!((size, cap), (8, 4), "{st}");
        assert!(busy <= cap, "{busy} deliveries running, cap {cap}\n{st}");
        assert!(threads <= size, "{threads} workers, size {size}\n{st}");
        most_tasks = most_tasks.max(tasks());
        if busy == cap {
            at_cap += 1;
        }
        (o.alerts.load(Ordering::SeqCst) as usize >= n).then_some(())
    });
    // The cap was reached (so the bound above was tested), and the process
    // never had more threads than its start plus the pool's size.
    assert!(at_cap >= 3, "notify workers at their cap only {at_cap} times");
    assert!(most_tasks <= base + 8, "{most_tasks} threads (started with {base})");
}
