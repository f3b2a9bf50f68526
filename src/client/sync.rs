//! Pieces of the client's conversation with its server: the retry backoff,
//! reading WORK / WORK_LM and REPORT answers (pure), writing the work cache
//! (temp file, mtime, rename) and the report jitter (from the clock). When
//! to fetch and poll is decided in `fetch.rs`, when to REPORT in
//! `report.rs` and `ticks.rs`, when to send EVENTS in `spool.rs`; the loop
//! runs the calls.

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
    fn jitter_in_range() {
        for _ in 0..100 {
            let j = jitter(30.0);
            assert!((0.0..30.0).contains(&j));
        }
    }
}
