//! hbmon's ingest vs the minimal Python asyncio server (bench/py_udp_server.py)
//! under the same load: one paced sender thread, same HTB datagrams, same
//! seconds; datagrams/s fully processed (decode + host update + ACK) and the
//! receiver's CPU seconds, and the ratio.
//!
//! cargo run --release --example bench_udp_compare [-- RATE SECS HOSTS]
//! (RATE 0 = as fast as the sender can.) Loopback only.

use hbmon::bench_udp::BenchIngest;
use hbmon::bench_udp::{datagrams, send_paced};
use hbmon::clock::Now;
use hbmon::server::hosts::{HostTable, TableConf};
use hbmon::work::model::Intervals;
use mio::{Events, Interest, Poll, Token};
use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn thread_cpu() -> f64 {
    // SAFETY: getrusage fills the struct; zeroed is a valid start.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn hbmon_side(
    rate: u64,
    secs: f64,
    hosts: u32,
) -> Result<(u64, u64, f64), Box<dyn std::error::Error>> {
    let mut sock = mio::net::UdpSocket::bind("127.0.0.1:0".parse()?)?;
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    let to = sock.local_addr()?;
    let mut poll = Poll::new()?;
    poll.registry().register(&mut sock, Token(0), Interest::READABLE)?;
    let mut events = Events::with_capacity(16);
    let mut table = HostTable::new(
        TableConf {
            intervals: Intervals { hbd_senders: 1_000_000, ..Intervals::default() },
            key: None,
        },
        &[],
    );
    let mut ingest = BenchIngest::new();
    let dg = datagrams(hosts, 10.0);
    let cpu0 = thread_cpu();
    let t0 = Instant::now();
    let sender = std::thread::spawn(move || send_paced(to, dg, rate as f64, secs));
    let end = Instant::now() + Duration::from_secs_f64(secs + 0.5);
    while Instant::now() < end {
        poll.poll(&mut events, Some(Duration::from_millis(10)))?;
        let now = Now { mono: t0.elapsed().as_secs_f64(), wall: Now::wall_now() };
        ingest.drain(&sock, &mut table, now, usize::MAX)?;
    }
    let sent = sender.join().map_err(|_| "sender panicked")??;
    Ok((sent, table.stats().accepted, thread_cpu() - cpu0))
}

fn python_side(
    rate: u64,
    secs: f64,
    hosts: u32,
) -> Result<(u64, u64, f64), Box<dyn std::error::Error>> {
    let port = {
        let s = UdpSocket::bind("127.0.0.1:0")?;
        s.local_addr()?.port()
    };
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/py_udp_server.py");
    let mut child = Command::new("python3")
        .args([script, "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let r = python_load(port, rate, secs, hosts);
    // Our own child, stopped by its pid whatever happened.
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    r
}

fn python_load(
    port: u16,
    rate: u64,
    secs: f64,
    hosts: u32,
) -> Result<(u64, u64, f64), Box<dyn std::error::Error>> {
    let to = format!("127.0.0.1:{port}").parse()?;
    let q = UdpSocket::bind("127.0.0.1:0")?;
    q.set_read_timeout(Some(Duration::from_secs(1)))?;
    let stats = |q: &UdpSocket| -> Result<(u64, f64), Box<dyn std::error::Error>> {
        let mut buf = [0u8; 256];
        // Python may still be starting, or busy with a backlog: ask again.
        let mut got = None;
        for _ in 0..20 {
            q.send_to(b"STATS", to)?;
            if let Ok((n, _)) = q.recv_from(&mut buf) {
                got = Some(n);
                break;
            }
        }
        let n = got.ok_or("python server does not answer STATS")?;
        let t = String::from_utf8_lossy(&buf[..n]).to_string();
        let w: Vec<&str> = t.split_whitespace().collect();
        Ok((w[3].parse()?, w[7].parse()?))
    };
    let (acc0, cpu0) = stats(&q)?;
    let dg = datagrams(hosts, 10.0);
    let sent = send_paced(to, dg, rate as f64, secs)?;
    std::thread::sleep(Duration::from_millis(500));
    let (acc, cpu1) = stats(&q)?;
    Ok((sent, acc - acc0, cpu1 - cpu0))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let rate: u64 = a.get(1).and_then(|x| x.parse().ok()).unwrap_or(0);
    let secs: f64 = a.get(2).and_then(|x| x.parse().ok()).unwrap_or(2.0);
    let hosts: u32 = a.get(3).and_then(|x| x.parse().ok()).unwrap_or(10_000);
    println!(
        "compare: rate {} secs {secs} hosts {hosts}",
        if rate == 0 { "max".into() } else { rate.to_string() }
    );
    let (hs, ha, hc) = hbmon_side(rate, secs, hosts)?;
    let (ps, pa, pc) = python_side(rate, secs, hosts)?;
    let line = |n: &str, s: u64, acc: u64, cpu: f64| {
        println!(
            "{n:>7}: sent {s} processed {acc} ({:.0}/s) receiver cpu {cpu:.2}s -> {:.2} us/datagram",
            acc as f64 / secs,
            1e6 * cpu / acc.max(1) as f64
        )
    };
    line("hbmon", hs, ha, hc);
    println!(
        "  hbmon receiver: {:.1}% of a core; process max RSS {} MiB (table + buffers + sender)",
        100.0 * hc / (secs + 0.5),
        hbmon::bench_udp::process_usage().1 / 1024
    );
    line("python", ps, pa, pc);
    let per_h = hc / ha.max(1) as f64;
    let per_p = pc / pa.max(1) as f64;
    println!("ratio (python cpu per datagram / hbmon cpu per datagram): {:.1}x", per_p / per_h);
    Ok(())
}
