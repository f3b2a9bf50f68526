//! The `Notifier`'s clock: silences that end, children whose wait for
//! their parent is over, flapping that settles, reminders, storm digests,
//! the dead-man's switch, and due deliveries handed out as jobs; then the
//! outcomes of those jobs.

use super::super::alerts::{self, AlertState, Key};
use super::super::message::{self, Kind, Message};
use super::super::rules;
use super::super::{outbox, NotifyDone, NotifyJob, DEADMAN_ID};
use super::Notifier;
use crate::work::model::Channel;
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

/// Most jobs handed out by one `tick`.
const BATCH: usize = 64;

impl Notifier {
    /// Whether an alert reminds at all (time aside): told, not acked, not
    /// flapping, not folded into a parent's alert, not silenced.
    pub(super) fn reminds(&self, a: &AlertState, now: f64) -> bool {
        a.alerting()
            && a.sent_level.is_some()
            && !a.acked
            && !a.flapping
            && a.suppressed_by.is_none()
            && self.renotify > 0.0
            && !self.silenced(&a.host, &a.item, now)
    }

    /// Where a reminder goes: the channels that got the alert and that the
    /// rules still route to at the current level. None while the host's
    /// parent is down (its alert speaks for the child).
    fn reminder_to(&self, a: &AlertState) -> Option<Vec<(String, String)>> {
        if self.down_parent(&a.host).is_some() {
            return None;
        }
        let now: BTreeSet<String> =
            self.route(&a.host, &a.item, a.level).into_iter().map(|r| r.channel).collect();
        let to: Vec<(String, String)> = a
            .users
            .iter()
            .filter(|(c, _)| now.contains(*c))
            .map(|(c, u)| (c.clone(), u.clone()))
            .collect();
        (!to.is_empty()).then_some(to)
    }

    /// Renotifies, settles flapping items, re-evaluates alerts whose
    /// silence or parent wait ended, flushes digests, pings the dead-man's
    /// switch and hands out due deliveries.
    pub fn tick(&mut self, conn: &Connection, now: f64) -> rusqlite::Result<Vec<NotifyJob>> {
        let tx = crate::server::db::Savepoint::new(conn)?;
        let ended: Vec<Key> =
            self.silences.iter().filter(|(_, &u)| u <= now).map(|(k, _)| k.clone()).collect();
        self.silences.retain(|_, u| *u > now);
        alerts::drop_expired_silences(&tx, now)?;
        let keys: Vec<Key> = self.alerts.keys().cloned().collect();
        for k in keys {
            let Some(mut a) = self.alerts.remove(&k) else { continue };
            let mut dirty = false;
            let old =
                if a.sent_level.is_some() { a.sent_level_name.clone() } else { self.level_name(0) };
            let silence_ended =
                ended.iter().any(|(h, i)| *h == a.host && (i.is_empty() || *i == a.item));
            if a.flapping && self.flaps.settled(&k, now, self.work.noise.flap_window) {
                a.flapping = false;
                self.flaps.forget(&k);
                self.evaluate(&tx, &mut a, &old, now, "", now)?;
                dirty = true;
            } else if a.flapping {
                // Nothing is told about a flapping item until it settles.
            } else if silence_ended && a.alerting() && a.sent_level.is_none_or(|s| a.level > s) {
                // Whatever is still bad (or worse) when the silence ends is told now.
                self.evaluate(&tx, &mut a, &old, now, "still bad when the silence ended", now)?;
                dirty = true;
            } else if a.wait_parent_until.is_some_and(|t| t <= now) {
                self.evaluate(&tx, &mut a, &old, now, "", now)?;
                dirty = true;
            } else if self.reminds(&a, now) && now - a.last_sent >= self.renotify {
                // Below the rules' level, or its parent is down: no
                // reminder; look again after another interval.
                if let Some(to) = self.reminder_to(&a) {
                    let msg = self.message(&a, Kind::Reminder, &a.level_name, now, "");
                    self.send(&tx, &outbox::alert_key(&a.host, &a.item), &to, &msg, now)?;
                }
                a.last_sent = now;
                dirty = true;
            }
            if dirty {
                alerts::save(&tx, &a)?;
            }
            if a.alerting() || !a.notified.is_empty() {
                self.alerts.insert(k, a);
            }
        }
        self.flush_digests(&tx, now)?;
        let mut jobs = Vec::new();
        for d in outbox::take_due(&tx, now, BATCH)? {
            match rules::channel(&self.work, &d.channel).cloned() {
                Some(ch) => jobs.push(NotifyJob { id: d.id, channel: ch, msg: d.msg, now }),
                None => outbox::fail_now(&tx, d.id, "channel no longer in the work")?,
            }
        }
        tx.commit()?;
        if let (Some(url), Some(at)) = (&self.work.deadman_url, self.next_deadman) {
            if at <= now && !self.deadman_inflight {
                self.deadman_inflight = true;
                self.next_deadman = Some(now + self.deadman_every.max(1.0));
                let ch = Channel {
                    name: "deadman".into(),
                    kind: "webhook".into(),
                    target: url.clone(),
                    options: BTreeMap::from([("method".to_string(), "GET".to_string())]),
                };
                let mut msg = message::digest(&[], now);
                msg.kind = Kind::Deadman;
                msg.subject = "[hbmon] dead-man's switch".into();
                jobs.push(NotifyJob { id: DEADMAN_ID, channel: ch, msg, now });
            }
        }
        self.refresh(conn)?;
        Ok(jobs)
    }

