//! The server's store thread: the one owner of `server.db` and of the
//! notification engine (`Notifier`), whose in-memory state and tables
//! change together. The event loop never calls SQLite for the server: it
//! sends a [`Req`] down a channel (never blocking) and gets [`Answer`]s
//! back as `Done::Store` through the waker. The thread opens and reads the
//! file itself (`start.rs`); requests sent meanwhile wait in the channel.
//! This file is the handle, the shared counters and the thread's turns
//! (drain, commit, snapshot); what each request does is `requests.rs`.
//!
//! Each turn takes every queued request (a drain), runs them in order in
//! one transaction (each request in its own savepoint, so one failure does
//! not undo the others) and commits once: a 10,000-host outage is a handful
//! of commits. Answers leave only after that commit, which keeps durability
//! exact: EVENTS is `ok` once its events are on disk, REPORT once stored,
//! ACK and SILENCE once recorded, and the outbox rows an event causes are
//! committed with the event itself (no alert lost on a crash). A slow disk
//! slows these answers, never the loop (PING, heartbeats and their ACKs).
//!
//! What the loop reads without asking (STATE, DUMP) is published in
//! [`Shared`]: counters, and a snapshot of the notifier's STATE lines and
//! DUMP value, rebuilt after a drain that changed it (at most every 100 ms
//! under load, and before answering a request that waited on it).
//!
//! Fault hooks, for tests, read at start in debug builds only:
//! - `HBMON_STORE_STALL=<file>`: when `<file>` appears (holding a number of
//!   seconds), the thread removes it and sleeps that long before its next
//!   drain (or before it opens the file, if it is there at start), as a
//!   hung disk would; requests queue meanwhile.
//! - `HBMON_FAULT=crash_after_store` (all builds, as before): abort after
//!   committing a drain with an EVENTS request, before answering it.

mod requests;
mod start;

pub use start::{Open, Started};

use super::fleet::{self, EventsFilter, Report};
use super::hosts::SavedHost;
pub use crate::effects::StoreAnswer as Answer;
use crate::effects::{Done, Ticket, Wake};
use crate::event::Event;
use crate::notify::{Notifier, NotifyDone};
use crate::work::model::{Intervals, Level, ServerWork};
use rusqlite::Connection;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Most requests in one drain (one transaction): bounds how long the first
/// of them waits for its commit.
const DRAIN_MAX: usize = 4096;
/// The notifier snapshot is rebuilt at most this often under load, and
/// at least ten times its own cost apart (10,000 alerts take milliseconds
/// to show), so it takes under a tenth of the thread.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);

/// Back-to-back requests (issue 14): a sender that makes one request
/// after another (a client's REPORT on a new connection each) finds the
/// thread asleep each time, and the wake-up of a sleeping thread is a good
/// part of the request's round trip (a REPORT took 117 µs instead of the
/// 93 µs of the old loop that stored it itself). So after [`SPIN_AFTER`]
/// requests in a row that a session waits for and that each came within
/// [`SPIN_WINDOW`] of the drain before, the thread waits for the next one
/// for that long without sleeping (yielding its core to anything
/// runnable), then sleeps as before. A sparse stream never spins, nor
/// do the server's own writes start it (a heartbeat flood's host events came every
/// turn, and a store thread spinning on them took the core the loop and
/// the senders needed: 119 % of a core and a third fewer ACKs at
/// 300,000 heartbeats/s); a dense stream of verbs costs at most the window
/// per request, time the thread would have slept.
const SPIN_WINDOW: Duration = Duration::from_micros(150);
const SPIN_AFTER: u32 = 4;

/// Whether the next request is awaited spinning (see [`SPIN_WINDOW`]).
#[derive(Default)]
struct Pace {
    /// Requests in a row that came within the window.
    dense: u32,
}

impl Pace {
    fn spin(&self) -> bool {
        self.dense >= SPIN_AFTER
    }

