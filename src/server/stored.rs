//! The loop's side of the store thread (`store/`): events on their way
//! to it, what the server does with its answers once they are committed
//! (the EVENTS and REPORT answers, the notification jobs), what it read
//! from server.db at start (`on_started`), and the refusal counters of
//! requests the store failed. Answers are applied in slices of
//! [`ANSWERS_PER_TURN`]: one drain of a 10,000-host outage's deliveries
//! answers 10,000 `Recorded`s at once, and the rest waits for the next turn
//! (a `StoreBacklog` tick due at once) so the command port is served
//! between slices.

use super::store::{Answer, Req};
use super::Server;
use crate::answer::Answered;
use crate::clock::Now;
use crate::effects::{Effects, ServerTick, Tick, Ticket};
use crate::event::Event;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// What waits for the store thread to have read server.db.
#[derive(Default)]
pub struct Starting {
    /// CLIENTS asked meanwhile (its arguments): its answer needs the reports.
    pub clients: Vec<(Ticket, Vec<String>)>,
    /// Host-items with an event since start: server.db's older view of
    /// them is not taken.
    pub touched: HashSet<(String, String)>,
}

/// Most notification deliveries in the pool at once (running or queued
/// there), whatever the outbox hands out: the pool's notify queue must
/// never overflow (an overflowed job fails at once and is retried later as
/// if its channel had failed, 10,000 times in a 10,000-host outage). The
/// rest wait here, in the notifier's order, and each finished delivery
/// lets the next one in. They are rows the outbox already holds as
/// `inflight` (a restart sends them again), so this queue is bounded by
/// the outbox, and costs the loop one push and one pop per delivery.
pub const DELIVERIES_IN_FLIGHT: usize = 64;

/// [`DELIVERIES_IN_FLIGHT`], or half the pool's per-kind queue
/// (`workers_queue`) if that is smaller, leaving the other half to the
/// client's own fallback notices.
pub(super) fn deliveries_max(workers_queue: usize) -> usize {
    DELIVERIES_IN_FLIGHT.min(workers_queue / 2).max(1)
}

impl Server {
    /// Sends this turn's store requests (the loop's end of turn):
    /// `Store::flush`.
    pub fn flush_store(&mut self) {
        self.store.flush();
    }

    /// Hands waiting deliveries to the pool while it has room for them.
    pub(super) fn dispatch_waiting(&mut self, fx: &mut Effects) {
        while self.in_pool < self.deliveries_max {
            let Some(j) = self.deliveries_waiting.pop_front() else { break };
            self.in_pool += 1;
            fx.jobs.push(crate::effects::Job::Notify(Box::new(j)));
        }
    }
}

/// Store answers applied in one turn at most (each is a session's answer,
/// a report's reconcile, or up to 64 notification jobs for the pool).
pub const ANSWERS_PER_TURN: usize = 256;

impl Server {
    /// Sends events to be stored and handed to the notifier, each with its
    /// host's state now; the loop's part of each (open items, the Notify
    /// tick, the log line) is done at once. With a ticket, an EVENTS
    /// session waits for the commit.
    pub(super) fn store_events(
        &mut self,
        events: Vec<Event>,
        ticket: Option<Ticket>,
        now: Now,
        fx: &mut Effects,
    ) {
        if events.is_empty() && ticket.is_none() {
            return;
        }
        let states = events.iter().map(|e| self.host_state(&e.host)).collect();
        for e in &events {
            self.on_event(e, now, fx);
        }
        self.store.send(Req::Events { events, states, now: now.wall, ticket });
    }

    /// The store thread has read server.db (or found it unusable): what
    /// the part keeps in memory goes in place, under what came since
    /// (reports, events and heartbeats received meanwhile are newer).
    fn on_started(&mut self, now: Now, fx: &mut Effects) {
        let Some(starting) = self.starting.take() else { return };
        match self.store.take_started() {
            Some(Ok(st)) => {
                for (host, r) in st.reports {
                    self.reports.entry(host).or_insert_with(|| std::sync::Arc::new(r));
                }
                for (key, v) in st.open {
                    if !starting.touched.contains(&key) {
                        self.open.entry(key).or_insert(v);
                    }
                }
                let (n, changes) = self.table.restore(st.hosts, now);
                if n > 0 {
                    log::info!("remembered {n} hosts from server.db");
                }
                self.emit_changes(changes, now, fx);
                self.arm_check(now, fx);
                self.store_notice_event(st.notice, st.last_notice, now, fx);
                self.reconcile_work(&Default::default(), now, fx);
            }
            Some(Err(why)) => self.store_unusable = Some(why),
            None => {}
        }
        for (ticket, args) in starting.clients {
            if let Err(why) = self.clients_for(ticket, &args, now) {
                fx.answers.push((ticket, Answered::failed("CLIENTS", why.to_string())));
            }
        }
    }

