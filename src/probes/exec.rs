//! Running an external command with a timeout: Nagios plugins, `probe:`
//! programs, the `ping` fallback, and (later) notification commands.
//!
//! The command gets its own process group, stdin from /dev/null, a minimal
//! environment (PATH, LC_ALL=C) and piped stdout/stderr, each read by its own
//! thread (so neither pipe can fill up and stall the child) and kept up to a
//! size cap (the rest is read and dropped). On timeout the WHOLE group gets
//! SIGKILL, so a shell script's `sleep` dies with it, and the child is reaped.
//! When the command exits normally, leftovers in its group are killed too: a
//! probe must not leave processes behind. The group is always signalled
//! before the leader is reaped, so its id cannot have been reused.
//!
//! Blocks the calling thread for up to the timeout: call it from a helper
//! thread, never from the loop.

use std::fmt;
use std::io::Read;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The PATH external commands run with.
pub const SANE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Default cap on each of stdout and stderr.
pub const DEFAULT_CAP: usize = 64 * 1024;

/// What a command that finished within its timeout produced.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; `None` when a signal ended it (see `signal`).
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// Lossy UTF-8, at most `cap` bytes.
    pub stdout: String,
    pub stderr: String,
    /// Whether either stream was longer than the cap.
    pub truncated: bool,
    pub elapsed: Duration,
}

#[derive(Debug)]
pub enum ExecError {
    /// argv was empty.
    NoProgram,
    /// The program could not be started (not found, not executable...).
    Spawn { program: String, source: std::io::Error },
    /// Still running at the timeout; its process group was killed.
    TimedOut { after: Duration },
    /// Waiting for the child failed (should not happen).
    Wait { program: String, source: std::io::Error },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::NoProgram => write!(f, "no program to run"),
            ExecError::Spawn { program, source } => write!(f, "cannot run {program}: {source}"),
            ExecError::TimedOut { after } => write!(f, "timed out after {}", fmt_secs(*after)),
            ExecError::Wait { program, source } => write!(f, "waiting for {program}: {source}"),
        }
    }
}

impl std::error::Error for ExecError {}

/// `30s`, `1.5s`: how timeouts are shown in error texts.
pub fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{}s", s as u64)
    } else {
        format!("{}s", (s * 1000.0).round() / 1000.0)
    }
}

/// Run `argv` (argv[0] is the program: a path, or a name looked up in
/// [`SANE_PATH`]) and wait up to `timeout`.
pub fn run_command(argv: &[String], timeout: Duration, cap: usize) -> Result<Output, ExecError> {
    run_with(argv, &[], None, timeout, cap)
}

/// `run_command` with extra environment variables and, when given, `stdin`
/// fed to the program (by a thread of its own, so a program that does not
/// read cannot stall us). Notification channels (mail, command) use this.
pub fn run_with(
    argv: &[String],
    env: &[(&str, String)],
    stdin: Option<&[u8]>,
    timeout: Duration,
    cap: usize,
) -> Result<Output, ExecError> {
    let program = argv.first().ok_or(ExecError::NoProgram)?;
    let started = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(&argv[1..])
        .env_clear()
        .env("PATH", SANE_PATH)
        .env("LC_ALL", "C")
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = spawn_busy_retry(&mut cmd)
        .map_err(|source| ExecError::Spawn { program: program.clone(), source })?;
    let pid = child.id() as i32;
    if let (Some(data), Some(mut w)) = (stdin, child.stdin.take()) {
        let data = data.to_vec();
        // A program that exits without reading just closes the pipe.
        std::thread::spawn(move || {
            let _ = std::io::Write::write_all(&mut w, &data);
        });
    }

    let (tx, rx) = mpsc::channel();
    let out_reader = child.stdout.take().map(|p| spawn_reader(p, cap, 0, tx.clone()));
    let err_reader = child.stderr.take().map(|p| spawn_reader(p, cap, 1, tx));
    let readers = usize::from(out_reader.is_some()) + usize::from(err_reader.is_some());

    let deadline = started + timeout;
    let exited = wait_exited(pid, deadline);
    // The leader is a zombie (exited) or still running: either way its pid,
    // and so the group id, is still ours to signal.
    kill_group(pid);
    let status =
        child.wait().map_err(|source| ExecError::Wait { program: program.clone(), source })?;
    if !exited {
        drain(&rx, readers, Instant::now() + Duration::from_secs(1));
        return Err(ExecError::TimedOut { after: timeout });
    }

    // Everything in the group is dead, so the pipes close; a grandchild that
    // left the group could hold them open, hence the bounded wait.
    let mut streams = drain(&rx, readers, Instant::now() + Duration::from_secs(1));
    let (stdout, t1) = streams.remove(&0).unwrap_or_default();
    let (stderr, t2) = streams.remove(&1).unwrap_or_default();
    Ok(Output {
        code: status.code(),
        signal: status.signal(),
        stdout,
        stderr,
        truncated: t1 || t2,
        elapsed: started.elapsed(),
    })
}

