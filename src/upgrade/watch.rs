//! After the swap: the watchdog and the start-up check.
//!
//! The re-exec'd image runs in the same pid, so if it crashes nobody in
//! that process is left to roll back. Before re-exec'ing, the client starts
//! `hbmon.old upgrade-watch` (the known-good binary, in its own session):
//! it waits until the client answers PING at the new version, else (the
//! process died, or no answer within `ival_upgrade_check`) kills it, renames
//! `hbmon.old` back over the binary, records `rolled back: <why>` and
//! starts the old binary again (`start`). The restarted client reports the
//! rollback as its `upgrade` item, an event on the server.
//!
//! `$vardir/upgrade/state` (one line, replaced by rename) says where an
//! upgrade is; `recover` at start-up finishes or undoes an interrupted one.

use sha2::Digest;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// From copying `.hbmon.new` beside the binary to the rename; `sha`
    /// is the new binary's (is it in place yet?).
    Swap { from: String, to: String, sha: String },
    /// Swapped; the watchdog `watcher` decides.
    Trial { from: String, to: String, watcher: u32 },
    /// A finished outcome (`ok A -> B`, `rolled back: why`, `refused: why`).
    Done(String),
}

impl State {
    fn line(&self) -> String {
        match self {
            State::Swap { from, to, sha } => format!("swap {from} {to} {sha}"),
            State::Trial { from, to, watcher } => format!("trial {from} {to} {watcher}"),
            State::Done(t) => format!("done {t}"),
        }
    }

    fn parse(s: &str) -> Option<State> {
        let s = s.trim_end();
        let w: Vec<&str> = s.split(' ').collect();
        match w.as_slice() {
            ["swap", f, t, h] => {
                Some(State::Swap { from: f.to_string(), to: t.to_string(), sha: h.to_string() })
            }
            ["trial", f, t, p] => Some(State::Trial {
                from: f.to_string(),
                to: t.to_string(),
                watcher: p.parse().ok()?,
            }),
            _ => s.strip_prefix("done ").map(|t| State::Done(t.to_string())),
        }
    }
}

/// Where an upgrade stages its files and keeps its state.
pub fn staging(vardir: &Path) -> PathBuf {
    vardir.join("upgrade")
}

/// Paths next to the running binary: (`.hbmon.new`, `hbmon.old`).
pub fn side_paths(exe: &Path) -> (PathBuf, PathBuf) {
    let dir = exe.parent().unwrap_or(Path::new("/"));
    (dir.join(".hbmon.new"), dir.join("hbmon.old"))
}

fn state_path(vardir: &Path) -> PathBuf {
    staging(vardir).join("state")
}