    /// The store thread's answers of one drain, all committed (or failed):
    /// queued behind any not applied yet (answers keep their order), and
    /// this turn's slice applied.
    pub fn on_store(&mut self, answers: Vec<Answer>, now: Now, fx: &mut Effects) {
        self.count_store_failures(&answers, fx);
        let idle = self.store_backlog.is_empty();
        self.store_backlog.extend(answers);
        // With a backlog, its tick is already due.
        if idle {
            self.apply_store_answers(now, fx);
        }
    }

    /// Applies at most [`ANSWERS_PER_TURN`] waiting answers; the rest get
    /// a tick due at once (the next turn).
    pub(super) fn apply_store_answers(&mut self, now: Now, fx: &mut Effects) {
        let n = self.store_backlog.len().min(ANSWERS_PER_TURN);
        let slice: Vec<Answer> = self.store_backlog.drain(..n).collect();
        if !self.store_backlog.is_empty() {
            fx.timer(now.mono, Tick::Server(ServerTick::StoreBacklog));
        }
        for a in slice {
            match a {
                Answer::Started => self.on_started(now, fx),
                Answer::Events { ticket, n, new } => {
                    let answer = match new {
                        Some(new) => {
                            self.stats.events_received += n as u64;
                            self.stats.events_stored += new as u64;
                            self.stats.events_duplicate += n.saturating_sub(new) as u64;
                            Answered::Events { n, new }
                        }
                        None => Answered::failed("EVENTS", "cannot store the events"),
                    };
                    fx.answers.push((ticket, answer));
                }
                Answer::Report { ticket, host, time, ip, body, stored, work_lm } => {
                    let report = super::fleet::Report { time, ip, body };
                    if !stored {
                        let answer = Answered::failed("REPORT", "cannot store the report");
                        fx.answers.push((ticket, answer));
                        continue;
                    }
                    let peer = report.ip.clone();
                    self.reconcile_report(&host, &report.body, now, fx);
                    self.reports.insert(host.clone(), std::sync::Arc::new(report));
                    self.stats.reports += 1;
                    fx.answers.push((ticket, Answered::Report { host, peer, work_lm }));
                }
                Answer::Verb { ticket, answer, notify_in } => {
                    if let Some(s) = notify_in {
                        self.notify_soon(now, fx, s);
                    }
                    fx.answers.push((ticket, answer));
                }
                Answer::Jobs { jobs, next } => {
                    let new = jobs.into_iter().filter(|j| self.dispatched.insert(j.id));
                    self.deliveries_waiting.extend(new);
                    self.dispatch_waiting(fx);
                    if let Some(t) = next {
                        self.notify_soon(now, fx, t - now.wall);
                    }
                }
                Answer::Recorded { id, .. } => {
                    self.dispatched.remove(&id);
                    self.notify_soon(now, fx, 0.0);
                }
            }
        }
    }

    /// Store failures go to the refusal counters (STATE, DUMP, /metrics):
    /// a verb's request as `<VERB> store failed`, other writes (host table,
    /// notifications, cleanup) as `server.db write failed`.
    fn count_store_failures(&mut self, answers: &[Answer], fx: &mut Effects) {
        for a in answers {
            let verb = match a {
                Answer::Events { new: None, .. } => "EVENTS",
                Answer::Report { stored: false, .. } => "REPORT",
                Answer::Verb { answer: Answered::Failed { verb, why }, .. }
                    if why.starts_with("cannot") =>
                {
                    verb
                }
                _ => continue,
            };
            fx.refused.push((format!("{verb} store failed"), 1));
        }
        let writes = self.store.shared.failed_writes.load(Ordering::Relaxed);
        if writes > self.store_failed_writes {
            fx.refused.push(("server.db write failed".into(), writes - self.store_failed_writes));
            self.store_failed_writes = writes;
        }
    }
}
