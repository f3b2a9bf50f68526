//! The client's store thread: the one owner of `history.db` on a running
//! client (DESIGN.md §6, §12: only the store threads touch SQLite). It
//! opens the file itself (answering [`StoreDone::Opened`] first; requests
//! sent meanwhile wait in the channel), so a slow disk at start never
//! holds the loop. The
//! event loop sends [`StoreReq`]s over a channel and never waits; the
//! thread takes everything queued (one drain), writes the drain's rounds,
//! events and acknowledged ids in one transaction, then answers the
//! drain's reads, and hands [`StoreDone`]s back through `deliver` (the
//! loop's channel and waker). It owns the [`Spool`] too (what a refusing
//! disk leaves in memory), so the loop only sees a [`StoreStatus`].
//!
//! Requests are taken in the order sent, and a read is answered after every
//! write sent before it: an EVENTS batch only ever holds events already in
//! the outbox on disk (or held because the disk refused them).

use super::spool::{free_bytes, Spool};
use super::History;
use crate::answer::Answered;
use crate::error::Error;
use crate::event::Event;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Most requests waiting for the thread; past it rounds are sent without
/// their samples (counted as dropped), so a disk stuck for days cannot
/// grow the queue without bound. Events are never shed.
pub const MAX_QUEUED: usize = 10_000;
/// Most requests taken in one drain (one transaction).
const DRAIN_MAX: usize = 4096;
/// The thread's stack: SQLite keeps its big structures on the heap (and
/// only the pages touched are resident anyway); half a MiB leaves debug
/// builds room.
const STACK: usize = 512 * 1024;

/// What the loop asks of the history.
#[derive(Debug)]
pub enum StoreReq {
    /// A probe round: its samples and the events it raised (one
    /// transaction with the rest of the drain). `shed`: samples the loop
    /// dropped because the queue was full, counted here.
    Round { t: f64, values: Vec<(String, f64)>, events: Vec<Event>, shed: u64 },
    /// Events alone (an item set by another part).
    Events(Vec<Event>),
    /// The server acknowledged these events: delete them.
    Ack(Vec<String>),
    /// The next EVENTS batch: at most `limit` events from the outbox and
    /// the held ones, oldest first.
    Batch { limit: usize },
    /// A command-port verb whose answer goes to the session waiting on
    /// `ticket` (`Reply::Wait`).
    Query { ticket: u64, q: Query },
    /// The hourly ZAP (rows before/after are logged).
    Zap { now: f64, keep: f64 },
}

/// The verbs answered from the history.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Hist { ival: String, pnts: Option<u32>, items: Vec<String>, now: f64 },
    Zap { now: f64, keep: f64 },
}

/// What the thread hands back to the loop.
#[derive(Debug)]
pub enum StoreDone {
    /// A drain wrote: it covered `writes` Round/Events requests (in order).
    Written {
        writes: usize,
        status: StoreStatus,
    },
    Batch(Vec<Event>),
    /// The answer for the session waiting on `ticket` (framed by `verbs/`);
    /// `failed`: the verb, when the store failed it (for the refusal counters).
    Answer {
        ticket: u64,
        answer: Answered,
        failed: Option<&'static str>,
    },
    /// The history is open (the first answer): its health, and what was
    /// found wrong with the file (moved aside as corrupt, or unusable and
    /// replaced by an in-memory history).
    Opened {
        status: StoreStatus,
        notice: Option<String>,
    },
}

/// The history's health as the loop shows it (STATE, DUMP, the `store` item).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStatus {
    pub outbox: u64,
    pub held: usize,
    pub samples_dropped: u64,
    pub events_dropped: u64,
    /// Since when writes fail, and the last error.
    pub failing: Option<(f64, String)>,
    /// Bytes free in the vardir, measured while writes fail.
    pub free: Option<u64>,
    /// Drains whose write failed, since start (the refusal counters).
    pub write_errors: u64,
}

