//! The notifier's decisions, as a pure state machine: the `Model` (alert
//! states, silences, host states, flap and storm counters, the work's
//! rules, people and noise settings) takes one input (an event, a tick, a
//! delivery outcome, an operator's ACK or SILENCE, a new work) and `now`,
//! updates itself and returns the `Write`s that make it durable: alerts to
//! store or drop, deliveries to queue or withdraw, storm digests to merge.
//! No SQLite, no clock, no log: what the outbox knows that a decision
//! needs (which queued rows never left, which users have held rows) comes
//! in as `Facts`, read by the apply layer (`engine/apply.rs`) beforehand.
//! The clock's decisions (reminders, settling, digests, the dead-man's
//! switch, delivery outcomes) are in `tick.rs`.

use super::super::alerts::{AlertState, Key};
use super::super::message::{self, compose, Change, Kind, Message};
use super::super::noise::{Flaps, Storms};
use super::super::rules::{self, level_index};
use super::super::{outbox, retarget, storm_counted};
use crate::event::Event;
use crate::work::model::{Intervals, Level, ServerWork};
use std::collections::{BTreeMap, BTreeSet, HashMap};

mod tick;

/// Host states in which a host (or a parent) is not known to be fine yet:
/// its children wait for the verdict before alerting.
const UNSETTLED: [&str; 3] = ["late", "unreachable", "down"];

/// One durable consequence of a decision, applied in order in the store
/// thread's transaction.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Queue a delivery (`held`: kept for the user's storm digest).
    /// `first_of`: this is the episode's first row of that alert on that
    /// channel; the apply layer records the row's id in the alert's
    /// `queued` (`Model::queued_row`) before the alert is saved.
    Enqueue {
        key: String,
        channel: String,
        user: String,
        /// Boxed: a message is most of a `Write`'s size.
        msg: Box<Message>,
        held: bool,
        first_of: Option<Key>,
    },
    /// Remove an episode's rows on a channel from row `from` on: they never
    /// left (a `Facts::withdrawable` row), the alert recovered meanwhile.
    Withdraw {
        host: String,
        item: String,
        channel: String,
        from: i64,
    },
    /// Store the alert as the model has it, or delete it when the model
    /// no longer keeps it (back to best, nothing owed).
    SaveAlert(Key),
    SaveSilence {
        host: String,
        item: String,
        until: f64,
    },
    /// Silences ended at this time are dropped.
    DropSilences(f64),
    /// Merge the user's held rows into one digest per channel.
    Digest {
        user: String,
    },
    /// A delivery arrived: its row goes.
    Delivered(i64),
    /// A delivery failed a try: retry with backoff, or give up after the
    /// channel's tries; a retried row follows its user after a work change.
    FailedTry {
        id: i64,
        error: String,
    },
    /// Pending and held rows follow their users to the work's channels.
    RetargetOutbox,
    /// Nothing sent about this alert now, and why (for tests and the log).
    Quiet {
        key: Key,
        why: Why,
    },
    /// A line for the log.
    Note(String),
}

/// Why an alert's change sends nothing now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    Silenced,
    /// Folded into the alert of this down parent.
    SuppressedBy(String),
    /// Waits until then for its parent's (or its own host's) verdict.
    WaitParent,
    /// Same level again or lower than the one already told.
    AlreadyTold,
    /// No rule routes it at this level.
    NoRoute,
}

/// What the outbox knows that a decision needs, read just before it.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// Queued alert rows (ids from `AlertState::queued`) that were never
    /// handed out and wait for no older row of their pair (`outbox::withdrawable`).
    pub withdrawable: BTreeSet<i64>,
    /// Users with held rows (for `tick`: rows a previous process left).
    pub held_users: Vec<String>,
}

/// What a child's parent says about alerting now.
enum ParentVerdict {
    /// No parent in the way: decide on the alert itself.
    Go,
    /// The parent is down: the child goes into the parent's alert.
    Suppress(String),
    /// The parent (or the child's own reachability) is not settled: wait.
    Wait(f64),
}

