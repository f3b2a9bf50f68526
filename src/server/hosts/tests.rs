use super::*;
use crate::wire::{encode, encode_signed, Value};
use crate::work::model::Ports;

fn entry(name: &str, addr: &str) -> HostEntry {
    HostEntry {
        host: name.into(),
        tag: name.into(),
        address: addr.into(),
        ports: Ports::default(),
        groups: vec!["all".into()],
    }
}

/// The fixed rule (`detector fixed`): these tests time its late and down.
fn iv(interval: f64) -> Intervals {
    Intervals {
        heartbeat: interval,
        grace: 0.5,
        missed: 3,
        detector_tuned: false,
        ..Intervals::default()
    }
}

fn table(key: Option<&[u8]>) -> HostTable {
    HostTable::new(
        TableConf { intervals: iv(1.0), key: key.map(|k| k.to_vec()) },
        &[entry("a.example", "127.0.0.2")],
    )
}

fn at(t: f64) -> Now {
    Now { mono: t, wall: 1_000_000.0 + t }
}

fn htb(name: &str, seq: i64, extra: &[(&str, Value)]) -> Vec<u8> {
    let mut p = vec![
        ("name", Value::Str(name.into())),
        ("ts", Value::Float(1_000_000.0)),
        ("seq", Value::Int(seq)),
        ("interval", Value::Int(1)),
        ("rtt", Value::Float(0.31)),
    ];
    p.extend(extra.iter().cloned());
    encode("HTB", &p)
}

fn from() -> SocketAddr {
    "127.0.0.2:40000".parse().unwrap()
}

fn feed(
    t: &mut HostTable,
    d: &[u8],
    now: Now,
) -> (Result<Accepted, Refused>, Vec<HostChange>, Vec<u8>) {
    let mut ack = Vec::new();
    let mut ch = Vec::new();
    let r = t.on_datagram(d, from(), now, &mut ack, &mut ch);
    (r, ch, ack)
}

fn kinds(ch: &[HostChange]) -> Vec<ChangeKind> {
    ch.iter().map(|c| c.kind.clone()).collect()
}

#[test]
fn first_heartbeat_new_to_up_with_ack() {
    let mut t = table(None);
    assert_eq!(t.host("a.example").unwrap().state, Reach::New);
    let (r, ch, ack) = feed(&mut t, &htb("a.example", 1, &[("boot", Value::Bool(true))]), at(0.0));
    assert_eq!(r, Ok(Accepted::Htb));
    // boot=1 on the very first contact is not a reboot.
    assert_eq!(kinds(&ch), vec![ChangeKind::Heartbeat { old: Reach::New, new: Reach::Up }]);
    t.set_work_lm("a.example", 1_764_588_000_123);
    let (_, _, ack2) = feed(&mut t, &htb("a.example", 2, &[]), at(1.0));
    let mut dec = Decoder::new();
    let m = dec.decode(&ack).unwrap();
    assert_eq!(m.id, "ACK");
    assert_eq!(m.get("seq"), Some(Val::Plain("1")));
    assert_eq!(m.get("ts"), Some(Val::Plain("1000000.00000")));
    assert_eq!(m.get("srv_ts").unwrap().as_f64(), Some(1_000_000.0));
    assert_eq!(m.get("work").unwrap().as_f64(), Some(0.0));
    // The version goes as an integer of ms, byte for byte (issue 12 item 17).
    assert_eq!(dec.decode(&ack2).unwrap().get("work"), Some(Val::Plain("1764588000123")));
    // srv_ts is formatted once per clock reading (issue 18): each ACK
    // still carries its own.
    assert_eq!(dec.decode(&ack2).unwrap().get("srv_ts"), Some(Val::Plain("1000001.00000")));
    let h = t.host("a.example").unwrap();
    assert_eq!(h.rtt_ms, Some(0.31));
    assert_eq!(h.seq, Some(2));
    assert_eq!(t.host_by_ip("127.0.0.2".parse().unwrap()), Some("a.example"));
    let (_, _, ack3) = feed(&mut t, &htb("a.example", 3, &[]), at(1.0));
    assert_eq!(dec.decode(&ack3).unwrap().get("srv_ts"), Some(Val::Plain("1000001.00000")));
}

