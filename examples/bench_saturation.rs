//! Ingest at saturation, pinned (issue 18): the receiver on core 0, one
//! sender thread on core 1 sending as fast as it can (sendmmsg, HTB of
//! 10,000 hosts), for SECS each, three receivers one after the other in the
//! same run: hbmon's Ingest + HostTable (decode, verify, table, ACK sent),
//! a plain Rust loop (recvmmsg + inflate + split pairs + HashMap update, no
//! ACK) and the Python asyncio server (bench/py_udp_server.py, under
//! `taskset -c 0`). Prints datagrams/s processed and the ratios.
//!
//! cargo run --release --example bench_saturation [-- SECS HOSTS]
//! Needs 2 cores; loopback only.

use hbmon::bench_udp::datagrams;
use hbmon::bench_udp::BenchIngest;
use hbmon::clock::Now;
use hbmon::event_loop::mmsg::{recv_batch, send_batch, BATCH, RECV_BUF};
use hbmon::server::hosts::{HostTable, TableConf};
use hbmon::work::model::Intervals;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pin(core: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The sender: pinned to core 1, full speed until `stop`.
fn sender(to: SocketAddr, hosts: u32, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        pin(1);
        let dg = datagrams(hosts, 10.0);
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind sender");
        let addrs = vec![to; BATCH];
        let (mut sent, mut next) = (0u64, 0usize);
        while !stop.load(Ordering::Relaxed) {
            let n = BATCH.min(dg.len() - next);
            let k = send_batch(&sock, &dg[next..next + n], &addrs[..n]);
            sent += k as u64;
            next = (next + n) % dg.len();
            if k == 0 {
                std::thread::yield_now();
            }
        }
        sent
    })
}

/// Runs `recv` (pinned to core 0) against a full-speed sender for `secs`;
/// returns (sent, processed).
fn run(
    secs: f64,
    hosts: u32,
    mut recv: impl FnMut(&mio::net::UdpSocket, f64) -> u64 + Send,
) -> (u64, u64) {
    let sock = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let to = sock.local_addr().expect("addr");
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    let processed = std::thread::scope(|s| {
        let r = s.spawn(|| {
            pin(0);
            recv(&sock, secs)
        });
        let tx = sender(to, hosts, stop.clone());
        let processed = r.join().expect("receiver");
        stop.store(true, Ordering::Relaxed);
        (tx.join().expect("sender"), processed)
    });
    processed
}

/// Busy-polls the socket (a saturated receiver never sleeps) until `secs`.
fn until(secs: f64, mut step: impl FnMut() -> u64) -> u64 {
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < secs {
        n += step();
    }
    n
}

fn hbmon_loop(sock: &mio::net::UdpSocket, secs: f64, hosts: u32) -> u64 {
    let intervals = Intervals { hbd_senders: hosts + 10, ..Intervals::default() };
    let mut table = HostTable::new(TableConf { intervals, key: None }, &[]);
    let mut ingest = BenchIngest::new();
    let t0 = Instant::now();
    until(secs, || {
        let now = Now { mono: t0.elapsed().as_secs_f64(), wall: Now::wall_now() };
        let _ = ingest.drain(sock, &mut table, now, hbmon::server::udp::TURN);
        0
    });
    table.stats().accepted
}

fn plain_loop(sock: &mio::net::UdpSocket, secs: f64) -> u64 {
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; RECV_BUF]).collect();
    let mut lens = [(0usize, None::<SocketAddr>); BATCH];
    let mut z = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut map: HashMap<String, (f64, u64)> = HashMap::new();
    until(secs, || {
        let Ok(n) = recv_batch(sock, &mut bufs, &mut lens) else { return 0 };
        let mut ok = 0;
        for (i, &(len, _)) in lens.iter().enumerate().take(n) {
            let d = &bufs[i][..len];
            if d.len() < 5 || d[0] != b'!' {
                continue;
            }
            z.reset(true);
            out.clear();
            if z.decompress_vec(&d[5..], &mut out, flate2::FlushDecompress::Finish).is_err() {
                continue;
            }
            let Ok(text) = std::str::from_utf8(&out) else { continue };
            let mut name = "";
            let mut ts = 0.0;
            for pair in text.split(';') {
                match pair.split_once('=') {
                    Some(("name", v)) => name = v,
                    Some(("ts", v)) => ts = v.parse().unwrap_or(0.0),
                    _ => {}
                }
            }
            match map.get_mut(name) {
                Some(r) => *r = (ts, r.1 + 1),
                None => {
                    map.insert(name.to_string(), (ts, 1));
                }
            }
            ok += 1;
        }
        ok
    })
}

