//! What the client does when its history cannot take a write (a full or
//! failing vardir): the round's samples are dropped (counted), its events
//! are written alone, and if even that fails they are held in memory
//! (bounded, counted) and still sent to the server; every round retries the
//! disk. The `store` item says when the vardir is the problem (and when a
//! file there was found corrupt at start), so it alerts like any item.
//! Also the EVENTS conversation: outbox rows plus held events, acked ids
//! deleted (or remembered until the disk lets them be deleted).

use super::{Client, EVENTS_BATCH};
use crate::clock::Now;
use crate::effects::ClientCall;
use crate::effects::Effects;
use crate::event::Event;
use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;

/// Most events held in memory; past it the oldest are dropped (counted).
pub const HELD_MAX: usize = 10_000;
/// Most acknowledged ids remembered while the outbox cannot delete them.
const ACKED_MAX: usize = 100_000;
/// The client's own item for the health of its vardir files.
pub const STORE_ITEM: &str = "store";

/// The in-memory side, pure: no disk, no clock.
#[derive(Debug, Default)]
pub struct Spool {
    held: VecDeque<Event>,
    /// The ids in `held`, so holding the same event twice keeps one.
    held_ids: HashSet<String>,
    /// Acknowledged by the server but still in the outbox (delete failed).
    acked: HashSet<String>,
    pub samples_dropped: u64,
    pub events_dropped: u64,
    /// Since when writes fail, and the last error.
    pub failing: Option<(f64, String)>,
}

impl Spool {
    /// Keeps events the disk refused; the oldest go past [`HELD_MAX`].
    pub fn hold(&mut self, events: &[Event]) {
        for e in events {
            if !self.held_ids.insert(e.id.clone()) {
                continue;
            }
            if self.held.len() >= HELD_MAX {
                if let Some(old) = self.held.pop_front() {
                    self.held_ids.remove(&old.id);
                }
                self.events_dropped += 1;
            }
            self.held.push_back(e.clone());
        }
    }

    pub fn held(&self) -> &VecDeque<Event> {
        &self.held
    }

    /// Held events made it to disk (or were acked): forget them.
    pub fn release(&mut self, ids: &HashSet<String>) {
        self.held.retain(|e| !ids.contains(&e.id));
        self.held_ids.retain(|i| !ids.contains(i));
    }

    pub fn fail(&mut self, now_wall: f64, err: String) {
        let since = self.failing.as_ref().map_or(now_wall, |f| f.0);
        self.failing = Some((since, err));
    }

    /// Ids acked by the server that the outbox could not delete yet.
    pub fn remember_acked(&mut self, ids: &[String]) {
        for id in ids {
            if self.acked.len() < ACKED_MAX {
                self.acked.insert(id.clone());
            }
        }
    }

    pub fn acked(&self) -> Vec<String> {
        self.acked.iter().cloned().collect()
    }

    pub fn forget_acked(&mut self) {
        self.acked.clear();
    }

    /// The next EVENTS batch: outbox rows not yet acked, then held events
    /// not among them, oldest first, at most `limit`.
    pub fn batch(&self, outbox: Vec<Event>, limit: usize) -> Vec<Event> {
        let mut out: Vec<Event> =
            outbox.into_iter().filter(|e| !self.acked.contains(&e.id)).collect();
        let have: HashSet<String> = out.iter().map(|e| e.id.clone()).collect();
        out.extend(self.held.iter().filter(|e| !have.contains(&e.id)).cloned());
        out.sort_by(|a, b| a.time.total_cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
        out.truncate(limit);
        out
    }
}

/// Bytes free for an unprivileged writer on the file system of `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
}

