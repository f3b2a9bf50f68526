//! Issue 4: the client. Items in STATE and history (HIST over netcat agrees
//! with the sqlite3 CLI on history.db), fitness options driven by real
//! processes, failing and hanging probes, real Nagios plugins, ZAP.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

/// (t, v) of an item's samples, oldest first; none while the store thread
/// has not made history.db's tables yet (STATE shows items before that on
/// a loaded machine).
fn samples(db: &std::path::Path, item: &str) -> Vec<(i64, f64)> {
    let q = format!(
        "SELECT s.t, s.v FROM samples s JOIN items i ON i.id = s.item WHERE i.name = '{item}' ORDER BY s.t"
    );
    try_sqlite_ro(db, &q)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (t, v) = l.split_once('|')?;
            Some((t.parse().ok()?, v.parse().ok()?))
        })
        .collect()
}

fn solo_with(work: &str) -> Fleet {
    let mut f = Fleet::new(&["solo"], work, "");
    f.hosts[0].start();
    f
}

fn level_of(h: &Host, item: &str) -> Option<String> {
    let st = h.try_cmd("STATE")?;
    let l = item_line(&st, item)?;
    ["fine", "soso", "sick", "crit", "dead"]
        .iter()
        .find(|lv| l.contains(&format!(" {lv}")))
        .map(|s| s.to_string())
}

fn events(h: &Host, item: &str) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&h.body(&format!("CLIENTS {} {item} 100", h.name))).expect("json");
    v["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn items_reach_state_and_history_and_hist_agrees_with_sqlite() {
    let f = solo_with("ival_make_state 1s\nget all uptime cpu_load mem_used disk_used:/ procs\n");
    let h = &f.hosts[0];
    let st = h.wait_state(10.0, "items", |s| {
        ["uptime", "cpu_load", "mem_used", "disk_used:/", "procs"]
            .iter()
            .all(|i| item_line(s, i).is_some_and(|l| !l.contains(" - - age")))
    });
    assert!(item_line(&st, "uptime").is_some_and(|l| l.contains(" fine")), "{st}");
    let db = h.vardir().join("history.db");
    wait_for(10.0, "3 uptime samples", || (samples(&db, "uptime").len() >= 3).then_some(()));
    let ans = h.nc(b"HIST H\n");
    let lines: Vec<&str> = ans.lines().collect();
    assert_eq!(lines.first(), Some(&"COMMAND HIST"), "{ans}");
    assert_eq!(lines.last(), Some(&"COMMAND DONE"), "{ans}");
    let v: Value = serde_json::from_str(lines[1]).expect("HIST JSON");
    assert!(v["resp"].as_str().unwrap_or("").starts_with("ok rows"), "{v}");
    let cols: Vec<String> = v["data"]["cols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    assert_eq!(cols[0], "TIME");
    let mut sorted = cols[1..].to_vec();
    sorted.sort();
    assert_eq!(cols[1..], sorted[..], "columns sorted");
    let ui = cols.iter().position(|c| c == "uptime").expect("uptime column");
    let rows = v["data"]["rows"].as_array().unwrap();
    assert!(
        rows.len() >= 55 && rows.len() <= 62,
        "H has about 60 one-minute rows, got {}",
        rows.len()
    );
    let all = samples(&db, "uptime");
    let mut checked = 0;
    for r in rows {
        let (Some(t), Some(val)) = (r[0].as_i64(), r[ui].as_f64()) else { continue };
        let bucket: Vec<f64> =
            all.iter().filter(|(st, _)| *st >= t && *st < t + 60).map(|s| s.1).collect();
        assert!(!bucket.is_empty(), "HIST has a value at {t} where sqlite has no sample");
        let (lo, hi) = bucket.iter().fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(*x), b.max(*x)));
        // HIST rounds to six significant digits: an uptime past 10,000 s
        // comes back to 0.1 s.
        let tol = 0.01f64.max(val.abs() * 1e-5);
        assert!(
            val >= lo - tol && val <= hi + tol,
            "bucket {t}: HIST {val} outside sqlite [{lo}, {hi}]"
        );
        checked += 1;
    }
    assert!(checked >= 1, "no non-null uptime row in HIST: {v}");
    // Buckets with no data are null.
    assert!(rows.iter().any(|r| r[ui].is_null()), "an hour-long window has empty buckets");
    // HIST with pnts and an item list.
    let v: Value = serde_json::from_str(&h.body("HIST D 24 uptime")).expect("json");
    assert_eq!(v["data"]["cols"], serde_json::json!(["TIME", "uptime"]));
    let n = v["data"]["rows"].as_array().unwrap().len();
    assert!((20..=30).contains(&n), "pnts 24 gave {n} rows");
    assert!(h.cmd("HIST Q").contains("COMMAND ERROR"), "a bad interval is refused");
    // ZAP answers rows before and after.
    let z = h.body("ZAP");
    assert!(z.contains("before") && z.contains("after"), "{z}");
}

