//! The client role: items probed every `ival_make_state`, judged by their
//! fitness functions, kept in the local history; heartbeats, reports and
//! events to the server; the client verbs HIST, ZAP, SEND.

pub mod fitness;
pub mod heartbeat;

use crate::command::{frame_err, Request};
use crate::state::{Effects, Now};
use crate::verbs::Reply;
use std::net::SocketAddr;

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

pub struct Client {}

impl Client {
    pub fn verb(&mut self, req: &Request, _now: Now, _fx: &mut Effects) -> Reply {
        Reply::Now(frame_err(&req.verb, "not yet"))
    }
    pub fn state_lines(&self, _out: &mut String, _now: Now) {}
    pub fn dump(&self, _now: Now) -> serde_json::Value {
        serde_json::Value::Null
    }
    pub fn on_tick(&mut self, _t: ClientTick, _now: Now, _fx: &mut Effects) {}
    pub fn on_call(
        &mut self,
        _c: ClientCall,
        _r: crate::session::CallResult,
        _now: Now,
        _fx: &mut Effects,
    ) {
    }
    pub fn on_datagram(&mut self, _d: &[u8], _from: SocketAddr, _now: Now, _fx: &mut Effects) {}
    pub fn on_probe_done(&mut self, _p: ProbeDone, _now: Now, _fx: &mut Effects) {}
}
