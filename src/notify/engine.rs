//! The `Notifier`: alert state transitions, noise control decisions and the
//! outbox schedule. No sockets and no blocking: deliveries leave as jobs.

use super::alerts::{self, AlertState, Key};
use super::message::{self, compose, Change, Kind, Message};
use super::noise::{Flaps, Storms};
use super::rules::{self, level_index};
use super::{outbox, storm_counted, NotifyDone, NotifyJob, DEADMAN_ID};
use crate::event::Event;
use crate::work::model::{Channel, Intervals, Level, ServerWork};
use rusqlite::Connection;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Most jobs handed out by one `tick`.
const BATCH: usize = 64;

pub struct Notifier {
    work: ServerWork,
    levels: Vec<String>,
    renotify: f64,
    deadman_every: f64,
    /// How long a down child waits for its parent (one heartbeat + grace).
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
}

impl Notifier {
    /// Applies the schema, reloads alert states and silences, and requeues
    /// deliveries that were in flight when the previous process died.
    pub fn new(
        conn: &Connection,
        work: &ServerWork,
        levels: &[Level],
        intervals: &Intervals,
        dashboard: Option<String>,
    ) -> rusqlite::Result<Notifier> {
        outbox::migrate(conn)?;
        let mut n = Notifier {
            work: work.clone(),
            levels: levels.iter().map(|l| l.name.clone()).collect(),
            renotify: intervals.renotify,
            deadman_every: intervals.deadman,
            parent_wait: intervals.heartbeat + intervals.grace,
            dashboard: dashboard.or_else(|| work.dashboard_url.clone()),
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
        };
        for a in n.alerts.values() {
            if let Some(p) = &a.suppressed_by {
                n.children.entry(p.clone()).or_default().insert(a.host.clone());
            }
        }
        n.refresh(conn)?;
        Ok(n)
    }

    fn level_name(&self, i: usize) -> String {
        self.levels.get(i).cloned().unwrap_or_else(|| format!("level{i}"))
    }

    fn silenced(&self, host: &str, item: &str, now: f64) -> bool {
        [(host.to_string(), item.to_string()), (host.to_string(), String::new())]
            .iter()
            .any(|k| self.silences.get(k).is_some_and(|&u| u > now))
    }

    fn down_parent(&self, host: &str) -> Option<String> {
        let p = self.work.parents.get(host)?;
        (self.host_states.get(p).map(String::as_str) == Some("down")).then(|| p.clone())
    }

