//! The bounded worker pool that runs the loop's blocking jobs (probes,
//! notifications, upgrades, name lookups): at most `workers` threads
//! (conf), started on demand and ended after two minutes idle; each kind has
//! its own queue of at most `workers_queue` jobs and its own cap on running
//! jobs, so a stuck notification channel cannot take the workers probes
//! need, nor a probe flood the ones notifications need. A job that finds
//! its kind's queue full fails at once with a clear error (its `Done`
//! carries it) and is counted; the loop never blocks on the pool and the
//! pool never spawns past its size. Results go back over the loop's
//! channel and wake it through the `Waker`.

pub mod stats;

use crate::effects::{Done, Job};
use mio::Waker;
use std::collections::VecDeque;
use std::sync::mpsc::Sender;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

pub use crate::conf::{DEFAULT_QUEUE, DEFAULT_WORKERS};
/// An idle worker ends after this; the next burst starts new ones. Longer
/// than a client's round (a minute by default): a plain client's two disk
/// probes a round keep their two workers instead of starting two threads
/// every round, which brought the loader's and libc's thread start-up code
/// back into the working set each time (issue 18: ~170 KiB of RSS against
/// ~10 KiB for two idle workers' stacks, measured).
const IDLE_EXIT: Duration = Duration::from_secs(120);
/// Stack of a worker: probes and channels need little.
const STACK: usize = 512 * 1024;

/// The kinds of job, each with its own queue and cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Probe,
    Notify,
    Upgrade,
    Lookup,
}

const KINDS: [Kind; 4] = [Kind::Probe, Kind::Notify, Kind::Upgrade, Kind::Lookup];

impl Kind {
    pub fn of(job: &Job) -> Kind {
        match job {
            Job::Probe(_) => Kind::Probe,
            Job::Notify(_) => Kind::Notify,
            Job::Upgrade(_) => Kind::Upgrade,
            Job::Resolve(_) => Kind::Lookup,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Kind::Probe => "probe",
            Kind::Notify => "notify",
            Kind::Upgrade => "upgrade",
            Kind::Lookup => "lookup",
        }
    }
    fn index(self) -> usize {
        self as usize
    }
}

/// How many jobs of each kind may run at once in a pool of `size` (at
/// least 4): probes three quarters, notifications under half, one upgrade,
/// lookups an eighth. The non-probe caps add up to at most `size` minus a
/// quarter, so stuck notifications, lookups and an upgrade together still
/// leave probes a quarter of the pool, and a probe flood leaves the others
/// a quarter.
pub fn caps(size: usize) -> [usize; 4] {
    let size = size.max(4);
    let quarter = (size / 4).max(1);
    let lookup = (size / 8).max(1);
    let notify = (size - quarter - lookup - 1).clamp(1, size / 2);
    [size - quarter, notify, 1, lookup]
}

/// Runs one job on the calling (worker) thread.
fn run(job: Job) -> Done {
    match job {
        Job::Probe(p) => Done::Probe(crate::probes::run_probe_job(p)),
        Job::Notify(n) => Done::Notify(crate::notify::run_job(*n)),
        Job::Upgrade(u) => Done::Upgrade(crate::upgrade::task::run(*u)),
        Job::Resolve(r) => Done::Names(crate::names::run(r)),
    }
}

/// The answer of a job that could not run or panicked, so whoever asked is
/// not left waiting (a delivery's slot and dispatch id freed, a probe's item
/// not stuck "running"): a probe gets an error sample, a notification a
/// failed send, an upgrade an error answer, a lookup no addresses.
fn fail(job: &Job, why: &str) -> Done {
    match job {
        Job::Probe(p) => Done::Probe(crate::probes::ProbeDone {
            samples: vec![crate::probes::Sample {
                item: p.item.clone(),
                value: None,
                message: String::new(),
                error: Some(why.to_string()),
            }],
            item: p.item.clone(),
        }),
        Job::Notify(n) => {
            Done::Notify(crate::notify::NotifyDone { id: n.id, result: Err(why.to_string()) })
        }
        Job::Upgrade(u) => Done::Upgrade(crate::upgrade::task::UpgradeDone {
            token: u.token,
            answer: Err(why.to_string()),
            reexec: false,
            last: None,
        }),
        Job::Resolve(r) => {
            Done::Names(crate::names::ResolveJob { gen: r.gen, names: r.names.clone() }.failed(why))
        }
    }
}

struct Queues {
    size: usize,
    queue_cap: usize,
    caps: [usize; 4],
    queued: [VecDeque<Job>; 4],
    running: [usize; 4],
    done: [u64; 4],
    refused: [u64; 4],
    threads: usize,
    stop: bool,
    /// How long an idle worker waits for a job before it ends.
    idle_exit: Duration,
}

