//! Issue 2: the command port and the daemon life-cycle, on the real binary.

mod common;
use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn ping_and_state_with_netcat_and_hbmon_cmd() {
    let mut f = Fleet::solo("");
    let h = &mut f.hosts[0];
    h.start();
    let a = h.nc(b"PING\n");
    assert!(
        a.starts_with("COMMAND PING\nPONG from client+server+pmaker solo.fleet.test hbmon-"),
        "{a}"
    );
    assert!(a.ends_with("COMMAND DONE\n"), "{a}");
    // Verbs are case-insensitive.
    assert!(h.nc(b"ping\n").contains("PONG"));
    let out = h.hbmon(&["cmd", &h.cmd_addr().to_string(), "PING"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("PONG from"), "{text}");
    let st = h.nc(b"STATE\n");
    assert!(st.contains("-- version hbmon-"), "{st}");
    assert!(st.contains("-- roles client+server+pmaker"), "{st}");
    assert!(st.contains("-- hostname solo.fleet.test"), "{st}");
    assert!(st.contains(&format!("-- listening on {} (command)", h.cmd_addr())), "{st}");
    assert!(st.contains(&format!("{}:{} (heartbeat udp)", h.ip, h.port)), "{st}");
    // `hbmon state` finds the local port from the conf.
    let out = h.hbmon(&["state"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("-- hostname solo.fleet.test"));
    // DUMP is one line of JSON.
    let d = h.body("DUMP");
    let v: serde_json::Value = serde_json::from_str(&d).expect("DUMP is JSON");
    assert_eq!(v["hostname"], "solo.fleet.test");
}

#[test]
fn daemon_start_state_reload_stop() {
    let f = Fleet::solo("");
    let h = &f.hosts[0];
    let out = h.hbmon(&["start"]);
    assert!(out.status.success(), "start: {}\n{}", String::from_utf8_lossy(&out.stderr), h.diag());
    let pid: i32 =
        std::fs::read_to_string(h.pid_path()).expect("pid file").trim().parse().expect("pid");
    assert!(alive(pid));
    let stp = h.dir.join("run/hbmon.stp");
    let mode =
        std::fs::metadata(&stp).map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()));
    assert_eq!(mode.expect("stop secret") & 0o777, 0o600);
    // The port answers as soon as start has returned.
    assert!(h.cmd("PING").contains("PONG"));
    let out = h.hbmon(&["state"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("-- pid {pid}")));
    // A second start refuses, naming the pid: a run-time failure (1), not usage (2).
    let out = h.hbmon(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&pid.to_string()));
    // Reload keeps it running on the same pid.
    let out = h.hbmon(&["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    wait_for(5.0, "reload logged", || h.log().contains("reload").then_some(()));
    assert!(h.cmd("PING").contains("PONG"));
    // USR1 re-executes the binary in place: same pid, a fresh start.
    signal(pid, libc::SIGUSR1);
    wait_for(10.0, "re-exec", || (h.log().matches("started as").count() == 2).then_some(()));
    wait_for(10.0, "PING after re-exec", || h.try_cmd("PING").filter(|a| a.contains("PONG")));
    assert_eq!(
        std::fs::read_to_string(h.pid_path()).ok().map(|s| s.trim().to_string()),
        Some(pid.to_string())
    );
    let out = h.hbmon(&["stop"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!alive(pid), "still running after stop");
    assert!(!h.pid_path().exists(), "pid file left behind");
    assert!(!stp.exists(), "stop secret left behind");
    // And it starts again after a clean stop.
    let out = h.hbmon(&["start"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = h.hbmon(&["stop"]);
    assert!(out.status.success());
}

#[test]
fn stop_needs_the_secret() {
    let mut f = Fleet::solo("");
    let h = &mut f.hosts[0];
    h.start();
    let a = h.cmd("STOP wrong-secret");
    assert!(a.ends_with("COMMAND ERROR bad secret\n"), "{a}");
    let a = h.cmd("STOP");
    assert!(a.contains("COMMAND ERROR"), "{a}");
    assert!(h.cmd("PING").contains("PONG"), "still running");
    let secret = std::fs::read_to_string(h.dir.join("run/hbmon.stp")).expect("secret");
    let a = h.cmd(&format!("STOP {}", secret.trim()));
    assert!(a.ends_with("COMMAND DONE\n"), "{a}");
    let mut c = h.child.take().expect("child");
    let t = Instant::now();
    loop {
        if let Ok(Some(st)) = c.try_wait() {
            assert!(st.success(), "exit status {st}");
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "did not stop");
        // sleep: poll interval while waiting for the exit, with a deadline
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn bad_conf_line_exits_2_naming_file_and_line() {
    let f = Fleet::solo("");
    let h = &f.hosts[0];
    let conf = std::fs::read_to_string(&h.conf).expect("conf");
    h.write_conf(&format!("{conf}# fine\nbogus_key 1\n"));
    let lines = conf.lines().count() + 2;
    for args in [&["start", "-i"][..], &["test"][..]] {
        let out = h.hbmon(args);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        let want = format!("{}:{lines}: unknown key 'bogus_key'", h.conf.display());
        assert!(err.contains(&want), "{err} lacks {want}");
    }
}

#[test]
fn bad_input_is_refused_and_ping_still_answers() {
    let mut f = Fleet::solo("");
    let h = &mut f.hosts[0];
    h.start();
    // Unknown verb.
    assert_eq!(h.nc(b"FROB x\n"), "COMMAND FROB\nCOMMAND ERROR unknown command FROB\n");
    // Not UTF-8, empty.
    assert!(h.cmd("PI\u{fffd}NG").contains("COMMAND ERROR"));
    // 1 MiB without a newline: refused as too long, connection closed.
    let mut s = TcpStream::connect(h.cmd_addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let big = vec![b'A'; 1 << 20];
    let _ = s.write_all(&big);
    let mut ans = String::new();
    let _ = s.read_to_string(&mut ans);
    assert!(ans.contains("COMMAND ERROR too long"), "{ans:?}");
    // A client that sends nothing is answered `timeout` after 10 s.
    let mut idle = TcpStream::connect(h.cmd_addr()).expect("connect");
    idle.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    let t = Instant::now();
    // Meanwhile PING answers at once.
    assert!(h.cmd("PING").contains("PONG"));
    let mut ans = String::new();
    let _ = idle.read_to_string(&mut ans);
    let waited = t.elapsed().as_secs_f64();
    assert!(ans.contains("COMMAND ERROR timeout"), "{ans:?}");
    assert!(waited > 8.0, "closed after {waited}s, before the idle limit");
    let st = h.body("STATE");
    assert!(st.contains("-- refused timeout 1"), "{st}");
    assert!(st.contains("-- refused unknown command 1"), "{st}");
}

/// Everything `s` receives until the peer closes it; panics at `deadline`.
fn read_until_closed(s: &mut TcpStream, deadline: Instant) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "not closed by the deadline: {:?}", String::from_utf8_lossy(&got));
        s.set_read_timeout(Some(left)).expect("timeout");
        match s.read(&mut buf) {
            Ok(0) => return String::from_utf8_lossy(&got).into_owned(),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // A reset after the answer also closes the connection.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                return String::from_utf8_lossy(&got).into_owned()
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => panic!("read: {e}"),
        }
    }
}

#[test]
fn three_hundred_idle_connections_get_busy_then_ping_answers() {
    let mut f = Fleet::solo("");
    let h = &mut f.hosts[0];
    h.start();
    let mut conns = Vec::new();
    for _ in 0..300 {
        conns.push(TcpStream::connect(h.cmd_addr()).expect("connect"));
    }
    // Each connection is answered then closed: at once `busy` past the
    // session limit, `timeout` after the 10 s idle limit for the others.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (mut busy, mut timeout) = (0, 0);
    for s in &mut conns {
        let ans = read_until_closed(s, deadline);
        if ans.contains("COMMAND ERROR busy") {
            busy += 1;
        } else if ans.contains("COMMAND ERROR timeout") {
            timeout += 1;
        } else {
            panic!("neither busy nor timeout: {ans:?}");
        }
    }
    assert!(busy >= 300 - 256, "only {busy} of 300 were told busy");
    assert!(timeout >= 1, "no connection was accepted");
    drop(conns);
    let t = Instant::now();
    wait_for(5.0, "PING after the idle storm", || h.try_cmd("PING").filter(|a| a.contains("PONG")));
    assert!(t.elapsed() < Duration::from_secs(5));
    let st = h.body("STATE");
    assert!(st.contains("-- refused busy"), "{st}");
}

/// Issue 14: the one verb table is what the daemon answers. On a client
/// (no server part) every row is known (no `unknown command`), the server's
/// rows answer `not a server`, PROBE from anyone but the server is refused;
/// on the server host the same rows are answered by its server part.
#[test]
fn the_verb_table_decides_by_part_and_caller() {
    use hbmon::verbs::{Role, Who, VERBS};
    let mut f = Fleet::new(&["srv", "c1"], "", "");
    f.mkwork();
    f.start_all();
    let c1 = f.host("c1");
    c1.wait_state(60.0, "c1 has its work", |s| s.contains("-- roles client\n"));
    for v in VERBS {
        let a = c1.cmd(v.name);
        assert!(!a.contains("unknown command"), "{} -> {a}", v.name);
        let last = a.lines().last().unwrap_or_default().to_string();
        if v.who == Who::Server {
            let want = format!("COMMAND ERROR access denied: only the server may ask {}", v.name);
            assert_eq!(last, want, "{} -> {a}", v.name);
        } else if v.roles == [Role::Server] {
            assert_eq!(last, "COMMAND ERROR not a server", "{} -> {a}", v.name);
        }
    }
    let srv = f.server();
    for v in VERBS.iter().filter(|v| v.roles == [Role::Server]) {
        let a = srv.cmd(v.name);
        assert!(!a.contains("not a server") && !a.contains("unknown command"), "{} -> {a}", v.name);
    }
    assert!(srv.cmd("BOGUS").ends_with("COMMAND ERROR unknown command BOGUS\n"));
    // Refusals are counted by verb and kind, as before the table.
    let state = f.host("c1").body("STATE");
    assert!(state.contains("-- refused REPORT refused 1"), "{state}");
    assert!(state.contains("-- refused PROBE wrong sender 1"), "{state}");
}