/// The default (tuned) detector: a work host is never `late` from silence,
/// it is suspected (`down` to the table, confirmed by `confirm.rs`); a name
/// not in the work, which the server cannot probe, goes late then down by
/// the tuned phi's own thresholds.
#[test]
fn tuned_default_suspects_work_hosts_and_judges_strangers_alone() {
    let conf = TableConf { intervals: Intervals { grace: 0.5, ..Intervals::default() }, key: None };
    let mut t = HostTable::new(conf, &[entry("a.example", "127.0.0.2")]);
    for s in 1..=20 {
        let now = at(s as f64);
        let _ = feed(&mut t, &htb("a.example", s, &[]), now);
        let _ = feed(&mut t, &htb("z.example", s, &[]), now);
    }
    let mut seen = Vec::new();
    let mut now = 20.0;
    while now < 40.0 {
        now += 0.05;
        for c in t.check(at(now)) {
            seen.push((c.host, c.kind));
        }
    }
    let a: Vec<&ChangeKind> = seen.iter().filter(|(h, _)| h == "a.example").map(|x| &x.1).collect();
    assert_eq!(a, vec![&ChangeKind::Heartbeat { old: Reach::Up, new: Reach::Down }], "{seen:?}");
    let z: Vec<&ChangeKind> = seen.iter().filter(|(h, _)| h == "z.example").map(|x| &x.1).collect();
    assert_eq!(
        z,
        vec![
            &ChangeKind::Heartbeat { old: Reach::Up, new: Reach::Late },
            &ChangeKind::Heartbeat { old: Reach::Late, new: Reach::Down }
        ],
        "{seen:?}"
    );
}

#[test]
fn late_then_down_by_deadline_then_up() {
    let mut t = table(None);
    let _ = feed(&mut t, &htb("a.example", 1, &[]), at(0.0));
    assert!(t.check(at(1.4)).is_empty());
    let d = t.next_deadline().unwrap();
    assert!((d - 1.5).abs() < 0.01, "deadline {d}");
    let ch = t.check(at(1.6));
    assert_eq!(kinds(&ch), vec![ChangeKind::Heartbeat { old: Reach::Up, new: Reach::Late }]);
    let ch = t.check(at(3.6));
    assert_eq!(kinds(&ch), vec![ChangeKind::Heartbeat { old: Reach::Late, new: Reach::Down }]);
    assert_eq!(t.next_deadline(), None);
    let (_, ch, _) = feed(&mut t, &htb("a.example", 5, &[("boot", Value::Bool(true))]), at(10.0));
    assert_eq!(
        kinds(&ch),
        vec![ChangeKind::Reboot, ChangeKind::Heartbeat { old: Reach::Down, new: Reach::Up }]
    );
    assert_eq!(t.host("a.example").unwrap().seq_gaps, 0, "no gap counted across a boot");
}

#[test]
fn a_mass_outage_is_judged_in_batches() {
    let n = CHECK_BATCH * 2 + 7;
    let entries: Vec<HostEntry> =
        (0..n).map(|i| entry(&format!("h{i}.example"), "127.0.0.2")).collect();
    let mut t = HostTable::new(TableConf { intervals: iv(1.0), key: None }, &entries);
    for i in 0..n {
        let _ = feed(&mut t, &htb(&format!("h{i}.example"), 1, &[]), at(0.0));
    }
    let mut sizes = Vec::new();
    loop {
        let ch = t.check(at(1.6));
        if ch.is_empty() {
            break;
        }
        // What is left is still due: the next turn takes it.
        assert!(t.next_deadline().is_some_and(|d| d <= 1.6) || sizes.len() == 2);
        sizes.push(ch.len());
    }
    assert_eq!(sizes, vec![CHECK_BATCH, CHECK_BATCH, 7]);
}