/// Writes the state whole (temp file, fsync, rename).
pub fn write_state(vardir: &Path, st: &State) -> Result<(), String> {
    let dir = staging(vardir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let tmp = dir.join("state.tmp");
    let res = std::fs::File::create(&tmp).and_then(|mut f| {
        use std::io::Write;
        writeln!(f, "{}", st.line())?;
        f.sync_all()
    });
    res.and_then(|_| std::fs::rename(&tmp, state_path(vardir)))
        .map_err(|e| format!("write {}: {e}", state_path(vardir).display()))
}

pub fn read_state(vardir: &Path) -> Option<State> {
    State::parse(&std::fs::read_to_string(state_path(vardir)).ok()?)
}

/// Is `pid` a live process (not a zombie)?
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s.rsplit(')').next().and_then(|r| r.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// `hbmon upgrade-watch PID ADDR VERSION EXE VARDIR [SECONDS]`: the
/// watchdog; SECONDS is the client's `ival_upgrade_check`.
pub fn watch(conf: Option<&Path>, args: &[String]) -> i32 {
    let usage = "hbmon: usage: upgrade-watch PID ADDR VERSION EXE VARDIR [SECONDS]";
    let (pid, addr, want, exe, vardir, check) = match args {
        [p, a, w, e, v] => (p, a, w, e, v, super::come_back(crate::work::model::UPGRADE_CHECK)),
        [p, a, w, e, v, s] => match s.parse::<f64>().ok().and_then(ranges_ok) {
            Some(d) => (p, a, w, e, v, d),
            None => {
                eprintln!("{usage}: bad SECONDS {s}");
                return 2;
            }
        },
        _ => {
            eprintln!("{usage}");
            return 2;
        }
    };
    let (Ok(pid), Ok(addr)) = (pid.parse::<u32>(), addr.parse::<std::net::SocketAddr>()) else {
        eprintln!("hbmon: upgrade-watch: bad pid or address");
        return 2;
    };
    let (exe, vardir) = (PathBuf::from(exe), PathBuf::from(vardir));
    let deadline = Instant::now() + check;
    let why = loop {
        if !alive(pid) {
            break format!("{want} exited at start");
        }
        if let Ok(p) = super::call(addr, None, "PING", Duration::from_secs(3)) {
            if p.split_whitespace().last() == Some(want.as_str()) {
                let from = match read_state(&vardir) {
                    Some(State::Trial { from, .. }) => from,
                    _ => "?".into(),
                };
                let _ = write_state(&vardir, &State::Done(format!("ok {from} -> {want}")));
                return 0;
            }
        }
        if Instant::now() > deadline {
            break format!("{want} did not answer PING within {}s", check.as_secs_f64());
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    if alive(pid) {
        // SAFETY: plain kill(2) on the pid we were given by our parent.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        let t = Instant::now();
        while alive(pid) && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let (_, old) = side_paths(&exe);
    if let Err(e) = std::fs::rename(&old, &exe) {
        let _ =
            write_state(&vardir, &State::Done(format!("rolled back: {why}; restore failed: {e}")));
        return 1;
    }
    let _ = write_state(&vardir, &State::Done(format!("rolled back: {why}")));
    let mut c = std::process::Command::new(&exe);
    if let Some(conf) = conf {
        c.arg("-c").arg(conf);
    }
    match c.arg("start").stdin(std::process::Stdio::null()).status() {
        Ok(s) if s.success() => 0,
        _ => 1,
    }
}

/// SECONDS from the command line, within `ival_upgrade_check`'s range.
fn ranges_ok(s: f64) -> Option<Duration> {
    crate::ranges::check_ival("ival_upgrade_check", s).ok().map(super::come_back)
}

/// At start-up: clears staging leftovers and finishes or undoes an
/// interrupted upgrade. Returns (last outcome, a rollback to report).
pub fn recover(vardir: &Path, exe: Option<&Path>) -> (String, Option<String>) {
    let dir = staging(vardir);
    for f in ["hbmon.part", "hbmon.new", "state.tmp"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    let st = read_state(vardir);
    if !matches!(st, Some(State::Swap { .. })) {
        // A copy beside the binary is only ever valid during a swap.
        if let Some(e) = exe {
            let _ = std::fs::remove_file(side_paths(e).0);
        }
    }
    let done = |t: String| {
        if let Err(e) = write_state(vardir, &State::Done(t.clone())) {
            log::error!("upgrade: {e}");
        }
        (t, None)
    };
    match st {
        None => (String::new(), None),
        Some(State::Swap { from, to, sha }) => {
            let Some(exe) = exe else { return done(format!("refused: interrupted swap to {to}")) };
            let _ = std::fs::remove_file(side_paths(exe).0);
            let installed = std::fs::read(exe).map(|b| super::hex(&sha2::Sha256::digest(&b)));
            if installed.is_ok_and(|h| h == sha) {
                // The rename had happened: the new binary (tested) is in place; keep it.
                done(format!("ok {from} -> {to} (finished after an interruption)"))
            } else {
                // It had not: the installed binary is the old one.
                done(format!("refused: interrupted before the swap to {to}"))
            }
        }
        Some(State::Trial { from, to, watcher }) => {
            if alive(watcher) {
                (format!("trial {from} -> {to}"), None)
            } else if crate::VERSION == to {
                done(format!("ok {from} -> {to}"))
            } else {
                done(format!("rolled back: the trial of {to} was interrupted"))
            }
        }
        Some(State::Done(t)) => {
            // A rollback is reported once, by the first start after it.
            if let Some(why) = t.strip_prefix("rolled back: ").map(String::from) {
                let _ = write_state(vardir, &State::Done(format!("reported {t}")));
                return (t, Some(why));
            }
            (t.strip_prefix("reported ").unwrap_or(&t).to_string(), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_a_rollback_is_reported_once() {
        for s in [
            State::Swap { from: "hbmon-1".into(), to: "hbmon-2".into(), sha: "ab".into() },
            State::Trial { from: "hbmon-1".into(), to: "hbmon-2".into(), watcher: 7 },
            State::Done("rolled back: x y".into()),
        ] {
            assert_eq!(State::parse(&s.line()), Some(s));
        }
        let d = tempfile::tempdir().unwrap();
        write_state(d.path(), &State::Done("rolled back: it crashed".into())).unwrap();
        assert_eq!(recover(d.path(), None).1.as_deref(), Some("it crashed"));
        assert_eq!(recover(d.path(), None), ("rolled back: it crashed".into(), None));
    }

    #[test]
    fn an_interrupted_swap_is_undone_or_finished() {
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("hbmon");
        std::fs::write(&exe, "old").unwrap();
        let (tmp, _) = side_paths(&exe);
        std::fs::write(&tmp, "new").unwrap();
        let sha = super::super::hex(&sha2::Sha256::digest(b"new"));
        let sw = State::Swap { from: "hbmon-1".into(), to: "hbmon-2".into(), sha };
        write_state(d.path(), &sw).unwrap();
        let (last, _) = recover(d.path(), Some(&exe));
        assert!(last.starts_with("refused: interrupted"), "{last}");
        assert!(!tmp.exists());
        assert_eq!(std::fs::read_to_string(&exe).unwrap(), "old");
        std::fs::write(&exe, "new").unwrap();
        write_state(d.path(), &sw).unwrap();
        assert!(recover(d.path(), Some(&exe)).0.starts_with("ok hbmon-1 -> hbmon-2"));
    }
}