/// The loop's handle: sends requests, joins the thread when dropped (after
/// it has written everything queued and checkpointed the WAL).
pub struct StoreThread {
    tx: Option<Sender<StoreReq>>,
    queued: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl StoreThread {
    /// Starts the thread, which opens the history at `path` and answers
    /// [`StoreDone::Opened`] before anything else. `stall`: the fault
    /// hook's trigger file (debug builds, see [`fault_stall`]), also
    /// honoured before the open.
    pub fn start(
        path: PathBuf,
        vardir: PathBuf,
        deliver: Box<dyn Fn(StoreDone) + Send>,
        stall: Option<PathBuf>,
    ) -> crate::error::Result<StoreThread> {
        let (tx, rx) = channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let q = queued.clone();
        let thread = std::thread::Builder::new()
            .name("hbmon-history".into())
            .stack_size(STACK)
            .spawn(move || {
                if let Some(p) = &stall {
                    fault_stall(p);
                }
                let Some((h, notice)) = open(&path) else { return };
                crate::footprint::lean_history(&h.conn);
                let status =
                    StoreStatus { outbox: h.outbox_len().unwrap_or(0), ..Default::default() };
                deliver(StoreDone::Opened { status, notice });
                let mut w = Worker { h, spool: Spool::default(), vardir, deliver, stall };
                w.run(rx, &q)
            })
            .map_err(|e| Error::io("spawn the history thread", e))?;
        Ok(StoreThread { tx: Some(tx), queued, thread: Some(thread) })
    }

    /// Queues a request; never blocks.
    pub fn send(&self, r: StoreReq) {
        if let Some(tx) = &self.tx {
            self.queued.fetch_add(1, Ordering::Relaxed);
            if tx.send(r).is_err() {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                log::error!("the history thread is gone; request dropped");
            }
        }
    }

    /// Requests sent and not yet taken by the thread.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }
}

impl StoreThread {
    /// Stops taking requests; returns once the thread has written what was
    /// queued and checkpointed (shutdown, a client role that goes away).
    pub fn close(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                log::error!("the history thread panicked");
            }
        }
    }
}

impl Drop for StoreThread {
    fn drop(&mut self) {
        self.close();
    }
}

/// Opens the history; a file that cannot be used (a newer schema, a disk
/// that refuses it) gives way to one in memory, so the client's events
/// still reach the server, and the notice says what is lost.
fn open(path: &std::path::Path) -> Option<(History, Option<String>)> {
    match History::open_checked(path) {
        Ok(x) => Some(x),
        Err(e) => {
            let notice = format!(
                "history.db unusable ({e}): an in-memory history is used, nothing in it \
                 survives a restart"
            );
            log::error!("{notice}");
            match History::open_in_memory() {
                Ok(h) => Some((h, Some(notice))),
                Err(e) => {
                    log::error!("no in-memory history either: {e}");
                    None
                }
            }
        }
    }
}

struct Worker {
    h: History,
    spool: Spool,
    vardir: PathBuf,
    deliver: Box<dyn Fn(StoreDone) + Send>,
    stall: Option<PathBuf>,
}

/// The writes of one drain.
#[derive(Default)]
struct Writes {
    /// Round/Events requests covered.
    n: usize,
    rounds: Vec<(f64, Vec<(String, f64)>)>,
    events: Vec<Event>,
    acks: Vec<String>,
    shed: u64,
}

impl Worker {
    fn run(&mut self, rx: Receiver<StoreReq>, queued: &AtomicUsize) {
        while let Ok(first) = rx.recv() {
            if let Some(p) = &self.stall {
                fault_stall(p);
            }
            let mut reqs = vec![first];
            while reqs.len() < DRAIN_MAX {
                match rx.try_recv() {
                    Ok(r) => reqs.push(r),
                    Err(_) => break,
                }
            }
            queued.fetch_sub(reqs.len(), Ordering::Relaxed);
            let mut w = Writes::default();
            let mut reads = Vec::new();
            for r in reqs {
                match r {
                    StoreReq::Round { t, values, events, shed } => {
                        w.n += 1;
                        w.shed += shed;
                        w.rounds.push((t, values));
                        w.events.extend(events);
                    }
                    StoreReq::Events(e) => {
                        w.n += 1;
                        w.events.extend(e);
                    }
                    StoreReq::Ack(ids) => w.acks.extend(ids),
                    r => reads.push(r),
                }
            }
            if w.n > 0 || !w.acks.is_empty() {
                let writes = w.n;
                self.write(w);
                (self.deliver)(StoreDone::Written { writes, status: self.status() });
            }
            for r in reads {
                self.read(r);
            }
            // Idle until the next round: the page cache and the heap the
            // drain used go back to the kernel (issue 18: a client's RSS).
            // SAFETY: the handle is live and only this thread uses it;
            // the call frees unused cache pages (rusqlite gates its
            // wrapper behind a feature that would rebuild SQLite).
            unsafe {
                rusqlite::ffi::sqlite3_db_release_memory(self.h.conn.handle());
            }
            crate::footprint::release_heap();
        }
        if let Err(e) = self.h.checkpoint() {
            log::warn!("history checkpoint: {e}");
        }
    }

