//! The client's side of its history. The store thread owns `history.db`
//! (`store/thread.rs`); this file sends it rounds and events, takes its
//! answers, and keeps what the loop shows of it: the `store` item (the
//! vardir's health, so it alerts like any item), STATE lines, and the
//! REPORT snapshot, which moves on only when the write it belongs to is
//! done (a REPORT says what the history has). Also the EVENTS
//! conversation: a batch read from the outbox after every write sent
//! before it, sent, the acked ids deleted by the thread.

use super::{Client, EVENTS_BATCH};
use crate::clock::Now;
use crate::effects::{ClientCall, Effects};
use crate::event::Event;
use crate::store::spool::HELD_MAX;
use crate::store::thread::MAX_QUEUED;
use crate::store::{StoreDone, StoreReq};
use std::fmt::Write as _;

impl Client {
    /// Sends a round and its events to the store thread (one transaction
    /// with the rest of its drain). Past [`MAX_QUEUED`] waiting requests the
    /// samples are shed (counted), the events never.
    pub(super) fn store_round(&mut self, now: Now, vals: Vec<(String, f64)>, events: Vec<Event>) {
        let (values, shed) = shed_when_full(vals, self.store.queued());
        self.rounds_sent += 1;
        self.store_write(StoreReq::Round { t: now.wall, values, events, shed }, true);
    }

    /// Events alone (an item set by another part).
    pub(super) fn store_events(&mut self, events: &[Event]) {
        if !events.is_empty() {
            self.store_write(StoreReq::Events(events.to_vec()), false);
        }
    }

    fn store_write(&mut self, r: StoreReq, round: bool) {
        // Bounded like the queue: past it (a thread gone or stuck for
        // days) the oldest snapshot counts as done, so REPORTs still move.
        if self.unstored.len() >= MAX_QUEUED {
            self.write_done();
        }
        // What a REPORT may say once this write is done.
        self.unstored.push_back((self.items.report_json(), round));
        self.store.send(r);
    }

    /// The oldest write sent is done: REPORTs may say what it stored.
    /// True when that was the round a REPORT sent too early waits for.
    fn write_done(&mut self) -> bool {
        let Some((r, round)) = self.unstored.pop_front() else { return false };
        self.reported = r;
        self.rounds_stored += u64::from(round);
        self.report_follow.stored(self.rounds_stored)
    }

    /// An answer of the store thread.
    pub fn on_store_done(&mut self, d: StoreDone, now: Now, fx: &mut Effects) {
        match d {
            StoreDone::Written { writes, status } => {
                let mut follow = false;
                for _ in 0..writes {
                    follow |= self.write_done();
                }
                // The REPORT sent before the first round was stored went
                // without its values: one more now (within a second, spread)
                // rather than an ival_send_report later.
                if follow {
                    self.schedule_report(now, fx, 0.1 + super::sync::jitter(1.0));
                }
                let failed = status.write_errors.saturating_sub(self.status.write_errors);
                if failed > 0 {
                    fx.refused.push(("history.db write failed".into(), failed));
                }
                if let (Some((since, _)), None) = (&self.status.failing, &status.failing) {
                    log::warn!(
                        "history writes work again (failing since {}); {} samples were dropped",
                        crate::clock::fmt_time(*since),
                        status.samples_dropped
                    );
                }
                self.status = status;
                self.store_item(now, fx);
            }
            StoreDone::Batch(events) => {
                if self.outbox.batch(events.len()) {
                    self.send_events(now, fx);
                }
                if events.is_empty() {
                    return;
                }
                let ids: Vec<String> = events.iter().map(|e| e.id.clone()).collect();
                let body = serde_json::json!({"host": self.host, "events": events});
                if self.call_server(ClientCall::Events(ids), format!("EVENTS {body}"), fx) {
                    self.outbox.sent(events.len(), now.wall);
                }
            }
            StoreDone::Answer { ticket, answer, failed } => {
                if let Some(verb) = failed {
                    fx.refused.push((format!("{verb} store failed"), 1));
                }
                fx.answers.push((ticket, answer));
            }
            StoreDone::Opened { status, notice } => {
                self.history_open = true;
                self.status = status;
                self.store_notices.extend(notice);
                // The batch `start` asked for is answered after this.
                self.store_item(now, fx);
            }
        }
    }

    /// Sets the `store` item from the vardir's health.
    pub(super) fn store_item(&mut self, now: Now, fx: &mut Effects) {
        let mut problems: Vec<String> = self.store_notices.clone();
        if let Some((since, err)) = &self.status.failing {
            let free = self.status.free.map_or("?".into(), |b| b.to_string());
            problems.push(format!(
                "history.db cannot be written since {} ({err}); vardir {} has {free} bytes free; \
                 {} events held in memory",
                crate::clock::fmt_time(*since),
                self.vardir.display(),
                self.status.held
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
        self.set_item(crate::event::builtin::STORE, value, &level, &msg, now, fx);
    }

    /// STATE lines about the outbox and the vardir.
    pub(super) fn store_state_lines(&self, out: &mut String) {
        if !self.history_open {
            let _ = writeln!(out, "-- history.db starting (the store thread opens it)");
        }
        let s = &self.status;
        let held = s.held;
        let _ = write!(out, "-- outbox {} queued events", s.outbox);
        if held > 0 {
            let _ = write!(out, " (+{held} held in memory: history.db refuses writes)");
        }
        out.push('\n');
        let queued = self.store.queued();
        if queued > 0 {
            let _ = writeln!(out, "-- store queue {queued} requests wait for history.db");
        }
        if let Some((since, err)) = &s.failing {
            let free = s.free.map_or("?".into(), |b| b.to_string());
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

    /// Asks the store thread for the next EVENTS batch, unless a batch is
    /// already asked for or in flight (its answer asks again).
    pub(super) fn send_events(&mut self, _now: Now, _fx: &mut Effects) {
        if self.outbox.want_batch() {
            self.store.send(StoreReq::Batch { limit: EVENTS_BATCH });
        }
    }

    pub(super) fn on_events_answer(
        &mut self,
        ids: Vec<String>,
        r: crate::session::CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        self.outbox.answered();
        match r.and_then(|t| crate::command::parse_answer(&t)) {
            Ok(_) => {
                self.events_backoff.ok();
                // Deleted after the server's ok; the next batch is read
                // after the delete, so these are not sent again.
                self.store.send(StoreReq::Ack(ids));
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

/// A round's samples, or none (and how many were dropped) when the store
/// thread already has [`MAX_QUEUED`] requests waiting.
fn shed_when_full(vals: Vec<(String, f64)>, queued: usize) -> (Vec<(String, f64)>, u64) {
    if queued >= MAX_QUEUED {
        (Vec::new(), vals.len() as u64)
    } else {
        (vals, 0)
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

    #[test]
    fn a_full_store_queue_sheds_samples_and_counts_them_14() {
        let vals = || vec![("a".to_string(), 1.0), ("b".to_string(), 2.0)];
        assert_eq!(shed_when_full(vals(), MAX_QUEUED - 1), (vals(), 0));
        assert_eq!(shed_when_full(vals(), MAX_QUEUED), (Vec::new(), 2));
    }

    #[test]
    fn bad_level_is_sick_or_the_middle() {
        assert_eq!(store_bad_level(&crate::work::default_levels()), "sick");
        let lv = |n: &str| crate::work::model::Level { name: n.into(), long: n.into() };
        assert_eq!(store_bad_level(&[lv("ok"), lv("meh"), lv("bad")]), "meh");
    }
}
