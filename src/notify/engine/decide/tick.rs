//! The model's clock, decided: silences that end, children whose wait for
//! their parent is over, flapping that settles, reminders, storm digests,
//! the dead-man's switch; then the outcomes of deliveries and when the
//! next tick is owed. Pure, like the rest of `decide/`.

use super::super::super::alerts::{AlertState, Key};
use super::super::super::message::{self, Kind};
use super::super::super::{outbox, rules, NotifyDone, NotifyJob, DEADMAN_ID};
use super::{Facts, Model, Write};
use crate::work::model::Channel;
use std::collections::{BTreeMap, BTreeSet};

impl Model {
    /// Whether an alert reminds at all (time aside): told, not acked, not
    /// flapping, not folded into a parent's alert, not silenced.
    pub(in super::super) fn reminds(&self, a: &AlertState, now: f64) -> bool {
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

    /// The alerts `tick` may evaluate at the best level (a flapping item
    /// that settles there): the queued rows `Facts::withdrawable` is asked about.
    pub fn tick_withdraw_candidates(&self) -> Vec<(Key, String, i64)> {
        let mut out = Vec::new();
        for (k, _) in self.alerts.iter().filter(|(_, a)| !a.alerting() && !a.queued.is_empty()) {
            out.extend(self.withdraw_candidates(k).into_iter().map(|(c, id)| (k.clone(), c, id)));
        }
        out
    }

    /// Renotifies, settles flapping items, re-evaluates alerts whose
    /// silence or parent wait ended, and merges the digests of storms
    /// that ended (and of held rows a previous process left).
    pub fn tick(&mut self, now: f64, f: &Facts) -> Vec<Write> {
        let mut out = Vec::new();
        let ended: Vec<Key> =
            self.silences.iter().filter(|(_, &u)| u <= now).map(|(k, _)| k.clone()).collect();
        self.silences.retain(|_, u| *u > now);
        out.push(Write::DropSilences(now));
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
                self.evaluate(&mut a, &old, now, "", now, f, &mut out);
                dirty = true;
            } else if a.flapping {
                // Nothing is told about a flapping item until it settles.
            } else if silence_ended && a.alerting() && a.sent_level.is_none_or(|s| a.level > s) {
                // Whatever is still bad (or worse) when the silence ends is told now.
                let why = "still bad when the silence ended";
                self.evaluate(&mut a, &old, now, why, now, f, &mut out);
                dirty = true;
            } else if a.wait_parent_until.is_some_and(|t| t <= now) {
                self.evaluate(&mut a, &old, now, "", now, f, &mut out);
                dirty = true;
            } else if self.reminds(&a, now) && now - a.last_sent >= self.renotify {
                // Below the rules' level, or its parent is down: no
                // reminder; look again after another interval.
                if let Some(to) = self.reminder_to(&a) {
                    let msg = self.message(&a, Kind::Reminder, &a.level_name, now, "");
                    out.extend(self.send(&outbox::alert_key(&a.host, &a.item), &to, &msg, now));
                }
                a.last_sent = now;
                dirty = true;
            }
            if a.alerting() || !a.notified.is_empty() {
                self.alerts.insert(k.clone(), a);
            }
            if dirty {
                out.push(Write::SaveAlert(k));
            }
        }
        let mut users: BTreeSet<String> = self.storms.ended(now).into_iter().collect();
        for u in &f.held_users {
            if !self.storms.until.contains_key(u) {
                users.insert(u.clone());
            }
        }
        out.extend(users.into_iter().map(|user| Write::Digest { user }));
        out
    }

    /// The job for a due row, or why it cannot go (its channel is gone).
    pub fn job(&self, d: outbox::Due, now: f64) -> Result<NotifyJob, (i64, &'static str)> {
        match rules::channel(&self.work, &d.channel) {
            Some(ch) => Ok(NotifyJob { id: d.id, channel: ch.clone(), msg: d.msg, now }),
            None => Err((d.id, "channel no longer in the work")),
        }
    }

    /// The dead-man's switch ping, when due and none is in flight.
    pub fn deadman(&mut self, now: f64) -> Option<NotifyJob> {
        let (Some(url), Some(at)) = (&self.work.deadman_url, self.next_deadman) else {
            return None;
        };
        if at > now || self.deadman_inflight {
            return None;
        }
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
        Some(NotifyJob { id: DEADMAN_ID, channel: ch, msg, now })
    }

    /// Tries a delivery gets on `channel`: its `retries=N`, else the default.
    pub fn max_tries(&self, channel: &str) -> u32 {
        rules::channel(&self.work, channel)
            .and_then(|c| c.options.get("retries"))
            .and_then(|r| r.parse().ok())
            .unwrap_or(outbox::MAX_TRIES)
    }

    /// A delivery's outcome: done, or a failed try. The dead-man's ping
    /// has no row: only the model notes it (nothing to write).
    pub fn on_done(&mut self, done: NotifyDone) -> Vec<Write> {
        if done.id == DEADMAN_ID {
            self.deadman_inflight = false;
            self.deadman_error = done.result.err();
            return Vec::new();
        }
        match done.result {
            Ok(()) => vec![Write::Delivered(done.id)],
            Err(error) => vec![Write::FailedTry { id: done.id, error }],
        }
    }

    /// When `tick` next has something to do, the outbox's own next
    /// pending row aside (`next_outbox`).
    pub fn next_deadline(&self, next_outbox: Option<f64>) -> Option<f64> {
        let mut t: Vec<f64> = Vec::new();
        t.extend(next_outbox);
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
