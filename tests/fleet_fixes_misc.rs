//! Issue 12, items 9, 11, 12, 13 and 15, through the real binary: what a
//! fleet shows (hbd-style senders, ALLPING/ALLSEND parts), fits for
//! perfdata and probe-line items, ZAP of rows older than its last pass,
//! and the small ones (messages, exit codes, log levels, DUMP/CLIENTS
//! fields). Each test's name ends with the item it shows.

mod common;
use common::*;
use hbmon::wire::{encode, Value as W};
use serde_json::Value;
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

fn clients(srv: &Host, args: &str) -> Value {
    let body = srv.body(&format!("CLIENTS {args}"));
    serde_json::from_str(&body).expect("CLIENTS is JSON")
}

fn appended(f: &Fleet, extra: &str) {
    let w = std::fs::read_to_string(&f.workconf).expect("work");
    std::fs::write(&f.workconf, format!("{w}{extra}")).expect("write work");
}

fn executable(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write script");
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
}

fn stderr_of(h: &Host) -> String {
    std::fs::read_to_string(h.dir.join("stderr.log")).unwrap_or_default()
}

/// An hbd-style client (HTB and PLG, not in the work) is shown by CLIENTS
/// and STATE, marked; its first heartbeat is a `heartbeat` event, not one
/// of an item called `new`; an unknown name is an error, not all hosts.
#[test]
fn hbd_style_hosts_show_in_clients_and_state_12_9() {
    let mut f = Fleet::new(&["srv"], "", "");
    f.host("srv").start();
    let srv = f.server();
    let hb = SocketAddr::new(srv.ip.into(), f.port);
    let src = std::net::Ipv4Addr::new(127, f.net[0], f.net[1], 50);
    let sock = UdpSocket::bind((src, 0)).expect("bind sender");
    let name = "hbc1.example.org";
    let htb = encode(
        "HTB",
        &[("name", W::Str(name.into())), ("seq", W::Int(1)), ("interval", W::Float(10.0))],
    );
    let plg = encode(
        "PLG",
        &[
            ("name", W::Str(name.into())),
            ("plugin", W::Str("cpu_monitor".into())),
            ("cpu_percent", W::Float(45.2)),
        ],
    );
    let v = wait_for(10.0, "the stranger in CLIENTS with its PLG item", || {
        sock.send_to(&htb, hb).ok()?;
        sock.send_to(&plg, hb).ok()?;
        let v = clients(srv, "");
        let items = &v["cdmp"][name]["heartbeat"]["items"];
        (items["cpu_monitor.cpu_percent"].as_f64() == Some(45.2)).then_some(v)
    });
    let e = &v["cdmp"][name];
    assert_eq!(e["in_work"], false, "{v}");
    assert_eq!(e["heartbeat"]["state"], "up", "{v}");
    assert_eq!(e["address"], src.to_string(), "{v}");
    assert_eq!(v["cdmp"]["srv.fleet.test"]["in_work"], true, "{v}");
    // STATE: its host line and its PLG items, marked as not in the work.
    let st = srv.body("STATE");
    assert!(
        st.lines()
            .any(|l| l.starts_with(&format!("-- host {name} up"))
                && l.ends_with("(not in the work)")),
        "{st}"
    );
    assert!(
        st.contains(&format!("-- plg {name} cpu_monitor.cpu_percent 45.2 (not in the work)")),
        "{st}"
    );
    // CLIENTS for it answers it alone; for an unknown host, an error.
    let one = clients(srv, name);
    assert_eq!(one["cdmp"].as_object().map(|m| m.len()), Some(1), "{one}");
    let a = srv.cmd("CLIENTS nosuch.fleet.test");
    assert!(
        a.lines().last().is_some_and(|l| l.starts_with("COMMAND ERROR")
            && l.contains("no host or item named 'nosuch.fleet.test'")),
        "{a}"
    );
    // A known item still filters the events of every host.
    assert!(srv.body("CLIENTS heartbeat").contains("ok clients"));
    // Its first heartbeat is a heartbeat event (the log named it `new`).
    let ev = clients(srv, &format!("{name} heartbeat"));
    let evs = ev["events"].as_array().cloned().unwrap_or_default();
    assert!(evs.iter().any(|e| e["item"] == "heartbeat" && e["new_level"] == "fine"), "{ev}");
    let log = stderr_of(srv);
    assert!(log.contains(&format!("event {name} heartbeat - -> fine")), "{log}");
    assert!(!log.contains(&format!("event {name} new ")), "{log}");
}

