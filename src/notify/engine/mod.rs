//! The `Notifier`: alert state transitions, noise control decisions and the
//! outbox schedule. No sockets and no blocking: deliveries leave as jobs.
//! `tick` and the delivery outcomes live in `engine_tick.rs`, the views
//! (STATE, DUMP) and the operator verbs in `engine_view.rs`.

use super::alerts::{self, AlertState, Key};
use super::message::{self, compose, Change, Kind, Message};
use super::noise::{Flaps, Storms};
use super::rules::{self, level_index};
use super::{outbox, retarget, storm_counted};
use crate::event::Event;
use crate::work::model::{Intervals, Level, ServerWork};
use rusqlite::Connection;
use std::collections::{BTreeMap, BTreeSet};

mod tick;
mod view;

/// Host states in which a host (or a parent) is not known to be fine yet:
/// its children wait for the verdict before alerting.
const UNSETTLED: [&str; 3] = ["late", "unreachable", "down"];

pub struct Notifier {
    work: ServerWork,
    levels: Vec<String>,
    renotify: f64,
    deadman_every: f64,
    /// How long a child waits for its parent's verdict (one heartbeat + grace).
    parent_wait: f64,
    dashboard: Option<String>,
    alerts: BTreeMap<Key, AlertState>,
    silences: BTreeMap<Key, f64>,
    host_states: BTreeMap<String, String>,
    /// Parent FQDN -> children suppressed into its alerts.
    children: BTreeMap<String, BTreeSet<String>>,
    flaps: Flaps,
    storms: Storms,
    next_deadman: Option<f64>,
    deadman_inflight: bool,
    deadman_error: Option<String>,
    next_outbox: Option<f64>,
    counts: Vec<(String, i64)>,
    failures: Vec<outbox::Failure>,
    /// Set by the store thread: the outbox summaries (`refresh`) are read
    /// once per drain (`flush`) instead of after every change, which a
    /// 10,000-event outage would otherwise pay 10,000 times.
    lazy_refresh: bool,
    stale: bool,
    /// Indexes of the work, rebuilt at reload: per-event lookups stay O(1)
    /// for a 10,000-host work (an outage is 10,000 events).
    rule_hosts: rules::RuleHosts,
    tags: std::collections::HashMap<String, String>,
    /// Hosts that are some host's parent.
    parents: BTreeSet<String>,
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

impl Notifier {
    /// On a server.db with its schema (`server::db`): reloads alert states and silences, requeues
    /// deliveries that were in flight when the previous process died, and
    /// re-targets what is owed to the current work's users and channels.
    /// `dashboard`: the pagemaker's base URL, if the work has one; the
    /// work's `dashboard` URL (a public one, behind a proxy) wins over it.
    /// Without either, messages carry no link.
    pub fn new(
        conn: &Connection,
        work: &ServerWork,
        levels: &[Level],
        intervals: &Intervals,
        dashboard: Option<String>,
    ) -> rusqlite::Result<Notifier> {
        outbox::recover_inflight(conn)?;
        let mut n = Notifier {
            work: ServerWork::default(),
            levels: Vec::new(),
            renotify: 0.0,
            deadman_every: 0.0,
            parent_wait: 0.0,
            dashboard: None,
            alerts: alerts::load(conn)?,
            silences: alerts::load_silences(conn)?,
            host_states: BTreeMap::new(),
            children: BTreeMap::new(),
            flaps: Flaps::default(),
            storms: Storms::default(),
            next_deadman: work.deadman_url.as_ref().map(|_| 0.0),
            deadman_inflight: false,
            deadman_error: None,
            next_outbox: None,
            counts: Vec::new(),
            failures: Vec::new(),
            lazy_refresh: false,
            stale: false,
            rule_hosts: Default::default(),
            tags: Default::default(),
            parents: Default::default(),
        };
        n.reload(conn, work, levels, intervals, dashboard)?;
        Ok(n)
    }

    /// A new work: keeps what the notifier knows (alerts, host states,
    /// storms, flaps, deliveries in flight) and moves what is owed to the
    /// users and channels of the new work.
    pub fn reload(
        &mut self,
        conn: &Connection,
        work: &ServerWork,
        levels: &[Level],
        intervals: &Intervals,
        dashboard: Option<String>,
    ) -> rusqlite::Result<()> {
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
        let tx = crate::server::db::Savepoint::new(conn)?;
        for note in retarget::retarget(&tx, &self.work, &mut self.alerts)? {
            log::warn!("notify: {note}");
        }
        tx.commit()?;
        self.refresh(conn)
    }

