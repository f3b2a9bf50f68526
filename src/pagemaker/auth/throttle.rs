//! The login throttle: failed logins counted per source address, each
//! failure past a few free ones doubling the wait before that source may
//! try again, up to a lock-out; counters for STATE and /metrics. Bounded:
//! at most `cap` sources are tracked, the stalest forgotten first. Pure:
//! `now` comes from the caller. Re-exported by `auth`.
//!
//! IPv6 sources count per /64, since one host usually holds a whole /64
//! and could otherwise try from a fresh address each time.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};

/// Failures from one source before any wait (typos).
pub const FREE_FAILURES: u32 = 3;
/// The first wait, seconds; it doubles with each further failure.
pub const FIRST_DELAY: f64 = 1.0;
/// The longest wait (the lock-out), seconds.
pub const MAX_DELAY: f64 = 300.0;
/// A source's failures are forgotten after this long without one.
pub const FORGET_AFTER: f64 = 900.0;
/// Sources tracked at once.
pub const MAX_SOURCES: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Source {
    failures: u32,
    last: f64,
    /// No attempt from this source before this time.
    until: f64,
}

/// What the throttle has seen, for STATE and /metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ThrottleStats {
    /// Failed logins since start.
    pub failures: u64,
    /// Successful logins since start.
    pub successes: u64,
    /// Attempts refused because their source had to wait.
    pub refused: u64,
    /// Sources tracked now.
    pub sources: usize,
    /// Sources that must wait now.
    pub locked: usize,
}

#[derive(Debug)]
pub struct LoginThrottle {
    sources: HashMap<IpAddr, Source>,
    cap: usize,
    stats: ThrottleStats,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle::new(MAX_SOURCES)
    }
}

/// The address failures are counted under: IPv4 as is, IPv6 by /64.
fn bucket(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The wait after the `n`th consecutive failure.
pub fn delay_after(n: u32) -> f64 {
    if n <= FREE_FAILURES {
        return 0.0;
    }
    let doublings = (n - FREE_FAILURES - 1).min(30);
    (FIRST_DELAY * f64::from(1u32 << doublings)).min(MAX_DELAY)
}

impl LoginThrottle {
    /// Tracks at most `cap` sources (at least 1).
    pub fn new(cap: usize) -> LoginThrottle {
        LoginThrottle { sources: HashMap::new(), cap: cap.max(1), stats: ThrottleStats::default() }
    }

    /// May `ip` try a login now? `Err(seconds)` to wait otherwise (the
    /// refusal is counted; the password is then not even checked).
    pub fn check(&mut self, ip: IpAddr, now: f64) -> Result<(), f64> {
        match self.sources.get(&bucket(ip)) {
            Some(s) if s.until > now => {
                self.stats.refused += 1;
                Err(s.until - now)
            }
            _ => Ok(()),
        }
    }

    /// Records a failed login from `ip`; returns the wait before its next
    /// attempt (0 while within the free failures).
    pub fn failure(&mut self, ip: IpAddr, now: f64) -> f64 {
        self.stats.failures += 1;
        let b = bucket(ip);
        if !self.sources.contains_key(&b) && self.sources.len() >= self.cap {
            self.make_room(now);
        }
        let s = self.sources.entry(b).or_insert(Source { failures: 0, last: now, until: now });
        if now - s.last > FORGET_AFTER {
            s.failures = 0;
        }
        s.failures = s.failures.saturating_add(1);
        s.last = now;
        let wait = delay_after(s.failures);
        s.until = now + wait;
        wait
    }

    /// A successful login clears its source's failures.
    pub fn success(&mut self, ip: IpAddr) {
        self.stats.successes += 1;
        self.sources.remove(&bucket(ip));
    }

    /// Forgets stale sources, then the stalest while still full.
    fn make_room(&mut self, now: f64) {
        self.sources.retain(|_, s| now - s.last <= FORGET_AFTER || s.until > now);
        while self.sources.len() >= self.cap {
            let stalest =
                self.sources.iter().min_by(|a, b| a.1.last.total_cmp(&b.1.last)).map(|(k, _)| *k);
            match stalest {
                Some(k) => self.sources.remove(&k),
                None => break,
            };
        }
    }

    pub fn stats(&self, now: f64) -> ThrottleStats {
        ThrottleStats {
            sources: self.sources.len(),
            locked: self.sources.values().filter(|s| s.until > now).count(),
            ..self.stats
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn free_failures_then_doubling_up_to_the_lockout() {
        let got: Vec<f64> = (1..=16).map(delay_after).collect();
        assert_eq!(&got[..6], &[0.0, 0.0, 0.0, 1.0, 2.0, 4.0]);
        assert_eq!(got[15], MAX_DELAY);
        assert!(got.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(delay_after(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn a_source_waits_after_its_free_failures_and_is_refused_meanwhile() {
        let mut t = LoginThrottle::default();
        let a = ip("127.0.0.5");
        for _ in 0..FREE_FAILURES {
            assert_eq!(t.check(a, 10.0), Ok(()));
            assert_eq!(t.failure(a, 10.0), 0.0);
        }
        assert_eq!(t.failure(a, 10.0), 1.0);
        assert_eq!(t.check(a, 10.5), Err(0.5));
        // Another source is not affected.
        assert_eq!(t.check(ip("127.0.0.6"), 10.5), Ok(()));
        assert_eq!(t.check(a, 11.0), Ok(()));
        assert_eq!(t.failure(a, 11.0), 2.0);
        let s = t.stats(11.5);
        assert_eq!((s.failures, s.refused, s.sources, s.locked), (5, 1, 1, 1));
        t.success(a);
        assert_eq!(t.check(a, 11.5), Ok(()));
        assert_eq!(t.stats(11.5).successes, 1);
        assert_eq!(t.stats(11.5).sources, 0);
    }

    #[test]
    fn failures_are_forgotten_after_a_quiet_while() {
        let mut t = LoginThrottle::default();
        let a = ip("10.1.2.3");
        for _ in 0..FREE_FAILURES + 2 {
            t.failure(a, 0.0);
        }
        assert_eq!(t.failure(a, FORGET_AFTER + 1.0), 0.0);
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let mut t = LoginThrottle::default();
        for i in 0..=FREE_FAILURES {
            t.failure(ip(&format!("2001:db8:1:2::{i:x}")), 0.0);
        }
        assert!(t.check(ip("2001:db8:1:2::ffff"), 0.1).is_err());
        assert!(t.check(ip("2001:db8:1:3::1"), 0.1).is_ok());
        for _ in 0..=FREE_FAILURES {
            t.failure(ip("::ffff:127.0.0.9"), 0.0);
        }
        assert!(t.check(ip("127.0.0.9"), 0.1).is_err());
    }

    #[test]
    fn memory_is_bounded_and_the_stalest_source_goes_first() {
        let mut t = LoginThrottle::new(3);
        for (i, at) in [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0)] {
            t.failure(ip(&format!("127.0.0.{i}")), at);
        }
        assert_eq!(t.stats(4.0).sources, 3);
        for _ in 0..FREE_FAILURES {
            t.failure(ip("127.0.0.2"), 5.0);
        }
        // .2 now has 4 failures (its first survived: .1 was the stalest).
        assert!(t.check(ip("127.0.0.2"), 5.5).is_err());
        for i in 0..1000 {
            t.failure(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), 6.0);
        }
        assert_eq!(t.stats(6.0).sources, 3);
    }
}
