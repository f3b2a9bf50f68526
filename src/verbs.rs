//! One function per verb of the command port: `(request, &mut State, peer,
//! now) -> Reply`. No sockets here; answers that need other hosts (ALLPING,
//! RELAY) come back as `Reply::Later` and the loop runs the calls.

use crate::command::{frame_err, frame_ok, Request};
use crate::state::{Effects, Now, State};
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

pub enum Reply {
    /// A complete framed answer.
    Now(String),
    /// Run these calls, then `finish` builds the answer.
    Later(Deferred),
    /// Run this upgrade job in a helper thread; its result is the answer.
    Job(crate::upgrade::verb::UpgradeTask),
    /// A complete framed answer shared with other sessions (BINARY).
    Shared(std::sync::Arc<Vec<u8>>),
    /// A helper (the server's store thread) answers later: the session
    /// waits until a part puts this ticket's text in `Effects::answers`.
    Wait(crate::state::Ticket),
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
        "UPGRADE" => crate::upgrade::verb::upgrade(st, req, peer, local),
        "BINARY" => crate::upgrade::verb::binary(st),
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
        st.server_cmd_addr().is_some_and(|a| a.ip() == crate::state::canonical_ip(peer));
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

/// Seconds as `3d4h`, `5m2s`, `0.31s`.
pub fn fmt_age(secs: f64) -> String {
    if !secs.is_finite() {
        return "never".into();
    }
    let s = secs.max(0.0) as u64;
    let (d, h, m, sec) = (s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{sec}s"),
        (0, 0, _) => format!("{m}m{sec}s"),
        (0, _, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// Unix seconds as `2026-11-22 10:01:02 UTC`.
pub fn fmt_time(t: f64) -> String {
    let s = t.max(0.0) as i64;
    let (days, rem) = (s.div_euclid(86400), s.rem_euclid(86400));
    let (y, mo, d) = civil_from_days(days);
    format!("{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02} UTC", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Days since 1970-01-01 -> (year, month, day); Howard Hinnant's algorithm.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z.rem_euclid(146097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m, d)
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
    let _ = writeln!(s, "-- work {} (lm {lm})", fmt_time(crate::work::version::to_secs(lm)));
    let _ = writeln!(s, "-- uptime {}", fmt_age(now.wall - st.started));
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
    fn time_formats() {
        assert_eq!(fmt_time(0.0), "1970-01-01 00:00:00 UTC");
        assert_eq!(fmt_time(1_795_000_000.0), "2026-11-18 11:06:40 UTC");
        assert_eq!(fmt_age(5.2), "5s");
        assert_eq!(fmt_age(3666.0), "1h1m");
        assert_eq!(fmt_age(90000.0), "1d1h");
    }

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
