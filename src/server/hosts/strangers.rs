//! Names that are neither in the work nor among the admitted hbd-style
//! senders: the *strangers* (issue 13 item 2). A flood of forged names
//! lands here and costs a fixed amount of memory and a hash lookup each,
//! never a host record, an event, a database row or an ACK.
//!
//! Owns: the bounded table (CLOCK, the usual one-bit approximation of LRU:
//! a hit sets the entry's bit, the hand evicts the first entry whose bit is
//! clear, clearing bits on its way) and a token bucket used to rate-limit
//! "new host" events. Pure: time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;

/// Strangers held at once (older ones are evicted).
pub const MAX_STRANGERS: usize = 1024;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Stranger {
    pub name: String,
    pub addr: IpAddr,
    pub first_wall: f64,
    pub last_wall: f64,
    pub datagrams: u64,
    #[serde(skip)]
    referenced: bool,
}

/// Counters shown in STATE and DUMP.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StrangerStats {
    /// Datagrams from strangers.
    pub datagrams: u64,
    /// Distinct names that entered the table.
    pub names: u64,
    pub evicted: u64,
}

pub struct Strangers {
    cap: usize,
    slots: Vec<Stranger>,
    by_name: HashMap<String, usize>,
    hand: usize,
    pub stats: StrangerStats,
}

impl Strangers {
    pub fn new(cap: usize) -> Strangers {
        Strangers {
            cap: cap.max(1),
            slots: Vec::new(),
            by_name: HashMap::new(),
            hand: 0,
            stats: StrangerStats::default(),
        }
    }

    /// Records a datagram from `name`; evicts the least recently used entry
    /// when the table is full.
    pub fn touch(&mut self, name: &str, addr: IpAddr, wall: f64) {
        self.stats.datagrams += 1;
        if let Some(&i) = self.by_name.get(name) {
            let s = &mut self.slots[i];
            s.referenced = true;
            s.addr = addr;
            s.last_wall = wall;
            s.datagrams += 1;
            return;
        }
        self.stats.names += 1;
        let entry = Stranger {
            name: name.to_string(),
            addr,
            first_wall: wall,
            last_wall: wall,
            datagrams: 1,
            referenced: false,
        };
        if self.slots.len() < self.cap {
            self.by_name.insert(entry.name.clone(), self.slots.len());
            self.slots.push(entry);
            return;
        }
        let i = self.victim();
        self.stats.evicted += 1;
        self.by_name.remove(&self.slots[i].name);
        self.by_name.insert(entry.name.clone(), i);
        self.slots[i] = entry;
    }

    /// The CLOCK hand: the next slot whose reference bit is clear.
    fn victim(&mut self) -> usize {
        loop {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            if !self.slots[i].referenced {
                return i;
            }
            self.slots[i].referenced = false;
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Stranger> {
        self.by_name.get(name).map(|&i| &self.slots[i])
    }

    /// The most recently heard strangers first, at most `n`.
    pub fn recent(&self, n: usize) -> Vec<&Stranger> {
        let mut v: Vec<&Stranger> = self.slots.iter().collect();
        v.sort_by(|a, b| b.last_wall.total_cmp(&a.last_wall));
        v.truncate(n);
        v
    }
}

/// A token bucket: `burst` at once, refilled at `per_sec`.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    burst: f64,
    per_sec: f64,
    at: f64,
    pub refused: u64,
}

impl Bucket {
    pub fn new(burst: f64, per_sec: f64) -> Bucket {
        Bucket { tokens: burst, burst, per_sec, at: f64::NEG_INFINITY, refused: 0 }
    }

    /// Takes a token if there is one (`now`: monotonic seconds).
    pub fn take(&mut self, now: f64) -> bool {
        if self.at.is_finite() {
            self.tokens = (self.tokens + (now - self.at).max(0.0) * self.per_sec).min(self.burst);
        }
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            self.refused += 1;
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([127, 0, 0, n])
    }

    #[test]
    fn bounded_and_least_recently_used_goes_first() {
        let mut s = Strangers::new(3);
        s.touch("a", ip(1), 1.0);
        s.touch("b", ip(1), 2.0);
        s.touch("c", ip(1), 3.0);
        s.touch("a", ip(2), 4.0); // a is used again
        s.touch("d", ip(1), 5.0); // evicts b (a was referenced)
        assert_eq!(s.len(), 3);
        assert!(s.get("b").is_none());
        assert_eq!(s.get("a").map(|x| (x.datagrams, x.addr)), Some((2, ip(2))));
        assert!(s.get("d").is_some());
        for i in 0..10_000 {
            s.touch(&format!("f{i}"), ip(9), 6.0 + i as f64);
        }
        assert_eq!(s.len(), 3);
        assert_eq!(s.stats.names, 10_004);
        assert_eq!(s.stats.evicted, 10_001);
        assert_eq!(s.stats.datagrams, 10_005);
        assert_eq!(s.recent(1)[0].name, "f9999");
    }

    #[test]
    fn bucket_limits_the_rate() {
        let mut b = Bucket::new(3.0, 0.5);
        assert!((0..3).all(|_| b.take(0.0)));
        assert!(!b.take(0.0));
        assert!(!b.take(1.0));
        assert!(b.take(2.0)); // one token per 2 s
        assert!(!b.take(2.5));
        assert!(b.take(100.0) && b.take(100.0) && b.take(100.0) && !b.take(100.0));
        assert_eq!(b.refused, 4);
    }
}
