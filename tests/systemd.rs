//! hbmon under systemd, with systemd played by the test: `NOTIFY_SOCKET`
//! points at a unix datagram socket the test reads. READY=1 must come only
//! once the command port answers, WATCHDOG=1 must keep coming from the
//! running loop, STOPPING=1 on a clean stop; `$JOURNAL_STREAM` naming the
//! daemon's stderr makes log lines priority-prefixed without a time stamp;
//! the unit's directories ($STATE_DIRECTORY ...) are the default paths; root
//! with no conf uses the FHS paths, and the current directory's hbmon.conf
//! is never read.

mod common;

use common::{Fleet, BIN};
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

fn recv(sock: &UnixDatagram, until: Instant) -> Option<String> {
    let left = until.checked_duration_since(Instant::now())?;
    sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).ok()?;
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn notify_socket_gets_ready_then_watchdog_pings_then_stopping() {
    let mut f = Fleet::solo("");
    let sock_path = f.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let h = &mut f.hosts[0];
    // As systemd does: WATCHDOG_PID is the service's pid (the shell execs
    // hbmon, so $$ is it), and a 1 s watchdog makes hbmon ping every 0.5 s.
    let sh = format!(
        "WATCHDOG_PID=$$ WATCHDOG_USEC=1000000 exec '{BIN}' -c '{}' start -i 2>>'{}'",
        h.conf.display(),
        h.dir.join("stderr.log").display()
    );
    let mut child =
        Command::new("sh").arg("-c").arg(&sh).env("NOTIFY_SOCKET", &sock_path).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let first = recv(&sock, deadline).unwrap_or_else(|| panic!("no notify\n{}", h.diag()));
    assert_eq!(first.trim(), "READY=1", "{}", h.diag());
    // Ready means ready: the command port answers at once, no retry.
    let pong = h.try_cmd("PING").unwrap_or_default();
    assert!(pong.contains("PONG"), "READY=1 before the port answered: {pong:?}\n{}", h.diag());
    let mut pings = 0;
    while pings < 4 {
        match recv(&sock, deadline) {
            Some(m) if m.trim() == "WATCHDOG=1" => pings += 1,
            Some(m) => panic!("unexpected notify {m:?}"),
            None => panic!("only {pings} WATCHDOG=1 in 30 s\n{}", h.diag()),
        }
    }
    // A stopped loop sends no more pings (SIGSTOP freezes it), and a
    // continued one resumes.
    let pid = child.id() as i32;
    common::signal(pid, libc::SIGSTOP);
    while recv(&sock, Instant::now() + Duration::from_millis(200)).is_some() {}
    assert_eq!(recv(&sock, Instant::now() + Duration::from_secs(2)), None, "pinged while stopped");
    common::signal(pid, libc::SIGCONT);
    let m = recv(&sock, Instant::now() + Duration::from_secs(30));
    assert_eq!(m.as_deref().map(str::trim), Some("WATCHDOG=1"));
    common::signal(pid, libc::SIGTERM);
    let _ = child.wait();
    let mut last = Vec::new();
    while let Some(m) = recv(&sock, Instant::now() + Duration::from_secs(2)) {
        last.push(m.trim().to_string());
    }
    assert!(last.contains(&"STOPPING=1".to_string()), "{last:?}");
}

#[test]
fn journal_stream_logs_priority_without_a_timestamp() {
    let f = Fleet::solo("");
    let h = &f.hosts[0];
    // A file plays the journal: the shell opens it as the daemon's stderr
    // and names its device:inode in JOURNAL_STREAM, as systemd does.
    let err = h.dir.join("journal.log");
    std::fs::write(&err, "").unwrap();
    let sh = format!(
        "exec 2>>'{e}'; s=$(stat -c '%d:%i' '{e}'); JOURNAL_STREAM=$s exec '{BIN}' -c '{c}' start -i",
        e = err.display(),
        c = h.conf.display()
    );
    let mut child = Command::new("sh").arg("-c").arg(&sh).spawn().unwrap();
    let text = common::wait_for(30.0, "the start line in stderr", || {
        let t = std::fs::read_to_string(&err).ok()?;
        t.contains("started as").then_some(t)
    });
    let _ = child.kill();
    let _ = child.wait();
    let line = text.lines().find(|l| l.contains("started as")).unwrap();
    // INFO is priority 6 (WARN 4); journald adds the time, so hbmon must not.
    assert!(line.starts_with("<6>hbmon ") || line.starts_with("<4>hbmon "), "{text}");
}

#[test]
fn systemd_directories_are_the_default_paths() {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("c.conf");
    std::fs::write(&conf, "hostname t.example.org\n").unwrap();
    let (s, l, r) = (d.path().join("state"), d.path().join("logs"), d.path().join("run"));
    let o = Command::new(BIN)
        .args(["-v", "-c"])
        .arg(&conf)
        .arg("test")
        .env("STATE_DIRECTORY", &s)
        .env("LOGS_DIRECTORY", &l)
        .env("RUNTIME_DIRECTORY", format!("{}:/elsewhere", r.display()))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("path vardir {}\n", s.display())), "{out}");
    assert!(out.contains(&format!("path logdir {}\n", l.display())), "{out}");
    assert!(out.contains(&format!("path rundir {}\n", r.display())), "{out}");
    // A conf key still wins.
    std::fs::write(&conf, format!("hostname t.example.org\nvardir {}/v\n", d.path().display()))
        .unwrap();
    let o = Command::new(BIN)
        .args(["-v", "-c"])
        .arg(&conf)
        .arg("test")
        .env("STATE_DIRECTORY", &s)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains(&format!("path vardir {}/v\n", d.path().display())), "{out}");
}

#[test]
fn no_conf_root_gets_fhs_paths_and_cwd_conf_is_ignored() {
    let d = tempfile::tempdir().unwrap();
    // A broken hbmon.conf in the current directory: never read.
    std::fs::write(d.path().join("hbmon.conf"), "bogus key\n").unwrap();
    let o = Command::new(BIN)
        .args(["-v", "test"])
        .current_dir(d.path())
        .env("HOME", d.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("STATE_DIRECTORY")
        .env_remove("LOGS_DIRECTORY")
        .env_remove("RUNTIME_DIRECTORY")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    if std::path::Path::new("/etc/hbmon/conf").exists() {
        assert!(out.contains("conf /etc/hbmon/conf"), "{out}");
        return;
    }
    assert!(out.contains("conf (embedded default)"), "{out}");
    let root = nix::unistd::geteuid().is_root();
    let (var, run) = if root {
        ("/var/lib/hbmon".to_string(), "/run/hbmon".to_string())
    } else {
        let base = d.path().join(".local/state/hbmon");
        (base.display().to_string(), base.join("run").display().to_string())
    };
    assert!(out.contains(&format!("path vardir {var}\n")), "{out}");
    assert!(out.contains(&format!("path rundir {run}\n")), "{out}");
}
