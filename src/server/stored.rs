//! The loop's side of the store thread (`store/`): events on their way
//! to it, and what the server does with its answers once they are
//! committed (the EVENTS and REPORT answers, the notification jobs).

use super::store::{Answer, Req};
use super::Server;
use crate::answer::Answered;
use crate::clock::Now;
use crate::effects::{Effects, Ticket};
use crate::event::Event;

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

    /// The store thread's answers of one drain, all committed (or failed).
    pub fn on_store(&mut self, answers: Vec<Answer>, now: Now, fx: &mut Effects) {
        for a in answers {
            match a {
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
                Answer::Report { ticket, host, time, ip, body, stored } => {
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
                    let work_lm = self.work_lm(&host);
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
}
