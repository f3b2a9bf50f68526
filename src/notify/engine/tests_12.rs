//! Engine tests for issue 12 (items 4 to 7): silences that end, parents
//! and their children, reminders, alerts withdrawn before they leave,
//! Alertmanager through a storm, re-targeting at a work change, retry
//! limits. Literal events and times on in-memory SQLite, as in
//! `tests.rs`, whose helpers these share.

use super::tests::{deliver, ev, levels, setup, work};
use super::*;
use crate::notify::message::Kind;
use crate::notify::NotifyDone;
use crate::work::model::Channel;

/// Every STATE line of the notifier.
fn state(n: &Notifier, now: f64) -> String {
    let mut s = String::new();
    n.state_lines(&mut s, now);
    s
}

#[test]
fn silence_end_alerts_what_is_still_bad_12_6() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.silence(&c, "www3.x", None, 500.0).unwrap();
    n.on_event(&c, &ev("www3.x", "cpu_load", "ok", "sick", 5.0, 10.0), "up", 10.0).unwrap();
    n.on_event(&c, &ev("www4.x", "cpu_load", "ok", "sick", 5.0, 10.0), "up", 10.0).unwrap();
    n.silence(&c, "www4.x", Some("cpu_load"), 400.0).unwrap();
    // www4's alert left before its silence: no second alert at the end.
    assert_eq!(deliver(&c, &mut n, 10.0).len(), 1);
    assert_eq!(n.next_deadline(), Some(400.0), "the silence's end, not a reminder");
    assert!(deliver(&c, &mut n, 400.0).is_empty());
    assert!(deliver(&c, &mut n, 499.0).is_empty());
    let got = deliver(&c, &mut n, 500.0);
    assert_eq!(got, vec!["hook alert [hbmon] www3 cpu_load sick (5)"]);
    let j = n.tick(&c, 500.0).unwrap();
    assert!(j.is_empty());
    // An item that recovered during its silence gets nothing at the end.
    n.silence(&c, "www5.x", None, 900.0).unwrap();
    n.on_event(&c, &ev("www5.x", "cpu_load", "ok", "sick", 5.0, 600.0), "up", 600.0).unwrap();
    n.on_event(&c, &ev("www5.x", "cpu_load", "sick", "ok", 1.0, 700.0), "up", 700.0).unwrap();
    assert!(deliver(&c, &mut n, 900.0).is_empty());
}

#[test]
fn silenced_reminders_do_not_spin_the_deadline_12_6() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("www4.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 0.0).len(), 1);
    n.silence(&c, "www4.x", None, 10_000.0).unwrap();
    assert!(deliver(&c, &mut n, 3600.0).is_empty());
    assert_eq!(n.next_deadline(), Some(10_000.0), "no deadline in the past while silenced");
    assert_eq!(
        deliver(&c, &mut n, 10_000.0),
        vec!["hook reminder [hbmon] www4 cpu_load still sick (5)"]
    );
}

