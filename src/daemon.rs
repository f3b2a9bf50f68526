//! The daemon's life-cycle around the event loop: detaching from the
//! terminal (double fork with a ready pipe so `hbmon start` reports the real
//! outcome), the pid/lock/stop-secret files under the rundir, and re-exec.
//!
//! Division of work, in the order the caller uses it:
//! 1. [`daemonize`] forks; the original process waits on a pipe and exits
//!    with the daemon's verdict. The daemon (grandchild) has `setsid`, cwd `/`,
//!    umask 022 and stdin on /dev/null, but KEEPS stdout/stderr so that a
//!    failure before the logger is up is still visible on the terminal.
//! 2. [`take_lock`] in the final process: lock, pid file, fresh stop secret.
//! 3. The caller sets up logging, then calls [`detach_stdio`] (stdout and
//!    stderr to /dev/null) and [`ReadyPipe::ready`] (the parent exits 0).
//!
//! This module never decides exit codes of the daemon itself and never
//! signals any process except through [`process_alive`]'s null signal.

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, Pid};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Where the daemon keeps its run-time files (`$rundir/hbmon.{pid,lck,stp}`).
pub struct RunFiles {
    pub pid: PathBuf,
    pub lock: PathBuf,
    pub stop: PathBuf,
}

impl RunFiles {
    /// The run-time files a conf names.
    pub fn of(conf: &crate::conf::Conf) -> RunFiles {
        RunFiles { pid: conf.pid_file(), lock: conf.lock_file(), stop: conf.stop_file() }
    }
}

/// The daemon's end of the pipe the waiting `hbmon start` reads. Consuming
/// it (ready/fail) closes it; dropping it unused makes the parent report
/// "failed to start (see log)".
pub struct ReadyPipe {
    fd: File,
}

/// What the daemon told the waiting parent, as the parent decodes it.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Started; the daemon's pid (the waiting parent prints it).
    Ready(u32),
    /// Exit code for the parent, and the message to print.
    Fail(i32, String),
}

impl ReadyPipe {
    /// Tells the parent that start-up succeeded (it exits 0).
    pub fn ready(mut self) {
        // If the parent is gone (killed), there is nobody to tell.
        let _ = self.fd.write_all(&encode(&Verdict::Ready(std::process::id())));
    }
    /// Start-up failed at run time: the parent prints `msg` and exits 1.
    pub fn fail(self, msg: &str) {
        self.fail_code(1, msg)
    }
    /// Start-up failed: the parent prints `msg` and exits `code`
    /// (2 for a usage/conf problem). The daemon's own stdout/stderr are
    /// detached afterwards, so the message the caller may still print on
    /// its way out does not reach the terminal twice.
    pub fn fail_code(mut self, code: i32, msg: &str) {
        let _ = self.fd.write_all(&encode(&Verdict::Fail(code, msg.to_string())));
        let _ = detach_stdio();
    }
    /// Start-up failed with `e`: the exit code is the error's own.
    pub fn fail_error(self, e: &Error) {
        self.fail_code(e.exit_code(), &e.to_string())
    }
}

/// The pipe words: `ready\n`, or `fail CODE\n` followed by the message (which
/// may span lines, e.g. several conf errors) up to EOF.
pub fn encode(v: &Verdict) -> Vec<u8> {
    match v {
        Verdict::Ready(pid) => format!("ready {pid}\n").into_bytes(),
        Verdict::Fail(code, msg) => format!("fail {code}\n{msg}").into_bytes(),
    }
}

/// Decodes what the parent read until EOF; anything unexpected, including
/// nothing at all (the daemon died), is a failure with exit code 1.
pub fn decode(bytes: &[u8]) -> Verdict {
    const DIED: &str = "hbmon failed to start (see log)";
    let text = String::from_utf8_lossy(bytes);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    if let Some(pid) = first.strip_prefix("ready ").and_then(|p| p.trim().parse::<u32>().ok()) {
        return Verdict::Ready(pid);
    }
    if let Some(code) = first.strip_prefix("fail ") {
        let code = code.trim().parse::<i32>().ok().filter(|c| (1..=125).contains(c)).unwrap_or(1);
        let msg = if rest.trim().is_empty() { DIED.to_string() } else { rest.to_string() };
        return Verdict::Fail(code, msg);
    }
    Verdict::Fail(1, DIED.to_string())
}

