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

/// The interval keys of the work, which a host conf may override too, as
/// (key, least, most) in seconds: the one list of them (`IVAL_KEYS` is its
/// names; `work::model::Intervals::set` maps each to its field).
pub const WORK_IVALS: &[(&str, f64, f64)] = &[
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
];

/// The names of `WORK_IVALS` (`missed` and `hbd_senders` are counts, in
/// `COUNT_RANGES`).
pub const IVAL_KEYS: [&str; WORK_IVALS.len()] = names(WORK_IVALS);

const fn names<const N: usize>(t: &[(&'static str, f64, f64)]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = t[i].0;
        i += 1;
    }
    out
}

/// (key, least, most) in seconds for the other intervals: work line
/// options, conf `rotate`, verb arguments.
pub const IVAL_RANGES: &[(&str, f64, f64)] = &[
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
    ("journal_max_size", 1024, 1 << 40),
    ("count", 1, 1000),
    ("flap", 1, 1_000_000),
    ("storm", 1, 1_000_000),
    ("HIST pnts", 1, 100_000),
    ("CLIENTS n", 0, 100_000),
];

/// Parses an interval spec (dmon's): a number is seconds; `s m h d w` are
/// units and a bare unit is one of it; terms combine in any order with an
/// optional `+`/`-`: `22`, `22s`, `dw`, `7d+24h`, `w-0.5h`, `hm6` (= 3666).
pub fn parse_ival(spec: &str) -> std::result::Result<f64, String> {
    let s = spec.trim();
    if s.is_empty() {
        return Err("empty interval".into());
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total = 0.0;
    while i < b.len() {
        let mut sign = 1.0;
        if b[i] == b'+' || b[i] == b'-' {
            sign = if b[i] == b'-' { -1.0 } else { 1.0 };
            i += 1;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
            i += 1;
        }
        let num = if i > start {
            let t = &s[start..i];
            Some(t.parse::<f64>().map_err(|_| format!("bad number '{t}' in interval '{s}'"))?)
        } else {
            None
        };
        let unit = match b.get(i) {
            Some(c) if c.is_ascii_alphabetic() => {
                i += 1;
                match c.to_ascii_lowercase() {
                    b's' => Some(1.0),
                    b'm' => Some(60.0),
                    b'h' => Some(3600.0),
                    b'd' => Some(86400.0),
                    b'w' => Some(604800.0),
                    _ => return Err(format!("unknown unit '{}' in interval '{s}'", *c as char)),
                }
            }
            Some(c) if *c != b'+' && *c != b'-' => {
                return Err(format!("unexpected '{}' in interval '{s}'", *c as char));
            }
            _ => None,
        };
        let term = match (num, unit) {
            (Some(n), Some(u)) => n * u,
            (Some(n), None) => n,
            (None, Some(u)) => u,
            (None, None) => return Err(format!("sign without a term in interval '{s}'")),
        };
        total += sign * term;
    }
    if total < 0.0 {
        return Err(format!("interval '{s}' is negative"));
    }
    // A long run of digits parses to infinity; 999999999999999999w is
    // finite but absurd: both are refused (issue 13 item 8).
    if !total.is_finite() || total > MAX_IVAL {
        return Err(format!("interval '{s}' is too long (at most 10 years)"));
    }
    Ok(total)
}

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
    let (lo, hi) = WORK_IVALS
        .iter()
        .chain(IVAL_RANGES)
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
    parse_ival(text).and_then(|s| check_ival("SILENCE", s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ival_dmon_examples() {
        assert_eq!(parse_ival("22"), Ok(22.0));
        assert_eq!(parse_ival("22s"), Ok(22.0));
        assert_eq!(parse_ival("dw"), Ok(8.0 * 86400.0));
        assert_eq!(parse_ival("7d+24h"), Ok(8.0 * 86400.0));
        assert_eq!(parse_ival("w-0.5h"), Ok(604800.0 - 1800.0));
        assert_eq!(parse_ival("hm6"), Ok(3666.0));
        assert_eq!(parse_ival("1m"), Ok(60.0));
        assert_eq!(parse_ival("0.5"), Ok(0.5));
    }

    #[test]
    fn ival_errors() {
        assert!(parse_ival("").is_err());
        assert!(parse_ival("5x").unwrap_err().contains("unknown unit 'x'"));
        assert!(parse_ival("1..2").is_err());
        assert!(parse_ival("h-2h").unwrap_err().contains("negative"));
        assert!(parse_ival("5 m").is_err());
        assert!(parse_ival("+").is_err());
    }

    #[test]
    fn ival_signs_between_numbers_zero_and_the_ten_year_limit() {
        assert_eq!(parse_ival("30+30"), Ok(60.0));
        assert_eq!(parse_ival("90-30"), Ok(60.0));
        assert_eq!(parse_ival("-1+1"), Ok(0.0), "a leading sign is a sign");
        assert_eq!(parse_ival("0"), Ok(0.0));
        assert_eq!(parse_ival("h-1h"), Ok(0.0), "zero is not negative");
        assert_eq!(parse_ival(" 2M "), Ok(120.0), "trimmed, units in either case");
        assert_eq!(parse_ival("3650d"), Ok(10.0 * 365.0 * 86400.0), "ten years is the limit");
        assert!(parse_ival("3650d1").unwrap_err().contains("too long"));
        assert!(parse_ival("999999999999999999w").unwrap_err().contains("too long"));
        assert!(parse_ival(&"9".repeat(400)).unwrap_err().contains("too long"), "infinite");
        assert!(parse_ival("5 m").unwrap_err().contains("unexpected ' '"));
        assert!(parse_ival("5-").unwrap_err().contains("sign without a term"));
        assert!(parse_ival("1.2.3s").unwrap_err().contains("bad number '1.2.3'"));
    }

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
