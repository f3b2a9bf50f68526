//! The decisions alone: literal events and times into a `Model`, the
//! `Write`s out; no database. The row ids an apply layer would hand back
//! are given by hand (`queued_row`) where a test needs them.

use super::super::tests::{ev, levels, work};
use super::*;
use crate::notify::{NotifyDone, DEADMAN_ID};
use crate::work::model::{AlertRule, Channel};

fn model(w: &ServerWork) -> Model {
    let mut m = Model::default();
    m.reload(w, &levels(), &Intervals::default(), None);
    m
}

fn no_facts() -> Facts {
    Facts::default()
}

/// The queued deliveries: "channel user kind" (+ " held"), sorted.
fn sent(ws: &[Write]) -> Vec<String> {
    let mut v: Vec<String> = ws
        .iter()
        .filter_map(|w| match w {
            Write::Enqueue { channel, user, msg, held, .. } => Some(format!(
                "{channel} {user} {}{}",
                msg.kind.as_str(),
                if *held { " held" } else { "" }
            )),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

fn quiet(ws: &[Write]) -> Vec<Why> {
    ws.iter()
        .filter_map(|w| match w {
            Write::Quiet { why, .. } => Some(why.clone()),
            _ => None,
        })
        .collect()
}

fn key(h: &str, i: &str) -> Key {
    (h.to_string(), i.to_string())
}

#[test]
fn escalation_is_sent_a_deescalation_recorded_and_the_recovery_goes_to_all() {
    let mut w = work();
    w.noise.flap_changes = 10;
    let mut m = model(&w);
    let k = key("db1.x", "disk_used:/");
    let ws = m.on_event(
        &ev("db1.x", "disk_used:/", "ok", "sick", 91.2, 100.0),
        "up",
        100.0,
        &no_facts(),
    );
    assert_eq!(sent(&ws), vec!["hook ann alert"]);
    assert!(ws.contains(&Write::SaveAlert(k.clone())), "{ws:?}");
    let first = ws.iter().find_map(|w| match w {
        Write::Enqueue { first_of, .. } => first_of.clone(),
        _ => None,
    });
    assert_eq!(first, Some(k.clone()), "the episode's first row is remembered");
    let ws = m.on_event(
        &ev("db1.x", "disk_used:/", "sick", "crit", 99.0, 110.0),
        "up",
        110.0,
        &no_facts(),
    );
    assert_eq!(sent(&ws), vec!["bobhook bob alert", "hook ann alert", "pager ann alert"]);
    let ws = m.on_event(
        &ev("db1.x", "disk_used:/", "crit", "sick", 95.0, 120.0),
        "up",
        120.0,
        &no_facts(),
    );
    assert!(sent(&ws).is_empty());
    assert_eq!(quiet(&ws), vec![Why::AlreadyTold]);
    assert_eq!(m.alert(&k).map(|a| a.level_name.as_str()), Some("sick"));
    let ws = m.on_event(
        &ev("db1.x", "disk_used:/", "sick", "ok", 50.0, 130.0),
        "up",
        130.0,
        &no_facts(),
    );
    assert_eq!(sent(&ws), vec!["bobhook bob recovery", "hook ann recovery", "pager ann recovery"]);
    let a = m.alert(&k).unwrap();
    assert!(a.notified.is_empty() && a.sent_level.is_none() && !a.acked, "{a:?}");
}

#[test]
fn a_quiet_event_writes_nothing_and_an_unrouted_one_says_why() {
    let mut w = work();
    let mut m = model(&w);
    let ws = m.on_event(&ev("www9.x", "cpu_load", "sick", "ok", 1.0, 1.0), "up", 1.0, &no_facts());
    assert!(ws.is_empty(), "best level, no alert state, host up: {ws:?}");
    // Only bob's rule (disk_used:* at crit): a sick cpu_load reaches nobody.
    w.alerts.remove(0);
    let mut m = model(&w);
    let ws = m.on_event(&ev("db1.x", "cpu_load", "ok", "sick", 3.0, 1.0), "up", 1.0, &no_facts());
    assert!(sent(&ws).is_empty());
    assert_eq!(quiet(&ws), vec![Why::NoRoute]);
    // A host coming back from an unsettled state is looked at.
    let ws = m.on_event(&ev("db2.x", "heartbeat", "ok", "ok", 0.0, 2.0), "late", 2.0, &no_facts());
    assert!(!ws.is_empty());
}

#[test]
fn reminders_every_renotify_until_acked() {
    let w = work();
    let mut m = model(&w);
    let k = key("www2.x", "cpu_load");
    m.on_event(&ev("www2.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0, &no_facts());
    assert_eq!(m.next_deadline(None), Some(3600.0));
    assert_eq!(m.next_deadline(Some(12.0)), Some(12.0), "a due outbox row comes first");
    assert!(sent(&m.tick(3599.0, &no_facts())).is_empty());
    let ws = m.tick(3600.0, &no_facts());
    assert_eq!(sent(&ws), vec!["hook ann reminder"]);
    assert!(ws.contains(&Write::SaveAlert(k.clone())));
    assert_eq!(m.next_deadline(None), Some(7200.0));
    assert_eq!(m.ack("www2.x", "cpu_load"), Some(vec![Write::SaveAlert(k.clone())]));
    assert_eq!(m.ack("www2.x", "nope"), None);
    assert!(sent(&m.tick(7200.0, &no_facts())).is_empty(), "acked");
    assert_eq!(m.next_deadline(None), None);
    let ws = m.on_event(
        &ev("www2.x", "cpu_load", "sick", "crit", 9.0, 7300.0),
        "up",
        7300.0,
        &no_facts(),
    );
    assert_eq!(
        sent(&ws),
        vec!["hook ann alert", "pager ann alert"],
        "an escalation clears the ack"
    );
    assert!(!m.alert(&k).unwrap().acked);
}

#[test]
fn a_silence_mutes_then_its_end_alerts_what_is_still_bad() {
    let w = work();
    let mut m = model(&w);
    let ws = m.silence("www3.x", None, 500.0);
    assert_eq!(
        ws,
        vec![Write::SaveSilence { host: "www3.x".into(), item: "".into(), until: 500.0 }]
    );
    let ws =
        m.on_event(&ev("www3.x", "cpu_load", "ok", "sick", 5.0, 10.0), "up", 10.0, &no_facts());
    assert!(sent(&ws).is_empty());
    assert_eq!(quiet(&ws), vec![Why::Silenced]);
    assert_eq!(m.next_deadline(None), Some(500.0), "the silence's end");
    assert!(sent(&m.tick(499.0, &no_facts())).is_empty());
    let ws = m.tick(500.0, &no_facts());
    assert_eq!(ws.first(), Some(&Write::DropSilences(500.0)));
    assert_eq!(sent(&ws), vec!["hook ann alert"]);
    let body = ws.iter().find_map(|w| match w {
        Write::Enqueue { msg, .. } => Some(msg.body.clone()),
        _ => None,
    });
    assert!(body.unwrap_or_default().contains("still bad when the silence ended"));
    // Silenced after it was sent: the resolve still goes out.
    m.silence("www3.x", Some("cpu_load"), 1e9);
    assert!(sent(&m.tick(4200.0, &no_facts())).is_empty(), "no reminder while silenced");
    let ws =
        m.on_event(&ev("www3.x", "cpu_load", "sick", "ok", 1.0, 4300.0), "up", 4300.0, &no_facts());
    assert_eq!(sent(&ws), vec!["hook ann recovery"]);
}

#[test]
fn flapping_is_told_once_and_settles_to_the_recovery() {
    let w = work(); // more than 3 changes in 100 s is flapping
    let mut m = model(&w);
    let mut kinds = Vec::new();
    for i in 0..10 {
        let (o, nw) = if i % 2 == 0 { ("ok", "sick") } else { ("sick", "ok") };
        let t = i as f64 * 2.0;
        for s in sent(&m.on_event(&ev("www5.x", "cpu_load", o, nw, 1.0, t), "up", t, &no_facts())) {
            kinds.push(s);
        }
    }
    assert_eq!(
        kinds,
        vec!["hook ann alert", "hook ann recovery", "hook ann alert", "hook ann flapping"]
    );
    let k = key("www5.x", "cpu_load");
    assert!(m.alert(&k).unwrap().flapping);
    assert_eq!(m.next_deadline(None), Some(118.0), "settles a window after the last change");
    assert!(sent(&m.tick(117.0, &no_facts())).is_empty());
    let ws = m.tick(118.0, &no_facts());
    assert_eq!(sent(&ws), vec!["hook ann recovery"], "it settled at ok");
    assert!(!m.alert(&k).is_some_and(|a| a.flapping));
}

#[test]
fn a_storm_holds_a_users_deliveries_and_digests_them_once_it_ends() {
    let w = work(); // more than 3 events in 5 s is a storm
    let mut m = model(&w);
    let mut all = Vec::new();
    for i in 0..20 {
        let t = 1000.0 + i as f64 * 0.1;
        let e = ev(&format!("h{i}.x"), "heartbeat", "ok", "sick", 1.0, t);
        all.extend(sent(&m.on_event(&e, "down", t, &no_facts())));
    }
    let held = all.iter().filter(|s| s.ends_with(" held")).count();
    assert_eq!((all.len(), held), (20, 17), "the first 3 go out at once: {all:?}");
    let ws = m.tick(1003.0, &no_facts());
    assert!(!ws.iter().any(|w| matches!(w, Write::Digest { .. })), "storm still on");
    assert_eq!(m.next_deadline(None), Some(1006.9));
    let ws = m.tick(1006.95, &no_facts());
    let digests: Vec<&Write> = ws.iter().filter(|w| matches!(w, Write::Digest { .. })).collect();
    assert_eq!(digests, vec![&Write::Digest { user: "ann".into() }]);
    // Held rows a previous process left are digested too, unless in a storm.
    let f = Facts { held_users: vec!["bob".into()], ..Default::default() };
    assert!(m.tick(2000.0, &f).contains(&Write::Digest { user: "bob".into() }));
}

#[test]
fn alertmanager_channels_are_never_held() {
    let mut w = work();
    w.channels.push(Channel {
        name: "am".into(),
        kind: "alertmanager".into(),
        target: "http://127.0.0.1:9/".into(),
        options: Default::default(),
    });
    w.users[0].channels.push("am".into());
    let mut m = model(&w);
    let mut all = Vec::new();
    for i in 0..6 {
        let e = ev(&format!("h{i}.x"), "heartbeat", "ok", "sick", 1.0, 1.0);
        all.extend(sent(&m.on_event(&e, "down", 1.0, &no_facts())));
    }
    assert!(all.iter().filter(|s| s.starts_with("am ")).all(|s| !s.ends_with("held")), "{all:?}");
    assert_eq!(all.iter().filter(|s| s.starts_with("hook ") && s.ends_with("held")).count(), 3);
}

#[test]
fn a_down_parent_takes_its_childs_alert_and_releases_it_after_a_wait() {
    let w = work(); // www1.x's parent is router.x
    let mut m = model(&w);
    m.on_event(&ev("router.x", "heartbeat", "ok", "crit", 0.0, 10.0), "down", 10.0, &no_facts());
    let ws =
        m.on_event(&ev("www1.x", "cpu_load", "ok", "sick", 1.0, 11.0), "up", 11.0, &no_facts());
    assert!(sent(&ws).is_empty());
    assert_eq!(quiet(&ws), vec![Why::SuppressedBy("router.x".into())]);
    let k = key("www1.x", "cpu_load");
    assert_eq!(m.alert(&k).unwrap().suppressed_by.as_deref(), Some("router.x"));
    // The parent comes back: the child waits one heartbeat + grace (15 s).
    let ws =
        m.on_event(&ev("router.x", "heartbeat", "crit", "ok", 0.0, 20.0), "up", 20.0, &no_facts());
    assert!(ws.contains(&Write::SaveAlert(k.clone())), "{ws:?}");
    assert_eq!(m.alert(&k).unwrap().wait_parent_until, Some(35.0));
    assert_eq!(m.next_deadline(None), Some(35.0));
    assert!(sent(&m.tick(34.0, &no_facts())).is_empty());
    assert_eq!(sent(&m.tick(35.0, &no_facts())), vec!["hook ann alert"], "still bad: told now");
}

#[test]
fn a_child_in_trouble_waits_for_its_parents_verdict() {
    let w = work();
    let mut m = model(&w);
    let ws =
        m.on_event(&ev("www1.x", "heartbeat", "ok", "sick", 0.0, 5.0), "late", 5.0, &no_facts());
    assert_eq!(quiet(&ws), vec![Why::WaitParent]);
    assert_eq!(m.next_deadline(None), Some(20.0));
    // The parent goes down meanwhile: the child is folded into its alert.
    m.on_event(&ev("router.x", "heartbeat", "ok", "crit", 0.0, 8.0), "down", 8.0, &no_facts());
    let k = key("www1.x", "heartbeat");
    assert_eq!(m.alert(&k).unwrap().suppressed_by.as_deref(), Some("router.x"));
    assert!(sent(&m.tick(20.0, &no_facts())).is_empty());
}

#[test]
fn a_recovery_withdraws_what_never_left_and_follows_what_did() {
    let w = work();
    let k = key("www6.x", "cpu_load");
    for left in [false, true] {
        let mut m = model(&w);
        m.on_event(&ev("www6.x", "cpu_load", "ok", "sick", 5.0, 1.0), "up", 1.0, &no_facts());
        m.queued_row(&k, "hook", 7); // the id the apply layer got
        let back = ev("www6.x", "cpu_load", "sick", "ok", 1.0, 2.0);
        assert_eq!(m.event_withdraw_candidates(&back), vec![("hook".to_string(), 7)]);
        let f =
            Facts { withdrawable: if left { [].into() } else { [7].into() }, ..Default::default() };
        let ws = m.on_event(&back, "up", 2.0, &f);
        let withdrawn = ws.iter().any(|w| {
            *w == Write::Withdraw {
                host: "www6.x".into(),
                item: "cpu_load".into(),
                channel: "hook".into(),
                from: 7,
            }
        });
        assert_eq!(withdrawn, !left, "{ws:?}");
        assert_eq!(sent(&ws), if left { vec!["hook ann recovery"] } else { vec![] });
    }
    // An escalation withdraws nothing: no candidates asked about.
    let mut m = model(&w);
    m.on_event(&ev("www6.x", "cpu_load", "ok", "sick", 5.0, 1.0), "up", 1.0, &no_facts());
    m.queued_row(&k, "hook", 7);
    assert!(m
        .event_withdraw_candidates(&ev("www6.x", "cpu_load", "sick", "crit", 9.0, 2.0))
        .is_empty());
}

#[test]
fn a_work_change_moves_an_alerts_channels_to_its_users() {
    let w = work();
    let mut m = model(&w);
    let k = key("www7.x", "cpu_load");
    m.on_event(&ev("www7.x", "cpu_load", "ok", "sick", 5.0, 1.0), "up", 1.0, &no_facts());
    let mut w2 = w.clone();
    w2.channels.push(Channel { name: "hook2".into(), ..w.channels[0].clone() });
    w2.users[0].channels = vec!["hook2".into()];
    let ws = m.reload(&w2, &levels(), &Intervals::default(), None);
    assert_eq!(ws.first(), Some(&Write::RetargetOutbox), "the outbox rows follow first");
    assert!(ws.contains(&Write::SaveAlert(k.clone())));
    let a = m.alert(&k).unwrap();
    assert_eq!(a.notified.iter().collect::<Vec<_>>(), vec!["hook2"]);
    assert_eq!(a.users.get("hook2").map(String::as_str), Some("ann"));
    // The user gone: no recovery through its channel, and the log says so.
    let mut w3 = w2.clone();
    w3.users.remove(0);
    w3.alerts = vec![AlertRule { users: vec!["bob".into()], ..w.alerts[0].clone() }];
    let ws = m.reload(&w3, &levels(), &Intervals::default(), None);
    assert!(
        ws.iter().any(|w| matches!(w, Write::Note(n) if n.contains("no recovery through hook2"))),
        "{ws:?}"
    );
    assert!(m.alert(&k).unwrap().notified.is_empty());
    // An unchanged work writes nothing for the alert.
    let ws = m.reload(&w3, &levels(), &Intervals::default(), None);
    assert_eq!(ws, vec![Write::RetargetOutbox]);
}

#[test]
fn delivery_outcomes_and_the_deadman_switch() {
    let mut w = work();
    w.deadman_url = Some("http://127.0.0.1:9/ping".into());
    w.channels[0].options.insert("retries".into(), "2".into());
    let mut m = model(&w);
    assert_eq!(m.on_done(NotifyDone { id: 4, result: Ok(()) }), vec![Write::Delivered(4)]);
    assert_eq!(
        m.on_done(NotifyDone { id: 5, result: Err("refused".into()) }),
        vec![Write::FailedTry { id: 5, error: "refused".into() }]
    );
    assert_eq!((m.max_tries("hook"), m.max_tries("bobhook")), (2, outbox::MAX_TRIES));
    let j = m.deadman(0.0).unwrap();
    assert_eq!((j.id, j.channel.target.as_str()), (DEADMAN_ID, "http://127.0.0.1:9/ping"));
    assert!(m.deadman(100.0).is_none(), "one in flight at a time");
    assert_eq!(m.next_deadline(None), None);
    assert!(m.on_done(NotifyDone { id: DEADMAN_ID, result: Err("down".into()) }).is_empty());
    assert_eq!(m.deadman_error.as_deref(), Some("down"));
    assert_eq!(m.next_deadline(None), Some(60.0));
    assert!(m.deadman(59.0).is_none());
    assert!(m.deadman(60.0).is_some());
    // A due row whose channel left the work fails instead of going.
    let due = |ch: &str| outbox::Due {
        id: 9,
        channel: ch.into(),
        msg: message::digest(&[], 0.0),
        tries: 0,
    };
    assert_eq!(m.job(due("gone"), 1.0).err(), Some((9, "channel no longer in the work")));
    assert_eq!(m.job(due("hook"), 1.0).map(|j| j.channel.name), Ok("hook".to_string()));
}

#[test]
fn a_silence_ends_at_its_until() {
    let w = work();
    let mut m = model(&w);
    m.silence("www8.x", Some("cpu_load"), 50.0);
    let ws =
        m.on_event(&ev("www8.x", "cpu_load", "ok", "sick", 5.0, 49.0), "up", 49.0, &no_facts());
    assert_eq!(quiet(&ws), vec![Why::Silenced]);
    m.silence("www8.x", Some("load_avg"), 50.0);
    let ws =
        m.on_event(&ev("www8.x", "load_avg", "ok", "sick", 5.0, 50.0), "up", 50.0, &no_facts());
    assert_eq!(sent(&ws), vec!["hook ann alert"], "a silence until 50 is over at 50");
}

#[test]
fn a_child_keeps_waiting_until_its_wait_ends_and_a_late_parent_makes_it_wait() {
    let w = work(); // www1.x's parent is router.x; heartbeat + grace = 15 s
    let mut m = model(&w);
    m.on_event(&ev("www1.x", "heartbeat", "ok", "sick", 0.0, 5.0), "late", 5.0, &no_facts());
    let k = key("www1.x", "heartbeat");
    assert_eq!(m.alert(&k).unwrap().wait_parent_until, Some(20.0));
    // Worse meanwhile, its own host back up, the parent fine: still waits.
    let ws =
        m.on_event(&ev("www1.x", "heartbeat", "sick", "crit", 0.0, 10.0), "up", 10.0, &no_facts());
    assert!(sent(&ws).is_empty(), "{ws:?}");
    assert_eq!(quiet(&ws), vec![Why::WaitParent]);
    assert_eq!(m.alert(&k).unwrap().wait_parent_until, Some(20.0));
    // A late parent: a child in no trouble of its own waits one heartbeat + grace.
    let mut m = model(&w);
    m.on_event(&ev("router.x", "heartbeat", "ok", "sick", 0.0, 30.0), "late", 30.0, &no_facts());
    let ws =
        m.on_event(&ev("www1.x", "cpu_load", "ok", "sick", 1.0, 31.0), "up", 31.0, &no_facts());
    assert_eq!(quiet(&ws), vec![Why::WaitParent]);
    assert_eq!(m.alert(&key("www1.x", "cpu_load")).unwrap().wait_parent_until, Some(46.0));
}

#[test]
fn a_first_alert_starts_its_episode_from_the_best_level() {
    let w = work();
    let mut m = model(&w);
    let k = key("db1.x", "cpu_load");
    let ws =
        m.on_event(&ev("db1.x", "cpu_load", "ok", "sick", 3.0, 100.0), "up", 100.0, &no_facts());
    let old: Vec<String> = ws
        .iter()
        .filter_map(|w| match w {
            Write::Enqueue { msg, .. } => Some(msg.old.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(old, vec!["ok"]);
    assert_eq!(m.alert(&k).unwrap().since, 100.0);
    m.on_event(&ev("db1.x", "cpu_load", "sick", "crit", 9.0, 110.0), "up", 110.0, &no_facts());
    assert_eq!(m.alert(&k).unwrap().since, 100.0, "an escalation is the same episode");
}

#[test]
fn a_down_parent_folds_only_its_own_untold_children() {
    let w = work(); // www1.x's parent is router.x
    let mut m = model(&w);
    m.silence("www2.x", None, 1e9); // an untold alert of a host that is no child
    m.on_event(&ev("www2.x", "cpu_load", "ok", "sick", 1.0, 1.0), "up", 1.0, &no_facts());
    m.on_event(&ev("www1.x", "cpu_load", "ok", "sick", 1.0, 2.0), "up", 2.0, &no_facts());
    m.on_event(&ev("router.x", "heartbeat", "ok", "crit", 0.0, 3.0), "down", 3.0, &no_facts());
    assert_eq!(m.alert(&key("www2.x", "cpu_load")).unwrap().suppressed_by, None);
    // www1.x was told before its parent went down: not folded either.
    assert_eq!(m.alert(&key("www1.x", "cpu_load")).unwrap().suppressed_by, None);
}

#[test]
fn a_parent_dropped_by_a_new_work_still_releases_its_children() {
    let w = work(); // www1.x's parent is router.x
    let mut m = model(&w);
    m.on_event(&ev("router.x", "heartbeat", "ok", "crit", 0.0, 10.0), "down", 10.0, &no_facts());
    m.on_event(&ev("www1.x", "cpu_load", "ok", "sick", 1.0, 11.0), "up", 11.0, &no_facts());
    let k = key("www1.x", "cpu_load");
    assert_eq!(m.alert(&k).unwrap().suppressed_by.as_deref(), Some("router.x"));
    let mut w2 = w.clone();
    w2.parents.clear();
    m.reload(&w2, &levels(), &Intervals::default(), None);
    m.on_event(&ev("router.x", "heartbeat", "crit", "ok", 0.0, 20.0), "up", 20.0, &no_facts());
    let a = m.alert(&k).unwrap();
    assert_eq!((a.suppressed_by.as_deref(), a.wait_parent_until), (None, Some(35.0)));
}

#[test]
fn no_reminders_when_renotify_is_off() {
    let w = work();
    let mut m = Model::default();
    let iv = Intervals { renotify: 0.0, ..Intervals::default() };
    m.reload(&w, &levels(), &iv, None);
    m.on_event(&ev("www2.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0, &no_facts());
    assert_eq!(m.next_deadline(None), None);
    assert!(sent(&m.tick(1e6, &no_facts())).is_empty());
}

#[test]
fn a_flapping_alert_back_at_best_offers_its_queued_rows_for_withdrawal() {
    let w = work(); // more than 3 changes in 100 s is flapping
    let mut m = model(&w);
    let k = key("www5.x", "cpu_load");
    assert!(m.tick_withdraw_candidates().is_empty());
    for (i, (o, nw)) in
        [("ok", "sick"), ("sick", "ok"), ("ok", "sick"), ("sick", "ok")].iter().enumerate()
    {
        let t = i as f64;
        m.on_event(&ev("www5.x", "cpu_load", o, nw, 1.0, t), "up", t, &no_facts());
        if i == 2 {
            m.queued_row(&k, "hook", 7); // the second alert's row
            assert!(m.tick_withdraw_candidates().is_empty(), "alerting: nothing to withdraw");
        }
    }
    assert!(m.alert(&k).unwrap().flapping);
    assert_eq!(m.tick_withdraw_candidates(), vec![(k.clone(), "hook".to_string(), 7)]);
    // It settles at ok with that row never sent: withdrawn, no recovery.
    let f = Facts { withdrawable: [7].into(), ..Default::default() };
    let ws = m.tick(200.0, &f);
    assert!(ws.iter().any(|w| matches!(w, Write::Withdraw { from: 7, .. })), "{ws:?}");
    assert!(sent(&ws).is_empty(), "{ws:?}");
}

#[test]
fn an_ended_silence_is_forgotten_and_only_its_own_hosts_alerts_are_told_why() {
    let w = work();
    let mut m = model(&w);
    m.silence("www9.x", None, 20.0);
    m.silence("www1.x", Some("load_avg"), 20.0); // another item of the same host
    m.on_event(&ev("www1.x", "heartbeat", "ok", "sick", 0.0, 5.0), "late", 5.0, &no_facts());
    assert_eq!(m.next_deadline(None), Some(20.0));
    let ws = m.tick(20.0, &no_facts());
    let bodies: Vec<String> = ws
        .iter()
        .filter_map(|w| match w {
            Write::Enqueue { msg, .. } => Some(msg.body.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(bodies.len(), 1, "www1.x's wait for its parent ended: {ws:?}");
    assert!(!bodies[0].contains("silence ended"), "neither silence was this alert's: {bodies:?}");
    assert!(m.silences.is_empty());
    assert_eq!(m.next_deadline(None), Some(3620.0), "the next reminder, not the old silence");
}
