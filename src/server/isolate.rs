//! The isolation guard (issue 15, Lifeguard's local health): before the
//! server believes that many hosts died at once, it suspects itself. When
//! [`SHARE`] of the fleet's hosts are suspected within one heartbeat
//! interval, or a CheckHosts timer is served more than an interval late
//! (the loop itself stalled), the server raises one `isolation` event on its
//! own host ("server isolated") and holds every confirmed down for
//! [`HOLD_INTERVALS`] intervals (at least [`MIN_HOLD`] seconds). Hosts that
//! come back within the hold never alert; the held ones still down at its
//! end are sent then.
//!
//! Decisions: only with `detector tuned` (its downs are confirmed anyway,
//! and the default's timings stay as they were); only fleets of at least
//! [`MIN_HOSTS`] hosts (two clients of which one dies is not isolation).

use super::Server;
use crate::clock::Now;
use crate::effects::ServerTick;
use crate::effects::{Effects, Tick};
use crate::server::detector::{Kind, Reach};
use crate::server::hosts::{ChangeKind, HostChange};
use std::collections::VecDeque;

/// Share of the hosts suspected within one interval that means isolation.
pub const SHARE: f64 = 0.3;
/// Fewest hosts for the share to mean anything.
pub const MIN_HOSTS: usize = 10;
/// The hold, in heartbeat intervals.
pub const HOLD_INTERVALS: f64 = 10.0;
pub const MIN_HOLD: f64 = 10.0;

#[derive(Debug, Default)]
pub struct Guard {
    /// Monotonic times of the latest suspicions (within one interval).
    recent: VecDeque<f64>,
    until: Option<f64>,
    held: Vec<HostChange>,
}

impl Server {
    fn guarded(&self) -> bool {
        Kind::from_intervals(&self.work.intervals) == Kind::Tuned && self.hosts.len() >= MIN_HOSTS
    }

    /// A suspicion: isolation if too many came within one interval.
    pub(super) fn note_down(&mut self, now: Now, fx: &mut Effects) {
        if !self.guarded() {
            return;
        }
        let iv = self.work.intervals.heartbeat;
        let g = &mut self.confirm.guard;
        g.recent.push_back(now.mono);
        while g.recent.front().is_some_and(|t| *t < now.mono - iv) {
            g.recent.pop_front();
        }
        let n = g.recent.len();
        if n as f64 >= (SHARE * self.hosts.len() as f64).ceil() {
            let why = format!("{n} of {} hosts went silent within {iv:.1}s", self.hosts.len());
            self.isolate(why, now, fx);
        }
    }

    /// The loop served a timer `lag` seconds late.
    pub(super) fn note_lag(&mut self, lag: f64, now: Now, fx: &mut Effects) {
        let iv = self.work.intervals.heartbeat;
        if self.guarded() && lag > iv.max(1.0) {
            self.isolate(format!("the server's own loop stalled for {lag:.1}s"), now, fx);
        }
    }

    fn isolate(&mut self, why: String, now: Now, fx: &mut Effects) {
        let iv = self.work.intervals.heartbeat;
        let until = now.mono + (HOLD_INTERVALS * iv).max(MIN_HOLD);
        let g = &mut self.confirm.guard;
        let first = g.until.is_none();
        g.until = Some(g.until.map_or(until, |u: f64| u.max(until)));
        fx.timer(until, Tick::Server(ServerTick::IsolationEnd));
        if first {
            log::warn!("server isolated: {why}; holding downs");
            let c = HostChange {
                host: self.host.clone(),
                kind: ChangeKind::Isolated(true),
                time: now.wall,
                message: format!("server isolated: {why}; down alerts held and confirmed"),
            };
            self.emit_changes(vec![c], now, fx);
        }
    }

    /// Emits a confirmed down, or holds it while the server is isolated.
    pub(super) fn emit_or_hold(&mut self, c: HostChange, out: &mut Vec<HostChange>) {
        let down = matches!(c.kind, ChangeKind::Heartbeat { new: Reach::Down, .. });
        if down && self.confirm.guard.until.is_some() {
            self.confirm.guard.held.retain(|h| h.host != c.host);
            self.confirm.guard.held.push(c);
        } else {
            out.push(c);
        }
    }

    /// A held host is back: drop its down (true when it was held).
    pub(super) fn release_held(&mut self, host: &str) -> bool {
        let g = &mut self.confirm.guard;
        let before = g.held.len();
        g.held.retain(|h| h.host != host);
        g.held.len() != before
    }

    /// The hold's end: the held hosts still down are told now.
    pub(super) fn isolation_end(&mut self, now: Now, fx: &mut Effects) {
        let g = &mut self.confirm.guard;
        match g.until {
            Some(u) if u <= now.mono + 1e-3 => {}
            _ => return,
        }
        g.until = None;
        g.recent.clear();
        let held = std::mem::take(&mut g.held);
        let mut out = vec![HostChange {
            host: self.host.clone(),
            kind: ChangeKind::Isolated(false),
            time: now.wall,
            message: format!("isolation hold over; {} host(s) still down", held.len()),
        }];
        for mut c in held {
            if self.table.host(&c.host).is_some_and(|h| h.state == Reach::Down) {
                c.message = format!("{} (held while the server suspected itself)", c.message);
                c.time = now.wall;
                out.push(c);
            }
        }
        log::warn!("server isolation over: {} held down(s) sent", out.len() - 1);
        self.emit_changes(out, now, fx);
    }
}