/// Detaches from the terminal; returns only in the daemon process (see the
/// module doc for what it does and does not do to stdio). The calling
/// process waits for the verdict and exits.
pub fn daemonize() -> Result<ReadyPipe> {
    let (rd, wr) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| Error::io("daemonize: pipe", e.into()))?;
    // SAFETY (nix marks fork unsafe for multi-threaded callers): the caller
    // runs this before any thread is spawned (the event loop, helper threads
    // and loggers all start later), so the child inherits a consistent heap.
    match unsafe { nix::unistd::fork() }.map_err(|e| Error::io("daemonize: fork", e.into()))? {
        ForkResult::Parent { child } => {
            drop(wr);
            parent_wait(rd, child)
        }
        ForkResult::Child => {
            drop(rd);
            nix::unistd::setsid().map_err(|e| Error::io("daemonize: setsid", e.into()))?;
            // SAFETY: still single-threaded, as above. The second fork makes
            // the daemon a non-session-leader so it can never reacquire a tty.
            match unsafe { nix::unistd::fork() }
                .map_err(|e| Error::io("daemonize: second fork", e.into()))?
            {
                ForkResult::Parent { .. } => std::process::exit(0),
                ForkResult::Child => {}
            }
            nix::unistd::chdir("/").map_err(|e| Error::io("daemonize: chdir /", e.into()))?;
            nix::sys::stat::umask(Mode::from_bits_truncate(0o022));
            redirect_to_null(&[0])?;
            close_inherited(wr.as_raw_fd());
            Ok(ReadyPipe { fd: File::from(wr) })
        }
    }
}

/// Closes every fd above stderr except `keep`: a daemon must not hold a
/// pipe its starter inherited (a shell's `$(hbmon start)` or a test harness
/// would wait for its EOF forever). Sound because daemonize runs before the
/// process opens anything it keeps (conf and work files are read and
/// closed by then).
fn close_inherited(keep: i32) {
    let fds: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&fd| fd > 2 && fd != keep)
            .collect(),
        // No /proc: leave them; they are only a nuisance, not a fault.
        Err(_) => return,
    };
    // The list includes read_dir's own fd, already closed: EBADF, ignored.
    for fd in fds {
        let _ = nix::unistd::close(fd);
    }
}

/// The original process: reap the intermediate child, read the verdict,
/// print a failure, exit. Never returns.
fn parent_wait(rd: OwnedFd, child: Pid) -> ! {
    let _ = nix::sys::wait::waitpid(child, None);
    let mut buf = Vec::new();
    let f = File::from(rd);
    // EOF comes when the daemon consumed or dropped its ReadyPipe, or died.
    let _ = f.take(1 << 20).read_to_end(&mut buf);
    match decode(&buf) {
        Verdict::Ready(pid) => {
            let _ = writeln!(std::io::stdout(), "started (pid {pid})");
            std::process::exit(0)
        }
        Verdict::Fail(code, msg) => {
            let _ = writeln!(std::io::stderr(), "{}", msg.trim_end());
            std::process::exit(code)
        }
    }
}

/// Points stdin, stdout and stderr at /dev/null: call once logging goes to
/// its file or syslog, before telling the parent `ready`.
pub fn detach_stdio() -> Result<()> {
    redirect_to_null(&[0, 1, 2])
}

fn redirect_to_null(fds: &[i32]) -> Result<()> {
    let null = OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|e| Error::io("open /dev/null", e))?;
    for &fd in fds {
        nix::unistd::dup2(null.as_raw_fd(), fd)
            .map_err(|e| Error::io(format!("redirect fd {fd} to /dev/null"), e.into()))?;
    }
    Ok(())
}

/// Holds the exclusive lock for the daemon's life; dropping it removes the
/// pid, stop-secret and lock files, then releases the lock.
pub struct LockGuard {
    lock: Option<Flock<File>>,
    files: RunFiles,
}