#[test]
fn fitness_level_changes_count_and_hyst() {
    let f0 = Fleet::new(&["solo"], "", "");
    let (a, b, c) = (
        format!("hfa{}x{}", f0.net[0], f0.net[1]),
        format!("hfb{}x{}", f0.net[0], f0.net[1]),
        format!("hfc{}x{}", f0.net[0], f0.net[1]),
    );
    let work = format!(
        "ival_make_state 1s\nget all proc:{a} proc:{b} proc:{c}\nfit proc:{a} sick <1\nfit proc:{b} sick >=2 count 3\nfit proc:{c} sick >=2 hyst 50%\n"
    );
    f0.append_work(&work);
    let mut f = f0;
    f.hosts[0].start();
    let h = &f.hosts[0];
    let dir = f.dir.path().to_path_buf();
    let db = h.vardir().join("history.db");
    // No process: proc:a is sick; starting one moves it to fine, one event each.
    let ia = format!("proc:{a}");
    wait_for(10.0, "a sick", || (level_of(h, &ia)? == "sick").then_some(()));
    let _pa = NamedProc::start(&dir, &a);
    wait_for(10.0, "a fine", || (level_of(h, &ia)? == "fine").then_some(()));
    let ev = wait_for(10.0, "two events for a", || {
        let e = events(h, &ia);
        (e.len() >= 2).then_some(e)
    });
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[1]["old_level"], "sick");
    assert_eq!(ev[1]["new_level"], "fine");
    assert_eq!(ev[1]["new_value"], 1.0);

    // count 3: two processes must be seen three rounds running before sick.
    let ib = format!("proc:{b}");
    let _b1 = NamedProc::start(&dir, &b);
    let _b2 = NamedProc::start(&dir, &b);
    wait_for(15.0, "b sick", || (level_of(h, &ib)? == "sick").then_some(()));
    // STATE is live; the event reaches the server once it is in the outbox.
    let sick = wait_for(10.0, "b's sick event on the server", || {
        events(h, &ib).into_iter().find(|e| e["new_level"] == "sick")
    });
    let s = samples(&db, &ib);
    let first = s.iter().position(|x| x.1 >= 2.0).expect("a sample of 2");
    assert!(s.len() >= first + 3, "{s:?}");
    assert!(s[first + 1].1 >= 2.0 && s[first + 2].1 >= 2.0);
    let t = sick["time"].as_f64().unwrap();
    assert!(
        t >= s[first + 2].0 as f64 - 1.0,
        "sick at {t} before the third sample {:?}",
        s[first + 2]
    );

    // hyst 50%: sick at 2; back at 1 it stays sick (1 is not 50% inside 2); at 0 fine.
    let ic = format!("proc:{c}");
    let c1 = NamedProc::start(&dir, &c);
    let c2 = NamedProc::start(&dir, &c);
    wait_for(10.0, "c sick", || (level_of(h, &ic)? == "sick").then_some(()));
    drop(c2);
    wait_for(10.0, "c value 1", || {
        let st = h.try_cmd("STATE")?;
        item_line(&st, &ic)?.contains(&format!("{ic} 1 ")).then_some(())
    });
    // Two more rounds see the value 1 (two more samples in history), and the
    // level they computed is still sick.
    let ones = samples(&db, &ic).iter().filter(|s| s.1 == 1.0).count();
    wait_for(15.0, "two more rounds of c at 1", || {
        (samples(&db, &ic).iter().filter(|s| s.1 == 1.0).count() >= ones + 2).then_some(())
    });
    assert_eq!(level_of(h, &ic).as_deref(), Some("sick"), "hyst holds the level");
    drop(c1);
    wait_for(10.0, "c fine", || (level_of(h, &ic)? == "fine").then_some(()));
}

