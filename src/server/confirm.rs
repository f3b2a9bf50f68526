//! Confirmation before down (issue 15, SWIM-style), for `detector tuned`:
//! when the table suspects a host (its tuned phi passed `TUNED_SUSPECT`),
//! the down change is held, the server PINGs the host's command port and
//! asks up to [`PEERS`] up peers `PROBE <host> <addr>`; all are calls the
//! loop drives as non-blocking connections, with one deadline.
//!
//! Verdicts: the host answers the server: `up` again, no event, counted as
//! an answered probe (its heartbeats are being lost); only peers reach it:
//! `unreachable` (a path problem); nobody, or no peer to ask and no answer:
//! `down`, and the message says who tried. A heartbeat arriving meanwhile
//! cancels the hold: the host never alerts.

use super::Server;
use crate::clock::Now;
use crate::effects::{Ask, ServerCall};
use crate::effects::{CallOwner, Effects};
use crate::server::detector::{Kind, Reach};
use crate::server::hosts::{ChangeKind, HostChange};
use std::collections::HashMap;

/// Peers asked to probe a suspected host.
pub const PEERS: usize = 3;

#[derive(Debug, Default)]
pub struct Confirmations {
    pending: HashMap<String, Held>,
    next_id: u64,
    /// The isolation guard's state (`isolate.rs`).
    pub(super) guard: super::isolate::Guard,
    /// Who may probe whom, from the work (`peers.rs`).
    peers: super::peers::PeerIndex,
}

#[derive(Debug)]
struct Held {
    id: u64,
    change: HostChange,
    direct: Option<bool>,
    peers: Vec<(String, Option<bool>)>,
}

impl Server {
    /// Holds the down changes that need confirming and starts their probes;
    /// drops a held host's way back up (it was never told down).
    pub(super) fn hold_for_confirmation(
        &mut self,
        changes: Vec<HostChange>,
        now: Now,
        fx: &mut Effects,
    ) -> Vec<HostChange> {
        if Kind::from_intervals(&self.work.intervals) != Kind::Tuned {
            return changes;
        }
        let mut out = Vec::with_capacity(changes.len());
        for c in changes {
            match c.kind {
                ChangeKind::Heartbeat { new: Reach::Down, .. } => {
                    self.note_down(now, fx);
                    if !self.start_confirm(&c, now, fx) {
                        self.emit_or_hold(c, &mut out);
                    }
                }
                ChangeKind::Heartbeat { old: Reach::Down, .. } if self.release_held(&c.host) => {
                    log::info!("{}: back within the isolation hold: never told down", c.host);
                }
                ChangeKind::Heartbeat { old: Reach::Down, .. }
                    if self.confirm.pending.remove(&c.host).is_some() =>
                {
                    log::info!("{}: heartbeat again while being confirmed: not down", c.host);
                }
                _ => out.push(c),
            }
        }
        out
    }

    /// Starts the probes of a suspected host; false when it has no command
    /// address (the plain rule applies).
    fn start_confirm(&mut self, c: &HostChange, now: Now, fx: &mut Effects) -> bool {
        let Some(target) = self.hosts.get(&c.host).and_then(|h| h.cmd) else { return false };
        let interval = self.table.host(&c.host).map(|h| h.interval).unwrap_or(1.0);
        // At most one interval added to a real death's detection.
        let timeout = interval.clamp(1.0, 5.0);
        self.confirm.next_id += 1;
        let id = self.confirm.next_id;
        let ask = |by: Option<String>| {
            CallOwner::Server(ServerCall::Confirm(Ask { id, host: c.host.clone(), by }))
        };
        fx.call(ask(None), target, "PING".into(), timeout);
        let peers = self.pick_peers(&c.host);
        for (name, addr) in &peers {
            fx.call(ask(Some(name.clone())), *addr, format!("PROBE {} {target}", c.host), timeout);
        }
        let peers = peers.into_iter().map(|(n, _)| (n, None)).collect();
        let held = Held { id, change: c.clone(), direct: None, peers };
        self.confirm.pending.insert(c.host.clone(), held);
        log::info!("{}: suspected at {:.1}: confirming", c.host, now.wall);
        true
    }

    /// Up to [`PEERS`] up hosts with a command address to probe `host`
    /// (the rules and their cost: `peers.rs`).
    fn pick_peers(&self, host: &str) -> Vec<(String, std::net::SocketAddr)> {
        let groups = self.hosts.get(host).map_or(&[][..], |h| h.groups.as_slice());
        let up = |n: &str| self.table.host(n).is_some_and(|h| h.state == Reach::Up);
        self.confirm.peers.pick(host, groups, up, PEERS)
    }

