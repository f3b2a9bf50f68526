//! Issue 3: work distribution. A server and two clients on 127.X.Y.1-3
//! fetch their work, reload when mkwork changes it, run on cached work while
//! the server is down, and a host outside the work is refused.

mod common;
use common::*;
use std::net::Ipv4Addr;

const WORK: &str = "ival_check_work 2s\nival_make_state 1s\nget all uptime\n";

#[test]
fn clients_fetch_reload_and_survive_a_dead_server() {
    let mut f = Fleet::new(&["srv", "www1", "www2"], WORK, "");
    f.start_all();
    for tag in ["www1", "www2"] {
        let h = f.host(tag);
        h.wait_state(10.0, "the work's uptime item", |s| item_line(s, "uptime").is_some());
        assert!(h.vardir().join("work.json").exists(), "work cached");
    }
    // Edit the work-config, run mkwork: www1 reloads within ival_check_work.
    let text = std::fs::read_to_string(&f.workconf).expect("work");
    std::fs::write(&f.workconf, format!("{text}get www1 procs\n")).expect("write work");
    let out = f.mkwork();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("www1.fleet.test"), "mkwork said: {said}");
    let pid_before = f.host("www1").pid();
    f.host("www1").wait_state(8.0, "procs after mkwork", |s| item_line(s, "procs").is_some());
    assert_eq!(f.host("www1").pid(), pid_before, "reloaded in place, not restarted");
    let st = f.host("www2").body("STATE");
    assert!(item_line(&st, "procs").is_none(), "www2 did not get www1's item:\n{st}");

    // Server down: a restarted client runs on its cached work...
    f.host("srv").kill9();
    let www2 = f.host("www2");
    www2.stop();
    www2.start();
    let st = www2.wait_state(5.0, "cached items", |s| item_line(s, "uptime").is_some());
    assert!(st.contains("not fetched yet"), "{st}");
    // STATE names the work sync's phase: no served work since this start.
    let sync = st.lines().find(|l| l.starts_with("-- work from server")).unwrap_or_default();
    assert!(
        sync.contains("sync bootstrap, no work") || sync.contains("sync asking WORK for "),
        "{sync}"
    );
    // ...and catches up when the server is back.
    f.host("srv").start();
    f.host("www2").wait_state(70.0, "work fetched again", |s| s.contains("(fetched)"));
    f.host("www2").wait_state(70.0, "the work sync idle", |s| {
        s.contains("(fetched), sync idle, fetched ") && s.contains(" ago, checked ")
    });
    let st = f.host("www2").body("STATE");
    let calls = st.lines().find(|l| l.starts_with("-- server calls events ")).unwrap_or_default();
    assert!(calls.contains(", report "), "{st}");
}

#[test]
fn a_host_outside_the_work_is_refused() {
    let mut f = Fleet::new(&["srv", "www1"], WORK, "");
    f.host("srv").start();
    let srv = f.server().cmd_addr();
    let stranger = Ipv4Addr::new(127, f.net[0], f.net[1], 99);
    let a = cmd_from(stranger, srv, "WORK www1.fleet.test");
    assert!(a.ends_with("COMMAND ERROR access denied\n"), "{a}");
    // www1's own address gets its work; but not another host's.
    let www1 = f.hosts[1].ip;
    let a = cmd_from(www1, srv, "WORK www1.fleet.test");
    assert!(a.contains("\"resp\":\"ok work\""), "{a}");
    let a = cmd_from(www1, srv, "WORK srv.fleet.test");
    assert!(a.ends_with("COMMAND ERROR access denied\n"), "{a}");
    let a = cmd_from(www1, srv, "WORK_LM www1");
    assert!(a.contains("\"lm\":"), "{a}");
}
