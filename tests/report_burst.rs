//! Issue 14: REPORTs from many connections at once share the store
//! thread's drains (the loop sends a turn's requests together, the thread
//! takes all that is queued into one transaction), and each is still
//! answered `ok` only once its row is in server.db: right after every
//! answer, the sqlite3 CLI (another process) finds that report's row. A
//! burst sent while the store is stalled (the debug build's
//! `HBMON_STORE_STALL` hook) is stored by a handful of drains, not one each.

mod common;
use common::*;
use std::net::Ipv4Addr;
use std::sync::{Arc, Barrier};

const SENDERS: usize = 24;

fn host(i: usize) -> String {
    format!("b{i}.burst.test")
}

/// `n` of the STATE line `-- store thread server.db ... <what> n ...`.
fn store_counter(state: &str, what: &str) -> u64 {
    let line = state
        .lines()
        .find(|l| l.starts_with("-- store thread server.db"))
        .unwrap_or_else(|| panic!("no store line in STATE: {state}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == what).unwrap_or_else(|| panic!("{what}: {line}"));
    words[at + 1].parse().unwrap_or_else(|_| panic!("{what}: {line}"))
}

/// Sends one REPORT per host at once (each from its own connection, all
/// released together); each sender checks server.db for its row as soon
/// as its answer is in. Returns the answers that were not `ok`, and the
/// reports whose row was missing or older when their answer came.
fn burst(srv: &Host, round: &str) -> Vec<String> {
    let db = srv.vardir().join("server.db");
    let go = Arc::new(Barrier::new(SENDERS));
    let threads: Vec<_> = (0..SENDERS)
        .map(|i| {
            let (go, db, addr, round) = (go.clone(), db.clone(), srv.cmd_addr(), round.to_string());
            std::thread::spawn(move || {
                let mark = format!("{round}-{i}");
                let body = serde_json::json!({"host": host(i), "time": 1.0, "items": {
                    "burst": {"value": i as f64, "level": "fine", "message": mark, "time": 1.0}}});
                go.wait();
                let a = cmd_from(Ipv4Addr::LOCALHOST, addr, &format!("REPORT {body}"));
                if !a.contains(&format!("ok report from {}", host(i))) {
                    return Some(format!("{}: {a}", host(i)));
                }
                let q = format!(
                    "SELECT count(*) FROM reports WHERE host='{}' AND json LIKE '%\"{mark}\"%'",
                    host(i)
                );
                let n = sqlite_ro(&db, &q);
                (n != "1")
                    .then(|| format!("{}: answered ok, but its row is not stored ({n})", host(i)))
            })
        })
        .collect();
    threads.into_iter().filter_map(|t| t.join().expect("sender")).collect()
}

#[test]
fn a_burst_of_reports_is_stored_before_each_answer_and_shares_drains_14() {
    let mut extra = "ival_check_work 1h\n".to_string();
    let net = unique_net();
    for i in 0..SENDERS {
        extra.push_str(&format!("host {} b{i} 127.{}.{}.{}\n", host(i), net[0], net[1], 100 + i));
    }
    let mut f = Fleet::new(&["srv"], &extra, "");
    let stall = f.dir.path().join("stall");
    f.hosts[0].env.push(("HBMON_STORE_STALL".into(), stall.display().to_string()));
    f.hosts[0].start();
    let srv = &f.hosts[0];

    // Twice: the second burst replaces every row the first one stored.
    for round in ["one", "two"] {
        let bad = burst(srv, round);
        assert!(bad.is_empty(), "round {round}: {bad:#?}");
    }

    // Into a stall: all of them queue, and the drain after it takes them
    // together (a few more drains at most, for requests of the server's
    // own timers meanwhile), each still answered after its commit.
    let before = store_counter(
        &srv.wait_state(30.0, "the store idle", |s| s.contains(" queued 0 ")),
        "drains",
    );
    std::fs::write(&stall, "4\n").expect("arm the stall");
    srv.wait_state(10.0, "the store stalling", |s| s.contains(" stalling\n"));
    let addr = srv.cmd_addr();
    let stalled = std::thread::spawn({
        let srv_state = move || cmd_from(Ipv4Addr::LOCALHOST, addr, "STATE");
        move || {
            wait_for(30.0, "the burst queued during the stall", || {
                let s = srv_state();
                (store_counter(&s, "queued") >= SENDERS as u64).then_some(s.contains(" stalling\n"))
            })
        }
    });
    let bad = burst(srv, "stalled");
    assert!(bad.is_empty(), "the burst into the stall: {bad:#?}");
    assert!(stalled.join().expect("STATE watcher"), "the stall ended before the burst was queued");
    let after = store_counter(
        &srv.wait_state(30.0, "the store idle", |s| s.contains(" queued 0 ")),
        "drains",
    );
    assert!(
        after - before <= 3,
        "{SENDERS} REPORTs queued in a stall took {} drains (one each would be {SENDERS})",
        after - before
    );
}
