//! Deadlines -> the next poll timeout. A min-heap of `(deadline, seq, kind)`;
//! time is passed in (seconds on a monotonic clock) so it is testable.
//! Timers are never cancelled: a handler that finds its timer stale ignores it.
//! A periodic job that re-arms itself (a probe round, the WORK_LM poll) is a
//! [`Chain`]: every arming takes a fresh generation that the tick carries, and
//! a tick of an older generation is dropped without re-arming, so however
//! often a chain is restarted (reloads) exactly one keeps running.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Generations are unique in the process, so a tick left over from a part
/// that was dropped and rebuilt (a role change) never matches the new one.
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// One self-re-arming timer: at most one of its ticks is current.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Chain {
    current: u64,
}

impl Chain {
    /// Starts (or restarts) the chain: returns the generation the new tick
    /// carries; every tick armed before is stale from now on.
    pub fn arm(&mut self) -> u64 {
        self.current = GENERATION.fetch_add(1, Ordering::Relaxed);
        self.current
    }

    /// Is a tick of generation `gen` the chain's current one? A stale tick
    /// is dropped by its handler, which then must not re-arm.
    pub fn is_current(&self, gen: u64) -> bool {
        gen != 0 && gen == self.current
    }

    /// Stops the chain: every armed tick is stale.
    pub fn stop(&mut self) {
        self.current = 0;
    }
}

#[derive(Debug)]
struct Entry<K> {
    at: f64,
    seq: u64,
    kind: K,
}

impl<K> PartialEq for Entry<K> {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl<K> Eq for Entry<K> {}
impl<K> PartialOrd for Entry<K> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<K> Ord for Entry<K> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.at.total_cmp(&o.at).then(self.seq.cmp(&o.seq))
    }
}

pub struct Timers<K> {
    heap: BinaryHeap<Reverse<Entry<K>>>,
    seq: u64,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers { heap: BinaryHeap::new(), seq: 0 }
    }
}

impl<K> Timers<K> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fires `kind` at `at` (same clock as `now` in `pop_due`).
    pub fn at(&mut self, at: f64, kind: K) {
        self.seq += 1;
        self.heap.push(Reverse(Entry { at, seq: self.seq, kind }));
    }

    /// The earliest deadline, if any.
    pub fn next(&self) -> Option<f64> {
        self.heap.peek().map(|r| r.0.at)
    }

    /// How long poll may sleep: until the next deadline, capped at `max`.
    pub fn timeout(&self, now: f64, max: f64) -> std::time::Duration {
        let secs = self.next().map_or(max, |at| (at - now).clamp(0.0, max));
        std::time::Duration::from_secs_f64(secs)
    }

    /// Removes and returns the next due timer, in deadline order (ties in
    /// insertion order).
    pub fn pop_due(&mut self, now: f64) -> Option<K> {
        if self.heap.peek().is_some_and(|r| r.0.at <= now) {
            self.heap.pop().map(|r| r.0.kind)
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fires_in_order_and_only_when_due() {
        let mut t = Timers::new();
        t.at(5.0, "b");
        t.at(1.0, "a");
        t.at(5.0, "c");
        assert_eq!(t.next(), Some(1.0));
        assert_eq!(t.pop_due(0.5), None);
        assert_eq!(t.pop_due(1.0), Some("a"));
        assert_eq!(t.pop_due(4.9), None);
        assert_eq!(t.pop_due(6.0), Some("b"));
        assert_eq!(t.pop_due(6.0), Some("c"));
        assert!(t.is_empty());
    }

    #[test]
    fn a_restarted_chain_keeps_one_tick() {
        let (mut a, mut b) = (Chain::default(), Chain::default());
        assert!(!a.is_current(0), "a chain never armed has no current tick");
        let g1 = a.arm();
        let g2 = a.arm();
        assert!(!a.is_current(g1) && a.is_current(g2));
        // Another chain (or a rebuilt part) never shares a generation.
        let h = b.arm();
        assert!(h != g1 && h != g2 && !a.is_current(h));
        a.stop();
        assert!(!a.is_current(g2));
    }

    #[test]
    fn timeout_is_clamped() {
        let mut t = Timers::new();
        assert_eq!(t.timeout(0.0, 2.0).as_secs_f64(), 2.0);
        t.at(10.5, ());
        assert_eq!(t.timeout(10.0, 2.0).as_secs_f64(), 0.5);
        assert_eq!(t.timeout(11.0, 2.0).as_secs_f64(), 0.0);
    }

    #[test]
    fn ties_fire_in_insertion_order_and_len_counts_pending() {
        let mut t = Timers::new();
        assert_eq!((t.len(), t.next()), (0, None));
        for k in 0..20 {
            t.at(7.0, k);
        }
        t.at(3.5, 99);
        assert_eq!((t.len(), t.is_empty(), t.next()), (21, false, Some(3.5)));
        assert_eq!(t.pop_due(3.5), Some(99));
        let order: Vec<i32> = std::iter::from_fn(|| t.pop_due(7.0)).collect();
        assert_eq!(order, (0..20).collect::<Vec<_>>());
        assert_eq!((t.len(), t.is_empty()), (0, true));
    }

    #[test]
    fn entries_are_equal_by_deadline_and_sequence_only() {
        let e = |at, seq, kind| Entry { at, seq, kind };
        assert!(e(1.0, 1, "a") == e(1.0, 1, "b"), "the kind is not part of the order");
        assert!(e(1.0, 1, "a") != e(1.0, 2, "a"));
        assert!(e(1.0, 1, "a") != e(2.0, 1, "a"));
        assert!(e(1.0, 2, "a") < e(2.0, 1, "a") && e(2.0, 1, "a") < e(2.0, 2, "a"));
    }
}
