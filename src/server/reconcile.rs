//! Alerts that resolve even when no client event says so. A client killed
//! while an item was bad starts again with no memory of it: its first level
//! is not an event, so nothing would ever close the server's alert. The
//! server therefore keeps the last level it processed for every host-item
//! that is not at the best level (`open`), and
//! - a REPORT that shows such an item at the best level, or no longer has
//!   an item its work dropped, gets a recovery event;
//! - a new work (start-up, reload) that drops an item or a host gets one too.
//!
//! Recoveries are ordinary events (stored, in CLIENTS, through the notifier),
//! so each is sent once: after it the item is no longer open.

use super::{fleet, Server};
use crate::clock::Now;
use crate::effects::Effects;
use crate::event::builtin::{RAISED_BY_SERVER, SET_BY_CLIENT};
use crate::event::Event;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};

/// Host-item -> the last level processed and its event's time (the
/// client's clock), for those not at the best level.
pub(super) type Open = BTreeMap<(String, String), (String, f64)>;

/// The open host-items from server.db: the level of each one's newest event.
pub(super) fn load(db: &rusqlite::Connection, best: &str) -> crate::error::Result<Open> {
    let mut open = Open::new();
    for e in fleet::latest_events(db)? {
        if e.new_level != best {
            open.insert((e.host, e.item), (e.new_level, e.time));
        }
    }
    Ok(open)
}

impl Server {
    fn best_level(&self) -> String {
        self.work.levels.first().map(|l| l.name.clone()).unwrap_or_default()
    }

    /// Every event the notifier sees passes here first.
    pub(super) fn note_level(&mut self, e: &Event) {
        let key = (e.host.clone(), e.item.clone());
        if e.new_level == self.best_level() {
            self.open.remove(&key);
        } else {
            self.open.insert(key, (e.new_level.clone(), e.time));
        }
    }

    /// After a REPORT of `host`: open items it shows at the best level, or
    /// no longer has while its work does not name them, recover.
    pub(super) fn reconcile_report(
        &mut self,
        host: &str,
        body: &Value,
        now: Now,
        fx: &mut Effects,
    ) {
        let open = self.open_of(host);
        if open.is_empty() {
            return;
        }
        let best = self.best_level();
        let items = body.get("items").and_then(Value::as_object);
        let mut work_items: Option<HashSet<String>> = None;
        let mut recover = Vec::new();
        for (item, level, since) in open {
            if RAISED_BY_SERVER.contains(&item.as_str()) {
                continue;
            }
            match items.and_then(|m| m.get(&item)) {
                // Only a sample taken after the bad level's event counts: a
                // report sent just before a change may arrive after its event.
                Some(st)
                    if st.get("level").and_then(Value::as_str) == Some(best.as_str())
                        && st.get("time").and_then(Value::as_f64).is_some_and(|t| t > since) =>
                {
                    let value = st.get("value").and_then(Value::as_f64);
                    recover.push((item, level, value, "reported at the best level".to_string()));
                }
                Some(_) => {}
                None => {
                    // Absent: gone only if the work dropped it (a client that
                    // has not probed it yet does not report it either).
                    let names = work_items.get_or_insert_with(|| self.work_item_names(host));
                    if !names.contains(&item) {
                        recover.push((item, level, None, "no longer reported".to_string()));
                    }
                }
            }
        }
        self.recover(host, recover, now, fx);
    }

    /// After a new work: items a host's work no longer has recover, and so
    /// does everything of a host that `left` the work (the hosts of the
    /// previous work not in this one). A host that was never in the work
    /// (an hbd-style sender) keeps its heartbeat's level: it is still heard.
    pub(super) fn reconcile_work(&mut self, left: &HashSet<String>, now: Now, fx: &mut Effects) {
        let hosts: Vec<String> = {
            let mut h: Vec<String> = self.open.keys().map(|(h, _)| h.clone()).collect();
            h.dedup();
            h
        };
        for host in hosts {
            let in_work = self.hosts.contains_key(&host);
            let names = if in_work { self.work_item_names(&host) } else { HashSet::new() };
            let recover: Vec<_> = self
                .open_of(&host)
                .into_iter()
                .filter(|(item, _, _)| {
                    closes_on_work(item, in_work.then_some(&names), left.contains(&host))
                })
                .map(|(item, level, _)| {
                    let why = if in_work { "no longer in the work" } else { "host left the work" };
                    (item, level, None, why.to_string())
                })
                .collect();
            self.recover(&host, recover, now, fx);
        }
    }

