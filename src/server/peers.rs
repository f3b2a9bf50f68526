//! Which peers probe a suspected host (`confirm.rs`): the rules of issue 15
//! at a cost that does not grow with the fleet (issue 18). The index of the
//! hosts that may probe (work hosts with a command address, the server
//! itself left out), their groups and their `parent` lines is built once
//! per work install (`Server::index_hosts`); a pick reads it and asks the
//! host table whether a candidate is up, at most [`WALK`] candidates a
//! peer, so a mass outage of 10,000 suspects is 10,000 small picks, not
//! 10,000 scans of the fleet.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// Candidates looked at, at most, to find one peer: past them the pick
/// gives up on that peer. Only a fleet mostly down (more than `WALK` hosts
/// in a row of the spread are not up) gets fewer peers than asked; the
/// isolation guard (`isolate.rs`) is what judges a fleet gone silent.
pub const WALK: usize = 64;

/// The hosts that may probe a suspect, in name order.
#[derive(Debug, Default)]
pub struct PeerIndex {
    names: Vec<String>,
    addrs: Vec<SocketAddr>,
    pos: HashMap<String, u32>,
    /// A group other than `all` -> its members' positions, in name order.
    groups: HashMap<String, Vec<u32>>,
    /// A parent (any host of the work) -> its children's positions.
    children: HashMap<String, Vec<u32>>,
    /// A child -> its parent (the work's `parent` lines).
    parent: HashMap<String, String>,
}

/// A host of the work, as the index takes it.
pub struct Member<'a> {
    pub name: &'a str,
    pub cmd: Option<SocketAddr>,
    pub groups: &'a [String],
}

/// One list of candidate positions of a tier: some, or all of them.
#[derive(Clone, Copy)]
enum Src<'a> {
    Some(&'a [u32]),
    All(usize),
}

impl Src<'_> {
    fn len(&self) -> usize {
        match self {
            Src::Some(s) => s.len(),
            Src::All(n) => *n,
        }
    }
    fn at(&self, i: usize) -> u32 {
        match self {
            Src::Some(s) => s[i],
            Src::All(_) => i as u32,
        }
    }
}

impl PeerIndex {
    /// `members` in name order (the work's hosts); `server` is never a
    /// candidate; `parents` maps a child to its parent.
    pub fn new<'a>(
        members: impl Iterator<Item = Member<'a>>,
        server: &str,
        parents: &BTreeMap<String, String>,
    ) -> PeerIndex {
        let mut ix = PeerIndex::default();
        for m in members.filter(|m| m.name != server) {
            let Some(addr) = m.cmd else { continue };
            let p = ix.names.len() as u32;
            ix.names.push(m.name.to_string());
            ix.addrs.push(addr);
            ix.pos.insert(m.name.to_string(), p);
            for g in m.groups.iter().filter(|g| g.as_str() != "all") {
                ix.groups.entry(g.clone()).or_default().push(p);
            }
        }
        for (child, parent) in parents {
            if let Some(&p) = ix.pos.get(child) {
                ix.children.entry(parent.clone()).or_default().push(p);
            }
            ix.parent.insert(child.clone(), parent.clone());
        }
        ix
    }

    /// How many hosts may probe.
    fn len(&self) -> usize {
        self.names.len()
    }

    /// Up to `k` peers to probe `suspect` (in `groups`), among those
    /// `is_up` says are up: first those on its side of the network (its
    /// parent, its children, hosts with the same parent), then those
    /// sharing one of its groups other than `all`, then the rest, spread
    /// over the fleet (evenly spaced from a point that depends on the
    /// suspect, so two suspects do not always load the same peers, and the
    /// same suspect gets the same ones each time).
    pub fn pick(
        &self,
        suspect: &str,
        groups: &[String],
        is_up: impl Fn(&str) -> bool,
        k: usize,
    ) -> Vec<(String, SocketAddr)> {
        let empty: &[u32] = &[];
        fn list<'a>(m: &'a HashMap<String, Vec<u32>>, key: Option<&str>) -> Src<'a> {
            Src::Some(key.and_then(|k| m.get(k)).map_or(&[], Vec::as_slice))
        }
        let my_parent = self.parent.get(suspect).map(String::as_str);
        let parent_pos = my_parent.and_then(|p| self.pos.get(p)).map(std::slice::from_ref);
        let near = [
            Src::Some(parent_pos.unwrap_or(empty)),
            list(&self.children, Some(suspect)),
            list(&self.children, my_parent),
        ];
        let grouped: Vec<Src> = groups
            .iter()
            .filter(|g| g.as_str() != "all")
            .map(|g| list(&self.groups, Some(g)))
            .collect();
        let start =
            suspect.bytes().fold(0usize, |a, b| a.wrapping_mul(31).wrapping_add(b as usize));
        let mut out: Vec<u32> = Vec::with_capacity(k);
        let ok = |p: u32, out: &[u32]| {
            let name = self.names[p as usize].as_str();
            name != suspect && !out.contains(&p) && is_up(name)
        };
        for tier in [&near[..], &grouped, &[Src::All(self.len())]] {
            let total: usize = tier.iter().map(Src::len).sum();
            let need = k.saturating_sub(out.len());
            for i in 0..need.min(total) {
                // Evenly spaced over the tier from a suspect-dependent
                // start, then the first candidate that may probe.
                let from = start.wrapping_add(i * total / need) % total;
                let found = (0..WALK.min(total))
                    .filter_map(|s| nth(tier, (from + s) % total))
                    .find(|&p| ok(p, &out));
                out.extend(found);
            }
        }
        out.into_iter().map(|p| (self.names[p as usize].clone(), self.addrs[p as usize])).collect()
    }
}

