//! The server's verbs: work distribution (WORK, WORK_LM), reports and
//! events in (REPORT, EVENTS), the fleet view (CLIENTS), verbs fanned out to
//! the clients (ALLPING, ALLSEND, RELAY) and alert handling (ACK, SILENCE).
//! The table lets them in only on a host with a server part.
//!
//! Each handler calls the server's domain method and frames what it
//! returns: a value, a typed refusal (`answer::Refused`), or a ticket that
//! the store thread answers after its commit (`answer::Answered`, framed
//! by `answered` here when it arrives).

use super::{err, ok, Call};
use crate::answer::{Answered, Refused};
use crate::command::{frame_err, frame_ok};
use crate::effects::Ticket;
use crate::verbs::reply::{Deferred, Reply, RELAYABLE};
use serde_json::json;

/// The server part (the table checked it is there; a miss is answered as
/// the table would).
macro_rules! server {
    ($c:expr, $verb:expr) => {
        match $c.st.server.as_mut() {
            Some(s) => s,
            None => return err($verb, "not a server"),
        }
    };
}

/// `WORK <host>` / `WORK_LM <host>`: the host's work and its version.
pub(super) fn work(c: &mut Call) -> Reply {
    let req = c.req;
    let v = req.verb.as_str();
    let Some(name) = req.args.first() else {
        return err(v, &format!("usage: {v} <host>"));
    };
    let (peer, local, with_work) = (c.peer, c.local, v == "WORK");
    match server!(c, v).work_for(name, peer, local, with_work) {
        Ok((data, lm)) => {
            let resp = if with_work { "ok work" } else { "ok work_lm" };
            ok(v, &serde_json::json!({"resp": resp, "data": data, "lm": lm}).to_string())
        }
        Err(why) => err(v, why),
    }
}

/// A ticket to wait on, or the refusal.
fn wait(verb: &str, r: Result<Ticket, Refused>) -> Reply {
    match r {
        Ok(t) => Reply::Wait(t),
        Err(why) => err(verb, &why.to_string()),
    }
}

/// `REPORT <json>`: answered once stored.
pub(super) fn report(c: &mut Call) -> Reply {
    let (req, peer, local, now) = (c.req, c.peer, c.local, c.now);
    wait("REPORT", server!(c, "REPORT").report(&req.rest, peer, local, now))
}

/// `EVENTS <json>`: answered once committed.
pub(super) fn events(c: &mut Call) -> Reply {
    let (req, peer, local, now) = (c.req, c.peer, c.local, c.now);
    wait("EVENTS", server!(c, "EVENTS").events(&req.rest, peer, local, now, c.fx))
}

/// `CLIENTS [host] [item] [n or ival]`: built on the store thread.
pub(super) fn clients(c: &mut Call) -> Reply {
    let (req, now) = (c.req, c.now);
    wait("CLIENTS", server!(c, "CLIENTS").clients(&req.args, now))
}

/// ALLPING / ALLSEND: the command to every client, in host order.
pub(super) fn all(c: &mut Call) -> Reply {
    let verb = c.req.verb.clone();
    let parts = server!(c, &verb).fleet_commands(&verb);
    Reply::Later(Deferred { verb, relay: false, parts })
}

/// `RELAY <host> <command...>`: one client's answer to a relayable verb.
pub(super) fn relay(c: &mut Call) -> Reply {
    let req = c.req;
    let (Some(name), Some(verb)) = (req.args.first(), req.args.get(1)) else {
        return err("RELAY", "usage: RELAY <host> <command...>");
    };
    let verb_uc = verb.to_ascii_uppercase();
    if !RELAYABLE.contains(&verb_uc.as_str()) {
        let why = format!("{verb_uc} may not be relayed (only {})", RELAYABLE.join(" "));
        return err("RELAY", &why);
    }
    let line = req.args[1..].join(" ");
    match server!(c, "RELAY").relay_target(name) {
        Ok((host, addr)) => Reply::Later(Deferred {
            verb: "RELAY".into(),
            relay: true,
            parts: vec![(host, addr, line)],
        }),
        Err(why) => err("RELAY", &why),
    }
}

/// `ACK <host> <item>`: no more reminders for this alert, once on disk.
pub(super) fn ack(c: &mut Call) -> Reply {
    let req = c.req;
    wait("ACK", server!(c, "ACK").ack(&req.args))
}

/// `SILENCE <host> [item] <ival>`: a maintenance window, once on disk.
pub(super) fn silence(c: &mut Call) -> Reply {
    let (req, now) = (c.req, c.now);
    wait("SILENCE", server!(c, "SILENCE").silence(&req.args, now))
}

/// The text of a server verb's answer that waited on a ticket.
pub(super) fn answered(a: Answered) -> String {
    match a {
        Answered::Report { host, peer, work_lm } => {
            let resp = format!("ok report from {host} [{peer}] for {host}");
            frame_ok("REPORT", &json!({"resp": resp, "work": work_lm}).to_string())
        }
        Answered::Events { n, new } => {
            frame_ok("EVENTS", &json!({"resp": format!("ok events {n} stored {new}")}).to_string())
        }
        // Serialized by the store thread: the loop only frames it.
        Answered::Clients(body) => frame_ok("CLIENTS", &body),
        Answered::Acked { host, item } => frame_ok("ACK", &format!("acknowledged {host} {item}")),
        Answered::Silenced { what, until } => {
            let until = crate::clock::fmt_time(until);
            frame_ok("SILENCE", &format!("silenced {what} until {until}"))
        }
        // `verbs::answered` routes only the server's answers here.
        a => frame_err(a.verb(), "unexpected answer"),
    }
}
