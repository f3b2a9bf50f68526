//! What handlers ask the event loop to do, and the names of everything the
//! loop runs on their behalf: timers (`Tick`), outgoing calls (`CallOwner`),
//! helper-thread work (`Job`/`Done`). The role parts (client, server)
//! import this module, never `state.rs`, so `State` can own them without a
//! circle; a new timer or call kind of a role is a variant here. Below the
//! roles: imports only data types (`work`, `probes`, `notify`, `upgrade::task`,
//! `names`).

use crate::conf::Conf;
use crate::work::model::Work;
use crate::work::version::Version;
use std::net::{IpAddr, SocketAddr};

/// Timers of the daemon.
#[derive(Debug, Clone, PartialEq)]
pub enum Tick {
    /// Close an incoming connection if it is still open past its deadline.
    ConnDeadline(usize),
    /// Abort an outgoing call still running past its deadline.
    CallDeadline(usize),
    Client(ClientTick),
    Server(ServerTick),
    RotateLog,
    /// Re-arm the heartbeat socket after a coalescing pause.
    UdpRearm,
    /// Give the heartbeat buffers' pages back if the socket rested since.
    UdpRelease,
    /// Tell systemd's watchdog the loop is turning (`WATCHDOG=1`).
    Watchdog,
    /// Look the work's names up again (round `gen` armed it; older ones are stale).
    Names(u64),
}

/// Who asked for an outgoing call, so its result goes back there.
#[derive(Debug, Clone, PartialEq)]
pub enum CallOwner {
    /// Part `index` of a deferred answer of session `token`.
    Session {
        token: usize,
        index: usize,
    },
    Client(ClientCall),
    Server(ServerCall),
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
    Probe(crate::probes::ProbeJob),
    Notify(Box<crate::notify::NotifyJob>),
    Upgrade(Box<crate::upgrade::task::UpgradeTask>),
    /// Names of the work to look up (`names.rs`).
    Resolve(crate::names::ResolveJob),
}

pub enum Done {
    Probe(crate::probes::ProbeDone),
    Notify(crate::notify::NotifyDone),
    Upgrade(crate::upgrade::task::UpgradeDone),
    Names(crate::names::Resolved),
    /// The client's history thread (`store/thread.rs`): writes done, an
    /// EVENTS batch, an answer for a waiting session.
    History(crate::store::StoreDone),
    /// The server's store thread finished a drain (`server/store/mod.rs`).
    Store(Vec<StoreAnswer>),
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
/// helper's result names it, and the part hands the answer to
/// `Effects::answers`.
pub type Ticket = u64;

/// A ticket never used before in this process.
pub fn new_ticket() -> Ticket {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// What the server's store thread answers, after the commit of its drain
/// (`server/store/mod.rs`; the server applies them in `server/stored.rs`).
#[derive(Debug)]
pub enum StoreAnswer {
    /// EVENTS: `n` events received, `new` stored (None: the store failed).
    Events {
        ticket: Ticket,
        n: usize,
        new: Option<usize>,
    },
    /// REPORT of `host` (received at `time` from `ip`), stored or not;
    /// `work_lm`: the host's work version as its answer tells it.
    Report {
        ticket: Ticket,
        host: String,
        time: f64,
        ip: String,
        body: serde_json::Value,
        stored: bool,
        work_lm: crate::work::version::Version,
    },
    /// A verb's answer as values (CLIENTS, ACK, SILENCE), framed by
    /// `verbs/`; `notify_in`: a Notify tick is due that many seconds from now.
    Verb {
        ticket: Ticket,
        answer: crate::answer::Answered,
        notify_in: Option<f64>,
    },
    Jobs {
        jobs: Vec<crate::notify::NotifyJob>,
        next: Option<f64>,
    },
    /// A delivery's outcome is recorded: it may be handed out again.
    Recorded {
        id: i64,
        next: Option<f64>,
    },
    /// server.db is open and read (or found unusable): what the server
    /// keeps in memory is in `Store::take_started`. First of all answers.
    Started,
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
    /// Answers for sessions waiting on a ticket (`Reply::Wait`), as
    /// values: the loop has `verbs::answered` frame them.
    pub answers: Vec<(Ticket, crate::answer::Answered)>,
    /// Refusals found after the answer left the verb (a store that failed
    /// the request): reason and count, added to the refusal counters.
    pub refused: Vec<(String, u64)>,
}

impl Effects {
    pub fn timer(&mut self, at: f64, t: Tick) {
        self.timers.push((at, t));
    }
    pub fn call(&mut self, owner: CallOwner, addr: SocketAddr, line: String, timeout: f64) {
        self.calls.push(CallReq { owner, addr, line, timeout });
    }
}

/// What a role part is built from: `run.rs` takes it from `State`
/// (`State::setup`), so the parts never see `State`.
pub struct Setup<'a> {
    pub conf: &'a Conf,
    pub hostname: &'a str,
    pub work: &'a Work,
    /// The work's version (`work::version`).
    pub work_lm: Version,
    /// The server's command address, as `State::server_cmd_addr` has it.
    pub server_cmd: Option<SocketAddr>,
    /// Addresses counted as this host itself (besides loopback).
    pub own_addrs: &'a [IpAddr],
    /// The work's names as resolved so far (`names.rs`).
    pub names: &'a crate::names::Names,
    /// How helper threads that outlive one job (the server's store thread,
    /// the client's history thread) reach the loop.
    pub wake: &'a Wake,
}

/// A client timer and the generation of the chain that armed it
/// (`client/ticks.rs`).
#[derive(Debug, Clone, PartialEq)]
pub enum ClientTick {
    Round(u64),
    Report(u64),
    Heartbeat(u64),
    CheckWork(u64),
    Zap(u64),
    EventsRetry(u64),
    /// A fallback delivery's retry time has come.
    Fallback(u64),
    /// A mount probe started at `started` (monotonic) is due: not a chain.
    ProbeDeadline {
        item: String,
        started: f64,
    },
}

/// The client's outgoing calls, so each answer finds its handler.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientCall {
    Report,
    Events(Vec<String>),
    WorkLm,
    Work,
    AllSend,
    /// A `tcp:` probe's non-blocking connect, started at this monotonic time.
    Tcp {
        item: String,
        started: f64,
    },
}

/// Server timers; the periodic ones carry their chain's generation
/// (`timers::Chain`), so a rebuilt server part never runs two schedules.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerTick {
    CheckHosts,
    Persist(u64),
    Cleanup(u64),
    Notify,
    /// The poll of the work-files (`ival_check_work`).
    CheckWork(u64),
    /// The end of an isolation hold (`server/isolate.rs`).
    IsolationEnd,
    /// The next slice of the store thread's answers (`server/stored.rs`).
    StoreBacklog,
    /// The next slice of the host table's periodic save (`server/beats.rs`).
    PersistMore,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerCall {
    /// A probe of a suspected host (`server/confirm.rs`).
    Confirm(Ask),
}

/// One confirmation probe's reference, carried by its call.
#[derive(Debug, Clone, PartialEq)]
pub struct Ask {
    pub id: u64,
    pub host: String,
    /// None: the server's own PING.
    pub by: Option<String>,
}
