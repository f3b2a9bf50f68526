//! The dashboard's costs (issue 11): server-side render time of `/` and
//! `/hosts` with 10,000 hosts x 10 items in the state, a year graph's SVG,
//! `/metrics` for the same fleet, and requests/s for `/` with 16
//! concurrent clients against a real release `hbmon` (solo work, all roles).
//! Run: `cargo build --release && cargo run --release --example bench_dashboard`.

use hbmon::pagemaker::fetch::{parse_clients, Snapshot};
use hbmon::pagemaker::{pages, svg, Site};
use hbmon::work::model::{HostEntry, Ports, Work};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HOSTS: usize = 10_000;
const ITEMS: [&str; 10] = [
    "cpu_load",
    "cpu_pct",
    "mem_used",
    "swap_used",
    "disk_used:/",
    "disk_used:/var",
    "inode_used:/",
    "uptime",
    "procs",
    "net_rx:eth0",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time<T>(runs: usize, mut f: impl FnMut() -> T) -> f64 {
    let v: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    median(v)
}

/// A CLIENTS answer for 10,000 hosts: 2 % down, 1 in 50 items not fine.
fn clients(now: f64) -> Value {
    let levels = ["fine", "soso", "sick", "crit", "dead"];
    let mut cdmp = serde_json::Map::new();
    for i in 0..HOSTS {
        let mut items = serde_json::Map::new();
        for (k, it) in ITEMS.iter().enumerate() {
            let lv = if (i * 7 + k) % 50 == 0 { levels[1 + (i + k) % 4] } else { "fine" };
            items.insert(
                it.to_string(),
                json!({"value": (i % 97) as f64 * 1.01, "level": lv, "message": "", "error": null, "time": now - 30.0}),
            );
        }
        let state = if i % 50 == 0 { "down" } else { "up" };
        cdmp.insert(
            format!("h{i:05}.example.org"),
            json!({"tag": format!("h{i:05}"), "address": format!("10.0.{}.{}", i / 250, i % 250),
                   "heartbeat": {"state": state, "rtt_ms": 0.4, "phi": 0.2, "seen": 3.0, "version": "hbmon-0.1.0", "uptime": 86400.0},
                   "report": {"time": now - 30.0, "age": 30.0, "items": items}}),
        );
    }
    json!({"resp": "ok clients", "cdmp": cdmp, "events": [], "notify": {"alerts": [], "silences": [], "outbox": {"pending": 0, "failed": 0}}})
}

fn site() -> Site {
    let mut w: Work = hbmon::work::solo("solo.example.org").expect("the embedded solo work");
    if let Some(p) = w.pmaker_part.as_mut() {
        p.hosts = (0..HOSTS)
            .map(|i| HostEntry {
                host: format!("h{i:05}.example.org"),
                tag: format!("h{i:05}"),
                address: String::new(),
                ports: Ports::default(),
                groups: vec!["all".into(), format!("g{}", i % 20)],
            })
            .collect();
    }
    Site::from_work(&w)
}

fn get(addr: SocketAddr, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    let _ = s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    );
    let mut b = Vec::new();
    let _ = s.read_to_end(&mut b);
    b.starts_with(b"HTTP/1.1 200")
}

fn main() {
    let now = 1.8e9;
    let raw = clients(now);
    let site = site();
    let snap = Snapshot {
        fleet: Arc::new(parse_clients(&raw)),
        raw: Arc::new(raw.clone()),
        fetched: now,
        error: None,
    };
    println!(
        "dashboard render, {HOSTS} hosts x {} items (release, one thread; median of 15)",
        ITEMS.len()
    );
    let parse = time(5, || parse_clients(&raw));
    println!("  parse the CLIENTS answer (once per cache interval): {parse:.1} ms");
    let p = time(15, || pages::render_problems(&site, &snap, None, now).into_string());
    let size = pages::render_problems(&site, &snap, None, now).into_string().len();
    println!("  /        {p:.1} ms  ({} KiB)", size / 1024);
    let h =
        time(15, || pages::render_hosts(&site, &snap, None, None, "host", 0, now).into_string());
    println!("  /hosts   {h:.1} ms (first page of {})", pages::HOSTS_PER_PAGE);
    let g = time(15, || {
        pages::render_hosts(&site, &snap, None, Some("g3"), "level", 0, now).into_string()
    });
    println!("  /hosts?group=g3&sort=level {g:.1} ms");
    // A year graph: 184 two-day buckets, three hosts' series on one chart.
    let t0 = now - 368.0 * 86400.0;
    let series: Vec<svg::Series> = (0..3)
        .map(|k| svg::Series {
            label: format!("h{k} cpu_load"),
            points: (0..184)
                .map(|i| {
                    (
                        t0 + i as f64 * 172800.0,
                        (i % 40 != 7).then_some(((i * (k + 3)) % 23) as f64 / 4.0),
                    )
                })
                .collect(),
        })
        .collect();
    let chart = svg::Chart {
        title: "year".into(),
        unit: String::new(),
        w: 900,
        h: 320,
        t0,
        t1: now,
        bands: Vec::new(),
        note: None,
    };
    let y1 = time(51, || svg::chart(&chart, &series[..1]));
    let y3 = time(51, || svg::chart(&chart, &series));
    println!(
        "  year graph SVG: one series {:.3} ms, three {:.3} ms ({} KiB)",
        y1,
        y3,
        svg::chart(&chart, &series).len() / 1024
    );
    let levels: Vec<String> = site.levels.iter().map(|l| l.name.clone()).collect();
    let m = time(7, || hbmon::pagemaker::metrics::render_at(&raw, None, &levels, now));
    let msize = hbmon::pagemaker::metrics::render_at(&raw, None, &levels, now).len();
    println!("  /metrics {m:.1} ms ({} KiB)", msize / 1024);
    requests_per_second();
}

/// A real release hbmon, solo work (all roles), and 16 clients on `/`.
fn requests_per_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ip = "127.0.91.1";
    let port = 45_106;
    let conf = dir.path().join("hbmon.conf");
    std::fs::write(
        &conf,
        format!("hostname solo.example.org\nbind {ip}\nport {port}\nhb_port {port}\nhttp_port {}\nvardir {d}/var\nlogdir {d}/log\nrundir {d}/run\nloglvl quiet\n", port + 1, d = dir.path().display()),
    )
    .expect("conf");
    let bin = hbmon::bench_daemon::bench_bin();
    let bin = bin.as_str();
    let mut child = std::process::Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .args(["start", "-i"])
        .spawn()
        .expect("start hbmon (build it with --release first)");
    let addr: SocketAddr = format!("{ip}:{}", port + 1).parse().expect("addr");
    let t = Instant::now();
    while !get(addr, "/") {
        assert!(t.elapsed() < Duration::from_secs(20), "the dashboard did not answer");
        std::thread::sleep(Duration::from_millis(100));
    }
    for clients in [1usize, 16] {
        let secs = 3.0;
        let start = Instant::now();
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    while start.elapsed().as_secs_f64() < secs {
                        if get(addr, "/") {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
        println!("  GET / on a real daemon (solo, all roles), {clients:2} concurrent clients: {:.0} requests/s", total as f64 / secs);
    }
    let _ = child.kill();
    let _ = child.wait();
}
