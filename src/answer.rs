//! The domain's side of the command port's answers, as values: why a part
//! refuses a request ([`Refused`]) and what a session waiting on a ticket
//! is answered ([`Answered`]). The role parts and the store threads return
//! these; only `verbs/` turns them into text (`verbs::answered`, the
//! handlers), so the answer framing lives in one place. Bottom-level: it
//! imports nothing of the crate, so the parts, the store threads and
//! `effects.rs` may all use it.

use std::fmt;
use std::net::IpAddr;

/// Why a part refuses a request; its `Display` is the `COMMAND ERROR` text.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// The request does not parse (bad JSON, a bad argument): the reason.
    Bad(String),
    /// The verb's usage line.
    Usage(&'static str),
    /// The host named is not in the work.
    NotInWork(String),
    /// A host the server does not know.
    UnknownHost(String),
    /// `what` (report, events) for `host` came from `peer`, which is not it.
    NotThatHost { what: &'static str, host: String, peer: IpAddr },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Bad(why) => f.write_str(why),
            Refused::Usage(u) => f.write_str(u),
            Refused::NotInWork(h) => write!(f, "{h} is not in the work"),
            Refused::UnknownHost(h) => write!(f, "unknown host {h}"),
            Refused::NotThatHost { what, host, peer } => {
                write!(f, "{what} for {host} from {peer}: not that host")
            }
        }
    }
}

/// What a session waiting on a ticket (`Reply::Wait`) is answered, once
/// the store thread (or the part) has it: values, framed by `verbs/`.
/// Bodies that can be large (CLIENTS, HIST) come serialized by the thread
/// that built them, so the loop only copies them.
#[derive(Debug, Clone, PartialEq)]
pub enum Answered {
    /// REPORT stored: the host it was for, the address it came from, and
    /// the version of the work the server has for it.
    Report { host: String, peer: String, work_lm: i64 },
    /// EVENTS committed: `n` received, `new` of them stored (the rest were
    /// retries of stored ones).
    Events { n: usize, new: usize },
    /// CLIENTS: the JSON object, serialized.
    Clients(String),
    /// ACK recorded.
    Acked { host: String, item: String },
    /// SILENCE recorded: what (`host` or `host item`), until when (wall).
    Silenced { what: String, until: f64 },
    /// HIST: the JSON object, serialized.
    Hist(String),
    /// ZAP: history rows before and after.
    Zapped { before: u64, after: u64 },
    /// The verb failed after it was accepted: `COMMAND ERROR <why>`.
    Failed { verb: &'static str, why: String },
}

impl Answered {
    /// The verb this answers.
    pub fn verb(&self) -> &'static str {
        match self {
            Answered::Report { .. } => "REPORT",
            Answered::Events { .. } => "EVENTS",
            Answered::Clients(_) => "CLIENTS",
            Answered::Acked { .. } => "ACK",
            Answered::Silenced { .. } => "SILENCE",
            Answered::Hist(_) => "HIST",
            Answered::Zapped { .. } => "ZAP",
            Answered::Failed { verb, .. } => verb,
        }
    }

    pub fn failed(verb: &'static str, why: impl Into<String>) -> Answered {
        Answered::Failed { verb, why: why.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_read_as_before() {
        let peer: IpAddr = "127.0.0.2".parse().unwrap();
        let r = Refused::NotThatHost { what: "report", host: "a".into(), peer };
        assert_eq!(r.to_string(), "report for a from 127.0.0.2: not that host");
        assert_eq!(Refused::NotInWork("x".into()).to_string(), "x is not in the work");
        assert_eq!(Refused::UnknownHost("x".into()).to_string(), "unknown host x");
        assert_eq!(
            Refused::Usage("usage: ACK <host> <item>").to_string(),
            "usage: ACK <host> <item>"
        );
        assert_eq!(Answered::failed("ZAP", "x").verb(), "ZAP");
        assert_eq!(Answered::Zapped { before: 1, after: 0 }.verb(), "ZAP");
    }
}