    /// One transaction for the drain, with the held events and the acks
    /// still owed. When it fails the samples are dropped (counted) and the
    /// events written alone, or held in memory if that fails too.
    fn write(&mut self, w: Writes) {
        let s = &mut self.spool;
        s.samples_dropped += w.shed;
        s.release(&w.acks.iter().cloned().collect());
        let held: Vec<Event> = s.held().iter().cloned().collect();
        let mut acks = s.acked();
        acks.extend(w.acks.iter().cloned());
        let mut events = w.events.clone();
        events.extend(held.iter().cloned());
        let rounds: Vec<(f64, Vec<(&str, f64)>)> = w
            .rounds
            .iter()
            .map(|(t, v)| (*t, v.iter().map(|(k, x)| (k.as_str(), *x)).collect()))
            .collect();
        match self.h.write_batch(&rounds, &events, &acks) {
            Ok(()) => {
                s.release(&held.into_iter().map(|e| e.id).collect());
                s.forget_acked();
                // The loop logs the recovery (it sees `failing` go).
                s.failing = None;
            }
            Err(e) => {
                s.write_errors += 1;
                let n: usize = w.rounds.iter().map(|r| r.1.len()).sum();
                s.samples_dropped += n as u64;
                log::error!("history: {e}; {n} samples dropped");
                s.fail(crate::clock::Now::wall_now(), e.to_string());
                if !w.events.is_empty() {
                    if let Err(e) = self.h.enqueue(&w.events) {
                        log::error!("history: {e}; {} events held in memory", w.events.len());
                        s.hold(&w.events);
                    }
                }
                if !w.acks.is_empty() && self.h.ack(&w.acks).is_err() {
                    // Not resent in a loop: remembered until a delete works.
                    s.remember_acked(&w.acks);
                }
            }
        }
    }

    fn status(&self) -> StoreStatus {
        let s = &self.spool;
        StoreStatus {
            outbox: self.h.outbox_len().unwrap_or(0),
            held: s.held().len(),
            samples_dropped: s.samples_dropped,
            events_dropped: s.events_dropped,
            failing: s.failing.clone(),
            free: s.failing.as_ref().and_then(|_| free_bytes(&self.vardir)),
            write_errors: s.write_errors,
        }
    }

    fn read(&mut self, r: StoreReq) {
        let done = match r {
            StoreReq::Batch { limit } => {
                let outbox = self.h.pending(limit).unwrap_or_else(|e| {
                    log::error!("outbox: {e}");
                    Vec::new()
                });
                StoreDone::Batch(self.spool.batch(outbox, limit))
            }
            StoreReq::Query { ticket, q } => {
                let (answer, failed) = self.query(q);
                StoreDone::Answer { ticket, answer, failed }
            }
            StoreReq::Zap { now, keep } => {
                match self.h.zap(now, keep) {
                    Ok((b, a)) => log::info!("zap: {b} rows -> {a}"),
                    Err(e) => log::error!("zap: {e}"),
                }
                return;
            }
            StoreReq::Round { .. } | StoreReq::Events(_) | StoreReq::Ack(_) => return,
        };
        (self.deliver)(done);
    }

