//! Host reachability: the fixed timeout rule and a phi-accrual estimate
//! (Hayashibara et al.) over each host's heartbeat inter-arrival times.
//!
//! Pure: times (monotonic seconds) are passed in; no clock, no I/O. The host
//! table (`hosts.rs`) owns one [`Window`] per host and asks [`judge`] and
//! [`next_deadline`] what the host is now and when to look again.
//!
//! Decisions:
//! - States are `new up late down` (DESIGN.md section 4) plus `Stopped` and
//!   `Unreachable`: a clean stop (`shutdown=1`) takes effect at once, as its
//!   own state so events and STATE say "planned stop", at the second-best
//!   fitness level (`server/beats.rs::reach_level`: not a failure, not fine).
//! - Fixed rule: late when `now > last + interval + grace`, down when
//!   `now > last + missed * interval + grace`.
//! - Phi: `phi = -log10(P(next gap > elapsed))` with a normal distribution of
//!   the gaps (mean + `grace` as the acceptable pause, std-dev at least a
//!   tenth of the mean and 0.1 s), using the logistic approximation of the
//!   normal CDF so the tail does not underflow. With `detector phi T` phi
//!   drives the state: late when phi > T/2, down when phi > T. With fewer
//!   than [`MIN_SAMPLES`] gaps phi is not yet meaningful and the fixed rule
//!   applies.
//! - The default, `detector tuned` ([`Kind::Tuned`]), is the loss-aware phi
//!   of `tuned.rs`, chosen with the pure simulation (`detect_sim.rs`, the
//!   only one of the three meeting issue 15's aim): past [`TUNED_SUSPECT`]
//!   the host is `down` to the table, but the server confirms by probes
//!   before it tells anyone (`confirm.rs`); silence alone is never `late`.
//!   `detector fixed` and `detector phi T` select the others.

mod tuned;
pub use tuned::{DOWN as TUNED_DOWN, LATE as TUNED_LATE, SUSPECT as TUNED_SUSPECT};

/// Gaps remembered per host. Small and inline: 100,000 hosts x 32 x 4 bytes
/// = 12.8 MB, where 100 f64 would be 80 MB.
pub const WINDOW: usize = 32;
/// Gaps needed before phi is used to judge.
pub const MIN_SAMPLES: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reach {
    /// In the work, never heard from.
    New,
    Up,
    Late,
    Down,
    /// Stopped cleanly (`shutdown=1`): level `down`, not a failure.
    Stopped,
    /// Silent, and the server cannot reach it, but peers can (confirmation,
    /// `confirm.rs`): a path problem, not a dead host.
    Unreachable,
}

impl Reach {
    /// The name shown in STATE/DUMP and stored in server.db. A reachability
    /// state, not a fitness level: `beats::reach_level` maps it to one.
    pub fn name(self) -> &'static str {
        match self {
            Reach::New => "new",
            Reach::Up => "up",
            Reach::Late => "late",
            Reach::Down => "down",
            Reach::Stopped => "stopped",
            Reach::Unreachable => "unreachable",
        }
    }
    pub fn parse(s: &str) -> Option<Reach> {
        Some(match s {
            "new" => Reach::New,
            "up" => Reach::Up,
            "late" => Reach::Late,
            "down" => Reach::Down,
            "stopped" => Reach::Stopped,
            "unreachable" => Reach::Unreachable,
            _ => return None,
        })
    }
}

/// What the timeout rules need to know.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// The host's heartbeat interval (seconds).
    pub interval: f64,
    pub grace: f64,
    pub missed: u32,
    pub kind: Kind,
    /// The server can confirm a suspicion by probes (the host has a command
    /// address in the work). Without, the tuned detector uses its own late
    /// and down thresholds ([`TUNED_LATE`], [`TUNED_DOWN`]), not the suspicion.
    pub confirmable: bool,
}

impl Params {
    /// Silence makes the host suspected (shown `down` to the table, held by
    /// `confirm.rs`), never `late`.
    fn suspects(&self) -> bool {
        self.kind == Kind::Tuned && self.confirmable
    }
}

