//! Notifier throughput: events routed and queued, jobs handed out and marked
//! done, on an in-memory server.db (no channels run). Prints medians.
//! `cargo run --release --example bench_notify`

use hbmon::event::Event;
use hbmon::notify::{Notifier, NotifyDone};
use hbmon::work::model::{AlertRule, Channel, Intervals, Level, Noise, ServerWork, User};
use std::time::Instant;

const HOSTS: usize = 500;
const RUNS: usize = 7;

fn work() -> ServerWork {
    ServerWork {
        users: vec![User { name: "ops".into(), channels: vec!["hook".into()] }],
        channels: vec![Channel {
            name: "hook".into(),
            kind: "webhook".into(),
            target: "http://127.0.0.1:9/".into(),
            options: Default::default(),
        }],
        alerts: vec![AlertRule {
            hosts: vec!["*".into()],
            item: "*".into(),
            level: "sick".into(),
            users: vec!["ops".into()],
        }],
        // No storm: measure the per-event path, not digests.
        noise: Noise { storm_events: u32::MAX, ..Noise::default() },
        ..Default::default()
    }
}

fn main() {
    let levels: Vec<Level> =
        ["ok", "sick"].iter().map(|n| Level { name: n.to_string(), long: n.to_string() }).collect();
    let mut per_event = Vec::new();
    for _ in 0..RUNS {
        let c = hbmon::server::db::open_in_memory().expect("sqlite");
        let mut n = Notifier::new(&c, &work(), &levels, &Intervals::default(), None).expect("new");
        let t0 = Instant::now();
        for (i, new) in [(0, "sick"), (1, "ok")] {
            for h in 0..HOSTS {
                let ev = Event {
                    id: format!("{h}-{i}"),
                    host: format!("h{h}.x"),
                    item: "heartbeat".into(),
                    old_level: None,
                    new_level: new.into(),
                    old_value: None,
                    new_value: Some(1.0),
                    time: i as f64,
                    message: String::new(),
                };
                n.on_event(&c, &ev, "up", i as f64).expect("event");
                for j in n.tick(&c, i as f64).expect("tick") {
                    n.on_done(&c, NotifyDone { id: j.id, result: Ok(()) }, i as f64).expect("done");
                }
            }
        }
        per_event.push(t0.elapsed().as_secs_f64() * 1e6 / (2 * HOSTS) as f64);
    }
    per_event.sort_by(f64::total_cmp);
    println!(
        "bench_notify: {HOSTS} hosts down then up, {RUNS} runs: median {:.1} us per event \
         (on_event + tick + on_done, one webhook delivery each)",
        per_event[RUNS / 2]
    );
}
