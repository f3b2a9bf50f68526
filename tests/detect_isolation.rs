//! Issue 15's isolation guard through the real binary: 8 of 10 clients'
//! heartbeats stop at once (SIGSTOP, so their command ports accept but never
//! answer): the server raises one `isolation` alert and holds the per-host
//! downs; the clients resumed within the hold never alert, the ones still
//! stopped are sent at its end.

mod common;
use common::*;
use std::path::Path;

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

/// Resumes stopped clients even when the test fails half-way.
struct Stopped(Vec<i32>);
impl Drop for Stopped {
    fn drop(&mut self) {
        for pid in &self.0 {
            signal(*pid, libc::SIGCONT);
        }
    }
}

#[test]
fn most_hosts_silent_at_once_is_one_isolation_alert_and_held_downs() {
    let tags = ["srv", "c0", "c1", "c2", "c3", "c4", "c5", "c6", "c7", "c8", "c9"];
    let f0 = Fleet::new(&tags, "", "");
    let got = f0.dir.path().join("alerts");
    let rec = recorder(f0.dir.path(), &got);
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\ndetector tuned\nival_make_state 1h\n\
         channel rec command {}\nuser ops rec\nalert all * sick ops\n",
        rec.display()
    );
    let text = std::fs::read_to_string(&f0.workconf).expect("work");
    std::fs::write(&f0.workconf, format!("{text}{work}")).expect("write work");
    let mut f = f0;
    f.start_all();
    let name = |t: &str| format!("{t}.{DOMAIN}");
    f.server().wait_state(60.0, "all up", |s| {
        tags.iter().all(|t| s.contains(&format!("-- host {} up", name(t))))
    });
    let pids: Vec<i32> = tags[1..9].iter().map(|t| f.host(t).pid().expect("pid")).collect();
    for pid in &pids {
        signal(*pid, libc::SIGSTOP);
    }
    let mut stopped = Stopped(pids.clone());
    let a = wait_for(60.0, "the isolation alert", || {
        let a = alerts(&got);
        a.contains(" isolation sick ").then_some(a)
    });
    assert!(a.contains("server isolated"), "{a}");
    // The alert is the server's own item, in no work: a new work leaves it
    // open (the server once closed such items as "no longer in the work").
    let lm = |s: &str| s.lines().find(|l| l.starts_with("-- work ")).map(str::to_string);
    let before = lm(&f.server().cmd("STATE"));
    f.append_work("user dev rec\n");
    f.mkwork();
    assert!(f.server().cmd("WORK_RELOAD").contains("COMMAND DONE"));
    f.server().wait_state(20.0, "the new work", |s| lm(s) != before);
    // Half come back within the hold: they never alert.
    for pid in &pids[..4] {
        signal(*pid, libc::SIGCONT);
    }
    stopped.0 = pids[4..].to_vec();
    let a = wait_for(60.0, "the held downs after the hold", || {
        let a = alerts(&got);
        tags[5..9].iter().all(|t| a.contains(&format!("{} heartbeat dead", name(t)))).then_some(a)
    });
    for t in &tags[5..9] {
        let l =
            a.lines().find(|l| l.contains(&format!("{} heartbeat dead", name(t)))).unwrap_or("");
        assert!(l.contains("held while the server suspected itself"), "{l}");
    }
    for t in &tags[1..5] {
        assert!(!a.contains(&format!(" {} heartbeat", name(t))), "{t} alerted:\n{a}");
    }
    assert_eq!(a.matches(" isolation sick ").count(), 1, "one isolation alert:\n{a}");
    let srv = f.server().name.clone();
    let body = f.server().body(&format!("CLIENTS {srv} isolation 100"));
    let v: serde_json::Value = serde_json::from_str(&body).expect("CLIENTS JSON");
    let closed_by_work = v["events"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|e| e["message"].as_str().is_some_and(|m| m.starts_with("recovered: no longer")));
    assert!(!closed_by_work, "the isolation alert was closed by the work:\n{body}");
    f.server().wait_state(30.0, "resumed ones up", |s| {
        tags[1..5].iter().all(|t| s.contains(&format!("-- host {} up", name(t))))
    });
}