impl Client {
    /// Stores a round and its events; on failure the samples are dropped
    /// and the events written alone or held. Then retries what is held.
    pub(super) fn store_round(
        &mut self,
        now: Now,
        vals: &[(&str, f64)],
        events: &[Event],
        fx: &mut Effects,
    ) {
        match self.history.insert_round_with_events(now.wall, vals, events) {
            Ok(()) => self.store_ok(now),
            Err(e) => {
                self.spool.samples_dropped += vals.len() as u64;
                log::error!("history: {e}; {} samples of this round dropped", vals.len());
                self.spool.fail(now.wall, e.to_string());
                self.store_events(events);
            }
        }
        self.store_item(now, fx);
    }

    /// Writes events alone (an item set by another part, or a round the
    /// history refused); held in memory when that fails too.
    pub(super) fn store_events(&mut self, events: &[Event]) {
        if events.is_empty() {
            return;
        }
        if let Err(e) = self.history.enqueue(events) {
            log::error!("history: {e}; {} events held in memory", events.len());
            self.spool.hold(events);
        }
    }

    /// A write went through: held events and pending deletes go to disk.
    fn store_ok(&mut self, now: Now) {
        let was_failing = self.spool.failing.take();
        if !self.spool.held().is_empty() {
            let held: Vec<Event> = self.spool.held().iter().cloned().collect();
            match self.history.enqueue(&held) {
                Ok(()) => {
                    let ids: HashSet<String> = held.into_iter().map(|e| e.id).collect();
                    self.spool.release(&ids);
                }
                Err(e) => self.spool.fail(now.wall, e.to_string()),
            }
        }
        let acked = self.spool.acked();
        if !acked.is_empty() && self.history.ack(&acked).is_ok() {
            self.spool.forget_acked();
        }
        if let (Some((since, _)), None) = (was_failing, &self.spool.failing) {
            log::warn!(
                "history writes work again (failing since {}); {} samples were dropped",
                crate::clock::fmt_time(since),
                self.spool.samples_dropped
            );
        }
    }

    /// Sets the `store` item from the vardir's health.
    pub(super) fn store_item(&mut self, now: Now, fx: &mut Effects) {
        let mut problems: Vec<String> = self.store_notices.clone();
        if let Some((since, err)) = &self.spool.failing {
            let free = free_bytes(&self.vardir).map_or("?".into(), |b| b.to_string());
            problems.push(format!(
                "history.db cannot be written since {} ({err}); vardir {} has {free} bytes free; \
                 {} events held in memory",
                crate::clock::fmt_time(*since),
                self.vardir.display(),
                self.spool.held().len()
            ));
        }
        let (level, msg) = match problems.is_empty() {
            true => (
                self.work.levels.first().map(|l| l.name.clone()).unwrap_or_default(),
                String::new(),
            ),
            false => (store_bad_level(&self.work.levels), problems.join("; ")),
        };
        let value = Some(problems.len() as f64);
        self.set_item(STORE_ITEM, value, &level, &msg, now, fx);
    }

    /// STATE lines about the outbox and the vardir.
    pub(super) fn store_state_lines(&self, out: &mut String) {
        let held = self.spool.held().len();
        let _ = write!(out, "-- outbox {} queued events", self.history.outbox_len().unwrap_or(0));
        if held > 0 {
            let _ = write!(out, " (+{held} held in memory: history.db refuses writes)");
        }
        out.push('\n');
        let s = &self.spool;
        if let Some((since, err)) = &s.failing {
            let free = free_bytes(&self.vardir).map_or("?".into(), |b| b.to_string());
            let _ = writeln!(
                out,
                "-- store history.db write failing since {}: {err}; vardir {} {free} bytes free",
                crate::clock::fmt_time(*since),
                self.vardir.display()
            );
        }
        if s.failing.is_some() || s.samples_dropped > 0 || s.events_dropped > 0 {
            let _ = writeln!(
                out,
                "-- store samples dropped {} events held {held} (max {HELD_MAX}) events dropped {}",
                s.samples_dropped, s.events_dropped
            );
        }
        for n in &self.store_notices {
            let _ = writeln!(out, "-- store {n}");
        }
    }

