//! Issue 15: confirmation before down, through the real binary in a network
//! namespace of the test's own, with nftables dropping the traffic between
//! the server and one client only.
//!
//! Topology: the test thread leaves the machine's network namespace
//! (`unshare(CLONE_NEWNET)`, root only) and everything it starts (the hbmon
//! processes, `ip`, `nft`) and every socket it opens live in the new one:
//! a fresh loopback with the fleet's 127.X.Y.Z addresses, nothing else, so
//! no packet can leave the machine. The namespace goes when the thread and
//! its children are gone; the nft table is deleted by a guard's Drop.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn run(argv: &[&str]) -> Result<(), String> {
    let out =
        Command::new(argv[0]).args(&argv[1..]).output().map_err(|e| format!("{argv:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{argv:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// Why the test cannot run here, if it cannot.
fn skip_reason() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("not root (network namespaces and nftables need it)".into());
    }
    for tool in ["nft", "ip"] {
        if run(&["sh", "-c", &format!("command -v {tool}")]).is_err() {
            return Some(format!("{tool} is missing (tests/tools/install-deps.sh installs it)"));
        }
    }
    None
}

/// Moves the calling thread into a new network namespace with loopback up.
fn enter_netns() -> Result<(), String> {
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!("unshare(CLONE_NEWNET): {}", std::io::Error::last_os_error()));
    }
    run(&["ip", "link", "set", "lo", "up"])
}

/// The nft table of the test; deleted on drop (the namespace goes anyway
/// once the thread ends, but a failed test must not leave rules behind).
struct Partition {
    table: &'static str,
}

impl Partition {
    fn drop_between(a: std::net::Ipv4Addr, b: std::net::Ipv4Addr) -> Partition {
        let t = "hbmon_partition";
        run(&["nft", "add", "table", "inet", t]).expect("nft table");
        run(&["nft", "add", "chain", "inet", t, "out", "{ type filter hook output priority 0 ; }"])
            .expect("nft chain");
        for (s, d) in [(a, b), (b, a)] {
            let (s, d) = (s.to_string(), d.to_string());
            run(&[
                "nft", "add", "rule", "inet", t, "out", "ip", "saddr", &s, "ip", "daddr", &d,
                "drop",
            ])
            .expect("nft rule");
        }
        Partition { table: t }
    }
    /// Drops only the UDP datagrams from `a` to `b` (heartbeats), not TCP.
    fn drop_udp(a: std::net::Ipv4Addr, b: std::net::Ipv4Addr) -> Partition {
        let t = "hbmon_partition";
        run(&["nft", "add", "table", "inet", t]).expect("nft table");
        run(&["nft", "add", "chain", "inet", t, "out", "{ type filter hook output priority 0 ; }"])
            .expect("nft chain");
        let (s, d) = (a.to_string(), b.to_string());
        run(&[
            "nft", "add", "rule", "inet", t, "out", "ip", "saddr", &s, "ip", "daddr", &d, "meta",
            "l4proto", "udp", "drop",
        ])
        .expect("nft rule");
        Partition { table: t }
    }
    fn lift(&mut self) {
        let _ = run(&["nft", "delete", "table", "inet", self.table]);
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        self.lift();
    }
}

fn recorder(dir: &Path, out: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("rec.sh");
    let script = format!(
        "#!/bin/sh\necho \"$HBMON_KIND $HBMON_HOST $HBMON_ITEM $HBMON_NEW $HBMON_TEXT\" | tr '\\n' ' ' >> {o}\necho >> {o}\n",
        o = out.display()
    );
    std::fs::write(&p, script).expect("write recorder");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn alerts(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn host_state<'a>(state: &'a str, name: &str) -> Option<&'a str> {
    let prefix = format!("-- host {name} ");
    state.lines().find_map(|l| l.strip_prefix(&prefix)).and_then(|r| r.split(' ').next())
}

#[test]
fn partitioned_client_is_unreachable_and_a_killed_one_is_confirmed_down() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED detect_partition: {why}");
        return;
    }
    enter_netns().expect("network namespace");
    let f0 = Fleet::new(&["srv", "cut", "gone", "p1", "p2"], "", "");
    let got = f0.dir.path().join("alerts");
    let rec = recorder(f0.dir.path(), &got);
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\ndetector tuned\nival_make_state 1h\n\
         channel rec command {}\nuser ops rec\nalert all heartbeat sick ops\n",
        rec.display()
    );
    let text = std::fs::read_to_string(&f0.workconf).expect("work");
    std::fs::write(&f0.workconf, format!("{text}{work}")).expect("write work");
    let mut f = f0;
    f.start_all();
    let name = |t: &str| format!("{t}.{DOMAIN}");
    f.server().wait_state(30.0, "all up", |s| {
        ["cut", "gone", "p1", "p2"].iter().all(|t| host_state(s, &name(t)) == Some("up"))
    });
    let (srv_ip, cut_ip) = (f.server().ip, f.host("cut").ip);
    let mut part = Partition::drop_between(srv_ip, cut_ip);
    f.host("gone").kill9();
    let s = f.server().wait_state(60.0, "cut unreachable, gone down", |s| {
        host_state(s, &name("cut")) == Some("unreachable")
            && host_state(s, &name("gone")) == Some("down")
    });
    assert_eq!(host_state(&s, &name("p1")), Some("up"), "{s}");
    let a = wait_for(30.0, "the down alert of gone", || {
        let a = alerts(&got);
        a.lines().any(|l| l.contains(&name("gone")) && l.contains(" dead ")).then_some(a)
    });
    let down = a.lines().find(|l| l.contains(&name("gone")) && l.contains(" dead ")).unwrap_or("");
    assert!(down.contains("probed by the server"), "{down}");
    // Cut's own alerts (its name is also in other alerts' "probed by" lists).
    let cut_hb = format!(" {} heartbeat ", name("cut"));
    let cut = wait_for(30.0, "the path alert of cut", || {
        let a = alerts(&got);
        a.lines().find(|l| l.contains(&cut_hb)).map(String::from)
    });
    assert!(cut.contains(" sick ") && cut.contains("cannot reach it"), "{cut}");
    assert!(cut.contains(&name("p1")) || cut.contains(&name("p2")), "peers reached it: {cut}");
    part.lift();
    f.server().wait_state(30.0, "cut up again", |s| host_state(s, &name("cut")) == Some("up"));
    let a = wait_for(30.0, "cut's recovery", || {
        let a = alerts(&got);
        a.lines().any(|l| l.contains(&cut_hb) && l.contains(" fine ")).then_some(a)
    });
    let cut_down: Vec<&str> =
        a.lines().filter(|l| l.contains(&cut_hb) && l.contains(" dead ")).collect();
    assert!(cut_down.is_empty(), "no down alert for the partitioned client: {cut_down:?}\n{a}");
}

