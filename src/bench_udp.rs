//! `hbmon bench udp`: a load generator sending real HTB datagrams as N
//! distinct hosts at a given rate, then asking the server's command port
//! (STATE) how many it received and how much CPU it used.
//!
//! Relies on two STATE lines: `-- udp received N ...` (the host table's
//! counters) and `-- cpu_seconds X` (the daemon's user+system CPU time,
//! e.g. from [`process_usage`]); without the latter CPU is reported as
//! unknown. Only for loopback/lab use: it floods the target.
//!
//! Loss is counted from the ACKs that come back to the bench's own
//! sockets (one per accepted HTB), not from the server's `received`
//! counter: that one also counts every other sender's datagrams (the
//! server's own client, the fleet), so it can exceed what the bench sent.

use crate::error::{Error, Result};
use crate::event_loop::mmsg::send_batch;
use crate::wire::Value;

/// Encodes with one reused compressor: a fresh one per datagram costs more
/// than the datagram (its tables are cleared), and 20,000 of them took a
/// bench's setup a second.
fn encoder() -> impl FnMut(&str, &[(&str, Value)]) -> Vec<u8> {
    let mut z = flate2::Compress::new(flate2::Compression::fast(), true);
    move |id, pairs| {
        let mut out = Vec::new();
        crate::wire::frame_into(&mut z, id, crate::wire::payload(pairs).as_bytes(), &mut out);
        out
    }
}
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct UdpBenchOpts {
    pub to: SocketAddr,
    /// The server's command port; None skips the server-side figures.
    pub cmd: Option<SocketAddr>,
    pub hosts: u32,
    /// Datagrams per second in total (0 = as fast as possible).
    pub rate: u64,
    pub secs: f64,
    /// Sender threads.
    pub procs: u32,
    /// Whether the hosts ask for every ACK (hbd) or now and then (hbmon).
    pub style: AckStyle,
}

/// How the bench's hosts ask for ACKs (docs/wire.md, "ACK on demand").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AckStyle {
    /// No `ack` field: the server answers every HTB, as hbd's senders get.
    #[default]
    Hbd,
    /// `ack=1` on one HTB in [`ASK_EVERY_MAX`] of each host (its first
    /// included), `ack=0` on the others: an hbmon client at a steady state
    /// with the default `ival_server_dead` (`Heartbeat::ask_every`).
    ///
    /// [`ASK_EVERY_MAX`]: crate::client::heartbeat::ASK_EVERY_MAX
    Hbmon,
}

impl std::str::FromStr for AckStyle {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<AckStyle, String> {
        match s {
            "hbd" => Ok(AckStyle::Hbd),
            "hbmon" => Ok(AckStyle::Hbmon),
            _ => Err(format!("{s}: not a sender style (hbd or hbmon)")),
        }
    }
}

/// What STATE said.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ServerCounters {
    pub received: Option<u64>,
    pub cpu_seconds: Option<f64>,
}

/// Parses the STATE lines this bench relies on.
pub fn parse_state(text: &str) -> ServerCounters {
    let mut c = ServerCounters::default();
    for l in text.lines() {
        let w: Vec<&str> = l.split_whitespace().collect();
        match w.as_slice() {
            ["--", "udp", "received", n, ..] => c.received = n.parse().ok(),
            ["--", "cpu_seconds", x, ..] => c.cpu_seconds = x.parse().ok(),
            _ => {}
        }
    }
    c
}

/// (user+system CPU seconds, max RSS in KiB) of this process.
pub fn process_usage() -> (f64, u64) {
    // SAFETY: getrusage fills the struct we pass; zeroed is a valid start.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return (0.0, 0);
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (tv(ru.ru_utime) + tv(ru.ru_stime), ru.ru_maxrss.max(0) as u64)
}

