//! Checks the shipped init files with the tools that judge them:
//! `systemd-analyze verify` for the unit, `sh -n` and `shellcheck` for the
//! LSB script, plus the script's dispatch against a fake hbmon binary.
//! Every tool's output is printed when an assertion fails.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn init_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("init").join(name)
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("cannot run {shown}: {e} (is the tool installed? see Makefile)"),
    }
}

fn show(what: &str, o: &Output) -> String {
    format!(
        "{what}: status {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn systemd_unit_verifies() {
    let text = std::fs::read_to_string(init_file("hbmon.service")).unwrap();
    for want in [
        "Type=notify",
        "NotifyAccess=main",
        "WatchdogSec=30s",
        "ExecStart=/usr/local/sbin/hbmon start -i",
        "ExecReload=/usr/local/sbin/hbmon reload",
        "SyslogIdentifier=hbmon",
        "Restart=on-failure",
        "After=network-online.target",
        "RuntimeDirectory=hbmon",
        "StateDirectory=hbmon",
        "LogsDirectory=hbmon",
    ] {
        assert!(text.lines().any(|l| l.trim() == want), "unit lacks {want:?}");
    }
    // verify insists the binaries exist: point them at a real executable.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("hbmon.service");
    let swapped = text.replace("/usr/local/sbin/hbmon", "/bin/true");
    assert!(!swapped.contains("/usr/local/sbin/hbmon"));
    std::fs::write(&copy, swapped).unwrap();
    let o = run(Command::new("systemd-analyze").arg("verify").arg(&copy));
    let all =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "{}", show("systemd-analyze verify", &o));
    // Unknown keys are only warnings (exit 0): none may name our unit.
    assert!(!all.contains("hbmon.service"), "{}", show("systemd-analyze verify", &o));
}

#[test]
fn rc_script_passes_sh_n_and_shellcheck() {
    let script = init_file("hbmon.init");
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.starts_with("#!/bin/sh\n"));
    assert!(text.contains("### BEGIN INIT INFO") && text.contains("### END INIT INFO"));
    let o = run(Command::new("sh").arg("-n").arg(&script));
    assert!(o.status.success(), "{}", show("sh -n", &o));
    let o = run(Command::new("shellcheck").args(["-s", "sh"]).arg(&script));
    assert!(o.status.success(), "{}", show("shellcheck", &o));
}

/// A fake hbmon that records its arguments; `state` exits $STATE_RC.
fn fake_hbmon(dir: &Path) -> PathBuf {
    let p = dir.join("hbmon");
    let body = "#!/bin/sh\necho \"$@\" >> \"$FAKE_LOG\"\n\
                case \"$1\" in state) exit \"${STATE_RC:-0}\" ;; esac\nexit 0\n";
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

struct Rc {
    code: Option<i32>,
    calls: Vec<String>,
    out: String,
}

fn rc(dir: &Path, action: &str, state_rc: i32, pidfile: &Path) -> Rc {
    let log = dir.join("calls");
    let _ = std::fs::remove_file(&log);
    let o = run(Command::new("sh")
        .arg(init_file("hbmon.init"))
        .arg(action)
        .env("DAEMON", fake_hbmon(dir))
        .env("PIDFILE", pidfile)
        .env("FAKE_LOG", &log)
        .env("STATE_RC", state_rc.to_string()));
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    Rc {
        code: o.status.code(),
        calls: calls.lines().map(str::to_string).collect(),
        out: show(&format!("hbmon.init {action}"), &o),
    }
}

#[test]
fn rc_script_dispatches_to_hbmon() {
    let d = tempfile::tempdir().unwrap();
    let nopid = d.path().join("none.pid");

    let r = rc(d.path(), "start", 1, &nopid);
    assert_eq!(
        (r.code, r.calls.clone()),
        (Some(0), vec!["state".into(), "start".into()]),
        "{}",
        r.out
    );
    let r = rc(d.path(), "start", 0, &nopid);
    assert_eq!((r.code, r.calls.clone()), (Some(0), vec!["state".into()]), "{}", r.out);
    let r = rc(d.path(), "stop", 0, &nopid);
    assert_eq!(
        (r.code, r.calls.clone()),
        (Some(0), vec!["state".into(), "stop".into()]),
        "{}",
        r.out
    );
    let r = rc(d.path(), "reload", 0, &nopid);
    assert_eq!((r.code, r.calls.clone()), (Some(0), vec!["reload".into()]), "{}", r.out);
    let r = rc(d.path(), "force-reload", 0, &nopid);
    assert_eq!(r.calls, vec!["reload".to_string()], "{}", r.out);
    let r = rc(d.path(), "restart", 0, &nopid);
    assert_eq!(r.calls, vec!["state", "stop", "start"], "{}", r.out);

    let r = rc(d.path(), "status", 0, &nopid);
    assert_eq!(r.code, Some(0), "{}", r.out);
    assert!(r.out.contains("hbmon is running"), "{}", r.out);
    let r = rc(d.path(), "status", 1, &nopid);
    assert_eq!(r.code, Some(3), "{}", r.out);
    // Port silent but the pid file names a live process: running.
    let live = d.path().join("live.pid");
    std::fs::write(&live, format!("{}\n", std::process::id())).unwrap();
    assert_eq!(rc(d.path(), "status", 1, &live).code, Some(0));
    // A pid file naming a finished process: LSB "dead, pid file exists".
    let mut child = Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let dead = d.path().join("dead.pid");
    std::fs::write(&dead, format!("{dead_pid}\n")).unwrap();
    assert_eq!(rc(d.path(), "status", 1, &dead).code, Some(1));

    let r = rc(d.path(), "bogus", 0, &nopid);
    assert_eq!(r.code, Some(3), "{}", r.out);
    assert!(r.out.contains("Usage:"), "{}", r.out);
    assert!(r.calls.is_empty(), "{}", r.out);
}