/// Hosts still heartbeating have deadlines that fall due (each is re-judged
/// and pushed again): one call looks at no more than `CHECK_POPS` of them,
/// however many are due, and the rest are still due for the next call.
#[test]
fn a_check_looks_at_a_bounded_number_of_deadlines() {
    let n = CHECK_POPS * 2 + 5;
    let entries: Vec<HostEntry> =
        (0..n).map(|i| entry(&format!("h{i}.example"), "127.0.0.2")).collect();
    let mut t = HostTable::new(TableConf { intervals: iv(1.0), key: None }, &entries);
    for i in 0..n {
        let _ = feed(&mut t, &htb(&format!("h{i}.example"), 1, &[]), at(0.0));
    }
    // Every host heartbeats again at 1.0: the entries from 0.0 fall due
    // with nothing to change.
    for i in 0..n {
        let _ = feed(&mut t, &htb(&format!("h{i}.example"), 2, &[]), at(1.0));
    }
    let late = |t: &HostTable| t.hosts().iter().filter(|h| h.state != Reach::Up).count();
    let mut calls = 0;
    while t.next_deadline().is_some_and(|d| d <= 1.6) {
        let before = t.r.heap.iter().filter(|r| r.0 .0 <= 1_600_000).count();
        assert!(t.check(at(1.6)).is_empty());
        let after = t.r.heap.iter().filter(|r| r.0 .0 <= 1_600_000).count();
        assert!(before - after <= CHECK_POPS, "{before} -> {after}");
        calls += 1;
        assert!(calls <= 3, "the due entries were not worked off");
    }
    assert_eq!(calls, 3);
    assert_eq!(late(&t), 0);
    assert_eq!(t.r.heap.len(), n, "one entry per host");
}

#[test]
fn heartbeats_keep_host_up_without_heap_growth() {
    let mut t = table(None);
    for i in 0..100 {
        let _ = feed(&mut t, &htb("a.example", i, &[]), at(i as f64));
        assert!(t.check(at(i as f64 + 0.9)).is_empty());
    }
    assert_eq!(t.r.heap.len(), 1);
    assert_eq!(t.host("a.example").unwrap().window.len(), crate::server::detector::WINDOW);
}

#[test]
fn shutdown_is_planned_stop_at_once() {
    let mut t = table(None);
    let _ = feed(&mut t, &htb("a.example", 1, &[]), at(0.0));
    let (_, ch, _) =
        feed(&mut t, &htb("a.example", 2, &[("shutdown", Value::Bool(true))]), at(0.5));
    assert_eq!(kinds(&ch), vec![ChangeKind::Heartbeat { old: Reach::Up, new: Reach::Stopped }]);
    assert!(ch[0].message.contains("planned"));
    assert!(t.check(at(100.0)).is_empty());
}

#[test]
fn unknown_name_is_new_host_and_seq_gaps_count() {
    let mut t = table(None);
    let (_, ch, _) = feed(&mut t, &htb("z.example", 1, &[]), at(0.0));
    assert_eq!(ch[0].kind, ChangeKind::NewHost);
    assert_eq!(ch[1].kind, ChangeKind::Heartbeat { old: Reach::New, new: Reach::Up });
    let _ = feed(&mut t, &htb("z.example", 5, &[]), at(1.0));
    let h = t.host("z.example").unwrap();
    assert_eq!(h.seq_gaps, 3);
    assert!(!h.in_work);
}

#[test]
fn lower_uptime_is_reboot() {
    let mut t = table(None);
    let _ = feed(&mut t, &htb("a.example", 1, &[("uptime", Value::Int(500))]), at(0.0));
    let (_, ch, _) = feed(&mut t, &htb("a.example", 2, &[("uptime", Value::Int(3))]), at(1.0));
    assert_eq!(kinds(&ch), vec![ChangeKind::Reboot]);
}

