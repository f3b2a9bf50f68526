//! Engine tests through the apply layer: literal events and times on
//! in-memory SQLite; deliveries are observed as the jobs `tick` hands out.

use super::*;
use crate::notify::message::Kind;
use crate::notify::{NotifyDone, DEADMAN_ID};
use crate::work::model::{AlertRule, Channel, Noise, User};

pub(super) fn levels() -> Vec<Level> {
    ["ok", "sick", "crit"]
        .iter()
        .map(|n| Level { name: n.to_string(), long: n.to_string() })
        .collect()
}

pub(super) fn work() -> ServerWork {
    let ch = |n: &str, opts: &[(&str, &str)]| Channel {
        name: n.into(),
        kind: "webhook".into(),
        target: format!("http://127.0.0.1:9/{n}"),
        options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    };
    ServerWork {
        users: vec![
            User { name: "ann".into(), channels: vec!["hook".into(), "pager".into()] },
            User { name: "bob".into(), channels: vec!["bobhook".into()] },
        ],
        channels: vec![ch("hook", &[]), ch("pager", &[("min_level", "crit")]), ch("bobhook", &[])],
        alerts: vec![
            AlertRule {
                hosts: vec!["*".into()],
                item: "*".into(),
                level: "sick".into(),
                users: vec!["ann".into()],
            },
            AlertRule {
                hosts: vec!["db*".into()],
                item: "disk_used:*".into(),
                level: "crit".into(),
                users: vec!["bob".into()],
            },
        ],
        parents: [("www1.x".to_string(), "router.x".to_string())].into_iter().collect(),
        noise: Noise { flap_changes: 3, flap_window: 100.0, storm_events: 3, storm_window: 5.0 },
        ..Default::default()
    }
}

pub(super) fn setup(w: &ServerWork) -> (Connection, Notifier) {
    let conn = crate::server::db::open_in_memory().unwrap();
    let n = Notifier::new(&conn, w, &levels(), &Intervals::default(), None).unwrap();
    (conn, n)
}

pub(super) fn ev(host: &str, item: &str, old: &str, new: &str, v: f64, t: f64) -> Event {
    Event {
        id: format!("{t}"),
        host: host.into(),
        item: item.into(),
        old_level: Some(old.into()),
        new_level: new.into(),
        old_value: None,
        new_value: Some(v),
        time: t,
        message: String::new(),
    }
}

/// Ticks, delivers every job successfully, returns "channel kind subject".
pub(super) fn deliver(conn: &Connection, n: &mut Notifier, now: f64) -> Vec<String> {
    let jobs = n.tick(conn, now).unwrap();
    let mut out = Vec::new();
    for j in jobs {
        out.push(format!("{} {} {}", j.channel.name, j.msg.kind.as_str(), j.msg.subject));
        n.on_done(conn, NotifyDone { id: j.id, result: Ok(()) }, now).unwrap();
    }
    out
}

#[test]
fn alert_escalate_deescalate_recover() {
    let mut w = work();
    w.noise.flap_changes = 10;
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("db1.x", "disk_used:/", "ok", "sick", 91.2, 100.0), "up", 100.0).unwrap();
    assert_eq!(
        deliver(&c, &mut n, 100.0),
        vec!["hook alert [hbmon] db1 disk_used:/ sick (91.2 %)"]
    );
    n.on_event(&c, &ev("db1.x", "disk_used:/", "sick", "crit", 99.0, 110.0), "up", 110.0).unwrap();
    let mut got = deliver(&c, &mut n, 110.0);
    got.sort();
    assert_eq!(
        got,
        vec![
            "bobhook alert [hbmon] db1 disk_used:/ crit (99 %)",
            "hook alert [hbmon] db1 disk_used:/ crit (99 %)",
            "pager alert [hbmon] db1 disk_used:/ crit (99 %)",
        ]
    );
    // De-escalation is recorded, not sent.
    n.on_event(&c, &ev("db1.x", "disk_used:/", "crit", "sick", 95.0, 120.0), "up", 120.0).unwrap();
    assert!(deliver(&c, &mut n, 120.0).is_empty());
    let mut s = String::new();
    n.state_lines(&mut s, 120.0);
    assert!(s.contains("alert db1.x disk_used:/ sick "), "{s}");
    // Recovery goes to every channel that got the alert.
    n.on_event(&c, &ev("db1.x", "disk_used:/", "sick", "ok", 50.0, 130.0), "up", 130.0).unwrap();
    let mut got = deliver(&c, &mut n, 130.0);
    got.sort();
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(
        got.iter().all(|g| g.contains(" recovery [hbmon] db1 disk_used:/ recovered: ok")),
        "{got:?}"
    );
    assert!(deliver(&c, &mut n, 10_000.0).is_empty());
}

