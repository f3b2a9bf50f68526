//! The `Notifier` as operators see and steer it: `SILENCE`, `ACK`, the
//! STATE lines, the DUMP JSON, and what the dashboard shows (the open
//! alerts with their flags and the silences in force, for CLIENTS).

use super::super::alerts::AlertState;
use super::super::outbox;
use super::{apply, Notifier};
use rusqlite::Connection;
use serde_json::{json, Value};

/// Failed deliveries listed one per line in STATE (DUMP has them all).
const STATE_FAILED: usize = 10;

impl Notifier {
    /// `SILENCE host [item] until`: mutes new alerts and reminders (a
    /// resolve for an alert already sent still goes out). When it ends,
    /// whatever is still bad is alerted.
    pub fn silence(
        &mut self,
        conn: &Connection,
        host: &str,
        item: Option<&str>,
        until: f64,
    ) -> rusqlite::Result<()> {
        let writes = self.m.silence(host, item, until);
        apply::apply(conn, &mut self.m, writes, until)
    }

    /// `ACK host item`: stops reminders until the alert escalates or
    /// recovers. False when there is no such alert.
    pub fn ack(&mut self, conn: &Connection, host: &str, item: &str) -> rusqlite::Result<bool> {
        let Some(writes) = self.m.ack(host, item) else { return Ok(false) };
        apply::apply(conn, &mut self.m, writes, 0.0)?;
        Ok(true)
    }

    fn count(&self, state: &str) -> i64 {
        self.counts.iter().find(|(s, _)| s == state).map(|(_, n)| *n).unwrap_or(0)
    }

    fn describe(&self, a: &AlertState, now: f64) -> String {
        let mut flags = Vec::new();
        if a.acked {
            flags.push("acked".to_string());
        }
        if a.flapping {
            flags.push("flapping".to_string());
        }
        if self.m.silenced(&a.host, &a.item, now) {
            flags.push("silenced".to_string());
        }
        if let Some(p) = &a.suppressed_by {
            flags.push(format!("suppressed-by={p}"));
        }
        if a.wait_parent_until.is_some() {
            flags.push("waiting-for-parent".to_string());
        }
        if a.sent_level.is_none() {
            flags.push("unsent".to_string());
        }
        let ch: Vec<&str> = a.notified.iter().map(String::as_str).collect();
        format!(
            "alert {} {} {} since={} channels={} {}",
            a.host,
            a.item,
            a.level_name,
            crate::clock::rfc3339(a.since),
            if ch.is_empty() { "-".to_string() } else { ch.join(",") },
            flags.join(" ")
        )
    }

    /// STATE lines: counts, then one line per active alert, silence and
    /// (the latest) failed deliveries.
    pub fn state_lines(&self, out: &mut String, now: f64) {
        let alerting = self.m.alerts.values().filter(|a| a.alerting()).count();
        let silenced = self.m.silences.values().filter(|&&u| u > now).count();
        out.push_str(&format!(
            "-- notify pending {} held {} inflight {} failed {} alerting {alerting} silenced {silenced} retrying {}\n",
            self.count("pending"),
            self.count("held"),
            self.count("inflight"),
            self.count("failed"),
            self.count("retrying"),
        ));
        out.push_str(&format!(
            "-- notify retries {} per delivery (channel option retries=N), given up after {}h\n",
            outbox::MAX_TRIES,
            outbox::MAX_AGE / 3600.0
        ));
        for a in self.m.alerts.values().filter(|a| a.alerting()) {
            out.push_str("-- ");
            out.push_str(self.describe(a, now).trim_end());
            out.push('\n');
        }
        for ((h, i), u) in self.m.silences.iter().filter(|(_, &u)| u > now) {
            let item = if i.is_empty() { "*" } else { i };
            out.push_str(&format!("-- silence {h} {item} until {}\n", crate::clock::rfc3339(*u)));
        }
        let skip = self.failures.len().saturating_sub(STATE_FAILED);
        for (id, ch, subj, tries, err) in self.failures.iter().skip(skip) {
            out.push_str(&format!("-- notify failed {id} {ch} tries {tries} {subj:?}: {err}\n"));
        }
        if let Some(e) = &self.m.deadman_error {
            out.push_str(&format!("-- deadman failed: {e}\n"));
        }
    }

    pub fn dump(&self) -> serde_json::Value {
        let silences: Vec<_> = self
            .m
            .silences
            .iter()
            .map(|((h, i), u)| json!({"host": h, "item": i, "until": u}))
            .collect();
        let failures: Vec<_> = self
            .failures
            .iter()
            .map(|(id, ch, s, t, e)| json!({"id": id, "channel": ch, "subject": s, "tries": t, "error": e}))
            .collect();
        let counts: serde_json::Map<String, serde_json::Value> =
            self.counts.iter().map(|(s, n)| (s.clone(), json!(n))).collect();
        json!({
            "alerts": self.m.alerts.values().collect::<Vec<_>>(),
            "silences": silences,
            "outbox": counts,
            "failed": failures,
            "retries": {"tries": outbox::MAX_TRIES, "max_age": outbox::MAX_AGE},
            "deadman_error": self.m.deadman_error,
            "next_deadline": self.next_deadline(),
        })
    }

    /// Open alerts (not at the best level), for one host or all.
    pub fn open_alerts(&self, host: Option<&str>, now: f64) -> Value {
        let alerts: Vec<Value> = self
            .m
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
                    "silenced": self.m.silenced(&a.host, &a.item, now),
                    "flapping": a.flapping,
                    "suppressed_by": a.suppressed_by,
                    "channels": a.notified,
                    "sent": a.sent_level.is_some(),
                    "last_sent": (a.last_sent > 0.0).then_some(a.last_sent),
                })
            })
            .collect();
        let silences: Vec<Value> = self
            .m
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