/// Sends STATE and returns the answer body.
pub fn query_state(cmd: SocketAddr) -> Result<String> {
    let op = |what: &str| format!("bench: {what} {cmd}");
    let mut s = TcpStream::connect_timeout(&cmd, Duration::from_secs(5))
        .map_err(|e| Error::io(op("connect to"), e))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).map_err(|e| Error::io(op("timeout"), e))?;
    s.write_all(b"STATE\n").map_err(|e| Error::io(op("send STATE to"), e))?;
    let mut out = String::new();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        let n = r.read_line(&mut line).map_err(|e| Error::io(op("read STATE from"), e))?;
        if n == 0 || line.starts_with("COMMAND DONE") || line.starts_with("COMMAND ERROR") {
            break;
        }
        out.push_str(&line);
    }
    Ok(out)
}

/// The server's heartbeat path as the daemon's loop runs it (batches from
/// `event_loop::mmsg::drain` into the [`Ingest`], ACKs sent per batch), for
/// the in-process benches (`bench_udp_ingest`, `bench_saturation`, ...).
///
/// [`Ingest`]: crate::server::udp::Ingest
#[derive(Default)]
pub struct BenchIngest {
    pub ingest: crate::server::udp::Ingest,
    rx: crate::event_loop::mmsg::Received,
    tx: crate::event_loop::mmsg::Outgoing,
}

impl BenchIngest {
    pub fn new() -> BenchIngest {
        BenchIngest::default()
    }

    /// One drain of at most `max` datagrams, all read at `now`: how many
    /// were read and whether the share was used up (host changes dropped).
    pub fn drain(
        &mut self,
        sock: &mio::net::UdpSocket,
        table: &mut crate::server::hosts::HostTable,
        now: crate::clock::Now,
        max: usize,
    ) -> std::io::Result<(u64, bool)> {
        let ingest = &mut self.ingest;
        let (d, err) =
            crate::event_loop::mmsg::drain(sock, &mut self.rx, &mut self.tx, max, |rx, tx| {
                ingest.on_batch(rx, table, now, tx)
            });
        ingest.after_drain(&d, table);
        match err {
            Some(e) => Err(e),
            None => Ok((d.datagrams, d.more)),
        }
    }
}

/// The datagrams: one HTB per host, encoded once.
pub fn datagrams(hosts: u32, interval: f64) -> Vec<Vec<u8>> {
    let mut enc = encoder();
    (0..hosts.max(1)).map(|i| htb(&mut enc, i, interval, None)).collect()
}

/// Host `i`'s HTB; `ack` is the field an hbmon client adds, with its boot
/// id `bid` (None: hbd's, which has neither).
fn htb(
    enc: &mut impl FnMut(&str, &[(&str, Value)]) -> Vec<u8>,
    i: u32,
    interval: f64,
    ack: Option<bool>,
) -> Vec<u8> {
    let mut p = vec![
        ("name", Value::Str(format!("bench-{i:06}.example"))),
        ("ts", Value::Float(crate::clock::Now::wall_now())),
        ("seq", Value::Int(1)),
        ("interval", Value::Float(interval)),
        ("rtt", Value::Float(0.1)),
        ("acks", Value::Int(0)),
        ("ver", Value::Str(crate::VERSION.into())),
    ];
    if let Some(a) = ack {
        p.push(("bid", Value::Int(1)));
        p.push(("ack", Value::Bool(a)));
    }
    enc("HTB", &p)
}

/// What one sender sends, host after host, pass after pass.
pub struct Load {
    /// One HTB per host: hbd's, or hbmon's `ack=0` one.
    pub plain: Vec<Vec<u8>>,
    /// hbmon's `ack=1` HTB per host, sent on one pass in `ASK_EVERY_MAX`.
    pub asking: Option<Vec<Vec<u8>>>,
}

impl Load {
    /// The HTBs of these hosts in this style.
    pub fn new(hosts: impl Iterator<Item = u32> + Clone, interval: f64, style: AckStyle) -> Load {
        let mut enc = encoder();
        match style {
            AckStyle::Hbd => Load {
                plain: hosts.map(|i| htb(&mut enc, i, interval, None)).collect(),
                asking: None,
            },
            AckStyle::Hbmon => Load {
                plain: hosts.clone().map(|i| htb(&mut enc, i, interval, Some(false))).collect(),
                asking: Some(hosts.map(|i| htb(&mut enc, i, interval, Some(true))).collect()),
            },
        }
    }

