//! The verbs every host answers, whatever its roles: PING, PROBE (a
//! client, for its server), STATE, DUMP, STOP, WORK_RELOAD. STATE and DUMP
//! are built here from the state and each part's own lines.

use super::{err, ok, Call};
use crate::clock::{fmt_age, fmt_time, Now};
use crate::state::State;
use crate::verbs::reply::{Deferred, Reply};
use std::fmt::Write as _;
use std::net::SocketAddr;

pub(super) fn ping(c: &mut Call) -> Reply {
    let st = &*c.st;
    ok("PING", &format!("PONG from {} {} {}", st.roles_text(), st.hostname, crate::VERSION))
}

/// `PROBE HOST ADDR`: the server asks this client to PING a suspected host
/// (issue 15's confirmation). Only the server may ask: anyone else could
/// make the fleet's clients connect wherever they like.
/// (The table lets only the server in, and only on a client.)
pub(super) fn probe(c: &mut Call) -> Reply {
    let v = "PROBE";
    let [host, addr] = c.req.args.as_slice() else {
        return err(v, "usage: PROBE HOST ADDR:PORT");
    };
    let Ok(addr) = addr.parse::<SocketAddr>() else {
        return err(v, &format!("usage: PROBE HOST ADDR:PORT ('{addr}' is not an address)"));
    };
    let d =
        Deferred { verb: v.into(), relay: false, parts: vec![(host.clone(), addr, "PING".into())] };
    Reply::Later(d)
}

pub(super) fn state(c: &mut Call) -> Reply {
    ok("STATE", &state_text(c.st, c.now))
}

pub(super) fn dump_verb(c: &mut Call) -> Reply {
    ok("DUMP", &dump(c.st, c.now).to_string())
}

pub(super) fn work_reload(c: &mut Call) -> Reply {
    c.st.reload = true;
    ok("WORK_RELOAD", "reloading work")
}

pub(super) fn stop(c: &mut Call) -> Reply {
    let st = &mut *c.st;
    match c.req.args.first() {
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
    let _ = writeln!(s, "-- work {} (lm {lm})", fmt_time(crate::work::version::to_secs(lm)));
    let _ = writeln!(s, "-- uptime {}", fmt_age(now.wall - st.started));
    let _ = writeln!(s, "-- pid {}", std::process::id());
    let _ = writeln!(s, "-- cpu_seconds {:.3}", cpu_seconds());
    let _ = writeln!(s, "-- commands {}", st.counters.commands);
    for (reason, n) in &st.counters.refused {
        let _ = writeln!(s, "-- refused {reason} {n}");
    }
    st.pool.state_lines(&mut s);
    st.turns.state_lines(&mut s);
    st.names.state_line(&mut s, st.names_round.pending());
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
        "workers": st.pool,
        "loop": st.turns,
        "client": st.client.as_ref().map(|c| c.dump(now)),
        "server": st.server.as_ref().map(|s| s.dump(now)),
    })
}
