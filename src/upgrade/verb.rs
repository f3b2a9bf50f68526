//! The UPGRADE and BINARY verbs: checks and arguments on the loop thread
//! (nothing blocking), the work itself handed to a helper thread as an
//! `UpgradeTask`, whose `UpgradeDone` answers the waiting session.
//!
//! - `UPGRADE [-f] [--canary N] [host...]`: the server, from localhost only.
//! - `UPGRADE OFFER ...`: a client, from its server only.
//! - `UPGRADE STATUS`: the last outcome on this host.
//! - `BINARY`: the server streams the offered bytes while a rollout runs.

use super::install::Install;
use super::{OfferLine, Rollout};
use crate::command::{frame_err, frame_ok, Request};
use crate::state::State;
use crate::verbs::Reply;
use std::net::IpAddr;

pub enum UpgradeJob {
    Rollout(Rollout),
    Install(Box<Install>),
}

/// A job and the session (token) waiting for its answer.
pub struct UpgradeTask {
    pub token: usize,
    pub job: UpgradeJob,
}

pub struct UpgradeDone {
    pub token: usize,
    pub answer: Result<String, String>,
    /// Answer, then re-exec (the swap is done).
    pub reexec: bool,
    /// This host's new last outcome (installs).
    pub last: Option<String>,
}

/// Most clients named in one UPGRADE (the canary count is bounded by it).
const MAX_NAMED: usize = 10_000;

pub fn run(t: UpgradeTask) -> UpgradeDone {
    let (answer, reexec) = match t.job {
        UpgradeJob::Rollout(r) => {
            return UpgradeDone {
                token: t.token,
                answer: Ok(super::rollout(r)),
                reexec: false,
                last: None,
            }
        }
        UpgradeJob::Install(j) => {
            let res = super::install::install(&j).map_err(|e| format!("refused: {e}"));
            if let Err(e) = &res {
                log::error!("upgrade to {}: {e}", j.offer.version);
                let _ = super::watch::write_state(&j.vardir, &super::watch::State::Done(e.clone()));
            }
            // A refusal is an answer, not a command error: the server lists it.
            let reexec = res.is_ok();
            (Ok(res.unwrap_or_else(|e| e)), reexec)
        }
    };
    let last = answer.clone().ok();
    UpgradeDone { token: t.token, answer, reexec, last }
}

fn err(why: &str) -> Reply {
    Reply::Now(frame_err("UPGRADE", why))
}

pub fn upgrade(st: &mut State, req: &Request, peer: IpAddr, local: bool) -> Reply {
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
    let r = Rollout {
        bin: super::offered_path(None, &st.conf.bindir, running),
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
    if crate::state::canonical_ip(peer) != crate::state::canonical_ip(server.ip()) {
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
    };
    Reply::Job(UpgradeTask { token: 0, job: UpgradeJob::Install(Box::new(j)) })
}

/// BINARY: the offered bytes, framed, shared with every other fetch.
pub fn binary(st: &State) -> Reply {
    if st.server.is_none() {
        return Reply::Now(frame_err("BINARY", "not a server"));
    }
    let framed = st.upgrade.offer.lock().ok().and_then(|s| s.as_ref().map(|o| o.framed.clone()));
    match framed {
        Some(f) => Reply::Shared(f),
        None => Reply::Now(frame_err("BINARY", "no upgrade offered")),
    }
}