    /// The datagram of host `j` on pass `pass`, and whether it asks for an ACK.
    fn get(&self, pass: u64, j: usize) -> (&[u8], bool) {
        match &self.asking {
            None => (&self.plain[j], true),
            Some(a) => {
                let every = crate::client::heartbeat::ASK_EVERY_MAX as u64;
                // A client's first heartbeat asks; then each host on its
                // own phase, so the asking ones are spread over a pass.
                if pass == 0 || (pass + j as u64) % every == 0 {
                    (&a[j], true)
                } else {
                    (&self.plain[j], false)
                }
            }
        }
    }
}

/// The datagrams of hbmon clients (issue 18's "ACK on demand"): one HTB
/// per host, encoded once, with `bid` and `ack`, where one host in
/// `ASK_EVERY_MAX` asks for an ACK (`ack=1`) and the rest say `ack=0`: the
/// share of answered heartbeats of a fleet at the longest ask period.
pub fn datagrams_ack_on_demand(hosts: u32, interval: f64) -> Vec<Vec<u8>> {
    let every = crate::client::heartbeat::ASK_EVERY_MAX.max(1);
    let mut enc = encoder();
    (0..hosts.max(1)).map(|i| htb(&mut enc, i, interval, Some(i % every == 0))).collect()
}

/// Takes every datagram waiting on the sender's socket (ACKs); returns how many.
fn drain_acks(sock: &mio::net::UdpSocket, bufs: &mut [Vec<u8>]) -> u64 {
    let mut lens = [(0usize, None::<SocketAddr>); crate::event_loop::mmsg::BATCH];
    let mut n = 0;
    loop {
        match crate::event_loop::mmsg::recv_batch(sock, bufs, &mut lens) {
            Ok(0) | Err(_) => return n,
            Ok(k) => {
                n += lens[..k].iter().filter(|(len, _)| *len >= 5).count() as u64;
            }
        }
    }
}

/// One sender: these datagrams, round-robin, at `rate`/s (0 = max) for `secs`;
/// returns how many were sent.
pub fn send_paced(to: SocketAddr, dgrams: Vec<Vec<u8>>, rate: f64, secs: f64) -> Result<u64> {
    send_paced_acked(to, dgrams, rate, secs).map(|(sent, _)| sent)
}

/// [`send_paced`], also returning how many ACKs came back.
pub fn send_paced_acked(
    to: SocketAddr,
    dgrams: Vec<Vec<u8>>,
    rate: f64,
    secs: f64,
) -> Result<(u64, u64)> {
    let s = send_load(to, &Load { plain: dgrams, asking: None }, rate, secs)?;
    Ok((s.sent, s.acked))
}

/// What a sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sent {
    pub sent: u64,
    /// Of them, those that asked for an ACK.
    pub asked: u64,
    pub acked: u64,
    /// The most the sender fell behind its schedule (s): a heartbeat sent
    /// that late is late at the server through no fault of the server's.
    pub max_behind: f64,
}

