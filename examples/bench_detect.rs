//! Detection benchmark (issue 15), over the pure simulation of
//! `src/server/detect_sim/mod.rs` (simulated clock, the real detector code): for
//! each detector at 0/1/5/10 % loss and +-10/+-50 % send jitter, false late
//! and false down per 1,000 host-hours and the median and p99 time from a
//! death to its down, in heartbeat intervals. 1,000 host-hours per cell.
//!
//! The same through the real daemon over loopback (fake hosts sending HTB
//! datagrams): `examples/bench_detect_daemon.rs`.

use hbmon::server::detect_sim::{simulate, Confirm, SimConf, SimDetector};
use hbmon::server::detector::TUNED_SUSPECT;
use std::time::Instant;

fn main() {
    let confirm = Confirm { timeout: 0.3, peers: 3, attempts: 3, suspect: TUNED_SUSPECT };
    let detectors = [
        ("fixed (missed 3, grace 1)", SimDetector::Fixed { grace: 1.0, missed: 3 }),
        ("phi 8 (grace 1)", SimDetector::Phi { threshold: 8.0, grace: 1.0 }),
        ("tuned + confirm (the default)", SimDetector::TunedConfirmed(confirm)),
    ];
    println!(
        "| detector | loss | jitter | false late /1000h | false down /1000h | death->down median / p99 (intervals) | heartbeats/s simulated |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (name, d) in detectors {
        for loss in [0.0, 0.01, 0.05, 0.10] {
            for jitter in [0.1, 0.5] {
                let c = SimConf { hosts: 1100, beats: 3600, loss, jitter, deaths: 200, seed: 15 };
                let t = Instant::now();
                let r = simulate(&c, d);
                let secs = t.elapsed().as_secs_f64();
                println!(
                    "| {name} | {:.0}% | +-{:.0}% | {:.1} | {:.1} | {:.2} / {:.2} | {:.1} M |",
                    loss * 100.0,
                    jitter * 100.0,
                    r.per_1000h(r.false_late),
                    r.per_1000h(r.false_down),
                    r.quantile(0.5),
                    r.quantile(0.99),
                    r.heartbeats as f64 / secs / 1e6
                );
            }
        }
    }
}
