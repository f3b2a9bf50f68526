//! The client's conversation with its server over the command port: fetch
//! the work (with backoff while the server is unreachable), poll WORK_LM,
//! send EVENTS from the outbox and REPORT on schedule. Decides what to call
//! and when; the loop runs the calls. Pure apart from the values it is given.

use crate::work::model::Work;
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
    /// A work (WORK) and its mtime.
    Work(Box<Work>, f64),
    /// Only the mtime (WORK_LM), or WORK with no file for us.
    Lm(f64),
}

/// Parses the body of a WORK or WORK_LM answer.
pub fn parse_work_answer(body: &str) -> Result<WorkAnswer, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("bad WORK answer: {e}"))?;
    let lm = v.get("lm").and_then(Value::as_f64).unwrap_or(0.0);
    match v.get("data") {
        Some(Value::Null) | None => Ok(WorkAnswer::Lm(lm)),
        Some(d) => {
            let w = crate::run::parse_work_json(&d.to_string())?;
            Ok(WorkAnswer::Work(Box::new(w), lm))
        }
    }
}

/// The `work` field of a REPORT answer (the server's mtime of our work).
pub fn report_answer_lm(body: &str) -> Option<f64> {
    serde_json::from_str::<Value>(body).ok()?.get("work")?.as_f64()
}

/// Writes the work cache atomically (temp file, then rename).
pub fn write_cache(path: &std::path::Path, work: &Work) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let tmp = path.with_extension("json.tmp");
    let text = serde_json::to_string_pretty(work).map_err(std::io::Error::other)?;
    crate::vardir::write_private(&tmp, text.as_bytes())?;
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
            parse_work_answer(r#"{"resp":"ok work_lm","data":null,"lm":12.5}"#),
            Ok(WorkAnswer::Lm(12.5))
        );
        assert!(parse_work_answer("nope").is_err());
        assert!(parse_work_answer(r#"{"resp":"ok work","data":{"version":1},"lm":1}"#).is_err());
        assert_eq!(report_answer_lm(r#"{"resp":"ok","work":7}"#), Some(7.0));
    }

    #[test]
    fn jitter_in_range() {
        for _ in 0..100 {
            let j = jitter(30.0);
            assert!((0.0..30.0).contains(&j));
        }
    }
}