/// The default detector, heartbeats lost but the host up: nftables drops
/// one client's UDP to the server (its TCP still passes). The server's probe
/// is answered, so the client stays `up`, never down, counted in
/// `answered-probes`, with one `heartbeat_path` warning (the second level).
#[test]
fn heartbeats_blocked_but_host_answering_stays_up_with_a_path_warning() {
    if let Some(why) = skip_reason() {
        eprintln!("SKIPPED detect_partition: {why}");
        return;
    }
    enter_netns().expect("network namespace");
    let f0 = Fleet::new(&["srv", "mute", "p1"], "", "");
    let got = f0.dir.path().join("alerts");
    let rec = recorder(f0.dir.path(), &got);
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\nival_make_state 1h\n\
         channel rec command {}\nuser ops rec\nalert all * soso ops\n",
        rec.display()
    );
    let text = std::fs::read_to_string(&f0.workconf).expect("work");
    std::fs::write(&f0.workconf, format!("{text}{work}")).expect("write work");
    let mut f = f0;
    f.start_all();
    let name = |t: &str| format!("{t}.{DOMAIN}");
    f.server().wait_state(30.0, "all up", |s| {
        ["mute", "p1"].iter().all(|t| host_state(s, &name(t)) == Some("up"))
    });
    let mut part = Partition::drop_udp(f.host("mute").ip, f.server().ip);
    let line = |s: &str| {
        let prefix = format!("-- host {} ", name("mute"));
        s.lines().find(|l| l.starts_with(&prefix)).unwrap_or("").to_string()
    };
    let s = f.server().wait_state(60.0, "two answered probes", |s| {
        line(s).contains(" answered-probes 2") || line(s).contains(" answered-probes 3")
    });
    assert!(line(&s).contains(" up ") && line(&s).contains("heartbeat-path-warning"), "{s}");
    let a = wait_for(30.0, "the path warning", || {
        let a = alerts(&got);
        a.lines()
            .find(|l| l.contains(&name("mute")) && l.contains(" heartbeat_path "))
            .map(String::from)
    });
    assert!(a.contains(" soso ") && a.contains("answers the server"), "{a}");
    let dump: serde_json::Value = serde_json::from_str(&f.server().body("DUMP")).expect("dump");
    let h = dump["server"]["udp"]["hosts"]
        .as_array()
        .and_then(|v| v.iter().find(|h| h["name"] == name("mute")).cloned())
        .unwrap_or_default();
    assert_eq!(h["path_warning"], true, "{h}");
    assert!(h["answered_probes"].as_u64().unwrap_or(0) >= 2, "{h}");
    part.lift();
    let all = alerts(&got);
    let bad: Vec<&str> = all
        .lines()
        .filter(|l| l.contains(&name("mute")) && l.contains(" heartbeat ") && !l.contains(" fine "))
        .collect();
    assert!(bad.is_empty(), "no heartbeat alert for a host that answers: {bad:?}\n{all}");
    // Its heartbeats flow again: lost ones are counted as loss.
    let s = f.server().wait_state(30.0, "seq gaps counted", |s| line(s).contains(" lost "));
    assert!(line(&s).contains(" up "), "{s}");
}

/// PROBE makes a client connect elsewhere: only the server may ask it.
#[test]
fn probe_is_refused_from_anyone_but_the_server() {
    let mut f = Fleet::new(&["srv", "c1", "c2"], "ival_heartbeat 1s\n", "");
    f.start_all();
    let c1 = f.host("c1").cmd_addr();
    let c2_ip = f.host("c2").ip;
    let target = f.server().cmd_addr();
    let a = f.host("c1").cmd(&format!("PROBE srv {target}"));
    assert!(a.contains("only the server may ask PROBE"), "{a}");
    let a = cmd_from(c2_ip, c1, &format!("PROBE srv {target}"));
    assert!(a.contains("access denied"), "{a}");
    // The server's own address is let through, and bad arguments are told.
    let srv_ip = f.server().ip;
    let a = cmd_from(srv_ip, c1, "PROBE srv nowhere");
    assert!(a.contains("is not an address"), "{a}");
    let a = cmd_from(srv_ip, c1, &format!("PROBE srv {target}"));
    assert!(a.contains("PONG"), "the client PINGed the server for it: {a}");
}
