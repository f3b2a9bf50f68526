//! The server's verbs: work distribution (WORK, WORK_LM), reports and
//! events in (REPORT, EVENTS), the fleet view (CLIENTS), verbs fanned out to
//! the clients (ALLPING, ALLSEND, RELAY) and alert handling (ACK, SILENCE).
//! The table lets them in only on a host with a server part.
//!
//! REPORT, EVENTS, CLIENTS, ACK and SILENCE still frame their own answers
//! in `server/` (their store paths move to the server's store thread this
//! round); the others call domain methods and frame here.

use super::{err, ok, Call};
use crate::verbs::reply::{Deferred, Reply, RELAYABLE};

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

pub(super) fn report(c: &mut Call) -> Reply {
    let (req, peer, local, now) = (c.req, c.peer, c.local, c.now);
    server!(c, "REPORT").report(req, peer, local, now, c.fx)
}

pub(super) fn events(c: &mut Call) -> Reply {
    let (req, peer, local, now) = (c.req, c.peer, c.local, c.now);
    server!(c, "EVENTS").events(req, peer, local, now, c.fx)
}

pub(super) fn clients(c: &mut Call) -> Reply {
    let (req, now) = (c.req, c.now);
    server!(c, "CLIENTS").clients(req, now)
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

pub(super) fn ack(c: &mut Call) -> Reply {
    let req = c.req;
    server!(c, "ACK").ack(req)
}

pub(super) fn silence(c: &mut Call) -> Reply {
    let (req, now) = (c.req, c.now);
    server!(c, "SILENCE").silence(req, now, c.fx)
}
