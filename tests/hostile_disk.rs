//! Issue 13, the disk side, through the real binary: a full vardir (a real
//! 2 MiB tmpfs) loses no event, two daemons cannot share a vardir, `hbmon
//! stop` finds a daemon whose pid file is gone, corrupt files are moved
//! aside and reported, secret-holding files are 0600 and URLs are redacted,
//! a slow webhook receiver sees one delivery at a time per alert, and HIST
//! and ZAP on a history ruined under the daemon fail, saying why, counted.

mod common;
use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `probe:flip` external probe exiting with the content of FLAG, so the
/// test flips the item `probe:flip` (sick when 1) by writing a file.
fn install_flip(h: &Host, flag: &Path) {
    let dir = h.vardir().join("probes");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("flip");
    std::fs::write(&p, format!("#!/bin/sh\nexit $(cat {})\n", flag.display())).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const FLIP_WORK: &str = "ival_make_state 1s\nival_send_report 1h\nival_check_work 1h\n\
                         probe all flip\nfit probe:flip sick >0\nflap 1000 1m\nstorm 1000 1s\n";

fn flip(flag: &Path, on: bool) {
    std::fs::write(flag, if on { "1\n" } else { "0\n" }).unwrap();
}

fn wait_level(h: &Host, item: &str, level: &str) -> String {
    h.wait_state(30.0, &format!("{item} {level}"), |s| {
        item_line(s, item).is_some_and(|l| l.split_whitespace().nth(4) == Some(level))
    })
}

fn events(srv: &Host, host: &str, item: &str) -> Vec<Value> {
    let body = srv.body(&format!("CLIENTS {host} {item} 1000"));
    let v: Value = serde_json::from_str(&body).expect("CLIENTS JSON");
    v["events"].as_array().cloned().unwrap_or_default()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0)
}

#[test]
fn full_vardir_keeps_events_13_1() {
    if !is_root() {
        eprintln!("skipped: mounting a 2 MiB tmpfs needs root");
        return;
    }
    let mut f = Fleet::new(&["srv", "www1"], FLIP_WORK, "");
    let flag = f.dir.path().join("flag");
    flip(&flag, false);
    let _tmpfs = Tmpfs::mount(&f.hosts[1].vardir(), "2m");
    install_flip(&f.hosts[1], &flag);
    f.start_all();
    let www1 = format!("www1.{DOMAIN}");
    wait_level(f.host("www1"), "probe:flip", "fine");
    // The server goes away and the vardir fills up: nothing can be sent
    // and nothing written.
    f.host("srv").kill9();
    let filler = fill(&f.hosts[1].vardir());
    let mut want = Vec::new();
    for on in [true, false, true, false] {
        flip(&flag, on);
        let level = if on { "sick" } else { "fine" };
        wait_level(f.host("www1"), "probe:flip", level);
        want.push(level);
    }
    let st = f.host("www1").wait_state(30.0, "events held in memory", |s| {
        s.contains("held in memory") && s.contains("-- store history.db write failing")
    });
    assert!(st.contains("disk is full"), "STATE names the disk:\n{st}");
    // Each refused write is counted with the refused commands (issue 14).
    assert!(st.contains("-- refused history.db write failed "), "{st}");
    let dropped = st.lines().find(|l| l.starts_with("-- store samples dropped")).unwrap_or("");
    let n: u64 = dropped.split_whitespace().nth(4).and_then(|x| x.parse().ok()).unwrap_or(0);
    assert!(n > 0, "samples dropped are counted:\n{st}");
    assert!(item_line(&st, "store").is_some_and(|l| l.contains(" sick")), "{st}");
    // Space and server come back: every kept event reaches the server once.
    f.host("srv").start();
    std::fs::remove_file(&filler).unwrap();
    let got = wait_for(90.0, "the flip events on the server", || {
        let e = events(f.server(), &www1, "probe:flip");
        (e.len() >= want.len()).then_some(e)
    });
    let levels: Vec<&str> = got.iter().filter_map(|e| e["new_level"].as_str()).collect();
    assert_eq!(levels, want, "{got:?}");
    let ids: std::collections::HashSet<&str> =
        got.iter().filter_map(|e| e["id"].as_str()).collect();
    assert_eq!(ids.len(), got.len(), "no event twice: {got:?}");
    // The store item said so, and says it is over.
    // (Sick then fine; the ZAP a minute after start truncating the WAL
    // may free a little room on the full disk and flip it once more.)
    let store = wait_for(60.0, "store sick then fine on the server", || {
        let e = events(f.server(), &www1, "store");
        let l: Vec<&str> = e.iter().filter_map(|e| e["new_level"].as_str()).collect();
        (l.first() == Some(&"sick") && l.last() == Some(&"fine")).then_some(e.clone())
    });
    assert!(store[0]["message"].as_str().unwrap_or("").contains("disk is full"), "{store:?}");
    f.host("www1").wait_state(30.0, "an empty outbox", |s| {
        s.contains("-- outbox 0 queued events\n") && !s.contains("held in memory")
    });
    f.hosts[1].kill9();
}