/// One sender: `load` round-robin at `rate`/s (0 = max) for `secs`.
pub fn send_load(to: SocketAddr, load: &Load, rate: f64, secs: f64) -> Result<Sent> {
    let hosts = load.plain.len();
    if hosts == 0 {
        return Ok(Sent::default());
    }
    let bind: SocketAddr = if to.is_ipv4() { "0.0.0.0:0".parse() } else { "[::]:0".parse() }
        .map_err(|_| Error::Runtime("bench: bad bind address".into()))?;
    let std_sock =
        std::net::UdpSocket::bind(bind).map_err(|e| Error::io("bench: bind sender", e))?;
    let sock = mio::net::UdpSocket::from_std(std_sock);
    let addrs = vec![to; crate::event_loop::mmsg::BATCH];
    // ACKs are small; a truncated one still counts.
    let mut bufs: Vec<Vec<u8>> =
        (0..crate::event_loop::mmsg::BATCH).map(|_| vec![0u8; 256]).collect();
    let start = Instant::now();
    let (mut sent, mut asked, mut acked) = (0u64, 0u64, 0u64);
    let mut max_behind = 0f64;
    let mut batch: Vec<&[u8]> = Vec::with_capacity(crate::event_loop::mmsg::BATCH);
    let mut asks: Vec<bool> = Vec::with_capacity(crate::event_loop::mmsg::BATCH);
    loop {
        let t = start.elapsed().as_secs_f64();
        if t >= secs {
            break;
        }
        let due = if rate > 0.0 { (rate * t) as u64 } else { u64::MAX };
        if sent >= due {
            acked += drain_acks(&sock, &mut bufs);
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        if rate > 0.0 {
            // The oldest datagram due and not sent was due at sent / rate.
            max_behind = max_behind.max(t - sent as f64 / rate);
        }
        let next = (sent % hosts as u64) as usize;
        let n =
            ((due - sent).min(crate::event_loop::mmsg::BATCH as u64) as usize).min(hosts - next);
        let pass = sent / hosts as u64;
        batch.clear();
        asks.clear();
        for j in next..next + n {
            let (d, a) = load.get(pass, j);
            batch.push(d);
            asks.push(a);
        }
        let k = send_batch(&sock, &batch, &addrs[..n]);
        if k == 0 {
            // Send buffer full: let the kernel drain it.
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        sent += k as u64;
        asked += asks[..k].iter().filter(|a| **a).count() as u64;
        acked += drain_acks(&sock, &mut bufs);
    }
    // The last ACKs: until none came for 200 ms (at most 2 s).
    let (end, mut quiet) = (Instant::now(), Instant::now());
    while acked < asked
        && quiet.elapsed() < Duration::from_millis(200)
        && end.elapsed().as_secs() < 2
    {
        let n = drain_acks(&sock, &mut bufs);
        if n > 0 {
            acked += n;
            quiet = Instant::now();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Ok(Sent { sent, asked, acked: acked.min(sent), max_behind })
}

/// Runs the load and returns the report text.
pub fn run(opts: UdpBenchOpts) -> Result<String> {
    if opts.secs <= 0.0 || opts.hosts == 0 {
        return Err(Error::Usage("bench udp: --secs and --hosts must be positive".into()));
    }
    let procs = opts.procs.max(1);
    // The interval the hosts announce: what a fleet of this size at this rate means.
    let interval =
        if opts.rate > 0 { opts.hosts as f64 / opts.rate as f64 } else { 1.0 }.max(0.001);
    let before = match opts.cmd {
        Some(c) => parse_state(&query_state(c)?),
        None => ServerCounters::default(),
    };
    let per = opts.rate as f64 / procs as f64;
    let mut threads = Vec::new();
    for p in 0..procs.min(opts.hosts) {
        let mine = (p..opts.hosts).step_by(procs as usize);
        let load = Load::new(mine, interval, opts.style);
        let (to, secs) = (opts.to, opts.secs);
        threads.push(std::thread::spawn(move || send_load(to, &load, per, secs)));
    }
    let mut all = Sent::default();
    for t in threads {
        let s = t.join().map_err(|_| Error::Runtime("bench: sender thread panicked".into()))??;
        all.sent += s.sent;
        all.asked += s.asked;
        all.acked += s.acked;
        all.max_behind = all.max_behind.max(s.max_behind);
    }
    // Let the server drain its socket before asking.
    std::thread::sleep(Duration::from_millis(500));
    let after = match opts.cmd {
        Some(c) => parse_state(&query_state(c)?),
        None => ServerCounters::default(),
    };
    Ok(report(&opts, all, before, after))
}

/// The report text (pure, so it is tested).
pub fn report(o: &UdpBenchOpts, sent: Sent, b: ServerCounters, a: ServerCounters) -> String {
    let Sent { sent, asked, acked, max_behind } = sent;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "bench udp: to {} hosts {} rate {}/s secs {} procs {} style {}",
        o.to,
        o.hosts,
        if o.rate == 0 { "max".to_string() } else { o.rate.to_string() },
        o.secs,
        o.procs.max(1),
        match o.style {
            AckStyle::Hbd => "hbd",
            AckStyle::Hbmon => "hbmon",
        }
    );
    let _ = writeln!(
        s,
        "sent {sent} ({:.0}/s), {asked} asking for an ACK; at most {:.3}s behind schedule",
        sent as f64 / o.secs,
        max_behind
    );
    // An ACK answers one of our datagrams that asked: never more than those.
    let acked = acked.min(asked);
    let loss = if asked > 0 { 100.0 * (1.0 - acked as f64 / asked as f64) } else { 0.0 };
    let _ = writeln!(
        s,
        "acked {acked} ({:.0}/s) loss {:.2}% (datagrams asking with no ACK back)",
        acked as f64 / o.secs,
        loss
    );
    match (b.received, a.received) {
        (Some(x), Some(y)) => {
            let got = y.saturating_sub(x);
            let _ = writeln!(s, "server received {got} from every sender during the run");
        }
        _ => s.push_str("server received unknown (no '-- udp received' in STATE)\n"),
    }
    match (b.cpu_seconds, a.cpu_seconds) {
        (Some(x), Some(y)) => {
            let cpu = (y - x).max(0.0);
            let _ = writeln!(
                s,
                "server cpu {cpu:.2}s ({:.1}% of a core)",
                100.0 * cpu / (o.secs + 0.5)
            );
        }
        _ => s.push_str("server cpu unknown (no '-- cpu_seconds' in STATE)\n"),
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(sent: u64, acked: u64) -> Sent {
        Sent { sent, asked: sent, acked, max_behind: 0.0 }
    }

    #[test]
    fn parses_state_and_reports_loss() {
        let st = "-- version x\n-- udp received 900 accepted 900 acked 900 refused 0\n\
                  -- cpu_seconds 1.50\n";
        let c = parse_state(st);
        assert_eq!(c, ServerCounters { received: Some(900), cpu_seconds: Some(1.5) });
        let o = UdpBenchOpts {
            to: "127.0.0.1:50003".parse().unwrap(),
            cmd: None,
            hosts: 10,
            rate: 1000,
            secs: 1.0,
            procs: 1,
            style: AckStyle::Hbd,
        };
        let b = ServerCounters { received: Some(100), cpu_seconds: Some(1.0) };
        let r = report(&o, sent(1000, 800), b, c);
        assert!(r.contains("acked 800 (800/s) loss 20.00%"), "{r}");
        assert!(r.contains("server received 800 from every sender"), "{r}");
        assert!(r.contains("server cpu 0.50s"), "{r}");
        assert!(report(&o, sent(5, 5), ServerCounters::default(), ServerCounters::default())
            .contains("received unknown"));
    }

    /// Other senders' datagrams counted by the server never make the bench
    /// report more received than sent, nor a negative loss.
    #[test]
    fn never_more_received_than_sent_12_15() {
        let o = UdpBenchOpts {
            to: "127.0.0.1:50003".parse().unwrap(),
            cmd: None,
            hosts: 10,
            rate: 1000,
            secs: 1.0,
            procs: 1,
            style: AckStyle::Hbd,
        };
        let b = ServerCounters { received: Some(0), cpu_seconds: None };
        let a = ServerCounters { received: Some(1003), cpu_seconds: None };
        let r = report(&o, sent(1000, 1000), b, a);
        assert!(r.contains("acked 1000 (1000/s) loss 0.00%"), "{r}");
        let r = report(&o, sent(1000, 1005), b, a);
        assert!(r.contains("acked 1000 "), "{r}");
    }

    /// Through a real server socket: every ACK that comes back is counted.
    #[test]
    fn acks_are_counted_over_loopback() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            server.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let mut buf = [0u8; 2048];
            let mut n = 0u64;
            while let Ok((_, from)) = server.recv_from(&mut buf) {
                let ack = crate::wire::encode("ACK", &[("seq", Value::Int(1))]);
                server.send_to(&ack, from).unwrap();
                n += 1;
            }
            n
        });
        let (sent, acked) = send_paced_acked(to, datagrams(20, 1.0), 500.0, 0.2).unwrap();
        let answered = echo.join().unwrap();
        assert!(sent > 0 && acked <= sent, "sent {sent} acked {acked}");
        assert_eq!(acked, answered, "sent {sent}");
    }

    #[test]
    fn sends_at_rate_over_loopback() {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let o = UdpBenchOpts {
            to: rx.local_addr().unwrap(),
            cmd: None,
            hosts: 50,
            rate: 2000,
            secs: 0.2,
            procs: 2,
            style: AckStyle::Hbd,
        };
        let r = run(o).unwrap();
        let sent: u64 =
            r.lines().nth(1).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
        // Pacing never sends ahead of rate x time (+ one batch per sender).
        assert!(sent > 0 && sent <= 400 + 2 * 64, "{r}");
        let mut buf = [0u8; 2048];
        let (n, _) = rx.recv_from(&mut buf).unwrap();
        let mut d = crate::wire::Decoder::new();
        assert!(d.decode(&buf[..n]).unwrap().get("name").unwrap().text().starts_with("bench-"));
    }

    /// hbmon-style hosts: every first HTB asks, then one in ASK_EVERY_MAX
    /// per host, on a phase of its own; the rest say `ack=0`.
    #[test]
    fn hbmon_style_asks_now_and_then() {
        let load = Load::new(0..8, 10.0, AckStyle::Hbmon);
        let every = crate::client::heartbeat::ASK_EVERY_MAX as u64;
        let mut d = crate::wire::Decoder::new();
        for j in 0..8 {
            assert!(load.get(0, j).1, "host {j}'s first HTB asks");
            let asks: Vec<u64> = (1..=2 * every).filter(|p| load.get(*p, j).1).collect();
            assert_eq!(asks.len(), 2, "host {j}: {asks:?}");
            assert_eq!(asks[1] - asks[0], every);
            for p in 0..every {
                let (bytes, asked) = load.get(p, j);
                let m = d.decode(bytes).unwrap();
                assert_eq!(m.get("ack").and_then(|v| v.as_bool()), Some(asked));
            }
        }
        // The phases differ: on a pass after the first, a quarter ask.
        assert_eq!((0..8).filter(|j| load.get(5, *j).1).count(), 8 / every as usize);
        let hbd = Load::new(0..2, 10.0, AckStyle::Hbd);
        assert!(d.decode(hbd.get(3, 1).0).unwrap().get("ack").is_none());
        assert!("hbmon".parse::<AckStyle>().is_ok() && "x".parse::<AckStyle>().is_err());
    }

    /// Through a real socket answering as the server does (`ack=0` gets
    /// none): the loss is counted over the datagrams that asked.
    #[test]
    fn hbmon_style_loss_counts_only_asking_datagrams() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = server.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            server.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
            let (mut buf, mut dec) = ([0u8; 2048], crate::wire::Decoder::new());
            let mut n = 0u64;
            while let Ok((len, from)) = server.recv_from(&mut buf) {
                let m = dec.decode(&buf[..len]).unwrap();
                if m.get("ack").and_then(|v| v.as_bool()) != Some(false) {
                    server
                        .send_to(&crate::wire::encode("ACK", &[("seq", Value::Int(1))]), from)
                        .unwrap();
                    n += 1;
                }
            }
            n
        });
        let load = Load::new(0..20, 1.0, AckStyle::Hbmon);
        let s = send_load(to, &load, 1000.0, 0.2).unwrap();
        let answered = echo.join().unwrap();
        assert!(s.sent > 40 && s.asked < s.sent, "{s:?}");
        assert_eq!((s.asked, s.acked), (answered, answered), "{s:?}");
    }

    #[test]
    fn usage_is_read() {
        let (cpu, rss) = process_usage();
        assert!(cpu > 0.0 && rss > 0);
    }
}