/// The notifier's whole in-memory state and settings.
#[derive(Default)]
pub struct Model {
    pub(super) work: ServerWork,
    levels: Vec<String>,
    renotify: f64,
    deadman_every: f64,
    /// How long a child waits for its parent's verdict (one heartbeat + grace).
    parent_wait: f64,
    dashboard: Option<String>,
    pub(super) alerts: BTreeMap<Key, AlertState>,
    pub(super) silences: BTreeMap<Key, f64>,
    host_states: BTreeMap<String, String>,
    /// Parent FQDN -> children suppressed into its alerts.
    children: BTreeMap<String, BTreeSet<String>>,
    flaps: Flaps,
    pub(super) storms: Storms,
    pub(super) next_deadman: Option<f64>,
    pub(super) deadman_inflight: bool,
    pub(super) deadman_error: Option<String>,
    /// Indexes of the work, rebuilt at reload: per-event lookups stay O(1)
    /// for a 10,000-host work (an outage is 10,000 events).
    rule_hosts: rules::RuleHosts,
    tags: HashMap<String, String>,
    /// Hosts that are some host's parent.
    parents: BTreeSet<String>,
}

impl Model {
    /// A model from what `server.db` kept (alerts, silences), before its
    /// first `reload`.
    pub fn new(alerts: BTreeMap<Key, AlertState>, silences: BTreeMap<Key, f64>) -> Model {
        Model { alerts, silences, ..Default::default() }
    }

    /// A new work: keeps what is known (alerts, host states, storms,
    /// flaps, deliveries in flight) and moves what is owed to the users
    /// and channels of the new work. `dashboard`: the pagemaker's URL; the
    /// work's `dashboard` URL wins over it.
    pub fn reload(
        &mut self,
        work: &ServerWork,
        levels: &[Level],
        intervals: &Intervals,
        dashboard: Option<String>,
    ) -> Vec<Write> {
        if work.deadman_url.is_none() {
            self.next_deadman = None;
        } else if self.next_deadman.is_none() {
            self.next_deadman = Some(0.0);
        }
        self.work = work.clone();
        self.rule_hosts = rules::RuleHosts::new(work);
        self.tags = work.hosts.iter().map(|h| (h.host.clone(), h.tag.clone())).collect();
        self.parents = work.parents.values().cloned().collect();
        self.levels = levels.iter().map(|l| l.name.clone()).collect();
        self.renotify = intervals.renotify;
        self.deadman_every = intervals.deadman;
        self.parent_wait = intervals.heartbeat + intervals.grace;
        self.dashboard = work.dashboard_url.clone().or(dashboard);
        // Level indexes follow the names (a work may add or remove levels).
        for a in self.alerts.values_mut() {
            a.level =
                if a.level_name.is_empty() { 0 } else { level_index(&self.levels, &a.level_name) };
            a.sent_level = a.sent_level.map(|_| level_index(&self.levels, &a.sent_level_name));
        }
        self.children.clear();
        for a in self.alerts.values() {
            if let Some(p) = &a.suppressed_by {
                self.children.entry(p.clone()).or_default().insert(a.host.clone());
            }
        }
        let mut out = vec![Write::RetargetOutbox];
        let mut notes = Vec::new();
        for (k, a) in self.alerts.iter_mut() {
            if retarget::retarget_alert(&self.work, a, &mut notes) {
                out.push(Write::SaveAlert(k.clone()));
            }
        }
        out.extend(notes.into_iter().map(Write::Note));
        out
    }

    /// The apply layer's answer to `Write::Enqueue { first_of: Some(key) }`:
    /// the row's id, so a recovery before it leaves can withdraw it.
    pub fn queued_row(&mut self, key: &Key, channel: &str, id: i64) {
        if let Some(a) = self.alerts.get_mut(key) {
            a.queued.insert(channel.to_string(), id);
        }
    }

    /// The queued rows a recovery of this alert would withdraw if they
    /// never left: the ids `Facts::withdrawable` must be asked about.
    pub fn withdraw_candidates(&self, key: &Key) -> Vec<(String, i64)> {
        let Some(a) = self.alerts.get(key) else { return Vec::new() };
        a.queued
            .iter()
            .filter(|(c, _)| a.notified.contains(*c))
            .map(|(c, id)| (c.clone(), *id))
            .collect()
    }

    /// The candidates of an event: only a best-level event withdraws.
    pub fn event_withdraw_candidates(&self, ev: &Event) -> Vec<(String, i64)> {
        if level_index(&self.levels, &ev.new_level) != 0 {
            return Vec::new();
        }
        self.withdraw_candidates(&(ev.host.clone(), ev.item.clone()))
    }

    /// Whether the model keeps an alert state (else its stored row goes).
    pub fn alert(&self, key: &Key) -> Option<&AlertState> {
        self.alerts.get(key)
    }