#[test]
fn failing_and_hanging_probes() {
    let f0 = Fleet::new(&["solo"], "", "");
    let probes = f0.hosts[0].vardir().join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    let hang = probes.join("hang");
    std::fs::write(&hang, "#!/bin/sh\nsleep 1000\n").unwrap();
    std::os::unix::fs::PermissionsExt::set_mode(
        &mut std::fs::metadata(&hang).unwrap().permissions(),
        0o755,
    );
    std::fs::set_permissions(&hang, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let closed = free_ports(&[f0.hosts[0].ip]);
    let work = format!(
        "ival_make_state 1s\nget all uptime tcp:{ip}:{closed} tcp:{ip}:{open}\nprobe all hang\ntimeout probe:hang 2s\n",
        ip = f0.hosts[0].ip,
        open = f0.port
    );
    f0.append_work(&work);
    let mut f = f0;
    f.hosts[0].start();
    let h = &f.hosts[0];
    let tcp = format!("tcp:{}:{closed}", h.ip);
    let st =
        h.wait_state(10.0, "tcp dead", |s| item_line(s, &tcp).is_some_and(|l| l.contains(" dead")));
    assert!(item_line(&st, &tcp).unwrap().contains("error"), "{st}");
    // An open port (the host's own command port): connect time in ms, fine.
    let open = format!("tcp:{}:{}", h.ip, h.port);
    h.wait_state(10.0, "tcp open fine", |s| {
        item_line(s, &open).is_some_and(|l| l.contains(" fine"))
    });
    let st = h.wait_state(15.0, "hang killed", |s| {
        item_line(s, "probe:hang").is_some_and(|l| l.contains(" dead") && l.contains("timed out"))
    });
    assert!(item_line(&st, "uptime").is_some_and(|l| l.contains(" fine")), "{st}");
    // Meanwhile uptime kept its 1 s cadence: the hanging probe delayed nothing.
    let db = h.vardir().join("history.db");
    let s = samples(&db, "uptime");
    let span = (s.last().unwrap().0 - s[0].0) as usize;
    assert!(s.len() + 2 >= span, "uptime samples {} over {span}s", s.len());
    // The killed probe's sleep is gone (its whole process group was killed).
    let out = Command::new("pgrep").args(["-f", &hang.display().to_string()]).output().unwrap();
    let pids = String::from_utf8_lossy(&out.stdout);
    assert!(pids.lines().count() <= 1, "more than the current run of the hanging probe: {pids}");
}

#[test]
fn real_nagios_plugins() {
    let work = "ival_make_state 1s\n\
        nagios all load /usr/lib/nagios/plugins/check_load -w 1000,1000,1000 -c 2000,2000,2000\n\
        nagios all rootfs /usr/lib/nagios/plugins/check_disk -w 0% -c 0% -p /\n\
        nagios all crit /usr/lib/nagios/plugins/check_procs -c 0:0\n";
    let f = solo_with(work);
    let h = &f.hosts[0];
    let st = h.wait_state(15.0, "plugins ran", |s| {
        ["nagios:load", "nagios:rootfs", "nagios:crit"]
            .iter()
            .all(|i| item_line(s, i).is_some_and(|l| !l.contains(" - - age")))
    });
    assert_eq!(level_of(h, "nagios:load").as_deref(), Some("fine"), "{st}");
    assert_eq!(
        level_of(h, "nagios:crit").as_deref(),
        Some("crit"),
        "check_procs -c 0:0 is CRITICAL: {st}"
    );
    let db = h.vardir().join("history.db");
    wait_for(10.0, "perfdata in history", || {
        // history.db is made by its store thread, maybe after STATE shows items.
        let names = try_sqlite_ro(&db, "SELECT name FROM items ORDER BY name")?;
        (names.contains("load.load1") && names.contains("rootfs./")).then_some(())
    });
    let l1 = samples(&db, "load.load1");
    assert!(!l1.is_empty() && l1[0].1 >= 0.0);
}
