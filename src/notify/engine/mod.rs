//! The `Notifier`: the decisions of `decide/` (a pure state machine over
//! the alert state, the work's rules, people and noise settings, the
//! events and `now`) applied to `server.db` by `apply.rs`, in the store
//! thread's transaction. This file wires the two: reads a decision's
//! facts, decides, applies, commits, and keeps the outbox summaries for
//! the views (STATE, DUMP, the operator verbs in `view.rs`). No sockets
//! and no blocking: deliveries leave as jobs.

use super::outbox;
use crate::event::Event;
use crate::server::db::Savepoint;
use crate::work::model::{Intervals, Level, ServerWork};
use decide::Model;
use rusqlite::Connection;

mod apply;
pub mod decide;
mod view;

/// Most jobs handed out by one `tick`.
const BATCH: usize = 64;

pub struct Notifier {
    m: Model,
    next_outbox: Option<f64>,
    counts: Vec<(String, i64)>,
    failures: Vec<outbox::Failure>,
    /// Set by the store thread: the outbox summaries (`refresh`) are read
    /// once per drain (`flush`) instead of after every change, which a
    /// 10,000-event outage would otherwise pay 10,000 times.
    lazy_refresh: bool,
    stale: bool,
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
        let mut m = Model::new(super::alerts::load(conn)?, super::alerts::load_silences(conn)?);
        m.next_deadman = work.deadman_url.as_ref().map(|_| 0.0);
        let mut n = Notifier {
            m,
            next_outbox: None,
            counts: Vec::new(),
            failures: Vec::new(),
            lazy_refresh: false,
            stale: false,
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
        let writes = self.m.reload(work, levels, intervals, dashboard);
        let tx = Savepoint::new(conn)?;
        apply::apply(&tx, &mut self.m, writes, 0.0)?;
        tx.commit()?;
        self.refresh(conn)
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
        let key = (ev.host.clone(), ev.item.clone());
        let rows = self.m.event_withdraw_candidates(ev).into_iter();
        let facts = apply::withdrawable(conn, rows.map(|(c, id)| (key.clone(), c, id)))?;
        let writes = self.m.on_event(ev, host_state, now, &facts);
        if writes.is_empty() {
            return Ok(()); // the quiet common case: no transaction, no refresh
        }
        let tx = Savepoint::new(conn)?;
        apply::apply(&tx, &mut self.m, writes, now)?;
        tx.commit()?;
        self.refresh(conn)
    }

    /// Renotifies, settles flapping items, re-evaluates alerts whose
    /// silence or parent wait ended, flushes digests, pings the dead-man's
    /// switch and hands out due deliveries.
    pub fn tick(&mut self, conn: &Connection, now: f64) -> rusqlite::Result<Vec<super::NotifyJob>> {
        let tx = Savepoint::new(conn)?;
        let mut facts = apply::withdrawable(&tx, self.m.tick_withdraw_candidates())?;
        facts.held_users = outbox::held_users(&tx)?;
        let writes = self.m.tick(now, &facts);
        apply::apply(&tx, &mut self.m, writes, now)?;
        let mut jobs = Vec::new();
        for d in outbox::take_due(&tx, now, BATCH)? {
            match self.m.job(d, now) {
                Ok(j) => jobs.push(j),
                Err((id, why)) => outbox::fail_now(&tx, id, why)?,
            }
        }
        tx.commit()?;
        jobs.extend(self.m.deadman(now));
        self.refresh(conn)?;
        Ok(jobs)
    }

    /// Records a delivery's outcome: done, or a retry with backoff, or
    /// given up (kept as failed for STATE and DUMP).
    pub fn on_done(
        &mut self,
        conn: &Connection,
        done: super::NotifyDone,
        now: f64,
    ) -> rusqlite::Result<()> {
        let writes = self.m.on_done(done);
        if writes.is_empty() {
            return Ok(()); // the dead-man's ping: no row
        }
        apply::apply(conn, &mut self.m, writes, now)?;
        self.refresh(conn)
    }

    /// When `tick` next has something to do.
    pub fn next_deadline(&self) -> Option<f64> {
        self.m.next_deadline(self.next_outbox)
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
