//! The client's timers. Every periodic job (probe round, report, heartbeat,
//! WORK_LM poll, ZAP, events retry) is one [`Chain`]: arming it again (a
//! reload, SEND, a WORK answer) replaces the pending tick instead of adding
//! a second schedule, because a tick of an older generation is dropped
//! without re-arming. So after any number of reloads each job runs once per
//! interval.

use super::Client;
use crate::clock::Now;
use crate::effects::{ClientTick, Effects, Tick};
use crate::timers::Chain;

/// ZAP runs this long after start-up, then hourly.
const ZAP_FIRST: f64 = 60.0;
const ZAP_EVERY: f64 = 3600.0;

#[derive(Debug, Default)]
pub(super) struct Chains {
    round: Chain,
    report: Chain,
    heartbeat: Chain,
    check_work: Chain,
    zap: Chain,
    events_retry: Chain,
    fallback: Chain,
}

impl Chains {
    fn is_current(&self, t: &ClientTick) -> bool {
        match *t {
            ClientTick::Round(g) => self.round.is_current(g),
            ClientTick::Report(g) => self.report.is_current(g),
            ClientTick::Heartbeat(g) => self.heartbeat.is_current(g),
            ClientTick::CheckWork(g) => self.check_work.is_current(g),
            ClientTick::Zap(g) => self.zap.is_current(g),
            ClientTick::EventsRetry(g) => self.events_retry.is_current(g),
            ClientTick::Fallback(g) => self.fallback.is_current(g),
            ClientTick::ProbeDeadline { .. } => true,
        }
    }
}

impl Client {
    /// The first heartbeat, round and ZAP of a new client.
    pub(super) fn arm_all(&mut self, now: Now, fx: &mut Effects) {
        self.arm_heartbeat(now.mono + 0.05, fx);
        self.arm_round(now.mono + 0.2, fx);
        let g = self.chains.zap.arm();
        fx.timer(now.mono + ZAP_FIRST, Tick::Client(ClientTick::Zap(g)));
    }

    /// (Re)starts the heartbeats: the next one at `at`.
    pub(super) fn arm_heartbeat(&mut self, at: f64, fx: &mut Effects) {
        let g = self.chains.heartbeat.arm();
        fx.timer(at, Tick::Client(ClientTick::Heartbeat(g)));
    }

    /// (Re)starts the probe rounds: the next one at `at`.
    pub(super) fn arm_round(&mut self, at: f64, fx: &mut Effects) {
        let g = self.chains.round.arm();
        fx.timer(at, Tick::Client(ClientTick::Round(g)));
    }

    /// (Re)schedules the next report `after` seconds from now.
    pub(super) fn schedule_report(&mut self, now: Now, fx: &mut Effects, after: f64) {
        self.next_report_wall = now.wall + after;
        let g = self.chains.report.arm();
        fx.timer(now.mono + after, Tick::Client(ClientTick::Report(g)));
    }

    /// (Re)schedules the next WORK_LM poll (or WORK while we have none).
    pub(super) fn schedule_check_work(&mut self, now: Now, fx: &mut Effects, after: f64) {
        let g = self.chains.check_work.arm();
        fx.timer(now.mono + after, Tick::Client(ClientTick::CheckWork(g)));
    }

    pub(super) fn schedule_events_retry(&mut self, now: Now, fx: &mut Effects, after: f64) {
        let g = self.chains.events_retry.arm();
        fx.timer(now.mono + after, Tick::Client(ClientTick::EventsRetry(g)));
    }

    /// (Re)schedules the next try of the fallback delivery that is owed.
    pub(super) fn schedule_fallback(&mut self, at: f64, fx: &mut Effects) {
        let g = self.chains.fallback.arm();
        fx.timer(at, Tick::Client(ClientTick::Fallback(g)));
    }

    pub fn on_tick(&mut self, t: ClientTick, now: Now, fx: &mut Effects) {
        if !self.chains.is_current(&t) {
            // Replaced by a later arming of the same job: not a second schedule.
            return;
        }
        match t {
            ClientTick::CheckWork(_) => {
                if self.fetches_work {
                    self.poll_work(now, fx);
                }
            }
            ClientTick::Round(_) => {
                self.round(now, fx);
                self.arm_round(now.mono + self.work.intervals.make_state.max(0.2), fx);
            }
            ClientTick::Report(_) => {
                if self.report_call == super::sync::ReportCall::Idle {
                    self.send_report(now, fx);
                }
                self.schedule_report(now, fx, self.work.intervals.send_report);
            }
            ClientTick::Zap(_) => {
                let keep = self.work.intervals.keep_history;
                self.store.send(crate::store::StoreReq::Zap { now: now.wall, keep });
                let g = self.chains.zap.arm();
                fx.timer(now.mono + ZAP_EVERY, Tick::Client(ClientTick::Zap(g)));
            }
            ClientTick::EventsRetry(_) => self.send_events(now, fx),
            ClientTick::Fallback(_) => self.pump_fallback(now, fx),
            ClientTick::ProbeDeadline { item, started } => {
                self.probe_deadline(item, started, now, fx)
            }
            ClientTick::Heartbeat(_) => {
                self.heartbeat(now, fx);
                self.arm_heartbeat(now.mono + self.work.intervals.heartbeat.max(0.05), fx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rearmed_chain_drops_its_old_tick() {
        let mut c = Chains::default();
        let g1 = c.round.arm();
        let g2 = c.round.arm();
        assert!(!c.is_current(&ClientTick::Round(g1)));
        assert!(c.is_current(&ClientTick::Round(g2)));
        // Chains are independent: a report arming leaves the round alone.
        let r = c.report.arm();
        assert!(c.is_current(&ClientTick::Round(g2)) && c.is_current(&ClientTick::Report(r)));
        assert!(!c.is_current(&ClientTick::Report(g2)));
    }
}
