//! Operating hbmon as an administrator: `hbmon test` on the server checks
//! the work-config with mkwork's file:line errors and exit 2.

mod common;

use common::Fleet;

#[test]
fn hbmon_test_on_the_server_checks_the_workconf() {
    let f = Fleet::new(&["srv", "c1"], "get all cpu_load\n", "");
    f.mkwork();
    let srv = f.server();
    let o = srv.hbmon(&["test"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("workconf {} ok (2 hosts)", f.workconf.display())), "{out}");
    // Break the work-config after mkwork: the old work-files would still
    // run, but `test` must say what is wrong, where, and exit 2.
    let mut text = std::fs::read_to_string(&f.workconf).unwrap();
    let lines = text.lines().count();
    text.push_str("get nosuchgroup cpu_load\nfit cpu_load bogus >2\n");
    std::fs::write(&f.workconf, text).unwrap();
    let o = srv.hbmon(&["test"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let wc = f.workconf.display();
    assert!(err.contains(&format!("{wc}:{}:", lines + 1)) && err.contains("nosuchgroup"), "{err}");
    assert!(err.contains(&format!("{wc}:{}:", lines + 2)) && err.contains("bogus"), "{err}");
    // mkwork says the same.
    let m = srv.hbmon(&["mkwork"]);
    assert_eq!(m.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&m.stderr), err);
    // A client does not read the server's work-config.
    let o = f.hosts[1].hbmon(&["test"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn run(h: &common::Host, args: &[&str]) -> String {
    let o = h.hbmon(args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "hbmon {args:?}: {out}{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn readable_tables_state_units_and_json_precision() {
    let work = "ival_make_state 1s\nival_send_report 2s\n\
                get all uptime disk_used:/ proc:no-such-proc-ops\nfit proc sick <1\n";
    let mut f = Fleet::new(&["solo"], work, "");
    f.hosts[0].start();
    let h = &f.hosts[0];
    let st = h.wait_state(60.0, "items with values and a report", |s| {
        common::item_line(s, "disk_used:/").is_some_and(|l| !l.contains(" - "))
            && common::item_line(s, "uptime").is_some_and(|l| !l.contains(" - "))
            && s.contains("report ")
            && s.contains(" ago")
    });
    // STATE: values with units.
    let disk = common::item_line(&st, "disk_used:/").unwrap();
    let v = disk.split_whitespace().nth(3).unwrap();
    assert!(v.ends_with('%') && v.trim_end_matches('%').parse::<f64>().is_ok(), "{disk}");
    let up = common::item_line(&st, "uptime").unwrap().split_whitespace().nth(3).unwrap();
    assert!(
        up.ends_with(['s', 'm', 'h', 'd']) && up.starts_with(|c: char| c.is_ascii_digit()),
        "{st}"
    );
    assert!(st.contains("-- items by level fine ") && st.contains(" stale 0"), "{st}");

    // CLIENTS JSON: `hosts` is `cdmp` under a readable name; floats short.
    let body = h.body("CLIENTS");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["hosts"], v["cdmp"], "{body}");
    let long = body.split(|c: char| !c.is_ascii_digit() && c != '.').find(|n| {
        n.matches('.').count() == 1 && n.split_once('.').is_some_and(|(_, frac)| frac.len() > 5)
    });
    assert_eq!(long, None, "a float with more than 5 decimals in {body}");

    // hbmon clients: aligned columns, the host up, items with units.
    let t = run(h, &["clients"]);
    let lines: Vec<&str> = t.lines().collect();
    assert!(lines[0].starts_with("HOST ") && lines[0].contains("  STATE  RTT"), "{t}");
    let row = lines.iter().find(|l| l.starts_with(&h.name)).unwrap_or_else(|| panic!("{t}"));
    assert_eq!(row.find("  up ").map(|i| i + 2), lines[0].find("STATE"), "aligned:\n{t}");
    // The server shows what the client's REPORT said: wait for the one that
    // follows its first round.
    let t = common::wait_for(30.0, "a REPORT with disk_used:/", || {
        let t = run(h, &["clients", "solo"]);
        let disk = t.lines().find(|l| l.starts_with("disk_used:/ "))?;
        disk.split_whitespace().nth(1).is_some_and(|v| v != "-").then_some(t)
    });
    let disk = t.lines().find(|l| l.starts_with("disk_used:/ ")).unwrap_or_else(|| panic!("{t}"));
    assert!(disk.split_whitespace().nth(1).is_some_and(|v| v.ends_with('%')), "{t}");

    // hbmon hist: time and values with units, one row per minute of the hour.
    let t = run(h, &["hist", "solo", "uptime"]);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["TIME", "(UTC)", "uptime"], "{t}");
    assert!((55..=62).contains(&(lines.len() - 1)), "{t}");
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().nth(2).is_some_and(|v| v.ends_with(['s', 'm', 'h']))),
        "{t}"
    );

    // hbmon events: the missing process made the item sick.
    let t = run(h, &["events"]);
    assert!(t.starts_with("TIME ") && t.contains(&h.name), "{t}");
    let ev =
        t.lines().find(|l| l.contains("proc:no-such-proc-ops")).unwrap_or_else(|| panic!("{t}"));
    assert!(ev.contains("-> sick") && ev.contains("-> 0"), "{t}");
}

#[test]
fn a_down_host_is_logged_and_its_items_are_stale() {
    let hb = "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1s\nival_send_report 1s\nget all procs\n";
    let mut f = Fleet::new(&["srv", "c1"], hb, "");
    f.mkwork();
    f.start_all();
    let c1 = f.hosts[1].name.clone();
    let srv = f.server();
    common::wait_for(60.0, "a report from c1", || {
        let v: serde_json::Value =
            serde_json::from_str(&srv.body(&format!("CLIENTS {c1} 0"))).ok()?;
        v["hosts"][&c1]["report"]["items"]["procs"]["level"].as_str().map(|_| ())
    });
    // Its heartbeats arrive too (the first ones may precede its work's port).
    srv.wait_state(60.0, "c1 up", |s| s.contains(&format!("-- host {c1} up")));
    f.hosts[1].kill9();
    let srv = f.server();
    let st = srv.wait_state(60.0, "c1 down", |s| s.contains(&format!("-- host {c1} down")));
    let stale: usize = st
        .lines()
        .find_map(|l| l.strip_prefix("-- items by level "))
        .and_then(|l| l.rsplit_once(" stale "))
        .and_then(|(_, n)| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("{st}"));
    assert!(stale >= 1, "c1's items are not counted stale:\n{st}");
    let v: serde_json::Value = serde_json::from_str(&srv.body(&format!("CLIENTS {c1} 0"))).unwrap();
    assert_eq!(v["hosts"][&c1]["report"]["stale"], true, "{v}");
    let t = run(srv, &["clients", "c1"]);
    assert!(t.lines().any(|l| l.starts_with("procs ") && l.contains(" stale ")), "{t}");
    // The server's log says it: down at WARN, confirmed by the server's own
    // probe (the default detector has no late from silence: c1 is the only
    // client, so no peer is asked).
    let log = std::fs::read_to_string(srv.dir.join("stderr.log")).unwrap();
    let line = |lvl: &str| {
        log.lines().find(|l| l.contains(&format!("{lvl}  {c1} heartbeat: "))).map(String::from)
    };
    let down = line("WARN").unwrap_or_else(|| panic!("no down line:\n{log}"));
    assert!(down.contains("confirmed down, probed by the server"), "{down}");
    assert_eq!(line("INFO"), None, "a late line:\n{log}");
    // Back again: logged too.
    f.hosts[1].start();
    let srv = f.server();
    srv.wait_state(60.0, "c1 up", |s| s.contains(&format!("-- host {c1} up")));
    common::wait_for(30.0, "the back line", || {
        let log = std::fs::read_to_string(srv.dir.join("stderr.log")).ok()?;
        log.contains(&format!("{c1} heartbeat: heartbeat again after")).then_some(())
    });
}

#[test]
fn help_wraps_lists_the_verbs_and_describes_arguments() {
    let help = |args: &[&str]| {
        let o = std::process::Command::new(common::BIN)
            .args(args)
            .env("COLUMNS", "72")
            .output()
            .unwrap();
        assert!(o.status.success(), "{args:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let top = help(&["--help"]);
    let long: Vec<&str> = top.lines().filter(|l| l.chars().count() > 72).collect();
    assert!(long.is_empty(), "not wrapped at 72: {long:?}");
    for verb in ["PING", "STATE", "HIST", "CLIENTS", "EVENTS", "RELAY", "ACK", "SILENCE", "STOP"] {
        assert!(top.contains(verb), "--help does not list {verb}:\n{top}");
    }
    assert!(help(&["-h"]).contains("hbmon --help"), "short help points to the long one");
    // mkwork's own flags stand apart from the log flags every command takes.
    let mk = help(&["mkwork", "--help"]);
    let (own, global) = mk.split_once("Log level and conf").expect("global heading");
    assert!(own.contains("--dry-run") && !own.contains("--silent"), "{mk}");
    assert!(global.contains("--silent") && global.contains("--conf"), "{mk}");
    // ack and silence say what their arguments are.
    let ack = help(&["ack", "--help"]);
    assert!(
        ack.contains("<HOST>") && ack.contains("tag or FQDN") && ack.contains("alerting item"),
        "{ack}"
    );
    let sil = help(&["silence", "--help"]);
    assert!(sil.contains("interval spec"), "{sil}");
}