#[test]
fn no_reminder_below_the_rules_level_12_6() {
    let levels: Vec<Level> = ["ok", "soso", "sick", "crit"]
        .iter()
        .map(|n| Level { name: n.to_string(), long: n.to_string() })
        .collect();
    let w = work();
    let conn = crate::server::db::open_in_memory().unwrap();
    let mut n = Notifier::new(&conn, &w, &levels, &Intervals::default(), None).unwrap();
    n.on_event(&conn, &ev("www2.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
    assert_eq!(deliver(&conn, &mut n, 0.0).len(), 1);
    n.on_event(&conn, &ev("www2.x", "cpu_load", "sick", "soso", 3.0, 10.0), "up", 10.0).unwrap();
    assert!(deliver(&conn, &mut n, 3600.0).is_empty(), "no `still soso`");
    assert!(deliver(&conn, &mut n, 7200.0).is_empty(), "not later either");
    assert!(n.next_deadline().is_some_and(|t| t > 7200.0), "and no busy loop");
    // Back at the rule's level: reminders again; the recovery is still owed.
    n.on_event(&conn, &ev("www2.x", "cpu_load", "soso", "sick", 5.0, 7300.0), "up", 7300.0)
        .unwrap();
    assert!(deliver(&conn, &mut n, 7300.0).is_empty(), "not a new alert");
    assert_eq!(
        deliver(&conn, &mut n, 10_800.0),
        vec!["hook reminder [hbmon] www2 cpu_load still sick (5)"]
    );
    n.on_event(&conn, &ev("www2.x", "cpu_load", "sick", "ok", 1.0, 11_000.0), "up", 11_000.0)
        .unwrap();
    assert_eq!(deliver(&conn, &mut n, 11_000.0).len(), 1);
}

#[test]
fn children_are_quiet_while_their_parent_is_late_or_down_12_6() {
    let w = work();
    let (c, mut n) = setup(&w);
    // The child's heartbeat goes late while its parent is late too: it waits.
    n.on_event(&c, &ev("router.x", "heartbeat", "ok", "sick", 0.0, 1.0), "late", 1.0).unwrap();
    n.on_event(&c, &ev("www1.x", "heartbeat", "ok", "sick", 0.0, 1.2), "late", 1.2).unwrap();
    let got = deliver(&c, &mut n, 1.2);
    assert_eq!(got, vec!["hook alert [hbmon] router heartbeat sick (0)"]);
    // Past one wait the parent is still late: the child keeps waiting.
    assert!(deliver(&c, &mut n, 17.0).is_empty());
    assert!(deliver(&c, &mut n, 33.0).is_empty());
    n.on_event(&c, &ev("router.x", "heartbeat", "sick", "crit", 0.0, 40.0), "down", 40.0).unwrap();
    n.on_event(&c, &ev("www1.x", "heartbeat", "sick", "crit", 0.0, 40.1), "down", 40.1).unwrap();
    let j = n.tick(&c, 40.1).unwrap();
    assert!(j.iter().all(|j| j.msg.host == "router.x"), "{j:?}");
    assert_eq!(j.len(), 2, "the router's escalation to hook and pager");
    assert!(j[0].msg.body.contains("Suppressed (children of this host): www1.x"));
    for j in j {
        n.on_done(&c, NotifyDone { id: j.id, result: Ok(()) }, 40.1).unwrap();
    }
    // The parent reminds (listing the child); the child never does.
    let r = deliver(&c, &mut n, 3700.0);
    assert!(!r.is_empty() && r.iter().all(|g| g.contains("router")), "{r:?}");
    assert!(state(&n, 3700.0).contains("suppressed-by=router.x"));
}

#[test]
fn child_recovered_with_its_parent_gets_nothing_12_6() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("router.x", "heartbeat", "ok", "crit", 0.0, 1.0), "down", 1.0).unwrap();
    n.on_event(&c, &ev("www1.x", "heartbeat", "ok", "crit", 0.0, 2.0), "down", 2.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 2.0).len(), 2);
    // Both come back; the child's heartbeat is seen a moment after its parent's.
    n.on_event(&c, &ev("router.x", "heartbeat", "crit", "ok", 1.0, 100.0), "up", 100.0).unwrap();
    let got = deliver(&c, &mut n, 100.0);
    assert!(got.iter().all(|g| g.contains("recovery [hbmon] router")), "{got:?}");
    n.on_event(&c, &ev("www1.x", "heartbeat", "crit", "ok", 1.0, 100.8), "up", 100.8).unwrap();
    assert!(deliver(&c, &mut n, 100.8).is_empty());
    assert!(deliver(&c, &mut n, 200.0).is_empty(), "no `crit -> crit`, no recovery");
    assert!(n.dump()["alerts"].as_array().is_some_and(Vec::is_empty), "{}", n.dump());
}

#[test]
fn child_told_before_its_parent_went_down_stops_reminding_12_6() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("www1.x", "cpu_load", "ok", "sick", 9.0, 0.0), "up", 0.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 0.0).len(), 1);
    n.on_event(&c, &ev("router.x", "heartbeat", "ok", "crit", 0.0, 100.0), "down", 100.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 100.0).len(), 2);
    let r = deliver(&c, &mut n, 3700.0);
    assert!(r.iter().all(|g| g.contains("router")), "no reminder for the child: {r:?}");
}

