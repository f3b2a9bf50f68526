//! What a verb answers: a framed text now, calls to run first (`Deferred`,
//! finished by `finish`), a helper-thread job, shared bytes, or a ticket a
//! store thread answers (framed by `verbs::answered`). Only `verbs/` and
//! the loop use it; the role parts return values and never see a `Reply`.

use crate::command::{frame_err, frame_ok};
use std::fmt::Write as _;
use std::net::SocketAddr;

pub enum Reply {
    /// A complete framed answer.
    Now(String),
    /// Run these calls, then `finish` builds the answer.
    Later(Deferred),
    /// Run this upgrade job in a helper thread; its result is the answer.
    Job(crate::upgrade::task::UpgradeTask),
    /// A complete framed answer shared with other sessions (BINARY).
    Shared(std::sync::Arc<Vec<u8>>),
    /// A helper (the server's store thread) answers later: the session
    /// waits until a part puts this ticket's answer in `Effects::answers`.
    Wait(crate::effects::Ticket),
}

#[derive(Debug, Clone)]
pub struct Deferred {
    pub verb: String,
    pub relay: bool,
    /// (host, address, command line), in host order.
    pub parts: Vec<(String, SocketAddr, String)>,
}

/// Verbs a server forwards with RELAY.
pub const RELAYABLE: &[&str] = &["PING", "STATE", "HIST", "SEND", "DUMP"];

/// Builds the answer of a deferred verb from its calls' results.
pub fn finish(d: &Deferred, results: Vec<crate::session::CallResult>) -> String {
    if d.relay {
        return match results.into_iter().next() {
            Some(Ok(text)) => text,
            Some(Err(e)) => frame_err(&d.verb, &format!("relay to {}: {e}", d.parts[0].0)),
            None => frame_err(&d.verb, "relay: no answer"),
        };
    }
    let mut body = String::new();
    for ((host, _, _), r) in d.parts.iter().zip(results) {
        match r.map(|t| crate::command::parse_answer(&t)) {
            // Each answer line names the client that gave it: a SEND
            // answer names only the server it reports to.
            Ok(Ok(b)) => {
                for line in b.lines() {
                    let _ = writeln!(body, "{host}: {line}");
                }
            }
            Ok(Err(e)) => {
                let _ = writeln!(body, "-- {host} error: {e}");
            }
            Err(e) => {
                let _ = writeln!(body, "-- {host} unreachable: {e}");
            }
        }
    }
    frame_ok(&d.verb, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_names_each_client_in_order_and_lists_unreachable_12_11() {
        let a: SocketAddr = "127.0.0.2:1".parse().unwrap();
        let d = Deferred {
            verb: "ALLPING".into(),
            relay: false,
            parts: vec![("a".into(), a, "PING".into()), ("b".into(), a, "PING".into())],
        };
        let out = finish(
            &d,
            vec![Ok(frame_ok("PING", "PONG from client a")), Err("connect: refused".into())],
        );
        assert_eq!(out, "COMMAND ALLPING\na: PONG from client a\n-- b unreachable: connect: refused\nCOMMAND DONE\n");
    }
}