    fn route(&self, host: &str, item: &str, level: usize) -> Vec<rules::Route> {
        rules::route_with(&self.work, &self.rule_hosts, &self.levels, host, item, level)
    }

    fn level_name(&self, i: usize) -> String {
        self.levels.get(i).cloned().unwrap_or_else(|| format!("level{i}"))
    }

    fn silenced(&self, host: &str, item: &str, now: f64) -> bool {
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

    /// Queues `msg` to each (channel, user); held when the user is in a
    /// storm, except on Alertmanager channels: the Alertmanager groups by
    /// itself and each of its alerts must fire and resolve on its own.
    fn send(
        &mut self,
        conn: &Connection,
        key: &str,
        to: &[(String, String)],
        msg: &Message,
        now: f64,
    ) -> rusqlite::Result<Vec<i64>> {
        let mut ids = Vec::with_capacity(to.len());
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
            ids.push(outbox::enqueue(conn, key, ch, user, msg, h && !am, now)?);
        }
        Ok(ids)
    }

    /// A fitness change. `host_state` is the host's state after it
    /// (`up`, `down`, `late`, ...); it drives parent suppression.
    pub fn on_event(
        &mut self,
        conn: &Connection,
        ev: &Event,
        host_state: &str,
        now: f64,
    ) -> rusqlite::Result<()> {
        // The common case of a big fleet, cheaply: a best-level event for an
        // item with no alert state, of a host not coming back from an
        // unsettled state, changes nothing here (no transaction, no refresh).
        let quiet = level_index(&self.levels, &ev.new_level) == 0
            && !self.alerts.contains_key(&(ev.host.clone(), ev.item.clone()))
            && !UNSETTLED.contains(&host_state);
        let was = self.host_states.insert(ev.host.clone(), host_state.to_string());
        let was_down = was.as_deref() == Some("down");
        let was_unsettled = was.as_deref().is_some_and(|w| UNSETTLED.contains(&w));
        if quiet && !was_unsettled {
            return Ok(());
        }
        let tx = crate::server::db::Savepoint::new(conn)?;
        if host_state == "down" && !was_down {
            self.suppress_children(&tx, &ev.host)?;
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
            self.send(&tx, &outbox::alert_key(&a.host, &a.item), &to, &msg, now)?;
            // They were told something is wrong: they get the recovery too
            // (an Alertmanager alert would fire forever otherwise).
            for (c, u) in to {
                a.notified.insert(c.clone());
                a.users.insert(c, u);
            }
        }
        if !a.flapping {
            self.evaluate(&tx, &mut a, &prev_name, ev.time, &ev.message, now)?;
        }
        alerts::save(&tx, &a)?;
        self.alerts.insert(key, a);
        if was_down && host_state != "down" {
            self.release_children(&tx, &ev.host, now)?;
        }
        tx.commit()?;
        self.refresh(conn)
    }

    /// A parent just went down: its children that have not been told
    /// anything yet are suppressed into its alert instead of alerting on
    /// their own; those already told stop reminding while it is down.
    fn suppress_children(&mut self, conn: &Connection, parent: &str) -> rusqlite::Result<()> {
        if !self.parents.contains(parent) {
            return Ok(()); // no host has it as parent: nothing to look through
        }
        for a in self.alerts.values_mut() {
            let child_of = self.work.parents.get(&a.host).map(String::as_str) == Some(parent);
            if child_of && a.alerting() && a.sent_level.is_none() {
                a.wait_parent_until = None;
                a.suppressed_by = Some(parent.to_string());
                self.children.entry(parent.to_string()).or_default().insert(a.host.clone());
                alerts::save(conn, a)?;
            }
        }
        Ok(())
    }

