//! The loop's side of `names.rs`: a round of lookups starts at each work
//! install and every `ival_check_work` (as jobs on the worker pool); a
//! finished round is installed into `State` and handed to the server
//! (its host index) and the client (the server's address, heartbeat
//! targets). Nothing here waits for the resolver.

use crate::names::{missing_text, Names, Resolved};
use crate::state::{Effects, Job, Now, State, Tick};

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
