//! Issue 14: server.db has one migration list, and the store thread (not
//! the loop) opens, migrates and reads it. Real daemons on real files,
//! checked with the sqlite3 CLI:
//! - a file made by the build before the list (tests/fixtures/
//!   server-db-v1.sql: version 1, with the notify and host tables made
//!   outside `user_version`) upgrades in place, every row kept;
//! - a file from a newer hbmon is refused, not touched, and said so;
//! - a disk that stalls while the files are opened holds the stores only:
//!   PING, STATE and heartbeats are answered meanwhile, and what was sent
//!   then is answered once it is read;
//! - store failures (a full disk) are counted as refusals in STATE, DUMP
//!   and /metrics.

mod common;
use common::*;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const FIXTURE: &str = include_str!("fixtures/server-db-v1.sql");
/// The fixture's own event, alert and delivery (made for www1 killed).
const OLD_EVENT: &str = "srv-1796146667344-1";

/// `sqlite3 db < script`: the file as the sqlite3 CLI makes it.
fn sqlite_script(db: &Path, script: &str) {
    use std::io::Write;
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let mut c = Command::new("sqlite3")
        .arg(db)
        .stdin(Stdio::piped())
        .spawn()
        .expect("sqlite3 must be installed: make test installs it");
    c.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "sqlite3 script on {}", db.display());
}

/// The fixture's fleet: srv and www1, with its webhook channel (to a port
/// nothing listens on) so the old delivery keeps its channel.
fn fixture_fleet(extra: &str) -> Fleet {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n\
         channel hook webhook http://127.0.0.1:{port}/hook?host={{HOST}} method=GET\n\
         user ops hook\nalert all heartbeat sick ops\n{extra}"
    );
    let f = Fleet::new(&["srv", "www1"], &work, "");
    sqlite_script(&f.hosts[0].vardir().join("server.db"), FIXTURE);
    f
}