type Stream = (u8, String, bool);

fn spawn_reader(
    mut pipe: impl Read + Send + 'static,
    cap: usize,
    which: u8,
    tx: mpsc::Sender<Stream>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut truncated = false;
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len());
                    if n > room {
                        truncated = true;
                    }
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        // The receiver may have given up waiting; nothing to do then.
        let _ = tx.send((which, String::from_utf8_lossy(&kept).into_owned(), truncated));
    })
}

fn drain(
    rx: &mpsc::Receiver<Stream>,
    n: usize,
    until: Instant,
) -> std::collections::HashMap<u8, (String, bool)> {
    let mut got = std::collections::HashMap::new();
    while got.len() < n {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((which, text, trunc)) => {
                got.insert(which, (text, trunc));
            }
            Err(_) => break,
        }
    }
    got
}

/// Wait until `pid` has exited (without reaping it) or `deadline` passes.
/// Polls with a growing sleep: cheap for long runs, quick for short ones.
fn wait_exited(pid: i32, deadline: Instant) -> bool {
    let mut nap = Duration::from_millis(2);
    loop {
        if has_exited(pid) {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        std::thread::sleep(nap.min(deadline - now));
        nap = (nap * 2).min(Duration::from_millis(50));
    }
}

/// waitid(WEXITED|WNOHANG|WNOWAIT): has the child exited? It stays a
/// zombie, so its pid is not reused before we signal its group.
fn has_exited(pid: i32) -> bool {
    // SAFETY: siginfo_t is plain data; waitid only writes into it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: a valid pid of our own child and a valid pointer.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r == -1 {
        // ECHILD: someone else reaped it (a SIGCHLD handler reaping every
        // child would do that); it has certainly exited.
        return std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD);
    }
    // SAFETY: si_pid is valid to read after a successful waitid.
    let got = unsafe { info.si_pid() };
    got == pid
}

fn kill_group(pgid: i32) {
    use nix::sys::signal::{killpg, Signal};
    // ESRCH (nobody left) is fine.
    let _ = killpg(nix::unistd::Pid::from_raw(pgid), Signal::SIGKILL);
}

/// The first line of `text` that is not blank, trimmed, for messages.
pub fn first_line(text: &str) -> &str {
    text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("")
}

/// Spawns, retrying while the program file is busy. ETXTBSY comes when a
/// file just written (a staged upgrade, a probe script just saved) is still
/// open for writing in a child another thread forked in that instant (until
/// that child execs); it passes within milliseconds. Up to ~1.3 s in all,
/// on helper threads only (this blocks).
pub fn spawn_busy_retry(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    // sleep: a helper thread waiting out another process's exec
    retry_busy(|| cmd.spawn(), std::thread::sleep)
}

