//! The host conf (dmon's format) and interval specs. Pure: text in, `Conf`
//! or a `file:line` error out. A conf with any error is rejected whole, so
//! a bad reload never half-applies.

use crate::error::{Error, Result};
use crate::ranges::{parse_ival, IVAL_KEYS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One `key value` entry with the line it started on.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    pub line: usize,
}

/// Splits dmon-format text into entries: `#` comments and blank lines are
/// skipped, tabs are spaces, a key starts in column 1 and an indented line
/// continues the previous entry. Shared by the conf and the work-config.
pub fn split_entries(file: &Path, text: &str) -> Result<Vec<Entry>> {
    let mut out: Vec<Entry> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = strip_comment(&raw.replace('\t', " ")).trim_end().to_string();
        if line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') {
            match out.last_mut() {
                Some(prev) => {
                    if !prev.value.is_empty() {
                        prev.value.push(' ');
                    }
                    prev.value.push_str(line.trim());
                }
                None => {
                    return Err(Error::conf(file, i + 1, "continuation line with no key before it"))
                }
            }
            continue;
        }
        let (key, value) = match line.split_once(' ') {
            Some((k, v)) => (k.to_string(), v.trim().to_string()),
            None => (line.clone(), String::new()),
        };
        out.push(Entry { key, value, line: i + 1 });
    }
    Ok(out)
}

/// A `#` starts a comment at the start of a line or after a space, so URLs
/// with fragments (`http://x/#a`) survive.
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'#' && (i == 0 || bytes[i - 1] == b' ') {
            return &line[..i];
        }
    }
    line
}

/// Log verbosity, dmon's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Silent,
    Quiet,
    Terse,
    Verbose,
    Debug,
    Trace,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.to_ascii_lowercase().as_str() {
            "silent" => LogLevel::Silent,
            "quiet" => LogLevel::Quiet,
            "terse" => LogLevel::Terse,
            "verbose" => LogLevel::Verbose,
            "debug" => LogLevel::Debug,
            "trace" => LogLevel::Trace,
            _ => return None,
        })
    }
    pub fn filter(self) -> log::LevelFilter {
        match self {
            LogLevel::Silent => log::LevelFilter::Off,
            LogLevel::Quiet => log::LevelFilter::Error,
            LogLevel::Terse => log::LevelFilter::Warn,
            LogLevel::Verbose => log::LevelFilter::Info,
            LogLevel::Debug => log::LevelFilter::Debug,
            LogLevel::Trace => log::LevelFilter::Trace,
        }
    }
}

/// Where the daemon logs.
#[derive(Debug, Clone, PartialEq)]
pub enum LogTarget {
    /// `$logdir/hbmon.log` (the default).
    Default,
    File(PathBuf),
    Syslog,
}

/// The host conf, validated. Paths are absolute once `finish` has run.
#[derive(Debug, Clone, PartialEq)]
pub struct Conf {
    /// The file it came from; None for the embedded default.
    pub file: Option<PathBuf>,
    pub server: Option<String>,
    pub hostname: Option<String>,
    pub domain: Option<String>,
    pub bind: Option<String>,
    pub port: Option<u16>,
    pub hb_port: Option<u16>,
    pub http_port: Option<u16>,
    pub vardir: PathBuf,
    pub logdir: PathBuf,
    pub rundir: PathBuf,
    pub bindir: PathBuf,
    pub workconf: PathBuf,
    pub loglvl: LogLevel,
    pub log: LogTarget,
    /// `rotate NUM IVAL`: keep NUM old logs, rotate every IVAL seconds.
    pub rotate: (u32, f64),
    pub key: Option<String>,
    pub heartbeat_to: Vec<String>,
    pub fallback: Option<String>,
    pub journal_enabled: bool,
    pub journal_dir: Option<PathBuf>,
    pub journal_file: String,
    pub journal_max_size: u64,
    pub journal_max_backups: u32,
    /// `ival_*`, `grace`, `missed` overrides of the work, in seconds (count for `missed`).
    pub intervals: BTreeMap<String, f64>,
}

