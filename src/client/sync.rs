//! The client's conversations with its server, as phase enums moved by
//! pure transitions (tested here without sockets): the work sync
//! ([`WorkSync`]: WORK until the server has given a work, then WORK_LM
//! polls), the event outbox ([`Outbox`]: a batch asked of the store thread,
//! then EVENTS in flight), the REPORT call ([`ReportCall`]) and whether a
//! REPORT still owes the first stored round's values ([`ReportFollow`]).
//! Also the retry backoff, reading WORK / WORK_LM and REPORT answers, writing
//! the work cache (temp file, mtime, rename) and the report jitter. When to
//! fetch and poll is decided in `fetch.rs`, when to REPORT in `report.rs`
//! and `ticks.rs`, when to send EVENTS in `spool.rs`; the loop runs the calls.

use crate::work::model::Work;
use crate::work::version::{self, Version};
use serde_json::Value;

/// Backoff for retries to the server: 1 s doubling to at most 60 s.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    fails: u32,
}

impl Backoff {
    /// The next wait: 1 s doubling, at most `cap` (and 60 s).
    pub fn fail(&mut self, cap: f64) -> f64 {
        self.fails = self.fails.saturating_add(1);
        (2f64.powi(self.fails.min(6) as i32 - 1)).min(60.0).min(cap.max(1.0))
    }
    pub fn ok(&mut self) {
        self.fails = 0;
    }
    pub fn failing(&self) -> bool {
        self.fails > 0
    }
}

/// The two questions about the work.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WorkAsk {
    /// `WORK host`: the work itself.
    Work,
    /// `WORK_LM host`: only its version.
    WorkLm,
}

/// A served work: when it came and when the server last answered about it
/// (wall clock).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Served {
    pub fetched: f64,
    pub checked: f64,
}

/// Where the conversation about this host's work stands. One question at a
/// time: a poll, a REPORT answer or an ACK that finds one asked waits for it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WorkSync {
    /// No work from the server since start-up (the cached or bootstrap
    /// work runs): a poll asks WORK.
    Bootstrap,
    /// A served work runs; a poll asks WORK_LM.
    Idle(Served),
    /// A question asked at `since`, not answered yet; `served` is what we
    /// go back to if it fails (none while bootstrapping).
    Asking { ask: WorkAsk, since: f64, served: Option<Served> },
}

/// What an answer to WORK or WORK_LM came to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WorkOutcome {
    /// No answer, or one that did not parse.
    Failed,
    /// A version only (WORK_LM's answer, or WORK with no work for us).
    Version,
    /// A work.
    Work,
}

impl WorkSync {
    /// What a poll asks now; none while a question is out.
    pub fn poll(&self) -> Option<WorkAsk> {
        match self {
            WorkSync::Bootstrap => Some(WorkAsk::Work),
            WorkSync::Idle(_) => Some(WorkAsk::WorkLm),
            WorkSync::Asking { .. } => None,
        }
    }

    pub fn asking(&self) -> bool {
        matches!(self, WorkSync::Asking { .. })
    }

    /// The work served since start-up, if any.
    pub fn served(&self) -> Option<Served> {
        match *self {
            WorkSync::Bootstrap => None,
            WorkSync::Idle(s) => Some(s),
            WorkSync::Asking { served, .. } => served,
        }
    }

    /// `ask` went to the server at `now` (a second question is never
    /// asked: the caller checks [`WorkSync::asking`] first).
    pub fn asked(&mut self, ask: WorkAsk, now: f64) {
        if !self.asking() {
            *self = WorkSync::Asking { ask, since: now, served: self.served() };
        }
    }

    /// The answer to `ask` came at `now`. A WORK that found no work for us
    /// and a failure leave the served work (or its absence) as it was.
    pub fn answered(&mut self, ask: WorkAsk, outcome: WorkOutcome, now: f64) {
        let served = self.served();
        *self = match (outcome, ask, served) {
            (WorkOutcome::Work, _, _) => WorkSync::Idle(Served { fetched: now, checked: now }),
            (WorkOutcome::Version, WorkAsk::WorkLm, Some(s)) => {
                WorkSync::Idle(Served { checked: now, ..s })
            }
            (_, _, Some(s)) => WorkSync::Idle(s),
            (_, _, None) => WorkSync::Bootstrap,
        };
    }

