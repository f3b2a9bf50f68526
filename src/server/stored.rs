//! The loop's side of the store thread (`store/`): events on their way
//! to it, what the server does with its answers once they are committed
//! (the EVENTS and REPORT answers, the notification jobs), what it read
//! from server.db at start (`on_started`), and the refusal counters of
//! requests the store failed.

use super::store::{Answer, Req};
use super::Server;
use crate::clock::Now;
use crate::command::{frame_err, frame_ok, Request};
use crate::effects::{Effects, Ticket};
use crate::event::Event;
use serde_json::json;
use std::collections::HashSet;
use std::sync::atomic::Ordering;

/// What waits for the store thread to have read server.db.
#[derive(Default)]
pub struct Starting {
    /// CLIENTS asked meanwhile: its answer needs the reports.
    pub clients: Vec<(Ticket, Request)>,
    /// Host-items with an event since start: server.db's older view of
    /// them is not taken.
    pub touched: HashSet<(String, String)>,
}

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
                    self.reports.entry(host).or_insert(r);
                }
                for (key, v) in st.open {
                    if !starting.touched.contains(&key) {
                        self.open.entry(key).or_insert(v);
                    }
                }
                let (n, changes) = self.udp.restore(st.hosts, now);
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
        for (ticket, req) in starting.clients {
            if let Err(text) = self.clients_for(ticket, &req, now) {
                fx.answers.push((ticket, text));
            }
        }
    }

    /// The store thread's answers of one drain, all committed (or failed).
    pub fn on_store(&mut self, answers: Vec<Answer>, now: Now, fx: &mut Effects) {
        self.count_store_failures(&answers, fx);
        for a in answers {
            match a {
                Answer::Started => self.on_started(now, fx),
                Answer::Events { ticket, n, new } => {
                    let text = match new {
                        Some(new) => {
                            self.stats.events_received += n as u64;
                            self.stats.events_stored += new as u64;
                            self.stats.events_duplicate += n.saturating_sub(new) as u64;
                            let body = json!({"resp": format!("ok events {n} stored {new}")});
                            frame_ok("EVENTS", &body.to_string())
                        }
                        None => frame_err("EVENTS", "cannot store the events"),
                    };
                    fx.answers.push((ticket, text));
                }
                Answer::Report { ticket, host, time, ip, body, stored } => {
                    let report = super::fleet::Report { time, ip, body };
                    if !stored {
                        fx.answers.push((ticket, frame_err("REPORT", "cannot store the report")));
                        continue;
                    }
                    let peer = report.ip.clone();
                    self.reconcile_report(&host, &report.body, now, fx);
                    self.reports.insert(host.clone(), report);
                    self.stats.reports += 1;
                    let lm = self.work_lm(&host);
                    let resp = format!("ok report from {host} [{peer}] for {host}");
                    let body = json!({"resp": resp, "work": lm});
                    fx.answers.push((ticket, frame_ok("REPORT", &body.to_string())));
                }
                Answer::Text { ticket, text, notify_in, .. } => {
                    if let Some(s) = notify_in {
                        self.notify_soon(now, fx, s);
                    }
                    fx.answers.push((ticket, text));
                }
                Answer::Jobs { jobs, next } => {
                    let new = jobs.into_iter().filter(|j| self.dispatched.insert(j.id));
                    fx.jobs.extend(new.map(|j| crate::effects::Job::Notify(Box::new(j))));
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
                Answer::Text { verb, text, .. } if text.contains("\nCOMMAND ERROR cannot") => verb,
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
