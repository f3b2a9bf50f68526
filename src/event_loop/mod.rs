//! The one mio thread: command listener and its sessions, outgoing calls,
//! the heartbeat UDP sockets, timers, signals (signalfd) and the waker for
//! helper threads. Protocol lives elsewhere; this file only moves bytes and
//! dispatches by token.

mod accept;
pub mod names;
mod udp;

use crate::clock::Now;
use crate::command;
use crate::effects::{CallOwner, CallReq, Done, Effects, Job, Tick};
use crate::session::{Call, Next, Phase, Session};
use crate::state::State;
use crate::timers::Timers;
use crate::verbs;
use crate::verbs::reply::{Deferred, Reply};
use mio::net::{TcpListener, TcpStream, UdpSocket};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::Instant;

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

/// Sources that had more than their share of a turn: served again next
/// turn, which then polls without waiting (mio is edge-triggered: no new
/// readiness would say they still have work).
#[derive(Debug, Default, Clone, Copy)]
struct Again {
    udp_server: bool,
    udp_client: bool,
    accept: bool,
}

impl Again {
    fn any(&self) -> bool {
        self.udp_server || self.udp_client || self.accept
    }
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
    /// Monotonic time of the last heartbeat drain.
    udp_last_drain: f64,
    /// The heartbeat socket is deregistered until a UdpRearm tick.
    udp_parked: bool,
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
            udp_last_drain: f64::NEG_INFINITY,
            udp_parked: false,
            early_results: Vec::new(),
            again: Again::default(),
            trimmed: false,
            notifier: crate::systemd::Notifier::none(),
            pool,
            waiting: HashMap::new(),
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
        loop {
            self.apply(fx);
            while !self.early_results.is_empty() {
                let now = self.now();
                for (owner, res) in std::mem::take(&mut self.early_results) {
                    self.deliver(owner, res, st, now, fx);
                }
                self.apply(fx);
            }
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
            let now = self.now();
            // Each source gets a bounded share of the turn; what one left
            // over is served after everything that became ready meanwhile.
            let again = std::mem::take(&mut self.again);
            for ev in events.iter() {
                match ev.token() {
                    CMD_LISTENER => self.accept(st, now),
                    UDP_SERVER => self.read_udp_server(st, now, fx),
                    UDP_CLIENT => self.read_udp_client(st, now, fx),
                    SIGNALS => {
                        if let Some(Exit::Reexec) = self.read_signals(st) {
                            return Ok(Exit::Reexec);
                        }
                    }
                    WAKER => {
                        for i in 0.. {
                            if i == DONE_PER_TURN {
                                // The rest next turn: wake ourselves.
                                self.pool.wake_loop();
                                break;
                            }
                            let Ok(d) = self.done_rx.try_recv() else { break };
                            match d {
                                Done::Upgrade(u) => {
                                    if self.upgrade_done(u, st) {
                                        return Ok(Exit::Reexec);
                                    }
                                }
                                d => on_done(st, d, now, fx),
                            }
                        }
                    }
                    Token(t) if self.sessions.contains_key(&t) => {
                        self.session_event(t, ev.is_readable(), st, now, fx)
                    }
                    Token(t) => self.call_event(t, st, now, fx),
                }
            }
            if again.accept {
                self.accept(st, now);
            }
            if again.udp_server && !self.udp_parked {
                self.read_udp_server(st, now, fx);
            }
            if again.udp_client {
                self.read_udp_client(st, now, fx);
            }
            for _ in 0..TIMERS_PER_TURN {
                let Some(t) = self.timers.pop_due(now.mono) else { break };
                self.on_tick(t, st, now, fx);
            }
            if !self.trimmed && now.mono > crate::footprint::TRIM_AFTER {
                self.trimmed = true;
                let n = crate::footprint::trim_code();
                log::debug!("start-up over: {} KiB of code pages dropped from memory", n / 1024);
            }
            if st.reload || fx.reload || fx.new_work.is_some() {
                on_reload(st, self, now, fx);
                st.reload = false;
            }
        }
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
                let next = s.answer(verbs::answered(answer));
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
        while self.calls.len() < MAX_CALLS {
            let Some(req) = self.queued_calls.pop_front() else { break };
            self.start_call(req, now);
        }
    }

    /// An upgrade job's answer goes to its session; true: re-exec now (the
    /// answer is already in the socket, which closes at the exec).
    fn upgrade_done(&mut self, u: crate::upgrade::task::UpgradeDone, st: &mut State) -> bool {
        st.upgrade.busy = false;
        if let Some(l) = &u.last {
            st.upgrade.last = l.clone();
        }
        let text = match &u.answer {
            Ok(body) => command::frame_ok("UPGRADE", body),
            Err(why) => command::frame_err("UPGRADE", why),
        };
        if let Some(s) = self.sessions.get_mut(&u.token) {
            let next = s.answer(text);
            self.settle(u.token, next);
        }
        u.reexec
    }

    fn token(&mut self) -> usize {
        self.next_token += 1;
        self.next_token
    }

    fn session_event(
        &mut self,
        t: usize,
        readable: bool,
        st: &mut State,
        now: Now,
        fx: &mut Effects,
    ) {
        let Some(s) = self.sessions.get_mut(&t) else { return };
        let mut next = s.on_writable();
        if readable && next == Next::Continue {
            next = s.on_readable();
            if let Some(r) = s.refusal.take() {
                st.counters.refuse(&r);
            }
        }
        if let Next::Request(line) = next {
            next = self.handle_request(t, &line, st, now, fx);
        }
        self.settle(t, next);
    }

    fn handle_request(
        &mut self,
        t: usize,
        line: &[u8],
        st: &mut State,
        now: Now,
        fx: &mut Effects,
    ) -> Next {
        let Some(s) = self.sessions.get_mut(&t) else { return Next::Close };
        let peer = s.peer.ip();
        // STATE and DUMP show the pool as it is now.
        st.pool = self.pool.stats();
        let reply = match command::parse_line(line) {
            Ok(req) => {
                s.verb = req.verb.clone();
                verbs::dispatch(st, &req, peer, now, fx)
            }
            Err(e) => {
                st.counters.refuse(&format!("bad command: {e}"));
                let verb = crate::session::verb_of(line);
                Reply::Now(command::frame_err(&verb, &e.to_string()))
            }
        };
        match reply {
            Reply::Now(text) => s.answer(text),
            Reply::Shared(data) => {
                let d = now.mono + UPGRADE_SESSION_TIMEOUT;
                s.deadline = d;
                let next = s.answer_shared(data);
                self.timers.at(d, Tick::ConnDeadline(t));
                next
            }
            Reply::Job(mut task) => {
                let d = now.mono + UPGRADE_SESSION_TIMEOUT;
                s.deadline = d;
                s.phase = Phase::Waiting;
                task.token = t;
                self.timers.at(d, Tick::ConnDeadline(t));
                self.pool.submit(Job::Upgrade(Box::new(task)));
                Next::Continue
            }
            Reply::Wait(ticket) => {
                s.phase = Phase::Waiting;
                self.waiting.insert(ticket, t);
                Next::Continue
            }
            Reply::Later(d) => {
                s.phase = Phase::Waiting;
                let n = d.parts.len();
                for (i, (_, addr, line)) in d.parts.iter().enumerate() {
                    fx.call(CallOwner::Session { token: t, index: i }, *addr, line.clone(), 10.0);
                }
                if n == 0 {
                    let text = crate::verbs::reply::finish(&d, Vec::new());
                    return s.answer(text);
                }
                self.pending.insert(t, Pending { deferred: d, results: vec![None; n], left: n });
                Next::Continue
            }
        }
    }

    /// Applies a session's `Next`: re-registers interest or closes it.
    fn settle(&mut self, t: usize, next: Next) {
        let Some(s) = self.sessions.get_mut(&t) else { return };
        let close = matches!(next, Next::Close);
        if close {
            if let Some(mut s) = self.sessions.remove(&t) {
                let _ = self.poll.registry().deregister(&mut s.stream);
                self.forget_source(s.peer.ip());
            }
            self.pending.remove(&t);
            return;
        }
        if s.phase == Phase::Waiting {
            // Still registered for reading; re-arming now would report a
            // peer's half-close (`nc -N`) again at once, spinning the loop
            // until the answer (HIST on a stalled disk, a RELAY).
            return;
        }
        let interest = if s.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = self.poll.registry().reregister(&mut s.stream, Token(t), interest);
    }

    fn start_call(&mut self, req: CallReq, now: Now) {
        let deadline = now.mono + req.timeout;
        let started = connect_from(self.bind_ip, req.addr)
            .and_then(|stream| Call::start_with(stream, req.addr, &req.line, deadline, MAX_ANSWER));
        match started {
            Ok(mut call) => {
                let t = self.token();
                let interest = Interest::READABLE | Interest::WRITABLE;
                if let Err(e) = self.poll.registry().register(&mut call.stream, Token(t), interest)
                {
                    self.call_failed(req.owner, format!("register: {e}"));
                    return;
                }
                self.timers.at(deadline, Tick::CallDeadline(t));
                self.calls.insert(t, (call, req.owner));
            }
            Err(e) => self.call_failed(req.owner, format!("connect: {e}")),
        }
    }

    /// Results of calls that could not even start are delivered on the next
    /// turn through a zero-delay path: remember them as finished calls.
    fn call_failed(&mut self, owner: CallOwner, why: String) {
        self.early_results.push((owner, Err(why)));
    }

    fn call_event(&mut self, t: usize, st: &mut State, now: Now, fx: &mut Effects) {
        let Some((call, _)) = self.calls.get_mut(&t) else { return };
        let Some(res) = call.on_event() else {
            let interest = if call.wants_write() {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self.poll.registry().reregister(&mut call.stream, Token(t), interest);
            return;
        };
        if let Some((mut call, owner)) = self.calls.remove(&t) {
            let _ = self.poll.registry().deregister(&mut call.stream);
            self.deliver(owner, res, st, now, fx);
        }
    }

    fn deliver(
        &mut self,
        owner: CallOwner,
        res: crate::session::CallResult,
        st: &mut State,
        now: Now,
        fx: &mut Effects,
    ) {
        match owner {
            CallOwner::Session { token, index } => {
                let Some(p) = self.pending.get_mut(&token) else { return };
                if p.results[index].is_none() {
                    p.results[index] = Some(res);
                    p.left -= 1;
                }
                if p.left == 0 {
                    if let Some(p) = self.pending.remove(&token) {
                        let results = p
                            .results
                            .into_iter()
                            .map(|r| r.unwrap_or(Err("lost".into())))
                            .collect();
                        let text = crate::verbs::reply::finish(&p.deferred, results);
                        if let Some(s) = self.sessions.get_mut(&token) {
                            let next = s.answer(text);
                            self.settle(token, next);
                        }
                    }
                }
            }
            owner => st.handle_call_result(owner, res, now, fx),
        }
    }

    fn on_tick(&mut self, t: Tick, st: &mut State, now: Now, fx: &mut Effects) {
        match t {
            Tick::ConnDeadline(tok) => {
                let Some(s) = self.sessions.get_mut(&tok) else { return };
                if s.deadline > now.mono {
                    return;
                }
                let next = if s.phase == Phase::Reading || s.phase == Phase::Waiting {
                    st.counters.refuse("timeout");
                    s.deadline = now.mono + 2.0;
                    self.timers.at(now.mono + 2.0, Tick::ConnDeadline(tok));
                    self.pending.remove(&tok);
                    let verb = if s.verb.is_empty() { "?".to_string() } else { s.verb.clone() };
                    s.answer(command::frame_err(&verb, "timeout"))
                } else {
                    Next::Close
                };
                self.settle(tok, next);
            }
            Tick::CallDeadline(tok) => {
                if let Some((call, _)) = self.calls.get(&tok) {
                    if call.deadline <= now.mono {
                        if let Some((mut call, owner)) = self.calls.remove(&tok) {
                            let _ = self.poll.registry().deregister(&mut call.stream);
                            self.deliver(owner, Err("timeout".into()), st, now, fx);
                        }
                    }
                }
            }
            Tick::Client(ct) => {
                if let Some(c) = st.client.as_mut() {
                    c.on_tick(ct, now, fx);
                }
            }
            Tick::Server(stt) => {
                if let Some(s) = st.server.as_mut() {
                    s.on_tick(stt, now, fx);
                }
            }
            Tick::RotateLog => crate::logger::rotate_now(),
            Tick::UdpRearm => self.rearm_udp(st, now, fx),
            Tick::Names(gen) => names::on_tick(gen, st, now, fx),
            Tick::Watchdog => {
                if let Some(every) = self.notifier.watchdog_every() {
                    self.notifier.send(crate::systemd::Note::Watchdog);
                    self.timers.at(now.mono + every, Tick::Watchdog);
                }
            }
        }
    }

    fn read_signals(&mut self, st: &mut State) -> Option<Exit> {
        loop {
            match self.sigfd.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGHUP) => {
                        log::info!("SIGHUP: reloading conf and work");
                        st.reload = true;
                    }
                    Ok(Signal::SIGUSR1) => {
                        let ready =
                            st.reexec.as_ref().map_err(Clone::clone).and_then(|p| p.check());
                        match ready {
                            Ok(()) => {
                                log::info!("SIGUSR1: re-executing");
                                return Some(Exit::Reexec);
                            }
                            // Nothing is stopped for an exec that cannot work.
                            Err(e) => log::error!("SIGUSR1: cannot re-execute ({e}); running on"),
                        }
                    }
                    Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                        log::info!("signal {}: stopping", info.ssi_signo);
                        st.stop = true;
                        return Some(Exit::Stop);
                    }
                    _ => {}
                },
                Ok(None) => return None,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }

    pub fn registry(&self) -> &Registry {
        self.poll.registry()
    }
}