#[test]
fn alert_that_recovers_before_it_leaves_is_withdrawn_12_7() {
    let w = work();
    let (c, mut n) = setup(&w);
    // A client's late batch: its `server` item went dead and came back.
    n.on_event(&c, &ev("www2.x", "server", "ok", "crit", 0.0, 10.0), "up", 50.0).unwrap();
    n.on_event(&c, &ev("www2.x", "server", "crit", "ok", 1.0, 40.0), "up", 50.0).unwrap();
    assert!(deliver(&c, &mut n, 50.0).is_empty(), "neither the stale alert nor its recovery");
    assert!(state(&n, 50.0).contains("-- notify pending 0 held 0 inflight 0 failed 0"));
    // Once handed out (even if it failed), the recovery is owed.
    n.on_event(&c, &ev("www7.x", "server", "ok", "sick", 0.0, 60.0), "up", 60.0).unwrap();
    let j = n.tick(&c, 60.0).unwrap();
    assert_eq!(j.len(), 1);
    n.on_done(&c, NotifyDone { id: j[0].id, result: Err("refused".into()) }, 60.0).unwrap();
    n.on_event(&c, &ev("www7.x", "server", "sick", "ok", 1.0, 61.0), "up", 61.0).unwrap();
    let kinds: Vec<String> = (0..2)
        .flat_map(|i| deliver(&c, &mut n, 70.0 + i as f64 * 10.0))
        .map(|g| g.split(' ').nth(1).unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, vec!["alert", "recovery"]);
}

fn am_work() -> ServerWork {
    let mut w = work();
    w.channels.push(Channel {
        name: "am".into(),
        kind: "alertmanager".into(),
        target: "http://127.0.0.1:9/api/v2/alerts".into(),
        options: Default::default(),
    });
    w.users[0].channels.push("am".into());
    w
}

#[test]
fn alertmanager_gets_every_alert_and_resolve_through_a_storm_12_4() {
    let w = am_work();
    let (c, mut n) = setup(&w);
    let mut am = Vec::new();
    for i in 0..6 {
        let t = 100.0 + i as f64 * 0.1;
        n.on_event(&c, &ev(&format!("h{i}.x"), "heartbeat", "ok", "sick", 0.0, t), "late", t)
            .unwrap();
        for j in n.tick(&c, t).unwrap() {
            if j.channel.name == "am" {
                am.push(format!("{} {}", j.msg.kind.as_str(), j.msg.host));
            }
            n.on_done(&c, NotifyDone { id: j.id, result: Ok(()) }, t).unwrap();
        }
    }
    for i in 0..6 {
        let t = 101.0 + i as f64 * 0.1;
        n.on_event(&c, &ev(&format!("h{i}.x"), "heartbeat", "sick", "ok", 1.0, t), "up", t)
            .unwrap();
        for j in n.tick(&c, t).unwrap() {
            if j.channel.name == "am" {
                am.push(format!("{} {}", j.msg.kind.as_str(), j.msg.host));
            }
            n.on_done(&c, NotifyDone { id: j.id, result: Ok(()) }, t).unwrap();
        }
    }
    // The hook's user is in a storm: the alerts held for it recovered
    // before the digest (withdrawn), the recoveries of those it got wait.
    assert!(state(&n, 102.0).contains(" held 3 "), "{}", state(&n, 102.0));
    assert_eq!(am.len(), 12, "{am:?}");
    assert!((0..6).all(|i| am.contains(&format!("recovery h{i}.x"))), "{am:?}");
    let d = n.tick(&c, 200.0).unwrap();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((d[0].channel.name.as_str(), d[0].msg.kind), ("hook", Kind::Digest));
    assert_eq!(d[0].msg.subject, "[hbmon] digest: 0 alerts, 3 recoveries");
}

