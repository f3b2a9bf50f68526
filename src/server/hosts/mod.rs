//! The server's view of who is alive: one record per host, fed by HTB/PLG
//! datagrams, judged by the detector on a deadline heap, persisted in
//! server.db.
//!
//! Owns: decoding and verifying what arrives (through one reused
//! [`Decoder`]), the host records, refusal counters, ACK bytes and the
//! reachability changes. Never touches a socket (`udp.rs` does), never reads
//! a clock (`Now` is passed in), never builds `crate::event::Event`s (the
//! server turns [`HostChange`]s into them).
//!
//! Decisions:
//! - A datagram passed to [`HostTable::on_datagram`] may yield several
//!   changes (a reboot and new→up), so they are pushed into a `Vec` given by
//!   the caller rather than returned as one `Option`.
//! - Hosts named in the work start `new` and stay so until heard from; a name
//!   not in the work gets a record (with a [`ChangeKind::NewHost`], itself
//!   rate-limited) only while fewer than `hbd_senders` such records exist;
//!   further names are strangers (`strangers.rs`): bounded, counted, shown,
//!   never persisted, never an event.
//! - Without a key, a datagram naming a work host is accepted only from one
//!   of that host's addresses; with a key, the signature speaks for it, and
//!   `guard.rs` drops replays and answers stale clocks.
//! - Late/down are found by a min-heap of deadlines with at most one entry
//!   per host; a heartbeat does not touch the heap (the entry is re-judged,
//!   and re-pushed from the newer last-seen, when it falls due).
//! - Refusals are counted per reason and per source IP; at most
//!   [`MAX_SOURCES`] addresses are tracked, others are summed in one counter,
//!   so a spoofed flood cannot grow memory.

use super::detector::{judge, next_deadline_near, Params, Reach, Window};
use crate::clock::Now;
use crate::event::builtin;
use crate::wire::{self, Decoder, Message, Val, Verified};
use crate::work::model::{HostEntry, Intervals};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

mod guard;
mod intern;
mod path;
mod persist;
pub use persist::{load_rows, save_rows, SavedHost};
pub mod strangers;
use guard::{BootSeq, ClockAcks};
use intern::Versions;
pub use intern::MAX_VERSIONS;
use strangers::{Bucket, Strangers};

/// Source addresses whose refusals are tracked one by one.
pub const MAX_SOURCES: usize = 4096;
/// Plugin items kept per host (a bounded map, whatever a client sends).
pub const MAX_ITEMS: usize = 1000;

/// What the table needs from the work and the conf.
#[derive(Debug, Clone)]
pub struct TableConf {
    pub intervals: Intervals,
    /// The fleet key: when set, only correctly signed, fresh datagrams count.
    pub key: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// The host's `heartbeat` item changed level.
    Heartbeat { old: Reach, new: Reach },
    /// `boot=1` from a host seen before, or a lower uptime.
    Reboot,
    /// A name not in the work sent its first heartbeat.
    NewHost,
    /// The server suspects itself (`isolate.rs`): true when it starts.
    Isolated(bool),
    /// The host answered the server's probe while its heartbeats were not
    /// arriving (true): its heartbeat path (UDP) is blocked or lossy; false
    /// once [`PATH_CLEAR`] heartbeats arrived since the last such answer.
    HeartbeatPath(bool),
}

pub use path::PATH_CLEAR;

/// A change the server turns into a `crate::event::Event`.
#[derive(Debug, Clone, PartialEq)]
pub struct HostChange {
    pub host: String,
    pub kind: ChangeKind,
    /// Wall-clock seconds.
    pub time: f64,
    pub message: String,
}

impl HostChange {
    /// The item name the event is about.
    pub fn item(&self) -> &'static str {
        match self.kind {
            ChangeKind::Reboot => builtin::REBOOT,
            ChangeKind::Isolated(_) => builtin::ISOLATION,
            ChangeKind::HeartbeatPath(_) => builtin::HEARTBEAT_PATH,
            _ => builtin::HEARTBEAT,
        }
    }
}

/// A value a PLG datagram reported.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum ItemVal {
    Num(f64),
    Text(String),
}

