//! The documented range of every numeric setting and verb argument (issue
//! 13 item 8): one table, used by the conf and work parsers and by the
//! verbs, so an absurd number (`nan`, `inf`, `-1`, `999999999999999999w`)
//! is refused with a clear message instead of setting a report to 1970 or a
//! silence to the year 292277026596. Pure: text or values in, values or a
//! message out. README "Ranges" lists the same table.

/// The longest interval any spec may give: 10 years.
pub const MAX_IVAL: f64 = 10.0 * 365.0 * 86400.0;

const MIN: f64 = 60.0;
const HOUR: f64 = 3600.0;
const DAY: f64 = 86400.0;
const WEEK: f64 = 7.0 * DAY;
const YEAR: f64 = 365.0 * DAY;

/// (key, least, most) in seconds for the interval keys of conf and work
/// and the interval arguments of verbs.
pub const IVAL_RANGES: &[(&str, f64, f64)] = &[
    ("ival_heartbeat", 0.1, HOUR),
    ("ival_make_state", 0.1, DAY),
    ("ival_send_report", 1.0, DAY),
    ("ival_check_work", 1.0, WEEK),
    ("ival_keep_events", 0.0, MAX_IVAL),
    ("ival_keep_history", 0.0, MAX_IVAL),
    ("ival_renotify", 0.0, WEEK),
    ("ival_server_dead", 0.1, WEEK),
    ("ival_deadman", 1.0, DAY),
    ("ival_upgrade_check", 1.0, HOUR),
    ("grace", 0.0, DAY),
    ("timeout", 0.1, HOUR),
    ("rotate", MIN, YEAR),
    ("flap", 1.0, DAY),
    ("storm", 0.1, HOUR),
    ("SILENCE", 1.0, YEAR),
];

/// SEND's spread: at most this many seconds.
pub const SEND_SPREAD_MAX: f64 = 30.0;

/// (key, least, most) for the count keys and count arguments.
pub const COUNT_RANGES: &[(&str, u64, u64)] = &[
    ("missed", 1, 100),
    ("hbd_senders", 0, 100_000),
    ("rotate", 0, 1000),
    ("journal_max_backups", 0, 1000),
    ("workers", 4, 1024),
    ("workers_queue", 1, 100_000),
    ("journal_max_size", 1024, 1 << 40),
    ("count", 1, 1000),
    ("flap", 1, 1_000_000),
    ("storm", 1, 1_000_000),
    ("HIST pnts", 1, 100_000),
    ("CLIENTS n", 0, 100_000),
];

fn fmt_secs(s: f64) -> String {
    if s >= DAY && s % DAY == 0.0 {
        format!("{}d", s / DAY)
    } else if s >= HOUR && s % HOUR == 0.0 {
        format!("{}h", s / HOUR)
    } else {
        format!("{s}s")
    }
}

/// Checks an interval (seconds) against its key's range.
pub fn check_ival(key: &str, secs: f64) -> Result<f64, String> {
    let (lo, hi) = IVAL_RANGES
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, l, h)| (*l, *h))
        .unwrap_or((0.0, MAX_IVAL));
    if !secs.is_finite() || secs < lo || secs > hi {
        return Err(format!(
            "{key}: {secs}s is out of range ({} to {})",
            fmt_secs(lo),
            fmt_secs(hi)
        ));
    }
    Ok(secs)
}

/// Parses a count (a plain non-negative integer) and checks its key's range.
pub fn check_count(key: &str, text: &str) -> Result<u64, String> {
    let (lo, hi) = COUNT_RANGES
        .iter()
        .find(|(k, ..)| *k == key)
        .map(|(_, l, h)| (*l, *h))
        .unwrap_or((0, u32::MAX as u64));
    let n = text
        .parse::<u64>()
        .map_err(|_| format!("{key}: '{text}' is not a count (a whole number {lo} to {hi})"))?;
    if n < lo || n > hi {
        return Err(format!("{key}: {n} is out of range ({lo} to {hi})"));
    }
    Ok(n)
}

/// Does `text` look like a number (so it must be a valid one, never an
/// item or host name)? `-1`, `1.5`, `nan`, `inf`, `1e9`.
pub fn looks_numeric(text: &str) -> bool {
    text.parse::<f64>().is_ok()
}

/// Parses a finite number (no `nan`, `inf`, `1e999`) within `lo..=hi`.
pub fn check_number(key: &str, text: &str, lo: f64, hi: f64) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= lo && v <= hi => Ok(v),
        Ok(v) if v.is_finite() => Err(format!("{key}: {v} is out of range ({lo} to {hi})")),
        _ => Err(format!("{key}: '{text}' is not a finite number ({lo} to {hi})")),
    }
}

/// `SEND [SPREAD]`: the spread in seconds (default and most: 30).
pub fn send_spread(args: &[String]) -> Result<f64, String> {
    match args {
        [] => Ok(SEND_SPREAD_MAX),
        [a] => check_number("SEND spread", a, 0.0, SEND_SPREAD_MAX),
        _ => Err("usage: SEND [SPREAD seconds]".into()),
    }
}

/// A maintenance window's length (`SILENCE ... IVAL`), seconds.
pub fn silence_secs(text: &str) -> Result<f64, String> {
    crate::conf::parse_ival(text).and_then(|s| check_ival("SILENCE", s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_are_finite_and_in_range() {
        assert_eq!(check_ival("ival_heartbeat", 10.0), Ok(10.0));
        assert!(check_ival("ival_heartbeat", 0.0).unwrap_err().contains("out of range"));
        assert!(check_ival("SILENCE", f64::INFINITY).is_err());
        assert!(check_ival("SILENCE", f64::NAN).is_err());
        assert!(check_ival("SILENCE", 2.0 * YEAR).unwrap_err().contains("365d"));
        assert!(check_ival("unknown_key", MAX_IVAL + 1.0).is_err());
    }

    #[test]
    fn verb_arguments() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(send_spread(&a(&[])), Ok(30.0));
        assert_eq!(send_spread(&a(&["5"])), Ok(5.0));
        for bad in [&["nan"][..], &["inf"], &["-1"], &["31"], &["1", "2"]] {
            assert!(send_spread(&a(bad)).is_err(), "{bad:?}");
        }
        assert_eq!(silence_secs("1h"), Ok(3600.0));
        assert!(silence_secs("999999999999999999w").is_err());
        assert!(silence_secs("400d").is_err());
    }

    #[test]
    fn counts_and_numbers() {
        assert_eq!(check_count("missed", "3"), Ok(3));
        assert!(check_count("missed", "0").unwrap_err().contains("1 to 100"));
        assert!(check_count("missed", "-1").unwrap_err().contains("not a count"));
        assert!(check_count("HIST pnts", "pnts").is_err());
        assert!(check_count("CLIENTS n", "99999999999999999999999").is_err());
        assert_eq!(check_number("x", "2.5", 0.0, 10.0), Ok(2.5));
        for bad in ["nan", "inf", "-inf", "1e999", "-1", "11"] {
            assert!(check_number("x", bad, 0.0, 10.0).is_err(), "{bad}");
        }
    }
}