impl LockGuard {
    /// Rewrites the pid file with the current pid (for a caller that took
    /// the lock before a fork; the normal order makes this unnecessary).
    pub fn update_pid(&self) -> Result<()> {
        write_pid(&self.files.pid)
    }
    /// The files this guard looks after.
    pub fn files(&self) -> &RunFiles {
        &self.files
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.files.pid);
        let _ = std::fs::remove_file(&self.files.stop);
        // Unlinked while still held: a starter that opened the old inode
        // notices the mismatch in take_lock and retries on a fresh file.
        let _ = std::fs::remove_file(&self.files.lock);
        drop(self.lock.take());
    }
}

/// Takes the daemon's lock (call in the final daemon process), then writes
/// the pid file and a fresh stop secret (mode 0600). A running daemon makes
/// this a run-time error (exit 1) naming its pid.
pub fn take_lock(files: &RunFiles) -> Result<LockGuard> {
    for p in [&files.lock, &files.pid, &files.stop] {
        if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
        }
    }
    let lock = lock_file(files)?;
    let guard = LockGuard {
        lock: Some(lock),
        files: RunFiles {
            pid: files.pid.clone(),
            lock: files.lock.clone(),
            stop: files.stop.clone(),
        },
    };
    write_pid(&files.pid)?;
    write_secret(&files.stop, &new_secret()?)?;
    Ok(guard)
}

fn lock_file(files: &RunFiles) -> Result<Flock<File>> {
    let path = &files.lock;
    // A few rounds only matter when another daemon is exiting right now.
    for _ in 0..5 {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(|e| Error::io(format!("open lock {}", path.display()), e))?;
        let held = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
            Ok(l) => l,
            Err((_, Errno::EWOULDBLOCK)) => {
                let pid = read_pid(files).map_or_else(|| "unknown".to_string(), |p| p.to_string());
                // A run-time condition, not bad usage: exit 1 (2 is for usage and conf).
                return Err(Error::Runtime(format!(
                    "hbmon is already running (pid {pid}, lock {})",
                    path.display()
                )));
            }
            Err((_, e)) => {
                return Err(Error::io(format!("lock {}", path.display()), e.into()));
            }
        };
        // The previous holder may have unlinked the file between our open
        // and our lock; then we hold a lock nobody else can see.
        let same = match (held.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if same {
            return Ok(held);
        }
    }
    Err(Error::Runtime(format!("lock {} keeps being replaced", path.display())))
}

fn write_pid(path: &Path) -> Result<()> {
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{}\n", std::process::id()))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(format!("write pid file {}", path.display()), e))
}

/// Writes the secret to a file created with mode 0600 (never chmod after:
/// no moment exists when others could read it).
fn write_secret(path: &Path, secret: &str) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("remove old {}", path.display()), e)),
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("create stop secret {}", path.display()), e))?;
    f.write_all(format!("{secret}\n").as_bytes())
        .map_err(|e| Error::io(format!("write stop secret {}", path.display()), e))
}

/// 32 lower-case hex characters from the kernel's random source.
pub fn new_secret() -> Result<String> {
    let mut b = [0u8; 16];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::io("read /dev/urandom", e))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The pid in the pid file, if it holds a positive number.
pub fn read_pid(files: &RunFiles) -> Option<i32> {
    let text = std::fs::read_to_string(&files.pid).ok()?;
    text.trim().parse::<i32>().ok().filter(|p| *p > 0)
}

/// The stop secret (trimmed); an error names the file.
pub fn read_secret(files: &RunFiles) -> Result<String> {
    let s = std::fs::read_to_string(&files.stop)
        .map_err(|e| Error::io(format!("read stop secret {}", files.stop.display()), e))?;
    let s = s.trim();
    if s.is_empty() {
        return Err(Error::Runtime(format!("stop secret {} is empty", files.stop.display())));
    }
    Ok(s.to_string())
}

/// Whether a process with this pid exists (EPERM counts: it exists but is
/// not ours). Pids <= 0 would address process groups, so they are "no".
pub fn process_alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    match nix::sys::signal::kill(Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e == Errno::EPERM,
    }
}

