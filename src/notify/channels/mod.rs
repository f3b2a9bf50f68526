//! Delivery channels: blocking senders run on a helper thread, each bounded
//! by a timeout, plus `validate_channel` for mkwork / `hbmon test`. They
//! never touch the database or the alert state.

pub mod alertmanager;
pub mod command;
pub mod mail;
pub mod smtp;
pub mod syslog;
pub mod webhook;

use std::time::Duration;

/// Most tries a channel's `retries=N` may ask for.
pub const MAX_RETRIES: u32 = 100;

pub const KINDS: [&str; 5] = ["mail", "webhook", "command", "syslog", "alertmanager"];

/// Checks a channel's config without sending anything.
pub fn validate_channel(
    kind: &str,
    target: &str,
    options: &std::collections::BTreeMap<String, String>,
) -> Result<(), String> {
    for key in ["timeout", "ends_after"] {
        if let Some(v) = options.get(key) {
            crate::ranges::parse_ival(v).map_err(|e| format!("{key}={v}: {e}"))?;
        }
    }
    if let Some(v) = options.get("retries") {
        match v.parse::<u32>() {
            Ok(n) if (1..=MAX_RETRIES).contains(&n) => {}
            _ => {
                return Err(format!(
                    "retries={v}: expected a number of tries from 1 to {MAX_RETRIES}"
                ))
            }
        }
    }
    match kind {
        "webhook" | "alertmanager" => {
            let probe = super::message::expand_url(target, &super::message::Message::probe());
            check_url(&probe)?;
            if let Some(m) = options.get("method") {
                if !m.eq_ignore_ascii_case("GET") && !m.eq_ignore_ascii_case("POST") {
                    return Err(format!("method must be GET or POST, not {m:?}"));
                }
            }
            if let Some(b) = options.get("body") {
                if b != "json" && b != "form" {
                    return Err(format!("body must be json or form, not {b:?}"));
                }
            }
            Ok(())
        }
        "mail" => {
            if !target.contains('@') {
                return Err(format!("mail target {target:?} is not an address"));
            }
            // Direct SMTP needs no MTA here: sendmail is checked only for
            // the channels that use it.
            if smtp::settings(options)?.is_some() {
                return Ok(());
            }
            let sm = mail::sendmail_argv(options);
            let prog = sm.first().map(String::as_str).unwrap_or("");
            let meta = std::fs::metadata(prog).map_err(|e| format!("sendmail {prog:?}: {e}"))?;
            if !meta.is_file() {
                return Err(format!("sendmail {prog:?} is not a file"));
            }
            Ok(())
        }
        "command" if target.trim().is_empty() => Err("command channel without a command".into()),
        "command" | "syslog" => Ok(()),
        _ => Err(format!("unknown channel type {kind:?} (one of {})", KINDS.join(", "))),
    }
}

/// Minimal absolute http(s) URL check: scheme, a non-empty host, a port
/// that parses.
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("URL {url:?} is not http:// or https://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let hostport = authority.rsplit('@').next().unwrap_or("");
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (h, Some(p)),
        _ => (hostport, None),
    };
    if host.is_empty() || host.contains(' ') {
        return Err(format!("URL {url:?} has no host"));
    }
    if let Some(p) = port {
        p.parse::<u16>().map_err(|_| format!("URL {url:?} has a bad port {p:?}"))?;
    }
    Ok(())
}

/// Runs a program with `stdin` fed, killing its whole process group at
/// `timeout` (the probes' runner); Ok on exit 0.
pub fn run_child(
    argv: &[String],
    env: &[(&str, String)],
    stdin: Option<&[u8]>,
    timeout: f64,
) -> Result<(), String> {
    use crate::probes::exec::{self, ExecError};
    let prog = argv.first().map(String::as_str).unwrap_or("");
    let t = Duration::from_secs_f64(timeout.max(0.1));
    match exec::run_with(argv, env, stdin, t, exec::DEFAULT_CAP) {
        Ok(o) if o.code == Some(0) => Ok(()),
        Ok(o) => {
            let how = match (o.code, o.signal) {
                (Some(c), _) => format!("exit status: {c}"),
                (None, s) => format!("killed by signal {}", s.unwrap_or(0)),
            };
            Err(format!("{prog}: {how}: {}", o.stderr.trim()))
        }
        Err(ExecError::TimedOut { .. }) => Err(format!("{prog}: killed after {timeout} s timeout")),
        Err(e) => Err(format!("{prog}: {e}")),
    }
}

