//! Probes: what computes an item's value (DESIGN.md section 5).
//!
//! Owns the item-name grammar ([`classify`]), the [`Sample`] every probe
//! gives, the inline probes run on the loop thread ([`Inline`]) and the
//! blocking ones run on helper threads ([`run_blocking`]). A probe never
//! panics and a round never fails as a whole: whatever goes wrong becomes a
//! sample with no value and an error text. This module never schedules,
//! never judges fitness and never writes history.
//!
//! Files: `procfs.rs` (pure /proc parsers), `inline.rs` (/proc, /sys,
//! statvfs), `net.rs` (tcp, http), `ping.rs`, `nagios.rs`, `external.rs`
//! (`probe:`), `exec.rs` (running a command with a timeout).

pub mod exec;
pub mod external;
pub mod inline;
pub mod nagios;
pub mod net;
pub mod ping;
pub mod procfs;

pub use inline::{Inline, ProcRoot};

use crate::work::model::ProbeSpec;
use std::path::Path;
use std::time::Duration;

/// One value (or failure) of one item.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub item: String,
    /// `None` when the probe failed; the item then gets the worst level.
    pub value: Option<f64>,
    /// What the probe says about the value (e.g. a plugin's first line).
    pub message: String,
    /// Why there is no value (or, for a Nagios UNKNOWN forced by an odd
    /// exit, why the value is 3).
    pub error: Option<String>,
}

impl Sample {
    pub fn ok(item: &str, value: f64, message: impl Into<String>) -> Sample {
        Sample { item: item.into(), value: Some(value), message: message.into(), error: None }
    }

    pub fn failed(item: &str, error: impl Into<String>) -> Sample {
        Sample { item: item.into(), value: None, message: String::new(), error: Some(error.into()) }
    }
}

/// Where an item is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    /// Cheap /proc or /sys read, done on the loop thread (statvfs ones:
    /// see [`reads_mount`]).
    Inline,
    /// May block up to its timeout: run on a helper thread
    /// (tcp, http, ping, nagios, probe).
    Blocking,
    /// Set by the heartbeat path, never probed (`heartbeat`, `rtt`, `server`).
    Passive,
}

/// Inline items that take no argument.
const INLINE_PLAIN: &[&str] = &["cpu_load", "cpu_pct", "mem_used", "swap_used", "uptime", "procs"];
/// Inline items that take `:ARG`.
const INLINE_ARG: &[&str] = &["disk_used", "disk_avail", "inode_used", "proc", "net_rx", "net_tx"];
/// Blocking items (all take `:ARG`).
const BLOCKING: &[&str] = &["tcp", "http", "https", "ping", "nagios", "probe"];
use crate::event::builtin::PASSIVE;

/// Which family an item name belongs to, checking its argument's shape; the
/// error says what is wrong with the name. The work validator uses this too.
pub fn classify(item: &str) -> Result<ProbeKind, String> {
    let Some((family, arg)) = item.split_once(':') else {
        if INLINE_PLAIN.contains(&item) {
            return Ok(ProbeKind::Inline);
        }
        if PASSIVE.contains(&item) {
            return Ok(ProbeKind::Passive);
        }
        if INLINE_ARG.contains(&item) || BLOCKING.contains(&item) {
            return Err(format!("item '{item}' needs an argument ('{item}:...')"));
        }
        return Err(format!("unknown item '{item}'"));
    };
    if arg.is_empty() {
        return Err(format!("item '{item}' has an empty argument"));
    }
    match family {
        "disk_used" | "disk_avail" | "inode_used" if !arg.starts_with('/') => {
            Err(format!("item '{item}': the mount point must be an absolute path"))
        }
        "net_rx" | "net_tx" if arg.contains('/') || arg.contains(char::is_whitespace) => {
            Err(format!("item '{item}': bad interface name"))
        }
        "tcp" => net::split_host_port(arg).map(|_| ProbeKind::Blocking),
        "probe" if arg.contains('/') || arg.starts_with('.') => {
            Err(format!("item '{item}': the program name may not contain '/' or start with '.'"))
        }
        f if INLINE_ARG.contains(&f) => Ok(ProbeKind::Inline),
        f if BLOCKING.contains(&f) => Ok(ProbeKind::Blocking),
        f if INLINE_PLAIN.contains(&f) || PASSIVE.contains(&f) => {
            Err(format!("item '{f}' takes no argument"))
        }
        _ => Err(format!("unknown item '{item}'")),
    }
}

/// Items whose probe reads a mount point (statvfs): inline by name, but a
/// hung mount blocks them, so the client runs them on a helper thread.
pub fn reads_mount(item: &str) -> bool {
    matches!(item.split_once(':'), Some(("disk_used" | "disk_avail" | "inode_used", _)))
}