    /// One phrase for STATE, e.g. `idle, fetched 3m ago, checked 12s ago`.
    pub fn describe(&self, now: f64) -> String {
        let ago = |t: f64| crate::clock::fmt_age(now - t);
        let served = |s: Option<Served>| match s {
            Some(s) => format!("fetched {} ago, checked {} ago", ago(s.fetched), ago(s.checked)),
            None => "no work from the server yet".into(),
        };
        match *self {
            WorkSync::Bootstrap => format!("bootstrap, {}", served(None)),
            WorkSync::Idle(s) => format!("idle, {}", served(Some(s))),
            WorkSync::Asking { ask, since, served: s } => {
                let verb = if ask == WorkAsk::Work { "WORK" } else { "WORK_LM" };
                format!("asking {verb} for {}, {}", ago(since), served(s))
            }
        }
    }
}

/// Where the EVENTS conversation stands: the outbox is read by the store
/// thread (a batch), then sent. Never a batch asked while EVENTS is in
/// flight: its answer (ok: the next batch; failed: the retry) asks again.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Outbox {
    #[default]
    Idle,
    /// A batch is asked of the store thread; `again`: events were written
    /// since, so an empty batch is asked once more (they may be after it).
    BatchAsked { again: bool },
    /// EVENTS with `count` events sent at `since` (wall clock), not answered.
    InFlight { since: f64, count: usize },
}

impl Outbox {
    /// Events are waiting: true when a batch is to be asked now.
    pub fn want_batch(&mut self) -> bool {
        match self {
            Outbox::Idle => {
                *self = Outbox::BatchAsked { again: false };
                true
            }
            Outbox::BatchAsked { again } => {
                *again = true;
                false
            }
            Outbox::InFlight { .. } => false,
        }
    }

    /// The store thread's batch of `count` events came: true when an empty
    /// batch must be asked again. The outbox is idle until the batch is sent.
    pub fn batch(&mut self, count: usize) -> bool {
        let again = matches!(self, Outbox::BatchAsked { again: true });
        *self = Outbox::Idle;
        count == 0 && again
    }

    /// The batch went to the server.
    pub fn sent(&mut self, count: usize, now: f64) {
        *self = Outbox::InFlight { since: now, count };
    }

    /// The server answered EVENTS (or the call failed).
    pub fn answered(&mut self) {
        *self = Outbox::Idle;
    }

    /// For STATE: `idle`, `batch asked`, `3 in flight for 2s`.
    pub fn describe(&self, now: f64) -> String {
        match *self {
            Outbox::Idle => "idle".into(),
            Outbox::BatchAsked { .. } => "batch asked".into(),
            Outbox::InFlight { since, count } => {
                format!("{count} in flight for {}", crate::clock::fmt_age(now - since))
            }
        }
    }
}

/// The REPORT call: one at a time (a report tick that finds one out skips).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReportCall {
    #[default]
    Idle,
    /// Sent at `since` (wall clock), not answered.
    InFlight { since: f64 },
}

impl ReportCall {
    /// For STATE: `idle`, `in flight for 2s`.
    pub fn describe(&self, now: f64) -> String {
        match *self {
            ReportCall::Idle => "idle".into(),
            ReportCall::InFlight { since } => {
                format!("in flight for {}", crate::clock::fmt_age(now - since))
            }
        }
    }
}

/// Whether REPORTs carry the values of this start's (or work's) rounds.
/// A REPORT sent before the first round was stored has no values for
/// (some) items, so one follows as soon as that round is stored rather
/// than an `ival_send_report` later.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReportFollow {
    /// Round `round` (counted since start) is the first of this start or
    /// work; it is not stored yet and no REPORT went meanwhile.
    Before { round: u64 },
    /// A REPORT went before round `round` was stored: one more is owed.
    Owed { round: u64 },
    /// The stored rounds are this start's or work's: reports are complete.
    Complete,
}

impl ReportFollow {
    /// A REPORT is sent now.
    pub fn reported(&mut self) {
        if let ReportFollow::Before { round } = *self {
            *self = ReportFollow::Owed { round };
        }
    }