    /// Digests: storms that ended, and held rows left by a previous process.
    fn flush_digests(&mut self, tx: &Connection, now: f64) -> rusqlite::Result<()> {
        let mut users: BTreeSet<String> = self.storms.ended(now).into_iter().collect();
        for u in outbox::held_users(tx)? {
            if !self.storms.until.contains_key(&u) {
                users.insert(u);
            }
        }
        for u in users {
            let mut by_channel: BTreeMap<String, (Vec<i64>, Vec<Message>)> = BTreeMap::new();
            for (id, ch, m) in outbox::held_of(tx, &u)? {
                let e = by_channel.entry(ch).or_default();
                e.0.push(id);
                e.1.push(m);
            }
            for (ch, (ids, msgs)) in by_channel {
                let d = message::digest(&msgs, now);
                outbox::enqueue(tx, &format!("digest:{u}"), &ch, &u, &d, false, now)?;
                for id in ids {
                    outbox::delivered(tx, id)?;
                }
            }
        }
        Ok(())
    }

    /// Tries a delivery gets on `channel`: its `retries=N`, else the default.
    fn max_tries(&self, channel: &str) -> u32 {
        rules::channel(&self.work, channel)
            .and_then(|c| c.options.get("retries"))
            .and_then(|r| r.parse().ok())
            .unwrap_or(outbox::MAX_TRIES)
    }

    /// Records a delivery's outcome: done, or a retry with backoff, or
    /// given up (kept as failed for STATE and DUMP).
    pub fn on_done(
        &mut self,
        conn: &Connection,
        done: NotifyDone,
        now: f64,
    ) -> rusqlite::Result<()> {
        if done.id == DEADMAN_ID {
            self.deadman_inflight = false;
            self.deadman_error = done.result.err();
            return Ok(());
        }
        match done.result {
            Ok(()) => outbox::delivered(conn, done.id)?,
            Err(e) => {
                let max = |ch: &str| self.max_tries(ch);
                if outbox::failed_try(conn, done.id, &e, now, max)? {
                    log::error!("notify: delivery {} given up: {e}", done.id);
                } else {
                    log::warn!("notify: delivery {} failed: {e}", done.id);
                    // In flight at a work change: it follows its user now.
                    for note in super::super::retarget::retarget_one(conn, &self.work, done.id)? {
                        log::warn!("notify: {note}");
                    }
                }
            }
        }
        self.refresh(conn)
    }

    /// When `tick` next has something to do.
    pub fn next_deadline(&self) -> Option<f64> {
        let mut t: Vec<f64> = Vec::new();
        t.extend(self.next_outbox);
        t.extend(self.storms.until.values().copied());
        if !self.deadman_inflight {
            t.extend(self.next_deadman);
        }
        t.extend(self.silences.values().copied());
        for (k, a) in &self.alerts {
            if a.flapping {
                t.extend(self.flaps.settles_at(k, self.work.noise.flap_window));
                continue;
            }
            t.extend(a.wait_parent_until);
            // Every stored silence is still on (tick drops the ended ones),
            // so a silenced alert's reminders wait for its end (above).
            if self.reminds(a, f64::NEG_INFINITY) {
                t.push(a.last_sent + self.renotify);
            }
        }
        t.into_iter().reduce(f64::min)
    }
}