/// Run one blocking item; called on a helper thread, may take up to
/// `timeout`. One item may give several samples (the item's own first):
/// `nagios:NAME` adds `NAME.label` per perfdata entry, `probe:NAME` adds
/// `NAME.item` per printed line (see `external.rs` for the naming rule).
pub fn run_blocking(
    item: &str,
    spec: &ProbeSpec,
    probes_dir: &Path,
    timeout: Duration,
) -> Vec<Sample> {
    let (family, arg) = item.split_once(':').unwrap_or((item, ""));
    match (family, spec) {
        ("nagios", ProbeSpec::Nagios { argv }) => nagios::run(item, argv, timeout),
        ("probe", ProbeSpec::External { program, args }) => {
            external::run(item, program, args, probes_dir, timeout)
        }
        ("tcp", ProbeSpec::Builtin) => vec![net::tcp(item, arg, timeout)],
        ("http" | "https", ProbeSpec::Builtin) => {
            vec![net::http(item, &net::url_of(family, arg), timeout)]
        }
        ("ping", ProbeSpec::Builtin) => vec![ping::ping(item, arg, timeout)],
        ("disk_used" | "disk_avail" | "inode_used", ProbeSpec::Builtin) => {
            vec![inline::mount_sample(item)]
        }
        _ => vec![Sample::failed(item, format!("'{item}' is not a blocking probe for {spec:?}"))],
    }
}

/// One blocking probe run, for a helper thread.
pub struct ProbeJob {
    pub item: String,
    pub spec: ProbeSpec,
    pub probes_dir: std::path::PathBuf,
    pub timeout: f64,
}

pub struct ProbeDone {
    pub item: String,
    pub samples: Vec<Sample>,
}

pub fn run_probe_job(j: ProbeJob) -> ProbeDone {
    let timeout = std::time::Duration::from_secs_f64(j.timeout.max(0.1));
    let samples = run_blocking(&j.item, &j.spec, &j.probes_dir, timeout);
    ProbeDone { item: j.item, samples }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_probes_run_off_the_loop_14() {
        for i in ["disk_used:/", "disk_avail:/var", "inode_used:/"] {
            assert!(reads_mount(i), "{i}");
        }
        for i in ["cpu_load", "proc:disk_used", "net_rx:eth0", "probe:disk_used"] {
            assert!(!reads_mount(i), "{i}");
        }
        let t = Duration::from_secs(1);
        let s = run_blocking("disk_used:/", &ProbeSpec::Builtin, Path::new("/"), t);
        assert!(s.len() == 1 && s[0].value.is_some_and(|v| (0.0..=100.0).contains(&v)), "{s:?}");
        let s = run_blocking("inode_used:/no/such/dir", &ProbeSpec::Builtin, Path::new("/"), t);
        assert!(s[0].error.as_deref().is_some_and(|e| e.contains("statvfs")), "{s:?}");
    }

    #[test]
    fn classify_families() {
        for i in ["cpu_load", "cpu_pct", "mem_used", "swap_used", "uptime", "procs"] {
            assert_eq!(classify(i), Ok(ProbeKind::Inline), "{i}");
        }
        for i in [
            "disk_used:/",
            "disk_avail:/var",
            "inode_used:/",
            "proc:sshd",
            "net_rx:eth0",
            "net_tx:lo",
        ] {
            assert_eq!(classify(i), Ok(ProbeKind::Inline), "{i}");
        }
        for i in [
            "tcp:db1:5432",
            "tcp:[::1]:22",
            "http://example.com/",
            "https://example.com/x",
            "http:example.com",
            "ping:127.0.0.1",
            "nagios:check_load",
            "probe:mdraid",
        ] {
            assert_eq!(classify(i), Ok(ProbeKind::Blocking), "{i}");
        }
        for i in ["heartbeat", "rtt", "server"] {
            assert_eq!(classify(i), Ok(ProbeKind::Passive), "{i}");
        }
    }

    #[test]
    fn classify_errors() {
        for (i, want) in [
            ("bogus", "unknown item"),
            ("bogus:x", "unknown item"),
            ("disk_used", "needs an argument"),
            ("nagios", "needs an argument"),
            ("proc:", "empty argument"),
            ("disk_used:var", "absolute path"),
            ("net_rx:a/b", "interface"),
            ("tcp:db1", "no :PORT"),
            ("tcp:db1:http", "bad port"),
            ("probe:../x", "may not contain"),
            ("cpu_load:1", "takes no argument"),
            ("rtt:x", "takes no argument"),
        ] {
            let e = classify(i).unwrap_err();
            assert!(e.contains(want), "{i}: {e}");
        }
    }

    #[test]
    fn blocking_mismatch_is_an_error_sample() {
        let s =
            run_blocking("cpu_load", &ProbeSpec::Builtin, Path::new("/"), Duration::from_secs(1));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, None);
        assert!(s[0].error.as_deref().unwrap().contains("not a blocking probe"));
        let s =
            run_blocking("nagios:x", &ProbeSpec::Builtin, Path::new("/"), Duration::from_secs(1));
        assert!(s[0].error.is_some());
    }
}
