//! The work language's notification words: a `channel NAME TYPE TARGET
//! [key=value ...]` line (its type, options and target checked), the
//! channels after `user NAME`, and http(s) URLs (webhook targets, the
//! `deadman` and `dashboard` lines). Pure; who gets what is `people.rs`.

use super::{ival, ChanRef, ChannelDecl, Msg, CHANNEL_TYPES};
use crate::work::logins;
use std::collections::BTreeMap;

/// The words after `user NAME`: channel names and inline `TYPE TARGET`
/// pairs (`syslog` takes no target inline).
pub(super) fn user_channels(w: &[&str]) -> std::result::Result<Vec<ChanRef>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < w.len() {
        let word = w[i];
        if word == "syslog" {
            out.push(ChanRef::Inline { kind: word.into(), target: String::new() });
        } else if CHANNEL_TYPES.contains(&word) {
            let target = w.get(i + 1).ok_or_else(|| format!("user: '{word}' needs a target"))?;
            out.push(ChanRef::Inline { kind: word.into(), target: target.to_string() });
            i += 1;
        } else {
            out.push(ChanRef::Named(word.into()));
        }
        i += 1;
    }
    Ok(out)
}

/// Options a `channel` line may carry.
pub const CHANNEL_OPTIONS: &[&str] = &[
    "min_level",
    "method",
    "body",
    "timeout",
    "retries",
    "fallback",
    "sendmail",
    "from",
    "ends_after",
    "smtp_server",
    "port",
    "tls",
    "user",
    "password",
    "tls_ca",
];

/// `channel NAME TYPE TARGET [key=value ...]` (`syslog` TARGET is optional).
pub(super) fn channel(w: &[&str], line: usize) -> std::result::Result<ChannelDecl, String> {
    let usage = "channel: expected 'channel NAME TYPE TARGET [key=value ...]'";
    if w.len() < 2 {
        return Err(usage.into());
    }
    let kind = w[1];
    if logins::LOGIN_WORDS.contains(&w[0]) || w[0].contains('=') {
        return Err(format!("channel {}: that name is reserved (a user line option)", w[0]));
    }
    if !CHANNEL_TYPES.contains(&kind) {
        return Err(format!(
            "channel {}: unknown type '{kind}' (expected {})",
            w[0],
            CHANNEL_TYPES.join(" ")
        ));
    }
    let mut rest = &w[2..];
    let target = match rest.first() {
        Some(t) if !t.contains('=') || kind != "syslog" => {
            rest = &rest[1..];
            t.to_string()
        }
        _ if kind == "syslog" => String::new(),
        _ => return Err(usage.into()),
    };
    let mut options = BTreeMap::new();
    for o in rest {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("channel {}: option '{o}' is not key=value", w[0]))?;
        if !CHANNEL_OPTIONS.contains(&k) {
            return Err(format!(
                "channel {}: unknown option '{k}' (expected {})",
                w[0],
                CHANNEL_OPTIONS.join(" ")
            ));
        }
        match k {
            "method" if v != "GET" && v != "POST" => {
                return Err(format!("channel {}: method '{v}' is not GET or POST", w[0]))
            }
            "body" if v != "json" && v != "form" => {
                return Err(format!("channel {}: body '{v}' is not json or form", w[0]))
            }
            "timeout" => {
                ival("channel timeout", v)?;
            }
            "retries" => {
                let max = crate::notify::channels::MAX_RETRIES;
                if !v.parse::<u32>().is_ok_and(|n| (1..=max).contains(&n)) {
                    return Err(format!(
                        "channel {}: retries '{v}' is not a number of tries from 1 to {max}",
                        w[0]
                    ));
                }
            }
            _ => {}
        }
        options.insert(k.to_string(), v.to_string());
    }
    if kind == "webhook" || kind == "alertmanager" {
        check_url(&format!("channel {}", w[0]), &target)?;
    }
    if kind == "mail" && !target.contains('@') {
        return Err(format!("channel {}: '{target}' is not a mail address", w[0]));
    }
    Ok(ChannelDecl { line, name: w[0].into(), kind: kind.into(), target, options })
}

/// An http(s) URL with a non-empty host (placeholders in the path are fine).
pub fn check_url(what: &str, url: &str) -> Msg {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{what}: '{url}' is not an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let bad_host = || format!("{what}: '{url}' has no valid host");
    let bad_port = || format!("{what}: '{url}' has a bad port");
    // A bracketed IPv6 literal, then an optional :port; else a name or IPv4
    // address with at most one ':' before the port.
    let (name, port) = if let Some(inner) = authority.strip_prefix('[') {
        let (addr, after) = inner.split_once(']').ok_or_else(bad_host)?;
        addr.parse::<std::net::Ipv6Addr>().map_err(|_| bad_host())?;
        match after {
            "" => (addr, None),
            _ => (addr, Some(after.strip_prefix(':').ok_or_else(bad_host)?)),
        }
    } else {
        match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if let Some(p) = port {
        if p.parse::<u16>().is_err() {
            return Err(bad_port());
        }
    }
    if name.is_empty() || name.contains(['{', '}', ' ', '@', '[', ']']) {
        return Err(bad_host());
    }
    Ok(())
}