/// The `i`th position of a tier's lists laid end to end.
fn nth(tier: &[Src], mut i: usize) -> Option<u32> {
    for s in tier {
        if i < s.len() {
            return Some(s.at(i));
        }
        i -= s.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{Member, PeerIndex, WALK};
    use std::cell::Cell;
    use std::collections::{BTreeMap, HashSet};

    /// `n` hosts h00.. with addresses; h00..h03 in web, the rest in db.
    fn fleet(n: usize) -> (Vec<String>, Vec<Vec<String>>) {
        let names = (0..n).map(|i| format!("h{i:02}")).collect();
        let groups = (0..n)
            .map(|i| vec!["all".to_string(), if i < 4 { "web".into() } else { "db".into() }])
            .collect();
        (names, groups)
    }

    fn index(
        names: &[String],
        groups: &[Vec<String>],
        parents: &BTreeMap<String, String>,
    ) -> PeerIndex {
        let members = names.iter().zip(groups).enumerate().map(|(i, (n, g))| Member {
            name: n,
            cmd: Some(format!("127.0.{}.{}:1", i / 250, i % 250 + 1).parse().unwrap()),
            groups: g,
        });
        PeerIndex::new(members, "srv", parents)
    }

    fn names(v: &[(String, std::net::SocketAddr)]) -> Vec<&str> {
        v.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn idx(v: &[(String, std::net::SocketAddr)]) -> Vec<usize> {
        v.iter().map(|(n, _)| n[1..].parse().unwrap()).collect()
    }

    #[test]
    fn peers_of_the_same_group_first_then_spread() {
        let (n, g) = fleet(20);
        let none = BTreeMap::new();
        let ix = index(&n, &g, &none);
        let up = |_: &str| true;
        // h00 suspected (never its own peer): web is h01..h03, all three taken.
        let web = vec!["all".to_string(), "web".to_string()];
        let mut p =
            names(&ix.pick("h00", &web, up, 3)).iter().map(|s| s.to_string()).collect::<Vec<_>>();
        p.sort();
        assert_eq!(p, ["h01", "h02", "h03"]);
        // k = 5: the three of web, then two others, not neighbours in the list.
        let p = ix.pick("h00", &web, up, 5);
        assert_eq!(p.len(), 5);
        assert!(names(&p[..3]).iter().all(|n| ["h01", "h02", "h03"].contains(n)), "{p:?}");
        let rest = idx(&p[3..]);
        assert!(rest.iter().all(|&i| i >= 4) && rest[0].abs_diff(rest[1]) >= 5, "{rest:?}");
        // A group of its own: spread over the whole fleet, distinct, stable.
        let lone = vec!["all".to_string(), "lone".to_string()];
        let p = ix.pick("x", &lone, up, 3);
        let mut i = idx(&p);
        i.sort();
        i.dedup();
        assert_eq!(i.len(), 3, "{p:?}");
        assert!(i.windows(2).all(|w| w[1] - w[0] >= 5), "spread: {i:?}");
        assert_eq!(p, ix.pick("x", &lone, up, 3), "the same peers each time");
        assert_ne!(names(&p), names(&ix.pick("y", &lone, up, 3)));
        // Fewer candidates than k: all of them; none: none.
        let small = index(&n[..2], &g[..2], &none);
        assert_eq!(small.pick("x", &lone, up, 3).len(), 2);
        assert!(index(&[], &[], &none).pick("x", &lone, up, 3).is_empty());
        // The server and hosts without a command address never probe.
        let members = [("srv", true), ("a", false), ("b", true)].map(|(name, cmd)| Member {
            name,
            cmd: cmd.then(|| "127.0.0.9:1".parse().unwrap()),
            groups: &[],
        });
        let ix = PeerIndex::new(members.into_iter(), "srv", &none);
        assert_eq!(names(&ix.pick("x", &lone, up, 3)), ["b"]);
    }

    #[test]
    fn the_parent_and_siblings_come_before_the_group() {
        let (n, g) = fleet(12);
        // h10 and h11 hang off h09 (a gateway); h10 is in db like h04..h09.
        let parents: BTreeMap<String, String> =
            [("h10", "h09"), ("h11", "h09")].map(|(a, b)| (a.to_string(), b.to_string())).into();
        let ix = index(&n, &g, &parents);
        let db = vec!["all".to_string(), "db".to_string()];
        let p = ix.pick("h10", &db, |_| true, 3);
        let got = names(&p);
        assert!(got[..2].contains(&"h09") && got[..2].contains(&"h11"), "{got:?}");
        assert!(["h04", "h05", "h06", "h07", "h08"].contains(&got[2]), "{got:?}");
        // The gateway suspected: its children are its nearest peers.
        let mut got = names(&ix.pick("h09", &db, |_| true, 2))
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>();
        got.sort();
        assert_eq!(got, ["h10", "h11"]);
        // A sibling down: the other near ones, then the group.
        let p = ix.pick("h10", &db, |n| n != "h11", 3);
        assert_eq!(names(&p)[0], "h09", "{p:?}");
        assert!(!names(&p).contains(&"h11"), "{p:?}");
    }

    /// Only up hosts probe, and a pick looks at a bounded number of
    /// candidates however large the fleet and however much of it is down.
    #[test]
    fn a_pick_costs_the_same_in_a_fleet_mostly_down() {
        let n: Vec<String> = (0..10_000).map(|i| format!("h{i:05}")).collect();
        let g: Vec<Vec<String>> = (0..10_000).map(|_| vec!["all".into(), "big".into()]).collect();
        let ix = index(&n, &g, &BTreeMap::new());
        let big = vec!["all".to_string(), "big".to_string()];
        // One host in 50 up: every pick still finds its three, all up.
        let asked = Cell::new(0usize);
        let up = |h: &str| {
            asked.set(asked.get() + 1);
            h[1..].parse::<usize>().unwrap() % 50 == 0
        };
        let mut seen = HashSet::new();
        for s in (1..10_000).step_by(97) {
            let p = ix.pick(&n[s], &big, up, 3);
            assert_eq!(p.len(), 3, "{p:?}");
            assert!(idx(&p).iter().all(|i| i % 50 == 0), "{p:?}");
            seen.extend(idx(&p));
        }
        assert!(seen.len() > 30, "peers spread over the fleet: {}", seen.len());
        // The whole fleet down: nobody, after at most WALK looks a peer a tier.
        asked.set(0);
        assert!(ix
            .pick(
                "h00007",
                &big,
                |_| {
                    asked.set(asked.get() + 1);
                    false
                },
                3
            )
            .is_empty());
        assert!(asked.get() <= 2 * 3 * WALK, "{} candidates looked at", asked.get());
    }
}
