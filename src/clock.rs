//! Time, at the bottom of the crate: `Now` (the two clocks handlers are
//! given; only `event_loop/mod.rs` and a few entry points read the system clock)
//! and every way hbmon writes a time for people and files, all in UTC from
//! one calendar conversion. Pure apart from `Now::wall_now`; imports nothing
//! of the crate, so any module may use it.

/// Both clocks: `mono` for timers, `wall` (Unix seconds) for what people see.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub mono: f64,
    pub wall: f64,
}

impl Now {
    /// The system's wall clock in Unix seconds (0 if it is before 1970).
    pub fn wall_now() -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0)
    }
}

/// A UTC calendar time, to the second (fractions are floored away).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Utc {
    pub year: i64,
    /// 1-12.
    pub month: u32,
    /// 1-31.
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// Days since 1970-01-01 (a Thursday).
    pub days: i64,
}

impl Utc {
    pub fn of(secs: f64) -> Utc {
        let s = secs.floor() as i64;
        let (days, sod) = (s.div_euclid(86_400), s.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) =
            ((sod / 3600) as u32, (sod / 60 % 60) as u32, (sod % 60) as u32);
        Utc { year, month, day, hour, minute, second, days }
    }

    /// `Mon` .. `Sun`.
    pub fn weekday(&self) -> &'static str {
        const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
        DAYS[self.days.rem_euclid(7) as usize]
    }

    /// `Jan` .. `Dec`.
    pub fn month_name(&self) -> &'static str {
        MONTHS[(self.month as usize).saturating_sub(1) % 12]
    }
}

/// English month abbreviations, January first.
pub const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Unix seconds as `2026-11-22 10:01:02 UTC` (what STATE, the tables, the
/// dashboard and notification bodies show). Times before 1970 show as 1970.
pub fn fmt_time(t: f64) -> String {
    let u = Utc::of(t.max(0.0));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

/// `2026-11-24T03:56:13Z` (webhook placeholders, Alertmanager, the notify view).
pub fn rfc3339(t: f64) -> String {
    let u = Utc::of(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

/// ISO 8601 without a zone, `2026-03-28T12:34:56` (the journal's `datetime`).
pub fn iso_plain(t: f64) -> String {
    let u = Utc::of(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

/// `Tue, 24 Nov 2026 03:56:13 +0000` (mail `Date:`).
pub fn rfc5322(t: f64) -> String {
    let u = Utc::of(t);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        u.weekday(),
        u.day,
        u.month_name(),
        u.year,
        u.hour,
        u.minute,
        u.second
    )
}

/// A file-name suffix, `20260328-123456` (rotated journals, corrupt databases).
pub fn file_stamp(t: f64) -> String {
    let u = Utc::of(t);
    format!("{:04}{:02}{:02}-{:02}{:02}{:02}", u.year, u.month, u.day, u.hour, u.minute, u.second)
}

/// `YYYY-MM-DD HH:MM:SS.mmm` (log lines), rounded to the millisecond.
pub fn fmt_utc_millis(t: f64) -> String {
    let ms_total = (t.max(0.0) * 1000.0).round() as i64;
    let (secs, ms) = (ms_total.div_euclid(1000), ms_total.rem_euclid(1000));
    let u = Utc::of(secs as f64);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{ms:03}",
        u.year, u.month, u.day, u.hour, u.minute, u.second
    )
}

/// Seconds as `3d4h`, `5m2s`, `0s`; `never` for an infinite or NaN age.
pub fn fmt_age(secs: f64) -> String {
    if !secs.is_finite() {
        return "never".into();
    }
    let s = secs.max(0.0) as u64;
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m{sec}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// Days since 1970-01-01 -> (year, month, day); Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
}

/// (year, month, day) -> days since 1970-01-01: the inverse of `civil_from_days`.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_formats() {
        assert_eq!(fmt_time(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(-5.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(1_795_000_000.0), "2026-11-18 11:06:40 UTC");
        assert_eq!(fmt_age(5.2), "5s");
        assert_eq!(fmt_age(125.0), "2m5s");
        assert_eq!(fmt_age(3666.0), "1h1m");
        assert_eq!(fmt_age(90000.0), "1d1h");
        assert_eq!(fmt_age(f64::INFINITY), "never");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
        assert_eq!(rfc5322(1_795_924_573.0), "Sun, 29 Nov 2026 03:56:13 +0000");
        assert_eq!(file_stamp(951_782_400.0), "20000229-000000");
        assert_eq!(iso_plain(4_102_444_799.0), "2099-12-31T23:59:59");
        assert_eq!(fmt_utc_millis(951_782_400.999_6), "2000-02-29 00:00:01.000");
        assert_eq!(fmt_utc_millis(4_107_542_399.5), "2100-02-28 23:59:59.500");
    }

    #[test]
    fn calendar_round_trips() {
        assert_eq!(Utc::of(0.0).weekday(), "Thu");
        assert_eq!(Utc::of(-1.0).year, 1969);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2024, 3, 1), 19783);
        for z in [-800_000, -1, 0, 59, 60, 11_016, 19_783, 47_541, 2_932_896] {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z, "{y}-{m}-{d}");
        }
    }
}