#[test]
fn reload_retargets_pending_deliveries_and_drops_gone_users_12_5() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("db1.x", "disk_used:/", "ok", "crit", 99.0, 0.0), "up", 0.0).unwrap();
    // Every channel's receiver is down: all three alerts wait for a retry.
    for j in n.tick(&c, 0.0).unwrap() {
        n.on_done(&c, NotifyDone { id: j.id, result: Err("refused".into()) }, 0.0).unwrap();
    }
    assert!(state(&n, 1.0).contains("pending 3"), "{}", state(&n, 1.0));
    // New work: ann's `hook` became `hook2`, bob is gone.
    let mut w2 = work();
    w2.channels[0].name = "hook2".into();
    w2.users[0].channels = vec!["hook2".into(), "pager".into()];
    w2.users.truncate(1);
    w2.alerts.truncate(1);
    n.reload(&c, &w2, &levels(), &Intervals::default(), None).unwrap();
    let s = state(&n, 1.0);
    assert!(s.contains("pending 2 held 0 inflight 0 failed 1"), "{s}");
    assert!(
        s.contains("bobhook tries 1") && s.contains("user bob is no longer in the work"),
        "{s}"
    );
    let mut got: Vec<String> =
        n.tick(&c, 100.0).unwrap().iter().map(|j| j.channel.name.clone()).collect();
    got.sort();
    assert_eq!(got, vec!["hook2", "pager"]);
    // The recovery follows the alert to its new channel.
    let dump = n.dump();
    assert_eq!(dump["alerts"][0]["notified"], serde_json::json!(["hook2", "pager"]), "{dump}");
}

