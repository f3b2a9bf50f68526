//! What the dashboard shows of the notifier: the open alerts with their
//! flags (acknowledged, silenced, flapping, suppressed by a parent) and the
//! silences in force, as JSON for CLIENTS. Read-only; no sending here.

use super::Notifier;
use serde_json::{json, Value};

impl Notifier {
    /// Open alerts (not at the best level), for one host or all.
    pub fn open_alerts(&self, host: Option<&str>, now: f64) -> Value {
        let alerts: Vec<Value> = self
            .alerts
            .values()
            .filter(|a| a.alerting() && host.is_none_or(|h| h == a.host))
            .map(|a| {
                json!({
                    "host": a.host,
                    "item": a.item,
                    "level": a.level_name,
                    "value": a.value,
                    "since": a.since,
                    "acked": a.acked,
                    "silenced": self.silenced(&a.host, &a.item, now),
                    "flapping": a.flapping,
                    "suppressed_by": a.suppressed_by,
                    "channels": a.notified,
                    "sent": a.sent_level.is_some(),
                    "last_sent": (a.last_sent > 0.0).then_some(a.last_sent),
                })
            })
            .collect();
        let silences: Vec<Value> = self
            .silences
            .iter()
            .filter(|((h, _), &u)| u > now && host.is_none_or(|x| x == h))
            .map(|((h, i), u)| json!({"host": h, "item": i, "until": u}))
            .collect();
        json!({
            "alerts": alerts,
            "silences": silences,
            "outbox": {"pending": self.count("pending"), "failed": self.count("failed")},
        })
    }
}
