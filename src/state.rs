//! Everything the daemon knows, owned by the event-loop thread: conf, work,
//! roles and their parts, counters. Handlers take `&mut State` and `Now`
//! and return values or push `Effects` (calls to start, jobs to run off the
//! loop, timers); only `event_loop.rs` turns those into I/O.

use crate::conf::Conf;
use crate::session::CallResult;
use crate::work::model::{Roles, Work};
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

/// Both clocks: `mono` for timers, `wall` (Unix seconds) for what people see.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: f64,
    pub wall: f64,
}

impl Now {
    pub fn wall_now() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// Timers of the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    /// Close an incoming connection if it is still open past its deadline.
    ConnDeadline(usize),
    /// Abort an outgoing call still running past its deadline.
    CallDeadline(usize),
    Client(crate::client::ClientTick),
    Server(crate::server::ServerTick),
    RotateLog,
    /// Re-arm the heartbeat socket after a coalescing pause.
    UdpRearm,
    /// Tell systemd's watchdog the loop is turning (`WATCHDOG=1`).
    Watchdog,
}

/// Who asked for an outgoing call, so its result goes back there.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOwner {
    /// Part `index` of a deferred answer of session `token`.
    Session {
        token: usize,
        index: usize,
    },
    Client(crate::client::ClientCall),
    Server(crate::server::ServerCall),
}

#[derive(Debug)]
pub struct CallReq {
    pub owner: CallOwner,
    pub addr: SocketAddr,
    pub line: String,
    pub timeout: f64,
}

/// Work for helper threads; results come back as `Done`.
pub enum Job {
    Probe(crate::client::ProbeJob),
    Notify(Box<crate::server::NotifyJob>),
    Upgrade(Box<crate::upgrade::verb::UpgradeTask>),
}

pub enum Done {
    Probe(crate::client::ProbeDone),
    Notify(crate::server::NotifyDone),
    Upgrade(crate::upgrade::verb::UpgradeDone),
    /// The client's history thread (`store/thread.rs`): writes done, an
    /// EVENTS batch, an answer for a waiting session.
    History(crate::store::StoreDone),
}

/// A helper thread's way back to the loop: a `Done` on the loop's channel,
/// then a wake of its poll.
#[derive(Clone)]
pub struct Wake {
    tx: std::sync::mpsc::Sender<Done>,
    waker: std::sync::Arc<mio::Waker>,
}

impl Wake {
    pub fn new(tx: std::sync::mpsc::Sender<Done>, waker: std::sync::Arc<mio::Waker>) -> Wake {
        Wake { tx, waker }
    }

    /// False when the loop is gone.
    pub fn send(&self, d: Done) -> bool {
        let sent = self.tx.send(d).is_ok();
        let _ = self.waker.wake();
        sent
    }
}

/// A session waiting for an answer from a helper (`Reply::Wait`): the
/// helper's result names it, and the part hands the text to
/// `Effects::answers`.
pub type Ticket = u64;

/// A ticket never used before in this process.
pub fn new_ticket() -> Ticket {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What handlers ask the loop to do.
#[derive(Default)]
pub struct Effects {
    pub calls: Vec<CallReq>,
    pub jobs: Vec<Job>,
    pub timers: Vec<(f64, Tick)>,
    /// Datagrams to send from the client's heartbeat socket.
    pub datagrams: Vec<(SocketAddr, Vec<u8>)>,
    /// A new work fetched from the server, with its mtime: installed by the
    /// loop's reload path.
    pub new_work: Option<(Work, crate::work::version::Version)>,
    /// A part asks for a reload of conf and work (the server's own
    /// work-file changed), as HUP does.
    pub reload: bool,
    /// Answers for sessions waiting on a ticket (`Reply::Wait`).
    pub answers: Vec<(Ticket, String)>,
}

impl Effects {
    pub fn timer(&mut self, at: f64, t: Tick) {
        self.timers.push((at, t));
    }
    pub fn call(&mut self, owner: CallOwner, addr: SocketAddr, line: String, timeout: f64) {
        self.calls.push(CallReq { owner, addr, line, timeout });
    }
}

/// Counters of refused input, by reason.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Counters {
    pub commands: u64,
    pub refused: BTreeMap<String, u64>,
}

impl Counters {
    pub fn refuse(&mut self, reason: &str) {
        *self.refused.entry(reason.to_string()).or_insert(0) += 1;
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
    /// How helper threads that outlive one job (the server's store thread)
    /// reach the loop.
    pub wake: Wake,
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
        let ip = canonical_ip(ip);
        ip == IpAddr::from([127, 0, 0, 1])
            || ip == IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
            || self.own_addrs.contains(&ip)
    }

    /// The address of this host's server, as a socket address for calls.
    pub fn server_cmd_addr(&self) -> Option<SocketAddr> {
        crate::work::addr::resolve(&self.work.server.address, self.work.server.ports.port)
    }

    /// May `ip` talk to this host's command port at all?
    pub fn allowed(&self, ip: IpAddr) -> bool {
        let ip = canonical_ip(ip);
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

/// IPv4-mapped IPv6 addresses compare as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}
