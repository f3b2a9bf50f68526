//! Issue 6: one server and three clients as one system: events reach the
//! server exactly once across crashes; CLIENTS, ALLPING, ALLSEND, RELAY;
//! bad input refused and counted.

mod common;
use common::*;
use serde_json::Value;
use std::time::Instant;

/// A `proc:NAME` item per fleet (names differ between concurrent tests);
/// the item is sick while no such process runs.
fn work(flag: &str) -> String {
    format!(
        "ival_make_state 1s\nival_send_report 1h\nival_check_work 1h\nget all proc:{flag}\nfit proc sick <1\n"
    )
}

fn flag_name(f: &Fleet) -> String {
    format!("hbf{}x{}", f.net[0], f.net[1])
}

fn clients(srv: &Host, args: &str) -> Value {
    let body = srv.body(&format!("CLIENTS {args}"));
    serde_json::from_str(&body).expect("CLIENTS is JSON")
}

fn events_for(srv: &Host, host: &str, item: &str) -> Vec<Value> {
    let v = clients(srv, &format!("{host} {item} 1000"));
    v["events"].as_array().cloned().unwrap_or_default()
}

fn outbox(h: &Host) -> Option<u64> {
    let st = h.try_cmd("STATE")?;
    let l = st.lines().find(|l| l.starts_with("-- outbox "))?;
    l.split_whitespace().nth(2)?.parse().ok()
}

#[test]
fn fleet_verbs_and_fitness_changes() {
    let mut f = Fleet::new(&["srv", "www1", "www2", "www3"], "", "");
    let flag = flag_name(&f);
    std::fs::write(
        &f.workconf,
        format!("{}{}", std::fs::read_to_string(&f.workconf).unwrap(), work(&flag)),
    )
    .unwrap();
    f.start_all();
    let item = format!("proc:{flag}");
    // The first level (sick: no such process) is an event on every client.
    for tag in ["www1", "www2", "www3"] {
        let host = format!("{tag}.{DOMAIN}");
        wait_for(10.0, "first events", || {
            (!events_for(f.server(), &host, &item).is_empty()).then_some(())
        });
    }
    // A fitness change on www1 reaches CLIENTS promptly.
    let proc_dir = f.dir.path().to_path_buf();
    let _p = NamedProc::start(&proc_dir, &flag);
    let t = Instant::now();
    let host = format!("www1.{DOMAIN}");
    wait_for(10.0, "the fine event", || {
        events_for(f.server(), &host, &item).iter().any(|e| e["new_level"] == "fine").then_some(())
    });
    eprintln!("fitness change reached CLIENTS after {:?} (make_state 1s)", t.elapsed());
    let v = clients(f.server(), "");
    assert_eq!(v["resp"], "ok clients");
    assert_eq!(v["cdmp"].as_object().map(|m| m.len()), Some(4), "{v}");

    // ALLPING lists all of them, in host order.
    let a = f.server().body("ALLPING");
    let pongs: Vec<&str> = a.lines().filter(|l| l.contains(": PONG from")).collect();
    assert_eq!(pongs.len(), 4, "{a}");
    assert!(
        pongs[0].contains("srv.") && pongs[1].contains("www1.") && pongs[3].contains("www3."),
        "{a}"
    );
    // ... and an unreachable one is listed as such.
    f.host("www3").kill9();
    let a = f.server().body("ALLPING");
    assert!(a.contains("-- www3.fleet.test unreachable"), "{a}");

    // ALLSEND brings fresh reports.
    let before: f64 = clients(f.server(), "www2")["cdmp"]["www2.fleet.test"]["report"]["time"]
        .as_f64()
        .unwrap_or(0.0);
    let a = f.server().body("ALLSEND");
    assert!(a.contains("SEND next_send"), "{a}");
    wait_for(10.0, "a fresh report from www2", || {
        let t =
            clients(f.server(), "www2")["cdmp"]["www2.fleet.test"]["report"]["time"].as_f64()?;
        (t > before).then_some(())
    });
    let rep = clients(f.server(), "www2");
    let items = &rep["cdmp"]["www2.fleet.test"]["report"]["items"];
    assert!(items.to_string().contains(&item), "report lacks the item: {rep}");

    // RELAY: HIST from a client; STOP is not relayed.
    let a = f.server().body("RELAY www1 HIST H");
    let h: Value = serde_json::from_str(a.trim()).unwrap_or_else(|e| panic!("{e}: {a}"));
    assert!(h["resp"].as_str().unwrap_or("").starts_with("ok rows"), "{h}");
    let a = f.server().cmd("RELAY www1 STOP x");
    assert!(a.contains("COMMAND ERROR STOP may not be relayed"), "{a}");
}