impl Conf {
    /// Defaults for a system install (root with a conf, or root with none):
    /// the FHS paths, or the directories systemd made for the unit
    /// (`$STATE_DIRECTORY`, `$LOGS_DIRECTORY`, `$RUNTIME_DIRECTORY`) when set.
    pub fn system_defaults() -> Conf {
        Conf {
            file: None,
            server: None,
            hostname: None,
            domain: None,
            bind: None,
            port: None,
            hb_port: None,
            http_port: None,
            vardir: systemd_dir("STATE_DIRECTORY").unwrap_or_else(|| "/var/lib/hbmon".into()),
            logdir: systemd_dir("LOGS_DIRECTORY").unwrap_or_else(|| "/var/log/hbmon".into()),
            rundir: systemd_dir("RUNTIME_DIRECTORY").unwrap_or_else(|| "/run/hbmon".into()),
            bindir: "/usr/local/sbin".into(),
            workconf: "/etc/hbmon/work".into(),
            loglvl: LogLevel::Terse,
            log: LogTarget::Default,
            rotate: (8, 86400.0),
            key: None,
            heartbeat_to: Vec::new(),
            fallback: None,
            journal_enabled: false,
            journal_dir: None,
            journal_file: "messages.journal".into(),
            journal_max_size: 10 * 1024 * 1024,
            journal_max_backups: 5,
            intervals: BTreeMap::new(),
        }
    }

    /// The embedded default: no conf file, listening on 127.0.0.1. Root
    /// gets the system paths (so the unit's `ProtectHome=` and its
    /// directories fit); other users get `state_home/hbmon`, except where
    /// systemd (a user unit) named a directory.
    pub fn embedded(state_home: &Path, root: bool) -> Conf {
        if root {
            return Conf { bind: Some("127.0.0.1".into()), ..Conf::system_defaults() };
        }
        let base = state_home.join("hbmon");
        Conf {
            vardir: systemd_dir("STATE_DIRECTORY").unwrap_or_else(|| base.clone()),
            logdir: systemd_dir("LOGS_DIRECTORY").unwrap_or_else(|| base.join("log")),
            rundir: systemd_dir("RUNTIME_DIRECTORY").unwrap_or_else(|| base.join("run")),
            workconf: base.join("work"),
            bind: Some("127.0.0.1".into()),
            ..Conf::system_defaults()
        }
    }

    /// Where the user's state lives: `$XDG_STATE_HOME` or `~/.local/state`.
    pub fn state_home() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_STATE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x);
        }
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/tmp".into());
        home.join(".local/state")
    }

    /// Journal path, `$journal_dir/$journal_file` (default under logdir).
    pub fn journal_path(&self) -> PathBuf {
        self.journal_dir.clone().unwrap_or_else(|| self.logdir.clone()).join(&self.journal_file)
    }
    pub fn pid_file(&self) -> PathBuf {
        self.rundir.join("hbmon.pid")
    }
    pub fn lock_file(&self) -> PathBuf {
        self.rundir.join("hbmon.lck")
    }
    pub fn stop_file(&self) -> PathBuf {
        self.rundir.join("hbmon.stp")
    }
    pub fn log_file(&self) -> PathBuf {
        match &self.log {
            LogTarget::File(p) => p.clone(),
            _ => self.logdir.join("hbmon.log"),
        }
    }
    pub fn history_db(&self) -> PathBuf {
        self.vardir.join("history.db")
    }
    pub fn server_db(&self) -> PathBuf {
        self.vardir.join("server.db")
    }
    pub fn works_dir(&self) -> PathBuf {
        self.vardir.join("works")
    }
    pub fn work_cache(&self) -> PathBuf {
        self.vardir.join("work.json")
    }
    pub fn probes_dir(&self) -> PathBuf {
        self.vardir.join("probes")
    }
}

/// Parses a conf file's text. Relative paths are taken relative to the
/// conf file's directory. Every error is collected; any error rejects the
/// whole conf.
pub fn parse(file: &Path, text: &str) -> Result<Conf> {
    let mut c = Conf::system_defaults();
    c.file = Some(file.to_path_buf());
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    let abs = |v: &str| -> PathBuf {
        let p = PathBuf::from(v);
        if p.is_absolute() {
            p
        } else {
            base.join(p)
        }
    };
    let mut errs = Vec::new();
    for e in split_entries(file, text)? {
        if let Err(msg) = apply(&mut c, &e, &abs) {
            errs.push(Error::conf(file, e.line, msg));
        }
    }
    match errs.len() {
        0 => Ok(c),
        1 => Err(errs.remove(0)),
        _ => Err(Error::ConfMany(errs)),
    }
}

