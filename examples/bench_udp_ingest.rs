//! In-process UDP ingest benchmark: a HostTable + Ingest on a 127.0.0.1
//! socket fed by a paced sender thread, at rising rates; datagrams/s fully
//! processed (decode + table update + ACK sent). Then decode-only cost per
//! packet: one reused Decoder vs a new one per packet.
//!
//! cargo run --release --example bench_udp_ingest [-- HOSTS SECS_PER_STEP]

use hbmon::bench_udp::BenchIngest;
use hbmon::bench_udp::{datagrams, send_paced};
use hbmon::clock::Now;
use hbmon::server::hosts::{HostTable, TableConf};
use hbmon::wire::Decoder;
use hbmon::work::model::Intervals;
use mio::{Events, Interest, Poll, Token};
use std::time::{Duration, Instant};

fn now(t0: Instant) -> Now {
    Now { mono: t0.elapsed().as_secs_f64(), wall: Now::wall_now() }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let hosts: u32 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let step: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(2.0);
    let mut sock = mio::net::UdpSocket::bind("127.0.0.1:0".parse()?)?;
    // A large receive buffer, as a real server would set (capped by rmem_max).
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
    let t0 = Instant::now();
    println!("ingest: {hosts} hosts, {step}s per step, one receiving thread, loopback");
    println!(
        "{:>10} {:>10} {:>12} {:>8} {:>8}",
        "offered/s", "sent/s", "processed/s", "acked%", "loss%"
    );
    for rate in [50_000u64, 100_000, 200_000, 300_000, 400_000, 0] {
        let dg = datagrams(hosts, 10.0);
        let before = table.stats().clone();
        let sender = std::thread::spawn(move || send_paced(to, dg, rate as f64, step));
        let end = Instant::now() + Duration::from_secs_f64(step + 0.3);
        while Instant::now() < end {
            poll.poll(&mut events, Some(Duration::from_millis(10)))?;
            ingest.drain(&sock, &mut table, now(t0), usize::MAX)?;
        }
        let sent = sender.join().map_err(|_| "sender panicked")??;
        let s = table.stats();
        let got = s.accepted - before.accepted;
        let acked = s.acked - before.acked;
        println!(
            "{:>10} {:>10.0} {:>12.0} {:>8.1} {:>8.2}",
            if rate == 0 { "max".into() } else { rate.to_string() },
            sent as f64 / step,
            got as f64 / step,
            100.0 * acked as f64 / got.max(1) as f64,
            100.0 * (1.0 - got as f64 / sent.max(1) as f64),
        );
    }
    let batches = ingest.ingest.stats.batches.max(1);
    println!(
        "datagrams per recvmmsg call: {:.1}",
        ingest.ingest.stats.datagrams as f64 / batches as f64
    );

    // Decode only.
    let dg = datagrams(1000, 10.0);
    println!("decode-only, {} B HTB (median of 5 runs of 200,000):", dg[0].len());
    let runs = |f: &mut dyn FnMut(&[u8])| {
        let mut v = Vec::new();
        for _ in 0..5 {
            let t = Instant::now();
            for i in 0..200_000 {
                f(&dg[i % dg.len()]);
            }
            v.push(t.elapsed().as_secs_f64() * 1e6 / 200_000.0);
        }
        median(v)
    };
    let mut dec = Decoder::new();
    let reused = runs(&mut |d| {
        std::hint::black_box(dec.decode(d).map(|m| m.len()).unwrap_or(0));
    });
    let fresh = runs(&mut |d| {
        let mut dec = Decoder::new();
        std::hint::black_box(dec.decode(d).map(|m| m.len()).unwrap_or(0));
    });
    println!("  reused Decoder   {reused:.3} us/packet");
    println!("  new Decoder each {fresh:.3} us/packet (ratio {:.1}x)", fresh / reused);
    // Full table path without sockets.
    let mut t2 = HostTable::new(
        TableConf {
            intervals: Intervals { hbd_senders: 1_000_000, ..Intervals::default() },
            key: None,
        },
        &[],
    );
    let (mut ack, mut ch) = (Vec::new(), Vec::new());
    let from = "127.0.0.1:9".parse()?;
    let full = runs(&mut |d| {
        let _ = t2.on_datagram(d, from, now(t0), &mut ack, &mut ch);
        ch.clear();
    });
    println!("  decode + table update + ACK encode {full:.3} us/packet");
    Ok(())
}
