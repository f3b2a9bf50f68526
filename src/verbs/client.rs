//! The client's verbs: HIST (its history; on a server naming another host,
//! that host's, relayed), ZAP, SEND. The table lets them in only on a host
//! with a client part (HIST: or a server). HIST and ZAP are answered by
//! the history's store thread through a ticket; `answered` frames them.

use super::{err, ok, Call};
use crate::answer::Answered;
use crate::command::{frame_err, frame_ok};
use crate::verbs::reply::{Deferred, Reply};

/// `HIST [ival] [pnts] [host] [item...]`.
pub(super) fn hist(c: &mut Call) -> Reply {
    if let Some(sv) = c.st.server.as_ref() {
        match sv.history_elsewhere(&c.req.args) {
            Some(Ok((host, addr))) => {
                let line = format!("HIST {}", c.req.args.join(" "));
                let parts = vec![(host, addr, line)];
                return Reply::Later(Deferred { verb: "HIST".into(), relay: true, parts });
            }
            Some(Err(why)) => return err("HIST", &why),
            None => {}
        }
    }
    match c.st.client.as_ref().map(|cl| cl.hist(&c.req.args, c.now)) {
        Some(Ok(ticket)) => Reply::Wait(ticket),
        Some(Err(why)) => err("HIST", &why.to_string()),
        None => err("HIST", "not a client"),
    }
}

/// `ZAP`: downsample the history now.
pub(super) fn zap(c: &mut Call) -> Reply {
    match c.st.client.as_mut() {
        Some(cl) => Reply::Wait(cl.zap(c.now)),
        None => err("ZAP", "not a client"),
    }
}

/// `SEND [SPREAD]`: report soon; the server passes a spread fitting its fleet size.
pub(super) fn send(c: &mut Call) -> Reply {
    let spread = match crate::ranges::send_spread(&c.req.args) {
        Ok(s) => s,
        Err(e) => return err("SEND", &e),
    };
    let Some(cl) = c.st.client.as_mut() else { return err("SEND", "not a client") };
    let (server, next) = cl.report_soon(spread, c.now, c.fx);
    let when = crate::clock::fmt_time(next);
    ok("SEND", &format!("SEND next_send {server} {when}"))
}

/// The text of a client verb's answer that waited on a ticket.
pub(super) fn answered(a: Answered) -> String {
    match a {
        // Serialized by the store thread: the loop only frames it.
        Answered::Hist(body) => frame_ok("HIST", &body),
        Answered::Zapped { before, after } => {
            frame_ok("ZAP", &format!("ZAP rows before {before} after {after}"))
        }
        // `verbs::answered` routes only the client's answers here.
        a => frame_err(a.verb(), "unexpected answer"),
    }
}
