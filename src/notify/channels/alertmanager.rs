//! `alertmanager` channel: POST to an Alertmanager's `/api/v2/alerts`. The
//! target may be the base URL (`http://am:9093/`) or the full API URL
//! (`http://am:9093/api/v2/alerts`); the path is never doubled.
//!
//! Labels are an alert's identity in Alertmanager, so they are only
//! `{alertname=hbmon, host, item}`: one alert per host-item whatever its
//! level. The level goes in the annotations (`level`, `summary`,
//! `description`), so an escalation updates the one alert and a recovery
//! (`endsAt` = the recovery's time) resolves it.
//!
//! A firing alert is posted without `endsAt` unless the channel sets
//! `ends_after=IVAL`; the Alertmanager then auto-resolves it after its
//! `resolve_timeout` (5 min by default) unless re-posted, so set
//! `ends_after` at least as long as `ival_renotify` (reminders re-post).
//! Storm digests never go to this channel (see `Notifier::send`): the
//! Alertmanager groups by itself and each alert must resolve on its own.

use super::super::message::{Kind, Message};
use super::webhook::{agent, check};
use crate::clock::rfc3339;
use serde_json::{json, Value};

/// The API path alerts are posted to.
const API: &str = "/api/v2/alerts";

/// The URL to POST to, from a base or a full API URL.
pub fn alerts_url(target: &str) -> String {
    let t = target.trim_end_matches('/');
    if t.ends_with(API) {
        t.to_string()
    } else {
        format!("{t}{API}")
    }
}

pub fn payload(msg: &Message, ends_after: Option<f64>) -> Value {
    let ends = match msg.kind {
        Kind::Recovery => Some(msg.time),
        _ => ends_after.map(|e| msg.time + e),
    };
    let mut a = json!({
        "labels": {"alertname": "hbmon", "host": msg.host, "item": msg.item},
        "annotations": {"level": msg.new, "summary": msg.subject, "description": msg.body},
        "startsAt": rfc3339(msg.since),
    });
    if let Some(e) = ends {
        a["endsAt"] = json!(rfc3339(e));
    }
    if let Some(l) = &msg.link {
        a["generatorURL"] = json!(l);
    }
    // A digest has no host-item of its own; it is never routed here, and
    // if one came it would be an anonymous alert, so nothing is posted.
    if msg.kind == Kind::Digest || msg.kind == Kind::Deadman {
        return Value::Array(Vec::new());
    }
    Value::Array(vec![a])
}

pub fn send(
    target: &str,
    options: &std::collections::BTreeMap<String, String>,
    msg: &Message,
    timeout: f64,
) -> Result<(), String> {
    let ends_after = options.get("ends_after").and_then(|v| crate::ranges::parse_ival(v).ok());
    let body = payload(msg, ends_after);
    if body.as_array().is_some_and(Vec::is_empty) {
        return Ok(());
    }
    let url = alerts_url(target);
    let req = agent(timeout).post(&url).set("Content-Type", "application/json");
    check(req.send_string(&body.to_string()), &url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_and_full_urls_give_one_api_path() {
        for t in [
            "http://127.0.0.1:9093",
            "http://127.0.0.1:9093/",
            "http://127.0.0.1:9093/api/v2/alerts",
            "http://127.0.0.1:9093/api/v2/alerts/",
        ] {
            assert_eq!(alerts_url(t), "http://127.0.0.1:9093/api/v2/alerts", "{t}");
        }
        assert_eq!(alerts_url("http://h/am/"), "http://h/am/api/v2/alerts");
    }

    #[test]
    fn one_identity_per_host_item_level_in_annotations() {
        let mut m = Message::probe();
        m.kind = Kind::Alert;
        m.host = "www1.x".into();
        m.item = "heartbeat".into();
        m.new = "crit".into();
        m.since = 0.0;
        m.time = 60.0;
        let p = payload(&m, None);
        assert_eq!(p.as_array().map(Vec::len), Some(1));
        assert_eq!(
            p[0]["labels"],
            json!({"alertname": "hbmon", "host": "www1.x", "item": "heartbeat"})
        );
        assert_eq!(p[0]["annotations"]["level"], "crit");
        assert!(p[0].get("endsAt").is_none());
        m.kind = Kind::Reminder;
        assert_eq!(payload(&m, Some(3600.0))[0]["endsAt"], "1970-01-01T01:01:00Z");
        m.kind = Kind::Recovery;
        m.new = "ok".into();
        let r = payload(&m, Some(3600.0));
        assert_eq!(r.as_array().map(Vec::len), Some(1));
        assert_eq!(r[0]["labels"], p[0]["labels"], "the recovery resolves the same alert");
        assert_eq!(r[0]["endsAt"], "1970-01-01T00:01:00Z");
        m.kind = Kind::Digest;
        assert_eq!(payload(&m, None), json!([]));
    }
}
