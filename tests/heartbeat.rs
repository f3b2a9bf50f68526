//! Issue 5: the UDP heartbeat path between real processes: up with an RTT,
//! late then down after SIGKILL, reboot on restart, a planned stop, garbage
//! datagrams made with Python's zlib, the fleet key, and a server restart
//! that remembers every host.

mod common;
use common::*;
use serde_json::Value;
use std::process::Command;

const HB: &str = "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n";
/// The fixed rule (`detector fixed`), for the test that times its late and down.
const HB_FIXED: &str =
    "ival_heartbeat 1s\ngrace 1s\nmissed 3\ndetector fixed\nival_make_state 1h\n";

fn host_line(srv: &Host, name: &str) -> Option<String> {
    let st = srv.try_cmd("STATE")?;
    let want = format!("-- host {name} ");
    st.lines().find(|l| l.starts_with(&want)).map(String::from)
}

fn hb_events(srv: &Host, host: &str, item: &str) -> Vec<Value> {
    let v: Value =
        serde_json::from_str(&srv.body(&format!("CLIENTS {host} {item} 100"))).expect("json");
    v["events"].as_array().cloned().unwrap_or_default()
}

fn craft(srv: &Host, case: &str, name: &str, key: Option<&str>) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tools/udp_craft.py");
    let mut c = Command::new("python3");
    c.args([script, &srv.ip.to_string(), &srv.port.to_string(), case, name]);
    if let Some(k) = key {
        c.arg(k);
    }
    let st = c.status().expect("python3");
    assert!(st.success(), "udp_craft {case}");
}

/// `-- udp refused REASON N` counters.
fn refused(srv: &Host, reason: &str) -> u64 {
    let st = srv.cmd("STATE");
    let want = format!("-- udp refused {reason} ");
    st.lines()
        .find(|l| l.starts_with(&want))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

/// N of STATE's `-- udp received N ...`: datagrams the server has read.
fn udp_received(srv: &Host) -> u64 {
    let st = srv.cmd("STATE");
    st.lines()
        .find_map(|l| l.strip_prefix("-- udp received "))
        .and_then(|r| r.split(' ').next()?.parse().ok())
        .expect("a '-- udp received N' line in STATE")
}

#[test]
fn up_late_down_reboot_and_planned_stop() {
    let mut f = Fleet::new(&["srv", "www1"], HB_FIXED, "");
    f.start_all();
    let name = format!("www1.{DOMAIN}");
    let l = wait_for(10.0, "www1 up with an rtt", || {
        host_line(f.server(), &name).filter(|l| l.contains(" up ") && l.contains(" rtt "))
    });
    assert!(!l.contains(" rtt -"), "{l}");
    // SIGKILL: late, then down within interval x missed + grace (+1 s).
    f.host("www1").kill9();
    let killed = now_wall();
    wait_for(10.0, "late", || host_line(f.server(), &name).filter(|l| l.contains(" late ")));
    wait_for(10.0, "down", || host_line(f.server(), &name).filter(|l| l.contains(" down ")));
    // Events are answered from server.db, stored by its thread just after
    // the change STATE shows: awaited.
    let (evs, down) = wait_for(10.0, "the down event", || {
        let evs = hb_events(f.server(), &name, "heartbeat");
        let down = evs.iter().rev().find(|e| e["new_level"] == "dead")?.clone();
        Some((evs, down))
    });
    let after = down["time"].as_f64().unwrap() - killed;
    eprintln!("down {after:.2}s after SIGKILL (limit 1 x 3 + 1 + 1 = 5 s)");
    assert!(after <= 5.0 + 0.5, "down only {after:.2}s after the kill");
    assert!(evs.iter().any(|e| e["new_level"] == "sick"), "late is an event too: {evs:?}");
    // Restart: up again, and a reboot event.
    f.host("www1").start();
    wait_for(10.0, "up again", || host_line(f.server(), &name).filter(|l| l.contains(" up ")));
    wait_for(10.0, "reboot event", || {
        (!hb_events(f.server(), &name, "reboot").is_empty()).then_some(())
    });
    // A clean stop says shutdown=1: down at once, as a planned stop.
    // (Only the HTB's shutdown=1 makes a host `stopped`: a silent one goes
    // late and down instead, so no clock is needed to tell them apart.)
    let stop_at = now_wall();
    f.host("www1").stop();
    wait_for(20.0, "stopped", || host_line(f.server(), &name).filter(|l| l.contains(" stopped")));
    let last = wait_for(10.0, "the stop's event", || {
        let evs = hb_events(f.server(), &name, "heartbeat");
        evs.last().filter(|e| e["time"].as_f64().is_some_and(|t| t >= stop_at - 0.5)).cloned()
    });
    assert_ne!(last["new_level"], "dead", "a planned stop is not a failure: {last}");
    assert!(last["message"].as_str().unwrap_or("").contains("shutdown"), "{last}");
}

/// The default detector (tuned, issue 15): a SIGKILLed client is never
/// `late`; it is suspected, probed by the server and its peers, and `down`
/// with who tried in the event.
#[test]
fn by_default_a_killed_client_is_confirmed_down_without_late() {
    let mut f = Fleet::new(&["srv", "www1", "www2", "www3"], HB, "");
    f.start_all();
    let name = format!("www1.{DOMAIN}");
    f.server().wait_state(60.0, "all up", |s| {
        ["www1", "www2", "www3"].iter().all(|t| s.contains(&format!("-- host {t}.{DOMAIN} up")))
    });
    f.host("www1").kill9();
    wait_for(30.0, "down", || host_line(f.server(), &name).filter(|l| l.contains(" down ")));
    let evs = hb_events(f.server(), &name, "heartbeat");
    let down = evs.iter().rev().find(|e| e["new_level"] == "dead").expect("a down event");
    let msg = down["message"].as_str().unwrap_or("");
    assert!(msg.contains("confirmed down, probed by the server"), "{down}");
    assert!(
        msg.contains(&format!("www2.{DOMAIN}")) && msg.contains(&format!("www3.{DOMAIN}")),
        "{down}"
    );
    assert!(!evs.iter().any(|e| e["new_level"] == "sick"), "no late from silence: {evs:?}");
}

fn now_wall() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64()
}