    /// A request came `gap` after the end of the drain before it;
    /// `awaited`: a session waits for its answer.
    fn arrived(&mut self, gap: Duration, awaited: bool) {
        if gap >= SPIN_WINDOW {
            self.dense = 0;
        } else if awaited {
            self.dense = self.dense.saturating_add(1);
        }
    }
}

/// What the loop asks of the store.
pub enum Req {
    /// Store events (a retry of a stored one by host+id is ignored) and hand
    /// each to the notifier with its host's state (`states[i]`). With a
    /// ticket, an EVENTS session waits for the answer.
    Events {
        events: Vec<Event>,
        states: Vec<&'static str>,
        now: f64,
        ticket: Option<Ticket>,
    },
    /// A REPORT, checked on the loop: `text` is its JSON as received (the
    /// stored row, so it is not serialized again), `report.body` the parsed
    /// value that comes back with the answer; `work_file` is the host's
    /// work-file, whose version the answer carries (read here, not on the
    /// loop).
    Report {
        host: String,
        report: Report,
        text: String,
        work_file: std::path::PathBuf,
        ticket: Ticket,
    },
    /// CLIENTS: the loop's snapshot of the hosts, to which the store adds
    /// the events and the open alerts, and serializes (off the loop).
    Clients {
        ticket: Ticket,
        host: Option<String>,
        item: Option<String>,
        filter: EventsFilter,
        view: Box<super::fleet_view::Snapshot>,
        now: f64,
    },
    Ack {
        ticket: Ticket,
        host: String,
        item: String,
    },
    /// SILENCE of `what` (`host` or `host item`); `secs` its length.
    Silence {
        ticket: Ticket,
        host: String,
        item: Option<String>,
        until: f64,
        secs: f64,
        what: String,
    },
    /// The notifier's clock: hands out due deliveries.
    Tick {
        now: f64,
    },
    NotifyDone {
        done: NotifyDone,
        now: f64,
    },
    Reload {
        work: Box<ServerWork>,
        levels: Vec<Level>,
        intervals: Intervals,
        dash: Option<String>,
    },
    SaveHosts(Vec<SavedHost>),
    Cleanup {
        before: f64,
    },
}

impl Req {
    /// A session waits for its answer (a verb of a client or a user).
    fn awaited(&self) -> bool {
        match self {
            Req::Events { ticket, .. } => ticket.is_some(),
            Req::Report { .. } | Req::Clients { .. } | Req::Ack { .. } | Req::Silence { .. } => {
                true
            }
            _ => false,
        }
    }
}

/// What the loop reads from the store without a request.
#[derive(Default)]
pub struct Shared {
    pub events_stored: AtomicU64,
    pub drains: AtomicU64,
    pub commits: AtomicU64,
    pub requests: AtomicU64,
    /// Requests taken while waiting without sleeping (see [`SPIN_WINDOW`]).
    pub spun: AtomicU64,
    pub stalls: AtomicU64,
    /// Requests and writes that failed (a refused write, a failed commit,
    /// a request refused because the file is unusable).
    pub failed: AtomicU64,
    /// Of those, the ones no verb answers for (the host table, the
    /// notifier's writes, cleanup, a failed commit).
    pub failed_writes: AtomicU64,
    /// What the thread read at start, until the server takes it.
    started: Mutex<Option<std::result::Result<Started, String>>>,
    /// The stall hook is holding the thread (shown in STATE, for its test).
    pub stalling: std::sync::atomic::AtomicBool,
    view: Mutex<Arc<View>>,
}

/// The notifier as STATE and DUMP show it, as of the last snapshot.
#[derive(Default)]
pub struct View {
    pub state: String,
    pub dump: Value,
}

