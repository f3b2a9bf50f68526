//! Units of item values, for people: STATE and the `hbmon clients/hist`
//! tables show `41.2%`, `0.52ms`, `13m`, `1.5MiB/s`; JSON carries the bare
//! number in the same unit, rounded to a precision that means something.
//! Pure functions of names and numbers (docs/items.md is the table).

/// What an item's value measures, from its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Millis,
    /// A duration in seconds (uptime).
    Seconds,
    GiB,
    BytesPerSec,
    /// Counts, load averages, exit codes, probe values: the bare number.
    Plain,
}

/// The unit of an item by its family (the name before the first `:`).
pub fn unit_of(item: &str) -> Unit {
    let family = item.split(':').next().unwrap_or(item);
    match family {
        "cpu_pct" | "mem_used" | "swap_used" | "disk_used" | "inode_used" => Unit::Percent,
        "rtt" | "tcp" | "http" | "ping" => Unit::Millis,
        "uptime" => Unit::Seconds,
        "disk_avail" => Unit::GiB,
        "net_rx" | "net_tx" => Unit::BytesPerSec,
        _ => Unit::Plain,
    }
}

/// The unit's name as the tables' headers show it (empty for Plain).
pub fn unit_name(u: Unit) -> &'static str {
    match u {
        Unit::Percent => "%",
        Unit::Millis => "ms",
        Unit::Seconds => "s",
        Unit::GiB => "GiB",
        Unit::BytesPerSec => "B/s",
        Unit::Plain => "",
    }
}

/// A value with its unit: `41.2%`, `0.52ms`, `13m`, `12.3GiB`, `1.5MiB/s`, `0.42`.
pub fn fmt_with_unit(item: &str, v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    match unit_of(item) {
        Unit::Percent => format!("{v:.1}%"),
        Unit::Millis if v.abs() < 10.0 => format!("{v:.2}ms"),
        Unit::Millis if v.abs() < 100.0 => format!("{v:.1}ms"),
        Unit::Millis => format!("{v:.0}ms"),
        Unit::Seconds => fmt_duration(v),
        Unit::GiB => format!("{v:.1}GiB"),
        Unit::BytesPerSec => fmt_rate(v),
        Unit::Plain => fmt_plain(v),
    }
}

/// A duration, two units at most: `45s`, `13m`, `2h5m`, `3d4h`.
pub fn fmt_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) if sec == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m{sec}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h{m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d{h}h"),
    }
}

fn fmt_rate(v: f64) -> String {
    const STEPS: [&str; 4] = ["B/s", "KiB/s", "MiB/s", "GiB/s"];
    let mut x = v;
    let mut i = 0;
    while x.abs() >= 1024.0 && i + 1 < STEPS.len() {
        x /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{x:.0}{}", STEPS[0])
    } else {
        format!("{x:.1}{}", STEPS[i])
    }
}

/// Integers as integers, else about 6 significant digits, no trailing zeros.
pub fn fmt_plain(v: f64) -> String {
    if v == v.trunc() && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let digits = (5 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
    let s = format!("{v:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A float for JSON: 5 decimals at most (what the wire format carries), so
/// answers say `44.31149`, not `44.311485112843876`.
pub fn round_json(v: f64) -> f64 {
    if !v.is_finite() || v.abs() >= 1e12 && v == v.trunc() {
        return v;
    }
    let r = (v * 1e5).round() / 1e5;
    if r.is_finite() {
        r
    } else {
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_with_units() {
        assert_eq!(fmt_with_unit("disk_used:/", 41.2345), "41.2%");
        assert_eq!(fmt_with_unit("mem_used", 3.0), "3.0%");
        assert_eq!(fmt_with_unit("rtt", 0.5234), "0.52ms");
        assert_eq!(fmt_with_unit("http:https://x/", 123.4), "123ms");
        assert_eq!(fmt_with_unit("tcp:h:22", 12.34), "12.3ms");
        assert_eq!(fmt_with_unit("uptime", 780.0), "13m");
        assert_eq!(fmt_with_unit("uptime", 7500.0), "2h5m");
        assert_eq!(fmt_with_unit("uptime", 3.0 * 86400.0 + 4.0 * 3600.0), "3d4h");
        assert_eq!(fmt_with_unit("uptime", 45.4), "45s");
        assert_eq!(fmt_with_unit("disk_avail:/var", 12.345), "12.3GiB");
        assert_eq!(fmt_with_unit("net_rx:eth0", 1536.0), "1.5KiB/s");
        assert_eq!(fmt_with_unit("net_tx:eth0", 900.0), "900B/s");
        assert_eq!(fmt_with_unit("cpu_load", 0.42), "0.42");
        assert_eq!(fmt_with_unit("procs", 99.0), "99");
        assert_eq!(fmt_with_unit("proc:sshd", 1.0), "1");
        assert_eq!(fmt_with_unit("nagios:load", 2.0), "2");
        assert_eq!(fmt_with_unit("cpu_load", 3.261234), "3.26123");
    }

    #[test]
    fn json_precision() {
        assert_eq!(round_json(44.311485112843876), 44.31149);
        assert_eq!(round_json(1796124483.7754622), 1796124483.77546);
        assert_eq!(round_json(0.0), 0.0);
        assert_eq!(round_json(3.0), 3.0);
        assert!(round_json(f64::NAN).is_nan());
        assert_eq!(serde_json::json!(round_json(2.5077879428863525)).to_string(), "2.50779");
    }
}