fn apply(
    c: &mut Conf,
    e: &Entry,
    abs: &dyn Fn(&str) -> PathBuf,
) -> std::result::Result<(), String> {
    let v = e.value.as_str();
    let need = |v: &str| -> std::result::Result<String, String> {
        if v.is_empty() {
            Err(format!("'{}' needs a value", e.key))
        } else {
            Ok(v.to_string())
        }
    };
    let port = |v: &str| -> std::result::Result<u16, String> {
        v.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("'{}': '{v}' is not a port number (1 to 65535)", e.key))
    };
    match e.key.as_str() {
        "server" => c.server = Some(need(v)?),
        "hostname" => c.hostname = Some(need(v)?),
        "domain" => c.domain = Some(need(v)?),
        "bind" => c.bind = Some(need(v)?),
        "port" => c.port = Some(port(v)?),
        "hb_port" => c.hb_port = Some(port(v)?),
        "http_port" => c.http_port = Some(port(v)?),
        "vardir" => c.vardir = abs(&need(v)?),
        "logdir" => c.logdir = abs(&need(v)?),
        "rundir" => c.rundir = abs(&need(v)?),
        "bindir" => c.bindir = abs(&need(v)?),
        "workconf" => c.workconf = abs(&need(v)?),
        "loglvl" => {
            c.loglvl = LogLevel::parse(v).ok_or_else(|| {
                format!("loglvl '{v}': expected Silent Quiet Terse Verbose Debug or Trace")
            })?
        }
        "log" => {
            c.log = match need(v)?.as_str() {
                "syslog" => LogTarget::Syslog,
                p => LogTarget::File(abs(p)),
            }
        }
        "rotate" => {
            let mut it = v.split_whitespace();
            let (n, iv) = (it.next(), it.next());
            let (Some(n), Some(iv), None) = (n, iv, it.next()) else {
                return Err("rotate: expected 'rotate NUM IVAL'".into());
            };
            let n = crate::ranges::check_count("rotate", n)? as u32;
            c.rotate = (n, crate::ranges::check_ival("rotate", parse_ival(iv)?)?);
        }
        "key" => c.key = Some(need(v)?),
        "heartbeat_to" => c.heartbeat_to.extend(v.split_whitespace().map(String::from)),
        "fallback" => {
            crate::notify::channels::parse_spec(v)?;
            c.fallback = Some(v.to_string())
        }
        "journal_enabled" => c.journal_enabled = parse_bool(v)?,
        "journal_dir" => c.journal_dir = Some(abs(&need(v)?)),
        "journal_file" => c.journal_file = need(v)?,
        "journal_max_size" => {
            let n = parse_size(v)?;
            crate::ranges::check_count("journal_max_size", &n.to_string())?;
            c.journal_max_size = n
        }
        "journal_max_backups" => {
            c.journal_max_backups = crate::ranges::check_count("journal_max_backups", v)? as u32
        }
        "missed" | "hbd_senders" => {
            let n = crate::ranges::check_count(&e.key, v)?;
            c.intervals.insert(e.key.clone(), n as f64);
        }
        k if IVAL_KEYS.contains(&k) => {
            let s = parse_ival(v).map_err(|m| format!("{k}: {m}"))?;
            c.intervals.insert(k.into(), crate::ranges::check_ival(k, s)?);
        }
        k => return Err(format!("unknown key '{k}'")),
    }
    Ok(())
}

/// A directory systemd made for the unit: the first of a `:`-separated
/// list, if absolute.
fn systemd_dir(var: &str) -> Option<PathBuf> {
    let v = std::env::var_os(var)?;
    let first = v.to_str()?.split(':').next()?.to_string();
    Some(PathBuf::from(first)).filter(|p| p.is_absolute())
}

fn parse_bool(v: &str) -> std::result::Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => Err(format!("'{v}' is not a boolean (yes/no)")),
    }
}

/// `1048576`, `512k`, `10M`, `1G`.
pub fn parse_size(v: &str) -> std::result::Result<u64, String> {
    let v = v.trim();
    let (num, mult) = match v.chars().last().map(|c| c.to_ascii_lowercase()) {
        Some('k') => (&v[..v.len() - 1], 1024),
        Some('m') => (&v[..v.len() - 1], 1024 * 1024),
        Some('g') => (&v[..v.len() - 1], 1024 * 1024 * 1024),
        _ => (v, 1),
    };
    num.trim().parse::<u64>().map(|n| n * mult).map_err(|_| format!("'{v}' is not a size"))
}