#[test]
fn garbage_datagrams_are_counted_and_the_server_stays_up() {
    let mut f = Fleet::new(&["srv"], HB, "");
    f.host("srv").start();
    let srv = f.server();
    craft(srv, "htb", "py.example.org", None);
    craft(srv, "htb_space", "py.example.org", None);
    craft(srv, "plg", "py.example.org", None);
    craft(srv, "json_semicolon", "py.example.org", None);
    wait_for(5.0, "the python host", || host_line(srv, "py.example.org"));
    let d: Value = serde_json::from_str(&srv.body("DUMP")).expect("dump");
    let py = d["server"]["udp"]["hosts"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["name"] == "py.example.org"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(py["items"]["disk.used_pct"], 42.5, "{py}");
    assert_eq!(py["items"]["app.count"], 3.0, "{py}");
    for case in ["truncated", "zipbomb", "bad_utf8", "big", "novalue", "garbage"] {
        craft(srv, case, "py.example.org", None);
    }
    wait_for(5.0, "six refusals", || {
        let st = srv.cmd("STATE");
        let total: u64 = st
            .lines()
            .filter(|l| l.starts_with("-- udp refused "))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum();
        (total >= 6).then_some(())
    });
    let st = srv.body("STATE");
    assert!(
        st.lines().filter(|l| l.starts_with("-- udp refused ")).count() >= 3,
        "reasons counted apart:\n{st}"
    );
    assert!(srv.cmd("PING").contains("PONG"));
}

#[test]
fn fleet_key_drops_unsigned_forged_and_replayed() {
    let mut f = Fleet::new(&["srv", "www1"], HB, "key s3cret-fleet\n");
    f.start_all();
    let name = format!("www1.{DOMAIN}");
    // hbmon's own clients sign: www1 is up.
    wait_for(10.0, "www1 up", || host_line(f.server(), &name).filter(|l| l.contains(" up ")));
    let srv = f.server();
    craft(srv, "signed", "py.example.org", Some("s3cret-fleet"));
    wait_for(5.0, "signed accepted", || host_line(srv, "py.example.org"));
    craft(srv, "unsigned", "evil.example.org", Some("s3cret-fleet"));
    craft(srv, "forged", "evil.example.org", Some("s3cret-fleet"));
    craft(srv, "replayed", "evil.example.org", Some("s3cret-fleet"));
    wait_for(5.0, "three refusals", || {
        (refused(srv, "unsigned") >= 1
            && refused(srv, "bad_sig") >= 1
            && refused(srv, "stale") >= 1)
            .then_some(())
    });
    assert!(host_line(srv, "evil.example.org").is_none(), "a refused datagram made a host");
}

#[test]
fn a_server_restart_remembers_every_host() {
    let mut f = Fleet::new(&["srv", "www1", "www2"], HB, "");
    f.start_all();
    for t in ["www1", "www2"] {
        let name = format!("{t}.{DOMAIN}");
        wait_for(10.0, "up", || host_line(f.server(), &name).filter(|l| l.contains(" up ")));
    }
    let before: usize = ["www1", "www2"]
        .iter()
        .map(|t| hb_events(f.server(), &format!("{t}.{DOMAIN}"), "heartbeat").len())
        .sum();
    f.host("srv").stop();
    f.host("srv").start();
    for t in ["www1", "www2"] {
        let name = format!("{t}.{DOMAIN}");
        let l = host_line(f.server(), &name).expect("remembered after restart");
        assert!(!l.contains(" new "), "{l}");
        wait_for(10.0, "up", || host_line(f.server(), &name).filter(|l| l.contains(" up ")));
    }
    // Two more heartbeats from each client reach the server after both are
    // up again: any event they were to cause has been made by then.
    let n0 = udp_received(f.server());
    wait_for(20.0, "four more heartbeats", || (udp_received(f.server()) >= n0 + 4).then_some(()));
    let after: usize = ["www1", "www2"]
        .iter()
        .map(|t| hb_events(f.server(), &format!("{t}.{DOMAIN}"), "heartbeat").len())
        .sum();
    assert_eq!(after, before, "a restart of the server made heartbeat events");
    // Nor a "new host" one (a new host's event is of its heartbeat item).
    let news: Vec<Value> = hb_events(f.server(), "", "heartbeat")
        .into_iter()
        .filter(|e| e["message"].as_str().is_some_and(|m| m.starts_with("new host")))
        .collect();
    assert!(news.is_empty(), "{news:?}");
}

#[test]
fn the_journal_records_every_received_message_and_rotates() {
    let mut f = Fleet::new(&["srv", "www1"], HB, "");
    let c = std::fs::read_to_string(&f.hosts[0].conf).unwrap();
    f.hosts[0].write_conf(&format!(
        "{c}journal_enabled yes\njournal_max_size 2k\njournal_max_backups 2\n"
    ));
    f.start_all();
    let journal = f.hosts[0].dir.join("log/messages.journal");
    let line = wait_for(10.0, "a journal entry from www1", || {
        let text = std::fs::read_to_string(&journal).ok()?;
        text.lines().find(|l| l.contains("www1.fleet.test")).map(String::from)
    });
    let v: Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(v["source_ip"], f.hosts[1].ip.to_string(), "{v}");
    assert!(
        v["timestamp"].as_f64().is_some()
            && v["datetime"].is_string()
            && v["source_port"].is_number(),
        "{v}"
    );
    assert_eq!(v["message"]["name"], "www1.fleet.test", "{v}");
    // 2 KiB fills in a few seconds of 1 s heartbeats: rotated and gzipped, at most 2 kept.
    let dir = f.hosts[0].dir.join("log");
    let rotated = wait_for(20.0, "a rotated journal", || {
        let names: Vec<String> = std::fs::read_dir(&dir)
            .ok()?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("messages.journal.") && n.ends_with(".gz"))
            .collect();
        (!names.is_empty()).then_some(names)
    });
    assert!(rotated.len() <= 2, "{rotated:?}");
    let st = f.server().body("STATE");
    assert!(st.contains("-- journal written"), "{st}");
}

