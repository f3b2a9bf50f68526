//! The one mio thread: command listener and its sessions, outgoing calls,
//! the heartbeat UDP sockets, timers, signals (signalfd) and the waker for
//! helper threads. Protocol lives elsewhere; this file owns the turn: what
//! each source may do in it (a bounded share, timed into `turns.rs`) and
//! the dispatch by token. Sessions are in `sessions.rs`, calls in
//! `calls.rs`, ticks, signals and helper results in `ticks.rs`.

mod accept;
mod calls;
pub mod mmsg;
pub mod names;
mod sessions;
mod ticks;
pub mod turns;
mod udp;

pub use calls::connect_from;

use crate::clock::Now;
use crate::effects::{CallOwner, CallReq, Done, Effects, Tick};
use crate::session::{Call, Phase, Session};
use crate::state::State;
use crate::timers::Timers;
use crate::verbs::reply::Deferred;
use mio::net::{TcpListener, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::collections::{HashMap, VecDeque};
use std::os::fd::AsRawFd;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Instant;
use turns::{Source, TurnStats};

const CMD_LISTENER: Token = Token(0);
const UDP_SERVER: Token = Token(1);
const SIGNALS: Token = Token(2);
const WAKER: Token = Token(3);
const UDP_CLIENT: Token = Token(4);
/// Connections and calls are numbered from here; tokens are never reused.
const FIRST_CONN: usize = 16;

/// Most incoming connections at once; the next is told `busy`.
pub const MAX_SESSIONS: usize = 256;
/// A session must have sent its line and taken its answer within this.
pub const SESSION_TIMEOUT: f64 = 10.0;
/// The heartbeat socket's pause between drains under load (seconds).
const UDP_COALESCE: f64 = 0.002;
/// An UPGRADE session (a rollout, an install, a BINARY transfer) may last this.
pub const UPGRADE_SESSION_TIMEOUT: f64 = 600.0;
/// Most outgoing calls in flight; more wait in a queue.
pub const MAX_CALLS: usize = 256;
/// Largest answer accepted from another host (a client's DUMP, HIST Y).
pub const MAX_ANSWER: usize = 16 * 1024 * 1024;

/// Timers fired in one turn at most (the rest are due at once next turn).
const TIMERS_PER_TURN: usize = 1024;
/// Helper results taken in one turn at most.
const DONE_PER_TURN: usize = 256;
/// Connections accepted in one turn at most.
pub const ACCEPTS_PER_TURN: usize = 64;
/// Outgoing connections started in one turn at most: a loopback connect
/// does its handshake inside the syscall (tens of µs), so 256 queued
/// confirmation probes started at once would hold the turn for ms.
const CALL_STARTS_PER_TURN: usize = 32;
/// Time after which the timers and the helper results stop taking more in
/// this turn (µs): whatever is left is due at once and served next turn,
/// after the sockets. Checked between items, so one item may run over.
const SHARE_BUDGET_US: u64 = 1_000;

/// Sources that had more than their share of a turn: served again next
/// turn, which then polls without waiting (mio is edge-triggered: no new
/// readiness would say they still have work).
#[derive(Debug, Default, Clone, Copy)]
struct Again {
    udp_server: bool,
    udp_client: bool,
    accept: bool,
    /// Helper results left in the channel (the waker is not re-fired).
    results: bool,
    /// Queued outgoing calls with room to start.
    calls: bool,
}

impl Again {
    fn any(&self) -> bool {
        self.udp_server || self.udp_client || self.accept || self.results || self.calls
    }
}

/// Microseconds since `t`.
fn us_since(t: Instant) -> u64 {
    t.elapsed().as_micros() as u64
}

/// Why the loop ended.
#[derive(Debug, PartialEq)]
pub enum Exit {
    Stop,
    Reexec,
}

/// The signals the loop handles; blocked in every thread, read by signalfd.
pub fn signal_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [Signal::SIGHUP, Signal::SIGUSR1, Signal::SIGTERM, Signal::SIGINT] {
        s.add(sig);
    }
    s
}

/// Blocks the loop's signals in the calling thread (and threads it spawns
/// later). Call before starting any thread.
pub fn block_signals() -> crate::error::Result<()> {
    signal_set()
        .thread_block()
        .map_err(|e| crate::error::Error::io("block signals", std::io::Error::from(e)))
}

