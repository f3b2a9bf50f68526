//! The command port's verbs: one table (`VERBS`: name -> handler, the roles
//! that answer it, who may call it) and one `dispatch`. The handlers are
//! split by role: `host.rs` (any host), `client.rs`, `server.rs`,
//! `upgrade.rs`; each calls the part's domain methods and frames the answer
//! (`reply.rs`), and `answered` frames the answers that waited on a ticket.
//! The parts never frame: no file under `server/` or `client/` imports
//! `verbs` (`tests/architecture.rs` checks it). No sockets here: answers that need other hosts (ALLPING,
//! RELAY, PROBE) come back as `Reply::Later` and the loop runs the calls.
//!
//! A new verb is one handler function and one row of `VERBS` (and its
//! section in docs/command-port.md, which a test holds against the table).

use crate::answer::Answered;
use crate::clock::Now;
use crate::command::{frame_err, frame_ok, Request};
use crate::effects::Effects;
use crate::state::State;
use reply::Reply;
use std::net::IpAddr;

mod client;
mod host;
pub mod reply;
mod server;
mod upgrade;

/// A role part that answers a verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Any host: no part needed.
    Host,
    Client,
    Server,
}

/// Who may call a verb, past the port's own access check (`State::allowed`:
/// localhost, this host's server, a host of the fleet the server knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Anyone the port lets in; the handler may check more (STOP's secret,
    /// REPORT's sender, UPGRADE's subcommands).
    Allowed,
    /// Only this host's server (its address in the work).
    Server,
}

/// One request being answered.
pub struct Call<'a> {
    pub st: &'a mut State,
    pub req: &'a Request,
    pub peer: IpAddr,
    /// Is the peer this host itself?
    pub local: bool,
    pub now: Now,
    pub fx: &'a mut Effects,
}

pub struct Verb {
    pub name: &'static str,
    /// The host must have one of these parts (`Host`: none needed); else
    /// `not a client` / `not a server`, after the first listed.
    pub roles: &'static [Role],
    pub who: Who,
    pub run: fn(&mut Call) -> Reply,
}

const HOST: &[Role] = &[Role::Host];
const CLIENT: &[Role] = &[Role::Client];
const SERVER: &[Role] = &[Role::Server];

/// Every verb of the command port (docs/command-port.md).
pub const VERBS: &[Verb] = &[
    Verb { name: "PING", roles: HOST, who: Who::Allowed, run: host::ping },
    Verb { name: "PROBE", roles: CLIENT, who: Who::Server, run: host::probe },
    Verb { name: "STATE", roles: HOST, who: Who::Allowed, run: host::state },
    Verb { name: "DUMP", roles: HOST, who: Who::Allowed, run: host::dump_verb },
    Verb { name: "STOP", roles: HOST, who: Who::Allowed, run: host::stop },
    Verb { name: "WORK_RELOAD", roles: HOST, who: Who::Allowed, run: host::work_reload },
    // On the server, HIST naming another host is that host's history.
    Verb {
        name: "HIST",
        roles: &[Role::Client, Role::Server],
        who: Who::Allowed,
        run: client::hist,
    },
    Verb { name: "ZAP", roles: CLIENT, who: Who::Allowed, run: client::zap },
    Verb { name: "SEND", roles: CLIENT, who: Who::Allowed, run: client::send },
    Verb { name: "UPGRADE", roles: HOST, who: Who::Allowed, run: upgrade::upgrade },
    Verb { name: "BINARY", roles: HOST, who: Who::Allowed, run: upgrade::binary },
    Verb { name: "WORK", roles: SERVER, who: Who::Allowed, run: server::work },
    Verb { name: "WORK_LM", roles: SERVER, who: Who::Allowed, run: server::work },
    Verb { name: "REPORT", roles: SERVER, who: Who::Allowed, run: server::report },
    Verb { name: "EVENTS", roles: SERVER, who: Who::Allowed, run: server::events },
    Verb { name: "CLIENTS", roles: SERVER, who: Who::Allowed, run: server::clients },
    Verb { name: "ALLPING", roles: SERVER, who: Who::Allowed, run: server::all },
    Verb { name: "ALLSEND", roles: SERVER, who: Who::Allowed, run: server::all },
    Verb { name: "RELAY", roles: SERVER, who: Who::Allowed, run: server::relay },
    Verb { name: "ACK", roles: SERVER, who: Who::Allowed, run: server::ack },
    Verb { name: "SILENCE", roles: SERVER, who: Who::Allowed, run: server::silence },
];

