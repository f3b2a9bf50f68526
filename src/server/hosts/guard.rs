//! What a signed datagram must also pass (issue 13 items 4 and 5): replay
//! detection by boot identity and sequence number, and the rate limit of
//! the `clock_off` ACKs answered to a sender whose clock is off. Pure:
//! values and time in, decisions out.

use super::strangers::Bucket;
use std::collections::HashMap;
use std::net::IpAddr;

/// Earlier boot identities remembered per host: a datagram of one of them
/// is a replay of an older boot.
const OLD_BOOTS: usize = 4;

/// One host's replay state: the boot identity (`bid` of its HTBs) and the
/// last accepted `seq` and `ts` within it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BootSeq {
    bid: Option<i64>,
    old: Vec<i64>,
    seq: Option<i64>,
    ts: Option<f64>,
}

impl BootSeq {
    /// Accepts (and remembers) a heartbeat, or says it is a replay:
    /// - same boot (`bid`) and a `seq` not above the last: replay;
    /// - the `bid` of an earlier boot: replay;
    /// - a new `bid`: a new boot, accepted.
    ///
    /// Senders without `bid` (hbd-style) are judged by `seq` and `ts`
    /// together: a restart sends a low `seq` but a newer `ts`, a replay
    /// repeats both.
    pub fn accept(&mut self, bid: Option<i64>, seq: Option<i64>, ts: Option<f64>) -> bool {
        let older_seq = matches!((seq, self.seq), (Some(s), Some(last)) if s <= last);
        let older_ts = matches!((ts, self.ts), (Some(t), Some(last)) if t <= last) || ts.is_none();
        let replay = match bid {
            Some(b) if self.bid == Some(b) => older_seq,
            Some(b) => self.old.contains(&b),
            None => older_seq && older_ts,
        };
        if replay {
            return false;
        }
        if let (Some(b), Some(cur)) = (bid, self.bid) {
            if b != cur {
                if self.old.len() == OLD_BOOTS {
                    self.old.remove(0);
                }
                self.old.push(cur);
            }
        }
        self.bid = bid.or(self.bid);
        self.seq = seq.or(self.seq);
        self.ts = ts.or(self.ts);
        true
    }
}

/// Seconds between two `clock_off` ACKs to one source.
pub const CLOCK_ACK_EVERY: f64 = 5.0;
/// Sources whose last `clock_off` ACK time is remembered.
const CLOCK_SOURCES: usize = 4096;

/// Rate limit of `clock_off` ACKs: one per source per [`CLOCK_ACK_EVERY`],
/// and at most 20 a second in all (a replayed stale datagram with a forged
/// source must not turn the server into a reflector).
pub struct ClockAcks {
    last: HashMap<IpAddr, f64>,
    all: Bucket,
    pub sent: u64,
}

impl Default for ClockAcks {
    fn default() -> Self {
        ClockAcks { last: HashMap::new(), all: Bucket::new(20.0, 20.0), sent: 0 }
    }
}

impl ClockAcks {
    /// May a `clock_off` ACK go to `ip` now (`now`: monotonic seconds)?
    pub fn allow(&mut self, ip: IpAddr, now: f64) -> bool {
        if self.last.get(&ip).is_some_and(|t| now - t < CLOCK_ACK_EVERY) {
            return false;
        }
        if !self.all.take(now) {
            return false;
        }
        if self.last.len() >= CLOCK_SOURCES {
            self.last.retain(|_, t| now - *t < CLOCK_ACK_EVERY);
            if self.last.len() >= CLOCK_SOURCES {
                return false;
            }
        }
        self.last.insert(ip, now);
        self.sent += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_boot_repeats_and_older_seqs_are_replays() {
        let mut b = BootSeq::default();
        assert!(b.accept(Some(7), Some(1), Some(100.0)));
        assert!(!b.accept(Some(7), Some(1), Some(100.0)), "the same datagram again");
        assert!(b.accept(Some(7), Some(2), Some(110.0)));
        assert!(!b.accept(Some(7), Some(1), Some(100.0)), "an older one");
        // A restart: a new boot identity starts again at 1.
        assert!(b.accept(Some(9), Some(1), Some(120.0)));
        assert!(!b.accept(Some(7), Some(3), Some(115.0)), "a datagram of the old boot");
        assert!(b.accept(Some(9), Some(2), Some(130.0)));
    }

    #[test]
    fn senders_without_boot_identity_are_judged_by_seq_and_ts() {
        let mut b = BootSeq::default();
        assert!(b.accept(None, Some(5), Some(100.0)));
        assert!(!b.accept(None, Some(5), Some(100.0)));
        assert!(b.accept(None, Some(1), Some(200.0)), "restarted: low seq, newer ts");
        assert!(b.accept(None, Some(2), Some(150.0)), "a newer seq of the same run");
    }

    #[test]
    fn clock_acks_are_rate_limited_per_source_and_in_all() {
        let mut c = ClockAcks::default();
        let a = IpAddr::from([127, 0, 0, 2]);
        assert!(c.allow(a, 0.0));
        assert!(!c.allow(a, 1.0));
        assert!(c.allow(a, 5.5));
        let sent = (0..100u8).filter(|i| c.allow(IpAddr::from([127, 0, 1, *i]), 6.0)).count();
        assert_eq!(sent, 20, "20 a second in all");
        assert_eq!(c.sent, 22);
    }
}
