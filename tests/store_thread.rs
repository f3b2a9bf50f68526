//! Issue 14: the client's history.db belongs to its store thread, and
//! probes that read a mount point run off the loop. With the debug build's
//! fault hooks (`HBMON_FAULT_STORE_STALL`: the store thread stops for a
//! while; `HBMON_FAULT_HANG_MOUNT`: statvfs under a prefix never returns)
//! the loop goes on: PING is answered, heartbeats are ACKed, the round is
//! stored; afterwards nothing is lost or stored twice (sqlite3 CLI).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;
use std::time::Instant;

/// Times of an item's samples, oldest first.
fn sample_times(db: &Path, item: &str) -> Vec<i64> {
    let q = format!(
        "SELECT s.t FROM samples s JOIN items i ON i.id = s.item WHERE i.name = '{item}' ORDER BY s.t"
    );
    sqlite_ro(db, &q).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

fn wall() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn read_time(p: &Path) -> Option<f64> {
    std::fs::read_to_string(p).ok()?.trim().parse().ok()
}

fn events(srv: &Host, host: &str, item: &str) -> Vec<Value> {
    let body = srv.body(&format!("CLIENTS {host} {item} 1000"));
    let v: Value = serde_json::from_str(&body).expect("CLIENTS JSON");
    v["events"].as_array().cloned().unwrap_or_default()
}

fn client_dump(h: &Host) -> Value {
    let v: Value = serde_json::from_str(&h.body("DUMP")).expect("DUMP JSON");
    v["client"].clone()
}

fn solo(work: &str, env: (&str, String)) -> Fleet {
    let mut f = Fleet::new(&["solo"], work, "");
    f.hosts[0].env.push((env.0.to_string(), env.1));
    f.hosts[0].start();
    f
}

#[test]
fn a_stalled_store_thread_stops_neither_ping_nor_heartbeats_and_loses_nothing_14() {
    let f0 = Fleet::new(&["solo"], "", "");
    let proc_name = format!("hst{}x{}", f0.net[0], f0.net[1]);
    drop(f0);
    let trigger_dir = tempfile::tempdir().unwrap();
    let trigger = trigger_dir.path().join("stall");
    let work = format!(
        "ival_make_state 1s\nival_heartbeat 1s\nget all uptime proc:{proc_name}\nfit proc:{proc_name} sick <1\n"
    );
    let f = solo(&work, ("HBMON_FAULT_STORE_STALL", trigger.display().to_string()));
    let h = &f.hosts[0];
    // The store threads open their files once the daemon answers.
    h.wait_state(30.0, "the databases open", |s| !s.contains(".db starting ("));
    let item = format!("proc:{proc_name}");
    let db = h.vardir().join("history.db");
    // Settled: rounds stored, the first event (no such process: sick) is
    // on the server and gone from the outbox.
    wait_for(30.0, "first event acked", || {
        let ev = events(h, &h.name, &item);
        let outbox = sqlite_ro(&db, "SELECT count(*) FROM outbox");
        (ev.len() == 1 && outbox.trim() == "0" && sample_times(&db, "uptime").len() >= 2)
            .then_some(())
    });
    let acked0 = client_dump(h)["heartbeats"]["acked"].as_u64().expect("acked count");

    std::fs::write(&trigger, "3").unwrap();
    let start_file = trigger.with_extension("start");
    let start = wait_for(20.0, "stall start", || read_time(&start_file));
    // A level change during the stall: its event waits in the queue.
    let tmp = tempfile::tempdir().unwrap();
    let _p = NamedProc::start(tmp.path(), &proc_name);
    let end_file = trigger.with_extension("end");
    let (mut pongs, mut acks, mut early_event, mut queued) = (Vec::new(), Vec::new(), None, 0);
    let t0 = Instant::now();
    while read_time(&end_file).is_none() && t0.elapsed().as_secs() < 60 {
        if h.try_cmd("PING").is_some_and(|a| a.contains("PONG")) {
            pongs.push(wall());
        }
        let d = client_dump(h);
        let got = wall();
        acks.push((got, d["heartbeats"]["acked"].as_u64().unwrap_or(0)));
        queued = queued.max(d["store_queue"].as_u64().unwrap_or(0));
        if events(h, &h.name, &item).len() > 1 && early_event.is_none() {
            early_event = Some(wall());
        }
    }
    let end = read_time(&end_file).expect("the stall ended");
    assert!(end - start >= 2.9, "the hook stalled {start}..{end}");
    let during: Vec<&f64> = pongs.iter().filter(|t| **t > start && **t < end).collect();
    assert!(during.len() >= 3, "PINGs answered during the stall {start}..{end}: {pongs:?}");
    assert!(
        during.iter().any(|t| **t > start + 2.0),
        "PING answered late in the stall too: {pongs:?} (stall {start}..{end})"
    );
    let acked_in_stall = acks.iter().filter(|(t, _)| *t < end).map(|a| a.1).max().unwrap_or(0);
    assert!(
        acked_in_stall > acked0,
        "heartbeats ACKed before the stall ended ({acked0} before, {acks:?}, end {end})"
    );
    assert!(queued >= 1, "requests waited for the stalled thread");
    // Durability: the event was not sent before it was in the outbox.
    if let Some(t) = early_event {
        assert!(
            t > end,
            "the server had the stall's event at {t}, before the stall ended at {end}"
        );
    }

    // Afterwards: the event arrives exactly once, the outbox empties, and
    // the rounds taken during the stall are all stored.
    let ev = wait_for(30.0, "the stall's event on the server", || {
        let ev = events(h, &h.name, &item);
        (ev.len() >= 2 && sqlite_ro(&db, "SELECT count(*) FROM outbox").trim() == "0").then_some(ev)
    });
    let ids: Vec<&str> = ev.iter().filter_map(|e| e["id"].as_str()).collect();
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "an event stored twice: {ev:?}");
    assert_eq!(
        ev.iter().filter(|e| e["new_level"] == "fine").count(),
        1,
        "the stall's event exactly once: {ev:?}"
    );
    wait_for(20.0, "rounds after the stall stored", || {
        (sample_times(&db, "uptime").last().copied().unwrap_or(0) as f64 > end + 1.0).then_some(())
    });
    let times = sample_times(&db, "uptime");
    let in_stall = times.iter().filter(|t| (**t as f64) >= start.floor() && (**t as f64) < end);
    assert!(in_stall.count() >= 2, "rounds of the stall stored at their time: {times:?}");
    for w in times.windows(2).filter(|w| w[1] as f64 >= start - 2.0 && (w[0] as f64) < end + 2.0) {
        assert!(w[1] - w[0] <= 2, "a round lost around the stall {start}..{end}: {times:?}");
    }
    let dup = sqlite_ro(
        &db,
        "SELECT count(*) FROM (SELECT 1 FROM samples GROUP BY item, t HAVING count(*) > 1)",
    );
    assert_eq!(dup.trim(), "0");
}