/// The row of a verb (names are upper case on the wire: `command` parses so).
pub fn verb(name: &str) -> Option<&'static Verb> {
    VERBS.iter().find(|v| v.name == name)
}

pub(crate) fn ok(verb: &str, body: &str) -> Reply {
    Reply::Now(frame_ok(verb, body))
}

pub(crate) fn err(verb: &str, reason: &str) -> Reply {
    Reply::Now(frame_err(verb, reason))
}

/// The text of an answer that waited on a ticket (`Reply::Wait`): the
/// loop calls this when a part hands it the values.
pub fn answered(a: Answered) -> String {
    match a {
        Answered::Failed { verb, why } => frame_err(verb, &why),
        Answered::Hist(_) | Answered::Zapped { .. } => client::answered(a),
        Answered::Report { .. }
        | Answered::Events { .. }
        | Answered::Clients(_)
        | Answered::Acked { .. }
        | Answered::Silenced { .. } => server::answered(a),
    }
}

/// Answers one request from `peer`.
pub fn dispatch(st: &mut State, req: &Request, peer: IpAddr, now: Now, fx: &mut Effects) -> Reply {
    st.counters.commands += 1;
    let v = req.verb.as_str();
    if !st.allowed(peer) {
        st.counters.refuse("access denied");
        return err(v, "access denied");
    }
    let Some(row) = verb(v) else {
        st.counters.refuse("unknown command");
        return err(v, &format!("unknown command {v}"));
    };
    let reply = match refusal(st, row, peer) {
        Some(why) => err(v, &why),
        None => {
            let local = st.is_local(peer);
            (row.run)(&mut Call { st, req, peer, local, now, fx })
        }
    };
    if let Reply::Now(text) = &reply {
        if let Some(why) = text.lines().last().and_then(|l| l.strip_prefix("COMMAND ERROR ")) {
            st.counters.refuse(&format!("{v} {}", refusal_kind(why)));
        }
    }
    reply
}

/// Why the table refuses this call (who may ask, which part answers), if it does.
fn refusal(st: &State, row: &Verb, peer: IpAddr) -> Option<String> {
    if row.who == Who::Server {
        let ip = crate::work::addr::canonical_ip(peer);
        let from_server = st.server_cmd_addr().is_some_and(|a| a.ip() == ip);
        if !from_server {
            return Some(format!("access denied: only the server may ask {}", row.name));
        }
    }
    let has = |r: &Role| match r {
        Role::Host => true,
        Role::Client => st.client.is_some(),
        Role::Server => st.server.is_some(),
    };
    match row.roles.iter().any(has) {
        true => None,
        false => Some(match row.roles.first() {
            Some(Role::Server) => "not a server".into(),
            _ => "not a client".into(),
        }),
    }
}

/// What kind of refusal an error answer is, in a few fixed words (the
/// counter keys stay bounded whatever the requests name).
pub fn refusal_kind(why: &str) -> &'static str {
    let has = |w: &str| why.contains(w);
    if has("JSON") {
        "bad JSON"
    } else if has("not in the work") || has("unknown host") || has("no host or item") {
        "unknown host"
    } else if has("not that host") || has("access denied") {
        "wrong sender"
    } else if has("secret") {
        "bad secret"
    } else if why.starts_with("usage") || has("bad args") || has("unexpected argument") {
        "bad args"
    } else if has("cannot") {
        "failed"
    } else {
        "refused"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_they_were_12_15() {
        assert_eq!(refusal_kind("bad REPORT JSON: expected value at line 1"), "bad JSON");
        assert_eq!(refusal_kind("x.example is not in the work"), "unknown host");
        assert_eq!(refusal_kind("report for a from 127.0.0.2: not that host"), "wrong sender");
        assert_eq!(refusal_kind("usage: ACK <host> <item>"), "bad args");
        assert_eq!(refusal_kind("bad args: pnts 0"), "bad args");
        assert_eq!(refusal_kind("bad secret"), "bad secret");
        assert_eq!(refusal_kind("too many events (10001 > 10000)"), "refused");
    }

    #[test]
    fn one_row_per_verb_each_documented() {
        let doc = include_str!("../../docs/command-port.md");
        let mut seen = std::collections::HashSet::new();
        for v in VERBS {
            assert!(seen.insert(v.name), "{} twice in VERBS", v.name);
            assert!(v.name.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{}", v.name);
            assert!(!v.roles.is_empty(), "{}", v.name);
            assert!(doc.contains(v.name), "docs/command-port.md does not name {}", v.name);
        }
        assert!(verb("PING").is_some() && verb("ping").is_none() && verb("NOPE").is_none());
    }
}