    /// `stored` rounds are stored: true when the REPORT owed goes now.
    pub fn stored(&mut self, stored: u64) -> bool {
        let (round, owed) = match *self {
            ReportFollow::Before { round } => (round, false),
            ReportFollow::Owed { round } => (round, true),
            ReportFollow::Complete => return false,
        };
        if stored < round {
            return false;
        }
        *self = ReportFollow::Complete;
        owed
    }
}

/// What a WORK/WORK_LM answer told us.
#[derive(Debug, PartialEq)]
pub enum WorkAnswer {
    /// A work (WORK) and its version.
    Work(Box<Work>, Version),
    /// Only the version (WORK_LM), or WORK with no file for us.
    Lm(Version),
}

/// Parses the body of a WORK or WORK_LM answer.
pub fn parse_work_answer(body: &str) -> Result<WorkAnswer, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("bad WORK answer: {e}"))?;
    let lm = version::from_json(v.get("lm")).unwrap_or(0);
    match v.get("data") {
        Some(Value::Null) | None => Ok(WorkAnswer::Lm(lm)),
        Some(d) => {
            let w = crate::work::load::parse_work_json(&d.to_string())?;
            Ok(WorkAnswer::Work(Box::new(w), lm))
        }
    }
}

/// The `work` field of a REPORT answer (the server's version of our work).
pub fn report_answer_lm(body: &str) -> Option<Version> {
    version::from_json(serde_json::from_str::<Value>(body).ok()?.get("work"))
}

/// Writes the work cache atomically (temp file, then rename), its mtime
/// set to the server's version: a restarted client knows which it has.
pub fn write_cache(path: &std::path::Path, work: &Work, lm: Version) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(work).map_err(std::io::Error::other)?;
    crate::vardir::write_private(&tmp, text.as_bytes())?;
    if let Err(e) = version::stamp_file(&tmp, lm) {
        // Not fatal: the next start fetches the work once more.
        log::warn!("cannot set the mtime of {}: {e}", tmp.display());
    }
    std::fs::rename(&tmp, path)
}