struct Pending {
    deferred: Deferred,
    results: Vec<Option<crate::session::CallResult>>,
    left: usize,
}

pub struct EventLoop {
    poll: Poll,
    listener: TcpListener,
    udp_server: Option<UdpSocket>,
    udp_client: Option<UdpSocket>,
    sigfd: SignalFd,
    /// Results of jobs (the pool holds the sending side and the waker).
    done_rx: Receiver<Done>,
    sessions: HashMap<usize, Session>,
    /// Open sessions per (canonical) peer address.
    per_source: HashMap<std::net::IpAddr, u32>,
    calls: HashMap<usize, (Call, CallOwner)>,
    queued_calls: VecDeque<CallReq>,
    pending: HashMap<usize, Pending>,
    next_token: usize,
    timers: Timers<Tick>,
    epoch: Instant,
    /// Source address for outgoing connections (the host's bind address).
    bind_ip: Option<std::net::IpAddr>,
    udp_buf: Vec<u8>,
    /// The server socket's batch buffers (made with the socket: a plain
    /// client never has them).
    udp_bufs: Option<Box<(mmsg::Received, mmsg::Outgoing)>>,
    /// Monotonic time of the last heartbeat drain.
    udp_last_drain: f64,
    /// The heartbeat socket is deregistered until a UdpRearm tick.
    udp_parked: bool,
    /// The last full heartbeat share waited for a core (`udp.rs`).
    udp_contended: bool,
    /// Receive slots written since their pages were last given back, and
    /// whether a UdpRelease tick is armed (`udp.rs`).
    udp_touched: usize,
    udp_release_armed: bool,
    early_results: Vec<(CallOwner, crate::session::CallResult)>,
    /// What to serve again next turn (a share of the turn was used up).
    again: Again,
    /// The start-up code pages were dropped (`footprint::trim_code`).
    trimmed: bool,
    /// systemd's notify socket (a no-op without one).
    notifier: crate::systemd::Notifier,
    /// Runs the jobs handlers ask for (bounded; `pool/`).
    pool: crate::pool::Pool,
    /// Sessions waiting for a helper's answer (`Reply::Wait`), by ticket.
    waiting: HashMap<crate::effects::Ticket, usize>,
    /// What each turn cost, by source (STATE `-- loop ...`).
    turns: TurnStats,
    /// Outgoing connections started this turn (see [`CALL_STARTS_PER_TURN`]).
    call_starts: usize,
    /// Sessions accepted this turn, read at once (`accept.rs`).
    fresh: Vec<usize>,
}

/// Sockets bound before the loop starts (so `start` can report failures).
pub struct Sockets {
    pub listener: std::net::TcpListener,
    pub udp_server: Option<std::net::UdpSocket>,
    pub udp_client: Option<std::net::UdpSocket>,
    pub bind_ip: Option<std::net::IpAddr>,
}

impl EventLoop {
    pub fn new(s: Sockets) -> crate::error::Result<EventLoop> {
        let io = |op: &str, e: std::io::Error| crate::error::Error::io(op, e);
        let poll = Poll::new().map_err(|e| io("create poll", e))?;
        let sigfd =
            SignalFd::with_flags(&signal_set(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
                .map_err(|e| io("signalfd", e.into()))?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| io("waker", e))?);
        s.listener.set_nonblocking(true).map_err(|e| io("listener nonblocking", e))?;
        let mut listener = TcpListener::from_std(s.listener);
        let reg = poll.registry();
        reg.register(&mut listener, CMD_LISTENER, Interest::READABLE)
            .map_err(|e| io("register", e))?;
        reg.register(&mut SourceFd(&sigfd.as_raw_fd()), SIGNALS, Interest::READABLE)
            .map_err(|e| io("register signals", e))?;
        let (done_tx, done_rx) = channel();
        let pool = crate::pool::Pool::new(
            crate::pool::DEFAULT_WORKERS,
            crate::pool::DEFAULT_QUEUE,
            done_tx,
            waker,
        );
        let mut el = EventLoop {
            poll,
            listener,
            udp_server: None,
            udp_client: None,
            sigfd,
            done_rx,
            sessions: HashMap::new(),
            per_source: HashMap::new(),
            calls: HashMap::new(),
            queued_calls: VecDeque::new(),
            pending: HashMap::new(),
            next_token: FIRST_CONN,
            timers: Timers::new(),
            epoch: Instant::now(),
            bind_ip: s.bind_ip,
            udp_buf: vec![0u8; 65536],
            udp_bufs: None,
            udp_last_drain: f64::NEG_INFINITY,
            udp_parked: false,
            udp_contended: false,
            udp_touched: 0,
            udp_release_armed: false,
            early_results: Vec::new(),
            again: Again::default(),
            trimmed: false,
            notifier: crate::systemd::Notifier::none(),
            pool,
            waiting: HashMap::new(),
            turns: TurnStats::default(),
            call_starts: 0,
            fresh: Vec::new(),
        };
        el.set_udp(s.udp_server, s.udp_client)?;
        Ok(el)
    }

