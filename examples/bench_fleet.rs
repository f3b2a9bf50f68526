//! The server's fleet side against a real release `hbmon`: a work of
//! 10,000 hosts (127.9.x.y), REPORT ingest from 1,000 simulated clients
//! (each report from its own host's address, a new connection each, as
//! clients do), then CLIENTS latency with 10,000 hosts in the state, and
//! how long CLIENTS holds the event loop: PING latency while another
//! connection asks CLIENTS back to back (the JSON is built off the loop,
//! so PING should not wait for it).
//! Run: `cargo build --release && cargo run --release --example bench_fleet`.

use hbmon::bench_daemon::{figure, Better};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const HOSTS: usize = 10_000;
const CLIENTS: usize = 1_000;

fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 9, (i / 250 + 1) as u8, (i % 250 + 1) as u8)
}

fn send_from(src: Option<Ipv4Addr>, to: SocketAddr, line: &str) -> String {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    if let Some(ip) = src {
        s.bind(&SocketAddr::new(IpAddr::V4(ip), 0).into()).expect("bind");
    }
    s.connect(&to.into()).expect("connect");
    let mut s: TcpStream = s.into();
    s.write_all(line.as_bytes()).expect("send");
    s.write_all(b"\n").expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    out
}

fn report(i: usize) -> String {
    let mut items = serde_json::Map::new();
    for (k, v) in [
        ("cpu_load", 0.42),
        ("mem_used", 51.0),
        ("disk_used:/", 71.5),
        ("uptime", 86400.0),
        ("procs", 180.0),
    ] {
        items.insert(k.into(), serde_json::json!({"value": v, "level": "fine", "message": "", "error": null, "time": 1.0}));
    }
    let body =
        serde_json::json!({"host": format!("h{i}.bench.example"), "time": 1.0, "items": items});
    format!("REPORT {body}")
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let srv = Ipv4Addr::new(127, 9, 0, 1);
    let port = hbmon::bench_daemon::free_port(srv.into()).expect("free port");
    let mut work = format!("host srv.bench.example srv {srv}\nserver srv\nport {port}\nhb_port {port}\nival_make_state 1h\nival_heartbeat 1h\n");
    for i in 0..HOSTS {
        work.push_str(&format!("host h{i}.bench.example h{i} {}\n", host_ip(i)));
    }
    let t = Instant::now();
    let started = hbmon::bench_daemon::start_server(
        dir.path(),
        srv.into(),
        port,
        &work,
        "",
        Duration::from_secs(60),
    )
    .expect("start hbmon");
    let (mut child, addr) = (started.child, started.addr);
    println!(
        "server with a {HOSTS}-host work (mkwork at start included) up in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    // Let the start-up ALLSEND to 10,000 absent clients finish.
    std::thread::sleep(Duration::from_secs(3));

    let reports: Vec<String> = (0..CLIENTS).map(report).collect();
    let rounds = 5;
    for threads in [1usize, 4] {
        let t = Instant::now();
        let per = CLIENTS / threads;
        let hs: Vec<_> = (0..threads)
            .map(|k| {
                let reports = reports[k * per..(k + 1) * per].to_vec();
                std::thread::spawn(move || {
                    for _ in 0..rounds {
                        for (j, r) in reports.iter().enumerate() {
                            let a = send_from(Some(host_ip(k * per + j)), addr, r);
                            assert!(a.contains("ok report"), "{a}");
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().expect("sender");
        }
        let rate = (per * threads * rounds) as f64 / t.elapsed().as_secs_f64();
        println!("REPORT ingest, {CLIENTS} clients x {rounds}, {threads} sender thread(s): {rate:.0} reports/s");
        let what = format!("REPORT ingest, {threads} sender(s)");
        figure("bench_fleet", &what, rate, "reports/s", Better::Higher);
    }
    for (what, line) in
        [("CLIENTS (all 10,000 hosts)", "CLIENTS"), ("CLIENTS h5 (one host)", "CLIENTS h5")]
    {
        let mut v: Vec<f64> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let a = send_from(None, addr, line);
                assert!(a.ends_with("COMMAND DONE\n"));
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let size = send_from(None, addr, line).len();
        let (med, p90) = (pct(&mut v, 0.5), pct(&mut v, 0.9));
        println!("{what}: median {med:.1} ms, p90 {p90:.1} ms, answer {} KiB", size / 1024);
        figure("bench_fleet", &format!("{what} median"), med, "ms", Better::Lower);
    }
    // The loop's share of CLIENTS: PINGs (a new connection each, every
    // 5 ms) while another thread asks CLIENTS back to back, against PINGs
    // on an idle server.
    let ping = |stop: &dyn Fn(usize) -> bool| -> Vec<f64> {
        let mut v = Vec::new();
        while !stop(v.len()) {
            let t = Instant::now();
            let a = send_from(None, addr, "PING");
            assert!(a.contains("PONG"), "{a}");
            v.push(t.elapsed().as_secs_f64() * 1000.0);
            // sleep: the pace of a bench's probe, not a wait for a condition.
            std::thread::sleep(Duration::from_millis(5));
        }
        v
    };
    let mut idle = ping(&|n| n >= 200);
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let asker = {
        let answered = answered.clone();
        std::thread::spawn(move || {
            for _ in 0..20 {
                let a = send_from(None, addr, "CLIENTS");
                assert!(a.ends_with("COMMAND DONE\n"));
                answered.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        })
    };
    let mut busy = ping(&|_| answered.load(std::sync::atomic::Ordering::Relaxed) >= 20);
    asker.join().expect("CLIENTS asker");
    println!(
        "PING idle: median {:.2} ms, p99 {:.2} ms; during 20 back-to-back CLIENTS ({} PINGs): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        pct(&mut idle, 0.5),
        pct(&mut idle, 0.99),
        busy.len(),
        pct(&mut busy, 0.5),
        pct(&mut busy, 0.99),
        pct(&mut busy, 1.0)
    );
    let st = send_from(None, addr, "STATE");
    if let Some(l) = st.lines().find(|l| l.starts_with("-- cpu_seconds")) {
        println!("server {l}");
    }
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    if let Some(l) = status.lines().find(|l| l.starts_with("VmRSS")) {
        println!("server {l}");
    }
    let _ = child.kill();
    let _ = child.wait();
}
