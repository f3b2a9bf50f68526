//! The process-wide logger: one `log::Log` implementation whose sink (stderr,
//! a rotated file, or syslog) can be swapped at any time, because
//! `log::set_logger` works only once and a reload may change the target.
//!
//! Lines look like `2026-11-24 10:01:02.123 WARN  message` (UTC). File
//! rotation is dmon's `rotate NUM IVAL`: once the file is older than IVAL it
//! becomes `hbmon.log.1`, older ones shift up, NUM old files are kept.
//!
//! Under systemd, when stderr is the journal (`$JOURNAL_STREAM` names it),
//! stderr lines carry no time of their own (journald stamps them) and start
//! with the syslog priority (`<4>` for WARN), which journald turns into the
//! entry's priority.
//!
//! Logging must never fail or panic the caller: write errors are dropped
//! (there is nowhere better to report them), and a poisoned lock is reused.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

/// Where log lines go.
pub enum Target {
    Stderr,
    File { path: PathBuf, rotate_num: u32, rotate_ival_secs: f64 },
    Syslog,
}

type SyslogWriter = syslog::Logger<syslog::LoggerBackend, crate::syslog3164::Rfc3164>;

enum Sink {
    Stderr,
    /// stderr connected to journald.
    Journal,
    File(FileSink),
    Syslog(Box<SyslogWriter>),
}

static SINK: Mutex<Option<Sink>> = Mutex::new(None);
static LOGGER: Logger = Logger;

struct Logger;

fn sink() -> MutexGuard<'static, Option<Sink>> {
    // A panic while logging must not silence every later line.
    SINK.lock().unwrap_or_else(|p| p.into_inner())
}

/// Installs the logger (first call) or swaps its target (later calls, e.g.
/// on reload), and sets the level. A file that cannot be opened is an error
/// and leaves the previous target in place; unreachable syslog falls back
/// to stderr with a warning.
pub fn init(target: Target, level: log::LevelFilter) -> Result<()> {
    let (new, warning) = match target {
        Target::Stderr if stderr_is_journal() => (Sink::Journal, None),
        Target::Stderr => (Sink::Stderr, None),
        Target::File { path, rotate_num, rotate_ival_secs } => {
            (Sink::File(FileSink::open(path, rotate_num, rotate_ival_secs, now_secs())?), None)
        }
        Target::Syslog => match syslog_writer(None) {
            Ok(w) => (Sink::Syslog(Box::new(w)), None),
            Err(e) => (Sink::Stderr, Some(format!("syslog unreachable ({e}); logging to stderr"))),
        },
    };
    *sink() = Some(new);
    // Already set (a re-init) is fine: the sink above was swapped.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);
    if let Some(w) = warning {
        log::warn!("{w}");
    }
    Ok(())
}

/// A syslog connection as facility LOG_DAEMON, process "hbmon", on the
/// system socket (or `path`, for tests).
fn syslog_writer(path: Option<&Path>) -> std::result::Result<SyslogWriter, syslog::Error> {
    let fmt = crate::syslog3164::Rfc3164::daemon();
    match path {
        None => syslog::unix(fmt),
        Some(p) => syslog::unix_custom(fmt, p),
    }
}

fn write_syslog(w: &mut SyslogWriter, level: log::Level, msg: String) -> bool {
    let r = match level {
        log::Level::Error => w.err(msg),
        log::Level::Warn => w.warning(msg),
        log::Level::Info => w.info(msg),
        log::Level::Debug | log::Level::Trace => w.debug(msg),
    };
    r.is_ok()
}

/// Where lines go now: "stderr", "file" or "syslog" (after a fallback from
/// syslog this says "stderr").
pub fn target_kind() -> &'static str {
    match sink().as_ref() {
        None | Some(Sink::Stderr) => "stderr",
        Some(Sink::Journal) => "journal",
        Some(Sink::File(_)) => "file",
        Some(Sink::Syslog(_)) => "syslog",
    }
}

/// Changes the level without touching the target.
pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level)
}

/// Rotates the log file now (no-op for stderr and syslog).
pub fn rotate_now() {
    if let Some(Sink::File(f)) = sink().as_mut() {
        f.rotate(now_secs());
    }
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &log::Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let now = now_secs();
        let mut guard = sink();
        match guard.as_mut() {
            None | Some(Sink::Stderr) => {
                let line = format_line(now, r.level(), &r.args().to_string());
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Some(Sink::Journal) => {
                let line = journal_line(r.level(), &r.args().to_string());
                let _ = std::io::stderr().write_all(line.as_bytes());
            }
            Some(Sink::File(f)) => {
                f.write(now, &format_line(now, r.level(), &r.args().to_string()))
            }
            Some(Sink::Syslog(w)) => {
                let msg = r.args().to_string();
                // A restarted syslog daemon breaks the connection: reconnect
                // once and resend, else drop the line.
                if !write_syslog(w, r.level(), msg.clone()) {
                    if let Ok(fresh) = syslog_writer(None) {
                        **w = fresh;
                        write_syslog(w, r.level(), msg);
                    }
                }
            }
        }
    }

    fn flush(&self) {
        if let Some(Sink::File(f)) = sink().as_mut() {
            let _ = f.file.flush();
        }
    }
}

fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Whether fd 2 is the stream systemd connected to the journal: systemd
/// sets `$JOURNAL_STREAM` to its `device:inode`, and a child whose stderr
/// was redirected elsewhere must not be mistaken for it.
fn stderr_is_journal() -> bool {
    use std::os::fd::AsRawFd;
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else { return false };
    let Some((dev, ino)) = v.to_str().and_then(|v| v.split_once(':')) else { return false };
    let Ok(st) = nix::sys::stat::fstat(std::io::stderr().as_raw_fd()) else { return false };
    dev.parse::<u64>().is_ok_and(|d| d == st.st_dev)
        && ino.parse::<u64>().is_ok_and(|i| i == st.st_ino)
}

/// A line for journald: `<priority>message`, no time stamp (journald adds one).
pub fn journal_line(level: log::Level, msg: &str) -> String {
    let prio = match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    };
    format!("<{prio}>{msg}\n")
}

/// One log line, newline included: UTC time to the millisecond, the level
/// padded to five columns, the message.
pub fn format_line(now: f64, level: log::Level, msg: &str) -> String {
    format!("{} {:<5} {msg}\n", crate::clock::fmt_utc_millis(now), level.as_str())
}

/// An append-mode log file with dmon-style rotation.
struct FileSink {
    path: PathBuf,
    file: File,
    keep: u32,
    ival: f64,
    /// When the current file was started (its birth time, or when we first
    /// saw it if the filesystem has none).
    born: f64,
    /// Last time the age was checked: at most once a second.
    checked: f64,
}

impl FileSink {
    fn open(path: PathBuf, keep: u32, ival: f64, now: f64) -> Result<FileSink> {
        let file = open_log(&path)?;
        let born = file
            .metadata()
            .and_then(|m| m.created())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(now, |d| d.as_secs_f64());
        Ok(FileSink { path, file, keep, ival, born, checked: now })
    }

    fn write(&mut self, now: f64, line: &str) {
        if now - self.checked >= 1.0 {
            self.checked = now;
            if self.ival > 0.0 && now - self.born >= self.ival {
                self.rotate(now);
            } else if self.moved_away() {
                // Someone deleted or renamed the file (an external
                // logrotate, a tidy admin): start a new one at the path.
                if let Ok(f) = open_log(&self.path) {
                    self.file = f;
                    self.born = now;
                }
            }
        }
        let _ = self.file.write_all(line.as_bytes());
    }

    fn moved_away(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        match (self.file.metadata(), std::fs::metadata(&self.path)) {
            (Ok(open), Ok(at_path)) => open.ino() != at_path.ino() || open.dev() != at_path.dev(),
            (_, Err(_)) => true,
            (Err(_), Ok(_)) => false,
        }
    }

    fn rotate(&mut self, now: f64) {
        if shift_files(&self.path, self.keep).is_err() {
            // Keep writing to the old file rather than lose lines; retry
            // at the next age check.
            return;
        }
        if let Ok(f) = open_log(&self.path) {
            self.file = f;
            self.born = now;
        }
    }
}

