//! The store thread on a real server.db in a temp dir, read back from a
//! second connection (what another process would see on disk).

use super::*;
use crate::work::model::{AlertRule, Channel, User};
use serde_json::json;
use std::sync::mpsc::Receiver as Rx;

fn levels() -> Vec<Level> {
    crate::work::default_levels()
}

fn alerting_work() -> ServerWork {
    ServerWork {
        users: vec![User { name: "ann".into(), channels: vec!["hook".into()] }],
        channels: vec![Channel {
            name: "hook".into(),
            kind: "webhook".into(),
            target: "http://127.0.0.1:9/hook".into(),
            options: Default::default(),
        }],
        alerts: vec![AlertRule {
            hosts: vec!["*".into()],
            item: "*".into(),
            level: "sick".into(),
            users: vec!["ann".into()],
        }],
        ..Default::default()
    }
}

struct Rig {
    store: Store,
    done: Rx<Done>,
    path: std::path::PathBuf,
    _poll: mio::Poll,
    _dir: tempfile::TempDir,
}

fn rig(work: &ServerWork, stall: Option<&str>) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    let conn = super::super::db::open(&path).unwrap().conn;
    let n = Notifier::new(&conn, work, &levels(), &Intervals::default(), None).unwrap();
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (tx, done) = channel();
    let hook = stall.map(|secs| {
        let p = dir.path().join("stall");
        std::fs::write(&p, secs).unwrap();
        p
    });
    let store = Store::spawn_with(conn, n, Wake::new(tx, waker), hook).unwrap();
    Rig { store, done, path, _poll: poll, _dir: dir }
}

impl Rig {
    /// The next `n` answers, in order.
    fn answers(&self, n: usize) -> Vec<Answer> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.done.recv_timeout(Duration::from_secs(60)) {
                Ok(Done::Store(a)) => out.extend(a),
                Ok(_) => {}
                Err(e) => panic!("no answer from the store thread: {e}"),
            }
        }
        out
    }

    fn count(&self, sql: &str) -> i64 {
        let c = Connection::open(&self.path).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}

fn ev(host: &str, id: &str, level: &str) -> Event {
    Event {
        id: id.into(),
        host: host.into(),
        item: "cpu_load".into(),
        old_level: Some("fine".into()),
        new_level: level.into(),
        old_value: None,
        new_value: Some(1.0),
        time: 1.0,
        message: String::new(),
    }
}

fn events(r: &mut Rig, ticket: Ticket, evs: Vec<Event>) {
    let states = evs.iter().map(|_| "up").collect();
    r.store.send(Req::Events { events: evs, states, now: 1.0, ticket: Some(ticket) });
}

#[test]
fn answered_after_the_commit_and_a_retry_is_stored_once() {
    let mut r = rig(&alerting_work(), None);
    events(&mut r, 1, vec![ev("a.x", "1", "sick"), ev("b.x", "2", "sick")]);
    let a = r.answers(1);
    assert!(matches!(a[0], Answer::Events { ticket: 1, n: 2, new: Some(2) }), "{a:?}");
    // On disk when answered, with the alerts' deliveries (one commit for all).
    assert_eq!(r.count("SELECT count(*) FROM events"), 2);
    assert_eq!(r.count("SELECT count(*) FROM notify_outbox"), 2, "one alert per host");
    events(&mut r, 2, vec![ev("a.x", "1", "sick"), ev("b.x", "2", "sick")]);
    let a = r.answers(1);
    assert!(matches!(a[0], Answer::Events { ticket: 2, n: 2, new: Some(0) }), "{a:?}");
    assert_eq!(r.count("SELECT count(*) FROM events"), 2);
    assert_eq!(r.shared_events(), 2);
}

impl Rig {
    fn shared_events(&self) -> u64 {
        self.store.shared.events_stored.load(Ordering::Relaxed)
    }
}

#[test]
fn an_outage_queued_during_a_stall_is_a_handful_of_commits() {
    let mut r = rig(&alerting_work(), Some("1"));
    let t = Instant::now();
    while !r.store.shared.stalling.load(Ordering::Relaxed) {
        assert!(t.elapsed() < Duration::from_secs(30), "the stall hook did not fire");
        std::thread::sleep(Duration::from_millis(5));
    }
    const HOSTS: usize = 10_000;
    for i in 0..HOSTS {
        events(&mut r, i as Ticket, vec![ev(&format!("h{i}.x"), "1", "sick")]);
    }
    r.store.send(Req::Tick { now: 2.0 });
    let a = r.answers(HOSTS + 1);
    let stored = a.iter().filter(|a| matches!(a, Answer::Events { new: Some(1), .. })).count();
    assert_eq!(stored, HOSTS);
    let jobs = a.iter().find_map(|a| match a {
        Answer::Jobs { jobs, next } => Some((jobs.len(), *next)),
        _ => None,
    });
    assert!(jobs.is_some_and(|(n, next)| n > 0 && next.is_some()), "{jobs:?}");
    let commits = r.store.shared.commits.load(Ordering::Relaxed);
    assert!(commits <= (HOSTS / DRAIN_MAX + 1) as u64, "{commits} commits for {HOSTS} events");
    assert_eq!(r.count("SELECT count(*) FROM events"), HOSTS as i64);
    assert_eq!(r.count("SELECT count(*) FROM notify_outbox"), HOSTS as i64);
    assert!(r.store.state_line().contains(" queued 0 "), "{}", r.store.state_line());
    assert!(r.store.state_line().contains(" stalls 1"), "{}", r.store.state_line());
}

#[test]
fn a_failed_request_does_not_undo_its_drain() {
    let mut r = rig(&ServerWork::default(), Some("0.2"));
    let t = Instant::now();
    while !r.store.shared.stalling.load(Ordering::Relaxed) {
        assert!(t.elapsed() < Duration::from_secs(30), "the stall hook did not fire");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Queued into one drain: a report, then an ACK of no alert (refused).
    let report = Report { time: 1.0, ip: "127.0.0.1".into(), body: json!({"items": {}}) };
    r.store.send(Req::Report { host: "a.x".into(), report, ticket: 1 });
    r.store.send(Req::Ack { ticket: 2, host: "a.x".into(), item: "cpu".into() });
    events(&mut r, 3, vec![ev("a.x", "1", "sick")]);
    let a = r.answers(3);
    assert!(matches!(a[0], Answer::Report { stored: true, .. }), "{a:?}");
    let refused = |a: &Answer| match a {
        Answer::Verb { answer: crate::answer::Answered::Failed { why, .. }, .. } => why.clone(),
        _ => String::new(),
    };
    assert!(refused(&a[1]).contains("no active alert"), "{a:?}");
    assert!(matches!(a[2], Answer::Events { new: Some(1), .. }), "{a:?}");
    assert_eq!(r.count("SELECT count(*) FROM reports"), 1);
    assert_eq!(r.count("SELECT count(*) FROM events"), 1);
}