/// Every line of an ALLPING / ALLSEND answer names the client it came from.
#[test]
fn allping_allsend_name_each_client_12_11() {
    let mut f = Fleet::new(&["srv", "c1", "c2"], "ival_send_report 1h\n", "");
    f.start_all();
    let srv = f.server();
    let a = srv.body("ALLSEND");
    for h in ["srv", "c1", "c2"] {
        let want = format!("{h}.{DOMAIN}: SEND next_send srv.{DOMAIN} ");
        assert!(a.lines().any(|l| l.starts_with(&want)), "want {want:?} in:\n{a}");
    }
    assert_eq!(a.lines().count(), 3, "{a}");
    let a = srv.body("ALLPING");
    for h in ["srv", "c1", "c2"] {
        let want = format!("{h}.{DOMAIN}: PONG from ");
        assert!(a.lines().any(|l| l.starts_with(&want)), "want {want:?} in:\n{a}");
    }
}

/// `fit check_x.load1 ...` (Nagios perfdata) and `fit myprobe.temp ...`
/// (an external probe's line), scoped to a host and a group, judge those
/// items and raise events that reach the server; a bad scoped fit's error
/// keeps its scope.
#[test]
fn fits_for_perfdata_and_probe_items_12_12() {
    let mut f = Fleet::new(&["srv", "c1"], "", "");
    let plugin = f.dir.path().join("check_x");
    executable(&plugin, "#!/bin/sh\necho 'OK - load fine | load1=5.5;; load5=1'\nexit 0\n");
    let probes = f.hosts[1].vardir().join("probes");
    std::fs::create_dir_all(&probes).expect("probes dir");
    executable(&probes.join("myprobe"), "#!/bin/sh\necho 'temp 90'\necho 'fan 1200'\n");
    appended(
        &f,
        &format!(
            "group cs c1\nival_make_state 1s\nival_send_report 1h\nnagios all check_x {}\nprobe c1 myprobe\nfit c1:check_x.load1 sick >4\nfit check_x.load1 sick >50\nfit cs:myprobe.temp crit >80\n",
            plugin.display()
        ),
    );
    f.start_all();
    let c1 = &f.hosts[1];
    let st = c1.wait_state(20.0, "judged family items", |s| {
        item_line(s, "check_x.load1").is_some_and(|l| l.contains(" sick "))
            && item_line(s, "myprobe.temp").is_some_and(|l| l.contains(" crit "))
    });
    assert!(item_line(&st, "myprobe.fan").is_some(), "{st}");
    // The server's own check_x.load1 uses the unscoped fit: fine at 5.5.
    f.server().wait_state(20.0, "srv's check_x.load1", |s| {
        item_line(s, "check_x.load1").is_some_and(|l| l.contains(" fine "))
    });
    let c1n = format!("c1.{DOMAIN}");
    for (item, level) in [("check_x.load1", "sick"), ("myprobe.temp", "crit")] {
        wait_for(20.0, "the event at the server", || {
            let v = clients(f.server(), &format!("{c1n} {item}"));
            let evs = v["events"].as_array().cloned().unwrap_or_default();
            evs.iter().any(|e| e["new_level"] == level).then_some(())
        });
    }
    // A bad scoped fit names its scope in the error.
    appended(&f, "fit zz:myprobe.temp crit >80\n");
    let out = f.server().hbmon(&["mkwork"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("fit zz:myprobe.temp: unknown host or group 'zz'"), "{err}");
}

/// Rows older than a tier written after ZAP's last pass (an import with
/// sqlite3) are downsampled by the next ZAP.
#[test]
fn zap_downsamples_rows_older_than_its_last_pass_12_13() {
    let mut f = Fleet::solo("");
    let h = &mut f.hosts[0];
    h.start();
    let first = h.body("ZAP");
    assert!(first.starts_with("ZAP rows before"), "{first}");
    let db = h.vardir().join("history.db");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    // Twelve rows in one minute three hours ago; the tier there is 1 minute.
    let base = (now - 3 * 3600) / 60 * 60;
    let mut sql = String::from("INSERT OR IGNORE INTO items(name) VALUES('imported');");
    for i in 0..12 {
        sql.push_str(&format!(
            "INSERT INTO samples(item, t, v) SELECT id, {}, {i} FROM items WHERE name='imported';",
            base + i * 5
        ));
    }
    sqlite(&db, &sql);
    let count =
        "SELECT count(*) FROM samples WHERE item=(SELECT id FROM items WHERE name='imported')";
    assert_eq!(sqlite(&db, count), "12");
    let a = h.body("ZAP");
    assert_eq!(sqlite(&db, count), "1", "after {a}");
    let avg = "SELECT t, v FROM samples WHERE item=(SELECT id FROM items WHERE name='imported')";
    assert_eq!(sqlite(&db, avg), format!("{base}|5.5"));
}

/// A client killed and restarted: the server's log says why it is up
/// again (no empty `heartbeat: ` message), DUMP keeps reachability
/// (`down`) and level (`dead`) apart, CLIENTS shows the client's uptime,
/// its restart with a current cached work says nothing about new work,
/// and routine start/stop messages are INFO.
#[test]
fn small_fixes_12_15_heartbeat_messages_dump_level_uptime_log_levels() {
    let mut f = Fleet::new(
        &["srv", "c1"],
        "ival_heartbeat 1\ngrace 1\nmissed 2\nival_send_report 1h\n",
        "",
    );
    f.start_all();
    let c1n = format!("c1.{DOMAIN}");
    f.server().wait_state(20.0, "c1 up", |s| s.contains(&format!("-- host {c1n} up")));
    let up = wait_for(10.0, "c1's uptime in CLIENTS", || {
        clients(f.server(), &c1n)["cdmp"][&c1n]["heartbeat"]["uptime"].as_f64()
    });
    assert!(up > 0.0, "uptime {up}");
    // Its second start finds its cached work current.
    f.host("c1").wait_state(20.0, "work fetched", |s| s.contains("(fetched)"));
    f.host("c1").stop();
    f.host("c1").start();
    f.host("c1").wait_state(20.0, "work fetched again", |s| s.contains("(fetched)"));
    f.server()
        .wait_state(20.0, "c1 up after its restart", |s| s.contains(&format!("-- host {c1n} up")));
    let log = stderr_of(&f.hosts[1]);
    assert!(!log.contains("new work from the server"), "{log}");
    let started = log.lines().find(|l| l.contains("started as")).unwrap_or_default();
    assert!(started.contains(" INFO "), "{log}");
    // Down, then back.
    f.host("c1").kill9();
    f.server().wait_state(30.0, "c1 down", |s| s.contains(&format!("-- host {c1n} down")));
    let dump: Value = serde_json::from_str(&f.server().body("DUMP")).expect("DUMP is JSON");
    let hosts = dump["server"]["udp"]["hosts"].as_array().cloned().unwrap_or_default();
    let h = hosts.iter().find(|h| h["name"] == c1n.as_str()).cloned().unwrap_or_default();
    assert_eq!((h["state"].as_str(), h["level"].as_str()), (Some("down"), Some("dead")), "{h}");
    for h in &hosts {
        let l = h["level"].as_str().unwrap_or_default();
        assert!(["fine", "soso", "sick", "crit", "dead"].contains(&l), "not a level: {h}");
    }
    f.host("c1").start();
    f.server().wait_state(30.0, "c1 up again", |s| s.contains(&format!("-- host {c1n} up")));
    let log = stderr_of(f.server());
    let back = format!("{c1n} heartbeat: heartbeat again after");
    wait_for(10.0, "the log line", || stderr_of(f.server()).contains(&back).then_some(()));
    assert!(!log.lines().any(|l| l.ends_with("heartbeat: ")), "{log}");
}

/// `start` in the background says `started (pid N)`; a second start is a
/// run-time failure (exit 1, not the usage code 2); `HIST` errors say
/// `bad args` once; STATE names bad JSON as such.
#[test]
fn small_fixes_12_15_start_exit_codes_hist_refusals() {
    let f = Fleet::solo("");
    let h = &f.hosts[0];
    let out = h.hbmon(&["start"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pid = std::fs::read_to_string(h.pid_path()).expect("pid file").trim().to_string();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.trim(), format!("started (pid {pid})"));
    let again = h.hbmon(&["start"]);
    assert_eq!(again.status.code(), Some(1), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));
    let a = h.cmd("HIST Q");
    assert!(a.contains("COMMAND ERROR bad args: interval"), "{a}");
    assert!(!a.contains("bad args: bad args"), "{a}");
    let a = h.cmd("REPORT {not json");
    assert!(a.contains("COMMAND ERROR bad REPORT JSON"), "{a}");
    let st = h.body("STATE");
    assert!(st.contains("-- refused REPORT bad JSON 1"), "{st}");
    assert!(st.contains("-- refused HIST bad args 1"), "{st}");
    let out = h.hbmon(&["stop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
