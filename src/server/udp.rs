//! The server's side of the heartbeat socket: each batch of datagrams the
//! loop received (`event_loop/mmsg.rs`) goes to the [`HostTable`], and the
//! ACKs that are due are queued for the loop to send in one `sendmmsg`.
//!
//! Owns: the journal hook and the socket-side counters. Never touches the
//! socket (the loop lends borrowed datagrams and takes the queued answers),
//! never decodes (the table does).

use super::hosts::{HostChange, HostTable};
use crate::clock::Now;
use crate::event_loop::mmsg::{Drained, Outgoing, Received};
use std::net::SocketAddr;

/// Most datagrams one drain takes (one loop turn): under a flood the rest
/// wait in the socket for the next turn, so the command port and the
/// timers are served in between whatever arrives. One batch: a turn's
/// drain lasts about a millisecond (a PING needs two or three turns).
pub const TURN: usize = crate::event_loop::mmsg::BATCH;

/// Hands every accepted datagram to the journal (or anyone): bytes, source,
/// wall time.
pub type JournalHook = Box<dyn FnMut(&[u8], SocketAddr, f64) + Send>;

/// Counters of the socket side (the table counts decode results).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestStats {
    pub batches: u64,
    pub datagrams: u64,
    pub ack_errors: u64,
}

#[derive(Default)]
pub struct Ingest {
    /// What the datagrams of this drain changed, for [`after_drain`](Self::after_drain).
    changes: Vec<HostChange>,
    /// The ACK buffer when the queue has no slot left (never in practice:
    /// a batch is at most as long as the queue).
    spare: Vec<u8>,
    pub stats: IngestStats,
    pub journal: Option<JournalHook>,
}

impl Ingest {
    pub fn new() -> Ingest {
        Ingest::default()
    }

    /// Applies every datagram of a received batch (all read at `now`: a
    /// batch is taken in one syscall) and queues the ACKs that are due; the
    /// host changes wait for [`after_drain`](Self::after_drain).
    pub fn on_batch(
        &mut self,
        rx: &Received,
        table: &mut HostTable,
        now: Now,
        acks: &mut Outgoing,
    ) {
        self.stats.batches += 1;
        self.stats.datagrams += rx.len() as u64;
        for (data, from) in rx.iter() {
            let ack = match acks.slot() {
                Some(b) => b,
                None => &mut self.spare,
            };
            let res = table.on_datagram(data, from, now, ack, &mut self.changes);
            acks.queue(from);
            if res.is_ok() {
                if let Some(j) = self.journal.as_mut() {
                    j(data, from, now.wall);
                }
            }
        }
    }

    /// Counts what the loop's drain sent of the queued ACKs; returns the
    /// host changes of the drain's datagrams.
    pub fn after_drain(&mut self, d: &Drained, table: &mut HostTable) -> Vec<HostChange> {
        table.count_acked(d.sent);
        self.stats.ack_errors += d.unsent;
        std::mem::take(&mut self.changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event_loop::mmsg::drain;
    use crate::server::hosts::TableConf;
    use crate::wire::{encode, Decoder, Value};
    use crate::work::model::Intervals;

    /// What the loop does with the server's socket: drain batches into the
    /// ingest, send the ACKs, count them.
    fn run(
        sock: &mio::net::UdpSocket,
        ingest: &mut Ingest,
        table: &mut HostTable,
        now: Now,
        max: usize,
        changes: &mut usize,
    ) -> (u64, bool) {
        let (mut rx, mut tx) = (Received::new(), Outgoing::new());
        let (d, err) =
            drain(sock, &mut rx, &mut tx, max, |rx, tx| ingest.on_batch(rx, table, now, tx));
        assert!(err.is_none(), "{err:?}");
        *changes += ingest.after_drain(&d, table).len();
        (d.datagrams, d.more)
    }

    #[test]
    fn drains_batches_and_acks_over_loopback() {
        let server = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // 150 hbd-style names: all admitted as senders.
        let intervals = Intervals { hbd_senders: 1000, ..Intervals::default() };
        let mut table = HostTable::new(TableConf { intervals, key: None }, &[]);
        let n = 150;
        for i in 0..n {
            let d = encode(
                "HTB",
                &[("name", Value::Str(format!("h{i}.example"))), ("seq", Value::Int(i))],
            );
            client.send_to(&d, to).unwrap();
        }
        client.send_to(b"garbage", to).unwrap();
        let mut ingest = Ingest::new();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let s2 = seen.clone();
        ingest.journal = Some(Box::new(move |_, _, _| {
            s2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }));
        let mut changes = 0;
        let now = Now { mono: 1.0, wall: 1000.0 };
        // Loopback delivery is immediate, but allow a few drains.
        let mut got = 0;
        for _ in 0..100 {
            got += run(&server, &mut ingest, &mut table, now, TURN, &mut changes).0;
            if got == n as u64 + 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, n as u64 + 1);
        assert_eq!(table.stats().accepted, n as u64);
        assert_eq!(table.stats().refused, 1);
        assert_eq!(table.stats().acked, n as u64);
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), n as u64);
        // new->up for each; "new host" for the first 10 only (rate-limited).
        assert_eq!(changes as i64, n + 10);
        assert!(ingest.stats.batches >= 1);
        assert_eq!(ingest.stats.datagrams, n as u64 + 1);
        client.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 2048];
        let mut dec = Decoder::new();
        // Every ACK answers its own heartbeat, in order (no slot reused
        // by a refused datagram's empty answer).
        for i in 0..n {
            let (len, _) = client.recv_from(&mut buf).unwrap();
            let m = dec.decode(&buf[..len]).unwrap();
            assert_eq!(m.id, "ACK");
            assert_eq!(m.get("seq").and_then(|v| v.as_i64()), Some(i));
        }
    }

    /// Issue 18: a drain takes at most its share and says when it left
    /// datagrams in the socket (no new edge would tell the loop).
    #[test]
    fn a_drain_stops_at_its_share_and_says_so_18() {
        let server = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut table =
            HostTable::new(TableConf { intervals: Intervals::default(), key: None }, &[]);
        // 200 small datagrams fit the default receive buffer.
        for _ in 0..200 {
            client.send_to(b"garbage", to).unwrap();
        }
        let mut ingest = Ingest::new();
        let now = Now { mono: 1.0, wall: 1000.0 };
        // Loopback delivery is immediate; wait until a first one is there.
        let mut first = (0, false);
        for _ in 0..200 {
            first = run(&server, &mut ingest, &mut table, now, 100, &mut 0);
            if first.0 > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(first, (100, true), "a full share: maybe more");
        let second = run(&server, &mut ingest, &mut table, now, 100, &mut 0);
        assert_eq!(second, (100, true));
        let third = run(&server, &mut ingest, &mut table, now, 100, &mut 0);
        assert_eq!(third, (0, false), "empty: nothing left");
        assert_eq!(table.stats().refused, 200);
        assert_eq!(table.stats().acked, 0);
    }
}