#[test]
fn below_rule_level_and_unmatched_items_are_quiet() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("db1.x", "cpu_load", "ok", "sick", 3.0, 1.0), "up", 1.0).unwrap();
    // bob's rule needs disk_used:* at crit; ann gets it through hook only (pager min crit).
    assert_eq!(deliver(&c, &mut n, 1.0), vec!["hook alert [hbmon] db1 cpu_load sick (3)"]);
}

#[test]
fn renotify_until_acked() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("www2.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 0.0).len(), 1);
    assert_eq!(n.next_deadline(), Some(3600.0));
    assert!(deliver(&c, &mut n, 3599.0).is_empty());
    assert_eq!(
        deliver(&c, &mut n, 3600.0),
        vec!["hook reminder [hbmon] www2 cpu_load still sick (5)"]
    );
    assert!(n.ack(&c, "www2.x", "cpu_load").unwrap());
    assert!(!n.ack(&c, "www2.x", "nope").unwrap());
    assert!(deliver(&c, &mut n, 7200.0).is_empty());
    let mut s = String::new();
    n.state_lines(&mut s, 7200.0);
    assert!(s.contains("acked"), "{s}");
    // An escalation clears the ack and is sent.
    n.on_event(&c, &ev("www2.x", "cpu_load", "sick", "crit", 9.0, 7300.0), "up", 7300.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 7300.0).len(), 2);
}

#[test]
fn silence_mutes_but_resolve_still_sent() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.silence(&c, "www3.x", None, 500.0).unwrap();
    n.on_event(&c, &ev("www3.x", "cpu_load", "ok", "sick", 5.0, 10.0), "up", 10.0).unwrap();
    assert!(deliver(&c, &mut n, 10.0).is_empty());
    let mut s = String::new();
    n.state_lines(&mut s, 10.0);
    assert!(
        s.contains("silenced 1") && s.contains("unsent") && s.contains("silence www3.x *"),
        "{s}"
    );
    // Never sent, so no recovery either.
    n.on_event(&c, &ev("www3.x", "cpu_load", "sick", "ok", 1.0, 20.0), "up", 20.0).unwrap();
    assert!(deliver(&c, &mut n, 20.0).is_empty());
    // Alert sent first, then silenced: the resolve still goes out.
    n.on_event(&c, &ev("www4.x", "cpu_load", "ok", "sick", 5.0, 30.0), "up", 30.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 30.0).len(), 1);
    n.silence(&c, "www4.x", Some("cpu_load"), 1e9).unwrap();
    assert!(deliver(&c, &mut n, 4000.0).is_empty(), "no reminder while silenced");
    n.on_event(&c, &ev("www4.x", "cpu_load", "sick", "ok", 1.0, 4100.0), "up", 4100.0).unwrap();
    assert_eq!(
        deliver(&c, &mut n, 4100.0),
        vec!["hook recovery [hbmon] www4 cpu_load recovered: ok (1)"]
    );
}

#[test]
fn flapping_sends_one_notice_then_settles() {
    let w = work();
    let (c, mut n) = setup(&w);
    let mut sent = Vec::new();
    for i in 0..10 {
        let (o, nw) = if i % 2 == 0 { ("ok", "sick") } else { ("sick", "ok") };
        let t = i as f64 * 2.0;
        n.on_event(&c, &ev("www5.x", "cpu_load", o, nw, 1.0, t), "up", t).unwrap();
        sent.extend(deliver(&c, &mut n, t));
    }
    let kinds: Vec<&str> = sent.iter().map(|s| s.split(' ').nth(1).unwrap_or("")).collect();
    assert_eq!(kinds, vec!["alert", "recovery", "alert", "flapping"], "{sent:?}");
    // Last change was to ok at t=18; settled after the window: nothing owed
    // beyond the recovery of the alert sent at t=4.
    assert_eq!(n.dump()["alerts"][0]["flapping"], true);
    let settled = deliver(&c, &mut n, 200.0);
    assert_eq!(settled, vec!["hook recovery [hbmon] www5 cpu_load recovered: ok (1)"]);
}