    /// A new work's hosts: the index peers are picked from.
    pub(super) fn index_peers(&mut self) {
        let none = std::collections::BTreeMap::new();
        let parents = self.work.server_part.as_ref().map_or(&none, |sp| &sp.parents);
        let members = self.hosts.iter().map(|(n, h)| super::peers::Member {
            name: n,
            cmd: h.cmd,
            groups: &h.groups,
        });
        self.confirm.peers = super::peers::PeerIndex::new(members, &self.host, parents);
    }

    /// A probe's answer; decides as soon as the verdict is sure.
    pub(super) fn on_confirm(
        &mut self,
        a: Ask,
        r: crate::session::CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        let Some(h) = self.confirm.pending.get_mut(&a.host).filter(|h| h.id == a.id) else {
            return;
        };
        log::debug!("{}: probe by {:?}: {r:?}", a.host, a.by);
        // Any answer shows the host's daemon alive, even a refusal: a
        // client lets only its server in, so a peer's PING is refused at
        // accept ("access denied", or the connection closes under the PING).
        // A TCP connection made is the host reached; "connect: ..." or a
        // timeout is not. A peer says "-- HOST unreachable: WHY" when its
        // call failed.
        let reached = match (&a.by, r.map(|t| crate::command::parse_answer(&t))) {
            (None, Ok(_)) => true,
            (None, Err(e)) => connected(&e),
            (Some(_), Ok(Ok(body))) => {
                let none = format!("-- {} unreachable: ", a.host);
                !body.trim().is_empty()
                    && !body.lines().any(|l| l.strip_prefix(&none).is_some_and(|w| !connected(w)))
            }
            _ => false,
        };
        match &a.by {
            None => h.direct = Some(reached),
            Some(p) => {
                if let Some(slot) = h.peers.iter_mut().find(|(n, _)| n == p) {
                    slot.1 = Some(reached);
                }
            }
        }
        let peer_reached = h.peers.iter().any(|(_, r)| *r == Some(true));
        let all_done = h.direct.is_some() && h.peers.iter().all(|(_, r)| r.is_some());
        let verdict = match h.direct {
            Some(true) => Reach::Up,
            Some(false) if peer_reached => Reach::Unreachable,
            _ if all_done => Reach::Down,
            _ => return,
        };
        let Some(h) = self.confirm.pending.remove(&a.host) else { return };
        let mut path = Vec::new();
        let old = self.table.set_verdict(&a.host, verdict, now, &mut path);
        self.emit_changes(path, now, fx);
        if old != Some(Reach::Down) {
            return;
        }
        let mut tried = vec!["the server".to_string()];
        tried.extend(h.peers.iter().map(|(n, _)| n.clone()));
        let mut c = h.change;
        match verdict {
            Reach::Up => {
                log::warn!("{}: silent but answers the server: heartbeats lost, up", a.host);
                self.arm_check(now, fx);
                return;
            }
            Reach::Unreachable => {
                let by: Vec<&str> = h
                    .peers
                    .iter()
                    .filter(|(_, r)| *r == Some(true))
                    .map(|(n, _)| n.as_str())
                    .collect();
                if let ChangeKind::Heartbeat { new, .. } = &mut c.kind {
                    *new = Reach::Unreachable;
                }
                c.message = format!(
                    "{}; the server cannot reach it, {} can: unreachable",
                    c.message,
                    by.join(", ")
                );
            }
            _ => {
                c.message = format!(
                    "{}; confirmed down, probed by {} (no answer)",
                    c.message,
                    tried.join(", ")
                );
            }
        }
        c.time = now.wall;
        let mut out = Vec::new();
        self.emit_or_hold(c, &mut out);
        self.emit_changes(out, now, fx);
    }
}

/// Did a failed call get as far as a TCP connection?
fn connected(why: &str) -> bool {
    !(why.starts_with("connect") || why.starts_with("timeout") || why == "lost")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_connection_made_is_the_host_reached() {
        for (why, yes) in [
            ("connect: Connection refused (os error 111)", false),
            ("timeout", false),
            ("peer closed while sending", true),
            ("send: Connection reset by peer (os error 104)", true),
            ("receive: Connection reset by peer (os error 104)", true),
        ] {
            assert_eq!(super::connected(why), yes, "{why}");
        }
    }
}