/// Which rule judges silence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// `detector fixed`: interval + grace, missed x interval + grace.
    Fixed,
    /// `detector phi T`: the plain phi-accrual, late at T/2, down at T.
    Phi(f64),
    /// The default (`detector tuned`): the loss-aware phi of `tuned.rs`.
    Tuned,
}

impl Kind {
    /// From the work's `detector` line (`phi_threshold`, `detector_tuned`).
    pub fn from_intervals(iv: &crate::work::model::Intervals) -> Kind {
        match (iv.phi_threshold, iv.detector_tuned) {
            (Some(t), _) => Kind::Phi(t),
            (None, true) => Kind::Tuned,
            (None, false) => Kind::Fixed,
        }
    }
}

/// The last [`WINDOW`] inter-arrival gaps of one host, with running sums.
#[derive(Debug, Clone)]
pub struct Window {
    gaps: [f32; WINDOW],
    len: u8,
    next: u8,
    sum: f64,
    sumsq: f64,
    /// Moving-average share of heartbeats lost (seq gaps), see `tuned.rs`.
    loss: f32,
}

impl Default for Window {
    fn default() -> Self {
        Window { gaps: [0.0; WINDOW], len: 0, next: 0, sum: 0.0, sumsq: 0.0, loss: 0.0 }
    }
}