#[test]
fn a_hung_mount_gives_its_item_an_error_and_the_round_goes_on_14() {
    let f0 = Fleet::new(&["solo"], "", "");
    let hung = f0.dir.path().join("nfs");
    drop(f0);
    let item = format!("disk_used:{}", hung.display());
    let work =
        format!("ival_make_state 1s\nget all uptime disk_used:/ {item}\ntimeout {item} 2s\n");
    let f = solo(&work, ("HBMON_FAULT_HANG_MOUNT", hung.display().to_string()));
    let h = &f.hosts[0];
    h.wait_state(30.0, "the databases open", |s| !s.contains(".db starting ("));
    let st = h.wait_state(30.0, "the hung item's error", |s| {
        item_line(s, &item).is_some_and(|l| l.contains("no answer within"))
    });
    assert!(item_line(&st, &item).is_some_and(|l| l.contains(" dead")), "{st}");
    // The rest of the round is stored on time meanwhile: uptime and the
    // healthy mount keep their 1 s cadence while the hung probe waits.
    let db = h.vardir().join("history.db");
    let (u0, d0) = (sample_times(&db, "uptime").len(), sample_times(&db, "disk_used:/").len());
    wait_for(30.0, "more rounds stored", || {
        let (u, d) = (sample_times(&db, "uptime").len(), sample_times(&db, "disk_used:/").len());
        (u >= u0 + 3 && d >= d0 + 3).then_some(())
    });
    let times = sample_times(&db, "uptime");
    let span = (times.last().unwrap() - times[0]) as usize;
    assert!(times.len() + 2 >= span, "uptime samples {} over {span}s", times.len());
    assert!(sample_times(&db, &item).is_empty(), "no value for the hung mount");
    // One thread waits on the hung mount, not one per round.
    let pid = h.pid().expect("pid");
    let jobs = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|c| c.trim() == "hbmon-job")
        .count();
    assert!(jobs <= 2, "{jobs} job threads after many rounds on a hung mount");
    let d = client_dump(h);
    let running: Vec<&str> =
        d["running"].as_array().unwrap().iter().filter_map(|r| r.as_str()).collect();
    assert!(running.contains(&item.as_str()), "{running:?}");
    assert!(h.cmd("PING").contains("PONG"));
}

