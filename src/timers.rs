//! Deadlines -> the next poll timeout. A min-heap of `(deadline, seq, kind)`;
//! time is passed in (seconds on a monotonic clock) so it is testable.
//! Timers are never cancelled: a handler that finds its timer stale ignores it.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

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
    fn timeout_is_clamped() {
        let mut t = Timers::new();
        assert_eq!(t.timeout(0.0, 2.0).as_secs_f64(), 2.0);
        t.at(10.5, ());
        assert_eq!(t.timeout(10.0, 2.0).as_secs_f64(), 0.5);
        assert_eq!(t.timeout(11.0, 2.0).as_secs_f64(), 0.0);
    }
}
