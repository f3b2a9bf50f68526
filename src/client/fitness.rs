//! Fitness evaluation (DESIGN.md §5): a sample value and an item's judge
//! state in, a level index out. Levels are indexes into `work.levels`,
//! 0 = best, the last = worst (`dead`). Pure: no I/O, no clock.
//!
//! Rules, in order:
//! - a missing value (the probe failed) is the worst level at once (no count);
//! - no fitness function: the best level;
//! - `nagios`: the value is an exit code 0/1/2/3 mapped by `nagios_map`;
//!   any other value (or a non-integer) is UNKNOWN's level;
//! - otherwise the worst level whose condition holds, else the best;
//! - `hyst P%`: while improving from level L, every rule of a level in
//!   (target, L] is re-tested with its threshold moved P% of |threshold|
//!   towards the good side; the worst such level that still holds is kept.
//!   For `>`/`>=` the value must fall to `t - |t|*P/100` (= `t*(1-P/100)`
//!   for a positive t); for `<`/`<=` rise to `t + |t|*P/100`. Using |t|
//!   keeps the margin on the good side for negative thresholds; a zero
//!   threshold has no margin, and `==`/`!=` have no hysteresis;
//! - `count N`: a move to a worse level L needs N consecutive samples at L
//!   or worse (each worse level keeps its own streak, so a run of samples
//!   alternating sick/crit moves to sick after N); moving to a better level
//!   is immediate (subject to hyst). A missing value breaks every streak.
//!   An item with no level yet counts from the best level.

use crate::work::model::{Fitness, Level, NagiosMap, Op, Rule};

/// Per-item state the judge carries between samples.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgeState {
    /// The current level, None before the first sample.
    pub level: Option<usize>,
    /// `streak[L]`: consecutive samples at level L or worse, for levels worse
    /// than the current one (empty when no worse level is pending).
    pub streak: Vec<u32>,
    /// The last value judged.
    pub last: Option<f64>,
}

impl JudgeState {
    /// The worse level being counted towards and its count, if any: the worst
    /// level with a non-zero streak.
    pub fn pending(&self) -> Option<(usize, u32)> {
        self.streak.iter().enumerate().rev().find(|(_, n)| **n > 0).map(|(l, n)| (l, *n))
    }
}

/// The index of a level name, if the work declares it.
pub fn level_index(levels: &[Level], name: &str) -> Option<usize> {
    levels.iter().position(|l| l.name == name)
}

fn holds(op: Op, v: f64, t: f64) -> bool {
    match op {
        Op::Gt => v > t,
        Op::Ge => v >= t,
        Op::Lt => v < t,
        Op::Le => v <= t,
        Op::Eq => v == t,
        Op::Ne => v != t,
    }
}

/// The rule's condition with its threshold moved `pct`% of |t| towards the
/// good side: true while the value has not recovered far enough.
fn holds_hyst(r: &Rule, v: f64, pct: f64) -> bool {
    let margin = r.value.abs() * pct / 100.0;
    match r.op {
        Op::Gt => v > r.value - margin,
        Op::Ge => v >= r.value - margin,
        Op::Lt => v < r.value + margin,
        Op::Le => v <= r.value + margin,
        Op::Eq | Op::Ne => holds(r.op, v, r.value),
    }
}

/// The level a value maps to, before count and hyst.
pub fn raw_level(f: &Fitness, levels: &[Level], nmap: &NagiosMap, v: f64) -> usize {
    if f.nagios {
        let name = if v == 0.0 {
            &nmap.ok
        } else if v == 1.0 {
            &nmap.warning
        } else if v == 2.0 {
            &nmap.critical
        } else {
            &nmap.unknown
        };
        return level_index(levels, name).unwrap_or(0);
    }
    f.rules
        .iter()
        .filter(|r| holds(r.op, v, r.value))
        .filter_map(|r| level_index(levels, &r.level))
        .max()
        .unwrap_or(0)
}

