//! What a client's history cannot take stays here, in memory: events the
//! disk refused (bounded, counted, still sent to the server), ids the
//! server acknowledged that the outbox could not delete yet, and the
//! counts of dropped samples. Pure: no disk, no clock; the store thread
//! (`store/thread.rs`) owns the one instance.

use crate::event::Event;
use std::collections::{HashSet, VecDeque};

/// Most events held in memory; past it the oldest are dropped (counted).
pub const HELD_MAX: usize = 10_000;
/// Most acknowledged ids remembered while the outbox cannot delete them.
const ACKED_MAX: usize = 100_000;

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
    /// Drains whose write failed, since start.
    pub write_errors: u64,
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
pub fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    Some(s.blocks_available() as u64 * s.fragment_size() as u64)
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
}
