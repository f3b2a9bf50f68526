//! Issue 14: the server's store thread owns server.db, so a disk that
//! hangs slows the answers that wait on a commit (EVENTS, REPORT), never
//! the loop. The server runs with the debug-build hook
//! `HBMON_STORE_STALL=<file>`: writing `3` in the file stalls the store
//! thread for 3 s. During the stall PING is answered and heartbeats are
//! ACKed (each round checks with a later STATE that the store was still
//! stalling, so the answers came before the stall ended); EVENTS and REPORT
//! sent into the stall are answered only after it; then every event and
//! report is stored, none twice (read with the sqlite3 CLI on server.db),
//! and the server's counters agree.

mod common;
use common::*;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

fn events_line(host: &str, ids: &[String]) -> String {
    let now = hbmon::clock::Now::wall_now();
    let events: Vec<serde_json::Value> = ids
        .iter()
        .map(|id| {
            serde_json::json!({"id": id, "host": host, "item": "stall_item", "old_level": "fine",
                "new_level": "sick", "old_value": null, "new_value": 1.0, "time": now,
                "message": "sent into the stall"})
        })
        .collect();
    format!("EVENTS {}", serde_json::json!({"host": host, "events": events}))
}

#[test]
fn a_stalled_store_slows_commits_not_the_loop_14() {
    let work = "group web www1\nival_make_state 0.5s\nival_send_report 1s\nival_check_work 1h\n\
                probe web flip\nfit probe:flip sick >0\nhbd_senders 100\n";
    // db1 is in the work but never started: the REPORT sent for it into
    // the stall is the only one it gets.
    let mut f = Fleet::new(&["srv", "www1", "db1"], work, "");
    let dir = f.dir.path().to_path_buf();
    let flag = dir.join("flag");
    std::fs::write(&flag, "0\n").unwrap();
    {
        let www1 = f.host("www1");
        let p = www1.vardir().join("probes");
        std::fs::create_dir_all(&p).unwrap();
        let script = p.join("flip");
        std::fs::write(&script, format!("#!/bin/sh\nexit $(cat {})\n", flag.display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let stall = dir.join("stall");
    f.hosts[0].env.push(("HBMON_STORE_STALL".into(), stall.display().to_string()));
    f.hosts[0].start();
    f.hosts[1].start();
    let db1 = f.hosts[2].name.clone();
    let www1 = f.hosts[1].name.clone();
    f.hosts[1].wait_state(30.0, "probe:flip", |s| item_line(s, "probe:flip").is_some());
    f.hosts[0]
        .wait_state(30.0, "a report of www1", |s| s.contains(&format!("-- client {www1} report")));
    let srv_ip = f.hosts[0].ip;
    let udp_to = SocketAddr::new(srv_ip.into(), f.port);
    let sender_ip = Ipv4Addr::new(127, f.net[0], f.net[1], 9);
    let sock = UdpSocket::bind((sender_ip, 0)).expect("bind the heartbeat sender");
    sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut seq = 1;
    assert!(hbd_heartbeat_acked(&sock, udp_to, "hbd1.stall.test", seq), "no ACK at all");

    // The stall, and requests sent into it.
    std::fs::write(&stall, "3\n").unwrap();
    f.hosts[0].wait_state(10.0, "the store stalling", |s| s.contains(" stalling\n"));
    let ids: Vec<String> = (1..=5).map(|i| format!("stall-{i}")).collect();
    let (srv_addr, line) = (f.hosts[0].cmd_addr(), events_line(&www1, &ids));
    let events = std::thread::spawn(move || {
        let a = cmd_from(Ipv4Addr::LOCALHOST, srv_addr, &line);
        (a, Instant::now())
    });
    let report = serde_json::json!({"host": db1, "time": 1.0,
        "items": {"stall_sample": {"value": 42.0, "level": "fine", "time": 1.0}}});
    let rline = format!("REPORT {report}");
    let reported = std::thread::spawn(move || {
        let a = cmd_from(Ipv4Addr::LOCALHOST, srv_addr, &rline);
        (a, Instant::now())
    });
    // The client's own change, and a new hbd sender's event, into the stall too.
    std::fs::write(&flag, "1\n").unwrap();
    let mut during = Vec::new();
    loop {
        seq += 1;
        let acked = hbd_heartbeat_acked(&sock, udp_to, "hbd1.stall.test", seq);
        let pong = f.hosts[0].cmd("PING").contains("PONG");
        // Taken before STATE is asked: the stall was on at some moment after
        // it, so anything answered only after the stall came later than it.
        let asked = Instant::now();
        let state = f.hosts[0].cmd("STATE");
        if !state.contains(" stalling\n") {
            break;
        }
        // The store is still stalled after both answers came: they came during the stall.
        during.push((acked, pong, asked));
        if seq == 3 {
            assert!(hbd_heartbeat_acked(&sock, udp_to, "hbd2.stall.test", 1));
        }
    }
    let (ev_answer, ev_at) = events.join().unwrap();
    let (rep_answer, _) = reported.join().unwrap();
    eprintln!("{} rounds of heartbeat + PING answered during the stall", during.len());
    assert!(during.len() >= 3, "only {} rounds seen during the stall", during.len());
    assert!(
        during.iter().all(|(acked, pong, _)| *acked && *pong),
        "a heartbeat or PING went unanswered during the stall: {during:?}"
    );
    assert!(ev_answer.contains("ok events 5 stored 5"), "{ev_answer}");
    assert!(rep_answer.contains("COMMAND DONE"), "{rep_answer}");
    // EVENTS waited for its commit, which the stall held back.
    let last_during = during.last().map(|d| d.2).unwrap();
    assert!(ev_at > last_during, "EVENTS was answered while the store was stalled");

    // Afterwards: everything stored, once.
    f.hosts[1].wait_state(30.0, "probe:flip sick", |s| {
        item_line(s, "probe:flip").is_some_and(|l| l.contains(" sick "))
    });
    f.hosts[1].wait_state(30.0, "an empty outbox", |s| s.contains("-- outbox 0 queued events\n"));
    let state = f.hosts[0].wait_state(30.0, "the store idle", |s| s.contains(" queued 0 "));
    let db = f.hosts[0].vardir().join("server.db");
    let dups = sqlite(
        &db,
        "SELECT count(*) FROM (SELECT host, id FROM events GROUP BY host, id HAVING count(*) > 1)",
    );
    assert_eq!(dups, "0", "an event stored twice");
    for id in &ids {
        let n =
            sqlite(&db, &format!("SELECT count(*) FROM events WHERE host='{www1}' AND id='{id}'"));
        assert_eq!(n, "1", "{id}");
    }
    let flip = sqlite(
        &db,
        &format!("SELECT count(*) FROM events WHERE host='{www1}' AND item='probe:flip' AND json LIKE '%\"new_level\":\"sick\"%'"),
    );
    assert_eq!(flip, "1", "the client's change sent during the stall");
    let hbd2 = sqlite(&db, "SELECT count(*) FROM events WHERE host='hbd2.stall.test'");
    assert_eq!(hbd2, "1", "the new sender's event raised during the stall");
    let sample = sqlite(&db, &format!("SELECT json FROM reports WHERE host='{db1}'"));
    assert!(sample.contains("\"stall_sample\""), "the report sent during the stall: {sample}");
    // The server's counters agree with the file.
    let total = sqlite(&db, "SELECT count(*) FROM events");
    assert!(state.contains(&format!("-- events stored {total}\n")), "{total}\n{state}");
    let from_clients = sqlite(&db, "SELECT count(*) FROM events WHERE id NOT LIKE 'srv-%'");
    let new = state
        .lines()
        .find_map(|l| l.strip_prefix("-- events received "))
        .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        .expect("events received line");
    assert_eq!(new, from_clients, "{state}");
    assert!(state.contains(" stalls 1"), "{state}");
}