impl Shared {
    pub fn view(&self) -> Arc<View> {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// The STATE line of the store's counters.
    pub fn state_line(&self, queued: u64) -> String {
        let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "-- store thread server.db requests {} queued {} drains {} commits {} spun {} stalls {} failed {}{}",
            ld(&self.requests),
            queued.saturating_sub(ld(&self.requests)),
            ld(&self.drains),
            ld(&self.commits),
            ld(&self.spun),
            ld(&self.stalls),
            ld(&self.failed),
            if self.stalling.load(Ordering::Relaxed) { " stalling" } else { "" }
        )
    }
}

/// The loop's handle on the store thread.
pub struct Store {
    tx: Option<Sender<Req>>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub shared: Arc<Shared>,
    /// Requests sent (the thread counts those it took).
    sent: u64,
    /// Requests of this turn, sent together by `flush` at its end.
    queued: Vec<Req>,
}

impl Store {
    /// Starts the thread, which opens and reads server.db (`start.rs`) and
    /// answers `Answer::Started` once done; requests may be sent at once.
    pub fn spawn(open: Open, wake: Wake) -> crate::error::Result<Store> {
        Store::spawn_with(open, wake, stall_hook())
    }

    /// `spawn`, with the stall hook's file given (the unit tests').
    fn spawn_with(
        open: Open,
        wake: Wake,
        stall: Option<std::path::PathBuf>,
    ) -> crate::error::Result<Store> {
        let shared = Arc::new(Shared::default());
        let (tx, rx) = channel();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hbmon-store".into())
            .spawn(move || run(open, wake, sh, stall, rx))
            .map_err(|e| crate::error::Error::io("spawn the store thread", e))?;
        Ok(Store { tx: Some(tx), thread: Some(thread), shared, sent: 0, queued: Vec::new() })
    }

    /// What the thread read at start (once, after `Answer::Started`): Err
    /// says why server.db is unusable.
    pub fn take_started(&self) -> Option<std::result::Result<Started, String>> {
        self.shared.started.lock().ok()?.take()
    }

    /// Queues a request for the end of this turn (`flush`); never blocks.
    pub fn send(&mut self, r: Req) {
        self.queued.push(r);
    }

    /// Sends this turn's requests (the loop calls it at the end of each
    /// turn), so that the REPORTs and EVENTS of one turn reach the thread
    /// together and share its drain (one commit, one wake-up of the loop
    /// for their answers) instead of the first waking it alone: with 4
    /// senders a drain held 1.3 REPORTs. Never blocks (the channel is
    /// unbounded: its senders are bounded by the sessions and the host
    /// table).
    pub fn flush(&mut self) {
        let Some(tx) = &self.tx else { return };
        for r in self.queued.drain(..) {
            if tx.send(r).is_err() {
                log::error!("the store thread is gone: a request is lost");
            } else {
                self.sent += 1;
            }
        }
    }

    pub fn state_line(&self) -> String {
        self.shared.state_line(self.sent)
    }

    /// Lets the thread finish what is queued and waits for it (at stop).
    pub fn close(&mut self) {
        self.flush();
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.close();
    }
}