#[test]
fn plg_items_and_refusals_counted() {
    let mut t = table(None);
    let plg = encode(
        "PLG",
        &[
            ("name", Value::Str("a.example".into())),
            ("plugin", Value::Str("cpu_monitor".into())),
            ("cpu_percent", Value::Float(45.2)),
            ("state", Value::Str("ok".into())),
        ],
    );
    assert_eq!(feed(&mut t, &plg, at(0.0)).0, Ok(Accepted::Plg));
    let h = t.host("a.example").unwrap();
    assert_eq!(h.items.get("cpu_monitor.cpu_percent"), Some(&ItemVal::Num(45.2)));
    assert_eq!(h.items.get("cpu_monitor.state"), Some(&ItemVal::Text("ok".into())));
    assert_eq!(feed(&mut t, b"junk", at(0.0)).0, Err(Refused("no_header")));
    assert_eq!(feed(&mut t, b"!HTB:junk", at(0.0)).0, Err(Refused("inflate")));
    assert_eq!(feed(&mut t, &encode("XYZ", &[]), at(0.0)).0, Err(Refused("unknown_id")));
    let noname = encode("HTB", &[("seq", Value::Int(1))]);
    // No name, but the source address is known from the work: accepted.
    assert_eq!(feed(&mut t, &noname, at(0.0)).0, Ok(Accepted::Htb));
    assert_eq!(t.stats().refused, 3);
    assert_eq!(t.refusals().get("inflate"), Some(&1));
    let mut s = String::new();
    t.state_lines(&mut s, at(1.0));
    assert!(s.contains("-- udp received 5 accepted 2 acked 0 refused 3\n"), "{s}");
    assert!(s.contains("-- udp refused no_header 1\n"));
    assert!(s.contains("-- host a.example up seen 1s"), "{s}");
    let d = t.dump(at(1.0));
    assert_eq!(d["refused_by_source"]["127.0.0.2"]["count"], 3);
}

#[test]
fn source_map_is_bounded() {
    let mut t = table(None);
    let (mut ack, mut ch) = (Vec::new(), Vec::new());
    for i in 0..(MAX_SOURCES as u32 + 100) {
        let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
        let _ = t.on_datagram(b"x", SocketAddr::new(ip.into(), 1), at(0.0), &mut ack, &mut ch);
    }
    assert_eq!(t.r.by_source.len(), MAX_SOURCES);
    assert_eq!(t.r.other_sources, 100);
}

#[test]
fn fleet_key_enforced() {
    let key = b"k3y";
    let mut t = table(Some(key));
    let pairs = [
        ("name", Value::Str("a.example".into())),
        ("ts", Value::Float(1_000_000.0)),
        ("seq", Value::Int(1)),
    ];
    assert_eq!(feed(&mut t, &encode("HTB", &pairs), at(0.0)).0, Err(Refused("unsigned")));
    let forged = encode_signed("HTB", &pairs, Some(b"wrong"));
    assert_eq!(feed(&mut t, &forged, at(0.0)).0, Err(Refused("bad_sig")));
    let good = encode_signed("HTB", &pairs, Some(key));
    let (r, _, ack) = feed(&mut t, &good, at(0.0));
    assert_eq!(r, Ok(Accepted::Htb));
    // Replayed ten minutes later.
    assert_eq!(feed(&mut t, &good, at(600.0)).0, Err(Refused("stale")));
    // The ACK is signed too.
    let mut dec = Decoder::new();
    let m = dec.decode(&ack).unwrap();
    assert_eq!(wire::verify(&m, key, 1_000_000.0), Verified::Ok);
}

#[test]
fn persist_round_trip_no_new_events_and_grace() {
    let conn = crate::server::db::open_in_memory().unwrap();
    let mut t = table(None);
    let _ =
        feed(&mut t, &htb("a.example", 1, &[("ver", Value::Str("hbmon-0.1.0".into()))]), at(0.0));
    let _ = feed(&mut t, &htb("z.example", 1, &[]), at(0.0));
    t.save(&conn).unwrap();
    let mut t2 = table(None);
    assert_eq!(t2.load(&conn, at(50.0)).unwrap(), 2);
    let h = t2.host("z.example").unwrap();
    assert_eq!(h.state, Reach::Up);
    assert_eq!(h.last_seen, Some(50.0));
    assert_eq!(&*t2.host("a.example").unwrap().version, "hbmon-0.1.0");
    // One interval of grace from the load, then the rule applies.
    assert!(t2.check(at(51.0)).is_empty());
    assert_eq!(t2.check(at(51.6)).len(), 2);
    // A heartbeat after restart from a known host is no "new host".
    let (_, ch, _) = feed(&mut t2, &htb("z.example", 2, &[]), at(52.0));
    assert!(!ch.iter().any(|c| c.kind == ChangeKind::NewHost));
}

fn feed_from(
    t: &mut HostTable,
    d: &[u8],
    from: &str,
    now: Now,
) -> (Result<Accepted, Refused>, Vec<u8>) {
    let (mut ack, mut ch) = (Vec::new(), Vec::new());
    let r = t.on_datagram(d, from.parse().unwrap(), now, &mut ack, &mut ch);
    (r, ack)
}