/// Polls until `pid` is gone or `timeout` passes; true when gone.
pub fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        if !process_alive(pid) {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn files(dir: &Path) -> RunFiles {
        let run = dir.join("run");
        RunFiles {
            pid: run.join("hbmon.pid"),
            lock: run.join("hbmon.lck"),
            stop: run.join("hbmon.stp"),
        }
    }

    #[test]
    fn second_lock_fails_naming_the_pid() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        let g = take_lock(&f).unwrap();
        assert_eq!(read_pid(&f), Some(std::process::id() as i32));
        let Err(e) = take_lock(&f) else { panic!("second lock succeeded") };
        let msg = e.to_string();
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        assert!(msg.contains("hbmon.lck"), "{msg}");
        assert_eq!(e.exit_code(), 1, "already running is a run-time failure");
        drop(g);
        // Once released, the lock can be taken again.
        let _g = take_lock(&f).unwrap();
    }

    #[test]
    fn guard_drop_removes_files() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        let g = take_lock(&f).unwrap();
        assert!(f.pid.exists() && f.stop.exists() && f.lock.exists());
        drop(g);
        assert!(!f.pid.exists(), "pid file left");
        assert!(!f.stop.exists(), "stop file left");
        assert!(!f.lock.exists(), "lock file left");
    }

    #[test]
    fn stop_file_is_0600_with_a_fresh_secret() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        let g = take_lock(&f).unwrap();
        let mode = std::fs::metadata(&f.stop).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let s1 = read_secret(&f).unwrap();
        drop(g);
        let _g = take_lock(&f).unwrap();
        let s2 = read_secret(&f).unwrap();
        assert_ne!(s1, s2);
    }

    #[test]
    fn secret_is_32_hex_and_differs() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn stale_secret_file_is_replaced_with_mode_0600() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        std::fs::create_dir_all(f.stop.parent().unwrap()).unwrap();
        std::fs::write(&f.stop, "old\n").unwrap();
        std::fs::set_permissions(&f.stop, std::fs::Permissions::from_mode(0o644)).unwrap();
        let _g = take_lock(&f).unwrap();
        let mode = std::fs::metadata(&f.stop).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_ne!(read_secret(&f).unwrap(), "old");
    }

    #[test]
    fn read_pid_and_secret_are_robust() {
        let d = tempfile::tempdir().unwrap();
        let f = files(d.path());
        assert_eq!(read_pid(&f), None);
        assert!(read_secret(&f).unwrap_err().to_string().contains("hbmon.stp"));
        std::fs::create_dir_all(f.pid.parent().unwrap()).unwrap();
        for bad in ["", "abc", "-1", "0", "12x"] {
            std::fs::write(&f.pid, bad).unwrap();
            assert_eq!(read_pid(&f), None, "{bad:?}");
        }
        std::fs::write(&f.pid, " 42\n").unwrap();
        assert_eq!(read_pid(&f), Some(42));
        std::fs::write(&f.stop, "\n").unwrap();
        assert!(read_secret(&f).is_err());
    }

    #[test]
    fn process_alive_and_wait_gone() {
        assert!(process_alive(std::process::id() as i32));
        assert!(!process_alive(0));
        assert!(!process_alive(-1));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as i32;
        child.wait().unwrap();
        assert!(wait_gone(pid, Duration::from_secs(2)));
        assert!(!wait_gone(std::process::id() as i32, Duration::from_millis(50)));
    }

    #[test]
    fn verdict_words_round_trip() {
        assert_eq!(decode(&encode(&Verdict::Ready(4242))), Verdict::Ready(4242));
        assert_eq!(encode(&Verdict::Ready(7)), b"ready 7\n");
        let v = Verdict::Fail(2, "a.conf:3: bad\na.conf:4: worse".into());
        assert_eq!(decode(&encode(&v)), v);
        let died = Verdict::Fail(1, "hbmon failed to start (see log)".into());
        assert_eq!(decode(b""), died);
        assert_eq!(decode(b"garbage"), died);
        assert_eq!(decode(b"fail x\nmsg"), Verdict::Fail(1, "msg".into()));
        assert_eq!(decode(b"fail 2\n"), Verdict::Fail(2, "hbmon failed to start (see log)".into()));
    }
}
