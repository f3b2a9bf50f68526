//! The tuned default detector: a loss-aware phi over per-heartbeat gaps.
//!
//! Pure, like its parent. Why not the plain phi: a lost heartbeat shows as a
//! gap of two or three intervals, which the plain phi folds into its mean and
//! variance (every host with some loss gets slow to judge, yet three losses
//! in a row still look like a death). Here:
//! - a gap spanning `d` seq numbers is stored as `d` gaps of `gap / d`, so the
//!   window measures the sender's rhythm and jitter, not the loss;
//! - the loss rate is a per-host moving average of seq gaps;
//! - the chance that a live host stays silent for `e` seconds is
//!   `prod_k (1 - (1 - loss) * F((e - k * mean) / sd))` over the heartbeats
//!   `k = 1, 2, ...` it would have sent, and `phi = -log10` of that.
//!
//! [`SUSPECT`] is where the host is suspected and confirmed by probes
//! before it is called down; [`LATE`] and [`DOWN`] are thresholds without
//! confirmation, kept for the simulation's comparison only. The values come from the pure
//! simulation (`detect_sim.rs`), see the README's detection table.

use super::{normal_sf, Window};

/// phi at which a host is suspected and probed.
pub const SUSPECT: f64 = 3.0;
/// phi for `late` without confirmation.
pub const LATE: f64 = 3.0;
/// phi for `down` without confirmation.
pub const DOWN: f64 = 6.0;
/// Loss assumed at least (a host never seen losing still may).
pub const MIN_LOSS: f64 = 0.02;
/// Floor of the jitter spread, as a share of the mean gap.
pub const MIN_SD_SHARE: f64 = 0.05;

/// The half-width of the bracket around a host's previous crossing, as a
/// share of it: one heartbeat moves a steady host's crossing far less.
pub const NEAR: f64 = 0.01;

/// The moving-average weight of one heartbeat in the loss estimate.
const LOSS_ALPHA: f64 = 1.0 / 64.0;

impl Window {
    /// Records a gap spanning `delta` seq numbers (1 when none was lost).
    pub fn observe(&mut self, gap: f64, delta: u64) {
        let d = delta.clamp(1, 64);
        // Only the first few stand-ins: a long outage must not flush the rhythm.
        for _ in 0..d.min(4) {
            self.push(gap / d as f64);
        }
        let lost = (d - 1) as f64;
        let keep = (1.0 - LOSS_ALPHA).powi(d as i32);
        self.loss = (self.loss as f64 * keep + (1.0 - keep) * lost / d as f64) as f32;
    }

    /// The moving-average share of heartbeats lost.
    pub fn loss(&self) -> f64 {
        self.loss as f64
    }

    /// The tuned phi after `elapsed` seconds of silence; None without history.
    pub fn tuned_phi(&self, elapsed: f64) -> Option<f64> {
        if self.len() < super::MIN_SAMPLES {
            return None;
        }
        let mean = self.mean()?.max(1e-3);
        let sd = self.std_dev()?.max(mean * MIN_SD_SHARE).max(1e-3);
        let arrive = 1.0 - self.loss().clamp(MIN_LOSS, 0.5);
        let mut log_p = 0.0;
        let mut k = 1.0;
        // Heartbeats far beyond `elapsed` cannot have arrived: stop there.
        while k * mean <= elapsed + 6.0 * sd && k < 10_000.0 {
            let reached = 1.0 - normal_sf(elapsed, k * mean, sd);
            log_p += (1.0 - arrive * reached).max(1e-300).log10();
            k += 1.0;
        }
        Some(-log_p)
    }

    /// [`tuned_elapsed_for`](Self::tuned_elapsed_for), searched first
    /// within [`NEAR`] of `near` (the crossing found last time; 0: none).
    pub fn tuned_elapsed_near(&self, target: f64, near: f64) -> Option<f64> {
        if near > 0.0 && near.is_finite() {
            let (lo, hi) = (near * (1.0 - NEAR), near * (1.0 + NEAR));
            let (flo, fhi) = (self.tuned_phi(lo)?, self.tuned_phi(hi)?);
            if flo <= target && fhi > target {
                let f = |e| self.tuned_phi(e).unwrap_or(f64::INFINITY);
                return Some(super::first_above_from(f, target, (lo, flo), (hi, fhi)));
            }
        }
        self.tuned_elapsed_for(target)
    }