impl Window {
    /// Records the gap between two heartbeats.
    pub fn push(&mut self, gap: f64) {
        if !gap.is_finite() || gap < 0.0 {
            return;
        }
        let g = gap as f32;
        let i = self.next as usize;
        if (self.len as usize) == WINDOW {
            let old = self.gaps[i] as f64;
            self.sum -= old;
            self.sumsq -= old * old;
        } else {
            self.len += 1;
        }
        self.gaps[i] = g;
        self.sum += g as f64;
        self.sumsq += (g as f64) * (g as f64);
        self.next = ((i + 1) % WINDOW) as u8;
        if self.next == 0 {
            // Recompute once per wrap so subtraction errors cannot accumulate.
            let v = &self.gaps[..self.len as usize];
            self.sum = v.iter().map(|&x| x as f64).sum();
            self.sumsq = v.iter().map(|&x| (x as f64) * (x as f64)).sum();
        }
    }
    pub fn len(&self) -> usize {
        self.len as usize
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn mean(&self) -> Option<f64> {
        (self.len > 0).then(|| self.sum / self.len as f64)
    }
    pub fn std_dev(&self) -> Option<f64> {
        let m = self.mean()?;
        Some((self.sumsq / self.len as f64 - m * m).max(0.0).sqrt())
    }
    /// phi after `elapsed` seconds of silence; None without enough history.
    pub fn phi(&self, elapsed: f64, grace: f64) -> Option<f64> {
        if self.len() < MIN_SAMPLES {
            return None;
        }
        let (mean, sd) = self.dist(grace)?;
        Some(phi(elapsed, mean, sd))
    }
    /// Seconds of silence after which phi exceeds `target`.
    pub fn elapsed_for_phi(&self, target: f64, grace: f64) -> Option<f64> {
        if self.len() < MIN_SAMPLES {
            return None;
        }
        let (mean, sd) = self.dist(grace)?;
        // phi is increasing in elapsed: bracket, then find the crossing.
        let (mut lo, mut hi) = (0.0, mean + sd);
        while phi(hi, mean, sd) <= target {
            lo = hi;
            hi *= 2.0;
            if hi > 1e9 {
                return None;
            }
        }
        Some(first_above(|e| phi(e, mean, sd), target, lo, hi))
    }
    fn dist(&self, grace: f64) -> Option<(f64, f64)> {
        let mean = self.mean()?;
        let sd = self.std_dev()?.max(mean / 10.0).max(0.1);
        Some((mean + grace, sd))
    }
}

/// How close above the true crossing [`first_above`] answers (seconds; the
/// deadline heap counts microseconds).
pub const CROSSING_TOL: f64 = 1e-6;

/// The first `x` in `(lo, hi]` with `f(x) > target`, to within
/// [`CROSSING_TOL`] from above (`f` of the answer exceeds `target`), for an
/// increasing `f` with `f(lo) <= target < f(hi)`.
///
/// Regula falsi with the Illinois step, and a bisection whenever three steps
/// did not cut the bracket to a quarter (so it shrinks whatever the shape):
/// about ten evaluations where plain bisection took fifty. It runs each time a host's
/// deadline is pushed again (about every second heartbeat of every host),
/// so at 100,000 hosts it was the largest cost of the heartbeat path.
pub fn first_above(f: impl Fn(f64) -> f64, target: f64, lo: f64, hi: f64) -> f64 {
    let (flo, fhi) = (f(lo), f(hi));
    first_above_from(f, target, (lo, flo), (hi, fhi))
}

/// [`first_above`] with `f` at both ends already known: `(lo, f(lo))`,
/// `(hi, f(hi))`.
pub fn first_above_from(
    f: impl Fn(f64) -> f64,
    target: f64,
    (mut lo, flo): (f64, f64),
    (mut hi, fhi): (f64, f64),
) -> f64 {
    let (mut flo, mut fhi) = (flo - target, fhi - target);
    // Which end the last step moved (+1 hi, -1 lo).
    let mut moved = 0i8;
    // The bracket's width three steps ago.
    let mut width3 = f64::INFINITY;
    for step in 0..200 {
        if hi - lo <= CROSSING_TOL {
            break;
        }
        // A bisection when the last three steps did not cut the bracket to
        // a quarter: the secant is stalling on one side.
        let stalled = step % 3 == 2 && hi - lo > width3 / 4.0;
        if step % 3 == 2 {
            width3 = hi - lo;
        }
        let secant = hi - fhi * (hi - lo) / (fhi - flo);
        let x = if stalled || !(secant > lo && secant < hi) { 0.5 * (lo + hi) } else { secant };
        let fx = f(x) - target;
        if fx > 0.0 {
            (hi, fhi) = (x, fx);
            if moved == 1 {
                // The low end held twice: weigh it less (Illinois).
                flo *= 0.5;
            }
            moved = 1;
        } else {
            (lo, flo) = (x, fx);
            if moved == -1 {
                fhi *= 0.5;
            }
            moved = -1;
        }
    }
    hi
}

/// -log10 of the probability that a normal(mean, sd) gap exceeds `elapsed`.
pub fn phi(elapsed: f64, mean: f64, sd: f64) -> f64 {
    // Deep in the tail p underflows to 0: cap phi instead of returning inf.
    -(normal_sf(elapsed, mean, sd).max(1e-300)).log10()
}

/// P(X > x) for X normal(mean, sd), by the logistic approximation (no
/// underflow to exactly 0 before ~1e-300 in the far tail).
pub fn normal_sf(x: f64, mean: f64, sd: f64) -> f64 {
    let y = (x - mean) / sd;
    let e = (-y * (1.5976 + 0.070566 * y * y)).exp();
    if x > mean {
        e / (1.0 + e)
    } else {
        1.0 - 1.0 / (1.0 + e)
    }
}

/// The state of a host last heard at `last` (not stopped, not new).
pub fn judge(p: &Params, w: &Window, last: f64, now: f64) -> Reach {
    let elapsed = now - last;
    if p.kind == Kind::Tuned {
        if let Some(phi) = w.tuned_phi(elapsed) {
            // A suspicion: the server confirms it by probes before anyone is
            // told (`confirm.rs`); there is no late from silence alone.
            if p.confirmable {
                return if phi > TUNED_SUSPECT { Reach::Down } else { Reach::Up };
            }
            return if phi > TUNED_DOWN {
                Reach::Down
            } else if phi > TUNED_LATE {
                Reach::Late
            } else {
                Reach::Up
            };
        }
    }
    if let Kind::Phi(t) = p.kind {
        if let Some(phi) = w.phi(elapsed, p.grace) {
            return if phi > t {
                Reach::Down
            } else if phi > t / 2.0 {
                Reach::Late
            } else {
                Reach::Up
            };
        }
    }
    if elapsed > p.missed.max(1) as f64 * p.interval + p.grace {
        Reach::Down
    } else if elapsed > p.interval + p.grace && !p.suspects() {
        Reach::Late
    } else {
        Reach::Up
    }
}

/// When [`judge`] may next give a worse answer than `current`; None when
/// nothing worse can happen (down).
pub fn next_deadline(p: &Params, w: &Window, last: f64, current: Reach) -> Option<f64> {
    next_deadline_near(p, w, last, current, 0.0)
}

/// [`next_deadline`], given the silence `near` after which the host's last
/// deadline fell (0: none): the tuned detector's crossing is then searched
/// in a narrow bracket around it (a window moves little per heartbeat), a
/// handful of phi evaluations instead of ~15 (issue 18: the search ran at
/// each of the ~5,000 deadlines a second of 100,000 hosts). The answer is
/// the same crossing, to within [`CROSSING_TOL`]; a hint that does not
/// bracket it costs two evaluations and the full search.
pub fn next_deadline_near(
    p: &Params,
    w: &Window,
    last: f64,
    current: Reach,
    near: f64,
) -> Option<f64> {
    let target = match current {
        Reach::Up | Reach::New => Reach::Late,
        Reach::Late => Reach::Down,
        Reach::Down | Reach::Stopped | Reach::Unreachable => return None,
    };
    if p.kind == Kind::Tuned {
        let t = match (p.confirmable, target) {
            (true, _) => TUNED_SUSPECT,
            (false, Reach::Late) => TUNED_LATE,
            (false, _) => TUNED_DOWN,
        };
        if let Some(e) = w.tuned_elapsed_near(t, near) {
            return Some(last + e);
        }
    }
    if let Kind::Phi(t) = p.kind {
        let phi_target = if target == Reach::Late { t / 2.0 } else { t };
        if let Some(e) = w.elapsed_for_phi(phi_target, p.grace) {
            return Some(last + e);
        }
    }
    // Tuned without history: the fixed rule's down only (no late from silence).
    let after = if target == Reach::Late && !p.suspects() {
        p.interval + p.grace
    } else {
        p.missed.max(1) as f64 * p.interval + p.grace
    };
    // Strictly after: judge uses '>'.
    Some(last + after + 1e-6)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(phi: Option<f64>) -> Params {
        let kind = phi.map(Kind::Phi).unwrap_or(Kind::Fixed);
        Params { interval: 10.0, grace: 5.0, missed: 3, kind, confirmable: true }
    }

    #[test]
    fn fixed_rule_timeline() {
        let p = params(None);
        let w = Window::default();
        assert_eq!(judge(&p, &w, 100.0, 100.0), Reach::Up);
        assert_eq!(judge(&p, &w, 100.0, 115.0), Reach::Up);
        assert_eq!(judge(&p, &w, 100.0, 115.1), Reach::Late);
        assert_eq!(judge(&p, &w, 100.0, 135.0), Reach::Late);
        assert_eq!(judge(&p, &w, 100.0, 135.1), Reach::Down);
        let d = next_deadline(&p, &w, 100.0, Reach::Up).unwrap();
        assert!(d > 115.0 && d < 115.01);
        assert_eq!(judge(&p, &w, 100.0, d), Reach::Late);
        let d = next_deadline(&p, &w, 100.0, Reach::Late).unwrap();
        assert_eq!(judge(&p, &w, 100.0, d), Reach::Down);
        assert_eq!(next_deadline(&p, &w, 100.0, Reach::Down), None);
        assert_eq!(next_deadline(&p, &w, 100.0, Reach::Stopped), None);
    }

    #[test]
    fn window_stats_and_wrap() {
        let mut w = Window::default();
        for g in [10.0, 10.0, 10.0, 10.0] {
            w.push(g);
        }
        assert_eq!(w.mean(), Some(10.0));
        assert!(w.std_dev().unwrap() < 1e-6);
        for i in 0..(3 * WINDOW) {
            w.push(if i % 2 == 0 { 9.0 } else { 11.0 });
        }
        assert_eq!(w.len(), WINDOW);
        assert!((w.mean().unwrap() - 10.0).abs() < 1e-9);
        assert!((w.std_dev().unwrap() - 1.0).abs() < 1e-6);
        w.push(f64::NAN);
        w.push(-1.0);
        assert_eq!(w.len(), WINDOW);
    }

    #[test]
    fn phi_grows_with_silence() {
        let mut w = Window::default();
        for _ in 0..10 {
            w.push(10.0);
        }
        assert_eq!(Window::default().phi(5.0, 0.0), None);
        let a = w.phi(5.0, 0.0).unwrap();
        let b = w.phi(10.0, 0.0).unwrap();
        let c = w.phi(13.0, 0.0).unwrap();
        let d = w.phi(30.0, 0.0).unwrap();
        assert!(a < 0.01, "phi at half the interval {a}");
        assert!((b - 0.301).abs() < 0.01, "phi at the mean is -log10(0.5): {b}");
        assert!(a < b && b < c && c < d);
        assert!(d.is_finite() && d > 100.0);
    }

    #[test]
    fn phi_drives_state_when_configured() {
        let p = params(Some(8.0));
        let mut w = Window::default();
        for _ in 0..10 {
            w.push(10.0);
        }
        // mean 10 + grace 5, sd 1: at 15 s phi = 0.3 (up), then it climbs fast.
        assert_eq!(judge(&p, &w, 0.0, 15.0), Reach::Up);
        let late = next_deadline(&p, &w, 0.0, Reach::Up).unwrap();
        let down = next_deadline(&p, &w, 0.0, Reach::Late).unwrap();
        assert!(late > 15.0 && late < down && down < 35.0, "late {late} down {down}");
        assert_eq!(judge(&p, &w, 0.0, late - 0.01), Reach::Up);
        assert_eq!(judge(&p, &w, 0.0, late + 0.01), Reach::Late);
        assert_eq!(judge(&p, &w, 0.0, down + 0.01), Reach::Down);
        // Without history, phi mode falls back to the fixed rule.
        let empty = Window::default();
        assert_eq!(judge(&p, &empty, 0.0, 15.1), Reach::Late);
    }

    #[test]
    fn jittery_host_gets_more_slack_under_phi() {
        let p = params(Some(8.0));
        let mut steady = Window::default();
        let mut jittery = Window::default();
        for i in 0..WINDOW {
            steady.push(10.0);
            jittery.push(if i % 2 == 0 { 4.0 } else { 16.0 });
        }
        let s = next_deadline(&p, &steady, 0.0, Reach::Late).unwrap();
        let j = next_deadline(&p, &jittery, 0.0, Reach::Late).unwrap();
        assert!(j > s, "jittery {j} steady {s}");
    }

    fn steady(gap: f64, n: usize) -> Window {
        let mut w = Window::default();
        (0..n).for_each(|_| w.push(gap));
        w
    }

    #[test]
    fn the_work_picks_the_detector() {
        use crate::work::model::Intervals;
        let iv = |phi, tuned| Intervals {
            phi_threshold: phi,
            detector_tuned: tuned,
            ..Intervals::default()
        };
        assert_eq!(Kind::from_intervals(&iv(Some(8.0), true)), Kind::Phi(8.0));
        assert_eq!(Kind::from_intervals(&iv(None, true)), Kind::Tuned);
        assert_eq!(Kind::from_intervals(&iv(None, false)), Kind::Fixed);
    }

    #[test]
    fn a_window_ignores_impossible_gaps_and_starts_empty() {
        let mut w = Window::default();
        assert_eq!((w.len(), w.is_empty()), (0, true));
        assert!(w.mean().is_none() && w.std_dev().is_none());
        w.push(0.0);
        w.push(4.0);
        assert!(!w.is_empty() && w.len() == 2);
        for bad in [f64::NAN, f64::INFINITY, -0.5] {
            w.push(bad);
        }
        assert_eq!((w.len(), w.mean(), w.std_dev()), (2, Some(2.0), Some(2.0)));
    }

    #[test]
    fn phi_needs_min_samples_gaps() {
        let w = steady(10.0, MIN_SAMPLES - 1);
        assert_eq!((w.phi(30.0, 0.0), w.elapsed_for_phi(1.0, 0.0)), (None, None));
        let w = steady(10.0, MIN_SAMPLES);
        assert!(w.phi(30.0, 0.0).is_some() && w.elapsed_for_phi(1.0, 0.0).is_some());
    }

    #[test]
    fn the_spread_is_at_least_a_tenth_of_the_mean_and_a_tenth_of_a_second() {
        // -log10(P(gap > mean + 1 sd)) = -log10(0.1587) = 0.80.
        let one_sd = 0.7995;
        assert!((steady(10.0, 10).phi(11.0, 0.0).unwrap() - one_sd).abs() < 0.01);
        assert!((steady(0.5, 10).phi(0.6, 0.0).unwrap() - one_sd).abs() < 0.01);
        // The grace moves the mean: at mean + grace phi is -log10(0.5).
        assert!((steady(10.0, 10).phi(15.0, 5.0).unwrap() - 0.301).abs() < 0.01);
    }

    #[test]
    fn normal_tail_values() {
        let near = |a: f64, b: f64| (a - b).abs() < 1e-3;
        assert!(near(normal_sf(12.0, 10.0, 2.0), 0.1587), "1 sd");
        assert!(near(normal_sf(14.0, 10.0, 2.0), 0.0228), "2 sd");
        assert!(near(normal_sf(8.0, 10.0, 2.0), 0.8413), "-1 sd");
        assert!(near(normal_sf(10.0, 10.0, 2.0), 0.5));
        assert!(normal_sf(0.0, 10.0, 0.1) == 1.0, "far below the mean");
        // Far in the tail the probability is tiny but not zero: phi stays
        // below its 300 cap there.
        let far = phi(20.0, 10.0, 1.0);
        assert!(far > 20.0 && far < 60.0, "{far}");
        assert_eq!(phi(1e6, 10.0, 1.0), 300.0, "the cap");
    }

    #[test]
    fn a_phi_deadline_past_the_cap_is_none_and_a_skewed_window_still_has_one() {
        let w = steady(10.0, 10);
        assert_eq!(w.elapsed_for_phi(301.0, 0.0), None, "phi never gets there");
        // Mostly zero gaps and one long one: the spread exceeds the mean.
        let mut w = steady(0.0, WINDOW - 1);
        w.push(100.0);
        let e = w.elapsed_for_phi(8.0, 0.0).unwrap();
        assert!(e.is_finite() && e > 0.0 && (w.phi(e, 0.0).unwrap() - 8.0).abs() < 0.01, "{e}");
    }

    #[test]
    fn the_fixed_rule_ignores_history_and_missed_zero_counts_as_one() {
        let p = params(None);
        let w = steady(10.0, 10);
        assert_eq!(judge(&p, &w, 100.0, 115.1), Reach::Late);
        assert_eq!(judge(&p, &w, 100.0, 135.1), Reach::Down);
        let d = next_deadline(&p, &w, 100.0, Reach::Up).unwrap();
        assert!(d > 115.0 && d < 115.01, "{d}");
        assert_eq!(next_deadline(&p, &w, 100.0, Reach::New), Some(d), "new is judged like up");
        assert_eq!(next_deadline(&p, &w, 100.0, Reach::Unreachable), None);
        let p0 = Params { missed: 0, ..p };
        assert_eq!(judge(&p0, &w, 100.0, 115.1), Reach::Down);
        let d = next_deadline(&p0, &w, 100.0, Reach::Late).unwrap();
        assert!(d > 115.0 && d < 115.01, "{d}");
        // A phi host's deadline is counted from its last heartbeat.
        let pp = params(Some(8.0));
        let a = next_deadline(&pp, &w, 0.0, Reach::Up).unwrap();
        assert_eq!(next_deadline(&pp, &w, 1000.0, Reach::Up), Some(1000.0 + a));
    }

    #[test]
    fn names_and_levels() {
        for r in
            [Reach::New, Reach::Up, Reach::Late, Reach::Down, Reach::Stopped, Reach::Unreachable]
        {
            assert_eq!(Reach::parse(r.name()), Some(r));
        }
        assert_eq!(Reach::parse("x"), None);
    }
}
