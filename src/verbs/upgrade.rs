//! The UPGRADE and BINARY verbs: checks and arguments on the loop thread
//! (nothing blocking), the work itself handed to a helper thread as an
//! `upgrade::task::UpgradeTask`, whose `UpgradeDone` answers the waiting session.
//!
//! - `UPGRADE [-f] [--canary N] [host...]`: the server, from localhost only.
//! - `UPGRADE OFFER ...`: a client, from its server only.
//! - `UPGRADE STATUS`: the last outcome on this host.
//! - `BINARY`: the server streams the offered bytes while a rollout runs.

use crate::command::{frame_err, frame_ok, Request};
use crate::state::State;
use crate::upgrade::install::Install;
use crate::upgrade::task::{UpgradeJob, UpgradeTask};
use crate::upgrade::{OfferLine, Rollout};
use crate::verbs::reply::Reply;
use std::net::IpAddr;

/// Most clients named in one UPGRADE (the canary count is bounded by it).
const MAX_NAMED: usize = 10_000;

fn err(why: &str) -> Reply {
    Reply::Now(frame_err("UPGRADE", why))
}

pub(super) fn upgrade(c: &mut super::Call) -> Reply {
    let (st, req, peer, local) = (&mut *c.st, c.req, c.peer, c.local);
    match req.args.first().map(|a| a.to_ascii_uppercase()).as_deref() {
        Some("OFFER") => offer(st, req, peer),
        Some("STATUS") => {
            let last = if st.upgrade.last.is_empty() { "none" } else { &st.upgrade.last };
            Reply::Now(frame_ok("UPGRADE", last))
        }
        _ => rollout(st, req, local),
    }
}

fn rollout(st: &mut State, req: &Request, local: bool) -> Reply {
    if !local {
        return err("access denied (UPGRADE only from localhost)");
    }
    let Some(server) = st.server.as_ref() else { return err("not a server") };
    let (mut force, mut canary, mut names) = (false, 0usize, Vec::new());
    let mut it = req.args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-f" => force = true,
            "--canary" => match it.next().and_then(|n| n.parse::<usize>().ok()) {
                Some(n) if n <= MAX_NAMED => canary = n,
                _ => return err("bad args: --canary needs a count"),
            },
            s if s.starts_with('-') => return err(&format!("bad args: unknown option {s}")),
            _ => names.push(a.clone()),
        }
    }
    if names.len() > MAX_NAMED {
        return err(&format!("bad args: more than {MAX_NAMED} hosts"));
    }
    let (targets, skipped) = match server.upgrade_targets(&names) {
        Ok(t) => t,
        Err(e) => return err(&e),
    };
    if st.upgrade.busy {
        return err("an upgrade is already running");
    }
    st.upgrade.busy = true;
    let running = st.reexec.as_ref().ok().map(|p| p.exe.as_path());
    let upgrade_bin = st.work.server_part.as_ref().and_then(|s| s.upgrade_bin.as_deref());
    let r = Rollout {
        bin: crate::upgrade::offered_path(upgrade_bin, &st.conf.bindir, running),
        come_back: crate::upgrade::come_back(st.work.intervals.upgrade_check),
        server: st.bound.cmd,
        key: st.conf.key.clone(),
        force,
        canary,
        targets,
        skipped,
        bind: st.own_addrs.first().copied(),
        slot: st.upgrade.offer.clone(),
    };
    Reply::Job(UpgradeTask { token: 0, job: UpgradeJob::Rollout(r) })
}

fn offer(st: &mut State, req: &Request, peer: IpAddr) -> Reply {
    if st.client.is_none() {
        return err("not a client");
    }
    let Some(server) = st.server_cmd_addr() else { return err("no server address") };
    if crate::work::addr::canonical_ip(peer) != crate::work::addr::canonical_ip(server.ip()) {
        return err("access denied (UPGRADE OFFER only from this host's server)");
    }
    let o = match OfferLine::parse(&req.args[1..]) {
        Ok(o) => o,
        Err(e) => return err(&format!("bad args: {e}")),
    };
    if !o.force && o.version == crate::VERSION {
        return Reply::Now(frame_ok("UPGRADE", &format!("unchanged {}", crate::VERSION)));
    }
    let plan = match &st.reexec {
        Ok(p) => p.clone(),
        Err(e) => return Reply::Now(frame_ok("UPGRADE", &format!("refused: cannot re-exec: {e}"))),
    };
    if st.upgrade.busy {
        return err("an upgrade is already running");
    }
    st.upgrade.busy = true;
    let conf = plan.argv.get(2).filter(|_| plan.argv.get(1).is_some_and(|a| a == "-c"));
    let j = Install {
        offer: o,
        server,
        bind: st.own_addrs.first().copied(),
        key: st.conf.key.clone(),
        vardir: st.conf.vardir.clone(),
        exe: plan.exe.clone(),
        conf: conf.map(std::path::PathBuf::from),
        cmd: st.bound.cmd,
        check: crate::upgrade::come_back(st.work.intervals.upgrade_check),
    };
    Reply::Job(UpgradeTask { token: 0, job: UpgradeJob::Install(Box::new(j)) })
}

/// BINARY: the offered bytes, framed, shared with every other fetch.
pub(super) fn binary(c: &mut super::Call) -> Reply {
    let st = &*c.st;
    if st.server.is_none() {
        return Reply::Now(frame_err("BINARY", "not a server"));
    }
    let framed = st.upgrade.offer.lock().ok().and_then(|s| s.as_ref().map(|o| o.framed.clone()));
    match framed {
        Some(f) => Reply::Shared(f),
        None => Reply::Now(frame_err("BINARY", "no upgrade offered")),
    }
}