    /// The answer, and the verb when the store failed it.
    fn query(&mut self, q: Query) -> (Answered, Option<&'static str>) {
        match q {
            Query::Hist { ival, pnts, items, now } => match self.h.hist(&ival, pnts, &items, now) {
                // Serialized here, off the loop (HIST Y can be large).
                Ok(v) => (Answered::Hist(v.to_string()), None),
                // Usage errors already say `bad args: ...`; the rest are the store's.
                Err(e @ Error::Usage(_)) => (Answered::failed("HIST", e.to_string()), None),
                Err(e) => (
                    Answered::failed("HIST", format!("cannot read the history: {e}")),
                    Some("HIST"),
                ),
            },
            Query::Zap { now, keep } => match self.h.zap_all(now, keep) {
                Ok((before, after)) => (Answered::Zapped { before, after }, None),
                Err(e) => (Answered::failed("ZAP", e.to_string()), Some("ZAP")),
            },
        }
    }
}

/// The env var naming the stall hook's trigger file (debug builds only).
pub const STALL_ENV: &str = "HBMON_FAULT_STORE_STALL";

/// The trigger file of the stall hook, read once at start: debug builds
/// only (release builds never stall on purpose).
pub fn stall_hook() -> Option<PathBuf> {
    if cfg!(debug_assertions) {
        std::env::var_os(STALL_ENV).map(PathBuf::from)
    } else {
        None
    }
}

