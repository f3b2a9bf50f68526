//! `syslog` channel: one line per notification to the local syslog
//! (LOG_DAEMON; alerts at LOG_ALERT, recoveries at LOG_NOTICE, the rest at
//! LOG_WARNING).

use super::super::message::{Kind, Message};
use syslog::{Facility, Formatter3164};

pub fn send(msg: &Message) -> Result<(), String> {
    let f = Formatter3164 {
        facility: Facility::LOG_DAEMON,
        hostname: None,
        process: "hbmon".into(),
        pid: std::process::id(),
    };
    let mut log = syslog::unix(f).map_err(|e| format!("syslog: {e}"))?;
    let line = msg.subject.clone();
    let r = match msg.kind {
        Kind::Alert => log.alert(line),
        Kind::Recovery => log.notice(line),
        _ => log.warning(line),
    };
    r.map_err(|e| format!("syslog: {e}"))
}
