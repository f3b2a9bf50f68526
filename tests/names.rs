//! Issue 14: names resolved off the loop. A fleet whose work names the
//! server and a client by names (not addresses) works: the names resolve
//! through an /etc/hosts of the test's own (bind-mounted in a private
//! mount namespace, so nothing outside 127.0.0.0/8 is asked), the client
//! finds its server, and the server lets the client's address in by the
//! table. With a resolver that takes 3 s (the debug fault hook
//! `HBMON_FAULT=slow_lookup:6`, 6 s here for a loaded machine's sake) the
//! loop answers PING while the lookups are still pending.

mod common;
use common::*;
use std::process::{Command, Stdio};

/// Starts `h` inside its own mount namespace where `hosts` is /etc/hosts.
fn start_with_hosts(h: &mut Host, hosts: &std::path::Path, env: &[(&str, &str)]) {
    let err = std::fs::File::create(h.dir.join("stderr.log")).expect("stderr file");
    let out = std::fs::File::create(h.dir.join("stdout.log")).expect("stdout file");
    // Root needs only the mount namespace; anyone else also a user namespace.
    // SAFETY: geteuid has no preconditions.
    let ns: &[&str] = if unsafe { libc::geteuid() } == 0 { &["-m"] } else { &["-r", "-m"] };
    let child = Command::new("unshare")
        .args(ns)
        .args(["sh", "-c", "mount --bind \"$1\" /etc/hosts && exec \"$2\" -c \"$3\" -v start -i"])
        .arg("sh")
        .arg(hosts)
        .arg(BIN)
        .arg(&h.conf)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("unshare (util-linux) must be installed");
    h.child = Some(child);
    h.wait_port();
}

/// A server `srv` and a client `c1` known by names only: the work and the
/// client's conf say `srv.hbtest` / `c1.hbtest`, which only the test's
/// hosts file resolves.
fn named_fleet() -> (Fleet, std::path::PathBuf) {
    let f = Fleet::new(&["srv", "c1"], "ival_make_state 1s\nget all uptime\n", "");
    let (srv, c1) = (f.hosts[0].ip, f.hosts[1].ip);
    let work = std::fs::read_to_string(&f.workconf).unwrap();
    let work = work
        .replace(&format!(" srv {srv}\n"), " srv srv.hbtest\n")
        .replace(&format!(" c1 {c1}\n"), " c1 c1.hbtest\n");
    assert!(work.contains(" srv srv.hbtest\n") && work.contains(" c1 c1.hbtest\n"), "{work}");
    std::fs::write(&f.workconf, work).unwrap();
    let conf = std::fs::read_to_string(&f.hosts[1].conf).unwrap();
    f.hosts[1].write_conf(&conf.replace(&format!("server {srv}:"), "server srv.hbtest:"));
    let hosts = f.dir.path().join("hosts");
    std::fs::write(&hosts, format!("127.0.0.1 localhost\n{srv} srv.hbtest\n{c1} c1.hbtest\n"))
        .unwrap();
    f.mkwork();
    (f, hosts)
}

/// The server's view of c1 in STATE: up, and its report arrived.
fn c1_reported(srv: &Host, c1: &str) -> bool {
    srv.try_cmd("STATE").is_some_and(|t| {
        t.contains(&format!("-- host {c1} up ")) && t.contains(&format!("-- client {c1} report "))
    })
}

/// Polls `f` until it holds or `secs` pass; whether it held.
fn wait_for_or(secs: f64, mut f: impl FnMut() -> bool) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed().as_secs_f64() < secs {
        if f() {
            return true;
        }
        // sleep: poll interval of a deadline loop
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    false
}

#[test]
fn hosts_named_by_names_get_access() {
    let (mut f, hosts) = named_fleet();
    start_with_hosts(&mut f.hosts[0], &hosts, &[]);
    start_with_hosts(&mut f.hosts[1], &hosts, &[]);
    let (srv, c1) = (&f.hosts[0], &f.hosts[1]);
    let st = srv.wait_state(20.0, "names resolved", |s| {
        s.contains("-- names 2 resolved 0 unresolved (lookups done)")
    });
    // c1's address is allowed by the table (it is neither local nor the server).
    let a = cmd_from(c1.ip, srv.cmd_addr(), "PING");
    assert!(a.contains("PONG"), "c1 by its resolved name: {a}\n{st}");
    let stranger = std::net::Ipv4Addr::new(127, f.net[0], f.net[1], 9);
    let a = cmd_from(stranger, srv.cmd_addr(), "PING");
    assert!(a.contains("access denied"), "a stranger: {a}");
    // The client found its server by name: heartbeats and reports arrive.
    let seen = wait_for_or(30.0, || c1_reported(srv, &c1.name));
    assert!(seen, "c1 never up and reporting:\n{}", srv.cmd("STATE"));
    let cst = c1.wait_state(10.0, "c1 knows its server", |s| s.contains("lookups done"));
    assert!(cst.contains("-- names 1 resolved 0 unresolved"), "{cst}");
}

