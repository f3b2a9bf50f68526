//! What the server part shows of itself: its lines of the STATE text and
//! its object in DUMP (the host-level text is `verbs/host.rs`'s). Reads the
//! part's fields only; no verb, no I/O beyond what the parts it asks do.

use super::{beats, detector, hosts, Server};
use crate::clock::Now;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write as _;

impl Server {
    pub fn state_lines(&self, out: &mut String, now: Now) {
        let _ = writeln!(out, "-- keeping state for {} clients", self.hosts.len());
        let mut levels: BTreeMap<String, usize> = BTreeMap::new();
        // The last report of a host that is not reachable says nothing
        // about now: its items are stale, not fine.
        let mut stale = 0;
        for (name, r) in &self.reports {
            if is_stale(self.reach_name(name)) {
                for_each_item_level(&r.body, |_| stale += 1);
                continue;
            }
            for_each_item_level(&r.body, |l| *levels.entry(l.to_string()).or_insert(0) += 1);
        }
        let lv: Vec<String> = self
            .work
            .levels
            .iter()
            .map(|l| format!("{} {}", l.name, levels.get(&l.name).copied().unwrap_or(0)))
            .collect();
        let _ = writeln!(out, "-- items by level {} stale {stale}", lv.join(" "));
        let stored = self.store.shared.events_stored.load(std::sync::atomic::Ordering::Relaxed);
        let _ = writeln!(out, "-- events stored {stored}");
        if let Some(n) = &self.store_notice {
            let _ = writeln!(out, "-- store {n}");
        }
        if self.starting.is_some() {
            let _ = writeln!(out, "-- server.db starting (the store thread opens and reads it)");
        }
        if let Some(why) = &self.store_unusable {
            let _ = writeln!(out, "-- server.db unusable, nothing is stored: {why}");
        }
        let _ = writeln!(out, "{}", self.store.state_line());
        // The notifier's lines as of the store thread's last snapshot.
        out.push_str(&self.store.shared.view().state);
        self.table.state_lines(out, now);
        if let Some(js) = &self.journal_stats {
            let _ = writeln!(out, "{}", crate::journal::stats_line(js));
        }
        let s = &self.stats;
        let _ = writeln!(
            out,
            "-- events received {} new {} duplicate {}; reports {}",
            s.events_received, s.events_stored, s.events_duplicate, s.reports
        );
        for name in self.hosts.keys() {
            let rep = match self.reports.get(name) {
                Some(r) => format!("report {} ago", crate::clock::fmt_age(now.wall - r.time)),
                None => "no report".into(),
            };
            let _ = writeln!(out, "-- client {name} {rep}");
        }
        self.plg_state_lines(out);
    }

    /// STATE: the items hbd-style senders report by PLG, one line each:
    /// `-- plg HOST ITEM VALUE`, with `(not in the work)` for senders the
    /// work does not name.
    fn plg_state_lines(&self, out: &mut String) {
        for h in self.table.hosts().iter().filter(|h| !h.items.is_empty()) {
            let mark = if h.in_work { "" } else { " (not in the work)" };
            for (item, v) in &h.items {
                let v = match v {
                    hosts::ItemVal::Num(n) => format!("{n}"),
                    hosts::ItemVal::Text(t) => t.chars().take(80).collect(),
                };
                let _ = writeln!(out, "-- plg {} {item} {v}{mark}", h.name);
            }
        }
    }

    pub fn dump(&self, now: Now) -> Value {
        let hosts: serde_json::Map<String, Value> = self
            .hosts
            .iter()
            .map(|(n, h)| {
                let row = self.host_row(n, h, now);
                let v = serde_json::to_value(super::fleet_view::RowAt(&row, now.wall));
                (n.clone(), v.unwrap_or(Value::Null))
            })
            .collect();
        let mut udp = self.table.dump(now);
        // `state` is reachability; `level` is the heartbeat item's fitness
        // level in this work's levels (never a reachability word).
        if let Some(list) = udp.get_mut("hosts").and_then(Value::as_array_mut) {
            for h in list {
                let level = h
                    .get("state")
                    .and_then(Value::as_str)
                    .and_then(detector::Reach::parse)
                    .map(|r| beats::reach_level(&self.work.levels, r));
                if let (Some(m), Some(l)) = (h.as_object_mut(), level) {
                    m.insert("level".into(), Value::String(l));
                }
            }
        }
        json!({"server": self.host, "hosts": hosts, "stats": self.stats, "notify": self.store.shared.view().dump, "udp": udp, "store_notice": self.store_notice, "store_starting": self.starting.is_some(), "store_unusable": self.store_unusable})
    }
}

/// Calls `f` with the level of every item in a report body.
/// Reachability states in which a host's last report is out of date.
pub(super) fn is_stale(reach: &str) -> bool {
    matches!(reach, "down" | "unreachable" | "stopped")
}

fn for_each_item_level(body: &Value, mut f: impl FnMut(&str)) {
    match body.get("items") {
        Some(Value::Object(m)) => {
            for v in m.values() {
                if let Some(l) = v.get("level").and_then(Value::as_str) {
                    f(l);
                }
            }
        }
        Some(Value::Array(a)) => {
            for v in a {
                if let Some(l) = v.get("level").and_then(Value::as_str) {
                    f(l);
                }
            }
        }
        _ => {}
    }
}