/// One host's record.
#[derive(Debug, Clone)]
pub struct Host {
    /// Shared with the name index (one copy of each name).
    pub name: Arc<str>,
    pub in_work: bool,
    pub addr: Option<SocketAddr>,
    pub state: Reach,
    /// Monotonic seconds of the last accepted datagram.
    pub last_seen: Option<f64>,
    pub last_seen_wall: Option<f64>,
    pub seq: Option<u64>,
    pub seq_gaps: u64,
    /// Suspicions the host answered itself (heartbeats lost, host alive).
    pub answered: u64,
    /// Heartbeats since the last answered probe while the path warning is
    /// on (None: off).
    pub path_warned: Option<u32>,
    /// As the client reported it (its last measured RTT to us), ms.
    pub rtt_ms: Option<f64>,
    pub boot_wall: Option<f64>,
    pub uptime: Option<f64>,
    /// Interned (see [`Records::intern_version`]): a fleet runs a handful
    /// of versions, so 100,000 records share a few strings.
    pub version: Arc<str>,
    /// The interval the host announces (the work's until it does).
    pub interval: f64,
    pub window: Window,
    pub items: BTreeMap<String, ItemVal>,
    /// The host's work-file mtime, echoed in ACKs.
    pub work_lm: crate::work::version::Version,
    pub received: u64,
    /// Addresses a datagram naming this work host may come from unsigned.
    pub sources: Vec<IpAddr>,
    /// Only with a fleet key (made at the first signed heartbeat): boxed, so
    /// an unsigned fleet's 100,000 records do not carry it (issue 18).
    replay: Option<Box<BootSeq>>,
    queued: bool,
    /// Silence after which the last deadline fell (0: none): where the
    /// next search starts (`detector::next_deadline_near`).
    cross: f32,
}

impl Host {
    fn new(name: Arc<str>, in_work: bool, interval: f64) -> Host {
        Host {
            name,
            in_work,
            addr: None,
            state: Reach::New,
            last_seen: None,
            last_seen_wall: None,
            seq: None,
            seq_gaps: 0,
            answered: 0,
            path_warned: None,
            rtt_ms: None,
            boot_wall: None,
            uptime: None,
            version: Arc::from(""),
            interval,
            window: Window::default(),
            items: BTreeMap::new(),
            work_lm: 0,
            received: 0,
            sources: Vec::new(),
            replay: None,
            queued: false,
            cross: 0.0,
        }
    }
}

/// Most host changes one `check` returns (one loop turn's share of an
/// outage): each becomes an event on the loop (a log line, a record for the
/// store thread), a few µs apiece, so 128 keep a turn well under a
/// millisecond and a 10,000-host outage is judged over ~80 turns.
pub const CHECK_BATCH: usize = 128;
/// Most deadline entries one `check` looks at, changed or not: after a
/// stall (or a heartbeat storm) most entries due are of hosts that are
/// still fine, and re-judging them is the cost that grew with the table.
pub const CHECK_POPS: usize = 2048;

/// The deadline check's grain (µs): the check runs at multiples of it, so
/// the loop wakes for it at most 200 times a second however many deadlines
/// fall in between. 100,000 hosts at a 10 s interval have ~5,000 a second
/// once the tuned phi judges them; a wake-up and a timer each took a
/// quarter of a core (issue 18). A host is judged at most 5 ms later.
pub const CHECK_GRAIN_US: u64 = 5_000;

/// Datagram counters (STATE `-- udp ...`).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UdpStats {
    pub received: u64,
    pub accepted: u64,
    pub acked: u64,
    pub refused: u64,
}

/// Why a datagram was dropped (a counter key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub &'static str);

/// What an accepted datagram was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A heartbeat: the ACK, if one is due (`records::ack_due`), is in `out`.
    Htb,
    Plg,
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SourceRefusals {
    pub count: u64,
    pub last_reason: &'static str,
    pub last_wall: f64,
    /// The host the last refused datagram named (wrong source, replay, stale).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its `ts` minus our clock, when it was stale (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clock_off: Option<f64>,
}

/// "New host" events per minute at most (beyond a burst of 10).
const NEW_HOST_EVENTS_PER_MIN: f64 = 10.0;

/// Everything except the decoder, so a decoded message (borrowing the
/// decoder) can be applied to the records.
struct Records {
    conf: TableConf,
    hosts: Vec<Host>,
    by_name: HashMap<Arc<str>, u32, Keyed>,
    by_ip: HashMap<IpAddr, u32, Keyed>,
    /// (deadline in µs of monotonic time, host index); one entry per host.
    heap: BinaryHeap<Reverse<(u64, u32)>>,
    pending_lm: HashMap<String, crate::work::version::Version>,
    stats: UdpStats,
    by_reason: BTreeMap<&'static str, u64>,
    by_source: HashMap<IpAddr, SourceRefusals>,
    other_sources: u64,
    ack_text: String,
    srv_ts: ack::SrvTs,
    strangers: Strangers,
    /// Records of names not in the work (bounded by `hbd_senders`).
    senders: usize,
    new_host_events: Bucket,
    clock_acks: ClockAcks,
    /// What the refusal being made is about: (name, clock offset).
    detail: Option<(String, Option<f64>)>,
    versions: Versions,
}