/// The server's copy of this host's last REPORT: (its time, the item's level).
fn reported(h: &Host, item: &str) -> Option<(f64, String)> {
    let v: Value = serde_json::from_str(&h.body(&format!("CLIENTS {}", h.name))).ok()?;
    let r = &v["hosts"][&h.name]["report"];
    Some((r["time"].as_f64()?, r["items"][item]["level"].as_str()?.to_string()))
}

#[test]
fn a_report_says_what_the_history_has_14() {
    let f0 = Fleet::new(&["solo"], "", "");
    let proc_name = format!("hsr{}x{}", f0.net[0], f0.net[1]);
    drop(f0);
    let trigger_dir = tempfile::tempdir().unwrap();
    let trigger = trigger_dir.path().join("stall");
    let work = format!(
        "ival_make_state 1s\nival_send_report 1h\nget all uptime proc:{proc_name}\nfit proc:{proc_name} sick <1\n"
    );
    let f = solo(&work, ("HBMON_FAULT_STORE_STALL", trigger.display().to_string()));
    let h = &f.hosts[0];
    // The store threads open their files once the daemon answers.
    h.wait_state(30.0, "the databases open", |s| !s.contains(".db starting ("));
    let item = format!("proc:{proc_name}");
    // The first REPORT can leave before the first round is stored (and the
    // next is an hour away): ask for one until the stored sick level is in it.
    wait_for(30.0, "the server has a sick report", || {
        let got = reported(h, &item).filter(|r| r.1 == "sick").map(|_| ());
        if got.is_none() {
            h.body("SEND 0");
        }
        got
    });
    std::fs::write(&trigger, "8").unwrap();
    let end_file = trigger.with_extension("end");
    wait_for(20.0, "stall start", || read_time(&trigger.with_extension("start")));
    let tmp = tempfile::tempdir().unwrap();
    let _p = NamedProc::start(tmp.path(), &proc_name);
    // The loop has judged the new round (STATE is live) ...
    h.wait_state(20.0, "proc fine in STATE", |s| {
        item_line(s, &item).is_some_and(|l| l.contains(" fine"))
    });
    let asked = wall();
    assert!(h.body("SEND 0").contains("next_send"));
    // ... but a REPORT sent before that round is stored says what is stored.
    let (t, level) = wait_for(20.0, "a report after SEND", || {
        reported(h, &item).filter(|r| r.0 >= asked.floor())
    });
    let end = read_time(&end_file);
    assert!(end.is_none(), "the stall ended before the report came; at {t}");
    assert_eq!(level, "sick", "a REPORT during the stall carried an unstored level");
    wait_for(30.0, "stall end", || read_time(&end_file));
    let asked = wall();
    assert!(h.body("SEND 0").contains("next_send"));
    wait_for(20.0, "a fine report after the stall", || {
        reported(h, &item).filter(|r| r.0 >= asked.floor() && r.1 == "fine")
    });
}

/// The server's copy of this host's last REPORT: (its time, uptime's value).
fn reported_uptime(h: &Host) -> Option<(f64, Option<f64>)> {
    let v: Value = serde_json::from_str(&h.body(&format!("CLIENTS {}", h.name))).ok()?;
    let r = &v["hosts"][&h.name]["report"];
    Some((r["time"].as_f64()?, r["items"]["uptime"]["value"].as_f64()))
}

/// The first REPORT after a start leaves 5 s in; when the disk is slow it
/// goes before the first round is stored, so without values (a REPORT says
/// only what the history has). One more follows as soon as that round is
/// stored, not an `ival_send_report` (here an hour) later.
#[test]
fn a_report_follows_once_the_first_round_is_stored_14() {
    let trigger_dir = tempfile::tempdir().unwrap();
    let trigger = trigger_dir.path().join("stall");
    // Armed before the start: the store thread's first drain stalls.
    std::fs::write(&trigger, "12").unwrap();
    let work = "ival_make_state 1s\nival_send_report 1h\nget all uptime\n";
    let f = solo(work, ("HBMON_FAULT_STORE_STALL", trigger.display().to_string()));
    let h = &f.hosts[0];
    let end_file = trigger.with_extension("end");
    wait_for(20.0, "stall start", || read_time(&trigger.with_extension("start")));
    let (early, value) = wait_for(30.0, "the first report", || reported_uptime(h));
    assert!(read_time(&end_file).is_none(), "the stall ended before the first report");
    assert_eq!(value, None, "the first report carried a value the history did not have yet");
    let end = wait_for(30.0, "stall end", || read_time(&end_file));
    // No SEND: the follow-up comes by itself, with the stored value.
    let (t, _) = wait_for(30.0, "a report with values after the stall", || {
        reported_uptime(h).filter(|(t, v)| *t > early && v.is_some())
    });
    assert!(t >= end.floor(), "a report with values at {t}, before the stall ended at {end}");
}
