//! A pure simulation of the failure detectors over a simulated clock: many
//! hosts sending heartbeats with loss, send-time jitter and deaths, judged
//! by the real `detector.rs` code, counting false late/down and the time from
//! each death to its down. Used by the unit tests (the aim of issue 15 on a
//! fixed seed), by `examples/bench_detect.rs` and to tune `tuned.rs`.
//!
//! Decisions:
//! - Time is in intervals (interval 1.0); a sender's k-th heartbeat leaves
//!   at `k + U(-jitter, +jitter)` (a clock-driven sender, as the client is)
//!   and is lost with probability `loss`; loopback delay is nil.
//! - A gap is judged once, when the next heartbeat arrives: phi grows with
//!   silence, so a gap raised an alarm iff its length passed the threshold.
//!   That keeps a million heartbeats well under a second.
//! - Confirmation (`Confirm`) is modelled as the server's direct PING and
//!   `peers` peers' PINGs, each a request and a reply over the same lossy
//!   network, `attempts` within `timeout`; a dead host answers none, and
//!   its down comes at suspicion + `timeout` (the worst case: a vanished box,
//!   not a refused connection).

use super::detector::{Window, TUNED_DOWN, TUNED_LATE};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimDetector {
    Fixed {
        grace: f64,
        missed: u32,
    },
    Phi {
        threshold: f64,
        grace: f64,
    },
    /// The tuned phi without confirmation (late/down thresholds).
    Tuned,
    /// The tuned phi, suspicion confirmed by probes.
    TunedConfirmed(Confirm),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confirm {
    /// Seconds (intervals) the confirmation may take.
    pub timeout: f64,
    pub peers: u32,
    /// PINGs each prober tries within the timeout.
    pub attempts: u32,
    /// The tuned phi at which a host is suspected (`TUNED_SUSPECT`).
    pub suspect: f64,
}

#[derive(Debug, Clone, Copy)]
pub struct SimConf {
    pub hosts: u32,
    /// Heartbeats each host sends (its life, if it does not die).
    pub beats: u64,
    pub loss: f64,
    /// Send-time jitter as a share of the interval (0.5: +-50 %).
    pub jitter: f64,
    /// Hosts that die at a random time in the second half of their life.
    pub deaths: u32,
    pub seed: u64,
}

#[derive(Debug, Clone, Default)]
pub struct SimResult {
    pub host_hours: f64,
    pub heartbeats: u64,
    pub false_late: u64,
    pub false_down: u64,
    /// Live hosts only peers reached (shown `unreachable`).
    pub false_unreachable: u64,
    /// Suspicions answered by the host itself (heartbeats lost, host up).
    pub answered: u64,
    /// Death to down, in intervals, sorted.
    pub detect: Vec<f64>,
}

impl SimResult {
    pub fn per_1000h(&self, n: u64) -> f64 {
        n as f64 * 1000.0 / self.host_hours.max(1e-9)
    }
    pub fn quantile(&self, q: f64) -> f64 {
        if self.detect.is_empty() {
            return f64::NAN;
        }
        let i = ((self.detect.len() - 1) as f64 * q).round() as usize;
        self.detect[i]
    }
}

/// splitmix64: small, seedable, good enough for a simulation (and the
/// daemon detection bench, which draws its deaths and losses from it).
pub struct Rng(pub u64);
impl Rng {
    /// The next number in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The detector's (late, suspect-or-down) levels, on its own scale.
fn levels(d: SimDetector) -> (f64, f64) {
    match d {
        SimDetector::Fixed { missed, .. } => (1.0, missed as f64),
        SimDetector::Phi { threshold, .. } => (threshold / 2.0, threshold),
        SimDetector::Tuned => (TUNED_LATE, TUNED_DOWN),
        SimDetector::TunedConfirmed(c) => (f64::INFINITY, c.suspect),
    }
}

/// The detector's level after `e` of silence (None: the fixed rule applies).
fn level(d: SimDetector, w: &Window, e: f64) -> f64 {
    let fixed = |grace: f64| (e - grace).max(0.0);
    match d {
        SimDetector::Fixed { grace, .. } => fixed(grace),
        SimDetector::Phi { threshold: _, grace } => w.phi(e, grace).unwrap_or(fixed(grace) * 2.0),
        _ => w.tuned_phi(e).unwrap_or(if e > 3.0 { f64::INFINITY } else { 0.0 }),
    }
}

/// Silence after which the level passes `t`.
fn elapsed_for(d: SimDetector, w: &Window, t: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    while level(d, w, hi) <= t && hi < 1e6 {
        hi *= 2.0;
    }
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if level(d, w, mid) > t {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

/// Runs the simulation.
pub fn simulate(c: &SimConf, d: SimDetector) -> SimResult {
    let mut rng = Rng(c.seed);
    let mut r = SimResult::default();
    // A probe attempt fails if its request or its reply is lost.
    let q = 1.0 - (1.0 - c.loss) * (1.0 - c.loss);
    let mut total_time = 0.0;
    for host in 0..c.hosts {
        let dies = host < c.deaths;
        let death = if dies { c.beats as f64 * (0.5 + 0.5 * rng.unit()) } else { f64::INFINITY };
        let mut w = Window::default();
        let mut last: Option<(f64, u64)> = None;
        let mut end = c.beats as f64;
        for k in 0..c.beats {
            let send = k as f64 + (rng.unit() * 2.0 - 1.0) * c.jitter;
            if send >= death {
                end = death;
                break;
            }
            if rng.unit() < c.loss {
                continue;
            }
            r.heartbeats += 1;
            if let Some((l, s)) = last {
                judge_gap(d, &w, l, send, q, &mut rng, &mut r);
                w.observe(send - l, k - s);
            }
            last = Some((send, k));
        }
        total_time += end;
        if let (true, Some((l, _))) = (dies, last) {
            if let Some(at) = death_to_down(d, &w, l, death, q, &mut rng, &mut r) {
                r.detect.push(at - death);
            }
        }
    }
    r.host_hours = total_time / 3600.0;
    r.detect.sort_by(|a, b| a.total_cmp(b));
    r
}

/// A live host silent from `from` to `to`: which alarms did it raise?
fn judge_gap(
    d: SimDetector,
    w: &Window,
    from: f64,
    to: f64,
    q: f64,
    rng: &mut Rng,
    r: &mut SimResult,
) {
    let (late, down) = levels(d);
    // One level per gap: phi grows with silence.
    let at_end = level(d, w, to - from);
    let SimDetector::TunedConfirmed(cf) = d else {
        r.false_late += (at_end > late) as u64;
        r.false_down += (at_end > down) as u64;
        return;
    };
    if at_end <= down {
        return;
    }
    let wait = elapsed_for(d, w, down);
    let mut base = from;
    while base + wait < to {
        match probe(cf, q, rng) {
            Verdict::Answered => r.answered += 1,
            Verdict::Peers => {
                r.false_late += 1;
                r.false_unreachable += 1;
            }
            Verdict::Nobody => {
                r.false_late += 1;
                r.false_down += 1;
                return;
            }
        }
        // An answered probe shows the host alive then: silence counts anew.
        base += wait + cf.timeout;
    }
}

/// When a host dying at `death`, last heard at `last`, is called down
/// (None when a false down before the death already had it down).
fn death_to_down(
    d: SimDetector,
    w: &Window,
    last: f64,
    death: f64,
    q: f64,
    rng: &mut Rng,
    r: &mut SimResult,
) -> Option<f64> {
    let wait = elapsed_for(d, w, levels(d).1);
    // Alive from `last` to `death`: its alarms are false ones.
    let before = r.false_down;
    judge_gap(d, w, last, death, q, rng, r);
    if r.false_down > before {
        return None;
    }
    let SimDetector::TunedConfirmed(cf) = d else {
        return Some(last + wait);
    };
    let mut base = last;
    while base + wait < death {
        base += wait + cf.timeout;
    }
    Some(base + wait + cf.timeout)
}

enum Verdict {
    Answered,
    Peers,
    Nobody,
}

fn probe(cf: Confirm, q: f64, rng: &mut Rng) -> Verdict {
    let mut attempt = || (0..cf.attempts).any(|_| rng.unit() >= q);
    if attempt() {
        return Verdict::Answered;
    }
    if (0..cf.peers).any(|_| attempt()) {
        return Verdict::Peers;
    }
    Verdict::Nobody
}

#[cfg(test)]
mod tests;