pub struct HostTable {
    dec: Decoder,
    r: Records,
}

/// The hasher of the name and address indexes: foldhash keyed with OS
/// randomness. SipHash (std's) was 3-4 % of the heartbeat path at 100,000
/// hosts (issue 18); foldhash is several times cheaper on short names.
/// Names come from the network, so the key is secret and per table (a
/// sender cannot precompute colliding names), and the indexes only ever
/// hold work hosts and at most `hbd_senders` others: strangers live in
/// their own bounded table (`strangers.rs`).
type Keyed = foldhash::fast::SeedableRandomState;

fn keyed() -> Keyed {
    let mut b = [0u8; 8];
    // Without the OS generator foldhash's own per-process seed still applies.
    let _ = getrandom::getrandom(&mut b);
    Keyed::with_seed(u64::from_ne_bytes(b), foldhash::SharedSeed::global_random())
}

fn micros(t: f64) -> u64 {
    (t.max(0.0) * 1e6) as u64
}

impl HostTable {
    /// A table knowing the work's hosts (all `new`).
    pub fn new(conf: TableConf, work_hosts: &[HostEntry]) -> HostTable {
        let mut t = HostTable {
            dec: Decoder::new(),
            r: Records {
                conf,
                hosts: Vec::new(),
                by_name: HashMap::with_hasher(keyed()),
                by_ip: HashMap::with_hasher(keyed()),
                heap: BinaryHeap::new(),
                pending_lm: HashMap::new(),
                stats: UdpStats::default(),
                by_reason: BTreeMap::new(),
                by_source: HashMap::new(),
                other_sources: 0,
                ack_text: String::with_capacity(128),
                srv_ts: ack::SrvTs::default(),
                strangers: Strangers::new(strangers::MAX_STRANGERS),
                senders: 0,
                new_host_events: Bucket::new(10.0, NEW_HOST_EVENTS_PER_MIN / 60.0),
                clock_acks: ClockAcks::default(),
                detail: None,
                versions: Versions::default(),
            },
        };
        t.set_work_hosts(work_hosts);
        t
    }

    /// A new work: its hosts are marked `in_work` (added as `new` if unknown).
    pub fn set_work_hosts(&mut self, work_hosts: &[HostEntry]) {
        for h in self.r.hosts.iter_mut() {
            h.in_work = false;
        }
        for e in work_hosts {
            let i = self.r.find_or_add(&e.host, true);
            let h = &mut self.r.hosts[i];
            h.in_work = true;
            h.sources.clear();
            let addr = e.address.trim_matches(['[', ']']);
            if let Ok(ip) = addr.parse::<IpAddr>() {
                h.sources.push(crate::work::addr::canonical_ip(ip));
                self.r.by_ip.entry(ip).or_insert(i as u32);
            }
        }
        self.r.senders = self.r.hosts.iter().filter(|h| !h.in_work).count();
    }

    /// More addresses a work host's unsigned datagrams may come from (its
    /// name's other addresses; the server's own addresses for its own name).
    pub fn allow_sources(&mut self, host: &str, ips: &[IpAddr]) {
        let Some(&i) = self.r.by_name.get(host) else { return };
        let h = &mut self.r.hosts[i as usize];
        for ip in ips {
            let ip = crate::work::addr::canonical_ip(*ip);
            if !h.sources.contains(&ip) {
                h.sources.push(ip);
            }
        }
    }

    pub fn strangers(&self) -> &Strangers {
        &self.r.strangers
    }

    pub fn set_intervals(&mut self, iv: Intervals) {
        self.r.conf.intervals = iv;
    }

    /// Remembers a host's work-file mtime for its ACKs.
    pub fn set_work_lm(&mut self, host: &str, lm: crate::work::version::Version) {
        match self.r.by_name.get(host) {
            Some(&i) => self.r.hosts[i as usize].work_lm = lm,
            None => {
                self.r.pending_lm.insert(host.to_string(), lm);
            }
        }
    }

