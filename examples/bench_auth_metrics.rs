//! The pure parts of the dashboard's logins and `/metrics`: the time to
//! render `/metrics` from a CLIENTS answer of 10,000 hosts x 10 items (plus
//! a DUMP), and an argon2id hash and verification at the OWASP setting.
//! Medians of several runs. Run: `cargo run --release --example bench_auth_metrics`.

use hbmon::pagemaker::auth::{hash_password, verify_password};
use hbmon::pagemaker::metrics::{render_at, render_visible};
use serde_json::{json, Map, Value};
use std::time::Instant;

/// CPU seconds this thread has used: on a loaded machine, wall time says
/// more about the neighbours than about the code.
fn cpu() -> f64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) };
    t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn clients(hosts: usize, items: usize) -> Value {
    let levels = ["fine", "soso", "sick", "crit", "dead"];
    let mut cdmp = Map::new();
    for h in 0..hosts {
        let mut its = Map::new();
        for i in 0..items {
            let v = ((h * 31 + i * 7) % 1000) as f64 / 10.0;
            its.insert(
                format!("item_{i}:/path"),
                json!({"value": v, "level": levels[(h + i) % 5], "message": "", "error": null, "time": 1.8e9}),
            );
        }
        cdmp.insert(
            format!("host{h:05}.bench.example.org"),
            json!({"tag": format!("host{h:05}"), "address": "127.0.0.1",
                   "heartbeat": {"state": "up", "rtt_ms": 0.5, "phi": 0.3, "seen": 1.0, "version": "hbmon-0.1.0"},
                   "report": {"time": 1.8e9, "age": 1.0, "items": its}}),
        );
    }
    json!({"resp": "ok clients", "cdmp": cdmp, "events": []})
}

fn main() {
    let levels: Vec<String> =
        ["fine", "soso", "sick", "crit", "dead"].iter().map(|s| s.to_string()).collect();
    let c = clients(10_000, 10);
    let d = json!({"counters": {"commands": 5, "refused": {}},
                   "server": {"stats": {"reports": 1}, "notify": {"alerts": [], "outbox": {}},
                              "udp": {"udp": {"received": 1}, "refused": {}, "hosts": []}}});
    let (mut wall, mut cpus) = (Vec::new(), Vec::new());
    let mut size = 0;
    for _ in 0..7 {
        let (t, c0) = (Instant::now(), cpu());
        let text = render_at(&c, Some(&d), &levels, 1.8e9);
        wall.push(t.elapsed().as_secs_f64() * 1000.0);
        cpus.push((cpu() - c0) * 1000.0);
        size = text.len();
    }
    println!(
        "metrics render, 10000 hosts x 10 items: median {:.1} ms CPU, {:.1} ms wall ({:.1} MB of text, {} runs)",
        median(cpus),
        median(wall),
        size as f64 / 1e6,
        7
    );
    // The /metrics route as it was (clone the cached answer, filter the
    // clone by visibility, render) and as it is (render by reference with
    // the visibility test inline). A work-like host index for the test.
    let ix: std::collections::HashMap<String, usize> = c["cdmp"]
        .as_object()
        .map(|m| m.keys().enumerate().map(|(i, k)| (k.clone(), i)).collect())
        .unwrap_or_default();
    let see = |h: &str| ix.get(h).is_some_and(|i| i % 2 == 0);
    let (mut before, mut after, mut part) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..7 {
        let c0 = cpu();
        let mut copy = c.clone();
        if let Some(Value::Object(m)) = copy.get_mut("cdmp") {
            m.retain(|h, _| ix.contains_key(h));
        }
        std::hint::black_box(render_at(&copy, Some(&d), &levels, 1.8e9));
        drop(copy);
        before.push((cpu() - c0) * 1000.0);
        let c0 = cpu();
        std::hint::black_box(render_visible(&c, Some(&d), &levels, 1.8e9, &|h| ix.contains_key(h)));
        after.push((cpu() - c0) * 1000.0);
        let c0 = cpu();
        std::hint::black_box(render_visible(&c, None, &levels, 1.8e9, &see));
        part.push((cpu() - c0) * 1000.0);
    }
    println!(
        "/metrics route, 10000 hosts x 10 items, CPU medians: clone+filter+render (before) {:.1} ms; \
         render by reference (now) {:.1} ms; a non-admin seeing half the hosts {:.1} ms",
        median(before),
        median(after),
        median(part)
    );
    let (mut h, mut v) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        let t = Instant::now();
        let hash = hash_password("correct horse battery staple").unwrap();
        h.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        assert!(verify_password(&hash, "correct horse battery staple"));
        v.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    println!(
        "argon2id m=19456 t=2 p=1: hash median {:.1} ms, verify median {:.1} ms",
        median(h),
        median(v)
    );
}