#[test]
fn forged_names_beyond_hbd_senders_are_bounded_strangers_13_2() {
    let intervals = Intervals { hbd_senders: 3, ..iv(1.0) };
    let mut t =
        HostTable::new(TableConf { intervals, key: None }, &[entry("a.example", "127.0.0.2")]);
    let mut news = 0;
    for i in 0..3_000 {
        let (mut ack, mut ch) = (Vec::new(), Vec::new());
        let r = t.on_datagram(&htb(&format!("f{i}.x"), 1, &[]), from(), at(0.0), &mut ack, &mut ch);
        news += ch.iter().filter(|c| c.kind == ChangeKind::NewHost).count();
        assert_eq!(r.is_ok(), i < 3, "{i}");
        assert_eq!(ack.is_empty(), i >= 3, "strangers get no ACK");
    }
    assert_eq!(t.hosts().len(), 4, "work host + 3 hbd-style senders");
    assert_eq!(news, 3);
    assert_eq!(t.strangers().len(), strangers::MAX_STRANGERS);
    assert_eq!(t.strangers().stats.datagrams, 3_000 - 3);
    assert_eq!(t.refusals().get("stranger"), Some(&(3_000 - 3)));
    let mut st = String::new();
    t.state_lines(&mut st, at(0.0));
    assert!(st.contains("-- strangers held 1024 of 1024 names 2997"), "{st}");
    assert!(t.dump(at(0.0))["strangers"]["recent"].as_array().is_some_and(|a| a.len() == 1024));
}

#[test]
fn new_host_events_are_rate_limited_13_2() {
    let intervals = Intervals { hbd_senders: 100, ..iv(1.0) };
    let mut t = HostTable::new(TableConf { intervals, key: None }, &[]);
    let count = |t: &mut HostTable, range: std::ops::Range<i32>, now: Now| {
        range
            .map(|i| {
                let (mut ack, mut ch) = (Vec::new(), Vec::new());
                let _ =
                    t.on_datagram(&htb(&format!("n{i}.x"), 1, &[]), from(), now, &mut ack, &mut ch);
                ch.iter().filter(|c| c.kind == ChangeKind::NewHost).count()
            })
            .sum::<usize>()
    };
    assert_eq!(count(&mut t, 0..50, at(0.0)), 10, "a burst of 10");
    assert_eq!(count(&mut t, 50..60, at(60.0)), 10, "then 10 a minute");
    assert_eq!(t.hosts().len(), 60, "records are made all the same");
}

#[test]
fn a_work_host_name_from_another_address_is_refused_13_3() {
    let mut t = table(None);
    let (r, ack) = feed_from(&mut t, &htb("a.example", 1, &[]), "127.0.0.9:5000", at(0.0));
    assert_eq!(r, Err(Refused("wrong_source")));
    assert!(ack.is_empty());
    assert_eq!(t.host("a.example").unwrap().state, Reach::New);
    let (r, _) = feed_from(
        &mut t,
        &htb("a.example", 2, &[("shutdown", Value::Bool(true))]),
        "127.0.0.9:5000",
        at(0.0),
    );
    assert!(r.is_err());
    let d = t.dump(at(0.0));
    let src = &d["refused_by_source"]["127.0.0.9"];
    assert_eq!((src["count"].as_u64(), src["name"].as_str()), (Some(2), Some("a.example")), "{d}");
    // From its own address (any port), or an address allowed for it.
    assert_eq!(
        feed_from(&mut t, &htb("a.example", 3, &[]), "127.0.0.2:1", at(0.0)).0,
        Ok(Accepted::Htb)
    );
    t.allow_sources("a.example", &["127.0.0.7".parse().unwrap()]);
    assert_eq!(
        feed_from(&mut t, &htb("a.example", 4, &[]), "127.0.0.7:1", at(0.5)).0,
        Ok(Accepted::Htb)
    );
    assert_eq!(t.host("a.example").unwrap().state, Reach::Up);
}