impl Queues {
    fn busy(&self) -> usize {
        self.running.iter().sum()
    }

    /// Jobs that could start now, given the caps and the size.
    fn runnable(&self) -> usize {
        let by_kind: usize = (0..4)
            .map(|i| self.queued[i].len().min(self.caps[i].saturating_sub(self.running[i])))
            .sum();
        by_kind.min(self.size.saturating_sub(self.busy()))
    }

    /// The next job a free worker may take (kinds in turn, oldest first).
    fn take(&mut self) -> Option<(Kind, Job)> {
        if self.busy() >= self.size {
            return None;
        }
        for k in KINDS {
            let i = k.index();
            if self.running[i] < self.caps[i] {
                if let Some(j) = self.queued[i].pop_front() {
                    self.running[i] += 1;
                    return Some((k, j));
                }
            }
        }
        None
    }
}

struct Shared {
    q: Mutex<Queues>,
    cv: Condvar,
    /// What runs a job: [`run`], or in tests one that panics on cue.
    runner: fn(Job) -> Done,
}

impl Shared {
    /// The lock, even if a worker panicked holding it (the counters stay usable).
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.q.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The pool; owned by the loop, which alone submits.
pub struct Pool {
    shared: Arc<Shared>,
    tx: Sender<Done>,
    waker: Arc<Waker>,
}

impl Pool {
    pub fn new(size: usize, queue_cap: usize, tx: Sender<Done>, waker: Arc<Waker>) -> Pool {
        Pool::with_runner(size, queue_cap, tx, waker, run)
    }

    fn with_runner(
        size: usize,
        queue_cap: usize,
        tx: Sender<Done>,
        waker: Arc<Waker>,
        runner: fn(Job) -> Done,
    ) -> Pool {
        let size = size.max(4);
        let q = Queues {
            size,
            queue_cap: queue_cap.max(1),
            caps: caps(size),
            queued: Default::default(),
            running: [0; 4],
            done: [0; 4],
            refused: [0; 4],
            threads: 0,
            stop: false,
            idle_exit: IDLE_EXIT,
        };
        let shared = Arc::new(Shared { q: Mutex::new(q), cv: Condvar::new(), runner });
        Pool { shared, tx, waker }
    }

    /// Idle workers end after `d` instead (the tests' shorter wait).
    pub fn set_idle_exit(&self, d: Duration) {
        self.shared.lock().idle_exit = d;
        self.shared.cv.notify_all();
    }

    /// A new size and queue bound (a reload): more workers start as jobs
    /// come; extra ones end when they finish their job.
    pub fn resize(&self, size: usize, queue_cap: usize) {
        let mut q = self.shared.lock();
        q.size = size.max(4);
        q.queue_cap = queue_cap.max(1);
        q.caps = caps(q.size);
        drop(q);
        self.shared.cv.notify_all();
    }

    /// Queues a job, or fails it at once (answered through the channel)
    /// when its kind's queue is full or no worker can be started at all.
    pub fn submit(&self, job: Job) {
        let kind = Kind::of(&job);
        let i = kind.index();
        let mut q = self.shared.lock();
        if q.queued[i].len() >= q.queue_cap {
            q.refused[i] += 1;
            let cap = q.queue_cap;
            drop(q);
            let why = format!("worker pool full: {cap} {} jobs already waiting", kind.name());
            log::warn!("{why}");
            self.answer(fail(&job, &why));
            return;
        }
        q.queued[i].push_back(job);
        let free = q.threads - q.busy().min(q.threads);
        if q.threads < q.size && q.runnable() > free {
            q.threads += 1;
            let shared = self.shared.clone();
            let (tx, waker) = (self.tx.clone(), self.waker.clone());
            let r = std::thread::Builder::new()
                .stack_size(STACK)
                .name("hbmon-worker".into())
                .spawn(move || worker(shared, tx, waker));
            if let Err(e) = r {
                q.threads -= 1;
                log::error!("cannot start a worker thread: {e}");
                if q.threads == 0 {
                    // No worker will ever take it: fail it rather than let
                    // its asker wait forever.
                    if let Some(job) = q.queued[i].pop_back() {
                        q.refused[i] += 1;
                        drop(q);
                        self.answer(fail(&job, &format!("cannot start a worker thread: {e}")));
                        return;
                    }
                }
            }
        }
        drop(q);
        self.shared.cv.notify_one();
    }