    /// Takes systemd's notifier and starts the watchdog pings, which only
    /// this loop's timers send: a loop that stops turning stops them.
    pub fn set_notifier(&mut self, n: crate::systemd::Notifier) {
        if n.watchdog_every().is_some() {
            let now = self.now();
            self.timers.at(now.mono, Tick::Watchdog);
        }
        self.notifier = n;
    }

    /// The pool's size and queue bound (conf `workers`, `workers_queue`).
    pub fn set_pool(&mut self, size: usize, queue: usize) {
        self.pool.resize(size, queue);
    }

    /// The way back to this loop for long-lived helper threads.
    pub fn wake(&self) -> crate::effects::Wake {
        self.pool.wake()
    }

    pub fn notifier(&self) -> &crate::systemd::Notifier {
        &self.notifier
    }

    pub fn now(&self) -> Now {
        Now { mono: self.epoch.elapsed().as_secs_f64(), wall: Now::wall_now() }
    }

    /// Runs until STOP/TERM (or USR1 asks for a re-exec). `on_reload` is
    /// called on HUP and WORK_RELOAD; it may swap the UDP sockets.
    pub fn run(
        &mut self,
        st: &mut State,
        fx: &mut Effects,
        on_reload: &mut dyn FnMut(&mut State, &mut EventLoop, Now, &mut Effects),
    ) -> crate::error::Result<Exit> {
        let mut events = Events::with_capacity(1024);
        self.settle_effects(st, fx);
        loop {
            if st.stop {
                return Ok(Exit::Stop);
            }
            let now = self.now();
            let timeout = if self.again.any() {
                std::time::Duration::ZERO
            } else {
                self.timers.timeout(now.mono, 3600.0)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(crate::error::Error::io("poll", e));
            }
            let began = Instant::now();
            let now = self.now();
            self.call_starts = 0;
            // Each source gets a bounded share of the turn; what one left
            // over is served after everything that became ready meanwhile.
            let again = std::mem::take(&mut self.again);
            let mut woken = again.results;
            // The command port first (issue 18): a PING that arrived with a
            // heartbeat share is answered before that share, not after it.
            let t = Instant::now();
            if again.accept || events.iter().any(|ev| ev.token() == CMD_LISTENER) {
                self.accept(st, now);
                self.serve_fresh(st, now, fx);
                self.turns.note(Source::Accept, us_since(t));
            }
            for ev in events.iter() {
                let t = Instant::now();
                let src = match ev.token() {
                    CMD_LISTENER => continue,
                    UDP_SERVER => {
                        self.read_udp_server(st, now, fx);
                        Source::Udp
                    }
                    UDP_CLIENT => {
                        self.read_udp_client(st, now, fx);
                        Source::Udp
                    }
                    SIGNALS => {
                        if let Some(Exit::Reexec) = self.read_signals(st) {
                            return Ok(Exit::Reexec);
                        }
                        Source::Sessions
                    }
                    WAKER => {
                        woken = true;
                        continue;
                    }
                    Token(t) if self.sessions.contains_key(&t) => {
                        self.session_event(t, ev.is_readable(), st, now, fx);
                        Source::Sessions
                    }
                    Token(t) => {
                        self.call_event(t, st, now, fx);
                        Source::Calls
                    }
                };
                self.turns.note(src, us_since(t));
            }
            let t = Instant::now();
            if again.udp_server && !self.udp_parked {
                self.read_udp_server(st, now, fx);
            }
            if again.udp_client {
                self.read_udp_client(st, now, fx);
            }
            if again.udp_server || again.udp_client {
                self.turns.note(Source::Udp, us_since(t));
            }
            if woken {
                let t = Instant::now();
                let reexec = self.take_results(st, now, fx);
                self.turns.note(Source::Results, us_since(t));
                if reexec {
                    return Ok(Exit::Reexec);
                }
            }
            let t = Instant::now();
            for i in 0..TIMERS_PER_TURN {
                // Those left are due at once: the next poll does not wait.
                if i > 0 && us_since(t) > SHARE_BUDGET_US {
                    break;
                }
                let Some(tick) = self.timers.pop_due(now.mono) else { break };
                self.on_tick(tick, st, now, fx);
            }
            self.turns.note(Source::Timers, us_since(t));
            if !self.trimmed && now.mono > crate::footprint::TRIM_AFTER {
                self.trimmed = true;
                let n = crate::footprint::trim_code();
                log::debug!("start-up over: {} KiB of code pages dropped from memory", n / 1024);
            }
            if st.reload || fx.reload || fx.new_work.is_some() {
                let t = Instant::now();
                on_reload(st, self, now, fx);
                st.reload = false;
                self.turns.note(Source::Reload, us_since(t));
            }
            self.settle_effects(st, fx);
            self.turns.turn(us_since(began));
        }
    }

