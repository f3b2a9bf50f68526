//! `syslog` channel: one line per notification to the local syslog
//! (LOG_DAEMON; alerts at LOG_ALERT, recoveries at LOG_NOTICE, the rest at
//! LOG_WARNING).

use super::super::message::{Kind, Message};

pub fn send(msg: &Message) -> Result<(), String> {
    // RFC 3164 dates (`Dec  1`), as the logger writes them.
    let f = crate::syslog3164::Rfc3164::daemon();
    let mut log = syslog::unix(f).map_err(|e| format!("syslog: {e}"))?;
    let line = msg.subject.clone();
    let r = match msg.kind {
        Kind::Alert => log.alert(line),
        Kind::Recovery => log.notice(line),
        _ => log.warning(line),
    };
    r.map_err(|e| format!("syslog: {e}"))
}