#[test]
fn second_daemon_on_one_vardir_refused_13_9() {
    let mut f = Fleet::new(&["srv"], "", "");
    f.start_all();
    let first = f.hosts[0].pid().unwrap();
    // Same vardir, its own rundir and port: only the vardir is shared.
    let conf = std::fs::read_to_string(&f.hosts[0].conf).unwrap();
    let other = f.dir.path().join("other");
    let port = free_ports(&[f.hosts[0].ip]);
    let conf2 = conf
        .lines()
        .filter(|l| !l.starts_with("rundir") && !l.starts_with("logdir"))
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + &format!(
            "rundir {o}/run\nlogdir {o}/log\nport {port}\nhb_port {port}\nhttp_port {}\n",
            port + 1,
            o = other.display()
        );
    let c2 = f.dir.path().join("second.conf");
    std::fs::write(&c2, conf2).unwrap();
    for args in [&["start"][..], &["start", "-i"][..]] {
        let out = std::process::Command::new(BIN).arg("-c").arg(&c2).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(&format!("another hbmon (pid {first})")), "{err}");
        assert!(err.contains(&f.hosts[0].vardir().display().to_string()), "{err}");
        assert!(err.contains("vardir.lock"), "{err}");
    }
    assert!(f.hosts[0].cmd("PING").contains("PONG"), "the first one runs on");
}

