//! `alertmanager` channel: POST `<base>/api/v2/alerts`. Labels
//! `{alertname=hbmon, host, item, level}` identify the alert, so a recovery
//! (and an escalation, for the previous level) posts the same labels with
//! `endsAt` set to resolve it.
//!
//! A firing alert is posted without `endsAt` unless the channel sets
//! `ends_after=IVAL`; the Alertmanager then auto-resolves it after its
//! `resolve_timeout` (5 min by default) unless re-posted, so set
//! `ends_after` at least as long as `ival_renotify` (reminders re-post).

use super::super::message::{rfc3339, Kind, Message};
use super::webhook::{agent, check};
use serde_json::{json, Value};

pub fn payload(msg: &Message, ends_after: Option<f64>) -> Value {
    let one = |level: &str, ends: Option<f64>| {
        let mut a = json!({
            "labels": {"alertname": "hbmon", "host": msg.host, "item": msg.item, "level": level},
            "annotations": {"summary": msg.subject, "description": msg.body},
            "startsAt": rfc3339(msg.since),
        });
        if let Some(e) = ends {
            a["endsAt"] = json!(rfc3339(e));
        }
        if let Some(l) = &msg.link {
            a["generatorURL"] = json!(l);
        }
        a
    };
    let mut out: Vec<Value> = msg.resolve_levels.iter().map(|l| one(l, Some(msg.time))).collect();
    if msg.kind != Kind::Recovery {
        out.push(one(&msg.new, ends_after.map(|e| msg.time + e)));
    }
    Value::Array(out)
}

pub fn send(
    base: &str,
    options: &std::collections::BTreeMap<String, String>,
    msg: &Message,
    timeout: f64,
) -> Result<(), String> {
    let ends_after = options.get("ends_after").and_then(|v| crate::conf::parse_ival(v).ok());
    let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
    let req = agent(timeout).post(&url).set("Content-Type", "application/json");
    check(req.send_string(&payload(msg, ends_after).to_string()), &url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firing_and_resolving_payloads() {
        let mut m = Message::probe();
        m.kind = Kind::Alert;
        m.new = "crit".into();
        m.resolve_levels = vec!["sick".into()];
        m.since = 0.0;
        m.time = 60.0;
        let p = payload(&m, None);
        assert_eq!(p.as_array().map(Vec::len), Some(2));
        assert_eq!(p[0]["labels"]["level"], "sick");
        assert_eq!(p[0]["endsAt"], "1970-01-01T00:01:00Z");
        assert_eq!(p[1]["labels"]["level"], "crit");
        assert!(p[1].get("endsAt").is_none());
        m.kind = Kind::Reminder;
        m.resolve_levels.clear();
        assert_eq!(payload(&m, Some(3600.0))[0]["endsAt"], "1970-01-01T01:01:00Z");
        m.kind = Kind::Recovery;
        m.resolve_levels = vec!["crit".into()];
        let r = payload(&m, Some(3600.0));
        assert_eq!(r.as_array().map(Vec::len), Some(1));
        assert_eq!(r[0]["labels"]["level"], "crit");
    }
}