#[test]
fn the_loop_does_not_wait_for_a_slow_lookup() {
    let (mut f, hosts) = named_fleet();
    let slow = [("HBMON_FAULT", "slow_lookup:6")];
    start_with_hosts(&mut f.hosts[0], &hosts, &slow);
    let srv = &f.hosts[0];
    // The lookups take 6 s (a start waits 2 s of them); PING and STATE are answered while they run.
    let st = srv.cmd("STATE");
    assert!(st.contains("(lookups pending)"), "{st}");
    assert!(srv.cmd("PING").contains("PONG"));
    let st = srv.cmd("STATE");
    assert!(st.contains("(lookups pending)"), "PING answered after the lookups ended: {st}");
    // Until the table arrives c1's address is unknown; then it is let in.
    let c1 = f.hosts[1].ip;
    let a = cmd_from(c1, srv.cmd_addr(), "PING");
    assert!(a.contains("access denied"), "c1 before its name resolved: {a}");
    srv.wait_state(20.0, "names resolved", |s| s.contains("-- names 2 resolved 0 unresolved"));
    let a = cmd_from(c1, srv.cmd_addr(), "PING");
    assert!(a.contains("PONG"), "c1 after its name resolved: {a}");
    // A reload starts a new round; the old table serves meanwhile.
    assert!(srv.cmd("WORK_RELOAD").contains("COMMAND DONE"));
    let st = srv.cmd("STATE");
    assert!(st.contains("-- names 2 resolved 0 unresolved (lookups pending)"), "{st}");
    let a = cmd_from(c1, srv.cmd_addr(), "PING");
    assert!(a.contains("PONG"), "c1 during the refresh: {a}");
}

/// No name lookup on the loop: the resolver is called only from the files
/// whose code runs on worker or pagemaker threads or in the CLI.
#[test]
fn the_resolver_is_called_only_off_the_loop() {
    let allowed = [
        "src/names.rs",           // lookup jobs on the worker pool
        "src/hostname.rs",        // at start, before the loop (own thread, 2 s cap)
        "src/probes/net.rs",      // probe jobs on the pool
        "src/probes/ping.rs",     // probe jobs on the pool
        "src/pagemaker/fetch.rs", // the pagemaker's own threads
        "src/work/addr.rs",       // the CLI (control.rs, cli.rs) only
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut bad = Vec::new();
    let mut stack = vec![root.join("src")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let text = std::fs::read_to_string(&p).unwrap_or_default();
            for (i, l) in text.lines().enumerate() {
                let code = l.split("//").next().unwrap_or("");
                let lookup = ["to_socket_addrs", "lookup_host", "getaddrinfo"]
                    .iter()
                    .any(|w| code.contains(w));
                let blocking_helper =
                    code.contains("addr::resolve") || code.contains("addr::parse_host_port");
                let cli = rel == "src/cli.rs" || rel == "src/control.rs";
                if (lookup && !allowed.contains(&rel.as_str())) || (blocking_helper && !cli) {
                    bad.push(format!("{rel}:{}: {}", i + 1, l.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "name lookups outside the allowed files:\n{}", bad.join("\n"));
}

/// The table is looked up again every `ival_check_work`: a host whose name
/// moves to another address is let in from the new one and no longer from
/// the old, with no reload.
#[test]
fn names_are_refreshed_every_check_work() {
    let (mut f, hosts) = named_fleet();
    let conf = std::fs::read_to_string(&f.hosts[0].conf).unwrap();
    f.hosts[0].write_conf(&format!("{conf}ival_check_work 2s\n"));
    start_with_hosts(&mut f.hosts[0], &hosts, &[]);
    let srv = &f.hosts[0];
    let (old, new) = (f.hosts[1].ip, std::net::Ipv4Addr::new(127, f.net[0], f.net[1], 3));
    srv.wait_state(20.0, "names resolved", |s| s.contains("-- names 2 resolved 0 unresolved"));
    assert!(cmd_from(old, srv.cmd_addr(), "PING").contains("PONG"));
    assert!(cmd_from(new, srv.cmd_addr(), "PING").contains("access denied"));
    // Rewritten in place: the bind mount shows the same file's new text.
    let text = std::fs::read_to_string(&hosts).unwrap();
    std::fs::write(&hosts, text.replace(&format!("{old} c1.hbtest"), &format!("{new} c1.hbtest")))
        .unwrap();
    wait_for(30.0, "c1's new address let in", || {
        cmd_from(new, srv.cmd_addr(), "PING").contains("PONG").then_some(())
    });
    let a = cmd_from(old, srv.cmd_addr(), "PING");
    assert!(a.contains("access denied"), "c1's old address after the refresh: {a}");
}
