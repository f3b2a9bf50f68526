//! A work's version: its work-file's mtime in whole milliseconds since the
//! Unix epoch. One representation everywhere it travels (the `lm` of WORK
//! and WORK_LM answers, the `work` field of REPORT answers and of ACKs, the
//! client's cache) and compared exactly, so an unchanged work is never
//! fetched again. An integer survives JSON and the heartbeat codec
//! (integers go as is) without rounding; 0 means "no work-file".

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch; 0 = none.
pub type Version = i64;

/// A file's mtime as a version (None when it does not exist).
pub fn of_file(path: &Path) -> Option<Version> {
    let m = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(of_time(m))
}

pub fn of_time(t: SystemTime) -> Version {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Version).unwrap_or(0)
}

/// Sets a file's mtime to `v` (the client's cache carries the server's
/// version, so a restarted client knows which work it has).
pub fn stamp_file(path: &Path, v: Version) -> std::io::Result<()> {
    let f = std::fs::File::options().write(true).open(path)?;
    let t = UNIX_EPOCH + Duration::from_millis(v.max(0) as u64);
    f.set_modified(t)
}

/// A version as it came in JSON or an ACK. Integers are milliseconds; an
/// older server sent fractional Unix seconds (below 1e11, i.e. before the
/// year 5138 in seconds, after 1973 in milliseconds), taken to the ms.
pub fn from_number(n: f64) -> Option<Version> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    if n < 1e11 {
        return Some((n * 1000.0).floor() as Version);
    }
    Some(n as Version)
}

/// The version in a JSON field (`lm`, `work`).
pub fn from_json(v: Option<&serde_json::Value>) -> Option<Version> {
    let v = v?;
    match v.as_i64() {
        Some(i) => from_number(i as f64),
        None => from_number(v.as_f64()?),
    }
}

/// Seconds, for showing a version as a date.
pub fn to_secs(v: Version) -> f64 {
    v as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_are_ms_and_old_seconds_convert() {
        assert_eq!(from_json(Some(&json!(1_764_588_000_123i64))), Some(1_764_588_000_123));
        assert_eq!(from_json(Some(&json!(1_764_588_000.123_456))), Some(1_764_588_000_123));
        assert_eq!(from_json(Some(&json!(0))), Some(0));
        assert_eq!(from_json(Some(&json!("x"))), None);
        assert_eq!(from_json(None), None);
        assert_eq!(from_number(-1.0), None);
        assert_eq!(from_number(f64::NAN), None);
    }

    #[test]
    fn a_stamped_file_reads_back_the_same_version() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("w.json");
        std::fs::write(&p, "{}").unwrap();
        stamp_file(&p, 1_764_588_000_123).unwrap();
        assert_eq!(of_file(&p), Some(1_764_588_000_123));
        assert_eq!(of_file(&d.path().join("none")), None);
    }
}
