//! Detection benchmark through the real daemon (issue 15): a release
//! `hbmon` server on loopback judging N fake hosts of its work, each sending
//! real HTB datagrams from its own 127.13.X.Y address at a 1 s interval with
//! send-time jitter and random loss, each with a command port that answers
//! the server's `PING` and `PROBE` like a client; some hosts die (they stop
//! sending and close their command port) at random times. Reports, per
//! detector, false alarms (late, unreachable or down events of a live host)
//! and false downs per 1,000 host-hours, and the median and p99 time from a
//! death to its down event, from the server's own events (`CLIENTS`).
//!
//! Default (`make bench`): 5 % loss, +-50 % jitter (the aim), each
//! detector, 200 hosts for 60 s. `HBMON_BENCH_DETECT=full`: every cell of
//! 0/1/5/10 % loss x +-10/50 % jitter. `HBMON_BENCH_HOSTS`,
//! `HBMON_BENCH_SECS`, `HBMON_BENCH_DEATHS` change the size.
//! Run: `cargo build --release && cargo run --release --example bench_detect_daemon`.
//!
//! Not modelled: probe loss (TCP over loopback loses nothing) and a
//! vanished box (a dead host here refuses at once, as a killed process on a
//! live machine does; a powered-off one would cost the probe timeout more).

use hbmon::wire::{encode, Value};
use std::collections::BinaryHeap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INTERVAL: f64 = 1.0;
/// Alarms in the first seconds (before every window has its samples) are
/// not counted, nor their host-time.
const WARMUP: f64 = 5.0;

struct Cell {
    detector: &'static str,
    line: &'static str,
    loss: f64,
    jitter: f64,
}

struct Size {
    hosts: usize,
    secs: f64,
    deaths: usize,
}

#[derive(Default)]
struct Outcome {
    host_hours: f64,
    false_alarms: u64,
    false_down: u64,
    /// Seconds from each death to its down, sorted.
    detect: Vec<f64>,
    missed: usize,
    /// Heartbeats sent (after loss).
    heartbeats: u64,
}

/// Seeded: the same deaths and losses each run.
use hbmon::server::detect_sim::Rng;

fn wall() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn host_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 13, (i / 250) as u8, (i % 250 + 2) as u8)
}

fn name(i: usize) -> String {
    format!("h{i:04}.bench.example")
}

/// A port free on the server's address and every host's.
fn free_port(srv: Ipv4Addr, hosts: usize) -> u16 {
    for _ in 0..100 {
        let Ok(l) = TcpListener::bind((srv, 0)) else { continue };
        let Ok(p) = l.local_addr().map(|a| a.port()) else { continue };
        drop(l);
        let ok = UdpSocket::bind((srv, p)).is_ok()
            && (0..hosts).all(|i| TcpListener::bind((host_ip(i), p)).is_ok());
        if ok {
            return p;
        }
    }
    panic!("no free port on 127.13.0.0/16");
}

fn start_server(
    dir: &std::path::Path,
    c: &Cell,
    n: usize,
    port: u16,
) -> hbmon::bench_daemon::Daemon {
    let ip = Ipv4Addr::new(127, 13, 255, 1);
    let mut work = format!(
        "host srv.bench.example srv {ip}\nserver srv\nport {port}\nhb_port {port}\n\
         ival_heartbeat {INTERVAL}s\ngrace 1s\nmissed 3\nival_make_state 1h\n{}\n",
        c.line
    );
    for i in 0..n {
        work.push_str(&format!("host {} h{i:04} {}\n", name(i), host_ip(i)));
    }
    hbmon::bench_daemon::start_server(dir, ip.into(), port, &work, "", Duration::from_secs(20))
        .expect("start hbmon")
        .child
}

fn cmd(to: SocketAddr, line: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(5)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

/// One command connection to a fake host: PING answers like a client;
/// PROBE connects to the suspect and says whether it could.
fn answer(mut s: TcpStream, me: &str) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut line = String::new();
    if BufReader::new(&s).read_line(&mut line).is_err() {
        return;
    }
    let w: Vec<&str> = line.split_whitespace().collect();
    let out = match w.as_slice() {
        ["PING", ..] => format!("COMMAND PING\nPONG from client {me}\nCOMMAND DONE\n"),
        ["PROBE", host, addr] => {
            let r = addr.parse::<SocketAddr>().map_err(|e| e.to_string()).and_then(|a| {
                TcpStream::connect_timeout(&a, Duration::from_secs(1)).map_err(|e| e.to_string())
            });
            match r {
                Ok(_) => format!("COMMAND PROBE\n{host}: PONG from client {host}\nCOMMAND DONE\n"),
                Err(e) => {
                    format!("COMMAND PROBE\n-- {host} unreachable: connect: {e}\nCOMMAND DONE\n")
                }
            }
        }
        _ => "COMMAND X\nCOMMAND ERROR unknown\n".to_string(),
    };
    let _ = s.write_all(out.as_bytes());
}

