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

#[cfg(test)]
mod tests {
    use super::super::tests_support::{ev, setup, work};

    #[test]
    fn open_alerts_carry_their_flags() {
        let w = work();
        let (c, mut n) = setup(&w);
        n.on_event(&c, &ev("www2.x", "cpu_load", "ok", "sick", 5.0, 0.0), "up", 0.0).unwrap();
        n.on_event(&c, &ev("db1.x", "disk_used:/", "ok", "crit", 97.0, 1.0), "up", 1.0).unwrap();
        assert!(n.ack(&c, "www2.x", "cpu_load").unwrap());
        n.silence(&c, "db1.x", None, 100.0).unwrap();
        let v = n.open_alerts(None, 50.0);
        let a = v["alerts"].as_array().unwrap();
        assert_eq!(a.len(), 2, "{v}");
        let www2 = a.iter().find(|x| x["host"] == "www2.x").unwrap();
        assert_eq!(
            (www2["acked"].as_bool(), www2["silenced"].as_bool()),
            (Some(true), Some(false))
        );
        assert_eq!(www2["level"], "sick");
        let db1 = a.iter().find(|x| x["host"] == "db1.x").unwrap();
        assert_eq!(db1["silenced"], true, "a host-wide silence covers its items");
        assert_eq!(v["silences"][0]["item"], "");
        let one = n.open_alerts(Some("db1.x"), 50.0);
        assert_eq!(one["alerts"].as_array().unwrap().len(), 1);
        assert_eq!(n.open_alerts(None, 150.0)["silences"].as_array().unwrap().len(), 0, "expired");
    }
}
