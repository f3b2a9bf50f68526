//! Syslog lines in RFC 3164's form, `<PRI>Mmm dd hh:mm:ss hbmon[PID]: msg`,
//! for both the logger and the `syslog` notification channel.
//!
//! Why not the `syslog` crate's own `Formatter3164`: it writes the day
//! zero-padded (`Dec 01`), where RFC 3164 (section 4.1.2) wants it
//! space-padded (`Dec  1`), and some parsers reject the other form. The
//! crate still does the socket part. The time is local, as RFC 3164 says.

use std::fmt::Display;
use std::io::Write;
use syslog::{Facility, LogFormat, Severity};

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// The formatter: facility, process name and pid as the crate's.
#[derive(Clone, Debug)]
pub struct Rfc3164 {
    pub facility: Facility,
    pub process: String,
    pub pid: u32,
}

impl Rfc3164 {
    /// LOG_DAEMON, process `hbmon`, this pid.
    pub fn daemon() -> Rfc3164 {
        Rfc3164 { facility: Facility::LOG_DAEMON, process: "hbmon".into(), pid: std::process::id() }
    }
}

impl<T: Display> LogFormat<T> for Rfc3164 {
    fn format<W: Write>(&self, w: &mut W, severity: Severity, message: T) -> syslog::Result<()> {
        let pri = self.facility as u8 | severity as u8;
        let stamp = timestamp(local_now());
        write!(w, "<{pri}>{stamp} {}[{}]: {message}", self.process, self.pid)
            .map_err(syslog::Error::Write)
    }
}

/// `Mmm dd hh:mm:ss`, the day space-padded: `Dec  1 09:05:03`.
/// `month` is 1-12.
pub fn timestamp((month, day, h, m, s): (u32, u32, u32, u32, u32)) -> String {
    let mon = MONTHS[(month.clamp(1, 12) - 1) as usize];
    format!("{mon} {day:>2} {h:02}:{m:02}:{s:02}")
}

/// (month 1-12, day, hour, minute, second) of now, local time.
fn local_now() -> (u32, u32, u32, u32, u32) {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    // SAFETY: localtime_r only writes the struct we pass (zeroed is valid).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        let secs: i64 = t;
        let (_, mo, d) = crate::clock::civil_from_days(secs.div_euclid(86400));
        let sod = secs.rem_euclid(86400) as u32;
        return (mo, d, sod / 3600, sod % 3600 / 60, sod % 60);
    }
    let u = |v: libc::c_int| v.max(0) as u32;
    (u(tm.tm_mon) + 1, u(tm.tm_mday), u(tm.tm_hour), u(tm.tm_min), u(tm.tm_sec))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_space_padded_12_15() {
        assert_eq!(timestamp((12, 1, 9, 5, 3)), "Dec  1 09:05:03");
        assert_eq!(timestamp((1, 31, 23, 59, 59)), "Jan 31 23:59:59");
    }

    #[test]
    fn a_line_is_pri_stamp_process_pid_message() {
        let f = Rfc3164 { facility: Facility::LOG_DAEMON, process: "hbmon".into(), pid: 42 };
        let mut out = Vec::new();
        f.format(&mut out, Severity::LOG_WARNING, "disk full").unwrap();
        let line = String::from_utf8(out).unwrap();
        // <daemon*8 + warning>, then `Mmm dd hh:mm:ss ` (15 characters and a space).
        assert!(line.starts_with("<28>"), "{line}");
        let stamp = &line[4..19];
        assert!(MONTHS.contains(&&stamp[..3]), "{line}");
        let day = &stamp[4..6];
        assert!(!day.starts_with('0'), "RFC 3164 pads the day with a space: {line}");
        assert_eq!(&line[19..], " hbmon[42]: disk full", "{line}");
    }
}