fn events(srv: &Host, host: &str, item: &str) -> Vec<Value> {
    let body = srv.body(&format!("CLIENTS {host} {item} 1000"));
    let v: Value = serde_json::from_str(&body).expect("CLIENTS JSON");
    v["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn an_old_server_db_upgrades_in_place_14() {
    let mut f = fixture_fleet("");
    let db = f.hosts[0].vardir().join("server.db");
    assert_eq!(sqlite(&db, "PRAGMA user_version"), "1");
    let before: Vec<String> = ["events", "reports", "hosts", "notify_outbox", "notify_alerts"]
        .iter()
        .map(|t| sqlite(&db, &format!("SELECT count(*) FROM {t}")))
        .collect();
    f.hosts[0].start();
    let www1 = f.hosts[1].name.clone();
    // The saved host table is back: www1 is remembered down, not new.
    f.hosts[0].wait_state(30.0, "www1 remembered down", |s| {
        s.contains(&format!("-- host {www1} down")) && !s.contains("server.db starting")
    });
    assert_eq!(sqlite(&db, "PRAGMA user_version"), "2", "migrated once, in place");
    let old = sqlite(&db, &format!("SELECT count(*) FROM events WHERE id = '{OLD_EVENT}'"));
    assert_eq!(old, "1", "the old event is kept");
    assert!(events(f.server(), &www1, "heartbeat").iter().any(|e| e["id"] == OLD_EVENT));
    assert_eq!(sqlite(&db, "SELECT count(*) FROM reports WHERE host = 'srv.fleet.test'"), "1");
    let alert = sqlite(&db, &format!("SELECT state FROM notify_alerts WHERE host = '{www1}'"));
    assert!(alert.contains("\"level_name\":\"dead\""), "the old alert is kept: {alert}");
    assert_eq!(sqlite(&db, "SELECT count(*) FROM notify_outbox WHERE id = 1"), "1");
    // The first drain may add rows (the server's own events), never lose one.
    for (t, n) in
        ["events", "reports", "hosts", "notify_outbox", "notify_alerts"].iter().zip(&before)
    {
        let now: u64 = sqlite(&db, &format!("SELECT count(*) FROM {t}")).parse().unwrap();
        assert!(now >= n.parse().unwrap(), "{t}: {now} rows, {n} before");
    }
    // Restarted on the migrated file: nothing to do, nothing lost.
    f.hosts[0].stop();
    f.hosts[0].start();
    f.hosts[0].wait_state(30.0, "www1 still down", |s| s.contains(&format!("-- host {www1} down")));
    assert_eq!(sqlite(&db, "PRAGMA user_version"), "2");
    assert_eq!(sqlite(&db, &format!("SELECT count(*) FROM events WHERE id = '{OLD_EVENT}'")), "1");
}

#[test]
fn a_newer_server_db_is_refused_and_left_as_it_is_14() {
    let mut f = Fleet::new(&["srv"], "", "");
    let db = f.hosts[0].vardir().join("server.db");
    sqlite_script(
        &db,
        "CREATE TABLE future(x); INSERT INTO future VALUES(1); PRAGMA user_version=9;",
    );
    let before = std::fs::read(&db).unwrap();
    f.hosts[0].start();
    let st =
        f.hosts[0].wait_state(30.0, "server.db unusable", |s| s.contains("server.db unusable"));
    let line = st.lines().find(|l| l.starts_with("-- server.db unusable")).unwrap();
    assert!(line.contains("schema version 9 is newer than this hbmon knows (2)"), "{line}");
    // The daemon runs on: PING, and EVENTS refused with the reason.
    assert!(f.hosts[0].cmd("PING").contains("PONG"));
    let me = f.hosts[0].name.clone();
    let line = format!(
        "EVENTS {}",
        serde_json::json!({"host": me, "events": [{"id": "n1", "host": me, "item": "x",
            "old_level": null, "new_level": "sick", "old_value": null, "new_value": 1.0,
            "time": 1.0, "message": ""}]})
    );
    let a = cmd_from(Ipv4Addr::LOCALHOST, f.hosts[0].cmd_addr(), &line);
    assert!(a.contains("COMMAND ERROR cannot store"), "{a}");
    f.hosts[0]
        .wait_state(10.0, "the refusal counted", |s| s.contains("-- refused EVENTS store failed "));
    f.hosts[0].stop();
    assert_eq!(std::fs::read(&db).unwrap(), before, "not one byte changed");
    assert!(!db.with_file_name("server.db-wal").exists(), "never opened for writing");
    let log = std::fs::read_to_string(f.hosts[0].dir.join("stderr.log")).unwrap_or_default();
    assert!(log.contains("newer than this hbmon knows"), "the log says why:\n{log}");
}

#[test]
fn a_slow_disk_at_start_does_not_stop_ping_14() {
    let mut f = fixture_fleet("");
    let (stall, hstall) = (f.dir.path().join("stall"), f.dir.path().join("hstall"));
    // Read by the store threads before they open server.db and history.db.
    std::fs::write(&stall, "3\n").unwrap();
    std::fs::write(&hstall, "3\n").unwrap();
    f.hosts[0].env.push(("HBMON_STORE_STALL".into(), stall.display().to_string()));
    f.hosts[0].env.push(("HBMON_FAULT_STORE_STALL".into(), hstall.display().to_string()));
    f.hosts[0].start();
    let (srv_addr, www1) = (f.hosts[0].cmd_addr(), f.hosts[1].name.clone());
    let udp_to = SocketAddr::new(f.hosts[0].ip.into(), f.port);
    // www1's heartbeats, from its own address, while the file is not read.
    let sock = UdpSocket::bind((f.hosts[1].ip, 0)).expect("bind www1's address");
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let clients = std::thread::spawn(move || cmd_from(Ipv4Addr::LOCALHOST, srv_addr, "CLIENTS"));
    let (mut during, mut history_starting) = (Vec::new(), 0);
    for seq in 1.. {
        let acked = hbd_heartbeat_acked(&sock, udp_to, &www1, seq);
        let pong = f.hosts[0].cmd("PING").contains("PONG");
        let st = f.hosts[0].cmd("STATE");
        if !st.contains("-- server.db starting") {
            break;
        }
        // Still starting after both answers: they came before the open.
        during.push((acked, pong));
        history_starting += st.contains("-- history.db starting") as usize;
    }
    assert!(during.len() >= 2, "only {} rounds during the stalled start", during.len());
    assert!(during.iter().all(|(a, p)| *a && *p), "unanswered during the start: {during:?}");
    assert!(history_starting >= 1, "the client's history.db was never seen starting");
    // CLIENTS asked meanwhile waited for the reports read at start.
    let c = clients.join().unwrap();
    let body = hbmon::command::parse_answer(&c).unwrap_or_else(|e| panic!("CLIENTS: {e}: {c}"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert!(v["cdmp"]["srv.fleet.test"]["report"].is_object(), "{body}");
    assert!(v["events"].as_array().unwrap().iter().any(|e| e["id"] == OLD_EVENT), "{body}");
    // www1 was saved down and heard from meanwhile: it is up, and its
    // recovery is an event, as if its heartbeat had come after the read.
    f.hosts[0].wait_state(10.0, "www1 up", |s| s.contains(&format!("-- host {www1} up")));
    let recovered = wait_for(20.0, "www1's recovery event", || {
        let e = events(f.server(), &www1, "heartbeat");
        e.into_iter().find(|e| e["old_level"] == "dead" && e["new_level"] == "fine")
    });
    assert!(recovered["message"].as_str().unwrap().contains("while server.db was read"));
}

#[test]
fn store_failures_are_counted_as_refusals_14() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let mut f = Fleet::new(&["srv"], "", "");
    let var = f.hosts[0].vardir();
    let _tmpfs = Tmpfs::mount(&var, "2m");
    f.hosts[0].start();
    f.hosts[0].wait_state(30.0, "server.db read", |s| {
        s.contains("-- store thread server.db") && !s.contains("server.db starting")
    });
    let filler = fill(&var);
    let me = f.hosts[0].name.clone();
    // Events big enough to need pages the full disk has not got.
    let big = "x".repeat(2000);
    let evs: Vec<Value> = (0..400)
        .map(|i| {
            serde_json::json!({"id": format!("full-{i}"), "host": me, "item": format!("it{i}"),
                "old_level": null, "new_level": "sick", "old_value": null, "new_value": 1.0,
                "time": 1.0, "message": big})
        })
        .collect();
    let line = format!("EVENTS {}", serde_json::json!({"host": me, "events": evs}));
    let a = cmd_from(Ipv4Addr::LOCALHOST, f.hosts[0].cmd_addr(), &line);
    assert!(a.contains("COMMAND ERROR cannot store the events"), "{a}");
    // (The server's own client may have had writes refused too.)
    let st = f.hosts[0]
        .wait_state(10.0, "the refusal counted", |s| s.contains("-- refused EVENTS store failed "));
    let counted = |l: &str| l.rsplit(' ').next().and_then(|n| n.parse::<u64>().ok());
    let n = st.lines().find(|l| l.starts_with("-- refused EVENTS store failed ")).and_then(counted);
    assert!(n.is_some_and(|n| n >= 1), "{st}");
    let failed = st.lines().find(|l| l.starts_with("-- store thread server.db")).unwrap();
    assert!(!failed.contains(" failed 0"), "the store thread counts it too: {failed}");
    let dump: Value = serde_json::from_str(&f.hosts[0].body("DUMP")).expect("DUMP JSON");
    let in_dump = dump["counters"]["refused"]["EVENTS store failed"].as_u64();
    assert!(in_dump >= n, "DUMP says {in_dump:?}, STATE {n:?}: {}", dump["counters"]);
    let clients: Value = serde_json::from_str(&f.hosts[0].body("CLIENTS")).expect("CLIENTS JSON");
    let levels: Vec<String> =
        ["fine", "soso", "sick", "crit", "dead"].iter().map(|s| s.to_string()).collect();
    let text = hbmon::pagemaker::metrics::render(&clients, Some(&dump), &levels);
    let series = "hbmon_commands_refused_total{reason=\"EVENTS store failed\"} ";
    let m = text.lines().find_map(|l| l.strip_prefix(series)?.parse::<f64>().ok());
    assert!(m.is_some_and(|m| m >= 1.0), "{series} not in:\n{text}");
    // Room again: the same events are stored, once.
    std::fs::remove_file(&filler).unwrap();
    let a = cmd_from(Ipv4Addr::LOCALHOST, f.hosts[0].cmd_addr(), &line);
    assert!(a.contains("ok events 400 stored 400"), "{a}");
    f.hosts[0].stop();
}
