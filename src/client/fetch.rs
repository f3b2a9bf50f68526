//! Work fetch: a client (not the server's own) asks its server for its
//! work (WORK) and its version (WORK_LM), backs off on failure, installs a
//! new work (`Effects::new_work`) and caches it (`sync.rs`: backoff, the
//! answer's reading, the cache file).

use super::sync::{self, WorkAnswer, WorkAsk, WorkOutcome};
use super::Client;
use crate::clock::Now;
use crate::effects::{ClientCall, Effects};

impl Client {
    /// Asks the server `ask` unless a question about the work is out
    /// (its answer decides what follows).
    pub(super) fn ask_work(&mut self, ask: WorkAsk, now: Now, fx: &mut Effects) {
        if self.work_sync.asking() {
            return;
        }
        let (call, line) = match ask {
            WorkAsk::Work => (ClientCall::Work, format!("WORK {}", self.host)),
            WorkAsk::WorkLm => (ClientCall::WorkLm, format!("WORK_LM {}", self.host)),
        };
        if self.call_server(call, line, fx) {
            self.work_sync.asked(ask, now.wall);
        }
    }

    /// The CheckWork tick: WORK until the server has given us a work, then WORK_LM.
    pub(super) fn poll_work(&mut self, now: Now, fx: &mut Effects) {
        if let Some(ask) = self.work_sync.poll() {
            self.ask_work(ask, now, fx);
        }
    }

    pub(super) fn on_work_answer(
        &mut self,
        c: ClientCall,
        r: crate::session::CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        let parsed = r
            .and_then(|t| crate::command::parse_answer(&t))
            .and_then(|b| sync::parse_work_answer(&b));
        let ask = if c == ClientCall::WorkLm { WorkAsk::WorkLm } else { WorkAsk::Work };
        let outcome = match &parsed {
            Err(_) => WorkOutcome::Failed,
            Ok(WorkAnswer::Lm(_)) => WorkOutcome::Version,
            Ok(WorkAnswer::Work(..)) => WorkOutcome::Work,
        };
        self.work_sync.answered(ask, outcome, now.wall);
        match parsed {
            Err(e) => {
                let wait = self.work_backoff.fail(self.work.intervals.check_work);
                log::warn!("{c:?} from the server failed ({e}); retrying in {wait}s");
                self.schedule_check_work(now, fx, wait);
            }
            Ok(WorkAnswer::Lm(lm)) if c == ClientCall::WorkLm => {
                self.work_backoff.ok();
                if lm > 0 && lm != self.work_lm {
                    log::info!("the server has a new work for us (lm {lm}, ours {})", self.work_lm);
                    self.ask_work(WorkAsk::Work, now, fx);
                } else {
                    self.schedule_check_work(now, fx, self.work.intervals.check_work);
                }
            }
            Ok(WorkAnswer::Lm(_)) => {
                let wait = self.work_backoff.fail(self.work.intervals.check_work);
                log::warn!("the server has no work for {}; asking again in {wait}s", self.host);
                self.schedule_check_work(now, fx, wait);
            }
            Ok(WorkAnswer::Work(w, lm)) => {
                self.work_backoff.ok();
                if !w.host.eq_ignore_ascii_case(&self.host) {
                    log::error!("the server sent the work of {} to {}", w.host, self.host);
                } else if lm != self.work_lm || self.work_lm == 0 {
                    // Versions compare exactly; the work we run has the
                    // conf's overrides applied, so it is not compared.
                    if let Err(e) = sync::write_cache(&self.cache, &w, lm) {
                        log::error!("cannot cache the work in {}: {e}", self.cache.display());
                    }
                    self.work_lm = lm;
                    fx.new_work = Some((*w, lm));
                }
                self.schedule_check_work(now, fx, self.work.intervals.check_work);
            }
        }
    }

    /// The server says our work's version (REPORT answers, ACKs): fetch when it moved.
    pub fn server_work_lm(
        &mut self,
        lm: crate::work::version::Version,
        now: Now,
        fx: &mut Effects,
    ) {
        if self.fetches_work && lm > 0 && lm != self.work_lm {
            self.ask_work(WorkAsk::Work, now, fx);
        }
    }
}
