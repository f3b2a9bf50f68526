//! The server role: who is alive (heartbeats), reports, durable events,
//! work distribution, fleet verbs and alerting.

pub mod db;
pub mod detector;
pub mod hosts;
pub mod udp;

use crate::command::{frame_err, Request};
use crate::state::{Effects, Now};
use crate::verbs::Reply;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq)]
pub enum ServerTick {
    CheckHosts,
    Persist,
    Cleanup,
    Notify,
    Deadman,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerCall {}

pub struct NotifyJob {}
pub struct NotifyDone {}

pub fn run_notify_job(_j: NotifyJob) -> NotifyDone {
    NotifyDone {}
}

pub struct Server {}

impl Server {
    pub fn verb(
        &mut self,
        req: &Request,
        _peer: IpAddr,
        _local: bool,
        _now: Now,
        _fx: &mut Effects,
    ) -> Reply {
        Reply::Now(frame_err(&req.verb, "not yet"))
    }
    pub fn host_by_ip(&self, _ip: IpAddr) -> Option<&str> {
        None
    }
    pub fn state_lines(&self, _out: &mut String, _now: Now) {}
    pub fn dump(&self, _now: Now) -> serde_json::Value {
        serde_json::Value::Null
    }
    pub fn on_tick(&mut self, _t: ServerTick, _now: Now, _fx: &mut Effects) {}
    pub fn on_call(
        &mut self,
        _c: ServerCall,
        _r: crate::session::CallResult,
        _now: Now,
        _fx: &mut Effects,
    ) {
    }
    pub fn read_udp(&mut self, _sock: &mio::net::UdpSocket, _now: Now, _fx: &mut Effects) {}
    pub fn on_notify_done(&mut self, _n: NotifyDone, _now: Now, _fx: &mut Effects) {}
}