/// Results from helper threads go to the part that asked.
fn on_done(st: &mut State, d: Done, now: Now, fx: &mut Effects) {
    match d {
        Done::Probe(p) => {
            if let Some(c) = st.client.as_mut() {
                c.on_probe_done(p, now, fx);
            }
        }
        Done::Notify(n) if n.id == crate::client::fallback::FALLBACK_ID => {
            if let Some(c) = st.client.as_mut() {
                c.on_fallback_done(n.result, now, fx);
            }
        }
        Done::Notify(n) => {
            if let Some(s) = st.server.as_mut() {
                s.on_notify_done(n, now, fx);
            }
        }
        Done::Names(r) => names::on_resolved(r, st, now, fx),
        Done::History(d) => {
            if let Some(c) = st.client.as_mut() {
                c.on_store_done(d, now, fx);
            }
        }
        Done::Store(a) => {
            if let Some(s) = st.server.as_mut() {
                s.on_store(a, now, fx);
            }
        }
        // Answered by the loop itself (it owns the sessions).
        Done::Upgrade(_) => {}
    }
}

/// A non-blocking connect from the host's own address, so the peer sees
/// which host is calling.
pub fn connect_from(bind: Option<std::net::IpAddr>, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(to),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    if let Some(ip) = bind.filter(|ip| !ip.is_unspecified() && ip.is_ipv4() == to.is_ipv4()) {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match sock.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}
