//! The daemon's table of resolved names: the addresses of the server, the
//! pagemaker and the fleet's hosts, looked up once per
//! work install (and again every `ival_check_work`) by lookup jobs on the
//! worker pool, then installed on the loop through the waker. The loop
//! itself never asks the resolver: access checks, calls and heartbeat
//! targets read [`Names`], which answers IP literals at once and names
//! from the last finished round.
//!
//! A name that fails to resolve keeps its previous address (a resolver
//! hiccup does not drop a known host); one never resolved has none until a
//! later round finds it. Pure apart from [`run`], which blocks in
//! getaddrinfo on a worker thread.

use crate::work::model::Work;
use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Names looked up by one job: a slow name delays only its chunk, and the
/// lookup cap spreads chunks over a few workers.
const CHUNK: usize = 256;
/// Unresolved names listed by name in the log (the rest are counted).
const LOG_NAMES: usize = 10;

/// The installed table; cheap to clone (the parts keep a copy).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    map: Arc<HashMap<String, IpAddr>>,
    /// Names of the last round that have no address.
    pub unresolved: usize,
    /// Wall time the table was installed (0: never).
    pub at: f64,
}

/// `a` as an IP address, with or without `[]`.
pub fn literal(a: &str) -> Option<IpAddr> {
    a.trim().trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().ok()
}

impl Names {
    /// The address of `address`: a literal as it is, a name from the table.
    pub fn ip(&self, address: &str) -> Option<IpAddr> {
        literal(address).or_else(|| self.map.get(&key(address)).copied())
    }

    pub fn sock(&self, address: &str, port: u16) -> Option<SocketAddr> {
        self.ip(address).map(|ip| SocketAddr::new(ip, port))
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Both tables give every name the same address.
    pub fn same_addresses(&self, other: &Names) -> bool {
        Arc::ptr_eq(&self.map, &other.map) || self.map == other.map
    }

    /// A table with no names (the work names none), installed at `wall`.
    pub fn empty_at(wall: f64) -> Names {
        Names { at: wall, ..Names::default() }
    }

    /// `-- names 3 resolved 0 unresolved (lookups pending)`.
    pub fn state_line(&self, out: &mut String, pending: bool) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "-- names {} resolved {} unresolved ({})",
            self.len(),
            self.unresolved,
            if pending { "lookups pending" } else { "lookups done" }
        );
    }
}