    fn route(&self, host: &str, item: &str, level: usize) -> Vec<rules::Route> {
        rules::route_with(&self.work, &self.rule_hosts, &self.levels, host, item, level)
    }

    pub(super) fn level_name(&self, i: usize) -> String {
        self.levels.get(i).cloned().unwrap_or_else(|| format!("level{i}"))
    }

    pub(super) fn silenced(&self, host: &str, item: &str, now: f64) -> bool {
        if self.silences.is_empty() {
            return false; // the common case, without building keys
        }
        [(host.to_string(), item.to_string()), (host.to_string(), String::new())]
            .iter()
            .any(|k| self.silences.get(k).is_some_and(|&u| u > now))
    }

    fn host_state(&self, host: &str) -> &str {
        self.host_states.get(host).map(String::as_str).unwrap_or("up")
    }

    fn down_parent(&self, host: &str) -> Option<String> {
        let p = self.work.parents.get(host)?;
        (self.host_state(p) == "down").then(|| p.clone())
    }

    /// Whether a child may alert now. A down parent takes its children's
    /// alerts; a parent not settled yet (late), or a child whose own
    /// heartbeat is in trouble, waits up to one heartbeat + grace for the
    /// parent's verdict (again and again while the parent stays late).
    fn parent_verdict(&self, a: &AlertState, now: f64) -> ParentVerdict {
        let Some(p) = self.work.parents.get(&a.host) else { return ParentVerdict::Go };
        let ps = self.host_state(p);
        if ps == "down" {
            return ParentVerdict::Suppress(p.clone());
        }
        if a.sent_level.is_some() {
            return ParentVerdict::Go; // already told: escalations go out
        }
        match a.wait_parent_until {
            Some(t) if t > now => ParentVerdict::Wait(t),
            _ if UNSETTLED.contains(&ps) => ParentVerdict::Wait(now + self.parent_wait),
            Some(_) => ParentVerdict::Go,
            None if UNSETTLED.contains(&self.host_state(&a.host)) => {
                ParentVerdict::Wait(now + self.parent_wait)
            }
            None => ParentVerdict::Go,
        }
    }

    fn tag(&self, host: &str) -> String {
        message::short_host(host, self.tags.get(host).map(String::as_str))
    }

    fn message(&self, a: &AlertState, kind: Kind, old: &str, time: f64, text: &str) -> Message {
        let kids: Vec<String> =
            self.children.get(&a.host).map(|s| s.iter().cloned().collect()).unwrap_or_default();
        let hs = self.host_states.get(&a.host).cloned().unwrap_or_else(|| "unknown".into());
        compose(&Change {
            kind,
            host: &a.host,
            tag: &self.tag(&a.host),
            item: &a.item,
            old,
            new: &a.level_name,
            value: a.value,
            time,
            since: a.since,
            host_state: &hs,
            text,
            dashboard: self.dashboard.as_deref(),
            suppressed: &kids,
        })
    }

    /// Queues `msg` to each (channel, user), in order; held when the user
    /// is in a storm, except on Alertmanager channels: the Alertmanager
    /// groups by itself and each of its alerts must fire and resolve on
    /// its own.
    fn send(&mut self, key: &str, to: &[(String, String)], msg: &Message, now: f64) -> Vec<Write> {
        let mut out = Vec::with_capacity(to.len());
        let mut held: BTreeMap<&str, bool> = BTreeMap::new();
        for (ch, user) in to {
            let h = *held.entry(user).or_insert_with(|| {
                storm_counted(msg.kind)
                    && self.storms.hold(
                        user,
                        now,
                        self.work.noise.storm_events,
                        self.work.noise.storm_window,
                    )
            });
            let am = rules::channel(&self.work, ch).is_some_and(|c| c.kind == "alertmanager");
            out.push(Write::Enqueue {
                key: key.to_string(),
                channel: ch.clone(),
                user: user.clone(),
                msg: Box::new(msg.clone()),
                held: h && !am,
                first_of: None,
            });
        }
        out
    }