/// The fake hosts' command ports, until `stop`; a dead host's is closed.
fn responders(port: u16, n: usize, dead: Arc<Vec<AtomicBool>>, stop: Arc<AtomicBool>) {
    let mut ls: Vec<Option<TcpListener>> = (0..n)
        .map(|i| {
            let l = TcpListener::bind((host_ip(i), port)).expect("bind a host's command port");
            l.set_nonblocking(true).expect("nonblocking");
            Some(l)
        })
        .collect();
    while !stop.load(Ordering::Relaxed) {
        for (i, slot) in ls.iter_mut().enumerate() {
            if dead[i].load(Ordering::Relaxed) {
                *slot = None;
            }
            let Some(l) = slot else { continue };
            while let Ok((s, _)) = l.accept() {
                let _ = s.set_nonblocking(false);
                let me = name(i);
                std::thread::spawn(move || answer(s, &me));
            }
        }
        // sleep: the accept sweep's period (probes are rare, 5 ms is plenty)
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Sends every host's heartbeats for `secs`, killing the doomed ones at
/// their time; returns (start wall time, death wall times, heartbeats sent).
fn send(
    c: &Cell,
    sz: &Size,
    port: u16,
    dead: &[AtomicBool],
    rng: &mut Rng,
) -> (f64, Vec<Option<f64>>, u64) {
    let to = SocketAddr::from((Ipv4Addr::new(127, 13, 255, 1), port));
    let socks: Vec<UdpSocket> = (0..sz.hosts)
        .map(|i| {
            let s = UdpSocket::bind((host_ip(i), 0)).expect("bind a host's sender");
            s.set_nonblocking(true).expect("nonblocking");
            s
        })
        .collect();
    // Death times (seconds from the start) in the middle of the run.
    let death_at: Vec<Option<f64>> = (0..sz.hosts)
        .map(|i| (i < sz.deaths).then(|| sz.secs * (0.3 + 0.5 * rng.unit())))
        .collect();
    // (Reverse due time in µs, host, beat number)
    let mut heap = BinaryHeap::new();
    // Each host's phase: its k-th beat is due at `phase + k * INTERVAL`.
    let phase: Vec<f64> = (0..sz.hosts).map(|_| rng.unit() * INTERVAL).collect();
    for (i, p) in phase.iter().enumerate() {
        heap.push(std::cmp::Reverse(((p * 1e6) as u64, i, 0u64)));
    }
    let (start, t0) = (Instant::now(), wall());
    let mut died = vec![None; sz.hosts];
    let mut sent = 0u64;
    let mut ack = [0u8; 512];
    while let Some(std::cmp::Reverse((due, i, k))) = heap.pop() {
        let at = due as f64 / 1e6;
        if at >= sz.secs {
            break;
        }
        let now = start.elapsed().as_secs_f64();
        if at > now {
            // sleep: waiting for the next heartbeat's send time
            std::thread::sleep(Duration::from_secs_f64(at - now));
        }
        if let Some(d) = death_at[i].filter(|d| at >= *d) {
            if died[i].is_none() {
                dead[i].store(true, Ordering::Relaxed);
                died[i] = Some(t0 + d);
            }
            continue;
        }
        while socks[i].recv(&mut ack).is_ok() {}
        if rng.unit() >= c.loss {
            let ts = wall();
            let d = encode(
                "HTB",
                &[
                    ("name", Value::Str(name(i))),
                    ("ts", Value::Float(ts)),
                    ("seq", Value::Int(k as i64 + 1)),
                    ("interval", Value::Float(INTERVAL)),
                    ("rtt", Value::Float(0.1)),
                    ("ver", Value::Str(hbmon::VERSION.into())),
                ],
            );
            if socks[i].send_to(&d, to).is_ok() {
                sent += 1;
            }
        }
        // The next beat leaves at its slot plus jitter (a clock-driven sender).
        let slot = phase[i] + (k + 1) as f64 * INTERVAL;
        let next = slot + (rng.unit() * 2.0 - 1.0) * c.jitter * INTERVAL;
        heap.push(std::cmp::Reverse(((next.max(at) * 1e6) as u64, i, k + 1)));
    }
    (t0, died, sent)
}

fn run_cell(c: &Cell, sz: &Size, seed: u64) -> Outcome {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port(Ipv4Addr::new(127, 13, 255, 1), sz.hosts);
    let mut child = start_server(dir.path(), c, sz.hosts, port);
    let dead: Arc<Vec<AtomicBool>> =
        Arc::new((0..sz.hosts).map(|_| AtomicBool::new(false)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let r = {
        let (d, s) = (dead.clone(), stop.clone());
        let n = sz.hosts;
        std::thread::spawn(move || responders(port, n, d, s))
    };
    // Let the responders bind before the first heartbeat asks for probes.
    // sleep: a fixed start-up margin of the bench (no condition to await)
    std::thread::sleep(Duration::from_millis(200));
    let mut rng = Rng(seed);
    let (t0, died, heartbeats) = send(c, sz, port, &dead, &mut rng);
    let t_end = wall();
    let srv = SocketAddr::from((Ipv4Addr::new(127, 13, 255, 1), port));
    let mut o = Outcome { heartbeats, ..Outcome::default() };
    for (i, &death) in died.iter().enumerate() {
        let from = t0 + WARMUP;
        let until = death.unwrap_or(t_end);
        o.host_hours += (until - from).max(0.0) / 3600.0;
        let text = cmd(srv, &format!("CLIENTS {} heartbeat 1000", name(i))).unwrap_or_default();
        let body = hbmon::command::parse_answer(&text).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let evs = v["events"].as_array().cloned().unwrap_or_default();
        let mut found = None;
        for e in &evs {
            let (t, lvl) =
                (e["time"].as_f64().unwrap_or(0.0), e["new_level"].as_str().unwrap_or(""));
            if t < from || lvl == "fine" {
                continue;
            }
            if t < until {
                o.false_alarms += 1;
                o.false_down += (lvl == "dead") as u64;
            } else if death.is_some() && lvl == "dead" && found.is_none() {
                found = Some(t - until);
            }
        }
        match (death, found) {
            (Some(_), Some(s)) => o.detect.push(s),
            (Some(_), None) => o.missed += 1,
            _ => {}
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = r.join();
    let _ = child.kill();
    let _ = child.wait();
    o.detect.sort_by(|a, b| a.total_cmp(b));
    o
}

fn quantile(v: &[f64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn env_num(key: &str, default: f64) -> f64 {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let full = std::env::var("HBMON_BENCH_DETECT").is_ok_and(|v| v == "full");
    let sz = Size {
        hosts: env_num("HBMON_BENCH_HOSTS", 200.0) as usize,
        secs: env_num("HBMON_BENCH_SECS", 60.0),
        deaths: env_num("HBMON_BENCH_DEATHS", 20.0) as usize,
    };
    let grid: Vec<(f64, f64)> = if full {
        [0.0, 0.01, 0.05, 0.10].iter().flat_map(|&l| [(l, 0.1), (l, 0.5)]).collect()
    } else {
        vec![(0.05, 0.5)]
    };
    let detectors = [
        ("fixed (missed 3, grace 1 s)", "detector fixed"),
        ("phi 8 (grace 1 s)", "detector phi 8"),
        ("tuned + confirm (default)", ""),
    ];
    println!(
        "bench_detect_daemon: {} hosts x {} s at a {INTERVAL} s interval, {} deaths, real server over loopback{}",
        sz.hosts,
        sz.secs,
        sz.deaths,
        if full { " (full grid)" } else { " (aim cell; HBMON_BENCH_DETECT=full for the grid)" }
    );
    println!("| detector | loss | jitter | host-hours (heartbeats) | false alarms /1000h | false down /1000h | death->down median / p99 (s) | deaths missed |");
    println!("|---|---|---|---|---|---|---|---|");
    for (loss, jitter) in grid {
        for (name, line) in detectors {
            let c = Cell { detector: name, line, loss, jitter };
            let o = run_cell(&c, &sz, 15);
            let per = |n: u64| n as f64 * 1000.0 / o.host_hours.max(1e-9);
            println!(
                "| {} | {:.0}% | +-{:.0}% | {:.2} ({}) | {:.0} ({}) | {:.0} ({}) | {:.2} / {:.2} | {} |",
                c.detector,
                loss * 100.0,
                jitter * 100.0,
                o.host_hours,
                o.heartbeats,
                per(o.false_alarms),
                o.false_alarms,
                per(o.false_down),
                o.false_down,
                quantile(&o.detect, 0.5),
                quantile(&o.detect, 0.99),
                o.missed
            );
        }
    }
}
