//! One function per verb of the command port: `(request, &mut State, peer,
//! now) -> Reply`. No sockets here; answers that need other hosts (ALLPING,
//! RELAY) come back as `Reply::Later` and the loop runs the calls.

use crate::clock::Now;
use crate::command::{frame_err, frame_ok, Request};
use crate::effects::Effects;
use crate::state::State;
use reply::{Deferred, Reply};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

pub mod reply;
mod upgrade;

fn ok(verb: &str, body: &str) -> Reply {
    Reply::Now(frame_ok(verb, body))
}

fn err(verb: &str, reason: &str) -> Reply {
    Reply::Now(frame_err(verb, reason))
}

/// Answers one request from `peer`.
pub fn dispatch(st: &mut State, req: &Request, peer: IpAddr, now: Now, fx: &mut Effects) -> Reply {
    st.counters.commands += 1;
    let v = req.verb.as_str();
    if !st.allowed(peer) {
        st.counters.refuse("access denied");
        return err(v, "access denied");
    }
    let local = st.is_local(peer);
    let reply = match v {
        "PING" => ping(st),
        "PROBE" => probe(st, req, peer),
        "STATE" => ok(v, &state_text(st, now)),
        "DUMP" => ok(v, &dump(st, now).to_string()),
        "STOP" => stop(st, req),
        "WORK_RELOAD" => {
            st.reload = true;
            ok(v, "reloading work")
        }
        "HIST" | "ZAP" | "SEND" => {
            // On the server, HIST naming another host is that host's history.
            let elsewhere = match v {
                "HIST" => st.server.as_ref().and_then(|s| s.hist_elsewhere(req)),
                _ => None,
            };
            match (elsewhere, st.client.as_mut()) {
                (Some(r), _) => r,
                (None, Some(c)) => c.verb(req, now, fx),
                (None, None) => err(v, "not a client"),
            }
        }
        "UPGRADE" => upgrade::upgrade(st, req, peer, local),
        "BINARY" => upgrade::binary(st),
        "WORK" | "WORK_LM" | "REPORT" | "EVENTS" | "CLIENTS" | "ALLPING" | "ALLSEND" | "RELAY"
        | "ACK" | "SILENCE" => match st.server.as_mut() {
            Some(s) => s.verb(req, peer, local, now, fx),
            None => err(v, "not a server"),
        },
        _ => {
            st.counters.refuse("unknown command");
            return err(v, &format!("unknown command {v}"));
        }
    };
    if let Reply::Now(text) = &reply {
        if let Some(why) = text.lines().last().and_then(|l| l.strip_prefix("COMMAND ERROR ")) {
            st.counters.refuse(&format!("{v} {}", refusal_kind(why)));
        }
    }
    reply
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

/// `PROBE HOST ADDR`: the server asks this client to PING a suspected host
/// (issue 15's confirmation). Only the server may ask: anyone else could
/// make the fleet's clients connect wherever they like.
fn probe(st: &State, req: &Request, peer: IpAddr) -> Reply {
    let v = "PROBE";
    let from_server =
        st.server_cmd_addr().is_some_and(|a| a.ip() == crate::work::addr::canonical_ip(peer));
    if !from_server {
        return err(v, "access denied: only the server may ask PROBE");
    }
    if st.client.is_none() {
        return err(v, "not a client");
    }
    let [host, addr] = req.args.as_slice() else {
        return err(v, "usage: PROBE HOST ADDR:PORT");
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return err(v, &format!("usage: PROBE HOST ADDR:PORT ('{addr}' is not an address)"));
    };
    let d =
        Deferred { verb: v.into(), relay: false, parts: vec![(host.clone(), addr, "PING".into())] };
    Reply::Later(d)
}

fn ping(st: &State) -> Reply {
    ok("PING", &format!("PONG from {} {} {}", st.roles_text(), st.hostname, crate::VERSION))
}

fn stop(st: &mut State, req: &Request) -> Reply {
    match req.args.first() {
        Some(s)
            if !st.secret.is_empty() && constant_time_eq(s.as_bytes(), st.secret.as_bytes()) =>
        {
            st.stop = true;
            ok("STOP", &format!("stopping {}", st.hostname))
        }
        Some(_) => err("STOP", "bad secret"),
        None => err("STOP", "STOP needs the secret from hbmon.stp"),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The STATE text: `-- key value` lines; a function of the state only.
pub fn state_text(st: &State, now: Now) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "-- version {}", crate::VERSION);
    let _ = writeln!(s, "-- roles {}", st.roles_text());
    let _ = writeln!(s, "-- hostname {}", st.hostname);
    let sv = &st.work.server;
    let _ = writeln!(s, "-- server {} {}:{}", sv.host, sv.address, sv.ports.port);
    let _ = writeln!(s, "-- listening on {} (command)", st.bound.cmd);
    if let Some(u) = st.bound.udp {
        let _ = writeln!(s, "-- listening on {u} (heartbeat udp)");
    }
    if let Some(h) = st.bound.http {
        let _ = writeln!(s, "-- listening on {h} (dashboard http)");
    }
    let log = match &st.conf.log {
        crate::conf::LogTarget::Syslog => "syslog".to_string(),
        _ => st.conf.log_file().display().to_string(),
    };
    let _ = writeln!(s, "-- log {log} ({:?})", st.conf.loglvl);
    let _ = writeln!(s, "-- vardir {}", st.conf.vardir.display());
    let lm = st.work_lm;
    let _ = writeln!(
        s,
        "-- work {} (lm {lm})",
        crate::clock::fmt_time(crate::work::version::to_secs(lm))
    );
    let _ = writeln!(s, "-- uptime {}", crate::clock::fmt_age(now.wall - st.started));
    let _ = writeln!(s, "-- pid {}", std::process::id());
    let _ = writeln!(s, "-- cpu_seconds {:.3}", cpu_seconds());
    let _ = writeln!(s, "-- commands {}", st.counters.commands);
    for (reason, n) in &st.counters.refused {
        let _ = writeln!(s, "-- refused {reason} {n}");
    }
    if let Some(c) = &st.client {
        c.state_lines(&mut s, now);
    }
    if let Some(sv) = &st.server {
        sv.state_lines(&mut s, now);
    }
    s
}

/// This process's user+system CPU time in seconds.
pub fn cpu_seconds() -> f64 {
    match nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let tv = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
            tv(u.user_time()) + tv(u.system_time())
        }
        Err(_) => 0.0,
    }
}

/// The full state as JSON (DUMP).
pub fn dump(st: &State, now: Now) -> serde_json::Value {
    serde_json::json!({
        "version": crate::VERSION,
        "hostname": st.hostname,
        "roles": st.work.roles,
        "work_lm": st.work_lm,
        "started": st.started,
        "now": now.wall,
        "counters": st.counters,
        "client": st.client.as_ref().map(|c| c.dump(now)),
        "server": st.server.as_ref().map(|s| s.dump(now)),
    })
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
}