/// The system conf, read when there is no `-c FILE`.
pub const SYSTEM_CONF: &str = "/etc/hbmon/conf";

/// Finds and reads the conf: `-c FILE`, else `/etc/hbmon/conf`, else the
/// embedded default. The current directory is never searched: a daemon
/// started from `/` (systemd) and `hbmon state` typed in a home directory
/// must find the same conf.
pub fn load(explicit: Option<&Path>) -> Result<Conf> {
    let candidates: Vec<PathBuf> = match explicit {
        Some(p) => vec![p.to_path_buf()],
        None => vec![SYSTEM_CONF.into()],
    };
    for p in candidates {
        if explicit.is_none() && !p.exists() {
            continue;
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| Error::Usage(format!("cannot read conf {}: {e}", p.display())))?;
        let abs = std::fs::canonicalize(&p).unwrap_or(p);
        return parse(&abs, &text);
    }
    Ok(Conf::embedded(&Conf::state_home(), nix::unistd::geteuid().is_root()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_comments_tabs_continuations() {
        let t = "# comment\n\nserver\tsrv.example.org  # trailing\nheartbeat_to 127.0.0.2\n  127.0.0.3\n\t127.0.0.4\n";
        let es = split_entries(Path::new("c"), t).unwrap();
        assert_eq!(es.len(), 2);
        assert_eq!(es[0], Entry { key: "server".into(), value: "srv.example.org".into(), line: 3 });
        assert_eq!(es[1].value, "127.0.0.2 127.0.0.3 127.0.0.4");
        assert_eq!(es[1].line, 4);
    }

    #[test]
    fn conf_keys_and_relative_paths() {
        let t = "server 127.0.0.1:9000\nport 9001\nvardir var\nloglvl debug\nrotate 3 1d\nival_heartbeat 1s\nmissed 2\njournal_enabled yes\njournal_max_size 1M\nlog syslog\n";
        let c = parse(Path::new("/etc/x/conf"), t).unwrap();
        assert_eq!(c.server.as_deref(), Some("127.0.0.1:9000"));
        assert_eq!(c.port, Some(9001));
        assert_eq!(c.vardir, PathBuf::from("/etc/x/var"));
        assert_eq!(c.loglvl, LogLevel::Debug);
        assert_eq!(c.rotate, (3, 86400.0));
        assert_eq!(c.intervals["ival_heartbeat"], 1.0);
        assert_eq!(c.intervals["missed"], 2.0);
        assert!(c.journal_enabled);
        assert_eq!(c.journal_max_size, 1 << 20);
        assert_eq!(c.log, LogTarget::Syslog);
    }

    #[test]
    fn conf_errors_name_file_and_line_all_of_them() {
        let t = "port 9001\nbogus 1\nport abc\n";
        let e = parse(Path::new("/x/conf"), t).unwrap_err();
        let s = e.to_string();
        assert!(s.contains("/x/conf:2: unknown key 'bogus'"), "{s}");
        assert!(s.contains("/x/conf:3: 'port': 'abc' is not a port number"), "{s}");
        assert_eq!(e.exit_code(), 2);
    }

    #[test]
    fn continuation_without_key_is_an_error() {
        let e = parse(Path::new("/x/conf"), "  orphan\n").unwrap_err();
        assert!(e.to_string().starts_with("/x/conf:1:"));
    }

    #[test]
    fn embedded_default_root_uses_fhs_others_xdg() {
        let root = Conf::embedded(Path::new("/home/u/.local/state"), true);
        if std::env::var_os("STATE_DIRECTORY").is_none() {
            assert_eq!(root.vardir, PathBuf::from("/var/lib/hbmon"));
            assert_eq!(root.logdir, PathBuf::from("/var/log/hbmon"));
            assert_eq!(root.rundir, PathBuf::from("/run/hbmon"));
            let user = Conf::embedded(Path::new("/home/u/.local/state"), false);
            assert_eq!(user.vardir, PathBuf::from("/home/u/.local/state/hbmon"));
            assert_eq!(user.rundir, PathBuf::from("/home/u/.local/state/hbmon/run"));
        }
        assert_eq!(root.bind.as_deref(), Some("127.0.0.1"));
        assert_eq!(root.file, None);
    }

    #[test]
    fn hash_inside_value_is_kept() {
        let es = split_entries(Path::new("c"), "fallback http://h/x#frag\n").unwrap();
        assert_eq!(es[0].value, "http://h/x#frag");
    }
}