/// `-- udp received N accepted N acked N refused N`: (received, acked).
fn udp_counts(srv: &Host) -> Option<(u64, u64)> {
    let st = srv.try_cmd("STATE")?;
    let l = st.lines().find_map(|l| l.strip_prefix("-- udp received "))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    let acked = w.iter().position(|x| *x == "acked").and_then(|i| w.get(i + 1)?.parse().ok())?;
    Some((w.first()?.parse().ok()?, acked))
}

/// Issue 18: an hbd-style sender (an HTB without the `ack` field) still
/// gets an ACK for every heartbeat, each echoing its seq.
#[test]
fn hbd_style_sender_gets_an_ack_for_every_heartbeat_18() {
    use hbmon::wire::{encode, Decoder, Value};
    let mut f = Fleet::new(&["srv"], HB, "");
    f.start_all();
    let srv = f.server();
    let s = std::net::UdpSocket::bind((srv.ip, 0)).expect("bind");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).expect("timeout");
    let to = std::net::SocketAddr::new(srv.ip.into(), srv.port);
    let mut dec = Decoder::new();
    let mut buf = [0u8; 2048];
    for seq in 0..12i64 {
        // hbd's hbc: name, ts, seq, interval and nothing of ours.
        let d = encode(
            "HTB",
            &[
                ("name", Value::Str("old.hbd.example".into())),
                ("ts", Value::Float(now_wall())),
                ("seq", Value::Int(seq)),
                ("interval", Value::Int(1)),
            ],
        );
        s.send_to(&d, to).expect("send");
        let (n, _) = s.recv_from(&mut buf).expect("an ACK for every hbd-style heartbeat");
        let m = dec.decode(&buf[..n]).expect("an ACK");
        assert_eq!(m.id, "ACK");
        assert_eq!(m.get("seq").and_then(|v| v.as_i64()), Some(seq));
    }
}