    /// The loop's channel and waker (the pool holds them), for helper
    /// threads that outlive one job.
    pub fn wake(&self) -> crate::effects::Wake {
        crate::effects::Wake::new(self.tx.clone(), self.waker.clone())
    }

    /// Wakes the loop with no result: it left some for its next turn.
    pub fn wake_loop(&self) {
        let _ = self.waker.wake();
    }

    fn answer(&self, d: Done) {
        let _ = self.tx.send(d);
        let _ = self.waker.wake();
    }

    pub fn stats(&self) -> stats::PoolStats {
        let q = self.shared.lock();
        let kinds = KINDS
            .iter()
            .map(|k| {
                let i = k.index();
                stats::KindStats {
                    kind: k.name(),
                    busy: q.running[i],
                    cap: q.caps[i],
                    queued: q.queued[i].len(),
                    queue_cap: q.queue_cap,
                    done: q.done[i],
                    refused: q.refused[i],
                }
            })
            .collect();
        stats::PoolStats {
            size: q.size,
            threads: q.threads,
            busy: q.busy(),
            queued: q.queued.iter().map(VecDeque::len).sum(),
            refused: q.refused.iter().sum(),
            kinds,
        }
    }
}

impl Drop for Pool {
    /// Workers end after their current job; queued jobs are dropped (the
    /// daemon is stopping or re-executing).
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.stop = true;
        for v in q.queued.iter_mut() {
            v.clear();
        }
        drop(q);
        self.shared.cv.notify_all();
    }
}