fn python(secs: f64, hosts: u32) -> Result<(u64, u64), Box<dyn std::error::Error>> {
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/py_udp_server.py");
    let mut child = std::process::Command::new("taskset")
        .args(["-c", "0", "python3", script, "--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let to: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    let q = UdpSocket::bind("127.0.0.1:0")?;
    q.set_read_timeout(Some(Duration::from_secs(1)))?;
    let accepted = |q: &UdpSocket| -> Option<u64> {
        let mut buf = [0u8; 256];
        for _ in 0..30 {
            q.send_to(b"STATS", to).ok()?;
            if let Ok((n, _)) = q.recv_from(&mut buf) {
                let t = String::from_utf8_lossy(&buf[..n]).to_string();
                return t.split_whitespace().nth(3)?.parse().ok();
            }
        }
        None
    };
    let r = (|| {
        let a0 = accepted(&q).ok_or("python server does not answer")?;
        let stop = Arc::new(AtomicBool::new(false));
        let tx = sender(to, hosts, stop.clone());
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let sent = tx.join().map_err(|_| "sender")?;
        // What it took in those seconds (its backlog is dropped by the kernel).
        let a1 = accepted(&q).ok_or("python server does not answer")?;
        Ok::<_, Box<dyn std::error::Error>>((sent, a1 - a0))
    })();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    r
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let secs: f64 = a.get(1).and_then(|x| x.parse().ok()).unwrap_or(3.0);
    let hosts: u32 = a.get(2).and_then(|x| x.parse().ok()).unwrap_or(10_000);
    println!("saturation: receiver on core 0, sender on core 1, {secs} s each, {hosts} hosts");
    if std::thread::available_parallelism().map_or(0, |n| n.get()) < 2 {
        println!("  warning: fewer than 2 cores: receiver and sender share one, rates are not comparable");
    }
    let (hs, hp) = run(secs, hosts, |s, t| hbmon_loop(s, t, hosts));
    let (ps, pp) = run(secs, hosts, plain_loop);
    let (ys, yp) = python(secs, hosts)?;
    let rate = |p: u64| p as f64 / secs;
    println!(
        "  hbmon (decode+table+ACK): {:>9.0}/s processed (sender made {:.0}/s)",
        rate(hp),
        rate(hs)
    );
    println!(
        "  plain loop (no ACK):      {:>9.0}/s processed (sender made {:.0}/s)",
        rate(pp),
        rate(ps)
    );
    println!(
        "  python asyncio:           {:>9.0}/s processed (sender made {:.0}/s)",
        rate(yp),
        rate(ys)
    );
    let (vs_plain, vs_py) = (hp as f64 / pp.max(1) as f64, hp as f64 / yp.max(1) as f64);
    println!("  ratios: hbmon/plain {vs_plain:.2}, hbmon/python {vs_py:.1}x");
    use hbmon::bench_daemon::{figure, summary, Better};
    figure("bench_saturation", "hbmon pinned", rate(hp), "/s", Better::Higher);
    figure("bench_saturation", "hbmon/plain loop", vs_plain, "ratio", Better::Higher);
    let res = format!(
        "hbmon {:.0}/s; plain loop {:.0}/s, Python {:.0}/s: hbmon/plain {vs_plain:.2}, hbmon/Python {vs_py:.1}x",
        rate(hp),
        rate(pp),
        rate(yp)
    );
    let what = "saturation, receiver and sender pinned to separate cores (`bench_saturation`)";
    summary(what, &res, "at least 350,000/s with ACKs", Some(rate(hp) >= 350_000.0));
    Ok(())
}
