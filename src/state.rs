//! Everything the daemon knows, owned by the event-loop thread: conf, work,
//! the role parts (client, server, pagemaker), counters. Near the top of the
//! crate: `verbs/`, `run.rs` and `event_loop/` take `&mut State`; the role
//! parts never do (they get a `Setup` to start from, `Now`, and push
//! `effects::Effects`), so they do not import this module back. Only
//! `event_loop/` turns effects into I/O.

use crate::clock::Now;
use crate::conf::Conf;
use crate::effects::{CallOwner, Effects, Setup};
use crate::session::CallResult;
use crate::work::model::{Roles, Work};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Counters of refused input, by reason.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Counters {
    pub commands: u64,
    pub refused: BTreeMap<String, u64>,
}

impl Counters {
    pub fn refuse(&mut self, reason: &str) {
        self.refuse_n(reason, 1);
    }

    pub fn refuse_n(&mut self, reason: &str, n: u64) {
        *self.refused.entry(reason.to_string()).or_insert(0) += n;
    }
}

/// Addresses the daemon listens on.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub cmd: SocketAddr,
    pub udp: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
}

pub struct State {
    pub conf: Conf,
    pub hostname: String,
    pub work: Work,
    /// The running work's version (work-file mtime in ms, `work::version`).
    pub work_lm: crate::work::version::Version,
    pub started: f64,
    pub secret: String,
    pub counters: Counters,
    pub bound: Bound,
    pub client: Option<crate::client::Client>,
    pub server: Option<crate::server::Server>,
    /// The dashboard: its own threads; the loop only starts and stops it.
    pub pmaker: Option<crate::pagemaker::Pagemaker>,
    pub stop: bool,
    pub reload: bool,
    /// Addresses counted as this host itself (besides loopback 127.0.0.1/::1).
    pub own_addrs: Vec<IpAddr>,
    /// What SIGUSR1 execs, resolved at start (or why it cannot).
    pub reexec: Result<crate::reexec::Plan, String>,
    /// UPGRADE: the server's offer, this host's last outcome.
    pub upgrade: crate::upgrade::Local,
    /// The work's names, resolved off the loop; every address check reads it.
    pub names: crate::names::Names,
    /// The lookups in flight for `names`.
    pub names_round: crate::names::Round,
    /// The worker pool's numbers, copied by the loop before each command.
    pub pool: crate::pool::stats::PoolStats,
    /// The loop's turn costs by source, copied like `pool`.
    pub turns: crate::event_loop::turns::TurnStats,
    /// How helper threads that outlive one job (the server's store thread,
    /// the client's history thread) reach the loop.
    pub wake: crate::effects::Wake,
}

impl State {
    pub fn roles(&self) -> Roles {
        self.work.roles
    }

    /// `client`, `client+server`, `client+server+pmaker` ...
    pub fn roles_text(&self) -> String {
        roles_text(self.roles())
    }

    /// Localhost proper: 127.0.0.1, ::1, or one of this host's own addresses.
    pub fn is_local(&self, ip: IpAddr) -> bool {
        let ip = crate::work::addr::canonical_ip(ip);
        ip == IpAddr::from([127, 0, 0, 1])
            || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            || self.own_addrs.contains(&ip)
    }

    /// The address of this host's server, as a socket address for calls
    /// (from the names table: no lookup here).
    pub fn server_cmd_addr(&self) -> Option<SocketAddr> {
        self.names.sock(&self.work.server.address, self.work.server.ports.port)
    }

    /// What the role parts are built from.
    pub fn setup(&self) -> Setup<'_> {
        Setup {
            conf: &self.conf,
            hostname: &self.hostname,
            work: &self.work,
            work_lm: self.work_lm,
            server_cmd: self.server_cmd_addr(),
            own_addrs: &self.own_addrs,
            names: &self.names,
            wake: &self.wake,
        }
    }

    /// May `ip` talk to this host's command port at all? Reads only the
    /// names table and the server's host index, never the resolver.
    pub fn allowed(&self, ip: IpAddr) -> bool {
        let ip = crate::work::addr::canonical_ip(ip);
        if self.is_local(ip) {
            return true;
        }
        if self.server_cmd_addr().is_some_and(|a| a.ip() == ip) {
            return true;
        }
        self.server.as_ref().is_some_and(|s| s.host_by_ip(ip).is_some())
    }

    pub fn handle_call_result(
        &mut self,
        owner: CallOwner,
        res: CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        match owner {
            CallOwner::Client(c) => {
                if let Some(cl) = self.client.as_mut() {
                    cl.on_call(c, res, now, fx);
                }
            }
            CallOwner::Server(c) => {
                if let Some(sv) = self.server.as_mut() {
                    sv.on_call(c, res, now, fx);
                }
            }
            CallOwner::Session { .. } => {}
        }
    }
}

/// `client`, `client+server`, `client+server+pmaker` ...
pub fn roles_text(r: Roles) -> String {
    let mut v = Vec::new();
    if r.client {
        v.push("client");
    }
    if r.server {
        v.push("server");
    }
    if r.pmaker {
        v.push("pmaker");
    }
    if v.is_empty() {
        "none".into()
    } else {
        v.join("+")
    }
}