/// Fault hook for tests (issue 14): when the trigger file exists at the
/// start of a drain, it holds seconds; the thread removes it, writes
/// `<file>.start`, sleeps that long (a disk that stops answering), then
/// writes `<file>.end`; both hold the wall time in Unix seconds. Requests
/// sent meanwhile queue up and go in the next drain.
fn fault_stall(trigger: &std::path::Path) {
    let Ok(text) = std::fs::read_to_string(trigger) else { return };
    let _ = std::fs::remove_file(trigger);
    let secs = text.trim().parse::<f64>().unwrap_or(0.0).clamp(0.0, 600.0);
    let mark = |ext: &str| {
        let mut p = trigger.as_os_str().to_owned();
        p.push(ext);
        let _ = std::fs::write(PathBuf::from(p), format!("{:.3}\n", crate::clock::Now::wall_now()));
    };
    log::warn!("fault hook: the history thread stalls for {secs}s");
    mark(".start");
    // sleep: the fault being simulated is a thread that waits this long
    std::thread::sleep(std::time::Duration::from_secs_f64(secs));
    mark(".end");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::RecvTimeoutError;
    use std::time::Duration;

    fn ev(id: &str, t: f64) -> Event {
        Event {
            id: id.into(),
            host: "h".into(),
            item: "x".into(),
            old_level: None,
            new_level: "sick".into(),
            old_value: None,
            new_value: None,
            time: t,
            message: String::new(),
        }
    }

    fn started(stall: Option<PathBuf>) -> (StoreThread, Receiver<StoreDone>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let (t, rx) = start_on(dir.path(), stall);
        match next(&rx) {
            StoreDone::Opened { status, notice: None } => assert_eq!(status.outbox, 0),
            d => panic!("{d:?}"),
        }
        (t, rx, dir)
    }

    fn start_on(
        dir: &std::path::Path,
        stall: Option<PathBuf>,
    ) -> (StoreThread, Receiver<StoreDone>) {
        let (tx, rx) = channel();
        let tx = std::sync::Mutex::new(tx);
        let deliver = Box::new(move |d| {
            let _ = tx.lock().map(|t| t.send(d));
        });
        let t = StoreThread::start(dir.join("history.db"), dir.into(), deliver, stall).unwrap();
        (t, rx)
    }

    fn next(rx: &Receiver<StoreDone>) -> StoreDone {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(d) => d,
            Err(RecvTimeoutError::Timeout) => panic!("no answer from the history thread"),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_batch_follows_the_writes_sent_before_it_and_acks_delete() {
        let (t, rx, dir) = started(None);
        t.send(StoreReq::Round {
            t: 100.0,
            values: vec![("cpu_load".into(), 1.0)],
            events: vec![ev("e1", 100.0)],
            shed: 0,
        });
        t.send(StoreReq::Events(vec![ev("e2", 101.0)]));
        t.send(StoreReq::Batch { limit: 10 });
        let mut writes = 0;
        let batch = loop {
            match next(&rx) {
                StoreDone::Written { writes: n, status } => {
                    writes += n;
                    assert!(status.failing.is_none());
                }
                StoreDone::Batch(b) => break b,
                d => panic!("{d:?}"),
            }
        };
        assert_eq!(writes, 2);
        let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["e1", "e2"]);
        t.send(StoreReq::Ack(vec!["e1".into()]));
        t.send(StoreReq::Batch { limit: 10 });
        let status = match next(&rx) {
            StoreDone::Written { writes: 0, status } => status,
            d => panic!("{d:?}"),
        };
        assert_eq!(status.outbox, 1);
        assert!(matches!(next(&rx), StoreDone::Batch(b) if b.len() == 1 && b[0].id == "e2"));
        t.send(StoreReq::Query {
            ticket: 7,
            q: Query::Hist { ival: "H".into(), pnts: None, items: vec![], now: 130.0 },
        });
        match next(&rx) {
            StoreDone::Answer { ticket: 7, answer: Answered::Hist(text), failed: None } => {
                assert!(text.contains("cpu_load"), "{text}")
            }
            d => panic!("{d:?}"),
        }
        drop(t);
        let h = History::open(&dir.path().join("history.db")).unwrap();
        assert_eq!(h.sample_count().unwrap(), 1);
        assert_eq!(h.outbox_len().unwrap(), 1);
    }

    #[test]
    fn a_stalled_drain_writes_everything_queued_in_one_go() {
        let dir = tempfile::tempdir().unwrap();
        let trigger = dir.path().join("stall");
        let (t, rx, db) = started(Some(trigger.clone()));
        // Armed once the file is open (a trigger present at start stalls
        // the open instead): the first request's drain stalls.
        std::fs::write(&trigger, "0.5").unwrap();
        for i in 0..50 {
            let values = vec![("x".to_string(), i as f64)];
            t.send(StoreReq::Round { t: i as f64, values, events: vec![], shed: 2 });
        }
        // Everything sent during the stall is one drain.
        match next(&rx) {
            StoreDone::Written { writes, status } => {
                assert_eq!(writes, 50);
                assert_eq!(status.samples_dropped, 100, "shed samples are counted");
            }
            d => panic!("{d:?}"),
        }
        assert!(dir.path().join("stall.end").exists());
        assert_eq!(t.queued(), 0);
        drop(t);
        let h = History::open(&db.path().join("history.db")).unwrap();
        assert_eq!(h.sample_count().unwrap(), 50);
    }

    #[test]
    fn a_stall_at_start_holds_the_open_not_the_sender() {
        let dir = tempfile::tempdir().unwrap();
        let trigger = dir.path().join("stall");
        std::fs::write(&trigger, "0.5").unwrap();
        let (t, rx) = start_on(dir.path(), Some(trigger.clone()));
        // Sent while the thread has not opened the file yet.
        t.send(StoreReq::Events(vec![ev("e1", 1.0)]));
        match next(&rx) {
            StoreDone::Opened { status, notice: None } => assert_eq!(status.outbox, 0),
            d => panic!("{d:?}"),
        }
        assert!(dir.path().join("stall.end").exists(), "opened after the stall");
        assert!(matches!(next(&rx), StoreDone::Written { writes: 1, .. }));
    }

    #[test]
    fn an_unusable_file_gives_an_in_memory_history_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.db");
        rusqlite::Connection::open(&p).unwrap().pragma_update(None, "user_version", 99).unwrap();
        let before = std::fs::read(&p).unwrap();
        let (t, rx) = start_on(dir.path(), None);
        match next(&rx) {
            StoreDone::Opened { notice: Some(n), .. } => {
                assert!(n.contains("newer") && n.contains("in-memory"), "{n}")
            }
            d => panic!("{d:?}"),
        }
        t.send(StoreReq::Events(vec![ev("e1", 1.0)]));
        t.send(StoreReq::Batch { limit: 10 });
        assert!(matches!(next(&rx), StoreDone::Written { writes: 1, .. }));
        assert!(matches!(next(&rx), StoreDone::Batch(b) if b.len() == 1), "events still go out");
        drop(t);
        assert_eq!(std::fs::read(&p).unwrap(), before, "the file is left as it is");
    }
}