/// Names compare without case and without the root's dot.
fn key(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Every name (not literal) the work needs an address for, once each: the
/// server's, the pagemaker's, and on the server every host's. (This host's
/// own `address` is for others; nothing here reads it.)
pub fn wanted(work: &Work) -> Vec<String> {
    let mut v = BTreeSet::new();
    let mut add = |a: &str| {
        if literal(a).is_none() && !a.trim().is_empty() {
            v.insert(key(a));
        }
    };
    add(&work.server.address);
    if let Some(p) = &work.pmaker {
        add(&p.address);
    }
    if let Some(sp) = &work.server_part {
        for h in &sp.hosts {
            add(&h.address);
        }
    }
    v.into_iter().collect()
}

/// One lookup job: some names of round `gen`.
#[derive(Debug)]
pub struct ResolveJob {
    pub gen: u64,
    pub names: Vec<String>,
}

/// Its answers: an address or why there is none, per name.
#[derive(Debug)]
pub struct Resolved {
    pub gen: u64,
    pub answers: Vec<(String, Result<IpAddr, String>)>,
}

impl ResolveJob {
    /// The answers of a job that could not run (the pool refused it).
    pub fn failed(self, why: &str) -> Resolved {
        let answers = self.names.into_iter().map(|n| (n, Err(why.to_string()))).collect();
        Resolved { gen: self.gen, answers }
    }
}

/// Looks the names up (getaddrinfo; blocks: worker threads only).
pub fn run(job: ResolveJob) -> Resolved {
    fault_delay();
    let answers = job
        .names
        .into_iter()
        .map(|n| {
            let r = match (n.as_str(), 0).to_socket_addrs() {
                Ok(mut a) => a.next().map(|a| a.ip()).ok_or_else(|| "no address".to_string()),
                Err(e) => Err(e.to_string()),
            };
            (n, r)
        })
        .collect();
    Resolved { gen: job.gen, answers }
}

/// `HBMON_FAULT=slow_lookup[:SECS]` (debug builds): every lookup job first
/// waits SECS (3) seconds, so a test can show the loop does not wait for names.
fn fault_delay() {
    #[cfg(debug_assertions)]
    if let Some(secs) = std::env::var("HBMON_FAULT").ok().and_then(|v| slow_lookup_secs(&v)) {
        // sleep: the fault itself (a resolver that takes SECS)
        std::thread::sleep(std::time::Duration::from_secs(secs));
    }
}

/// The seconds of a `slow_lookup[:SECS]` fault; None for other faults.
#[cfg(debug_assertions)]
fn slow_lookup_secs(v: &str) -> Option<u64> {
    match v.strip_prefix("slow_lookup")? {
        "" => Some(3),
        rest => rest.strip_prefix(':')?.parse().ok().map(|s: u64| s.min(60)),
    }
}

/// The round of lookups in flight: jobs out, answers in, a table when the
/// last job of the current round answers. A newer round makes the answers
/// of an older one stale (they are dropped).
#[derive(Debug, Default)]
pub struct Round {
    pub gen: u64,
    left: usize,
    answers: Vec<(String, Result<IpAddr, String>)>,
}

impl Round {
    /// Starts round `gen + 1` for `names`: its jobs (none if no names).
    pub fn start(&mut self, names: Vec<String>) -> Vec<ResolveJob> {
        self.gen += 1;
        self.answers.clear();
        let jobs: Vec<ResolveJob> =
            names.chunks(CHUNK).map(|c| ResolveJob { gen: self.gen, names: c.to_vec() }).collect();
        self.left = jobs.len();
        jobs
    }

    pub fn pending(&self) -> bool {
        self.left > 0
    }

    /// Takes a job's answers; when they were the round's last, the new
    /// table (names that failed keep `old`'s address) and the names left
    /// without one.
    pub fn take(&mut self, r: Resolved, old: &Names, wall: f64) -> Option<(Names, Vec<String>)> {
        if r.gen != self.gen || self.left == 0 {
            return None;
        }
        self.answers.extend(r.answers);
        self.left -= 1;
        if self.left > 0 {
            return None;
        }
        let mut map = HashMap::new();
        let mut missing = Vec::new();
        for (name, a) in self.answers.drain(..) {
            match a.ok().or_else(|| old.map.get(&name).copied()) {
                Some(ip) => {
                    map.insert(name, crate::work::addr::canonical_ip(ip));
                }
                None => missing.push(name),
            }
        }
        let t = Names { map: Arc::new(map), unresolved: missing.len(), at: wall };
        Some((t, missing))
    }
}

/// The log line for names left without an address (None: all resolved).
pub fn missing_text(missing: &[String]) -> Option<String> {
    if missing.is_empty() {
        return None;
    }
    let shown: Vec<&str> = missing.iter().take(LOG_NAMES).map(String::as_str).collect();
    let more = missing.len().saturating_sub(LOG_NAMES);
    let tail = if more > 0 { format!(" and {more} more") } else { String::new() };
    Some(format!("no address for {}{tail}", shown.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(gen: u64, name: &str, ip: Option<&str>) -> Resolved {
        let a = match ip {
            Some(i) => Ok(i.parse().unwrap()),
            None => Err("not found".to_string()),
        };
        Resolved { gen, answers: vec![(name.to_string(), a)] }
    }

    #[test]
    fn literals_need_no_table_and_names_do() {
        let n = Names::default();
        assert_eq!(n.sock("127.0.0.2", 5), Some("127.0.0.2:5".parse().unwrap()));
        assert_eq!(n.sock("[::1]", 5), Some("[::1]:5".parse().unwrap()));
        assert_eq!(n.ip("srv.example"), None);
    }

    #[test]
    fn a_round_installs_when_its_last_job_answers() {
        let mut r = Round::default();
        let names: Vec<String> = (0..CHUNK + 1).map(|i| format!("h{i}.example")).collect();
        let jobs = r.start(names);
        assert_eq!(jobs.len(), 2);
        assert!(r.pending());
        let old = Names::default();
        assert!(r.take(answer(1, "h0.example", Some("127.0.0.2")), &old, 1.0).is_none());
        let (t, missing) = r.take(answer(1, "h1.example", None), &old, 2.0).unwrap();
        assert!(!r.pending());
        assert_eq!(t.ip("H0.Example."), Some("127.0.0.2".parse().unwrap()));
        assert_eq!(missing, vec!["h1.example".to_string()]);
        assert_eq!(t.unresolved, 1);
        assert_eq!(t.at, 2.0);
    }

    #[test]
    fn a_failed_lookup_keeps_the_old_address_and_stale_rounds_are_dropped() {
        let mut r = Round::default();
        r.start(vec!["a.example".into()]);
        let (old, _) =
            r.take(answer(1, "a.example", Some("127.0.0.3")), &Names::default(), 1.0).unwrap();
        r.start(vec!["a.example".into()]);
        r.start(vec!["a.example".into()]);
        assert!(r.take(answer(2, "a.example", Some("127.0.0.9")), &old, 2.0).is_none());
        let (t, missing) = r.take(answer(3, "a.example", None), &old, 3.0).unwrap();
        assert!(missing.is_empty());
        assert_eq!(t.ip("a.example"), Some("127.0.0.3".parse().unwrap()));
    }

    #[test]
    fn refused_jobs_answer_every_name_with_the_reason() {
        let j = ResolveJob { gen: 4, names: vec!["x.example".into(), "y.example".into()] };
        let r = j.failed("worker pool full");
        assert_eq!(r.gen, 4);
        assert!(r
            .answers
            .iter()
            .all(|(_, a)| a.as_ref().err().map(String::as_str) == Some("worker pool full")));
    }

    #[test]
    fn missing_names_are_listed_then_counted() {
        assert_eq!(missing_text(&[]), None);
        let m: Vec<String> = (0..12).map(|i| format!("n{i}")).collect();
        let t = missing_text(&m).unwrap();
        assert!(t.starts_with("no address for n0, n1"), "{t}");
        assert!(t.ends_with(" and 2 more"), "{t}");
    }

    #[test]
    fn the_work_wants_its_names_once_and_no_literals() {
        let mut w = crate::work::solo("me.example").unwrap();
        w.pmaker = None;
        for h in w.server_part.iter_mut().flat_map(|p| p.hosts.iter_mut()) {
            h.address = "ME.example".into();
        }
        w.address = "Me.Example".into();
        w.server.address = "me.example.".into();
        assert_eq!(wanted(&w), vec!["me.example".to_string()]);
        w.address = "127.0.0.5".into();
        w.server.address = "[::1]".into();
        for h in w.server_part.iter_mut().flat_map(|p| p.hosts.iter_mut()) {
            h.address = "127.0.0.5".into();
        }
        assert!(wanted(&w).is_empty());
    }
}