#[test]
fn storm_becomes_one_digest_per_user() {
    let w = work();
    let (c, mut n) = setup(&w);
    let mut prompt = Vec::new();
    for i in 0..20 {
        let t = 1000.0 + i as f64 * 0.1;
        n.on_event(&c, &ev(&format!("h{i}.x"), "heartbeat", "ok", "sick", 1.0, t), "down", t)
            .unwrap();
        prompt.extend(deliver(&c, &mut n, t));
    }
    assert_eq!(prompt.len(), 3, "the first alerts go out at once: {prompt:?}");
    let mut s = String::new();
    n.state_lines(&mut s, 1002.0);
    assert!(s.contains("held 17"), "{s}");
    assert!(deliver(&c, &mut n, 1003.0).is_empty(), "storm still on");
    let d = n.tick(&c, 1006.95).unwrap();
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].msg.kind, Kind::Digest);
    assert_eq!(d[0].msg.subject, "[hbmon] digest: 17 alerts, 0 recoveries");
    assert!(d[0].msg.body.contains("h19 heartbeat sick (1)"));
}

#[test]
fn two_hundred_hosts_down_in_two_seconds_with_default_noise() {
    let mut w = work();
    w.noise = Noise::default();
    let (c, mut n) = setup(&w);
    let mut prompt = 0;
    for i in 0..200 {
        let t = i as f64 * 0.01;
        n.on_event(&c, &ev(&format!("n{i}.x"), "heartbeat", "ok", "crit", 0.0, t), "down", t)
            .unwrap();
        prompt += deliver(&c, &mut n, t).len();
    }
    // ann: 10 events each to hook + pager at once, then one digest per channel.
    assert_eq!(prompt, 20);
    let later = n.tick(&c, 7.0).unwrap();
    assert_eq!(later.len(), 2, "one digest per channel of the user");
    assert!(later.iter().all(|j| j.msg.subject == "[hbmon] digest: 190 alerts, 0 recoveries"));
}

#[test]
fn children_of_a_down_parent_are_suppressed() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("router.x", "heartbeat", "ok", "crit", 0.0, 1.0), "down", 1.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 1.0).len(), 2);
    n.on_event(&c, &ev("www1.x", "heartbeat", "ok", "crit", 0.0, 2.0), "down", 2.0).unwrap();
    assert!(deliver(&c, &mut n, 2.0).is_empty());
    let mut s = String::new();
    n.state_lines(&mut s, 2.0);
    assert!(
        s.contains("alert www1.x heartbeat crit") && s.contains("suppressed-by=router.x"),
        "{s}"
    );
    // The parent's reminder lists the child.
    let r = n.tick(&c, 3601.0).unwrap();
    assert!(r.iter().any(|j| j.msg.body.contains("Suppressed (children of this host): www1.x")));
    for j in r {
        n.on_done(&c, NotifyDone { id: j.id, result: Ok(()) }, 3601.0).unwrap();
    }
    // Parent back up: its recovery now; the child, still down one
    // heartbeat + grace later, alerts on its own then (ok -> crit).
    n.on_event(&c, &ev("router.x", "heartbeat", "crit", "ok", 1.0, 3700.0), "up", 3700.0).unwrap();
    let got = deliver(&c, &mut n, 3700.0);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got.iter().all(|g| g.contains("recovery [hbmon] router heartbeat")), "{got:?}");
    assert!(deliver(&c, &mut n, 3714.9).is_empty());
    let j = n.tick(&c, 3715.0).unwrap();
    assert_eq!(j.len(), 2, "{j:?}");
    assert!(j.iter().all(|j| j.msg.subject == "[hbmon] www1 heartbeat crit (0)"), "{j:?}");
    assert!(j[0].msg.body.contains("Level:  ok -> crit\n"), "{}", j[0].msg.body);
}