#[test]
fn stop_without_pid_file_finds_the_daemon_13_10() {
    let f = Fleet::new(&["srv"], "", "");
    let h = &f.hosts[0];
    for delete_secret in [false, true] {
        let out = h.hbmon(&["start"]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let pid = wait_for(10.0, "pid file", || h.pid());
        assert!(h.cmd("PING").contains("PONG"));
        std::fs::remove_file(h.pid_path()).unwrap();
        if delete_secret {
            std::fs::remove_file(h.dir.join("run/hbmon.stp")).unwrap();
        }
        let out = h.hbmon(&["stop"]);
        let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if !out.status.success() {
            signal(pid, libc::SIGKILL);
        }
        assert!(out.status.success(), "secret gone {delete_secret}: {o}{e}");
        assert!(o.contains(&format!("stopped (pid {pid})")), "{o}");
        assert!(wait_gone(pid, 10.0), "pid {pid} still alive");
    }
    let out = h.hbmon(&["stop"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not running"));
}

fn aside_files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect();
    v.sort();
    v
}

#[test]
fn corrupt_history_and_server_db_moved_aside_13_11() {
    let mut f = Fleet::new(
        &["srv"],
        "channel hook webhook http://127.0.0.1:1/x\nuser ops hook\nalert all * sick ops\n",
        "",
    );
    let var = f.hosts[0].vardir();
    std::fs::create_dir_all(&var).unwrap();
    let garbage = b"this is not a database, just garbage\n".repeat(200);
    std::fs::write(var.join("history.db"), &garbage).unwrap();
    std::fs::write(var.join("server.db"), &garbage).unwrap();
    f.start_all();
    let st = f.hosts[0].wait_state(20.0, "both notices", |s| {
        s.contains("-- store history.db was corrupt")
            && s.contains("-- store server.db was corrupt")
    });
    assert!(st.contains("(file is not a database)"), "{st}");
    for name in ["history.db", "server.db"] {
        let aside = aside_files(&var, &format!("{name}.corrupt-"));
        assert_eq!(aside.len(), 1, "{name}: {aside:?}");
        assert_eq!(std::fs::read(&aside[0]).unwrap(), garbage, "the bad file is kept");
        assert!(st.contains(&aside[0].display().to_string()), "STATE names {aside:?}:\n{st}");
    }
    // `start -i` logs to stderr.
    let log = std::fs::read_to_string(f.hosts[0].dir.join("stderr.log")).unwrap();
    assert!(log.contains("history.db was corrupt") && log.contains("server.db was corrupt"));
    // Events say so (alerts follow from them) and the daemon keeps working.
    let me = f.hosts[0].name.clone();
    let srv_ev = wait_for(20.0, "the store:server.db event", || {
        let e = events(f.server(), &me, "store:server.db");
        (!e.is_empty()).then_some(e)
    });
    assert_eq!(srv_ev[0]["new_level"], "sick");
    assert!(srv_ev[0]["message"].as_str().unwrap().contains("every row is lost"), "{srv_ev:?}");
    let cl_ev = wait_for(20.0, "the store event", || {
        let e = events(f.server(), &me, "store");
        (!e.is_empty()).then_some(e)
    });
    assert!(cl_ev[0]["message"].as_str().unwrap().contains("history.db was corrupt"));
    let st = f.hosts[0].wait_state(20.0, "the alerts", |s| s.contains("-- alert "));
    assert!(st.contains("notify pending"), "{st}");
    // Neither item is in any work: a new work leaves both open (the
    // server once closed them as "no longer in the work").
    let lm = |s: &str| s.lines().find(|l| l.starts_with("-- work ")).map(str::to_string);
    let before = lm(&st);
    let conf = std::fs::read_to_string(&f.workconf).unwrap();
    std::fs::write(&f.workconf, format!("{conf}user dev hook\n")).unwrap();
    f.mkwork();
    assert!(f.hosts[0].cmd("WORK_RELOAD").contains("COMMAND DONE"));
    f.hosts[0].wait_state(20.0, "the new work", |s| lm(s) != before);
    for item in ["store", "store:server.db"] {
        let l: Vec<String> = events(f.server(), &me, item)
            .iter()
            .filter_map(|e| e["new_level"].as_str().map(str::to_string))
            .collect();
        assert_eq!(l, ["sick"], "{item} stays open");
    }
    let dump = f.hosts[0].body("DUMP");
    assert!(dump.contains("server.db was corrupt") && dump.contains("history.db was corrupt"));
    f.hosts[0].stop();
    // The fresh files are healthy: a restart finds nothing wrong.
    f.hosts[0].start();
    let st = f.hosts[0].cmd("STATE");
    assert!(!st.contains("was corrupt"), "{st}");
    assert_eq!(aside_files(&var, "history.db.corrupt-").len(), 1);
    // ... and says so: the store:server.db alert gets its recovery.
    wait_for(20.0, "store:server.db back to fine", || {
        let e = events(f.server(), &me, "store:server.db");
        let l: Vec<&str> = e.iter().filter_map(|e| e["new_level"].as_str()).collect();
        (l == ["sick", "fine"]).then_some(())
    });
}

#[test]
fn corrupt_work_cache_is_reported_13_11() {
    let mut f = Fleet::new(&["srv", "www1"], "ival_check_work 1h\n", "");
    let var = f.hosts[1].vardir();
    std::fs::create_dir_all(&var).unwrap();
    std::fs::write(var.join("work.json"), "{\"version\": 1, trunc").unwrap();
    f.start_all();
    let st = f
        .host("www1")
        .wait_state(20.0, "the cache notice", |s| s.contains("-- store cached work is corrupt"));
    assert!(item_line(&st, "store").is_some_and(|l| l.contains(" sick")), "{st}");
    let aside = aside_files(&var, "work.json.corrupt-");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(st.contains(&aside[0].display().to_string()), "{st}");
    // The server's work replaces it.
    wait_for(20.0, "a fresh cache", || var.join("work.json").exists().then_some(()));
    let www1 = format!("www1.{DOMAIN}");
    wait_for(20.0, "the store event on the server", || {
        let e = events(f.server(), &www1, "store");
        e.iter()
            .any(|e| e["message"].as_str().unwrap_or("").contains("cached work is corrupt"))
            .then_some(())
    });
}

#[test]
fn secret_files_0600_and_urls_redacted_13_12() {
    // SAFETY: umask has no preconditions; 022 is what the issue names.
    unsafe { libc::umask(0o022) };
    let dead = free_ports(&[std::net::Ipv4Addr::LOCALHOST]);
    let work = format!(
        "{FLIP_WORK}channel hook webhook http://127.0.0.1:{dead}/h?token=SECRET42&t={{TEXT}}\n\
         user ops hook\nalert all * sick ops\n"
    );
    let mut f = Fleet::new(&["srv", "www1"], &work, "");
    let flag = f.dir.path().join("flag");
    flip(&flag, false);
    for h in &f.hosts {
        install_flip(h, &flag);
    }
    f.mkwork();
    let works = f.hosts[0].vardir().join("works");
    for e in std::fs::read_dir(&works).unwrap().flatten() {
        assert_eq!(mode(&e.path()), 0o600, "mkwork wrote {}", e.path().display());
    }
    f.start_all();
    wait_level(f.host("www1"), "probe:flip", "fine");
    flip(&flag, true);
    wait_level(f.host("www1"), "probe:flip", "sick");
    let srv = &f.hosts[0];
    let log_of = || std::fs::read_to_string(srv.dir.join("stderr.log")).unwrap_or_default();
    wait_for(30.0, "a failed delivery in the log", || {
        log_of().contains("notify: delivery").then_some(())
    });
    let log = log_of();
    let line = log.lines().find(|l| l.contains("notify: delivery")).unwrap();
    assert!(line.contains(&format!("http://127.0.0.1:{dead}/h?***")), "{line}");
    for (what, text) in
        [("log", log.clone()), ("STATE", srv.cmd("STATE")), ("DUMP", srv.cmd("DUMP"))]
    {
        assert!(!text.contains("SECRET42"), "{what} leaks:\n{text}");
    }
    let files = |h: &Host| {
        let v = h.vardir();
        let mut p = vec![v.join("history.db"), v.join("history.db-wal"), v.join("history.db-shm")];
        if h.tag == "srv" {
            p.extend([v.join("server.db"), v.join("server.db-wal"), v.join("server.db-shm")]);
        } else {
            p.push(v.join("work.json"));
        }
        p
    };
    for h in &f.hosts {
        for p in files(h) {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    // Files left world-readable by an older hbmon are tightened at start.
    for h in &mut f.hosts {
        h.stop();
    }
    for h in &f.hosts {
        for p in files(h).into_iter().filter(|p| p.exists()) {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let wf = std::fs::read_dir(&works).unwrap().flatten().next().unwrap().path();
    std::fs::set_permissions(&wf, std::fs::Permissions::from_mode(0o644)).unwrap();
    f.start_all();
    for h in &f.hosts {
        for p in files(h).into_iter().filter(|p| p.exists()) {
            assert_eq!(mode(&p), 0o600, "after restart: {}", p.display());
        }
    }
    assert_eq!(mode(&wf), 0o600);
}

/// A webhook receiver answering each request after 5 s, one thread per
/// request, recording how many requests per (item, channel path) overlap.
struct SlowReceiver {
    port: u16,
    log: Arc<Mutex<Vec<(String, String)>>>,
    overlap: Arc<Mutex<u32>>,
}

impl SlowReceiver {
    fn start() -> SlowReceiver {
        let server = tiny_http::Server::http("127.0.0.1:0").expect("receiver");
        let port = server.server_addr().to_ip().map(|a| a.port()).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let overlap = Arc::new(Mutex::new(0));
        let active: Arc<Mutex<std::collections::HashMap<String, u32>>> = Arc::default();
        let (l, o) = (log.clone(), overlap.clone());
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let (l, o, a) = (l.clone(), o.clone(), active.clone());
                std::thread::spawn(move || {
                    let mut body = String::new();
                    let _ = req.as_reader().read_to_string(&mut body);
                    let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
                    let key = format!("{} {}", v["item"].as_str().unwrap_or("?"), req.url());
                    {
                        let mut a = a.lock().unwrap();
                        let n = a.entry(key.clone()).or_insert(0);
                        *n += 1;
                        let mut o = o.lock().unwrap();
                        *o = (*o).max(*n);
                    }
                    l.lock().unwrap().push((key.clone(), v["kind"].as_str().unwrap_or("?").into()));
                    // sleep: a slow receiver on purpose: the delivery must stay in flight
                    std::thread::sleep(Duration::from_secs(5));
                    *a.lock().unwrap().get_mut(&key).unwrap() -= 1;
                    let _ = req.respond(tiny_http::Response::from_string("ok"));
                });
            }
        });
        SlowReceiver { port, log, overlap }
    }
}

#[test]
fn one_delivery_in_flight_per_alert_and_channel_13_13() {
    let rx = SlowReceiver::start();
    let work = format!(
        "{FLIP_WORK}channel hook webhook http://127.0.0.1:{}/hook\nuser ops hook\nalert all probe:flip sick ops\n",
        rx.port
    );
    let mut f = Fleet::new(&["srv"], &work, "");
    let flag = f.dir.path().join("flag");
    flip(&flag, false);
    install_flip(&f.hosts[0], &flag);
    f.start_all();
    let h = &f.hosts[0];
    wait_level(h, "probe:flip", "fine");
    let t = Instant::now();
    for on in [true, false, true, false] {
        flip(&flag, on);
        wait_level(h, "probe:flip", if on { "sick" } else { "fine" });
        // A reload while a delivery is in flight must not send it again.
        assert!(h.cmd("WORK_RELOAD").contains("COMMAND DONE"));
    }
    eprintln!("4 changes made in {:?}", t.elapsed());
    let kinds = wait_for(90.0, "4 deliveries, all answered", || {
        let st = h.try_cmd("STATE")?;
        let idle = st.contains("-- notify pending 0 held 0 inflight 0");
        let l = rx.log.lock().unwrap().clone();
        (idle && l.len() >= 4).then_some(l)
    });
    let got: Vec<&str> = kinds.iter().map(|(_, k)| k.as_str()).collect();
    assert_eq!(got, ["alert", "recovery", "alert", "recovery"], "{kinds:?}");
    assert_eq!(*rx.overlap.lock().unwrap(), 1, "two requests for one alert at once: {kinds:?}");
}

#[test]
fn corrupt_server_db_keeps_readable_events_13_11() {
    let mut f = Fleet::new(&["srv"], "", "");
    f.start_all();
    f.hosts[0].stop();
    // 3000 events of www-like hosts, then one leaf page of the events table ruined.
    let db = f.hosts[0].vardir().join("server.db");
    let me = f.hosts[0].name.clone();
    let sql = format!(
        "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000) \
         INSERT INTO events(host, id, item, time, received, json) \
         SELECT '{me}', 'old-' || i, 'x', i, i, json_object('id', 'old-' || i, 'host', '{me}', \
         'item', 'x', 'new_level', 'fine', 'time', i) FROM c; PRAGMA wal_checkpoint(TRUNCATE);"
    );
    sqlite(&db, &sql);
    let ps: usize = sqlite(&db, "PRAGMA page_size").parse().unwrap();
    let root: usize =
        sqlite(&db, "SELECT rootpage FROM sqlite_master WHERE name='events'").parse().unwrap();
    let children = root_children(&db, ps, root, 0x05);
    ruin_page(&db, ps, children[children.len() / 2]);
    f.hosts[0].start();
    let st = f.hosts[0].wait_state(20.0, "the notice", |s| s.contains("-- store server.db"));
    let line = st.lines().find(|l| l.starts_with("-- store server.db was corrupt")).unwrap();
    assert!(line.contains("lost: events: rowids "), "{line}");
    let kept: usize = line
        .split("kept rows: ")
        .nth(1)
        .and_then(|r| r.split(", ").find_map(|p| p.strip_prefix("events ")))
        .and_then(|n| n.split(';').next()?.parse().ok())
        .unwrap_or(0);
    let body = f.server().body(&format!("CLIENTS {me} x 10000"));
    let v: Value = serde_json::from_str(&body).unwrap();
    let old = v["events"].as_array().cloned().unwrap_or_default();
    assert!(kept > 2900 && kept < 3000, "{line}");
    assert_eq!(old.len(), kept, "CLIENTS has every kept event: {line}");
    // The lost stretch is exactly what the notice names.
    let ids: BTreeSet<u64> =
        old.iter().filter_map(|e| e["id"].as_str()?.strip_prefix("old-")?.parse().ok()).collect();
    let missing: Vec<u64> = (1..=3000).filter(|i| !ids.contains(i)).collect();
    let (a, b) = (missing[0], missing[missing.len() - 1]);
    assert_eq!(missing.len() as u64, b - a + 1, "one stretch: {missing:?}");
    assert!(line.contains(&format!("rowids {a}-{b} unreadable")), "{a}-{b}: {line}");
}

use std::collections::BTreeSet;

/// The child pages of a b-tree's root, left to right (not the right-most
/// pointer), read from the file; the root must be an interior page of
/// `kind` (0x05 a table's, 0x02 an index's or a WITHOUT ROWID table's).
fn root_children(db: &Path, ps: usize, root: usize, kind: u8) -> Vec<usize> {
    let bytes = std::fs::read(db).unwrap();
    let r = (root - 1) * ps;
    assert_eq!(bytes[r], kind, "the root (page {root}) is an interior page");
    let cells = u16::from_be_bytes([bytes[r + 3], bytes[r + 4]]) as usize;
    (0..cells)
        .map(|i| {
            let ptr = r + 12 + 2 * i;
            let cell = r + u16::from_be_bytes([bytes[ptr], bytes[ptr + 1]]) as usize;
            u32::from_be_bytes(bytes[cell..cell + 4].try_into().unwrap()) as usize
        })
        .collect()
}

/// Overwrites page `n` of the file in place (a running daemon's other
/// pages, which its checkpoints write, are left alone).
fn ruin_page(db: &Path, ps: usize, n: usize) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(db).unwrap();
    f.seek(SeekFrom::Start(((n - 1) * ps) as u64)).unwrap();
    f.write_all(&vec![0xA5; ps]).unwrap();
    f.sync_all().unwrap();
}

/// HIST and ZAP when the client's history cannot be read (issue 14: the
/// store thread answers `failed`): leaf pages of `samples` are ruined
/// under the running daemon, after its start-up check passed. Both verbs
/// answer an error that says why, STATE counts each as a refusal, and the
/// daemon goes on (PING, the next HIST's answer).
#[test]
fn hist_and_zap_on_an_unreadable_history_fail_and_are_counted_14() {
    let mut f = Fleet::new(&["srv"], "", "");
    f.start_all();
    f.hosts[0].wait_state(30.0, "history.db open", |s| !s.contains("history.db starting"));
    f.hosts[0].stop();
    // An hour of one-second samples of an item this host does not probe:
    // its rows fill the middle of the samples b-tree, which the daemon's
    // own rounds (other items, at one end) never rewrite.
    let db = f.hosts[0].vardir().join("history.db");
    let now = hbmon::clock::Now::wall_now() as i64;
    sqlite(
        &db,
        &format!(
            "INSERT INTO items(name) VALUES ('old.x'); \
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3400) \
             INSERT INTO samples(item, t, v) SELECT (SELECT id FROM items WHERE name = 'old.x'), \
             {now} - 3500 + i, i FROM c; PRAGMA wal_checkpoint(TRUNCATE);"
        ),
    );
    let ps: usize = sqlite(&db, "PRAGMA page_size").parse().unwrap();
    let root: usize =
        sqlite(&db, "SELECT rootpage FROM sqlite_master WHERE name='samples'").parse().unwrap();
    let children = root_children(&db, ps, root, 0x02);
    assert!(children.len() >= 4, "old.x spans several leaves: {children:?}");
    let h = &mut f.hosts[0];
    h.start();
    // The start-up check (quick_check) passes: the file is still whole.
    let st = h.wait_state(30.0, "history.db open", |s| !s.contains("history.db starting"));
    assert!(!st.contains("-- store history.db"), "no notice yet: {st}");
    let before = h.cmd("HIST H");
    assert!(before.contains("old.x"), "{before}");
    for &leaf in &children[1..children.len() - 1] {
        ruin_page(&db, ps, leaf);
    }
    // A commit by another connection makes the daemon's next read drop
    // the pages it holds in memory and read the file again.
    sqlite(&db, "INSERT INTO items(name) VALUES ('poke')");
    let hist = h.cmd("HIST H");
    assert!(hist.contains("COMMAND ERROR") && hist.contains("cannot read the history"), "{hist}");
    assert!(hist.contains("malformed"), "the answer says why: {hist}");
    let zap = h.cmd("ZAP");
    assert!(zap.contains("COMMAND ERROR") && zap.contains("malformed"), "{zap}");
    let st = h.wait_state(10.0, "both refusals counted", |s| {
        s.contains("-- refused HIST store failed 1\n")
            && s.contains("-- refused ZAP store failed 1\n")
    });
    assert!(h.cmd("PING").contains("PONG"), "{st}");
    // A usage error is not a store failure.
    let bad = h.cmd("HIST nonsense");
    assert!(bad.contains("COMMAND ERROR"), "{bad}");
    let st = h.wait_state(10.0, "STATE", |_| true);
    assert!(st.contains("-- refused HIST store failed 1\n"), "{st}");
    h.stop();
}