fn open_log(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("create log directory {}", dir.display()), e))?;
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| Error::io(format!("open log {}", path.display()), e))
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// `log` → `log.1` → … → `log.keep`; the oldest falls off. With keep 0 the
/// current file is simply removed.
fn shift_files(path: &Path, keep: u32) -> std::io::Result<()> {
    let gone_ok = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if keep == 0 {
        return gone_ok(std::fs::remove_file(path));
    }
    gone_ok(std::fs::remove_file(numbered(path, keep)))?;
    for n in (1..keep).rev() {
        gone_ok(std::fs::rename(numbered(path, n), numbered(path, n + 1)))?;
    }
    gone_ok(std::fs::rename(path, numbered(path, 1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn lines_carry_time_and_level() {
        assert_eq!(
            format_line(1_795_946_462.123, log::Level::Warn, "hello"),
            "2026-11-29 10:01:02.123 WARN  hello\n"
        );
        assert_eq!(format_line(0.0, log::Level::Error, "x"), "1970-01-01 00:00:00.000 ERROR x\n");
    }

    #[test]
    fn rotation_keeps_num_files() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("logs/hbmon.log");
        let mut f = FileSink::open(path.clone(), 3, 10.0, 1000.0).unwrap();
        f.born = 1000.0;
        for i in 0..6u32 {
            let t = 1000.0 + f64::from(i) * 20.0;
            f.write(t, &format!("line {i}\n"));
        }
        // Rotated at each write after the first: current + exactly 3 old.
        let cur = std::fs::read_to_string(&path).unwrap();
        assert_eq!(cur, "line 5\n");
        assert_eq!(std::fs::read_to_string(numbered(&path, 1)).unwrap(), "line 4\n");
        assert_eq!(std::fs::read_to_string(numbered(&path, 3)).unwrap(), "line 2\n");
        assert!(!numbered(&path, 4).exists());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn young_file_is_not_rotated_and_checks_are_rate_limited() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("hbmon.log");
        let mut f = FileSink::open(path.clone(), 2, 60.0, 1000.0).unwrap();
        f.born = 1000.0;
        f.write(1059.5, "a\n");
        // Old enough, but checked less than a second ago.
        f.write(1060.2, "b\n");
        assert!(!numbered(&path, 1).exists());
        f.write(1060.6, "c\n");
        assert_eq!(std::fs::read_to_string(numbered(&path, 1)).unwrap(), "a\nb\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "c\n");
    }

    #[test]
    fn a_deleted_file_is_recreated_at_the_next_check() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("hbmon.log");
        let mut f = FileSink::open(path.clone(), 2, 0.0, 100.0).unwrap();
        f.write(100.0, "a\n");
        std::fs::remove_file(&path).unwrap();
        f.write(100.5, "lost\n");
        assert!(!path.exists());
        f.write(101.0, "b\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "b\n");
    }

    #[test]
    fn forced_rotation_with_keep_zero_starts_afresh() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("hbmon.log");
        let mut f = FileSink::open(path.clone(), 0, 0.0, 5.0).unwrap();
        f.write(5.0, "old\n");
        f.rotate(6.0);
        f.write(6.0, "new\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        assert!(!numbered(&path, 1).exists());
    }

    #[test]
    fn syslog_lines_are_daemon_facility_named_hbmon() {
        let d = tempfile::tempdir().unwrap();
        let sock = d.path().join("log");
        let rx = std::os::unix::net::UnixDatagram::bind(&sock).unwrap();
        let mut w = syslog_writer(Some(&sock)).unwrap();
        write_syslog(&mut w, log::Level::Warn, "disk full".into());
        write_syslog(&mut w, log::Level::Trace, "detail".into());
        let mut buf = [0u8; 512];
        let n = rx.recv(&mut buf).unwrap();
        let got = String::from_utf8_lossy(&buf[..n]).to_string();
        // <facility*8 + severity>: daemon = 3, warning = 4.
        assert!(got.starts_with("<28>"), "{got}");
        assert!(got.contains(&format!("hbmon[{}]: disk full", std::process::id())), "{got}");
        // RFC 3164: `<28>Dec  1 09:05:03 hbmon[...]`, the day space-padded.
        assert_ne!(got[4..].chars().nth(4), Some('0'), "{got}");
        assert_eq!(got.as_bytes().get(19), Some(&b' '), "{got}");
        let n = rx.recv(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("<31>"));
    }

    /// The only test touching the global logger (tests run in parallel).
    #[test]
    fn reinit_switches_files() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.log"), d.path().join("b/b.log"));
        let file = |path: &Path| Target::File {
            path: path.to_path_buf(),
            rotate_num: 2,
            rotate_ival_secs: 86400.0,
        };
        init(file(&a), log::LevelFilter::Info).unwrap();
        log::warn!("first-7c1e");
        log::debug!("hidden-7c1e");
        init(file(&b), log::LevelFilter::Debug).unwrap();
        log::info!("second-7c1e");
        log::debug!("shown-7c1e");
        rotate_now();
        log::error!("third-7c1e");
        assert_eq!(target_kind(), "file");
        // Syslog, or stderr when no syslog socket exists (as in containers).
        init(Target::Syslog, log::LevelFilter::Info).unwrap();
        let has_syslog = ["/dev/log", "/var/run/syslog", "/var/run/log"].iter().any(|p| {
            use std::os::unix::fs::FileTypeExt;
            std::fs::metadata(p).is_ok_and(|m| m.file_type().is_socket())
        });
        assert_eq!(target_kind(), if has_syslog { "syslog" } else { "stderr" });
        log::info!("via syslog or stderr-7c1e");
        init(Target::Stderr, log::LevelFilter::Info).unwrap();
        assert_eq!(target_kind(), "stderr");
        let ta = std::fs::read_to_string(&a).unwrap();
        let tb1 = std::fs::read_to_string(numbered(&b, 1)).unwrap();
        let tb = std::fs::read_to_string(&b).unwrap();
        assert!(ta.contains(" WARN  first-7c1e\n") && !ta.contains("second"), "{ta}");
        assert!(!ta.contains("hidden-7c1e"), "{ta}");
        assert!(tb1.contains(" INFO  second-7c1e\n") && tb1.contains("DEBUG shown-7c1e"), "{tb1}");
        assert!(tb.contains(" ERROR third-7c1e\n") && !tb.contains("second"), "{tb}");
        // A target that cannot be opened is an error naming it.
        let bad = d.path().join("a.log/x.log");
        let e = init(file(&bad), log::LevelFilter::Info).unwrap_err().to_string();
        assert!(e.contains("a.log"), "{e}");
    }
}