fn signed(name: &str, seq: i64, bid: i64, ts: f64) -> Vec<u8> {
    let p = vec![
        ("name", Value::Str(name.into())),
        ("ts", Value::Float(ts)),
        ("seq", Value::Int(seq)),
        ("bid", Value::Int(bid)),
    ];
    encode_signed("HTB", &p, Some(b"k"))
}

#[test]
fn signed_replays_are_dropped_13_4() {
    let mut t = table(Some(b"k"));
    let d = signed("a.example", 5, 77, 1_000_000.0);
    // A signature speaks for the host from anywhere.
    assert_eq!(feed_from(&mut t, &d, "127.0.0.9:1", at(0.0)).0, Ok(Accepted::Htb));
    for _ in 0..20 {
        assert_eq!(feed_from(&mut t, &d, "127.0.0.9:1", at(1.0)).0, Err(Refused("replay")));
    }
    assert_eq!(t.refusals().get("replay"), Some(&20));
    assert_eq!(
        feed_from(&mut t, &signed("a.example", 6, 77, 1_000_001.0), "127.0.0.2:1", at(1.0)).0,
        Ok(Accepted::Htb)
    );
    // A restart (new boot identity) starts at 1 again.
    assert_eq!(
        feed_from(&mut t, &signed("a.example", 1, 78, 1_000_002.0), "127.0.0.2:1", at(2.0)).0,
        Ok(Accepted::Htb)
    );
    assert_eq!(feed_from(&mut t, &d, "127.0.0.2:1", at(2.0)).0, Err(Refused("replay")));
}

#[test]
fn a_stale_clock_is_counted_and_answered_with_clock_off_13_5() {
    let mut t = table(Some(b"k"));
    let d = signed("a.example", 1, 1, 1_000_000.0 + 3600.0);
    let (r, ack) = feed_from(&mut t, &d, "127.0.0.2:1", at(0.0));
    assert_eq!(r, Err(Refused("stale")));
    let mut dec = Decoder::new();
    let m = dec.decode(&ack).expect("a clock_off ACK");
    assert_eq!(m.get("clock_off").and_then(|v| v.as_f64()), Some(3600.0));
    assert_eq!(crate::wire::verify(&m, b"k", 1_003_600.0), crate::wire::Verified::Ok);
    // Rate-limited: the next within 5 s is dropped silently.
    let (_, ack) =
        feed_from(&mut t, &signed("a.example", 2, 1, 1_003_601.0), "127.0.0.2:1", at(1.0));
    assert!(ack.is_empty());
    let (_, ack) =
        feed_from(&mut t, &signed("a.example", 3, 1, 1_003_606.0), "127.0.0.2:1", at(6.0));
    assert!(!ack.is_empty());
    let mut st = String::new();
    t.state_lines(&mut st, at(6.0));
    assert!(
        st.contains("-- udp refused_from 127.0.0.2 stale 3 name a.example clock_off +3600.0s"),
        "{st}"
    );
    // An unsigned stale datagram gets nothing.
    let u = encode("HTB", &[("name", Value::Str("a.example".into())), ("ts", Value::Float(5.0))]);
    assert!(feed_from(&mut t, &u, "127.0.0.2:1", at(20.0)).1.is_empty());
}

/// Issue 18: who gets an ACK. Every HTB of a sender that does not use the
/// `ack` field (hbd-style), every `ack=1` (and any value that is not a
/// clear 0); an `ack=0` only when its `work` differs from ours.
#[test]
fn ack_on_demand_rule_18() {
    let mut t = table(None);
    t.set_work_lm("a.example", 7);
    let cases: &[(&[(&str, Value)], bool)] = &[
        (&[], true),
        (&[("ack", Value::Bool(true))], true),
        (&[("ack", Value::Str("yes".into()))], true),
        (&[("ack", Value::Bool(false))], false),
        (&[("ack", Value::Bool(false)), ("work", Value::Int(7))], false),
        (&[("ack", Value::Bool(false)), ("work", Value::Int(6))], true),
        (&[("ack", Value::Bool(false)), ("work", Value::Str("x".into()))], true),
        (&[("ack", Value::Bool(true)), ("work", Value::Int(7))], true),
    ];
    for (i, (extra, answered)) in cases.iter().enumerate() {
        let (r, _, ack) = feed(&mut t, &htb("a.example", i as i64 + 1, extra), at(i as f64));
        assert_eq!(r, Ok(Accepted::Htb), "case {i}");
        assert_eq!(!ack.is_empty(), *answered, "case {i}: {extra:?}");
    }
    // Not asked and no version known here: nothing to tell.
    let mut t = table(None);
    let d = htb("a.example", 1, &[("ack", Value::Bool(false)), ("work", Value::Int(3))]);
    assert!(feed(&mut t, &d, at(0.0)).2.is_empty());
    assert_eq!(t.host("a.example").unwrap().state, Reach::Up, "accepted all the same");
}

