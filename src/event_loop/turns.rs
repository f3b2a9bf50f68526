//! What each loop turn cost, by source (issue 18): the loop times every
//! share it gives a source (heartbeat drains, accepts, command sessions,
//! outgoing calls, helper results, timers, reloads) and keeps, per source,
//! the longest share since start and how many shares ran over
//! [`SLOW_US`]. STATE shows it as `-- loop ...` lines, so a user whose
//! PINGs are slow can see which part of the daemon held the loop. Pure: it
//! imports nothing of the crate, so `state.rs` can hold a copy without
//! importing the loop back.

use std::fmt::Write;

/// A share longer than this (µs) is counted as slow: the command port's
/// answers are meant to stay under 5 ms (issue 18), and a turn is several
/// shares.
pub const SLOW_US: u64 = 2_000;

/// The sources a turn is shared among, in the order STATE lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Udp,
    Accept,
    Sessions,
    Calls,
    Results,
    Timers,
    Reload,
    /// What handlers asked for, carried out at the end of the turn (pool
    /// submissions, waiting sessions' answers, call starts).
    Effects,
}

pub const SOURCES: [Source; 8] = [
    Source::Udp,
    Source::Accept,
    Source::Sessions,
    Source::Calls,
    Source::Results,
    Source::Timers,
    Source::Reload,
    Source::Effects,
];

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Udp => "udp",
            Source::Accept => "accept",
            Source::Sessions => "sessions",
            Source::Calls => "calls",
            Source::Results => "results",
            Source::Timers => "timers",
            Source::Reload => "reload",
            Source::Effects => "effects",
        }
    }
}

/// Per source: shares run, the longest (µs), those over [`SLOW_US`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Share {
    pub runs: u64,
    pub max_us: u64,
    pub slow: u64,
}

/// The loop's turn figures since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct TurnStats {
    pub turns: u64,
    /// The longest whole turn (poll return to the next poll), µs.
    pub max_turn_us: u64,
    /// Turns longer than [`SLOW_US`].
    pub slow_turns: u64,
    pub shares: [Share; 8],
}

impl TurnStats {
    /// One share of `source` took `us` microseconds.
    pub fn note(&mut self, source: Source, us: u64) {
        let s = &mut self.shares[source as usize];
        s.runs += 1;
        s.max_us = s.max_us.max(us);
        if us > SLOW_US {
            s.slow += 1;
        }
    }

    /// A whole turn took `us` microseconds.
    pub fn turn(&mut self, us: u64) {
        self.turns += 1;
        self.max_turn_us = self.max_turn_us.max(us);
        if us > SLOW_US {
            self.slow_turns += 1;
        }
    }

    pub fn share(&self, source: Source) -> Share {
        self.shares[source as usize]
    }

    /// `-- loop turns 812 max_us 1450 slow 0`, then one line per source
    /// that ran: `-- loop udp runs 400 max_us 900 slow 0`.
    pub fn state_lines(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "-- loop turns {} max_us {} slow {}",
            self.turns, self.max_turn_us, self.slow_turns
        );
        for src in SOURCES {
            let s = self.share(src);
            if s.runs > 0 {
                let _ = writeln!(
                    out,
                    "-- loop {} runs {} max_us {} slow {}",
                    src.name(),
                    s.runs,
                    s.max_us,
                    s.slow
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_keep_their_longest_and_count_slow_ones() {
        let mut t = TurnStats::default();
        t.note(Source::Udp, 100);
        t.note(Source::Udp, SLOW_US + 1);
        t.note(Source::Timers, 7);
        t.turn(SLOW_US + 5);
        t.turn(10);
        let mut out = String::new();
        t.state_lines(&mut out);
        assert_eq!(
            out,
            format!(
                "-- loop turns 2 max_us {} slow 1\n\
                 -- loop udp runs 2 max_us {} slow 1\n\
                 -- loop timers runs 1 max_us 7 slow 0\n",
                SLOW_US + 5,
                SLOW_US + 1
            )
        );
    }
}