fn retry_busy<T>(
    mut f: impl FnMut() -> std::io::Result<T>,
    mut pause: impl FnMut(Duration),
) -> std::io::Result<T> {
    let mut wait = Duration::from_millis(10);
    for _ in 0..7 {
        match f() {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) => {
                pause(wait);
                wait *= 2;
            }
            r => return r,
        }
    }
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_program_file_is_retried_and_other_errors_are_not() {
        let busy = || std::io::Error::from_raw_os_error(nix::errno::Errno::ETXTBSY as i32);
        let (mut calls, mut pauses) = (0, Vec::new());
        let r = retry_busy(
            || {
                calls += 1;
                if calls < 3 {
                    Err(busy())
                } else {
                    Ok(calls)
                }
            },
            |d| pauses.push(d),
        );
        assert_eq!(r.unwrap(), 3);
        assert_eq!(pauses, [Duration::from_millis(10), Duration::from_millis(20)]);
        let mut calls = 0;
        let r: std::io::Result<()> = retry_busy(
            || {
                calls += 1;
                Err(std::io::Error::from(std::io::ErrorKind::NotFound))
            },
            |_| {},
        );
        assert!(r.is_err() && calls == 1, "not found is final");
        let mut calls = 0;
        let r: std::io::Result<()> = retry_busy(
            || {
                calls += 1;
                Err(busy())
            },
            |_| {},
        );
        assert!(r.is_err() && calls == 8, "gives up after eight tries, {calls}");
    }

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[test]
    fn captures_code_and_streams() {
        let o = run_command(&sh("echo out; echo err >&2; exit 3"), Duration::from_secs(5), 1024)
            .unwrap();
        assert_eq!(o.code, Some(3));
        assert_eq!(o.stdout, "out\n");
        assert_eq!(o.stderr, "err\n");
        assert!(!o.truncated);
    }

    #[test]
    fn minimal_environment() {
        let o = run_command(&sh("env | sort"), Duration::from_secs(5), 4096).unwrap();
        assert!(o.stdout.contains(&format!("PATH={SANE_PATH}")), "{}", o.stdout);
        assert!(o.stdout.contains("LC_ALL=C"));
        assert!(!o.stdout.contains("CARGO"), "{}", o.stdout);
    }

    #[test]
    fn caps_output_without_stalling_the_child() {
        // 1 MB of output against a 100-byte cap: the child must still finish.
        let o = run_command(
            &sh("head -c 1000000 /dev/zero; echo done >&2"),
            Duration::from_secs(10),
            100,
        )
        .unwrap();
        assert_eq!(o.code, Some(0));
        assert_eq!(o.stdout.len(), 100);
        assert!(o.truncated);
        assert_eq!(o.stderr, "done\n");
    }

    #[test]
    fn timeout_kills_the_group() {
        let t0 = Instant::now();
        let e =
            run_command(&sh("sleep 30; echo never"), Duration::from_millis(300), 1024).unwrap_err();
        assert!(matches!(e, ExecError::TimedOut { .. }));
        assert_eq!(e.to_string(), "timed out after 0.3s");
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn missing_program_and_signal() {
        let e =
            run_command(&["/no/such/prog".to_string()], Duration::from_secs(1), 10).unwrap_err();
        assert!(e.to_string().starts_with("cannot run /no/such/prog"), "{e}");
        assert!(matches!(run_command(&[], Duration::from_secs(1), 10), Err(ExecError::NoProgram)));
        let o = run_command(&sh("kill -9 $$"), Duration::from_secs(5), 10).unwrap();
        assert_eq!((o.code, o.signal), (None, Some(9)));
    }

    #[test]
    fn secs_format() {
        assert_eq!(fmt_secs(Duration::from_secs(30)), "30s");
        assert_eq!(fmt_secs(Duration::from_millis(1500)), "1.5s");
        assert_eq!(first_line("\n  hello \nworld"), "hello");
    }
}