    /// Sends queued and held events unless a batch is already in flight.
    pub(super) fn send_events(&mut self, now: Now, fx: &mut Effects) {
        if self.events_call {
            return;
        }
        let outbox = self.history.pending(EVENTS_BATCH).unwrap_or_else(|e| {
            log::error!("outbox: {e}");
            Vec::new()
        });
        let events = self.spool.batch(outbox, EVENTS_BATCH);
        if events.is_empty() {
            return;
        }
        let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
        let body = serde_json::json!({"host": self.host, "events": events});
        self.call_server(ClientCall::Events(ids), format!("EVENTS {body}"), now, fx);
    }

    pub(super) fn on_events_answer(
        &mut self,
        ids: Vec<String>,
        r: crate::session::CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        self.events_call = false;
        match r.and_then(|t| crate::command::parse_answer(&t)) {
            Ok(_) => {
                self.events_backoff.ok();
                self.spool.release(&ids.iter().cloned().collect());
                if let Err(e) = self.history.ack(&ids) {
                    // Not resent in a loop: remembered until a delete works.
                    log::error!("outbox: {e}");
                    self.spool.remember_acked(&ids);
                }
                self.send_events(now, fx);
            }
            Err(e) => {
                let wait = self.events_backoff.fail(60.0);
                log::warn!("sending {} events failed ({e}); retrying in {wait}s", ids.len());
                self.schedule_events_retry(now, fx, wait);
            }
        }
    }
}

/// The level of a vardir problem: `sick` if the work has it, else the middle.
fn store_bad_level(levels: &[crate::work::model::Level]) -> String {
    levels
        .iter()
        .find(|l| l.name == "sick")
        .or_else(|| levels.get(levels.len() / 2))
        .map(|l| l.name.clone())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, t: f64) -> Event {
        Event {
            id: id.into(),
            host: "h".into(),
            item: "x".into(),
            old_level: None,
            new_level: "sick".into(),
            old_value: None,
            new_value: None,
            time: t,
            message: String::new(),
        }
    }

    #[test]
    fn held_events_are_bounded_and_counted() {
        let mut s = Spool::default();
        let many: Vec<Event> = (0..HELD_MAX + 5).map(|i| ev(&i.to_string(), i as f64)).collect();
        s.hold(&many);
        s.hold(&many[HELD_MAX..]); // already held: no copies
        assert_eq!(s.held().len(), HELD_MAX);
        assert_eq!(s.events_dropped, 5);
        assert_eq!(s.held().front().map(|e| e.id.as_str()), Some("5"), "the oldest went");
        s.release(&["5".to_string()].into_iter().collect());
        assert_eq!(s.held().len(), HELD_MAX - 1);
    }

    #[test]
    fn batches_merge_outbox_and_held_without_acked_or_copies() {
        let mut s = Spool::default();
        s.hold(&[ev("h1", 3.0), ev("o2", 2.0)]);
        s.remember_acked(&["o1".to_string()]);
        let b = s.batch(vec![ev("o1", 1.0), ev("o2", 2.0)], 10);
        let ids: Vec<&str> = b.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["o2", "h1"]);
        assert_eq!(s.batch(vec![ev("o2", 2.0)], 1).len(), 1);
        s.forget_acked();
        assert_eq!(s.batch(vec![ev("o1", 1.0)], 10).len(), 3);
    }

    #[test]
    fn failing_keeps_its_first_time() {
        let mut s = Spool::default();
        s.fail(10.0, "full".into());
        s.fail(20.0, "still full".into());
        assert_eq!(s.failing, Some((10.0, "still full".into())));
    }

    #[test]
    fn bad_level_is_sick_or_the_middle() {
        assert_eq!(store_bad_level(&crate::work::default_levels()), "sick");
        let lv = |n: &str| crate::work::model::Level { name: n.into(), long: n.into() };
        assert_eq!(store_bad_level(&[lv("ok"), lv("meh"), lv("bad")]), "meh");
    }
}