/// A random delay in [0, max) from the clock's nanoseconds and the pid:
/// enough to spread ALLSEND answers; not for anything secret.
pub fn jitter(max: f64) -> f64 {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    let x = (n ^ (std::process::id() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_mul(0x2545_F491_4F6C_DD1D);
    (x >> 11) as f64 / (1u64 << 53) as f64 * max
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_minute() {
        let mut b = Backoff::default();
        let v: Vec<f64> = (0..9).map(|_| b.fail(600.0)).collect();
        assert_eq!(v, vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 32.0, 32.0, 32.0]);
        b.ok();
        assert_eq!(b.fail(600.0), 1.0);
        assert_eq!(b.fail(1.5), 1.5, "capped by the caller");
    }

    #[test]
    fn work_answers() {
        assert_eq!(
            parse_work_answer(r#"{"resp":"ok work_lm","data":null,"lm":1764588000123}"#),
            Ok(WorkAnswer::Lm(1_764_588_000_123))
        );
        assert!(parse_work_answer("nope").is_err());
        assert!(parse_work_answer(r#"{"resp":"ok work","data":{"version":1},"lm":1}"#).is_err());
        assert_eq!(report_answer_lm(r#"{"resp":"ok","work":7}"#), Some(7000));
        assert_eq!(
            report_answer_lm(r#"{"resp":"ok","work":1764588000123}"#),
            Some(1_764_588_000_123)
        );
    }

    #[test]
    fn work_sync_asks_work_until_served_then_polls_the_version() {
        let mut w = WorkSync::Bootstrap;
        assert_eq!(w.poll(), Some(WorkAsk::Work));
        w.asked(WorkAsk::Work, 10.0);
        assert!(w.asking() && w.poll().is_none(), "one question at a time");
        // A second ask (an ACK saying the work moved) changes nothing.
        w.asked(WorkAsk::WorkLm, 11.0);
        assert_eq!(w, WorkSync::Asking { ask: WorkAsk::Work, since: 10.0, served: None });
        // Failure and "no work for you" leave us bootstrapping.
        w.answered(WorkAsk::Work, WorkOutcome::Failed, 12.0);
        assert_eq!(w, WorkSync::Bootstrap);
        w.asked(WorkAsk::Work, 13.0);
        w.answered(WorkAsk::Work, WorkOutcome::Version, 14.0);
        assert_eq!(w, WorkSync::Bootstrap);
        w.asked(WorkAsk::Work, 15.0);
        w.answered(WorkAsk::Work, WorkOutcome::Work, 16.0);
        let s = Served { fetched: 16.0, checked: 16.0 };
        assert_eq!(w, WorkSync::Idle(s));
        assert_eq!(w.poll(), Some(WorkAsk::WorkLm));
        assert!(w.describe(28.0).starts_with("idle, fetched 12s ago"), "{}", w.describe(28.0));
    }

    #[test]
    fn work_sync_keeps_the_served_work_through_failures() {
        let s = Served { fetched: 16.0, checked: 16.0 };
        let mut w = WorkSync::Idle(s);
        w.asked(WorkAsk::WorkLm, 20.0);
        assert_eq!(w.served(), Some(s), "still running a served work while asking");
        assert!(w.describe(25.0).starts_with("asking WORK_LM for 5s"), "{}", w.describe(25.0));
        w.answered(WorkAsk::WorkLm, WorkOutcome::Failed, 21.0);
        assert_eq!(w, WorkSync::Idle(s), "a failed poll is not a check");
        w.asked(WorkAsk::WorkLm, 30.0);
        w.answered(WorkAsk::WorkLm, WorkOutcome::Version, 31.0);
        assert_eq!(w, WorkSync::Idle(Served { fetched: 16.0, checked: 31.0 }));
        // The version moved: WORK, which finds no work for us: still served.
        w.asked(WorkAsk::Work, 32.0);
        w.answered(WorkAsk::Work, WorkOutcome::Version, 33.0);
        assert_eq!(w, WorkSync::Idle(Served { fetched: 16.0, checked: 31.0 }));
        // An answer with nothing asked (a stray one) still installs a work.
        w.answered(WorkAsk::Work, WorkOutcome::Work, 40.0);
        assert_eq!(w, WorkSync::Idle(Served { fetched: 40.0, checked: 40.0 }));
    }

    #[test]
    fn outbox_asks_one_batch_and_again_only_for_writes_since() {
        let mut o = Outbox::Idle;
        assert!(o.want_batch(), "the first wish asks the store");
        assert!(!o.want_batch(), "a second waits for the batch");
        assert_eq!(o, Outbox::BatchAsked { again: true });
        // Empty, but events were written after the ask: ask once more.
        assert!(o.batch(0));
        assert_eq!(o, Outbox::Idle);
        assert!(o.want_batch());
        assert!(!o.batch(0), "empty and nothing since: done");
        assert!(o.want_batch());
        assert!(!o.want_batch());
        assert!(!o.batch(3), "a batch to send is sent, not asked again");
        o.sent(3, 50.0);
        assert_eq!(o, Outbox::InFlight { since: 50.0, count: 3 });
        assert!(!o.want_batch(), "no batch while EVENTS is out");
        assert_eq!(o, Outbox::InFlight { since: 50.0, count: 3 }, "nor a note to ask again");
        assert_eq!(o.describe(52.5), "3 in flight for 2s");
        o.answered();
        assert_eq!(o.describe(60.0), "idle");
        assert!(o.want_batch());
        assert_eq!(o.describe(60.0), "batch asked");
        assert_eq!(ReportCall::InFlight { since: 1.0 }.describe(71.0), "in flight for 1m10s");
    }

    #[test]
    fn a_report_before_the_first_stored_round_owes_one_more() {
        let mut f = ReportFollow::Before { round: 1 };
        assert!(!f.stored(0));
        assert!(!f.stored(1), "stored before any REPORT went: nothing owed");
        assert_eq!(f, ReportFollow::Complete);
        f.reported();
        assert_eq!(f, ReportFollow::Complete);
        let mut f = ReportFollow::Before { round: 4 };
        f.reported();
        f.reported();
        assert_eq!(f, ReportFollow::Owed { round: 4 });
        assert!(!f.stored(3));
        assert!(f.stored(4), "the round is stored: the owed REPORT goes");
        assert!(!f.stored(5), "once");
    }

    #[test]
    fn jitter_in_range() {
        for _ in 0..100 {
            let j = jitter(30.0);
            assert!((0.0..30.0).contains(&j));
        }
    }
}
