//! The client's heartbeat: builds HTB datagrams (`name ts seq interval rtt
//! acks ver bid ack work`, `bid` a random boot identity of this process so a
//! signed server can tell replays from restarts, `boot=1` on the first,
//! `shutdown=1` on a clean stop, signed when a fleet key is set), matches
//! ACKs to measure the RTT, and says when the server has been silent for
//! `ival_server_dead`.
//!
//! ACK on demand (docs/wire.md): a heartbeat says `ack=1` only when this
//! side needs an answer: the first after a start or a new work, every
//! [`Heartbeat::ask_every`]-th (an RTT sample and a liveness check), and
//! every one while an asked-for ACK is missing. The others say `ack=0` and
//! carry our `work` version, so the server still answers when it has a
//! newer work for us. The server is judged dead only from asked heartbeats.
//!
//! Pure: the loop reads the ACKs with the kernel's receive time
//! (`event_loop::mmsg::recv_timestamped`, SO_TIMESTAMP) so the RTT does not
//! include the time the datagram waited for the loop.

use crate::clock::Now;
use crate::wire::{self, Decoder, Value, Verified, WireError};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};

/// Sent heartbeats remembered for matching ACKs.
const PENDING: usize = 16;
/// Most heartbeats between two that ask for an ACK (an RTT sample at
/// least this often).
pub const ASK_EVERY_MAX: u32 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct AckInfo {
    pub seq: u64,
    /// Round trip in ms, when the seq matched a heartbeat we sent.
    pub rtt_ms: Option<f64>,
    /// The version of the work the server has for us (a change means reload).
    pub work_lm: Option<crate::work::version::Version>,
    /// The server dropped our heartbeat: our `ts` was off by this many
    /// seconds (positive: our clock is ahead).
    pub clock_off: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AckError {
    Wire(WireError),
    NotAck,
    /// Fleet key set and the ACK is unsigned, badly signed or stale.
    Refused(&'static str),
    NoSeq,
}

pub struct Heartbeat {
    name: String,
    key: Option<Vec<u8>>,
    interval: f64,
    server_dead: f64,
    seq: u64,
    /// This run's boot identity (random, positive, fits JSON's integers).
    bid: i64,
    boot_sent: bool,
    /// (seq, wall send time).
    pending: VecDeque<(u64, f64)>,
    pub last_rtt_ms: Option<f64>,
    pub acks: u64,
    pub sent: u64,
    /// Monotonic send time of the first heartbeat not answered yet (the
    /// first one after the last ACK): the server is dead once it has been
    /// asked for `server_dead` without an answer. Counting from the last
    /// ACK instead would call it dead after any long pause between our own
    /// heartbeats (a work that shortens the interval, a stalled loop).
    waiting_since: Option<f64>,
    /// The host's uptime (s) at a monotonic time: HTB carries `uptime`
    /// from it (the server shows it and sees a reboot when it drops).
    uptime_base: Option<(f64, f64)>,
    /// Heartbeats sent since the last one that asked for an ACK.
    since_ask: u32,
    /// The next heartbeat asks whatever the count says (a new work).
    force_ask: bool,
    /// The version of the work we run, when the server serves it to us:
    /// sent so the server answers an `ack=0` heartbeat when it differs.
    pub work: Option<crate::work::version::Version>,
    /// Heartbeats that asked for an ACK.
    pub asked: u64,
    dec: Decoder,
}

impl Heartbeat {
    pub fn new(name: &str, interval: f64, server_dead: f64, key: Option<Vec<u8>>) -> Heartbeat {
        Heartbeat {
            name: name.to_string(),
            key,
            interval,
            server_dead,
            seq: 0,
            bid: boot_identity(),
            boot_sent: false,
            pending: VecDeque::with_capacity(PENDING),
            last_rtt_ms: None,
            acks: 0,
            sent: 0,
            waiting_since: None,
            uptime_base: None,
            since_ask: 0,
            force_ask: true,
            work: None,
            asked: 0,
            dec: Decoder::new(),
        }
    }

    /// One heartbeat in this many asks for an ACK: as many as fit in half
    /// of `server_dead` (so a dead server is still noticed within 1.5 x
    /// `server_dead`), at most [`ASK_EVERY_MAX`], at least every one.
    pub fn ask_every(&self) -> u32 {
        if self.interval.is_nan() || self.interval <= 0.0 || !self.server_dead.is_finite() {
            return 1;
        }
        let fit = (self.server_dead / 2.0 / self.interval).floor();
        (1.0 + fit).clamp(1.0, ASK_EVERY_MAX as f64) as u32
    }

    /// Whether the next heartbeat asks for an ACK.
    fn wants_ack(&self, shutdown: bool) -> bool {
        // Nobody waits for the answer to a last heartbeat.
        if shutdown {
            return false;
        }
        self.force_ask
            || !self.boot_sent
            // An ACK asked for is missing (lost, or the server is gone):
            // every heartbeat asks until one comes.
            || self.waiting_since.is_some()
            || self.since_ask + 1 >= self.ask_every()
    }

    /// The host had been up `uptime` seconds at monotonic time `mono`.
    pub fn set_uptime(&mut self, uptime: f64, mono: f64) {
        self.uptime_base = Some((uptime, mono));
    }

    /// A new work: new intervals and maybe a new server address, which
    /// has not been asked anything yet (the wait for an answer restarts).
    pub fn set_intervals(&mut self, interval: f64, server_dead: f64) {
        self.interval = interval;
        self.server_dead = server_dead;
        self.waiting_since = None;
        self.force_ask = true;
    }

    /// The next HTB (one datagram, sent to every target).
    pub fn build(&mut self, now: Now, shutdown: bool) -> Vec<u8> {
        self.seq += 1;
        self.sent += 1;
        let ask = self.wants_ack(shutdown);
        if ask {
            self.waiting_since.get_or_insert(now.mono);
            self.since_ask = 0;
            self.force_ask = false;
            self.asked += 1;
        } else {
            self.since_ask += 1;
        }
        let mut p: Vec<(&str, Value)> = vec![
            ("name", Value::Str(self.name.clone())),
            ("ts", Value::Float(now.wall)),
            ("seq", Value::Int(self.seq as i64)),
            ("interval", Value::Float(self.interval)),
            ("rtt", Value::Float(self.last_rtt_ms.unwrap_or(0.0))),
            ("acks", Value::Int(self.acks as i64)),
            ("ver", Value::Str(crate::VERSION.into())),
            ("bid", Value::Int(self.bid)),
            ("ack", Value::Bool(ask)),
        ];
        if let Some(w) = self.work {
            p.push(("work", Value::Int(w)));
        }
        if let Some((up, at)) = self.uptime_base {
            p.push(("uptime", Value::Float((up + now.mono - at).max(0.0))));
        }
        if !self.boot_sent {
            p.push(("boot", Value::Bool(true)));
            self.boot_sent = true;
        }
        if shutdown {
            p.push(("shutdown", Value::Bool(true)));
        }
        if self.pending.len() == PENDING {
            self.pending.pop_front();
        }
        self.pending.push_back((self.seq, now.wall));
        let mut text = wire::payload(&p);
        if let Some(k) = self.key.as_deref() {
            wire::sign_payload(&mut text, k);
        }
        // Stored blocks, not deflate: a 200-byte heartbeat barely shrinks,
        // and a compressor's state is ~300 KiB allocated every 10 s that
        // the heap keeps resident between heartbeats (issue 18). Every
        // inflater reads it the same.
        let mut out = Vec::with_capacity(text.len() + 16);
        wire::frame_stored("HTB", text.as_bytes(), &mut out);
        out
    }

    /// An ACK arrived (`recv_wall`: the kernel receive time if known, else
    /// now). Returns what it said.
    pub fn on_ack(&mut self, bytes: &[u8], recv_wall: f64, now: Now) -> Result<AckInfo, AckError> {
        let m = self.dec.decode(bytes).map_err(AckError::Wire)?;
        if m.id != "ACK" {
            return Err(AckError::NotAck);
        }
        let clock_off = m.get("clock_off").and_then(|v| v.as_f64()).filter(|o| o.is_finite());
        if let Some(k) = &self.key {
            match wire::verify(&m, k, now.wall) {
                Verified::Ok => {}
                // A clock_off ACK is judged by our own clock, which is the
                // one that is off: its signature and the echo of a `ts` we
                // sent recently (below) are what make it genuine.
                Verified::Stale if clock_off.is_some() => {}
                v => return Err(AckError::Refused(v.reason())),
            }
        }
        let seq =
            m.get("seq").and_then(|v| v.as_i64()).filter(|s| *s >= 0).ok_or(AckError::NoSeq)?
                as u64;
        if clock_off.is_some() {
            let echo = m.get("ts").and_then(|v| v.as_f64());
            let ours = self
                .pending
                .iter()
                .any(|(s, t)| *s == seq && echo.is_some_and(|e| (e - t).abs() < 1e-3));
            if !ours {
                return Err(AckError::Refused("clock_off for a heartbeat we did not send"));
            }
            // The server is alive (it answered), but it dropped the heartbeat.
            self.waiting_since = None;
            return Ok(AckInfo { seq, rtt_ms: None, work_lm: None, clock_off });
        }
        let work_lm = m.get("work").and_then(|v| match v.as_i64() {
            Some(i) => crate::work::version::from_number(i as f64),
            None => v.as_f64().and_then(crate::work::version::from_number),
        });
        let rtt_ms = self
            .pending
            .iter()
            .position(|(s, _)| *s == seq)
            .and_then(|i| self.pending.remove(i))
            .map(|(_, sent)| ((recv_wall - sent) * 1000.0).max(0.0));
        if rtt_ms.is_some() {
            self.last_rtt_ms = rtt_ms;
        }
        self.acks += 1;
        self.waiting_since = None;
        Ok(AckInfo { seq, rtt_ms, work_lm, clock_off: None })
    }

    /// True once a heartbeat has waited `server_dead` seconds for an ACK
    /// (none has come since).
    pub fn server_dead(&self, now_mono: f64) -> bool {
        self.waiting_since.is_some_and(|t| now_mono - t > self.server_dead)
    }
}

/// A random boot identity: `RandomState` is seeded from the OS's random
/// source, mixed with the pid and the clock; kept positive and below 2^53.
fn boot_identity() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    h.write_u128(t.map(|d| d.as_nanos()).unwrap_or(0));
    (h.finish() >> 11) as i64
}

/// The heartbeat targets: the server and each `heartbeat_to` entry (`IP` or
/// `IP:port`; a broadcast address works once the socket has SO_BROADCAST).
/// Returns the addresses and the entries that are not addresses.
pub fn targets(
    server: SocketAddr,
    extra: &[String],
    default_port: u16,
) -> (Vec<SocketAddr>, Vec<String>) {
    let mut out = vec![server];
    let mut bad = Vec::new();
    for e in extra {
        let a = e
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| e.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, default_port)));
        match a {
            Some(a) if !out.contains(&a) => out.push(a),
            Some(_) => {}
            None => bad.push(e.clone()),
        }
    }
    (out, bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::hosts::{HostTable, TableConf};
    use crate::work::model::Intervals;

    fn at(t: f64) -> Now {
        Now { mono: t, wall: 1_000_000.0 + t }
    }

    /// Issue 13 item 5: a client whose clock is an hour ahead gets a signed
    /// clock_off ACK it accepts (by its echo), though its own clock calls
    /// the ACK stale; a forged one for a heartbeat it never sent is refused.
    #[test]
    fn clock_off_ack_is_accepted_by_its_echo_13_5() {
        let key = Some(b"k".to_vec());
        let mut hb = Heartbeat::new("c.example", 10.0, 50.0, key.clone());
        let mut table = HostTable::new(TableConf { intervals: Intervals::default(), key }, &[]);
        let from: SocketAddr = "127.0.0.3:1234".parse().unwrap();
        let client_now = Now { mono: 0.0, wall: 1_003_600.0 };
        let (mut ack, mut ch) = (Vec::new(), Vec::new());
        let d = hb.build(client_now, false);
        let r = table.on_datagram(&d, from, at(0.0), &mut ack, &mut ch);
        assert!(r.is_err() && !ack.is_empty());
        let info = hb.on_ack(&ack, 1_003_600.001, client_now).unwrap();
        assert_eq!(info.clock_off, Some(3600.0));
        assert_eq!(
            hb.on_ack(&ack, 1_003_600.001, client_now).ok().and_then(|i| i.clock_off),
            Some(3600.0)
        );
        let mut other = Heartbeat::new("c.example", 10.0, 50.0, Some(b"k".to_vec()));
        assert!(other.on_ack(&ack, 1_003_600.0, client_now).is_err());
    }

    /// Client and server codecs wired together without sockets.
    #[test]
    fn heartbeat_ack_round_trip_with_table() {
        let key = Some(b"k".to_vec());
        let mut hb = Heartbeat::new("c.example", 10.0, 50.0, key.clone());
        let mut table = HostTable::new(TableConf { intervals: Intervals::default(), key }, &[]);
        let from: SocketAddr = "127.0.0.3:1234".parse().unwrap();
        let (mut ack, mut ch) = (Vec::new(), Vec::new());
        let d = hb.build(at(0.0), false);
        table.on_datagram(&d, from, at(0.0), &mut ack, &mut ch).unwrap();
        let info = hb.on_ack(&ack, 1_000_000.0 + 0.002, at(0.002)).unwrap();
        assert_eq!(info.seq, 1);
        assert!((info.rtt_ms.unwrap() - 2.0).abs() < 1e-6);
        assert_eq!(info.work_lm, Some(0));
        assert_eq!(hb.acks, 1);
        // The next heartbeat carries the RTT and no boot flag.
        let d = hb.build(at(10.0), false);
        ack.clear();
        table.on_datagram(&d, from, at(10.0), &mut ack, &mut ch).unwrap();
        let h = table.host("c.example").unwrap();
        assert!((h.rtt_ms.unwrap() - 2.0).abs() < 1e-6);
        assert_eq!(h.seq, Some(2));
        // Reboot only counted once seen before: the first boot=1 was no reboot.
        assert!(!ch.iter().any(|c| c.item() == "reboot"));
        // Clean stop.
        let d = hb.build(at(11.0), true);
        table.on_datagram(&d, from, at(11.0), &mut ack, &mut ch).unwrap();
        assert_eq!(table.host("c.example").unwrap().state.name(), "stopped");
    }

    #[test]
    fn first_has_boot_and_unmatched_ack_has_no_rtt() {
        let mut hb = Heartbeat::new("c", 10.0, 50.0, None);
        let mut dec = Decoder::new();
        let d = hb.build(at(0.0), false);
        // Stored blocks (zlib header, then a final stored block's header).
        assert_eq!(&d[..8], b"!HTB:\x78\x01\x01", "{d:?}");
        assert_eq!(dec.decode(&d).unwrap().get("boot").unwrap().as_bool(), Some(true));
        let d = hb.build(at(1.0), false);
        assert_eq!(dec.decode(&d).unwrap().get("boot"), None);
        let ack = wire::encode("ACK", &[("seq", Value::Int(99))]);
        assert_eq!(hb.on_ack(&ack, 0.0, at(1.0)).unwrap().rtt_ms, None);
        let not = wire::encode("HTB", &[("seq", Value::Int(1))]);
        assert_eq!(hb.on_ack(&not, 0.0, at(1.0)), Err(AckError::NotAck));
        assert_eq!(hb.on_ack(b"x", 0.0, at(1.0)), Err(AckError::Wire(WireError::NoHeader)));
    }

    #[test]
    fn server_dead_after_silence() {
        let mut hb = Heartbeat::new("c", 10.0, 50.0, None);
        assert!(!hb.server_dead(1000.0), "nothing sent yet");
        hb.build(at(0.0), false);
        assert!(!hb.server_dead(49.0));
        assert!(hb.server_dead(51.0));
        let ack = wire::encode("ACK", &[("seq", Value::Int(1))]);
        hb.on_ack(&ack, 1_000_060.0, at(60.0)).unwrap();
        assert!(!hb.server_dead(100.0));
        assert!(!hb.server_dead(500.0), "not asked since the answer");
        // A long pause in our own heartbeats (here a 10 s timer that a new
        // work shortened to 0.5 s) is not a silence of the server. Only a
        // heartbeat that asks (every third here) starts the wait.
        assert_eq!(hb.ask_every(), 3);
        hb.build(at(510.0), false);
        hb.build(at(510.5), false);
        assert!(!hb.server_dead(600.0), "nothing asked since the answer");
        hb.build(at(511.0), false);
        assert!(!hb.server_dead(560.0));
        assert!(hb.server_dead(561.5));
        // A new work (the first heartbeat went to the bootstrap address).
        hb.set_intervals(0.5, 2.0);
        assert!(!hb.server_dead(600.0));
        hb.build(at(600.0), false);
        assert!(hb.server_dead(602.5));
    }

    fn asks(d: &[u8]) -> Option<bool> {
        Decoder::new().decode(d).unwrap().get("ack").and_then(|v| v.as_bool())
    }

    /// Issue 18: ACK on demand. The first heartbeat asks, then one in
    /// `ask_every`; a missing ACK makes every heartbeat ask until one
    /// comes; a new work asks at once; a last one never asks.
    #[test]
    fn asks_for_acks_only_when_needed_18() {
        let mut hb = Heartbeat::new("c", 10.0, 50.0, None);
        assert_eq!(hb.ask_every(), 3);
        let ack = |seq: i64| wire::encode("ACK", &[("seq", Value::Int(seq))]);
        let mut pattern = Vec::new();
        for i in 0..9 {
            let d = hb.build(at(i as f64 * 10.0), false);
            let a = asks(&d).unwrap();
            pattern.push(a);
            if a {
                hb.on_ack(&ack(i + 1), 1_000_000.0 + i as f64 * 10.0, at(i as f64 * 10.0)).unwrap();
            }
        }
        assert_eq!(pattern, [true, false, false, true, false, false, true, false, false]);
        assert_eq!(hb.asked, 3);
        // Seq 10 asks and its ACK is lost: 11 and 12 ask again (missed ACK).
        assert_eq!(asks(&hb.build(at(90.0), false)), Some(true));
        assert_eq!(asks(&hb.build(at(100.0), false)), Some(true));
        assert_eq!(asks(&hb.build(at(110.0), false)), Some(true));
        assert!(hb.server_dead(141.0), "the wait counts from the first unanswered ask");
        hb.on_ack(&ack(12), 1_000_110.0, at(110.0)).unwrap();
        assert!(!hb.server_dead(141.0));
        assert_eq!(asks(&hb.build(at(120.0), false)), Some(false));
        hb.set_intervals(10.0, 50.0);
        assert_eq!(asks(&hb.build(at(130.0), false)), Some(true), "a new work asks");
        assert_eq!(asks(&hb.build(at(140.0), true)), Some(false), "a last heartbeat never asks");
        // A short server_dead: every heartbeat asks.
        assert_eq!(Heartbeat::new("c", 10.0, 15.0, None).ask_every(), 1);
        assert_eq!(Heartbeat::new("c", 1.0, 500.0, None).ask_every(), ASK_EVERY_MAX);
    }

    /// Issue 18: a heartbeat that does not ask still carries our work
    /// version, and the server answers it when it has another one (the
    /// client then fetches); the same version gets no answer.
    #[test]
    fn unasked_heartbeat_is_answered_on_a_work_change_18() {
        // Work versions are ms since the epoch.
        const V5: i64 = 1_764_588_000_123;
        let mut hb = Heartbeat::new("c.example", 10.0, 50.0, None);
        let mut table = HostTable::new(
            TableConf {
                intervals: Intervals { hbd_senders: 10, ..Intervals::default() },
                key: None,
            },
            &[],
        );
        let from: SocketAddr = "127.0.0.3:1234".parse().unwrap();
        let (mut ack, mut ch) = (Vec::new(), Vec::new());
        hb.work = Some(V5);
        table.set_work_lm("c.example", V5);
        let d = hb.build(at(0.0), false);
        table.on_datagram(&d, from, at(0.0), &mut ack, &mut ch).unwrap();
        assert!(!ack.is_empty(), "the first asks");
        assert_eq!(hb.on_ack(&ack, 1_000_000.0, at(0.0)).unwrap().work_lm, Some(V5));
        let d = hb.build(at(10.0), false);
        assert_eq!(asks(&d), Some(false));
        table.on_datagram(&d, from, at(10.0), &mut ack, &mut ch).unwrap();
        assert!(ack.is_empty(), "same work, not asked: no ACK");
        table.set_work_lm("c.example", V5 + 1);
        let d = hb.build(at(20.0), false);
        assert_eq!(asks(&d), Some(false));
        table.on_datagram(&d, from, at(20.0), &mut ack, &mut ch).unwrap();
        assert!(!ack.is_empty(), "a pending work change is answered");
        assert_eq!(hb.on_ack(&ack, 1_000_020.0, at(20.0)).unwrap().work_lm, Some(V5 + 1));
        // Accepted all the same: the host is up and its seq counted.
        assert_eq!(table.host("c.example").unwrap().seq, Some(3));
        assert_eq!(table.stats().accepted, 3);
    }

    #[test]
    fn targets_parse() {
        let s: SocketAddr = "10.0.0.1:50003".parse().unwrap();
        let (t, bad) = targets(
            s,
            &["10.0.0.255".into(), "10.0.0.1:50003".into(), "[::1]:7".into(), "x.y".into()],
            50003,
        );
        assert_eq!(t.len(), 3);
        assert_eq!(t[1], "10.0.0.255:50003".parse().unwrap());
        assert_eq!(bad, vec!["x.y".to_string()]);
    }
}