#[test]
fn retries_stop_at_the_channels_limit_and_at_the_age_limit_12_5() {
    let mut w = work();
    w.channels[0].options.insert("retries".into(), "2".into());
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("www2.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
    let j = n.tick(&c, 0.0).unwrap();
    n.on_done(&c, NotifyDone { id: j[0].id, result: Err("refused".into()) }, 0.0).unwrap();
    let j = n.tick(&c, 5.0).unwrap();
    assert_eq!(j.len(), 1);
    n.on_done(&c, NotifyDone { id: j[0].id, result: Err("refused".into()) }, 5.0).unwrap();
    let s = state(&n, 6.0);
    assert!(s.contains("pending 0 held 0 inflight 0 failed 1"), "{s}");
    assert!(s.contains("hook tries 2") && s.contains("gave up after 2 tries: refused"), "{s}");
    assert_eq!(n.next_deadline(), Some(3600.0), "only the reminder is left");
    // A row that waits too long (here: its receiver hangs on every try) is given up.
    n.on_event(&c, &ev("www3.x", "cpu_load", "ok", "sick", 5.0, 10.0), "up", 10.0).unwrap();
    let j = n.tick(&c, 10.0).unwrap();
    n.on_done(&c, NotifyDone { id: j[0].id, result: Err("timed out".into()) }, 10.0).unwrap();
    let late = n.tick(&c, 10.0 + outbox::MAX_AGE + 1.0).unwrap();
    assert!(late.iter().all(|j| j.msg.kind == Kind::Reminder), "{late:?}");
    let s = state(&n, 10.0 + outbox::MAX_AGE + 1.0);
    assert!(
        s.contains("failed 2") && s.contains("undelivered for 21600 s; last error: timed out"),
        "{s}"
    );
    assert_eq!(n.dump()["failed"].as_array().map(Vec::len), Some(2));
}

#[test]
fn failed_deliveries_are_bounded_12_5() {
    let mut w = work();
    w.channels[0].options.insert("retries".into(), "1".into());
    w.noise.storm_events = 1000;
    let (c, mut n) = setup(&w);
    for i in 0..(outbox::MAX_FAILED + 20) {
        let t = i as f64;
        n.on_event(&c, &ev(&format!("h{i}.x"), "cpu_load", "ok", "sick", 5.0, t), "up", t).unwrap();
        for j in n.tick(&c, t).unwrap() {
            n.on_done(&c, NotifyDone { id: j.id, result: Err("refused".into()) }, t).unwrap();
        }
    }
    assert_eq!(n.dump()["failed"].as_array().map(Vec::len), Some(outbox::MAX_FAILED as usize));
    let s = state(&n, 1000.0);
    assert_eq!(s.lines().filter(|l| l.starts_with("-- notify failed ")).count(), 10, "{s}");
}

#[test]
fn links_only_to_a_configured_dashboard_12_14() {
    let link = |dashboard_url: Option<&str>, pmaker: Option<&str>| {
        let mut w = work();
        w.dashboard_url = dashboard_url.map(str::to_string);
        let conn = crate::server::db::open_in_memory().unwrap();
        let pm = pmaker.map(str::to_string);
        let mut n = Notifier::new(&conn, &w, &levels(), &Intervals::default(), pm).unwrap();
        n.on_event(&conn, &ev("www2.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
        let j = n.tick(&conn, 0.0).unwrap();
        let has_line = j[0].msg.body.contains("Dashboard: ");
        assert_eq!(has_line, j[0].msg.link.is_some(), "{}", j[0].msg.body);
        j[0].msg.link.clone()
    };
    assert_eq!(link(None, None), None);
    assert_eq!(
        link(None, Some("http://127.0.0.2:50004")).as_deref(),
        Some("http://127.0.0.2:50004/host/www2.x")
    );
    // A public URL (behind a proxy) wins over the pagemaker's own address.
    let both = link(Some("https://dash.example.org/"), Some("http://127.0.0.2:50004"));
    assert_eq!(both.as_deref(), Some("https://dash.example.org/host/www2.x"));
}

#[test]
fn the_server_links_to_its_pagemakers_real_address_12_14() {
    let mut w = crate::work::solo("mon.example.org").unwrap();
    // This host is the pagemaker: its own (conf-overridden) address and port.
    w.address = "127.0.0.9".into();
    w.ports.http_port = 8080;
    assert_eq!(crate::server::dashboard(&w).as_deref(), Some("http://127.0.0.9:8080"));
    w.roles.pmaker = false;
    let p = w.pmaker.as_mut().unwrap();
    p.address = "::1".into();
    p.ports.http_port = 50004;
    assert_eq!(crate::server::dashboard(&w).as_deref(), Some("http://[::1]:50004"));
    w.pmaker = None;
    assert_eq!(crate::server::dashboard(&w), None, "no pagemaker, no link");
}

#[test]
fn no_withdrawal_behind_an_older_episodes_recovery_12_7() {
    let mut w = work();
    w.noise.flap_changes = 10;
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("www8.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 0.0).len(), 1);
    // Within one burst: it recovers, goes bad again and recovers again.
    n.on_event(&c, &ev("www8.x", "cpu_load", "sick", "ok", 1.0, 10.0), "up", 10.0).unwrap();
    n.on_event(&c, &ev("www8.x", "cpu_load", "ok", "sick", 5.0, 10.1), "up", 10.1).unwrap();
    n.on_event(&c, &ev("www8.x", "cpu_load", "sick", "ok", 1.0, 10.2), "up", 10.2).unwrap();
    // The second episode waits behind the first one's recovery: the whole
    // story goes out, in order (a withdrawal is only for an alert that did
    // not leave because no tick came between it and its recovery).
    let kinds: Vec<String> = (0..3)
        .flat_map(|i| deliver(&c, &mut n, 10.3 + i as f64))
        .map(|g| g.split(' ').nth(1).unwrap_or("").to_string())
        .collect();
    assert_eq!(kinds, vec!["recovery", "alert", "recovery"]);
}

#[test]
fn a_delivery_in_flight_at_a_work_change_follows_its_user_when_it_fails_12_5() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("db1.x", "disk_used:/", "ok", "crit", 99.0, 0.0), "up", 0.0).unwrap();
    // The deliveries leave (in flight) before the work change.
    let jobs = n.tick(&c, 0.0).unwrap();
    assert!(jobs.iter().any(|j| j.channel.name == "hook"), "{jobs:?}");
    let mut w2 = work();
    w2.channels[0].name = "hook2".into();
    w2.users[0].channels = vec!["hook2".into(), "pager".into()];
    n.reload(&c, &w2, &levels(), &Intervals::default(), None).unwrap();
    // Then they fail: the one for ann's old `hook` must retry on `hook2`.
    for j in jobs {
        n.on_done(&c, NotifyDone { id: j.id, result: Err("refused".into()) }, 0.0).unwrap();
    }
    let mut got: Vec<String> =
        n.tick(&c, 100.0).unwrap().iter().map(|j| j.channel.name.clone()).collect();
    got.sort();
    assert!(got.contains(&"hook2".to_string()), "{got:?}");
    assert!(!got.contains(&"hook".to_string()), "a retry on a channel that is gone: {got:?}");
}
