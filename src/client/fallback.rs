//! The client's own alarm for when its server goes quiet: conf `fallback
//! TYPE TARGET [key=value ...]` names one channel (any notification type)
//! that this host uses by itself, so a dead server does not mean silence.

use crate::notify::message::{compose, Change, Kind};
use crate::notify::NotifyJob;
use crate::work::model::Channel;
use std::collections::BTreeMap;

/// Outbox id of fallback deliveries (they are not in any outbox).
pub const FALLBACK_ID: i64 = -2;

/// Parses and checks conf `fallback`: `TYPE TARGET [key=value ...]`
/// (`syslog` needs no target).
pub fn parse(spec: &str) -> Result<Channel, String> {
    let mut words = spec.split_whitespace();
    let kind = words.next().ok_or("fallback: expected TYPE TARGET [key=value ...]")?.to_string();
    let mut target = String::new();
    let mut options = BTreeMap::new();
    for w in words {
        match w.split_once('=') {
            Some((k, v)) if !target.is_empty() || kind == "syslog" => {
                options.insert(k.to_string(), v.to_string());
            }
            _ if target.is_empty() => target = w.to_string(),
            _ => return Err(format!("fallback: unexpected '{w}' (options are key=value)")),
        }
    }
    crate::notify::validate_channel(&kind, &target, &options)
        .map_err(|e| format!("fallback: {e}"))?;
    Ok(Channel { name: "fallback".into(), kind, target, options })
}

/// The message for the server going quiet (`dead`) or answering again.
pub fn job(ch: &Channel, host: &str, server: &str, dead: bool, text: &str, now: f64) -> NotifyJob {
    let tag = crate::notify::message::short_host(host, None);
    let (kind, old, new) =
        if dead { (Kind::Alert, "fine", "dead") } else { (Kind::Recovery, "dead", "fine") };
    let text = format!("{text} (server {server})");
    let msg = compose(&Change {
        kind,
        host,
        tag: &tag,
        item: "server",
        old,
        new,
        value: None,
        time: now,
        since: now,
        host_state: "up",
        text: &text,
        dashboard: None,
        suppressed: &[],
    });
    NotifyJob { id: FALLBACK_ID, channel: ch.clone(), msg, now }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_checks() {
        let c = parse("webhook http://127.0.0.1:9/x?t={TEXT} method=POST").unwrap();
        assert_eq!(
            (c.kind.as_str(), c.target.as_str()),
            ("webhook", "http://127.0.0.1:9/x?t={TEXT}")
        );
        assert_eq!(c.options["method"], "POST");
        assert!(parse("syslog").is_ok());
        assert!(parse("pager 123").unwrap_err().contains("fallback"));
        assert!(parse("webhook not-a-url").is_err());
        assert!(parse("").is_err());
    }

    #[test]
    fn messages_say_what_happened() {
        let c = parse("syslog").unwrap();
        let j = job(&c, "www1.example.org", "srv.example.org", true, "no ACK for 50s", 0.0);
        assert_eq!(j.id, FALLBACK_ID);
        assert!(
            j.msg.subject.contains("www1") && j.msg.subject.contains("server"),
            "{}",
            j.msg.subject
        );
        assert!(j.msg.body.contains("srv.example.org"), "{}", j.msg.body);
    }
}
