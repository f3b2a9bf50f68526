//! The client role: items probed every `ival_make_state`, judged by their
//! fitness functions, kept in the local history; heartbeats, reports and
//! events to the server; the client verbs HIST, ZAP, SEND.

pub mod fitness;
pub mod sync;

use crate::command::{frame_err, Request};
use crate::state::{CallOwner, Effects, Now, State, Tick};
use crate::verbs::Reply;
use crate::work::model::Work;
use std::net::SocketAddr;
use std::path::PathBuf;
use sync::{Backoff, WorkAnswer};

#[derive(Debug, Clone, PartialEq)]
pub enum ClientTick {
    Round,
    Report,
    Heartbeat,
    CheckWork,
    Zap,
    EventsRetry,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ClientCall {
    Report,
    Events(Vec<String>),
    WorkLm,
    Work,
}

pub struct ProbeJob {}
pub struct ProbeDone {}

pub fn run_probe_job(_j: ProbeJob) -> ProbeDone {
    ProbeDone {}
}

/// Seconds a call to the server may take.
const CALL_TIMEOUT: f64 = 10.0;

pub struct Client {
    host: String,
    work: Work,
    /// The server reads its own work from disk; only other hosts fetch.
    fetches_work: bool,
    server: Option<SocketAddr>,
    work_lm: f64,
    cache: PathBuf,
    work_backoff: Backoff,
    work_call: bool,
    /// Have we got a work from the server since start-up?
    have_served_work: bool,
}

impl Client {
    pub fn start(st: &State, now: Now, fx: &mut Effects) -> crate::error::Result<Client> {
        let mut c = Client {
            host: st.hostname.clone(),
            work: st.work.clone(),
            fetches_work: !st.work.roles.server,
            server: st.server_cmd_addr(),
            work_lm: st.work_lm,
            cache: st.conf.work_cache(),
            work_backoff: Backoff::default(),
            work_call: false,
            have_served_work: false,
        };
        if c.fetches_work {
            c.call_work(now, fx);
        }
        Ok(c)
    }

    pub fn reload(&mut self, conf: &crate::conf::Conf, work: &Work, now: Now, fx: &mut Effects) {
        let _ = (conf, now, fx);
        self.work = work.clone();
        self.fetches_work = !work.roles.server;
        self.server = crate::work::addr::resolve(&work.server.address, work.server.ports.port);
    }

    pub fn shutdown(&mut self, _now: Now, _fx: &mut Effects) {}

    fn call_work(&mut self, now: Now, fx: &mut Effects) {
        self.call_server(ClientCall::Work, format!("WORK {}", self.host), now, fx);
    }

    fn call_server(&mut self, what: ClientCall, line: String, now: Now, fx: &mut Effects) {
        let Some(addr) = self.server else {
            log::error!("no address for the server {}", self.work.server.host);
            return;
        };
        if matches!(what, ClientCall::Work | ClientCall::WorkLm) {
            if self.work_call {
                return;
            }
            self.work_call = true;
        }
        let _ = now;
        fx.call(CallOwner::Client(what), addr, line, CALL_TIMEOUT);
    }

    pub fn verb(&mut self, req: &Request, _now: Now, _fx: &mut Effects) -> Reply {
        Reply::Now(frame_err(&req.verb, "not yet"))
    }

    pub fn state_lines(&self, out: &mut String, _now: Now) {
        use std::fmt::Write as _;
        if self.fetches_work {
            let _ = writeln!(
                out,
                "-- work from server {} ({})",
                self.server.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
                if self.have_served_work { "fetched" } else { "not fetched yet" }
            );
        }
    }

    pub fn dump(&self, _now: Now) -> serde_json::Value {
        serde_json::json!({"work_lm": self.work_lm, "items": self.work.items.len()})
    }

    pub fn on_tick(&mut self, t: ClientTick, now: Now, fx: &mut Effects) {
        match t {
            ClientTick::CheckWork => {
                if self.fetches_work {
                    if self.have_served_work {
                        let line = format!("WORK_LM {}", self.host);
                        self.call_server(ClientCall::WorkLm, line, now, fx);
                    } else {
                        self.call_work(now, fx);
                    }
                }
            }
            ClientTick::Round
            | ClientTick::Report
            | ClientTick::Heartbeat
            | ClientTick::Zap
            | ClientTick::EventsRetry => {}
        }
    }

    fn schedule_check_work(&self, now: Now, fx: &mut Effects, after: f64) {
        fx.timer(now.mono + after, Tick::Client(ClientTick::CheckWork));
    }

    pub fn on_call(&mut self, c: ClientCall, r: crate::session::CallResult, now: Now, fx: &mut Effects) {
        match c {
            ClientCall::Work | ClientCall::WorkLm => self.on_work_answer(c, r, now, fx),
            ClientCall::Report | ClientCall::Events(_) => {}
        }
    }

    fn on_work_answer(&mut self, c: ClientCall, r: crate::session::CallResult, now: Now, fx: &mut Effects) {
        self.work_call = false;
        let parsed = r.and_then(|t| crate::command::parse_answer(&t)).and_then(|b| sync::parse_work_answer(&b));
        match parsed {
            Err(e) => {
                let wait = self.work_backoff.fail(self.work.intervals.check_work);
                log::warn!("{c:?} from the server failed ({e}); retrying in {wait}s");
                self.schedule_check_work(now, fx, wait);
            }
            Ok(WorkAnswer::Lm(lm)) if c == ClientCall::WorkLm => {
                self.work_backoff.ok();
                if lm > 0.0 && (lm - self.work_lm).abs() > 1e-6 {
                    log::info!("the server has a new work for us (lm {lm}, ours {})", self.work_lm);
                    self.call_work(now, fx);
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
                self.have_served_work = true;
                if !w.host.eq_ignore_ascii_case(&self.host) {
                    log::error!("the server sent the work of {} to {}", w.host, self.host);
                } else if *w != self.work || (lm - self.work_lm).abs() > 1e-6 {
                    if let Err(e) = sync::write_cache(&self.cache, &w) {
                        log::error!("cannot cache the work in {}: {e}", self.cache.display());
                    }
                    self.work_lm = lm;
                    fx.new_work = Some((*w, lm));
                }
                self.schedule_check_work(now, fx, self.work.intervals.check_work);
            }
        }
    }

    /// The server says our work's mtime (REPORT answers, ACKs): fetch when it moved.
    pub fn server_work_lm(&mut self, lm: f64, now: Now, fx: &mut Effects) {
        if self.fetches_work && lm > 0.0 && (lm - self.work_lm).abs() > 1e-6 {
            self.call_work(now, fx);
        }
    }

    pub fn on_datagram(&mut self, _d: &[u8], _from: SocketAddr, _now: Now, _fx: &mut Effects) {}
    pub fn on_probe_done(&mut self, _p: ProbeDone, _now: Now, _fx: &mut Effects) {}
}