    /// A parent is no longer down: its suppressed children wait one more
    /// heartbeat + grace (they come back with it, their heartbeats a moment
    /// later), then a child still bad alerts on its own and one that
    /// recovered meanwhile gets nothing.
    fn release_children(
        &mut self,
        conn: &Connection,
        parent: &str,
        now: f64,
    ) -> rusqlite::Result<()> {
        let had = self.children.remove(parent).is_some();
        if !had && !self.parents.contains(parent) {
            return Ok(()); // nobody's parent, nobody suppressed by it
        }
        let until = now + self.parent_wait;
        for c in self.alerts.values_mut() {
            if c.suppressed_by.as_deref() == Some(parent) {
                c.suppressed_by = None;
                c.wait_parent_until = Some(until);
                alerts::save(conn, c)?;
            }
        }
        Ok(())
    }

    /// Decides what a (non-flapping) alert's current level means to send.
    fn evaluate(
        &mut self,
        conn: &Connection,
        a: &mut AlertState,
        old: &str,
        time: f64,
        text: &str,
        now: f64,
    ) -> rusqlite::Result<()> {
        let key = outbox::alert_key(&a.host, &a.item);
        if a.level == 0 {
            // Alerts that never left are withdrawn: no alert, no recovery.
            let unsent: Vec<(String, i64)> = a
                .queued
                .iter()
                .filter(|(c, _)| a.notified.contains(*c))
                .map(|(c, id)| (c.clone(), *id))
                .collect();
            for (c, from) in &unsent {
                let Some(n) = outbox::withdraw(conn, &key, c, *from)? else { continue };
                log::info!(
                    "notify: {} {} recovered before its alert left: {n} withdrawn from {c}",
                    a.host,
                    a.item
                );
                a.notified.remove(c);
            }
            // Resolve always follows a sent alert, whatever happened between.
            if !a.notified.is_empty() {
                let msg = self.message(a, Kind::Recovery, old, time, text);
                let to: Vec<(String, String)> = a
                    .notified
                    .iter()
                    .map(|c| (c.clone(), a.users.get(c).cloned().unwrap_or_default()))
                    .collect();
                self.send(conn, &key, &to, &msg, now)?;
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
            return Ok(());
        }
        if self.silenced(&a.host, &a.item, now) {
            return Ok(()); // the end of the silence evaluates it again
        }
        match self.parent_verdict(a, now) {
            ParentVerdict::Suppress(p) => {
                if a.sent_level.is_none() {
                    self.children.entry(p.clone()).or_default().insert(a.host.clone());
                    a.suppressed_by = Some(p);
                }
                a.wait_parent_until = None;
                return Ok(());
            }
            ParentVerdict::Wait(t) => {
                a.wait_parent_until = Some(t);
                return Ok(());
            }
            ParentVerdict::Go => {}
        }
        a.wait_parent_until = None;
        if a.sent_level.is_some_and(|s| a.level <= s) {
            return Ok(()); // same level again or a de-escalation: recorded only
        }
        let routes = self.route(&a.host, &a.item, a.level);
        if routes.is_empty() {
            return Ok(());
        }
        let msg = self.message(a, Kind::Alert, old, time, text);
        let to: Vec<(String, String)> = routes.into_iter().map(|r| (r.channel, r.user)).collect();
        let ids = self.send(conn, &key, &to, &msg, now)?;
        for ((c, u), id) in to.into_iter().zip(ids) {
            if a.notified.insert(c.clone()) {
                a.queued.insert(c.clone(), id);
            }
            a.users.insert(c, u);
        }
        a.sent_level = Some(a.level);
        a.sent_level_name = a.level_name.clone();
        a.acked = false;
        a.last_sent = now;
        Ok(())
    }

    /// Reads the outbox summaries once per drain from now on (see `flush`).
    pub fn set_lazy_refresh(&mut self, on: bool) {
        self.lazy_refresh = on;
    }

    /// Reads the outbox summaries if a change since the last read left
    /// them stale; true if it did.
    pub fn flush(&mut self, conn: &Connection) -> rusqlite::Result<bool> {
        if !self.stale {
            return Ok(false);
        }
        self.read_summaries(conn)?;
        Ok(true)
    }

    fn refresh(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        if self.lazy_refresh {
            self.stale = true;
            return Ok(());
        }
        self.read_summaries(conn)
    }

    fn read_summaries(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.stale = false;
        self.next_outbox = outbox::next_pending(conn)?;
        self.counts = outbox::counts(conn)?;
        self.failures = outbox::failures(conn)?;
        Ok(())
    }
}

/// The engine tests' fixtures, for the view's tests too.
#[cfg(test)]
use tests as tests_support;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_12;
