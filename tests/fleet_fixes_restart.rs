//! Issue 12, items 3, 8 and 10, on real processes: a client killed while
//! an alert is open resolves it when it comes back healthy (and an item
//! dropped from the work resolves too), exactly once; SIGUSR1 re-execs a
//! daemon started with a relative conf path and a failed exec runs on;
//! HIST on the server honours its host argument.

mod common;
use common::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// A `command` channel script appending `KIND ITEM OLD NEW` per delivery.
fn recorder(dir: &Path, out: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join("rec.sh");
    let script = format!(
        "#!/bin/sh\necho \"$HBMON_KIND $HBMON_ITEM $HBMON_OLD $HBMON_NEW\" >> {}\n",
        out.display()
    );
    std::fs::write(&p, script).expect("write recorder");
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    p
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p).unwrap_or_default().lines().map(String::from).collect()
}

fn count(p: &Path, prefix: &str) -> usize {
    lines(p).iter().filter(|l| l.starts_with(prefix)).count()
}

/// The server's count of stored reports (`-- events received ... reports N`).
fn reports(srv: &Host) -> u64 {
    let st = srv.try_cmd("STATE").unwrap_or_default();
    st.lines()
        .find(|l| l.starts_with("-- events received"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn a_killed_client_resolves_its_alert_when_back_12_3() {
    let f0 = Fleet::new(&["srv", "c1"], "", "");
    let (a, b) =
        (format!("ra{}x{}", f0.net[0], f0.net[1]), format!("rb{}x{}", f0.net[0], f0.net[1]));
    let got = f0.dir.path().join("got");
    let rec = recorder(f0.dir.path(), &got);
    let get = format!("get c1 proc:{a} proc:{b}\n");
    let work = format!(
        "ival_make_state 1s\nival_send_report 1s\nival_heartbeat 1s\n{get}\
         fit proc:{a} sick <1\nfit proc:{b} sick <1\n\
         channel rec command {}\nuser ops rec\nalert all proc:* sick ops\n",
        rec.display()
    );
    let text = std::fs::read_to_string(&f0.workconf).expect("work");
    std::fs::write(&f0.workconf, format!("{text}{work}")).expect("write work");
    let mut f = f0;
    f.start_all();
    // Neither process runs: two alerts.
    let (ia, ib) = (format!("proc:{a}"), format!("proc:{b}"));
    wait_for(20.0, "both alerts", || {
        (count(&got, &format!("alert {ia} ")) == 1 && count(&got, &format!("alert {ib} ")) == 1)
            .then_some(())
    });
    // c1 dies with the alerts open, a's process starts, c1 comes back: its
    // first level of a is fine (not an event), its report says so.
    f.host("c1").kill9();
    let _pa = NamedProc::start(f.dir.path(), &a);
    f.host("c1").start();
    wait_for(30.0, "a's recovery", || (count(&got, &format!("recovery {ia} ")) >= 1).then_some(()));
    // b leaves the work while alerting: it resolves too.
    let text = std::fs::read_to_string(&f.workconf).expect("work");
    let text = text.replace(&get, &format!("get c1 proc:{a}\n"));
    std::fs::write(&f.workconf, text.replace(&format!("fit proc:{b} sick <1\n"), ""))
        .expect("work");
    f.mkwork();
    wait_for(30.0, "b's recovery", || (count(&got, &format!("recovery {ib} ")) >= 1).then_some(()));
    f.host("c1").wait_state(15.0, "b gone from c1", |s| item_line(s, &ib).is_none());
    // Exactly once: more reports change nothing.
    let r0 = reports(f.server());
    wait_for(30.0, "four more reports", || (reports(f.server()) >= r0 + 4).then_some(()));
    let all = lines(&got);
    assert_eq!(count(&got, &format!("recovery {ia} ")), 1, "{all:?}");
    assert_eq!(count(&got, &format!("recovery {ib} ")), 1, "{all:?}");
    assert!(all.contains(&format!("recovery {ia} sick fine")), "{all:?}");
    let st = f.server().body("STATE");
    assert!(st.contains(" alerting 0 "), "{st}");
}

/// Kills a daemonized hbmon by pid when the test ends (it is not our child).
struct Daemon(i32);
impl Drop for Daemon {
    fn drop(&mut self) {
        if alive(self.0) {
            signal(self.0, libc::SIGKILL);
            wait_gone(self.0, 5.0);
        }
    }
}

fn started(h: &Host) -> Option<f64> {
    let a = h.try_cmd("DUMP")?;
    let v: serde_json::Value = serde_json::from_str(a.lines().nth(1)?).ok()?;
    v["started"].as_f64()
}

/// `BIN -c conf start` (a daemon) from `cwd`; returns its pid once it answers.
fn start_daemon(bin: &Path, cwd: &Path, conf: &str, h: &mut Host) -> Daemon {
    let mut cmd = Command::new(bin);
    cmd.current_dir(cwd).args(["-c", conf, "start"]).stdin(Stdio::null());
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let out = spawn_fresh(&mut cmd).wait_with_output().expect("hbmon start");
    assert!(out.status.success(), "start: {}", String::from_utf8_lossy(&out.stderr));
    h.wait_port();
    let pid = wait_for(10.0, "the pid file", || h.pid());
    Daemon(pid)
}

#[test]
fn usr1_reexec_with_a_relative_conf_12_8() {
    let mut f = Fleet::solo("");
    let root = f.dir.path().to_path_buf();
    let rel = format!("{}/hbmon.conf", f.hosts[0].tag);
    assert!(root.join(&rel).exists());
    let d = start_daemon(Path::new(BIN), &root, &rel, &mut f.hosts[0]);
    let h = &f.hosts[0];
    let t0 = started(h).expect("started");
    signal(d.0, libc::SIGUSR1);
    let t1 = wait_for(20.0, "the re-executed daemon", || started(h).filter(|t| *t > t0));
    assert!(t1 > t0);
    assert!(alive(d.0), "same pid after the re-exec");
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", d.0)).expect("cmdline");
    let conf_abs = h.conf.display().to_string();
    assert!(
        cmdline.split(|&b| b == 0).any(|a| a == conf_abs.as_bytes()),
        "re-exec'd with the absolute conf: {:?}",
        String::from_utf8_lossy(&cmdline)
    );
}

#[test]
fn usr1_with_a_broken_binary_runs_on_12_8() {
    let mut f = Fleet::solo("");
    let root = f.dir.path().to_path_buf();
    let bin = root.join("hbmon-copy");
    std::fs::copy(BIN, &bin).expect("copy the binary");
    let conf = f.hosts[0].conf.display().to_string();
    let d = start_daemon(&bin, &root, &conf, &mut f.hosts[0]);
    let h = &f.hosts[0];
    let t0 = started(h).expect("started");
    // Gone: refused before anything stops.
    std::fs::remove_file(&bin).expect("remove the binary");
    signal(d.0, libc::SIGUSR1);
    wait_for(10.0, "the refusal in the log", || {
        h.log().contains("cannot re-execute").then_some(())
    });
    assert_eq!(started(h), Some(t0), "still the same run");
    // Executable but not a program: the exec itself fails; it runs on.
    std::fs::write(&bin, "not a program\n").expect("write");
    std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    signal(d.0, libc::SIGUSR1);
    wait_for(20.0, "a running daemon again", || {
        (h.log().contains("re-exec failed") && started(h).is_some_and(|t| t > t0)).then_some(())
    });
    assert!(alive(d.0), "the same process runs on");
    assert!(h.cmd("PING").contains("PONG"));
}

#[test]
fn hist_on_the_server_honours_the_host_12_10() {
    let work = "ival_make_state 1s\nget c1 procs\n";
    let mut f = Fleet::new(&["srv", "c1"], work, "");
    f.start_all();
    let has_value = |a: &str| -> bool {
        let Some(body) = a.lines().nth(1) else { return false };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(body) else { return false };
        v["data"]["rows"].as_array().is_some_and(|r| r.iter().any(|row| row[1].is_number()))
    };
    // c1's own history has procs; the server's has none.
    let c1 = f.host("c1");
    wait_for(20.0, "procs in c1's history", || has_value(&c1.cmd("HIST H 10 procs")).then_some(()));
    let srv = f.server();
    assert!(!has_value(&srv.cmd("HIST H 10 procs")), "the server has no procs samples");
    let name = format!("c1.{DOMAIN}");
    for line in [format!("HIST H 10 {name} procs"), "HIST c1 procs".to_string()] {
        let a = srv.cmd(&line);
        assert!(a.starts_with("COMMAND HIST\n") && a.ends_with("COMMAND DONE\n"), "{line}: {a}");
        assert!(has_value(&a), "{line} answers c1's history: {a}");
    }
}