/// The channel's `timeout=` option in seconds (default 10).
pub fn timeout(options: &std::collections::BTreeMap<String, String>) -> f64 {
    options.get("timeout").and_then(|t| crate::ranges::parse_ival(t).ok()).unwrap_or(10.0)
}

/// Parses and checks a one-line channel spec, conf `fallback`'s:
/// `TYPE TARGET [key=value ...]` (`syslog` needs no target).
pub fn parse_spec(spec: &str) -> Result<crate::work::model::Channel, String> {
    let mut words = spec.split_whitespace();
    let kind = words.next().ok_or("fallback: expected TYPE TARGET [key=value ...]")?.to_string();
    let mut target = String::new();
    let mut options = std::collections::BTreeMap::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !target.is_empty() || kind == "syslog" => {
                options.insert(k.to_string(), v.to_string());
            }
            _ if target.is_empty() => target = w.to_string(),
            _ => return Err(format!("fallback: unexpected '{w}' (options are key=value)")),
        }
    }
    validate_channel(&kind, &target, &options).map_err(|e| format!("fallback: {e}"))?;
    Ok(crate::work::model::Channel { name: "fallback".into(), kind, target, options })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn validates_kinds_urls_and_sendmail() {
        let none = BTreeMap::new();
        assert!(validate_channel("pager", "x", &none)
            .unwrap_err()
            .contains("unknown channel type"));
        assert!(validate_channel("webhook", "http://127.0.0.1:8080/h?x={HOST}", &none).is_ok());
        assert!(validate_channel("webhook", "htp:/nope", &none).is_err());
        assert!(validate_channel("webhook", "http://:80/", &none).is_err());
        assert!(validate_channel("webhook", "http://h:99999/", &none).is_err());
        let sm = BTreeMap::from([("sendmail".to_string(), "/nonexistent/sendmail".to_string())]);
        assert!(validate_channel("mail", "ops@x.org", &sm).unwrap_err().contains("/nonexistent"));
        let sh = BTreeMap::from([("sendmail".to_string(), "/bin/sh -c true".to_string())]);
        assert!(validate_channel("mail", "ops@x.org", &sh).is_ok());
        assert!(validate_channel("command", " ", &none).is_err());
        let bad = BTreeMap::from([("timeout".to_string(), "soon".to_string())]);
        assert!(validate_channel("syslog", "", &bad).unwrap_err().starts_with("timeout=soon"));
        for (v, ok) in [("1", true), ("100", true), ("0", false), ("101", false), ("many", false)] {
            let r = BTreeMap::from([("retries".to_string(), v.to_string())]);
            assert_eq!(validate_channel("syslog", "", &r).is_ok(), ok, "retries={v}");
        }
    }

    #[test]
    fn child_runner_exit_codes_and_timeout() {
        let sh = |s: &str| vec!["/bin/sh".to_string(), "-c".to_string(), s.to_string()];
        assert!(run_child(&sh("read x; test \"$x\" = hi"), &[], Some(b"hi\n"), 5.0).is_ok());
        assert!(run_child(&sh("test \"$V\" = 1"), &[("V", "1".into())], None, 5.0).is_ok());
        assert!(run_child(&sh("echo bad >&2; exit 3"), &[], None, 5.0)
            .unwrap_err()
            .contains("bad"));
        assert!(run_child(&sh("sleep 5"), &[], None, 0.2).unwrap_err().contains("timeout"));
    }
}