#[test]
fn events_survive_crashes_exactly_once() {
    let mut f = Fleet::new(&["srv", "www1"], "", "");
    let flag = flag_name(&f);
    std::fs::write(
        &f.workconf,
        format!("{}{}", std::fs::read_to_string(&f.workconf).unwrap(), work(&flag)),
    )
    .unwrap();
    f.start_all();
    let item = format!("proc:{flag}");
    let host = format!("www1.{DOMAIN}");
    wait_for(10.0, "first event", || {
        (!events_for(f.server(), &host, &item).is_empty()).then_some(())
    });
    let dir = f.dir.path().to_path_buf();

    // 1. Server killed while the client queues events; all arrive once after restart.
    f.host("srv").kill9();
    for _ in 0..2 {
        let p = NamedProc::start(&dir, &flag);
        wait_for(10.0, "fine", || {
            item_line(&f.host("www1").cmd("STATE"), &item)?.contains(" fine ").then_some(())
        });
        drop(p);
        wait_for(10.0, "sick", || {
            item_line(&f.host("www1").cmd("STATE"), &item)?.contains(" sick ").then_some(())
        });
    }
    // STATE counts the outbox after the history thread's write: awaited.
    let queued =
        wait_for(10.0, "4 events in the outbox", || outbox(f.host("www1")).filter(|q| *q >= 4));
    // 2. The client is killed with events in its outbox; restarted, it still has them.
    f.host("www1").kill9();
    f.host("www1").start();
    f.host("srv").start();
    wait_for(20.0, "outbox drained", || (outbox(f.host("www1"))? == 0).then_some(()));
    let evs = events_for(f.server(), &host, &item);
    let ids: std::collections::BTreeSet<String> = evs.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(ids.len(), evs.len(), "duplicates: {evs:?}");
    // Every event of the first run arrived: ids BOOT-1 .. BOOT-(1+queued).
    let first = evs[0]["id"].as_str().unwrap().to_string();
    let boot = first.split('-').next().unwrap();
    let want: std::collections::BTreeSet<String> =
        (1..=1 + queued).map(|n| format!("\"{boot}-{n}\"")).collect();
    let got: std::collections::BTreeSet<String> =
        ids.iter().filter(|i| i.starts_with(&format!("\"{boot}-"))).cloned().collect();
    assert_eq!(got, want, "{evs:?}");

    // 3. The server dies between storing and answering: the retry stores nothing twice.
    f.host("srv").kill9();
    f.host("srv").env = vec![("HBMON_FAULT".into(), "crash_after_store".into())];
    f.host("srv").start();
    let p = NamedProc::start(&dir, &flag);
    let srv_child = f.host("srv").child.as_mut().map(|c| c.id() as i32).unwrap();
    assert!(wait_gone(srv_child, 20.0), "the fault hook did not fire");
    f.host("srv").child = None;
    f.host("srv").env.clear();
    f.host("srv").start();
    wait_for(20.0, "outbox drained again", || (outbox(f.host("www1"))? == 0).then_some(()));
    let evs2 = events_for(f.server(), &host, &item);
    let ids: std::collections::BTreeSet<String> =
        evs2.iter().map(|e| e["id"].to_string()).collect();
    assert_eq!(ids.len(), evs2.len(), "duplicates after the fault: {evs2:?}");
    assert_eq!(evs2.len(), evs.len() + 1, "{evs2:?}");
    drop(p);
}

#[test]
fn bad_reports_and_events_are_refused_and_counted() {
    let mut f = Fleet::new(&["srv", "www1"], "", "");
    f.host("srv").start();
    let srv = f.server().cmd_addr();
    let www1 = f.hosts[1].ip;
    let stranger = std::net::Ipv4Addr::new(127, f.net[0], f.net[1], 77);
    let cases = [
        (www1, "REPORT {not json".to_string(), "bad REPORT JSON"),
        (www1, "EVENTS [1,2".to_string(), "bad EVENTS JSON"),
        (www1, format!("REPORT {{\"host\":\"srv.{DOMAIN}\",\"items\":{{}}}}"), "not that host"),
        (www1, r#"EVENTS {"host":"nobody.example","events":[]}"#.to_string(), "not in the work"),
        (
            stranger,
            format!("REPORT {{\"host\":\"www1.{DOMAIN}\",\"items\":{{}}}}"),
            "access denied",
        ),
    ];
    for (src, line, want) in &cases {
        let a = cmd_from(*src, srv, line);
        assert!(
            a.lines().last().is_some_and(|l| l.starts_with("COMMAND ERROR") && l.contains(want)),
            "{line} -> {a}"
        );
    }
    // Oversized: more than 4 MiB on one line.
    let mut big = String::from("EVENTS ");
    big.push_str(&"x".repeat(5 << 20));
    let a = cmd_from(www1, srv, &big);
    assert!(a.contains("COMMAND ERROR too long"), "{}", &a[..a.len().min(200)]);
    let st = f.server().body("STATE");
    // Each refusal says what it was (bad JSON is not "refused").
    assert!(st.contains("-- refused REPORT bad JSON 1"), "{st}");
    assert!(st.contains("-- refused REPORT wrong sender 1"), "{st}");
    assert!(st.contains("-- refused EVENTS bad JSON 1"), "{st}");
    assert!(st.contains("-- refused EVENTS unknown host 1"), "{st}");
    // A stranger is refused at accept, before its line is read (issue 13 item 6).
    assert!(st.contains("-- refused access denied at accept 1"), "{st}");
    assert!(st.contains("-- events stored 0"), "{st}");
    let v = clients(f.server(), "");
    assert_eq!(v["cdmp"][format!("www1.{DOMAIN}")]["report"], Value::Null, "nothing stored: {v}");
}