/// Issue 18: our own clients ask for an ACK only every few heartbeats (so
/// the server sends fewer ACKs than it receives heartbeats), yet a work
/// change still reaches a client through an unasked heartbeat's ACK (the
/// client never polls here), and a server that stops answering is noticed.
#[test]
fn clients_ask_for_fewer_acks_and_still_see_work_changes_and_silence_18() {
    let work = "ival_heartbeat 0.5s\nival_server_dead 4s\nival_check_work 1h\n\
                ival_send_report 1h\nival_make_state 1h\n";
    let mut f = Fleet::new(&["srv", "c1"], work, "");
    f.start_all();
    f.host("c1").wait_state(20.0, "the work fetched", |s| s.contains("(fetched)"));
    let (r0, a0) = wait_for(10.0, "udp counters", || udp_counts(f.server()));
    let (r1, a1) =
        wait_for(60.0, "30 more heartbeats", || udp_counts(f.server()).filter(|c| c.0 >= r0 + 30));
    // ask_every is 1 + floor(4 / 2 / 0.5) = 4 (the cap): about a quarter.
    let (got, answered) = (r1 - r0, a1 - a0);
    assert!(answered * 2 < got, "{answered} ACKs for {got} heartbeats");
    assert!(answered > 0, "RTT samples are still asked for");

    // A new work for c1: only an ACK can tell it (no polls, no reports).
    let text = std::fs::read_to_string(&f.workconf).expect("work");
    std::fs::write(&f.workconf, format!("{text}get c1 procs\n")).expect("write work");
    f.mkwork();
    f.host("c1")
        .wait_state(30.0, "the new work via an ACK", |s| s.lines().any(|l| l.contains("procs")));

    // The server goes silent: c1's asks go unanswered and it says so.
    f.hosts[0].kill9();
    let c1 = f.host("c1");
    c1.wait_state(30.0, "the server item down", |s| {
        s.lines().any(|l| l.contains("server") && l.contains("no ACK from the server"))
    });
}