#[test]
fn child_down_before_its_parent_waits_then_is_listed() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("www1.x", "heartbeat", "ok", "crit", 0.0, 1.0), "down", 1.0).unwrap();
    assert!(deliver(&c, &mut n, 1.0).is_empty(), "waits for the parent");
    assert_eq!(n.next_deadline(), Some(16.0), "heartbeat 10 s + grace 5 s");
    n.on_event(&c, &ev("router.x", "heartbeat", "ok", "crit", 0.0, 4.0), "down", 4.0).unwrap();
    let got = n.tick(&c, 4.0).unwrap();
    assert_eq!(got.len(), 2, "router alert to hook and pager only");
    assert!(got.iter().all(|j| j.msg.host == "router.x"));
    assert!(got[0].msg.body.contains("Suppressed (children of this host): www1.x"));
    for j in got {
        n.on_done(&c, NotifyDone { id: j.id, result: Ok(()) }, 4.0).unwrap();
    }
    assert!(deliver(&c, &mut n, 20.0).is_empty());
    // Without a down parent, the wait ends in an alert.
    n.on_event(&c, &ev("router.x", "heartbeat", "crit", "ok", 1.0, 30.0), "up", 30.0).unwrap();
    assert_eq!(deliver(&c, &mut n, 30.0).len(), 2, "the router's recoveries");
    let mut got = deliver(&c, &mut n, 45.0);
    got.sort();
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[0].starts_with("hook alert [hbmon] www1 heartbeat crit"), "{got:?}");
    assert!(got[1].starts_with("pager alert [hbmon] www1 heartbeat crit"), "{got:?}");
}

#[test]
fn child_alerts_after_wait_when_parent_stays_up() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("router.x", "cpu_load", "ok", "ok", 0.0, 0.0), "up", 0.0).unwrap();
    n.on_event(&c, &ev("www1.x", "heartbeat", "ok", "crit", 0.0, 1.0), "down", 1.0).unwrap();
    assert!(deliver(&c, &mut n, 15.9).is_empty());
    assert_eq!(deliver(&c, &mut n, 16.0).len(), 2);
}

#[test]
fn retries_back_off_fail_and_survive_restart() {
    let w = work();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("www6.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
    let j = n.tick(&c, 1.0).unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].msg.kind, Kind::Alert);
    // Recovery queued before the alert is delivered: one per channel in flight, in order.
    n.on_event(&c, &ev("www6.x", "cpu_load", "sick", "ok", 1.0, 1.5), "up", 1.5).unwrap();
    let fail = |id| NotifyDone { id, result: Err("connection refused".into()) };
    n.on_done(&c, fail(j[0].id), 1.0).unwrap();
    assert_eq!(n.next_deadline(), Some(6.0));
    assert!(n.tick(&c, 5.9).unwrap().is_empty());
    let j = n.tick(&c, 6.0).unwrap();
    assert_eq!(j.len(), 1);
    // Crash while in flight: a new Notifier on the same db resends it.
    drop(n);
    let mut n = Notifier::new(&c, &w, &levels(), &Intervals::default(), None).unwrap();
    let again = n.tick(&c, 7.0).unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, j[0].id);
    let mut t = 7.0;
    let mut id = again[0].id;
    let mut delays = Vec::new();
    for i in 0..outbox::MAX_TRIES - 1 {
        n.on_done(&c, fail(id), t).unwrap();
        if i == outbox::MAX_TRIES - 2 {
            break;
        }
        let next = n.next_deadline().unwrap_or(t);
        delays.push(next - t);
        t = next;
        let js = n.tick(&c, t).unwrap();
        assert_eq!(js.len(), 1, "try {i}");
        id = js[0].id;
    }
    assert_eq!(delays, vec![10.0, 20.0, 40.0, 80.0, 160.0, 300.0]);
    let mut s = String::new();
    n.state_lines(&mut s, t);
    assert!(s.contains("failed 1") && s.contains("connection refused"), "{s}");
    assert_eq!(n.dump()["failed"][0]["tries"], outbox::MAX_TRIES);
    // The failed alert no longer blocks its recovery.
    let r = n.tick(&c, t + 1.0).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].msg.kind, Kind::Recovery);
}

#[test]
fn deadman_ping_every_interval() {
    let mut w = work();
    w.deadman_url = Some("http://127.0.0.1:9/ping".into());
    let (c, mut n) = setup(&w);
    let j = n.tick(&c, 10.0).unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(j[0].id, DEADMAN_ID);
    assert!(n.tick(&c, 20.0).unwrap().is_empty(), "one ping in flight at most");
    n.on_done(&c, NotifyDone { id: DEADMAN_ID, result: Err("down".into()) }, 20.0).unwrap();
    assert_eq!(n.next_deadline(), Some(70.0));
    let mut s = String::new();
    n.state_lines(&mut s, 20.0);
    assert!(s.contains("deadman failed: down"));
    assert_eq!(n.tick(&c, 70.0).unwrap().len(), 1);
}