    /// `(item, level, event time)` of a host's open items.
    fn open_of(&self, host: &str) -> Vec<(String, String, f64)> {
        let from = (host.to_string(), String::new());
        self.open
            .range(from..)
            .take_while(|((h, _), _)| h == host)
            .map(|((_, i), (l, t))| (i.clone(), l.clone(), *t))
            .collect()
    }

    /// The item names of a host's work-file; empty when it cannot be read
    /// (then nothing is taken as dropped: see the callers).
    fn work_item_names(&self, host: &str) -> HashSet<String> {
        match crate::work::load::read_work_file(&self.work_path(host)) {
            Ok(w) => w.items.into_iter().map(|i| i.name).collect(),
            Err(e) => {
                log::warn!("reconciling alerts of {host}: {e}");
                // Unknown: treat every item as still in the work.
                self.open_of(host).into_iter().map(|(i, _, _)| i).collect()
            }
        }
    }

    /// Stores and hands on one recovery event per `(item, old level, value, why)`.
    fn recover(
        &mut self,
        host: &str,
        items: Vec<(String, String, Option<f64>, String)>,
        now: Now,
        fx: &mut Effects,
    ) {
        if items.is_empty() {
            return;
        }
        let best = self.best_level();
        let events: Vec<Event> = items
            .into_iter()
            .map(|(item, old, value, why)| {
                self.event_seq += 1;
                Event {
                    id: format!("srv-{}-{}", self.boot_id, self.event_seq),
                    host: host.to_string(),
                    item,
                    old_level: Some(old),
                    new_level: best.clone(),
                    old_value: None,
                    new_value: value,
                    time: now.wall,
                    message: format!("recovered: {why}"),
                }
            })
            .collect();
        self.store_events(events, None, now, fx);
    }
}

/// Does a new work close `item`'s open alert? `names` are the host's
/// work items when it is in the work, `left` says it was in the previous
/// one. Built-in items are in no work, so a host in the work keeps them;
/// a host that left the work takes all its alerts along, and a stranger
/// (an hbd-style sender) keeps what the server raises about it.
fn closes_on_work(item: &str, names: Option<&HashSet<String>>, left: bool) -> bool {
    let raised = RAISED_BY_SERVER.contains(&item);
    match names {
        Some(names) => !raised && !SET_BY_CLIENT.contains(&item) && !names.contains(item),
        None => left || !raised,
    }
}

#[cfg(test)]
mod tests {
    use super::closes_on_work;
    use crate::event::builtin::{RAISED_BY_SERVER, SET_BY_CLIENT};
    use std::collections::HashSet;

    #[test]
    fn a_new_work_closes_only_items_it_dropped_never_built_in_ones() {
        let names: HashSet<String> = ["cpu_load".to_string()].into();
        assert!(!closes_on_work("cpu_load", Some(&names), false));
        assert!(closes_on_work("disk_used:/", Some(&names), false));
        for item in RAISED_BY_SERVER.iter().chain(SET_BY_CLIENT) {
            assert!(!closes_on_work(item, Some(&names), false), "{item} closed");
        }
        // The server's isolation and heartbeat-path alerts are its own.
        assert!(!closes_on_work("isolation", Some(&names), false));
        assert!(!closes_on_work("heartbeat_path", Some(&names), false));
        // A host that left takes everything along; a stranger keeps its
        // heartbeat alert.
        assert!(closes_on_work("heartbeat", None, true));
        assert!(!closes_on_work("heartbeat", None, false));
        assert!(closes_on_work("cpu_load", None, false));
    }
}