/// Runs a statement prepared once per connection: BEGIN and COMMIT frame
/// every drain, and a drain of one REPORT is the common case under a light
/// load, where parsing them each time is a visible share of its cost.
fn exec_cached(c: &Connection, sql: &str) -> rusqlite::Result<()> {
    c.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The stall hook (see the module doc): sleeps when its file is there.
fn stall_if_asked(stall: Option<&std::path::Path>, shared: &Shared) {
    let Some(p) = stall else { return };
    let Ok(text) = std::fs::read_to_string(p) else { return };
    shared.stalling.store(true, Ordering::Relaxed);
    let _ = std::fs::remove_file(p);
    let secs: f64 = text.trim().parse().unwrap_or(3.0);
    log::warn!("HBMON_STORE_STALL: the store thread stalls for {secs}s");
    shared.stalls.fetch_add(1, Ordering::Relaxed);
    // sleep: the fault being simulated is a disk that answers this late
    std::thread::sleep(Duration::from_secs_f64(secs.clamp(0.0, 600.0)));
    shared.stalling.store(false, Ordering::Relaxed);
    log::warn!("HBMON_STORE_STALL: the store thread goes on");
}

#[cfg(debug_assertions)]
fn stall_hook() -> Option<std::path::PathBuf> {
    std::env::var_os("HBMON_STORE_STALL").map(std::path::PathBuf::from)
}

#[cfg(not(debug_assertions))]
fn stall_hook() -> Option<std::path::PathBuf> {
    None
}

/// The thread: opens the file, says so, then serves requests (or refuses
/// them all when the file cannot be used).
fn run(
    open: Open,
    wake: Wake,
    shared: Arc<Shared>,
    stall: Option<std::path::PathBuf>,
    rx: Receiver<Req>,
) {
    // A slow disk at start holds this thread only: the loop answers PING
    // and heartbeats meanwhile.
    stall_if_asked(stall.as_deref(), &shared);
    let opened = start::open(&open);
    let why = opened.as_ref().err().map(|e| {
        log::error!("server.db cannot be used, nothing will be stored: {e}");
        e.to_string()
    });
    let worker = match opened {
        Ok((conn, mut notifier, started)) => {
            shared.events_stored.store(fleet::count_events(&conn), Ordering::Relaxed);
            notifier.set_lazy_refresh(true);
            if let Ok(mut g) = shared.started.lock() {
                *g = Some(Ok(started));
            }
            Some(Worker {
                conn,
                notifier,
                wake: wake.clone(),
                shared: shared.clone(),
                stall,
                crash_after_store: std::env::var("HBMON_FAULT")
                    .is_ok_and(|v| v == "crash_after_store"),
                dirty: true,
                last_view: None,
                snapshot_every: SNAPSHOT_EVERY,
                new_events: 0,
                cleaned: 0,
                pace: Pace::default(),
                idle_since: Instant::now(),
            })
        }
        Err(_) => {
            if let Ok(mut g) = shared.started.lock() {
                *g = why.clone().map(Err);
            }
            None
        }
    };
    wake.send(Done::Store(vec![Answer::Started]));
    match (worker, why) {
        (Some(mut w), _) => w.run(rx),
        (None, why) => start::refuse_all(rx, why.as_deref().unwrap_or(""), &wake, &shared),
    }
}

struct Worker {
    conn: Connection,
    notifier: Notifier,
    wake: Wake,
    shared: Arc<Shared>,
    stall: Option<std::path::PathBuf>,
    crash_after_store: bool,
    /// The notifier changed since the last snapshot.
    dirty: bool,
    last_view: Option<Instant>,
    snapshot_every: Duration,
    /// Events stored and cleaned in this drain, counted once it commits.
    new_events: u64,
    cleaned: u64,
    pace: Pace,
    /// When the last drain ended.
    idle_since: Instant,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Req>) {
        loop {
            let first = match self.next(&rx) {
                Some(r) => r,
                None => break,
            };
            self.stall_if_asked();
            let mut batch = vec![first];
            while batch.len() < DRAIN_MAX {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            self.drain(batch);
        }
        // The loop is gone (stop): what was queued is done; the last view
        // does not matter any more.
    }

    /// The next request; None when the loop dropped its sender. Meanwhile
    /// a pending snapshot is built, and the stall hook watched.
    fn next(&mut self, rx: &Receiver<Req>) -> Option<Req> {
        if self.pace.spin() {
            while self.idle_since.elapsed() < SPIN_WINDOW {
                if let Ok(r) = rx.try_recv() {
                    self.shared.spun.fetch_add(1, Ordering::Relaxed);
                    self.pace.arrived(Duration::ZERO, r.awaited());
                    return Some(r);
                }
                std::thread::yield_now();
            }
        }
        let r = self.next_asleep(rx)?;
        self.pace.arrived(self.idle_since.elapsed(), r.awaited());
        Some(r)
    }

    /// `next`, sleeping until a request comes.
    fn next_asleep(&mut self, rx: &Receiver<Req>) -> Option<Req> {
        loop {
            let wait = if self.dirty {
                let since = self.last_view.map(|t| t.elapsed()).unwrap_or(self.snapshot_every);
                self.snapshot_every.saturating_sub(since)
            } else if self.stall.is_some() {
                Duration::from_millis(200)
            } else {
                Duration::from_secs(3600)
            };
            match rx.recv_timeout(wait) {
                Ok(r) => return Some(r),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    if self.dirty {
                        self.snapshot();
                    }
                    self.stall_if_asked();
                }
            }
        }
    }

    fn stall_if_asked(&mut self) {
        stall_if_asked(self.stall.as_deref(), &self.shared);
    }

    fn drain(&mut self, batch: Vec<Req>) {
        let n = batch.len() as u64;
        let began = exec_cached(&self.conn, "BEGIN").is_ok();
        let mut answers = Vec::new();
        let mut waited = false;
        let mut crash = false;
        for r in batch {
            crash |= self.crash_after_store && matches!(r, Req::Events { ticket: Some(_), .. });
            if let Some(a) = self.handle(r) {
                waited |= !matches!(a, Answer::Jobs { .. } | Answer::Recorded { .. });
                answers.push(a);
            }
        }
        let committed = !began || self.commit();
        let (new, cleaned) =
            (std::mem::take(&mut self.new_events), std::mem::take(&mut self.cleaned));
        if committed {
            self.shared.events_stored.fetch_add(new, Ordering::Relaxed);
            let _ =
                self.shared.events_stored.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(cleaned))
                });
        } else {
            answers = answers.into_iter().map(requests::failed).collect();
        }
        if let Err(e) = self.notifier.flush(&self.conn) {
            self.shared.failed.fetch_add(1, Ordering::Relaxed);
            self.shared.failed_writes.fetch_add(1, Ordering::Relaxed);
            log::error!("notifications: {e}");
        }
        self.shared.requests.fetch_add(n, Ordering::Relaxed);
        self.shared.drains.fetch_add(1, Ordering::Relaxed);
        if crash && committed {
            log::error!("HBMON_FAULT=crash_after_store: aborting after storing events");
            std::process::abort();
        }
        // The next-deadline of the notifier's answers is read after the
        // flush (it depends on the outbox).
        let next = self.notifier.next_deadline();
        for a in &mut answers {
            if let Answer::Jobs { next: n, .. } | Answer::Recorded { next: n, .. } = a {
                *n = next;
            }
        }
        if self.dirty
            && (waited || self.last_view.is_none_or(|t| t.elapsed() >= self.snapshot_every))
        {
            self.snapshot();
        }
        if !answers.is_empty() {
            self.wake.send(Done::Store(answers));
        }
        self.idle_since = Instant::now();
    }

    fn commit(&mut self) -> bool {
        match exec_cached(&self.conn, "COMMIT") {
            Ok(()) => {
                self.shared.commits.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.shared.failed.fetch_add(1, Ordering::Relaxed);
                self.shared.failed_writes.fetch_add(1, Ordering::Relaxed);
                log::error!("server.db: commit failed, the drain's changes are lost: {e}");
                let _ = self.conn.execute_batch("ROLLBACK");
                false
            }
        }
    }

    fn snapshot(&mut self) {
        let began = Instant::now();
        let mut state = String::new();
        self.notifier.state_lines(&mut state, crate::clock::Now::wall_now());
        let v = Arc::new(View { state, dump: self.notifier.dump() });
        if let Ok(mut g) = self.shared.view.lock() {
            *g = v;
        }
        self.dirty = false;
        self.last_view = Some(Instant::now());
        self.snapshot_every = SNAPSHOT_EVERY.max(began.elapsed() * 10);
    }
}

#[cfg(test)]
mod tests;