/// Issue 18: an HTB's fields are read in one pass; as with
/// `Message::get`, the first value of a repeated key counts (a later one
/// cannot turn an `ack=0` into an ACK, nor change the interval).
#[test]
fn an_htb_field_given_twice_counts_once_first_18() {
    let mut t = table(None);
    let extra = [
        ("interval", Value::Float(30.0)),
        ("ack", Value::Bool(false)),
        ("interval", Value::Float(99.0)),
        ("ack", Value::Bool(true)),
    ];
    let (r, _, ack) = feed(&mut t, &htb("a.example", 1, &extra), at(0.0));
    assert_eq!(r, Ok(Accepted::Htb));
    assert!(ack.is_empty(), "the first ack=0 counts");
    // `htb` writes interval=1 before the extras.
    assert_eq!(t.host("a.example").unwrap().interval, 1.0);
    let extra = [("ack", Value::Bool(true)), ("ack", Value::Bool(false))];
    let (_, _, ack) = feed(&mut t, &htb("a.example", 2, &extra), at(1.0));
    let m = crate::wire::Decoder::new().decode(&ack).map(|m| m.to_owned_pairs());
    assert!(
        m.as_ref().is_ok_and(|p| p.iter().any(|(k, v)| k == "seq" && *v == Value::Int(2))),
        "{m:?}"
    );
}

/// Issue 18: 100,000 records in well under 100 MiB. A record stays small
/// (the replay guard is boxed, only made with a key), its name is one
/// copy shared with the index, and versions are shared between records up
/// to MAX_VERSIONS distinct ones (a sender inventing versions gets copies).
#[test]
fn host_records_are_compact_and_share_names_and_versions_18() {
    assert!(std::mem::size_of::<Host>() <= 440, "Host is {} bytes", std::mem::size_of::<Host>());
    let intervals = Intervals { hbd_senders: 1000, ..iv(1.0) };
    let mut t = HostTable::new(TableConf { intervals, key: None }, &[]);
    for i in 0..300 {
        let ver = if i < 40 { "hbmon-0.1.0".to_string() } else { format!("v{i}") };
        let d = htb(&format!("h{i}.x"), 1, &[("ver", Value::Str(ver))]);
        assert_eq!(feed(&mut t, &d, at(0.0)).0, Ok(Accepted::Htb));
    }
    let hosts = t.hosts();
    assert!(Arc::ptr_eq(&hosts[0].version, &hosts[39].version), "one shared copy");
    assert_eq!(&*hosts[250].version, "v250");
    assert_eq!(t.r.versions.0.len(), MAX_VERSIONS, "261 distinct versions, 256 shared");
    // The index points at the record's own name.
    let (k, &i) = t.r.by_name.get_key_value("h7.x").unwrap();
    assert!(Arc::ptr_eq(k, &hosts[i as usize].name));
    assert!(hosts.iter().all(|h| h.replay.is_none()), "no key: no replay state");
    // A version longer than 64 characters is cut.
    let d = htb("h0.x", 2, &[("ver", Value::Str("x".repeat(100)))]);
    assert_eq!(feed(&mut t, &d, at(1.0)).0, Ok(Accepted::Htb));
    assert_eq!(t.host("h0.x").unwrap().version.len(), 64);
}