    /// A fitness change. `host_state` is the host's state after it (`up`,
    /// `down`, `late`, ...); it drives parent suppression. Nothing to write
    /// (an empty list) for the common case of a big fleet: a best-level
    /// event for an item with no alert state, of a host not coming back
    /// from an unsettled state.
    pub fn on_event(&mut self, ev: &Event, host_state: &str, now: f64, f: &Facts) -> Vec<Write> {
        let quiet = level_index(&self.levels, &ev.new_level) == 0
            && !self.alerts.contains_key(&(ev.host.clone(), ev.item.clone()))
            && !UNSETTLED.contains(&host_state);
        let was = self.host_states.insert(ev.host.clone(), host_state.to_string());
        let was_down = was.as_deref() == Some("down");
        let was_unsettled = was.as_deref().is_some_and(|w| UNSETTLED.contains(&w));
        if quiet && !was_unsettled {
            return Vec::new();
        }
        let mut out = Vec::new();
        if host_state == "down" && !was_down {
            self.suppress_children(&ev.host, &mut out);
        }
        let key = (ev.host.clone(), ev.item.clone());
        let mut a = self.alerts.remove(&key).unwrap_or_else(|| AlertState {
            host: ev.host.clone(),
            item: ev.item.clone(),
            level_name: self.level_name(0),
            ..Default::default()
        });
        let lvl = level_index(&self.levels, &ev.new_level);
        let prev_name = std::mem::replace(&mut a.level_name, self.level_name(lvl));
        let prev = std::mem::replace(&mut a.level, lvl);
        a.value = ev.new_value;
        if prev == 0 && lvl > 0 {
            a.since = ev.time;
        }
        let noise = self.work.noise.clone();
        if lvl != prev
            && self.flaps.change(key.clone(), now, noise.flap_changes, noise.flap_window)
            && !a.flapping
        {
            a.flapping = true;
            let mut to: Vec<(String, String)> =
                a.users.iter().map(|(c, u)| (c.clone(), u.clone())).collect();
            if to.is_empty() {
                let worst = lvl.max(prev);
                to = self
                    .route(&a.host, &a.item, worst)
                    .into_iter()
                    .map(|r| (r.channel, r.user))
                    .collect();
            }
            let msg = self.message(&a, Kind::Flapping, &prev_name, ev.time, &ev.message);
            out.extend(self.send(&outbox::alert_key(&a.host, &a.item), &to, &msg, now));
            // They were told something is wrong: they get the recovery too
            // (an Alertmanager alert would fire forever otherwise).
            for (c, u) in to {
                a.notified.insert(c.clone());
                a.users.insert(c, u);
            }
        }
        if !a.flapping {
            self.evaluate(&mut a, &prev_name, ev.time, &ev.message, now, f, &mut out);
        }
        self.alerts.insert(key.clone(), a);
        out.push(Write::SaveAlert(key));
        if was_down && host_state != "down" {
            self.release_children(&ev.host, now, &mut out);
        }
        out
    }

    /// A parent just went down: its children that have not been told
    /// anything yet are suppressed into its alert instead of alerting on
    /// their own; those already told stop reminding while it is down.
    fn suppress_children(&mut self, parent: &str, out: &mut Vec<Write>) {
        if !self.parents.contains(parent) {
            return; // no host has it as parent: nothing to look through
        }
        for (k, a) in self.alerts.iter_mut() {
            let child_of = self.work.parents.get(&a.host).map(String::as_str) == Some(parent);
            if child_of && a.alerting() && a.sent_level.is_none() {
                a.wait_parent_until = None;
                a.suppressed_by = Some(parent.to_string());
                self.children.entry(parent.to_string()).or_default().insert(a.host.clone());
                out.push(Write::SaveAlert(k.clone()));
            }
        }
    }

    /// A parent is no longer down: its suppressed children wait one more
    /// heartbeat + grace (they come back with it, their heartbeats a moment
    /// later), then a child still bad alerts on its own and one that
    /// recovered meanwhile gets nothing.
    fn release_children(&mut self, parent: &str, now: f64, out: &mut Vec<Write>) {
        let had = self.children.remove(parent).is_some();
        if !had && !self.parents.contains(parent) {
            return; // nobody's parent, nobody suppressed by it
        }
        let until = now + self.parent_wait;
        for (k, c) in self.alerts.iter_mut() {
            if c.suppressed_by.as_deref() == Some(parent) {
                c.suppressed_by = None;
                c.wait_parent_until = Some(until);
                out.push(Write::SaveAlert(k.clone()));
            }
        }
    }

