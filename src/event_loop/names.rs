//! The loop's side of `names.rs`: a round of lookups starts at each work
//! install and every `ival_check_work` (as jobs on the worker pool); a
//! finished round is installed into `State` and handed to the server
//! (its host index) and the client (the server's address, heartbeat
//! targets). Nothing here waits for the resolver.

use crate::clock::Now;
use crate::effects::{Effects, Job, Tick};
use crate::names::{missing_text, Names, Resolved};
use crate::state::State;

/// Starts a new round for the running work's names (a work install).
pub fn refresh(st: &mut State, now: Now, fx: &mut Effects) {
    let jobs = st.names_round.start(crate::names::wanted(&st.work));
    if jobs.is_empty() {
        install(st, Names::empty_at(now.wall), now, fx);
    }
    fx.jobs.extend(jobs.into_iter().map(Job::Resolve));
    arm(st, now, fx);
}

fn arm(st: &State, now: Now, fx: &mut Effects) {
    let every = st.work.intervals.check_work.max(1.0);
    fx.timer(now.mono + every, Tick::Names(st.names_round.gen));
}

/// The refresh timer: a round still waiting for a slow resolver is given
/// more time rather than restarted (a restart would never finish).
pub fn on_tick(gen: u64, st: &mut State, now: Now, fx: &mut Effects) {
    if gen != st.names_round.gen {
        return;
    }
    if st.names_round.pending() {
        arm(st, now, fx);
    } else {
        refresh(st, now, fx);
    }
}

/// A lookup job's answers; the round's last installs the table.
pub fn on_resolved(r: Resolved, st: &mut State, now: Now, fx: &mut Effects) {
    let Some((table, missing)) = st.names_round.take(r, &st.names, now.wall) else { return };
    if let Some(m) = missing_text(&missing) {
        log::warn!("names: {m}");
    }
    install(st, table, now, fx);
}

fn install(st: &mut State, table: Names, now: Now, fx: &mut Effects) {
    let changed = !table.same_addresses(&st.names);
    st.names = table;
    if !changed {
        return;
    }
    log::debug!("names: {} resolved, {} unresolved", st.names.len(), st.names.unresolved);
    if let Some(s) = st.server.as_mut() {
        s.set_names(st.names.clone());
    }
    if let Some(c) = st.client.as_mut() {
        c.set_names(st.names.clone(), now, fx);
    }
}

/// How long a start waits for the first round before the loop turns.
pub const START_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl super::EventLoop {
    /// At start, before the loop turns and before the parts exist: the
    /// first round gets up to `wait` to answer, so the parts start with
    /// their names (a start already waits as long for the hostname's
    /// CNAME). What answers later is installed through the waker like any
    /// round.
    pub fn prime_names(&mut self, st: &mut State, now: Now, wait: std::time::Duration) {
        let mut fx = Effects::default();
        refresh(st, now, &mut fx);
        for job in fx.jobs.drain(..) {
            self.pool.submit(job);
        }
        for (at, t) in fx.timers.drain(..) {
            self.timers.at(at, t);
        }
        let deadline = std::time::Instant::now() + wait;
        while st.names_round.pending() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.done_rx.recv_timeout(left) {
                Ok(crate::effects::Done::Names(r)) => on_resolved(r, st, now, &mut fx),
                // No other job exists before the parts are built.
                Ok(_) => log::debug!("a job result before start"),
                Err(_) => break,
            }
        }
        if st.names_round.pending() {
            log::warn!("names: lookups still running after {wait:?}; the loop starts without them");
        }
    }
}