fn worker(shared: Arc<Shared>, tx: Sender<Done>, waker: Arc<Waker>) {
    let mut q = shared.lock();
    loop {
        if q.stop || q.threads > q.size {
            break;
        }
        let Some((kind, job)) = q.take() else {
            let idle = q.idle_exit;
            let (g, t) = shared.cv.wait_timeout(q, idle).unwrap_or_else(|p| p.into_inner());
            q = g;
            if t.timed_out() && q.runnable() == 0 {
                break;
            }
            continue;
        };
        drop(q);
        // A panicking job must not take the worker's count with it, nor
        // leave its asker waiting: it is answered as failed.
        let if_panics = fail(&job, "the job panicked");
        let runner = shared.runner;
        let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runner(job)));
        let d = done.unwrap_or_else(|_| {
            log::error!("a {} job panicked; answered as failed", kind.name());
            if_panics
        });
        let _ = tx.send(d);
        let _ = waker.wake();
        q = shared.lock();
        q.running[kind.index()] -= 1;
        q.done[kind.index()] += 1;
    }
    q.threads -= 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_leave_every_kind_a_share() {
        for size in [4, 5, 8, 16, 17, 64, 1024] {
            let c = caps(size);
            assert!(c.iter().all(|&n| n >= 1 && n < size), "size {size}: {c:?}");
            let others: usize = c[1..].iter().sum();
            assert!(others < size, "size {size}: stuck others leave no probe worker");
            assert!(c[0] < size, "size {size}: a probe flood leaves no other worker");
        }
        assert_eq!(caps(16), [12, 8, 1, 2]);
        assert_eq!(caps(4), [3, 1, 1, 1]);
    }

    /// Polls the pool's stats until `ok` holds (deadline 60 s).
    fn until(pool: &Pool, ok: impl Fn(&stats::PoolStats) -> bool) -> stats::PoolStats {
        let t = std::time::Instant::now();
        loop {
            let s = pool.stats();
            if ok(&s) || t.elapsed() > Duration::from_secs(60) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(20)); // sleep: poll until a deadline
        }
    }

    /// Workers are started by a job and end once idle; the next job
    /// starts one again and is answered.
    #[test]
    fn idle_workers_end_and_the_next_job_starts_one() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let pool = Pool::new(4, 10, tx, waker);
        pool.set_idle_exit(Duration::from_secs(1));
        assert_eq!(pool.stats().threads, 0, "no worker before a job");
        for round in 0..2 {
            let names = crate::names::ResolveJob { gen: round, names: vec!["localhost".into()] };
            pool.submit(Job::Resolve(names));
            match rx.recv_timeout(Duration::from_secs(60)).expect("the lookup's result") {
                Done::Names(r) => assert_eq!(r.gen, round),
                _ => panic!("unexpected result"),
            }
            let s = until(&pool, |s| s.threads == 0);
            assert_eq!(s.threads, 0, "round {round}: the idle worker did not end: {s:?}");
            assert_eq!(s.kinds[3].done, round + 1, "{s:?}");
        }
    }

    /// A lookup of a name starting with `panic` panics in the worker; the
    /// others run as in the daemon.
    fn panics_on_cue(job: Job) -> Done {
        match &job {
            Job::Resolve(r) if r.names.iter().any(|n| n.starts_with("panic")) => {
                panic!("a job that panics (on purpose)")
            }
            _ => run(job),
        }
    }

    /// A job that panics is answered as failed, saying so; its worker
    /// lives on and takes the next job of that kind, whose slot (one
    /// lookup at a time in a pool of 4) the panic freed.
    #[test]
    fn a_panicking_job_is_answered_failed_and_its_worker_serves_on() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let pool = Pool::with_runner(4, 10, tx, waker, panics_on_cue);
        assert_eq!(pool.stats().kinds[3].cap, 1, "one lookup at a time");
        let boom = crate::names::ResolveJob { gen: 1, names: vec!["panic.example".into()] };
        pool.submit(Job::Resolve(boom));
        match rx.recv_timeout(Duration::from_secs(60)).expect("the panicked job's answer") {
            Done::Names(r) => {
                assert_eq!(r.gen, 1);
                assert_eq!(r.answers.len(), 1);
                let (name, a) = &r.answers[0];
                assert_eq!(name, "panic.example");
                assert_eq!(a.as_ref().err().map(String::as_str), Some("the job panicked"));
            }
            _ => panic!("unexpected result"),
        }
        let s = until(&pool, |s| s.kinds[3].busy == 0 && s.kinds[3].done == 1);
        assert_eq!((s.kinds[3].busy, s.kinds[3].done, s.threads), (0, 1, 1), "{s:?}");
        // The next lookup runs in the slot the panic freed, on the same worker.
        let next = crate::names::ResolveJob { gen: 2, names: vec!["localhost".into()] };
        pool.submit(Job::Resolve(next));
        match rx.recv_timeout(Duration::from_secs(60)).expect("the next job's answer") {
            Done::Names(r) => {
                assert_eq!(r.gen, 2);
                assert!(r.answers[0].1.is_ok(), "{:?}", r.answers);
            }
            _ => panic!("unexpected result"),
        }
        let s = until(&pool, |s| s.kinds[3].done == 2);
        assert_eq!(s.kinds[3].done, 2, "{s:?}");
        assert_eq!(s.threads, 1, "the panicked worker served the next job: {s:?}");
        assert_eq!(s.refused, 0, "{s:?}");
    }

    fn sleeper(i: usize) -> Job {
        Job::Probe(crate::probes::ProbeJob {
            item: format!("nagios:s{i}"),
            spec: crate::work::model::ProbeSpec::Nagios {
                argv: vec!["/bin/sleep".into(), "20".into()],
            },
            probes_dir: "/nonexistent".into(),
            timeout: 30.0,
        })
    }

    /// Real threads and real `sleep` processes: probes take their three
    /// workers of four, the rest wait; a lookup still runs on the fourth
    /// and answers first; a full queue fails the job at once, answered.
    #[test]
    fn a_probe_flood_leaves_lookups_a_worker_and_a_full_queue_answers() {
        let poll = mio::Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), mio::Token(0)).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let pool = Pool::new(4, 10, tx, waker);
        // 20 probes: 3 run, at most 10 wait, the rest fail at once.
        for i in 0..20 {
            pool.submit(sleeper(i));
        }
        let names = crate::names::ResolveJob { gen: 1, names: vec!["localhost".into()] };
        pool.submit(Job::Resolve(names));
        // Refused probes answer at once and may come first; no probe
        // finishes before the lookup (each sleeps 20 s).
        let mut refused = 0;
        loop {
            match rx.recv_timeout(Duration::from_secs(60)).expect("the lookup's result") {
                Done::Probe(p) => {
                    let e = p.samples[0].error.clone().unwrap_or_default();
                    assert!(e.starts_with("worker pool full"), "a probe finished first: {e}");
                    refused += 1;
                }
                Done::Names(r) => {
                    assert!(r.answers[0].1.is_ok(), "{:?}", r.answers);
                    break;
                }
                _ => panic!("unexpected result"),
            }
        }
        let t = std::time::Instant::now();
        let s = loop {
            let s = pool.stats();
            if s.kinds[0].busy == 3 || t.elapsed() > Duration::from_secs(60) {
                break s;
            }
            std::thread::sleep(Duration::from_millis(20)); // sleep: poll until a deadline
        };
        let probe = &s.kinds[0];
        assert!(s.threads <= 4, "{s:?}");
        assert_eq!(probe.busy, 3, "{s:?}");
        assert!(probe.queued <= 10 && probe.queued + probe.refused as usize == 17, "{s:?}");
        assert!(refused >= 7 && s.refused == probe.refused, "{refused} {s:?}");
    }
}
