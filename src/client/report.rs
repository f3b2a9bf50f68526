//! Reports to the server: the REPORT call (this host's items as of the
//! history's last write), SEND's "report soon", and what the answer says
//! (the server's version of our work: fetch when it moved, `fetch.rs`).

use super::{sync, Client};
use crate::clock::Now;
use crate::effects::{ClientCall, Effects};

impl Client {
    pub(super) fn send_report(&mut self, now: Now, fx: &mut Effects) {
        self.report_follow.reported();
        let body = serde_json::json!({
            "host": self.host,
            "time": now.wall,
            "version": crate::VERSION,
            "work": self.work_lm,
            "items": self.reported,
        });
        if self.call_server(ClientCall::Report, format!("REPORT {body}"), fx) {
            self.report_call = sync::ReportCall::InFlight { since: now.wall };
        }
    }

    /// SEND: report within `spread` seconds; (the server reported to,
    /// when the report is due, wall clock).
    pub fn report_soon(&mut self, spread: f64, now: Now, fx: &mut Effects) -> (String, f64) {
        self.schedule_report(now, fx, sync::jitter(spread));
        (self.work.server.host.clone(), self.next_report_wall)
    }

    pub(super) fn on_report_answer(
        &mut self,
        r: crate::session::CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        self.report_call = sync::ReportCall::Idle;
        match r.and_then(|t| crate::command::parse_answer(&t)) {
            Ok(body) => {
                if let Some(lm) = sync::report_answer_lm(&body) {
                    self.server_work_lm(lm, now, fx);
                }
            }
            Err(e) => log::warn!("REPORT to the server failed: {e}"),
        }
    }
}