    pub fn host(&self, name: &str) -> Option<&Host> {
        self.r.by_name.get(name).map(|&i| &self.r.hosts[i as usize])
    }
    pub fn hosts(&self) -> &[Host] {
        &self.r.hosts
    }
    pub fn host_by_ip(&self, ip: IpAddr) -> Option<&str> {
        self.r.by_ip.get(&ip).map(|&i| &*self.r.hosts[i as usize].name)
    }
    pub fn stats(&self) -> &UdpStats {
        &self.r.stats
    }
    /// Counts ACKs actually sent (by `udp.rs`).
    pub fn count_acked(&mut self, n: u64) {
        self.r.stats.acked += n;
    }
    pub fn refusals(&self) -> &BTreeMap<&'static str, u64> {
        &self.r.by_reason
    }

    /// Decodes and applies one datagram. On `Ok(Accepted::Htb)` `ack` holds
    /// the ACK to send back to `from`; otherwise it is empty.
    pub fn on_datagram(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        now: Now,
        ack: &mut Vec<u8>,
        changes: &mut Vec<HostChange>,
    ) -> Result<Accepted, Refused> {
        ack.clear();
        self.r.stats.received += 1;
        let res = match self.dec.decode(bytes) {
            Ok(m) => self.r.apply(&m, from, now, ack, changes),
            Err(e) => Err(Refused(e.reason())),
        };
        match res {
            Ok(_) => self.r.stats.accepted += 1,
            Err(Refused(reason)) => self.r.refuse(reason, from.ip(), now.wall),
        }
        res
    }

    /// A confirmation's verdict (`confirm.rs`): `Up` when the host answered
    /// (its silence counts anew from now), else `Unreachable` or `Down`.
    /// Returns the state it had.
    /// An `Up` verdict also turns the path warning on (its change is pushed
    /// to `changes` the first time).
    pub fn set_verdict(
        &mut self,
        name: &str,
        new: Reach,
        now: Now,
        changes: &mut Vec<HostChange>,
    ) -> Option<Reach> {
        let i = *self.r.by_name.get(name)? as usize;
        let h = &mut self.r.hosts[i];
        let old = h.state;
        if old != Reach::Down {
            // A heartbeat came back meanwhile: it has the last word.
            return Some(old);
        }
        h.state = new;
        if new == Reach::Up {
            h.answered += 1;
            changes.extend(path::answered(h, now));
            h.last_seen = Some(now.mono);
            self.r.schedule(i);
        }
        Some(old)
    }

    /// When [`check`](Self::check) should next run: the earliest deadline,
    /// rounded up to [`CHECK_GRAIN_US`].
    pub fn next_deadline(&self) -> Option<f64> {
        let grain = |us: u64| us.div_ceil(CHECK_GRAIN_US) * CHECK_GRAIN_US;
        self.r.heap.peek().map(|Reverse((us, _))| grain(*us) as f64 / 1e6)
    }

    /// Judges the hosts whose deadline has passed, at most [`CHECK_BATCH`]
    /// changes and [`CHECK_POPS`] deadlines per call: the rest stay due
    /// (`next_deadline` is already past), so a mass outage is judged over
    /// several loop turns and PING and heartbeats are served between them.
    /// A call's cost is bounded by those counts, never by the table's size.
    pub fn check(&mut self, now: Now) -> Vec<HostChange> {
        let mut out = Vec::new();
        let due = micros(now.mono);
        let mut pops = 0;
        while let Some(&Reverse((at, i))) = self.r.heap.peek() {
            if at > due || out.len() >= CHECK_BATCH || pops >= CHECK_POPS {
                break;
            }
            pops += 1;
            self.r.heap.pop();
            let i = i as usize;
            self.r.hosts[i].queued = false;
            let p = self.r.params(&self.r.hosts[i]);
            let h = &mut self.r.hosts[i];
            let (Some(last), Reach::Up | Reach::Late) = (h.last_seen, h.state) else {
                continue;
            };
            let new = judge(&p, &h.window, last, now.mono);
            if new != h.state {
                let old = h.state;
                h.state = new;
                out.push(HostChange {
                    host: h.name.to_string(),
                    kind: ChangeKind::Heartbeat { old, new },
                    time: now.wall,
                    message: format!("no heartbeat for {:.1}s", now.mono - last),
                });
            }
            self.r.schedule(i);
        }
        out
    }
}

mod records;

mod ack;
mod report;

#[cfg(test)]
mod tests;
