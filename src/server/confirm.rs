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
    /// (see [`pick_peers`]).
    fn pick_peers(&self, host: &str) -> Vec<(String, std::net::SocketAddr)> {
        let all: Vec<Candidate> = self
            .hosts
            .iter()
            .filter(|(n, _)| n.as_str() != host && n.as_str() != self.host)
            .filter(|(n, _)| self.table.host(n).is_some_and(|h| h.state == Reach::Up))
            .filter_map(|(n, h)| h.cmd.map(|a| Candidate { name: n, addr: a, groups: &h.groups }))
            .collect();
        let empty = Vec::new();
        let groups = self.hosts.get(host).map(|h| &h.groups).unwrap_or(&empty);
        let none = std::collections::BTreeMap::new();
        let parents = self.work.server_part.as_ref().map(|sp| &sp.parents).unwrap_or(&none);
        pick_peers(host, groups, parents, &all, PEERS)
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

/// A host that may probe a suspect: up, with a command address.
pub struct Candidate<'a> {
    pub name: &'a str,
    pub addr: std::net::SocketAddr,
    pub groups: &'a [String],
}

/// `k` peers to probe `suspect`: first those on its side of the network
/// (its parent, its children, hosts with the same parent), then those
/// sharing one of its groups other than `all`, then the rest, spread over
/// the fleet (evenly spaced from a point that depends on the suspect, so two
/// suspects do not always load the same peers, and the same suspect gets
/// the same ones each time). `candidates` are in a fixed order (by name);
/// `parents` maps a child to its parent (the work's `parent` lines).
pub fn pick_peers(
    suspect: &str,
    groups: &[String],
    parents: &std::collections::BTreeMap<String, String>,
    candidates: &[Candidate],
    k: usize,
) -> Vec<(String, std::net::SocketAddr)> {
    let parent_of = |n: &str| parents.get(n).map(String::as_str);
    let my_parent = parent_of(suspect);
    let tier = |c: &Candidate| {
        let theirs = parent_of(c.name);
        let near = my_parent == Some(c.name)
            || theirs == Some(suspect)
            || (my_parent.is_some() && theirs == my_parent);
        let grouped = c.groups.iter().any(|g| g != "all" && groups.contains(g));
        if near {
            0
        } else if grouped {
            1
        } else {
            2
        }
    };
    let start = suspect.bytes().fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
    let mut out = Vec::with_capacity(k);
    for t in 0..3 {
        let these: Vec<&Candidate> = candidates.iter().filter(|c| tier(c) == t).collect();
        let need = k.saturating_sub(out.len()).min(these.len());
        for i in 0..need {
            // Evenly spaced: `need` of `these` from a suspect-dependent start.
            let j = (start + i * these.len() / need) % these.len();
            out.push((these[j].name.to_string(), these[j].addr));
        }
    }
    out
}

/// Did a failed call get as far as a TCP connection?
fn connected(why: &str) -> bool {
    !(why.starts_with("connect") || why.starts_with("timeout") || why == "lost")
}

#[cfg(test)]
mod tests {
    use super::{pick_peers, Candidate};
    use std::collections::BTreeMap;

    fn fleet(n: usize) -> (Vec<String>, Vec<Vec<String>>) {
        let names = (0..n).map(|i| format!("h{i:02}")).collect();
        let groups = (0..n)
            .map(|i| vec!["all".to_string(), if i < 4 { "web".into() } else { "db".into() }])
            .collect();
        (names, groups)
    }

    fn cands<'a>(names: &'a [String], groups: &'a [Vec<String>]) -> Vec<Candidate<'a>> {
        names
            .iter()
            .zip(groups)
            .enumerate()
            .map(|(i, (n, g))| Candidate {
                name: n,
                addr: format!("127.0.0.{}:1", i + 1).parse().unwrap(),
                groups: g,
            })
            .collect()
    }

    fn names(v: &[(String, std::net::SocketAddr)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn peers_of_the_same_group_first_then_spread() {
        let (n, g) = fleet(20);
        let all = cands(&n, &g);
        let none = BTreeMap::new();
        // h00 suspected (not a candidate): web is h01..h03, all three taken.
        let c: Vec<Candidate> = cands(&n, &g).into_iter().skip(1).collect();
        let web = vec!["all".to_string(), "web".to_string()];
        let p = pick_peers("h00", &web, &none, &c, 3);
        let mut p = names(&p);
        p.sort();
        assert_eq!(p, ["h01", "h02", "h03"]);
        // k = 5: the three of web, then two others, not neighbours in the list.
        let p = pick_peers("h00", &web, &none, &c, 5);
        assert_eq!(p.len(), 5);
        assert!(names(&p[..3]).iter().all(|n| ["h01", "h02", "h03"].contains(n)), "{p:?}");
        let rest: Vec<usize> = p[3..].iter().map(|(n, _)| n[1..].parse().unwrap()).collect();
        assert!(rest.iter().all(|&i| i >= 4) && rest[0].abs_diff(rest[1]) >= 5, "{rest:?}");
        // A group of its own: spread over the whole fleet, distinct, stable.
        let lone = vec!["all".to_string(), "lone".to_string()];
        let p = pick_peers("x", &lone, &none, &all, 3);
        let mut idx: Vec<usize> = p.iter().map(|(n, _)| n[1..].parse().unwrap()).collect();
        idx.sort();
        idx.dedup();
        assert_eq!(idx.len(), 3, "{p:?}");
        assert!(idx.windows(2).all(|w| w[1] - w[0] >= 5), "spread: {idx:?}");
        assert_eq!(p, pick_peers("x", &lone, &none, &all, 3), "the same peers each time");
        assert_ne!(names(&p), names(&pick_peers("y", &lone, &none, &all, 3)));
        // Fewer candidates than k: all of them; none: none.
        assert_eq!(pick_peers("x", &lone, &none, &all[..2], 3).len(), 2);
        assert!(pick_peers("x", &lone, &none, &[], 3).is_empty());
    }

    #[test]
    fn the_parent_and_siblings_come_before_the_group() {
        let (n, g) = fleet(12);
        let c = cands(&n, &g);
        // h10 and h11 hang off h09 (a gateway); h10 is in db like h04..h09.
        let parents: BTreeMap<String, String> =
            [("h10", "h09"), ("h11", "h09")].map(|(a, b)| (a.to_string(), b.to_string())).into();
        let db = vec!["all".to_string(), "db".to_string()];
        let others: Vec<Candidate> = c.into_iter().filter(|c| c.name != "h10").collect();
        let p = pick_peers("h10", &db, &parents, &others, 3);
        let got = names(&p);
        assert!(got[..2].contains(&"h09") && got[..2].contains(&"h11"), "{got:?}");
        assert!(["h04", "h05", "h06", "h07", "h08"].contains(&got[2]), "{got:?}");
        // The gateway suspected: its children are its nearest peers.
        let c = cands(&n, &g);
        let others: Vec<Candidate> = c.into_iter().filter(|c| c.name != "h09").collect();
        let got = pick_peers("h09", &db, &parents, &others, 2);
        let mut got = names(&got);
        got.sort();
        assert_eq!(got, ["h10", "h11"]);
    }

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
