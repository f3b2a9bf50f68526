//! Ingest at saturation, pinned (issue 18): the receiver on core 0, one
//! sender thread on core 1 sending as fast as it can (sendmmsg, HTB of
//! 10,000 hosts), for SECS each, four receivers one after the other in the
//! same run: hbmon's Ingest + HostTable (decode, verify, table, ACK sent)
//! fed by hbd-style senders (every HTB answered) and by hbmon clients
//! (`ack=0` but one host in `ASK_EVERY_MAX` asking), a plain Rust loop
//! (recvmmsg + inflate + split pairs + HashMap update, no ACK) and the
//! Python asyncio server (bench/py_udp_server.py, under `taskset -c 0`).
//! Prints datagrams/s processed and the ratios.
//!
//! cargo run --release --example bench_saturation [-- SECS HOSTS [ONLY]]
//! ONLY (for profiling one receiver): `hbd`, `ondemand`, `plain` or `python`.
//! Needs 2 cores; loopback only.

use hbmon::bench_udp::BenchIngest;
use hbmon::bench_udp::{datagrams, datagrams_ack_on_demand};
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
fn sender(
    to: SocketAddr,
    dg: Arc<Vec<Vec<u8>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        pin(1);
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

/// What a receiver did: datagrams sent to it, datagrams it processed, and
/// its thread's CPU seconds (which, unlike the rate, a loaded machine
/// barely changes: the figure to compare when other builds run).
#[derive(Clone, Copy, Default)]
struct Run {
    sent: u64,
    processed: u64,
    cpu: f64,
}

impl Run {
    /// CPU µs per processed datagram.
    fn us_each(&self) -> f64 {
        self.cpu * 1e6 / self.processed.max(1) as f64
    }
}

/// This thread's CPU time (s).
fn thread_cpu() -> f64 {
    // SAFETY: clock_gettime writes the timespec we pass.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Runs `recv` (pinned to core 0) against a full-speed sender for `secs`.
fn run(
    secs: f64,
    dg: &Arc<Vec<Vec<u8>>>,
    mut recv: impl FnMut(&mio::net::UdpSocket, f64) -> u64 + Send,
) -> Run {
    let sock = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).expect("bind");
    let to = sock.local_addr().expect("addr");
    let _ = socket2::SockRef::from(&sock).set_recv_buffer_size(8 << 20);
    let stop = Arc::new(AtomicBool::new(false));
    std::thread::scope(|s| {
        let r = s.spawn(|| {
            pin(0);
            let c0 = thread_cpu();
            let n = recv(&sock, secs);
            (n, thread_cpu() - c0)
        });
        let tx = sender(to, dg.clone(), stop.clone());
        let (processed, cpu) = r.join().expect("receiver");
        stop.store(true, Ordering::Relaxed);
        Run { sent: tx.join().expect("sender"), processed, cpu }
    })
}

/// Polls the socket until `secs`; a step that found it empty waits for it
/// to be readable (at most 10 ms) instead of spinning, so the thread's CPU
/// time is the work done (a saturated receiver never finds it empty).
fn until(sock: &mio::net::UdpSocket, secs: f64, mut step: impl FnMut() -> u64) -> u64 {
    use std::os::fd::AsRawFd;
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed().as_secs_f64() < secs {
        let k = step();
        n += k;
        if k == 0 {
            let mut p = libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd, live for the call.
            unsafe { libc::poll(&mut p, 1, 10) };
        }
    }
    n
}

fn hbmon_loop(sock: &mio::net::UdpSocket, secs: f64, hosts: u32) -> u64 {
    let intervals = Intervals { hbd_senders: hosts + 10, ..Intervals::default() };
    let mut table = HostTable::new(TableConf { intervals, key: None }, &[]);
    let mut ingest = BenchIngest::new();
    let t0 = Instant::now();
    until(sock, secs, || {
        let now = Now { mono: t0.elapsed().as_secs_f64(), wall: Now::wall_now() };
        ingest.drain(sock, &mut table, now, hbmon::server::udp::TURN).map_or(0, |d| d.0)
    });
    table.stats().accepted
}

fn plain_loop(sock: &mio::net::UdpSocket, secs: f64) -> u64 {
    let mut bufs: Vec<Vec<u8>> = (0..BATCH).map(|_| vec![0u8; RECV_BUF]).collect();
    let mut lens = [(0usize, None::<SocketAddr>); BATCH];
    let mut z = flate2::Decompress::new(true);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut map: HashMap<String, (f64, u64)> = HashMap::new();
    until(sock, secs, || {
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

/// A process's user+system CPU seconds (/proc/PID/stat, clock ticks of 1/100 s); NaN if unreadable.
fn proc_cpu(pid: u32) -> f64 {
    let Ok(st) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return f64::NAN };
    // The fields after the `(comm)`, which may hold spaces.
    let rest = st.rsplit_once(')').map_or("", |r| r.1);
    let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the state.
    match (f.get(10), f.get(11)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}

fn python(secs: f64, dg: &Arc<Vec<Vec<u8>>>) -> Result<Run, Box<dyn std::error::Error>> {
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
    let pid = child.id();
    let r = (|| {
        let a0 = accepted(&q).ok_or("python server does not answer")?;
        let c0 = proc_cpu(pid);
        let stop = Arc::new(AtomicBool::new(false));
        let tx = sender(to, dg.clone(), stop.clone());
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
        let sent = tx.join().map_err(|_| "sender")?;
        // What it took in those seconds (its backlog is dropped by the kernel).
        let a1 = accepted(&q).ok_or("python server does not answer")?;
        let cpu = proc_cpu(pid) - c0;
        Ok::<_, Box<dyn std::error::Error>>(Run { sent, processed: a1 - a0, cpu })
    })();
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = child.wait();
    r
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<String> = std::env::args().collect();
    let secs: f64 = a.get(1).and_then(|x| x.parse().ok()).unwrap_or(3.0);
    let hosts: u32 = a.get(2).and_then(|x| x.parse().ok()).unwrap_or(10_000);
    let only = a.get(3).map(String::as_str);
    let on = |which: &str| only.is_none_or(|o| o == which);
    println!("saturation: receiver on core 0, sender on core 1, {secs} s each, {hosts} hosts");
    if std::thread::available_parallelism().map_or(0, |n| n.get()) < 2 {
        println!("  warning: fewer than 2 cores: receiver and sender share one, rates are not comparable");
    }
    let hbd = Arc::new(datagrams(hosts, 10.0));
    let ondemand = Arc::new(datagrams_ack_on_demand(hosts, 10.0));
    let none = Run::default();
    let h = if on("hbd") { run(secs, &hbd, |s, t| hbmon_loop(s, t, hosts)) } else { none };
    let d =
        if on("ondemand") { run(secs, &ondemand, |s, t| hbmon_loop(s, t, hosts)) } else { none };
    let p = if on("plain") { run(secs, &hbd, plain_loop) } else { none };
    let y = if on("python") { python(secs, &hbd)? } else { none };
    let rate = |r: Run| r.processed as f64 / secs;
    let every = hbmon::client::heartbeat::ASK_EVERY_MAX;
    for (what, r) in [
        ("hbmon, hbd-style senders (every HTB ACKed)".to_string(), h),
        (format!("hbmon, hbmon clients (1 in {every} ACKed)"), d),
        ("plain loop (no ACK)".to_string(), p),
        ("python asyncio (every HTB ACKed)".to_string(), y),
    ] {
        println!(
            "  {what:<44} {:>9.0}/s processed (sender made {:.0}/s), {:.2} µs CPU each",
            rate(r),
            r.sent as f64 / secs,
            r.us_each()
        );
    }
    let vs = |a: Run, b: Run| a.processed as f64 / b.processed.max(1) as f64;
    let (vs_plain, vs_py, od_plain) = (vs(h, p), vs(h, y), vs(d, p));
    let cpu = |a: Run, b: Run| a.us_each() / b.us_each();
    println!(
        "  ratios: hbmon/plain {vs_plain:.2} (hbmon clients {od_plain:.2}), hbmon/python {vs_py:.1}x; CPU per datagram hbmon/plain {:.2} (hbmon clients {:.2})",
        cpu(h, p),
        cpu(d, p)
    );
    if only.is_some() {
        return Ok(());
    }
    use hbmon::bench_daemon::{figure, summary, Better};
    figure("bench_saturation", "hbmon pinned", rate(h), "/s", Better::Higher);
    figure("bench_saturation", "hbmon/plain loop", vs_plain, "ratio", Better::Higher);
    figure("bench_saturation", "hbmon clients pinned", rate(d), "/s", Better::Higher);
    figure("bench_saturation", "hbmon clients/plain loop", od_plain, "ratio", Better::Higher);
    figure("bench_saturation", "hbmon CPU per datagram", h.us_each(), "us", Better::Lower);
    figure("bench_saturation", "plain loop CPU per datagram", p.us_each(), "us", Better::Lower);
    let res = format!(
        "hbmon {:.0}/s with every HTB ACKed (hbd-style), {:.0}/s from hbmon clients (1 in {every} ACKed); plain loop {:.0}/s, Python {:.0}/s: hbmon/plain {vs_plain:.2} ({od_plain:.2}), hbmon/Python {vs_py:.1}x; CPU per datagram {:.2} / {:.2} / {:.2} µs",
        rate(h),
        rate(d),
        rate(p),
        rate(y),
        h.us_each(),
        d.us_each(),
        p.us_each()
    );
    let what = "saturation, receiver and sender pinned to separate cores (`bench_saturation`)";
    summary(what, &res, "at least 350,000/s with ACKs", Some(rate(h) >= 350_000.0));
    Ok(())
}
