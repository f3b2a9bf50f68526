//! What each request of the server's store thread does to `server.db`
//! and the notifier (run inside the drain's transaction by the thread in
//! `mod.rs`), and what its answer becomes when that drain's commit fails.
//! Failures are counted in [`Shared`](super::Shared) and answered, never
//! raised: one bad request does not stop the others of its drain.

use super::{Answer, Req, Worker};
use crate::answer::Answered;
use crate::server::fleet::{self, Report};
use std::sync::atomic::Ordering;

/// The answer when its drain's commit failed: nothing it did is stored.
pub(super) fn failed(a: Answer) -> Answer {
    match a {
        Answer::Events { ticket, n, .. } => Answer::Events { ticket, n, new: None },
        Answer::Report { ticket, host, time, ip, body, work_lm, .. } => {
            Answer::Report { ticket, host, time, ip, body, stored: false, work_lm }
        }
        Answer::Verb { ticket, answer, notify_in } if answer.verb() != "CLIENTS" => {
            let answer = Answered::failed(answer.verb(), "cannot store");
            Answer::Verb { ticket, answer, notify_in }
        }
        a => a,
    }
}

impl Worker {
    pub(super) fn handle(&mut self, r: Req) -> Option<Answer> {
        let c = &self.conn;
        let shared = &self.shared;
        let fail = || {
            shared.failed.fetch_add(1, Ordering::Relaxed);
        };
        let fail_write = || {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            shared.failed_writes.fetch_add(1, Ordering::Relaxed);
        };
        let note = |what: &str, r: rusqlite::Result<()>| {
            if let Err(e) = r {
                fail_write();
                log::error!("notifications: {what}: {e}");
            }
        };
        match r {
            Req::Events { events, states, now, ticket } => {
                let new = match fleet::store_events(c, &events, now) {
                    Ok(new) => Some(new),
                    Err(e) => {
                        fail();
                        log::error!("{e}");
                        None
                    }
                };
                if new.is_some() {
                    self.new_events += new.unwrap_or(0) as u64;
                    for (e, s) in events.iter().zip(states) {
                        note("event", self.notifier.on_event(c, e, s, now));
                    }
                    self.dirty = true;
                }
                ticket.map(|ticket| Answer::Events { ticket, n: events.len(), new })
            }
            Req::Report { host, report, text, work_file, ticket } => {
                let stored = match fleet::store_report(c, &host, report.time, &report.ip, &text) {
                    Ok(()) => true,
                    Err(e) => {
                        fail();
                        log::error!("{e}");
                        false
                    }
                };
                let Report { time, ip, body } = report;
                let work_lm = crate::work::version::of_file(&work_file).unwrap_or(0);
                Some(Answer::Report { ticket, host, time, ip, body, stored, work_lm })
            }
            Req::Clients { ticket, host, item, filter, view, now } => {
                let answer = match fleet::query_events(c, host.as_deref(), item.as_deref(), &filter)
                {
                    Ok(events) => {
                        // The open alerts ride along so the dashboard shows
                        // acknowledged, silenced, flapping and suppressed
                        // badges from one answer.
                        let notify = self.notifier.open_alerts(host.as_deref(), now);
                        Answered::Clients(crate::server::fleet_view::body(&view, &events, &notify))
                    }
                    Err(e) => {
                        fail();
                        log::error!("{e}");
                        Answered::failed("CLIENTS", "cannot read events")
                    }
                };
                Some(Answer::Verb { ticket, answer, notify_in: None })
            }
            Req::Ack { ticket, host, item } => {
                let answer = match self.notifier.ack(c, &host, &item) {
                    Ok(true) => Answered::Acked { host, item },
                    Ok(false) => {
                        Answered::failed("ACK", format!("no active alert for {host} {item}"))
                    }
                    Err(e) => {
                        fail();
                        Answered::failed("ACK", format!("cannot store: {e}"))
                    }
                };
                self.dirty = true;
                Some(Answer::Verb { ticket, answer, notify_in: None })
            }
            Req::Silence { ticket, host, item, until, secs, what } => {
                let (answer, notify_in) =
                    match self.notifier.silence(c, &host, item.as_deref(), until) {
                        Ok(()) => (Answered::Silenced { what, until }, Some(secs)),
                        Err(e) => {
                            fail();
                            (Answered::failed("SILENCE", format!("cannot store: {e}")), None)
                        }
                    };
                self.dirty = true;
                Some(Answer::Verb { ticket, answer, notify_in })
            }
            Req::Tick { now } => {
                self.dirty = true;
                let jobs = self.notifier.tick(c, now).unwrap_or_else(|e| {
                    fail_write();
                    log::error!("notifications: {e}");
                    Vec::new()
                });
                Some(Answer::Jobs { jobs, next: None })
            }
            Req::NotifyDone { done, now } => {
                let id = done.id;
                note("delivery outcome", self.notifier.on_done(c, done, now));
                self.dirty = true;
                Some(Answer::Recorded { id, next: None })
            }
            Req::Reload { work, levels, intervals, dash } => {
                note("reload", self.notifier.reload(c, &work, &levels, &intervals, dash));
                self.dirty = true;
                None
            }
            Req::SaveHosts(rows) => {
                if let Err(e) = crate::server::hosts::save_rows(c, &rows) {
                    fail_write();
                    log::error!("saving the host table: {e}");
                }
                None
            }
            Req::Cleanup { before } => {
                match fleet::cleanup_events(c, before) {
                    Ok(n) if n > 0 => {
                        self.cleaned += n as u64;
                        log::info!("cleaned {n} events older than the keep time");
                    }
                    Ok(_) => {}
                    Err(e) => {
                        fail_write();
                        log::error!("{e}");
                    }
                }
                None
            }
        }
    }
}