/// Judges one sample: updates `st` and returns the item's new level.
pub fn judge(
    f: Option<&Fitness>,
    levels: &[Level],
    nmap: &NagiosMap,
    st: &mut JudgeState,
    value: Option<f64>,
) -> usize {
    let worst = levels.len().saturating_sub(1);
    st.last = value;
    let Some(v) = value else {
        st.streak.clear();
        st.level = Some(worst);
        return worst;
    };
    let Some(f) = f else {
        st.streak.clear();
        st.level = Some(0);
        return 0;
    };
    let cur = st.level.unwrap_or(0);
    let target = raw_level(f, levels, nmap, v);
    let new = if target > cur {
        let need = f.count.max(1);
        if st.streak.len() != levels.len() {
            st.streak = vec![0; levels.len()];
        }
        for (l, n) in st.streak.iter_mut().enumerate() {
            *n = if l > cur && l <= target { *n + 1 } else { 0 };
        }
        // The worst level whose streak reached the count, else stay; streaks
        // of levels worse than the new one keep running.
        let new = (cur + 1..=target).rev().find(|l| st.streak[*l] >= need).unwrap_or(cur);
        st.streak.iter_mut().take(new + 1).for_each(|n| *n = 0);
        new
    } else {
        st.streak.clear();
        if target < cur && f.hyst > 0.0 && !f.nagios {
            // Held at the worst level in (target, cur] still inside its margin.
            f.rules
                .iter()
                .filter_map(|r| level_index(levels, &r.level).map(|l| (l, r)))
                .filter(|(l, r)| *l > target && *l <= cur && holds_hyst(r, v, f.hyst))
                .map(|(l, _)| l)
                .max()
                .unwrap_or(target)
        } else {
            target
        }
    };
    st.level = Some(new);
    new
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels() -> Vec<Level> {
        ["fine", "soso", "sick", "crit", "dead"]
            .iter()
            .map(|n| Level { name: n.to_string(), long: n.to_string() })
            .collect()
    }
    fn nmap() -> NagiosMap {
        NagiosMap {
            ok: "fine".into(),
            warning: "sick".into(),
            critical: "crit".into(),
            unknown: "soso".into(),
        }
    }
    fn rule(level: &str, op: Op, value: f64) -> Rule {
        Rule { level: level.into(), op, value }
    }
    /// `fit cpu_load soso >2 sick >4 crit >8`
    fn cpu() -> Fitness {
        Fitness {
            source: "cpu_load".into(),
            rules: vec![
                rule("soso", Op::Gt, 2.0),
                rule("sick", Op::Gt, 4.0),
                rule("crit", Op::Gt, 8.0),
            ],
            count: 1,
            hyst: 0.0,
            nagios: false,
        }
    }
    fn run(f: Option<&Fitness>, st: &mut JudgeState, vals: &[Option<f64>]) -> Vec<usize> {
        vals.iter().map(|v| judge(f, &levels(), &nmap(), st, *v)).collect()
    }

    #[test]
    fn worst_holding_rule_else_best() {
        let f = cpu();
        let mut st = JudgeState::default();
        let got = run(Some(&f), &mut st, &[Some(0.5), Some(3.0), Some(5.0), Some(9.0), Some(1.0)]);
        assert_eq!(got, vec![0, 1, 2, 3, 0]);
        assert_eq!(st.last, Some(1.0));
    }

    #[test]
    fn every_operator() {
        let cases = [
            (Op::Gt, 5.0, false),
            (Op::Ge, 5.0, true),
            (Op::Lt, 5.0, false),
            (Op::Le, 5.0, true),
            (Op::Eq, 5.0, true),
            (Op::Ne, 5.0, false),
        ];
        for (op, v, want) in cases {
            let f = Fitness { rules: vec![rule("sick", op, 5.0)], ..cpu() };
            let got = judge(Some(&f), &levels(), &nmap(), &mut JudgeState::default(), Some(v));
            assert_eq!(got == 2, want, "{op:?}");
        }
    }

    #[test]
    fn missing_value_is_dead_at_once_even_with_count() {
        let f = Fitness { count: 3, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(1.0), None]), vec![0, 4]);
        // No fitness at all: missing is still dead, a value is the best.
        let mut st = JudgeState::default();
        assert_eq!(run(None, &mut st, &[Some(99.0), None, Some(1.0)]), vec![0, 4, 0]);
    }

    #[test]
    fn count_needs_consecutive_samples() {
        let f = Fitness { count: 3, ..cpu() };
        let mut st = JudgeState::default();
        let got = run(Some(&f), &mut st, &[Some(5.0), Some(5.0), Some(1.0), Some(5.0), Some(5.0)]);
        assert_eq!(got, vec![0, 0, 0, 0, 0]);
        assert_eq!(st.pending(), Some((2, 2)));
        assert_eq!(run(Some(&f), &mut st, &[Some(5.0)]), vec![2]);
        assert_eq!(st.pending(), None);
        // Recovery is immediate.
        assert_eq!(run(Some(&f), &mut st, &[Some(0.0)]), vec![0]);
    }

    #[test]
    fn count_with_mixed_worse_levels_moves_to_the_level_all_reached() {
        let f = Fitness { count: 3, ..cpu() };
        let mut st = JudgeState::default();
        let got = run(Some(&f), &mut st, &[Some(9.0), Some(5.0), Some(9.0), Some(9.0), Some(9.0)]);
        // Three samples at sick-or-worse move to sick; crit needs its own three.
        assert_eq!(got, vec![0, 0, 2, 2, 3]);
    }

    #[test]
    fn missing_value_during_a_count_resets_it() {
        let f = Fitness { count: 2, ..cpu() };
        let mut st = JudgeState::default();
        let got = run(Some(&f), &mut st, &[Some(5.0), None, Some(5.0)]);
        // dead at once; back from dead to sick at once (an improvement).
        assert_eq!(got, vec![0, 4, 2]);
        let mut st = JudgeState::default();
        let got =
            run(Some(&f), &mut st, &[Some(3.0), Some(3.0), Some(9.0), None, Some(1.0), Some(9.0)]);
        assert_eq!(got, vec![0, 1, 1, 4, 0, 0]);
        assert_eq!(st.pending(), Some((3, 1)));
    }

    #[test]
    fn hyst_holds_the_level_until_far_enough_back() {
        let f = Fitness { hyst: 10.0, ..cpu() };
        let mut st = JudgeState::default();
        // sick >4: recover only at <= 3.6; soso >2 holds until <= 1.8.
        let got = run(Some(&f), &mut st, &[Some(5.0), Some(3.9), Some(3.6), Some(1.9), Some(1.8)]);
        assert_eq!(got, vec![2, 2, 1, 1, 0]);
        // A drop from sick straight to 0 passes every margin.
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(5.0), Some(0.0)]), vec![2, 0]);
        // Hyst never makes a level worse: from fine, 3.9 is soso, not sick.
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(3.9)]), vec![1]);
    }

    #[test]
    fn hyst_on_lower_bounds_and_negative_thresholds() {
        // disk_avail: sick <10 GiB, hyst 20% -> recover at >= 12.
        let f = Fitness { rules: vec![rule("sick", Op::Lt, 10.0)], hyst: 20.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(9.0), Some(11.0), Some(12.0)]), vec![2, 2, 0]);
        // Negative threshold: sick > -10, hyst 10% -> recover at <= -11.
        let f = Fitness { rules: vec![rule("sick", Op::Gt, -10.0)], hyst: 10.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(-5.0), Some(-10.5), Some(-11.0)]), vec![2, 2, 0]);
        // Zero threshold: no margin.
        let f = Fitness { rules: vec![rule("sick", Op::Gt, 0.0)], hyst: 50.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(1.0), Some(0.0)]), vec![2, 0]);
    }

    #[test]
    fn hyst_on_inclusive_bounds_holds_at_the_moved_threshold() {
        // sick >=10, hyst 10%: held while >= 9.
        let f = Fitness { rules: vec![rule("sick", Op::Ge, 10.0)], hyst: 10.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(10.0), Some(9.0), Some(8.99)]), vec![2, 2, 0]);
        // sick <=10, hyst 20%: held while <= 12.
        let f = Fitness { rules: vec![rule("sick", Op::Le, 10.0)], hyst: 20.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(10.0), Some(12.0), Some(12.5)]), vec![2, 2, 0]);
        // The strict bounds recover exactly at the moved threshold.
        let f = Fitness { rules: vec![rule("sick", Op::Lt, 10.0)], hyst: 20.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(9.0), Some(11.99), Some(12.0)]), vec![2, 2, 0]);
    }

    #[test]
    fn hyst_never_holds_a_level_worse_than_the_current_one() {
        // Odd but valid rules: soso above 2, crit below 1. From soso, 1.2 is
        // fine by the rules; soso's margin holds it, crit's margin (1.2 <
        // 1.5) must not make it crit.
        let rules = vec![rule("soso", Op::Gt, 2.0), rule("crit", Op::Lt, 1.0)];
        let f = Fitness { rules, hyst: 50.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(3.0), Some(1.2), Some(0.9)]), vec![1, 1, 3]);
    }

    #[test]
    fn nagios_codes_have_no_hysteresis() {
        let f =
            Fitness { rules: vec![rule("crit", Op::Gt, 0.5)], nagios: true, hyst: 90.0, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(run(Some(&f), &mut st, &[Some(2.0), Some(1.0), Some(0.0)]), vec![3, 2, 0]);
    }

    #[test]
    fn pending_is_the_worst_level_still_counting() {
        let f = Fitness { count: 3, ..cpu() };
        let mut st = JudgeState::default();
        assert_eq!(st.pending(), None);
        assert_eq!(run(Some(&f), &mut st, &[Some(9.0), Some(9.0), Some(5.0)]), vec![0, 0, 2]);
        // sick reached its three; crit's streak broke at 5.0.
        assert_eq!(st.pending(), None);
        assert_eq!(run(Some(&f), &mut st, &[Some(9.0), Some(9.5)]), vec![2, 2]);
        assert_eq!(st.pending(), Some((3, 2)));
        assert_eq!(level_index(&levels(), "crit"), Some(3));
        assert_eq!(level_index(&levels(), "nope"), None);
    }

    #[test]
    fn count_and_hyst_together() {
        let f = Fitness { count: 2, hyst: 10.0, ..cpu() };
        let mut st = JudgeState::default();
        let got = run(Some(&f), &mut st, &[Some(5.0), Some(5.0), Some(3.8), Some(3.5), Some(5.0)]);
        assert_eq!(got, vec![0, 2, 2, 1, 1]);
        assert_eq!(run(Some(&f), &mut st, &[Some(5.0)]), vec![2]);
    }

    #[test]
    fn nagios_codes_map_through_the_map() {
        let f = Fitness { rules: vec![], nagios: true, ..cpu() };
        let mut st = JudgeState::default();
        let got = run(Some(&f), &mut st, &[Some(0.0), Some(1.0), Some(2.0), Some(3.0), Some(7.0)]);
        assert_eq!(got, vec![0, 2, 3, 1, 1]);
        assert_eq!(run(Some(&f), &mut st, &[Some(1.5), None]), vec![1, 4]);
    }

    #[test]
    fn nagios_with_count() {
        let f = Fitness { rules: vec![], nagios: true, count: 2, ..cpu() };
        let mut st = JudgeState::default();
        let got = run(Some(&f), &mut st, &[Some(2.0), Some(2.0), Some(0.0), Some(1.0), Some(1.0)]);
        assert_eq!(got, vec![0, 3, 0, 0, 2]);
    }

    #[test]
    fn unknown_level_names_are_ignored() {
        let f = Fitness { rules: vec![rule("bogus", Op::Gt, 0.0)], ..cpu() };
        assert_eq!(run(Some(&f), &mut JudgeState::default(), &[Some(1.0)]), vec![0]);
    }
}