    /// Decides what a (non-flapping) alert's current level means to send.
    #[allow(clippy::too_many_arguments)] // the alert, its change, the clock, what the outbox knows
    fn evaluate(
        &mut self,
        a: &mut AlertState,
        old: &str,
        time: f64,
        text: &str,
        now: f64,
        f: &Facts,
        out: &mut Vec<Write>,
    ) {
        let key = outbox::alert_key(&a.host, &a.item);
        let k = (a.host.clone(), a.item.clone());
        if a.level == 0 {
            // Alerts that never left are withdrawn: no alert, no recovery.
            let unsent: Vec<(String, i64)> = a
                .queued
                .iter()
                .filter(|(c, id)| a.notified.contains(*c) && f.withdrawable.contains(id))
                .map(|(c, id)| (c.clone(), *id))
                .collect();
            for (c, from) in unsent {
                a.notified.remove(&c);
                out.push(Write::Withdraw {
                    host: a.host.clone(),
                    item: a.item.clone(),
                    channel: c,
                    from,
                });
            }
            // Resolve always follows a sent alert, whatever happened between.
            if !a.notified.is_empty() {
                let msg = self.message(a, Kind::Recovery, old, time, text);
                let to: Vec<(String, String)> = a
                    .notified
                    .iter()
                    .map(|c| (c.clone(), a.users.get(c).cloned().unwrap_or_default()))
                    .collect();
                out.extend(self.send(&key, &to, &msg, now));
            }
            a.notified.clear();
            a.users.clear();
            a.queued.clear();
            a.wait_parent_until = None;
            a.sent_level = None;
            a.acked = false;
            if let Some(p) = a.suppressed_by.take() {
                if let Some(s) = self.children.get_mut(&p) {
                    s.remove(&a.host);
                }
            }
            return;
        }
        if self.silenced(&a.host, &a.item, now) {
            // The end of the silence evaluates it again.
            out.push(Write::Quiet { key: k, why: Why::Silenced });
            return;
        }
        match self.parent_verdict(a, now) {
            ParentVerdict::Suppress(p) => {
                if a.sent_level.is_none() {
                    self.children.entry(p.clone()).or_default().insert(a.host.clone());
                    a.suppressed_by = Some(p.clone());
                }
                a.wait_parent_until = None;
                out.push(Write::Quiet { key: k, why: Why::SuppressedBy(p) });
                return;
            }
            ParentVerdict::Wait(t) => {
                a.wait_parent_until = Some(t);
                out.push(Write::Quiet { key: k, why: Why::WaitParent });
                return;
            }
            ParentVerdict::Go => {}
        }
        a.wait_parent_until = None;
        if a.sent_level.is_some_and(|s| a.level <= s) {
            // Same level again or a de-escalation: recorded only.
            out.push(Write::Quiet { key: k, why: Why::AlreadyTold });
            return;
        }
        let routes = self.route(&a.host, &a.item, a.level);
        if routes.is_empty() {
            out.push(Write::Quiet { key: k, why: Why::NoRoute });
            return;
        }
        let msg = self.message(a, Kind::Alert, old, time, text);
        let to: Vec<(String, String)> = routes.into_iter().map(|r| (r.channel, r.user)).collect();
        let mut sends = self.send(&key, &to, &msg, now);
        for ((c, u), w) in to.into_iter().zip(sends.iter_mut()) {
            if a.notified.insert(c.clone()) {
                if let Write::Enqueue { first_of, .. } = w {
                    *first_of = Some(k.clone());
                }
            }
            a.users.insert(c, u);
        }
        out.extend(sends);
        a.sent_level = Some(a.level);
        a.sent_level_name = a.level_name.clone();
        a.acked = false;
        a.last_sent = now;
    }

    /// `SILENCE host [item] until`: mutes new alerts and reminders (a
    /// resolve for an alert already sent still goes out). When it ends,
    /// whatever is still bad is alerted.
    pub fn silence(&mut self, host: &str, item: Option<&str>, until: f64) -> Vec<Write> {
        let item = item.unwrap_or("").to_string();
        self.silences.insert((host.to_string(), item.clone()), until);
        vec![Write::SaveSilence { host: host.to_string(), item, until }]
    }

    /// `ACK host item`: stops reminders until the alert escalates or
    /// recovers. None when there is no such alert.
    pub fn ack(&mut self, host: &str, item: &str) -> Option<Vec<Write>> {
        let key = (host.to_string(), item.to_string());
        let a = self.alerts.get_mut(&key).filter(|a| a.alerting())?;
        a.acked = true;
        Some(vec![Write::SaveAlert(key)])
    }
}

#[cfg(test)]
mod tests;