/// Issue 15: a silent host answering the server's probe is up again with
/// the path warning on (one change, however often it answers), counted;
/// [`PATH_CLEAR`] heartbeats later the warning clears.
#[test]
fn answered_probe_warns_about_the_heartbeat_path_once_then_clears() {
    let mut t = table(None);
    let _ = feed(&mut t, &htb("a.example", 1, &[]), at(0.0));
    let _ = feed(&mut t, &htb("a.example", 4, &[]), at(3.0));
    let _ = t.check(at(10.0));
    assert_eq!(t.host("a.example").unwrap().state, Reach::Down);
    let mut ch = Vec::new();
    assert_eq!(t.set_verdict("a.example", Reach::Up, at(10.5), &mut ch), Some(Reach::Down));
    assert_eq!(kinds(&ch), vec![ChangeKind::HeartbeatPath(true)]);
    assert!(ch[0].message.contains("heartbeats lost (2 so far)"), "{}", ch[0].message);
    assert_eq!(ch[0].item(), "heartbeat_path");
    let h = t.host("a.example").unwrap();
    assert_eq!((h.state, h.answered, h.path_warned), (Reach::Up, 1, Some(0)));
    // Silent again, answered again: counted, no second warning.
    let _ = t.check(at(20.0));
    ch.clear();
    assert_eq!(t.set_verdict("a.example", Reach::Up, at(20.5), &mut ch), Some(Reach::Down));
    assert!(ch.is_empty() && t.host("a.example").unwrap().answered == 2, "{ch:?}");
    let mut cleared = Vec::new();
    for k in 0..PATH_CLEAR as i64 {
        let (_, c, _) = feed(&mut t, &htb("a.example", 5 + k, &[]), at(21.0 + k as f64 * 0.5));
        cleared.extend(c.into_iter().filter(|c| matches!(c.kind, ChangeKind::HeartbeatPath(_))));
    }
    assert_eq!(kinds(&cleared), vec![ChangeKind::HeartbeatPath(false)]);
    assert_eq!(t.host("a.example").unwrap().path_warned, None);
}

/// The periodic save copies the table a slice at a time: the slices put
/// together are the whole table's rows, in order, and the last slice says
/// the table's end.
#[test]
fn rows_taken_in_slices_are_the_whole_table() {
    let n = 25;
    let entries: Vec<HostEntry> =
        (0..n).map(|i| entry(&format!("h{i}.example"), "127.0.0.2")).collect();
    let mut t = HostTable::new(TableConf { intervals: iv(1.0), key: None }, &entries);
    for i in 0..n {
        let _ = feed(&mut t, &htb(&format!("h{i}.example"), 1, &[]), at(0.0));
    }
    let (mut rows, mut from, mut slices) = (Vec::new(), 0, 0);
    while from < t.hosts().len() {
        from = t.rows_from(from, 7, &mut rows);
        slices += 1;
    }
    assert_eq!(slices, 4);
    assert_eq!(from, n);
    let whole = t.rows();
    let names = |r: &[SavedHost]| r.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>();
    assert_eq!(names(&rows), names(&whole));
    assert_eq!(t.rows_from(n + 3, 7, &mut rows), n, "past the end: nothing, the end");
    assert_eq!(rows.len(), n);
}

/// The check runs on a 5 ms grain: deadlines in between share one wake-up,
/// none is judged before it is due, and none more than a grain after.
#[test]
fn deadlines_share_a_grain() {
    let entries: Vec<HostEntry> =
        (0..50).map(|i| entry(&format!("g{i}.example"), "127.0.0.2")).collect();
    let mut t = HostTable::new(TableConf { intervals: iv(1.0), key: None }, &entries);
    // Heartbeats 0.1 ms apart: their deadlines (1.5 s later) too.
    for i in 0..50 {
        let _ = feed(&mut t, &htb(&format!("g{i}.example"), 1, &[]), at(i as f64 * 1e-4));
    }
    let d = t.next_deadline().unwrap();
    let grain = CHECK_GRAIN_US as f64 / 1e6;
    assert!(d >= 1.5 && d <= 1.5 + grain + 1e-9, "deadline {d}");
    assert_eq!(((d * 1e6).round() as u64) % CHECK_GRAIN_US, 0, "{d} on the grain");
    // At it, every host whose deadline fell before it is judged at once.
    let ch = t.check(at(d));
    let first = ch.len();
    assert!(first >= 40, "{first} judged at {d}");
    assert!(t.next_deadline().is_some_and(|n| n > d), "the rest on the next grain");
    assert!(t.check(at(1.5)).is_empty(), "nothing before its deadline");
}