    fn tag(&self, host: &str) -> String {
        let t = self.work.hosts.iter().find(|h| h.host == host).map(|h| h.tag.as_str());
        message::short_host(host, t)
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

    /// Queues `msg` to each (channel, user); held when the user is in a storm.
    fn send(
        &mut self,
        conn: &Connection,
        key: &str,
        to: &[(String, String)],
        msg: &Message,
        now: f64,
    ) -> rusqlite::Result<()> {
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
            outbox::enqueue(conn, key, ch, user, msg, h, now)?;
        }
        Ok(())
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
        // item with no alert state, of a host not coming back from down,
        // changes nothing here (no transaction, no refresh).
        let quiet = level_index(&self.levels, &ev.new_level) == 0
            && !self.alerts.contains_key(&(ev.host.clone(), ev.item.clone()))
            && host_state != "down";
        let was = self.host_states.insert(ev.host.clone(), host_state.to_string());
        if quiet && was.as_deref() != Some("down") {
            return Ok(());
        }
        let tx = conn.unchecked_transaction()?;
        if host_state == "down" && was.as_deref() != Some("down") {
            self.suppress_waiting_children(&tx, &ev.host)?;
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
                to = rules::route(&self.work, &self.levels, &a.host, &a.item, worst)
                    .into_iter()
                    .map(|r| (r.channel, r.user))
                    .collect();
            }
            let msg = self.message(&a, Kind::Flapping, &prev_name, ev.time, &ev.message);
            self.send(&tx, &outbox::alert_key(&a.host, &a.item), &to, &msg, now)?;
        }
        if !a.flapping {
            self.evaluate(&tx, &mut a, &prev_name, ev.time, &ev.message, now)?;
        }
        alerts::save(&tx, &a)?;
        self.alerts.insert(key, a);
        // A parent that is no longer down releases its suppressed children.
        if was.as_deref() == Some("down") && host_state != "down" {
            let kids: Vec<Key> = self
                .alerts
                .iter()
                .filter(|(_, c)| c.suppressed_by.as_deref() == Some(ev.host.as_str()))
                .map(|(k, _)| k.clone())
                .collect();
            self.children.remove(&ev.host);
            for k in kids {
                if let Some(mut c) = self.alerts.remove(&k) {
                    c.suppressed_by = None;
                    // Its parent's verdict is in: no second wait.
                    c.wait_parent_until = Some(now);
                    let old = c.level_name.clone();
                    self.evaluate(&tx, &mut c, &old, now, "", now)?;
                    alerts::save(&tx, &c)?;
                    self.alerts.insert(k, c);
                }
            }
        }
        tx.commit()?;
        self.refresh(conn)
    }

    /// A parent just went down: its children still waiting for its verdict
    /// are suppressed into its alert instead of alerting on their own.
    fn suppress_waiting_children(
        &mut self,
        conn: &Connection,
        parent: &str,
    ) -> rusqlite::Result<()> {
        for a in self.alerts.values_mut() {
            let child_of = self.work.parents.get(&a.host).map(String::as_str) == Some(parent);
            if child_of && a.wait_parent_until.is_some() {
                a.wait_parent_until = None;
                a.suppressed_by = Some(parent.to_string());
                self.children.entry(parent.to_string()).or_default().insert(a.host.clone());
                alerts::save(conn, a)?;
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
            // Resolve always follows a sent alert, whatever happened between.
            if !a.notified.is_empty() {
                let mut msg = self.message(a, Kind::Recovery, old, time, text);
                msg.resolve_levels = vec![a.sent_level_name.clone()];
                let to: Vec<(String, String)> = a
                    .notified
                    .iter()
                    .map(|c| (c.clone(), a.users.get(c).cloned().unwrap_or_default()))
                    .collect();
                self.send(conn, &key, &to, &msg, now)?;
            }
            a.notified.clear();
            a.users.clear();
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
            return Ok(());
        }
        if let Some(p) = self.down_parent(&a.host) {
            self.children.entry(p.clone()).or_default().insert(a.host.clone());
            a.suppressed_by = Some(p);
            a.wait_parent_until = None;
            return Ok(());
        }
        let down = self.host_states.get(&a.host).map(String::as_str) == Some("down");
        if down && a.sent_level.is_none() && self.work.parents.contains_key(&a.host) {
            match a.wait_parent_until {
                None => {
                    a.wait_parent_until = Some(now + self.parent_wait);
                    return Ok(());
                }
                Some(t) if t > now => return Ok(()),
                Some(_) => {}
            }
        }
        a.wait_parent_until = None;
        if a.sent_level.is_some_and(|s| a.level <= s) {
            return Ok(()); // same level again or a de-escalation: recorded only
        }
        let routes = rules::route(&self.work, &self.levels, &a.host, &a.item, a.level);
        if routes.is_empty() {
            return Ok(());
        }
        let mut msg = self.message(a, Kind::Alert, old, time, text);
        if a.sent_level.is_some() {
            msg.resolve_levels = vec![a.sent_level_name.clone()];
        }
        let to: Vec<(String, String)> = routes.into_iter().map(|r| (r.channel, r.user)).collect();
        self.send(conn, &key, &to, &msg, now)?;
        for (c, u) in to {
            a.notified.insert(c.clone());
            a.users.insert(c, u);
        }
        a.sent_level = Some(a.level);
        a.sent_level_name = a.level_name.clone();
        a.acked = false;
        a.last_sent = now;
        Ok(())
    }

    /// Renotifies, settles flapping items, flushes digests, pings the
    /// dead-man's switch and hands out due deliveries.
    pub fn tick(&mut self, conn: &Connection, now: f64) -> rusqlite::Result<Vec<NotifyJob>> {
        let tx = conn.unchecked_transaction()?;
        self.silences.retain(|_, u| *u > now);
        alerts::drop_expired_silences(&tx, now)?;
        let keys: Vec<Key> = self.alerts.keys().cloned().collect();
        for k in keys {
            let Some(mut a) = self.alerts.remove(&k) else { continue };
            let mut dirty = false;
            if a.flapping && self.flaps.settled(&k, now, self.work.noise.flap_window) {
                a.flapping = false;
                self.flaps.forget(&k);
                let old = if a.sent_level.is_some() {
                    a.sent_level_name.clone()
                } else {
                    self.level_name(0)
                };
                self.evaluate(&tx, &mut a, &old, now, "", now)?;
                dirty = true;
            } else if a.wait_parent_until.is_some_and(|t| t <= now) && !a.flapping {
                let old = self.level_name(0);
                self.evaluate(&tx, &mut a, &old, now, "", now)?;
                dirty = true;
            } else if a.alerting()
                && a.sent_level.is_some()
                && !a.acked
                && !a.flapping
                && a.suppressed_by.is_none()
                && self.renotify > 0.0
                && now - a.last_sent >= self.renotify
                && !self.silenced(&a.host, &a.item, now)
            {
                let msg = self.message(&a, Kind::Reminder, &a.level_name, now, "");
                let to: Vec<(String, String)> =
                    a.users.iter().map(|(c, u)| (c.clone(), u.clone())).collect();
                self.send(&tx, &outbox::alert_key(&a.host, &a.item), &to, &msg, now)?;
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
        // Digests: storms that ended, and held rows left by a previous process.
        let mut users: BTreeSet<String> = self.storms.ended(now).into_iter().collect();
        for u in outbox::held_users(&tx)? {
            if !self.storms.until.contains_key(&u) {
                users.insert(u);
            }
        }
        for u in users {
            let mut by_channel: BTreeMap<String, (Vec<i64>, Vec<Message>)> = BTreeMap::new();
            for (id, ch, m) in outbox::held_of(&tx, &u)? {
                let e = by_channel.entry(ch).or_default();
                e.0.push(id);
                e.1.push(m);
            }
            for (ch, (ids, msgs)) in by_channel {
                let d = message::digest(&msgs, now);
                outbox::enqueue(&tx, &format!("digest:{u}"), &ch, &u, &d, false, now)?;
                for id in ids {
                    outbox::delivered(&tx, id)?;
                }
            }
        }
        let mut jobs = Vec::new();
        for d in outbox::take_due(&tx, now, BATCH)? {
            match rules::channel(&self.work, &d.channel) {
                Some(ch) => jobs.push(NotifyJob { id: d.id, channel: ch.clone(), msg: d.msg, now }),
                None => outbox::failed_try(&tx, d.id, "channel no longer in the work", now)?,
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

    /// Records a delivery's outcome: done, or a retry with backoff.
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
                log::warn!("notify: delivery {} failed: {e}", done.id);
                outbox::failed_try(conn, done.id, &e, now)?;
            }
        }
        self.refresh(conn)
    }

    /// `SILENCE host [item] until`: mutes new alerts and reminders (a
    /// resolve for an alert already sent still goes out).
    pub fn silence(
        &mut self,
        conn: &Connection,
        host: &str,
        item: Option<&str>,
        until: f64,
    ) -> rusqlite::Result<()> {
        let item = item.unwrap_or("");
        alerts::save_silence(conn, host, item, until)?;
        self.silences.insert((host.to_string(), item.to_string()), until);
        Ok(())
    }

    /// `ACK host item`: stops reminders until the alert escalates or
    /// recovers. False when there is no such alert.
    pub fn ack(&mut self, conn: &Connection, host: &str, item: &str) -> rusqlite::Result<bool> {
        let Some(a) = self.alerts.get_mut(&(host.to_string(), item.to_string())) else {
            return Ok(false);
        };
        if !a.alerting() {
            return Ok(false);
        }
        a.acked = true;
        alerts::save(conn, a)?;
        Ok(true)
    }

    fn refresh(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        self.next_outbox = outbox::next_pending(conn)?;
        self.counts = outbox::counts(conn)?;
        self.failures = outbox::failures(conn)?;
        Ok(())
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
            t.extend(a.wait_parent_until);
            if a.flapping {
                t.extend(self.flaps.settles_at(k, self.work.noise.flap_window));
            } else if a.alerting() && a.sent_level.is_some() && !a.acked && self.renotify > 0.0 {
                t.push(a.last_sent + self.renotify);
            }
        }
        t.into_iter().reduce(f64::min)
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
        if self.silenced(&a.host, &a.item, now) {
            flags.push("silenced".to_string());
        }
        if let Some(p) = &a.suppressed_by {
            flags.push(format!("suppressed-by={p}"));
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
            message::rfc3339(a.since),
            if ch.is_empty() { "-".to_string() } else { ch.join(",") },
            flags.join(" ")
        )
    }

    /// STATE lines: counts, then one line per active alert, silence and
    /// failed delivery.
    pub fn state_lines(&self, out: &mut String, now: f64) {
        let alerting = self.alerts.values().filter(|a| a.alerting()).count();
        let silenced = self.silences.values().filter(|&&u| u > now).count();
        out.push_str(&format!(
            "-- notify pending {} held {} inflight {} failed {} alerting {alerting} silenced {silenced} retrying {}\n",
            self.count("pending"),
            self.count("held"),
            self.count("inflight"),
            self.count("failed"),
            self.count("retrying"),
        ));
        for a in self.alerts.values().filter(|a| a.alerting()) {
            out.push_str("-- ");
            out.push_str(self.describe(a, now).trim_end());
            out.push('\n');
        }
        for ((h, i), u) in self.silences.iter().filter(|(_, &u)| u > now) {
            let item = if i.is_empty() { "*" } else { i };
            out.push_str(&format!("-- silence {h} {item} until {}\n", message::rfc3339(*u)));
        }
        for (id, ch, subj, tries, err) in &self.failures {
            out.push_str(&format!("-- notify failed {id} {ch} tries {tries} {subj:?}: {err}\n"));
        }
        if let Some(e) = &self.deadman_error {
            out.push_str(&format!("-- deadman failed: {e}\n"));
        }
    }

    pub fn dump(&self) -> serde_json::Value {
        let silences: Vec<_> = self
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
            "alerts": self.alerts.values().collect::<Vec<_>>(),
            "silences": silences,
            "outbox": counts,
            "failed": failures,
            "deadman_error": self.deadman_error,
            "next_deadline": self.next_deadline(),
        })
    }
}

#[path = "engine_view.rs"]
mod view;

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