    /// Seconds of silence after which the tuned phi exceeds `target`.
    pub fn tuned_elapsed_for(&self, target: f64) -> Option<f64> {
        let mean = self.mean()?;
        self.tuned_phi(0.0)?;
        let (mut lo, mut hi) = (0.0, mean.max(1e-3));
        while self.tuned_phi(hi)? <= target {
            lo = hi;
            hi *= 2.0;
            if hi > 1e9 {
                return None;
            }
        }
        // tuned_phi has history here (checked above): None cannot happen.
        Some(super::first_above(|e| self.tuned_phi(e).unwrap_or(f64::INFINITY), target, lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steady(loss_every: Option<u64>) -> Window {
        let mut w = Window::default();
        for i in 0..200u64 {
            match loss_every {
                Some(n) if i % n == 0 => w.observe(2.0, 2),
                _ => w.observe(1.0, 1),
            }
        }
        w
    }

    #[test]
    fn lost_heartbeats_are_loss_not_rhythm() {
        let w = steady(Some(10));
        assert!((w.mean().unwrap() - 1.0).abs() < 1e-6, "mean {:?}", w.mean());
        assert!(w.loss() > 0.05 && w.loss() < 0.15, "loss {}", w.loss());
        assert!(steady(None).loss() < 1e-3);
    }

    #[test]
    fn tuned_phi_grows_and_a_lossy_host_gets_more_slack() {
        let clean = steady(None);
        let lossy = steady(Some(5));
        let (a, b) = (clean.tuned_phi(0.5).unwrap(), clean.tuned_phi(3.5).unwrap());
        assert!(a < 0.1 && b > a, "{a} {b}");
        let c = clean.tuned_elapsed_for(SUSPECT).unwrap();
        let l = lossy.tuned_elapsed_for(SUSPECT).unwrap();
        assert!(c > 1.0 && l > c, "clean {c} lossy {l}");
        assert_eq!(Window::default().tuned_phi(1.0), None);
    }

    /// Issue 18: the search from the last crossing finds the same crossing
    /// as the full one (within the tolerance), whether the hint brackets
    /// it, misses it, or is none.
    #[test]
    fn the_search_near_the_last_crossing_finds_the_same_one_18() {
        let mut w = steady(Some(7));
        let before = w.tuned_elapsed_for(SUSPECT).unwrap();
        // One more heartbeat: the crossing moves a little.
        w.observe(1.3, 1);
        let full = w.tuned_elapsed_for(SUSPECT).unwrap();
        assert!(full != before);
        for hint in [before, full, before * 0.5, before * 3.0, 0.0, f64::NAN, -1.0] {
            let near = w.tuned_elapsed_near(SUSPECT, hint).unwrap();
            assert!(
                (near - full).abs() <= 2.0 * super::super::CROSSING_TOL,
                "{hint}: {near} vs {full}"
            );
            assert!(w.tuned_phi(near).unwrap() > SUSPECT, "{hint}: above the threshold");
        }
        assert_eq!(Window::default().tuned_elapsed_near(SUSPECT, before), None);
    }

    #[test]
    fn tuned_kind_drives_judge_and_deadlines() {
        use super::super::{judge, next_deadline, Kind, Params, Reach};
        let p =
            Params { interval: 1.0, grace: 1.0, missed: 3, kind: Kind::Tuned, confirmable: true };
        let w = steady(None);
        // No late from silence: up until suspected, then down (to be confirmed).
        let at = next_deadline(&p, &w, 0.0, Reach::Up).unwrap();
        assert!(at > 2.0 && at < 3.5, "suspected at {at}");
        assert_eq!(judge(&p, &w, 0.0, at - 0.01), Reach::Up);
        assert_eq!(judge(&p, &w, 0.0, at + 0.01), Reach::Down);
        // Without history the fixed rule's down applies, still with no late.
        let empty = Window::default();
        assert_eq!(judge(&p, &empty, 0.0, 2.1), Reach::Up);
        assert_eq!(judge(&p, &empty, 0.0, 4.1), Reach::Down);
        let at = next_deadline(&p, &empty, 0.0, Reach::Up).unwrap();
        assert!(at > 4.0 && at < 4.01, "fallback deadline {at}");
        // A host the server cannot probe: late and down by the tuned phi's
        // own thresholds, later than the suspicion.
        let q = Params { confirmable: false, ..p };
        let late = next_deadline(&q, &w, 0.0, Reach::Up).unwrap();
        let down = next_deadline(&q, &w, 0.0, Reach::Late).unwrap();
        let suspect = next_deadline(&p, &w, 0.0, Reach::Up).unwrap();
        assert!(late < down && down > suspect, "late {late} down {down} suspect {suspect}");
        assert_eq!(judge(&q, &w, 0.0, late + 0.01), Reach::Late);
        assert_eq!(judge(&q, &w, 0.0, down - 0.01), Reach::Late);
        assert_eq!(judge(&q, &w, 0.0, down + 0.01), Reach::Down);
    }

    /// Issue 18: the crossing is found from above, within the tolerance,
    /// in a handful of evaluations (it runs at every deadline push), and
    /// agrees with a plain bisection.
    #[test]
    fn the_crossing_is_tight_and_cheap_18() {
        use super::super::{first_above, CROSSING_TOL};
        use std::cell::Cell;
        for (w, target) in
            [(steady(None), SUSPECT), (steady(Some(5)), SUSPECT), (steady(Some(3)), DOWN)]
        {
            let calls = Cell::new(0u32);
            let f = |e: f64| {
                calls.set(calls.get() + 1);
                w.tuned_phi(e).unwrap()
            };
            let mean = w.mean().unwrap();
            let (mut lo, mut hi) = (0.0, mean);
            while f(hi) <= target {
                (lo, hi) = (hi, hi * 2.0);
            }
            calls.set(0);
            let x = first_above(f, target, lo, hi);
            assert!(calls.get() <= 20, "{} evaluations (bisection took 50+)", calls.get());
            assert!(w.tuned_phi(x).unwrap() > target);
            assert!(w.tuned_phi(x - 2.0 * CROSSING_TOL).unwrap() <= target, "not the first");
            // Plain bisection (what this replaced) to the same precision.
            let (mut a, mut b) = (lo, hi);
            for _ in 0..60 {
                let m = (a + b) / 2.0;
                if w.tuned_phi(m).unwrap() > target {
                    b = m;
                } else {
                    a = m;
                }
            }
            assert!((x - b).abs() <= 2.0 * CROSSING_TOL, "{x} vs {b}");
            assert_eq!(w.tuned_elapsed_for(target), Some(x));
        }
    }
}
