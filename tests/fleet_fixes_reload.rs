//! Issue 12, items 1, 2, 16 and 17, on real processes: reloads keep one
//! schedule per job, the server reloads its own new work-file, a conf's
//! fleet-wide port is the server's, and an idle client never fetches its
//! work again (one integer version in WORK_LM, REPORT answers and ACKs).

mod common;
use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// An external probe that appends the time of each run to `runs`.
fn counting_probe(h: &Host, name: &str, runs: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let dir = h.vardir().join("probes");
    std::fs::create_dir_all(&dir).expect("probes dir");
    let p = dir.join(name);
    let script = format!("#!/bin/sh\ndate +%s.%N >> {}\necho beat 1\n", runs.display());
    std::fs::write(&p, script).expect("write probe");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod probe");
}

fn runs(path: &std::path::Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// `-- NAME N` style counters of a STATE text.
fn counter(state: &str, prefix: &str, word: &str) -> Option<u64> {
    let line = state.lines().find(|l| l.starts_with(prefix))?;
    let mut it = line.split_whitespace();
    it.find(|w| *w == word)?;
    it.next()?.parse().ok()
}

/// How many reloads a host's log tells of (HUP, WORK_RELOAD, fetched work).
fn reloads(h: &Host) -> usize {
    let log = std::fs::read_to_string(h.dir.join("stderr.log")).unwrap_or_default();
    log.matches("reload: work from").count() + log.matches("new work from the server").count()
}

fn add_to_work(f: &Fleet, line: &str) {
    let text = std::fs::read_to_string(&f.workconf).expect("work");
    std::fs::write(&f.workconf, format!("{text}{line}\n")).expect("write work");
}

#[test]
fn reload_keeps_one_schedule_per_item_12_1() {
    let work = "ival_make_state 2s\nival_check_work 1s\nival_send_report 1h\nprobe c1 tick\n";
    let mut f = Fleet::new(&["srv", "c1"], work, "");
    let file = f.dir.path().join("tick.runs");
    counting_probe(&f.hosts[1], "tick", &file);
    f.start_all();
    wait_for(15.0, "the probe's first run", || (!runs(&file).is_empty()).then_some(()));

    // A client that finds newer work at start-up...
    f.host("c1").stop();
    add_to_work(&f, "get c1 uptime");
    f.mkwork();
    f.host("c1").start();
    f.host("c1").wait_state(15.0, "the newer work", |s| item_line(s, "uptime").is_some());
    // ...then WORK_RELOAD, SIGHUP, a live reload after mkwork, WORK_RELOAD, SIGHUP.
    let mut want = reloads(f.host("c1")) + 1;
    let c1 = f.host("c1");
    assert!(c1.body("WORK_RELOAD").contains("reloading"));
    wait_for(10.0, "WORK_RELOAD done", || (reloads(c1) >= want).then_some(()));
    want += 1;
    signal(c1.pid().expect("pid"), libc::SIGHUP);
    wait_for(10.0, "SIGHUP done", || (reloads(c1) >= want).then_some(()));
    add_to_work(&f, "get c1 procs");
    f.mkwork();
    let c1 = f.host("c1");
    c1.wait_state(15.0, "the live reload", |s| item_line(s, "procs").is_some());
    want = reloads(c1) + 1;
    c1.body("WORK_RELOAD");
    wait_for(10.0, "WORK_RELOAD done", || (reloads(c1) >= want).then_some(()));
    want += 1;
    signal(c1.pid().expect("pid"), libc::SIGHUP);
    wait_for(10.0, "SIGHUP done", || (reloads(c1) >= want).then_some(()));

    // Past the reloads' own first rounds, six runs of a 2 s probe take at
    // least 5 intervals with one schedule (a loaded machine only stretches
    // them); the seven schedules of seven reloads would fit them in 2 s.
    let n0 = runs(&file).len();
    wait_for(20.0, "two more runs", || (runs(&file).len() >= n0 + 2).then_some(()));
    let srv = f.server();
    let before = counter(&srv.body("STATE"), "-- commands", "commands").expect("commands");
    let t0 = Instant::now();
    let n1 = runs(&file).len();
    let r = wait_for(40.0, "six more runs", || {
        let r = runs(&file);
        (r.len() >= n1 + 6).then_some(r)
    });
    let span = r[n1 + 5] - r[n1];
    assert!(span >= 7.5, "6 runs of a 2s probe within {span:.2}s: {:?}", &r[n1..]);
    // One WORK_LM poll loop: about one command a second reaches the server
    // (STATE itself is one), not one per loop.
    let after = counter(&srv.body("STATE"), "-- commands", "commands").expect("commands");
    let secs = t0.elapsed().as_secs_f64();
    let polls = after - before - 1;
    assert!(
        (polls as f64) <= secs / 1.0 + 3.0,
        "{polls} commands to the server in {secs:.1}s with ival_check_work 1s"
    );
}

#[test]
fn server_reloads_its_own_work_after_mkwork_12_2() {
    let mut f = Fleet::new(&["srv", "c1"], "ival_check_work 1s\nival_make_state 1s\n", "");
    f.host("srv").start();
    let pid = f.server().pid();
    let st = f.server().body("STATE");
    assert!(item_line(&st, "procs").is_none(), "{st}");
    // mkwork: the server reloads in place, at once.
    add_to_work(&f, "get srv procs");
    let out = f.mkwork();
    f.server().wait_state(10.0, "procs after mkwork", |s| item_line(s, "procs").is_some());
    assert!(String::from_utf8_lossy(&out.stdout).contains("reload"), "mkwork told the daemon");
    assert_eq!(f.server().pid(), pid, "reloaded in place");
    // A work-file put in place by other means: the ival_check_work poll.
    add_to_work(&f, "get srv uptime");
    let staged = f.dir.path().join("staged");
    let conf = f.server().conf.clone();
    let out = std::process::Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .args(["mkwork", "-o"])
        .arg(&staged)
        .output()
        .expect("mkwork -o");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let name = format!("srv.{DOMAIN}.json");
    std::fs::rename(staged.join(&name), f.server().vardir().join("works").join(&name))
        .expect("move the work-file in");
    f.server().wait_state(15.0, "uptime from the poll", |s| item_line(s, "uptime").is_some());
    assert_eq!(f.server().pid(), pid, "reloaded in place");
}

#[test]
fn conf_port_is_the_servers_port_12_16() {
    let mut f = Fleet::new(&["srv", "c1"], "ival_heartbeat 1s\n", "");
    // The work names no ports; every conf says `port P` (and hb_port), and
    // the client's `server` is an address without a port.
    let text = std::fs::read_to_string(&f.workconf).expect("work");
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("port ") && !l.starts_with("hb_port "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&f.workconf, text).expect("write work");
    let (p, srv_ip) = (f.port, f.hosts[0].ip);
    for h in &f.hosts {
        let c = std::fs::read_to_string(&h.conf).expect("conf");
        let c = c.replace(&format!("server {srv_ip}:{p}\n"), &format!("server {srv_ip}\n"));
        h.write_conf(&format!("{c}port {p}\nhb_port {p}\n"));
    }
    let c = std::fs::read_to_string(&f.hosts[1].conf).expect("conf");
    assert!(c.contains(&format!("server {srv_ip}\n")), "{c}");
    f.start_all();
    let c1 = f.host("c1");
    let st = c1.wait_state(20.0, "the work fetched", |s| s.contains("(fetched)"));
    assert!(st.contains(&format!("-- server srv.{DOMAIN} {srv_ip}:{p}")), "{st}");
    let name = format!("c1.{DOMAIN}");
    f.server().wait_state(15.0, "c1's heartbeats", |s| {
        s.lines().any(|l| l.starts_with(&format!("-- host {name} up")))
    });
    // Still so after the served work (which names no port) replaced the bootstrap.
    let st = f.host("c1").body("STATE");
    assert!(st.contains(&format!("{srv_ip}:{p}")), "{st}");
}

/// The `work` field of a real ACK, as text: sends one HTB as `name` from
/// that host's address and decodes the answer.
fn ack_work_field(from: std::net::Ipv4Addr, to: SocketAddr, name: &str) -> String {
    use hbmon::wire::{encode_signed, Decoder, Value};
    let s = UdpSocket::bind((from, 0)).expect("bind");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let htb = encode_signed(
        "HTB",
        &[
            ("name", Value::Str(name.into())),
            ("ts", Value::Float(1.0)),
            ("seq", Value::Int(1)),
            ("interval", Value::Float(1.0)),
        ],
        None,
    );
    s.send_to(&htb, to).expect("send HTB");
    let mut buf = [0u8; 2048];
    let (n, _) = s.recv_from(&mut buf).expect("an ACK");
    let mut dec = Decoder::new();
    let m = dec.decode(&buf[..n]).expect("decode ACK");
    m.get("work").map(|v| v.text().into_owned()).unwrap_or_default()
}

#[test]
fn idle_client_fetches_work_once_12_17() {
    let work = "ival_heartbeat 0.5s\nival_send_report 1h\nival_check_work 1h\nival_make_state 1h\n";
    let mut f = Fleet::new(&["srv", "c1"], work, "");
    f.start_all();
    let name = format!("c1.{DOMAIN}");
    f.host("c1").wait_state(15.0, "the work fetched", |s| s.contains("(fetched)"));
    let srv = f.server();
    // The start-up report is in: from here on c1 is idle.
    srv.wait_state(20.0, "c1's first report", |s| {
        s.lines().any(|l| l.starts_with(&format!("-- client {name} report")))
    });
    let st = srv.body("STATE");
    let c0 = counter(&st, "-- commands", "commands").expect("commands");
    let r0 = counter(&st, "-- udp", "received").expect("received");
    // 20 heartbeats of each host (the server's own client heartbeats too;
    // only some of them ask for an ACK since issue 18).
    let mut polls = 0u64;
    let st = wait_for(60.0, "40 more heartbeats", || {
        polls += 1;
        let st = srv.try_cmd("STATE")?;
        (counter(&st, "-- udp", "received")? >= r0 + 40).then_some(st)
    });
    let c1 = counter(&st, "-- commands", "commands").expect("commands");
    let fetched = c1 - c0 - polls;
    assert_eq!(fetched, 0, "an idle client called its server {fetched} times over 20 heartbeats");

    // The real bytes: the ACK's `work` is the integer WORK_LM answers.
    let lm = cmd_from(f.hosts[1].ip, srv.cmd_addr(), &format!("WORK_LM {name}"));
    let body: serde_json::Value =
        serde_json::from_str(lm.lines().nth(1).expect("body")).expect("WORK_LM JSON");
    let lm = body["lm"].as_i64().expect("lm is an integer");
    assert!(lm > 1_000_000_000_000, "lm in milliseconds: {lm}");
    let udp = SocketAddr::new(srv.ip.into(), f.port);
    assert_eq!(ack_work_field(f.hosts[1].ip, udp, &name), lm.to_string());
}