    /// Carries out what this turn's handlers asked for, and delivers the
    /// results of calls that could not even start (which may ask for more).
    fn settle_effects(&mut self, st: &mut State, fx: &mut Effects) {
        let t = Instant::now();
        self.apply(fx);
        while !self.early_results.is_empty() {
            let now = self.now();
            for (owner, res) in std::mem::take(&mut self.early_results) {
                self.deliver(owner, res, st, now, fx);
            }
            self.apply(fx);
        }
        // The turn's store requests leave together (one drain for them).
        if let Some(s) = st.server.as_mut() {
            s.flush_store();
        }
        self.turns.note(Source::Effects, us_since(t));
    }

    /// Takes this turn's share of helper results: at most
    /// [`DONE_PER_TURN`], and none after [`SHARE_BUDGET_US`]; the rest wait
    /// in the channel for the next turn. True: re-exec now (an upgrade).
    fn take_results(&mut self, st: &mut State, now: Now, fx: &mut Effects) -> bool {
        let t = Instant::now();
        for i in 0..DONE_PER_TURN {
            if i > 0 && us_since(t) > SHARE_BUDGET_US {
                break;
            }
            let Ok(d) = self.done_rx.try_recv() else { return false };
            match d {
                Done::Upgrade(u) => {
                    if self.upgrade_done(u, st) {
                        return true;
                    }
                }
                d => ticks::on_done(st, d, now, fx),
            }
        }
        // Maybe more: look again next turn (the waker fired once for them).
        self.again.results = true;
        false
    }

    /// Carries out what handlers asked for.
    fn apply(&mut self, fx: &mut Effects) {
        for (at, t) in fx.timers.drain(..) {
            self.timers.at(at, t);
        }
        // The pool runs each job or fails it at once (full): never a wait.
        for job in fx.jobs.drain(..) {
            self.pool.submit(job);
        }
        for (ticket, answer) in std::mem::take(&mut fx.answers) {
            // A session that timed out or closed meanwhile gets nothing
            // (its `timeout` answer may still be going out).
            let Some(t) = self.waiting.remove(&ticket) else { continue };
            if let Some(s) = self.sessions.get_mut(&t).filter(|s| s.phase == Phase::Waiting) {
                let next = s.answer(crate::verbs::answered(answer));
                self.settle(t, next);
            }
        }
        if let Some(u) = &self.udp_client {
            for (to, d) in fx.datagrams.drain(..) {
                let _ = u.send_to(&d, to);
            }
        } else {
            fx.datagrams.clear();
        }
        self.queued_calls.extend(fx.calls.drain(..));
        let now = self.now();
        while self.calls.len() < MAX_CALLS && self.call_starts < CALL_STARTS_PER_TURN {
            let Some(req) = self.queued_calls.pop_front() else { break };
            self.call_starts += 1;
            self.start_call(req, now);
        }
        // More queued with room for them: next turn, without waiting.
        self.again.calls = !self.queued_calls.is_empty() && self.calls.len() < MAX_CALLS;
    }

    /// STATE and DUMP show the pool and the turns as they are now.
    pub(super) fn copy_stats(&self, st: &mut State) {
        st.pool = self.pool.stats();
        st.turns = self.turns.clone();
    }

    fn token(&mut self) -> usize {
        self.next_token += 1;
        self.next_token
    }

    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }
}
