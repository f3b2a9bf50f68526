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
    rig_on(tempfile::tempdir().unwrap(), work, stall)
}

/// The store on `dir/server.db` (made or not beforehand).
fn rig_on(dir: tempfile::TempDir, work: &ServerWork, stall: Option<&str>) -> Rig {
    let path = dir.path().join("server.db");
    let open = Open {
        path: path.clone(),
        work: Box::new(work.clone()),
        levels: levels(),
        intervals: Intervals::default(),
        dash: None,
        host: "srv.x".into(),
    };
    let poll = mio::Poll::new().unwrap();
    let waker = Arc::new(mio::Waker::new(poll.registry(), mio::Token(0)).unwrap());
    let (tx, done) = channel();
    let hook = stall.map(|secs| {
        let p = dir.path().join("stall");
        std::fs::write(&p, secs).unwrap();
        p
    });
    let store = Store::spawn_with(open, Wake::new(tx, waker), hook).unwrap();
    Rig { store, done, path, _poll: poll, _dir: dir }
}

impl Rig {
    /// The next `n` answers, in order (the start's `Started` left out).
    fn answers(&self, n: usize) -> Vec<Answer> {
        let mut out = Vec::new();
        while out.len() < n {
            match self.done.recv_timeout(Duration::from_secs(60)) {
                Ok(Done::Store(a)) => out.extend(a.into_iter().filter(|a| !started(a))),
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
    r.store.flush();
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
    r.store.flush();
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
    let (text, work_file) = (report.body.to_string(), r.path.with_file_name("a.x.json"));
    r.store.send(Req::Report { host: "a.x".into(), report, text, work_file, ticket: 1 });
    r.store.send(Req::Ack { ticket: 2, host: "a.x".into(), item: "cpu".into() });
    r.store.flush();
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

fn started(a: &Answer) -> bool {
    matches!(a, Answer::Started)
}

impl Rig {
    /// Waits for the start's answer and takes what it read.
    fn started(&self) -> std::result::Result<Started, String> {
        match self.done.recv_timeout(Duration::from_secs(60)) {
            Ok(Done::Store(a)) => assert!(a.first().is_some_and(started), "{a:?}"),
            Ok(_) => panic!("not a store answer"),
            Err(e) => panic!("no answer from the store thread: {e}"),
        }
        self.store.take_started().expect("taken once")
    }
}

#[test]
fn the_thread_opens_and_reads_server_db_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    {
        let c = crate::server::db::open(&dir.path().join("server.db")).unwrap().conn;
        let r = Report { time: 5.0, ip: "127.0.0.1".into(), body: json!({"items": {}}) };
        fleet::store_report(&c, "a.x", r.time, &r.ip, &r.body.to_string()).unwrap();
        fleet::store_events(&c, &[ev("a.x", "1", "sick")], 5.0).unwrap();
    }
    let mut r = rig_on(dir, &alerting_work(), None);
    // Sent before the thread has opened anything: answered after.
    events(&mut r, 7, vec![ev("b.x", "2", "sick")]);
    let st = r.started().expect("opened");
    assert_eq!(st.reports.keys().collect::<Vec<_>>(), ["a.x"]);
    let open: Vec<_> = st.open.keys().cloned().collect();
    assert_eq!(open, [("a.x".to_string(), "cpu_load".to_string())]);
    assert!(st.notice.is_none());
    let a = r.answers(1);
    assert!(matches!(a[0], Answer::Events { ticket: 7, new: Some(1), .. }), "{a:?}");
    assert_eq!(r.shared_events(), 2, "the count read at start, plus the new one");
}

#[test]
fn an_unusable_file_is_left_alone_and_every_request_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.db");
    Connection::open(&path).unwrap().execute_batch("PRAGMA user_version=99").unwrap();
    let before = std::fs::read(&path).unwrap();
    let mut r = rig_on(dir, &alerting_work(), None);
    let why = r.started().err().expect("refused");
    assert!(why.contains("schema version 99 is newer"), "{why}");
    events(&mut r, 1, vec![ev("a.x", "1", "sick")]);
    r.store.send(Req::Ack { ticket: 2, host: "a.x".into(), item: "cpu".into() });
    r.store.send(Req::Tick { now: 1.0 });
    r.store.flush();
    let a = r.answers(3);
    assert!(matches!(a[0], Answer::Events { ticket: 1, new: None, .. }), "{a:?}");
    assert!(
        matches!(&a[1], Answer::Verb { ticket: 2, answer: crate::answer::Answered::Failed { verb: "ACK", why }, .. }
            if why.starts_with("cannot store: server.db unusable")),
        "{a:?}"
    );
    assert!(matches!(&a[2], Answer::Jobs { jobs, next: None } if jobs.is_empty()), "{a:?}");
    assert_eq!(r.store.shared.failed.load(Ordering::Relaxed), 3);
    assert_eq!(std::fs::read(&r.path).unwrap(), before, "not touched");
}

#[test]
fn only_a_dense_stream_of_requests_is_awaited_spinning_14() {
    let mut p = Pace::default();
    let dense = |p: &mut Pace| {
        for _ in 0..SPIN_AFTER - 1 {
            p.arrived(SPIN_WINDOW / 3, true);
        }
        assert!(!p.spin(), "too few requests in a row");
        p.arrived(SPIN_WINDOW / 3, true);
        assert!(p.spin());
    };
    dense(&mut p);
    p.arrived(SPIN_WINDOW * 2, true);
    assert!(!p.spin(), "one late request ends the run");
    for _ in 0..100 {
        p.arrived(Duration::ZERO, false);
    }
    assert!(!p.spin(), "a stream of the server's own writes never starts a run");
}

#[test]
fn back_to_back_reports_are_taken_without_sleeping_14() {
    let mut r = rig(&ServerWork::default(), None);
    r.started().expect("opened");
    for i in 0..50u64 {
        let report = Report { time: 1.0, ip: "127.0.0.1".into(), body: json!({"items": {}}) };
        let (text, work_file) = (report.body.to_string(), r.path.with_file_name("a.x.json"));
        r.store.send(Req::Report { host: "a.x".into(), report, text, work_file, ticket: i });
        r.store.flush();
        let a = r.answers(1);
        assert!(matches!(a[0], Answer::Report { stored: true, .. }), "{a:?}");
    }
    // Each was sent as soon as the one before was answered: most of them
    // in a run of requests within the window.
    let spun = r.store.shared.spun.load(Ordering::Relaxed);
    assert!(spun > 0, "none of 50 back-to-back requests was taken spinning");
    assert_eq!(r.count("SELECT count(*) FROM reports"), 1);
}
