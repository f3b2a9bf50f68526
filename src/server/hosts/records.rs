//! The host records' side of a heartbeat: find or add the record for a
//! decoded HTB (by name, checking its source address and signature), apply
//! it (reach, detector window, versions), and build the ACK when one is
//! due. `HostTable` (the parent) owns the decoder and the deadline check.

use super::*;

impl Records {
    pub(super) fn params(&self, h: &Host) -> Params {
        let iv = &self.conf.intervals;
        Params {
            interval: h.interval,
            grace: iv.grace,
            missed: iv.missed,
            kind: super::super::detector::Kind::from_intervals(iv),
            // The server has a command address only for hosts of the work.
            confirmable: h.in_work,
        }
    }

    /// Pushes the host's next deadline unless one is queued or none exists.
    pub(super) fn schedule(&mut self, i: usize) {
        let p = self.params(&self.hosts[i]);
        let h = &mut self.hosts[i];
        if h.queued {
            return;
        }
        let Some(last) = h.last_seen else { return };
        if let Some(at) = next_deadline_near(&p, &h.window, last, h.state, h.cross as f64) {
            h.queued = true;
            // The hint for the next search (f32: a µs at the scale of hours).
            h.cross = (at - last) as f32;
            self.heap.push(Reverse((micros(at), i as u32)));
        }
    }

    pub(super) fn find_or_add(&mut self, name: &str, in_work: bool) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i as usize;
        }
        let i = self.hosts.len();
        let name: Arc<str> = Arc::from(name);
        let mut h = Host::new(name.clone(), in_work, self.conf.intervals.heartbeat);
        if let Some(lm) = self.pending_lm.remove(&*name) {
            h.work_lm = lm;
        }
        self.hosts.push(h);
        self.by_name.insert(name, i as u32);
        i
    }

    pub(super) fn refuse(&mut self, reason: &'static str, ip: IpAddr, wall: f64) {
        self.stats.refused += 1;
        *self.by_reason.entry(reason).or_insert(0) += 1;
        let detail = self.detail.take();
        let n = self.by_source.len();
        let s = match self.by_source.get_mut(&ip) {
            Some(s) => s,
            None if n < MAX_SOURCES => self.by_source.entry(ip).or_default(),
            None => {
                self.other_sources += 1;
                return;
            }
        };
        s.count += 1;
        s.last_reason = reason;
        s.last_wall = wall;
        if let Some((name, off)) = detail {
            s.name = Some(name);
            s.clock_off = off.or(s.clock_off.filter(|_| reason == "stale"));
        }
    }

    pub(super) fn apply(
        &mut self,
        m: &Message<'_>,
        from: SocketAddr,
        now: Now,
        ack: &mut Vec<u8>,
        changes: &mut Vec<HostChange>,
    ) -> Result<Accepted, Refused> {
        if let Some(key) = &self.conf.key {
            match wire::verify(m, key, now.wall) {
                Verified::Ok => {}
                Verified::Stale => return Err(self.on_stale(m, from, now, ack)),
                v => return Err(Refused(v.reason())),
            }
        }
        match m.id {
            "HTB" => self.on_htb(m, from, now, ack, changes).map(|_| Accepted::Htb),
            "PLG" => self.on_plg(m, from, now, changes).map(|_| Accepted::Plg),
            _ => Err(Refused("unknown_id")),
        }
    }

    /// The record a datagram is about: by `name`, else by source address.
    pub(super) fn host_for(
        &mut self,
        m: &Message<'_>,
        from: SocketAddr,
        now: Now,
        changes: &mut Vec<HostChange>,
    ) -> Result<usize, Refused> {
        let name = match m.get("name") {
            Some(v) => v.text(),
            None => match self.by_ip.get(&from.ip()) {
                Some(&i) => return Ok(i as usize),
                None => return Err(Refused("no_name")),
            },
        };
        if name.is_empty() || name.len() > 255 || name.contains(char::is_whitespace) {
            return Err(Refused("bad_name"));
        }
        if let Some(&i) = self.by_name.get(name.as_ref()) {
            let h = &self.hosts[i as usize];
            // Signed datagrams speak for themselves; unsigned ones for a
            // work host only from its own addresses.
            let ip = crate::work::addr::canonical_ip(from.ip());
            if h.in_work && self.conf.key.is_none() && !h.sources.contains(&ip) {
                self.detail = Some((name.into_owned(), None));
                return Err(Refused("wrong_source"));
            }
            return Ok(i as usize);
        }
        if self.senders >= self.conf.intervals.hbd_senders as usize {
            self.strangers.touch(&name, from.ip(), now.wall);
            return Err(Refused("stranger"));
        }
        self.senders += 1;
        let i = self.find_or_add(&name, false);
        if self.new_host_events.take(now.mono) {
            changes.push(HostChange {
                host: name.into_owned(),
                kind: ChangeKind::NewHost,
                time: now.wall,
                message: format!("new host from {}", from.ip()),
            });
        }
        Ok(i)
    }

    pub(super) fn touch(&mut self, i: usize, from: SocketAddr) {
        let h = &mut self.hosts[i];
        h.received += 1;
        if h.addr != Some(from) {
            if let Some(old) = h.addr {
                if self.by_ip.get(&old.ip()) == Some(&(i as u32)) {
                    self.by_ip.remove(&old.ip());
                }
            }
            h.addr = Some(from);
            self.by_ip.insert(from.ip(), i as u32);
        }
    }

    pub(super) fn on_htb(
        &mut self,
        m: &Message<'_>,
        from: SocketAddr,
        now: Now,
        ack: &mut Vec<u8>,
        changes: &mut Vec<HostChange>,
    ) -> Result<(), Refused> {
        let i = self.host_for(m, from, now, changes)?;
        let fields = HtbFields::of(m);
        let m = &fields;
        if self.conf.key.is_some() {
            let bid = m.bid.and_then(|v| v.as_i64());
            let seq = m.seq.and_then(|v| v.as_i64());
            let ts = m.ts.and_then(|v| v.as_f64());
            if !self.hosts[i].replay.get_or_insert_with(Box::default).accept(bid, seq, ts) {
                self.detail = Some((self.hosts[i].name.to_string(), None));
                return Err(Refused("replay"));
            }
        }
        self.touch(i, from);
        let default_iv = self.conf.intervals.heartbeat;
        let h = &mut self.hosts[i];
        let seen_before = h.last_seen.is_some();
        let prev_seen = h.last_seen;
        let booted = m.boot.and_then(|v| v.as_bool()) == Some(true);
        // Seq numbers this gap spans (1: nothing lost), for the detector.
        let mut delta = 1;
        if let Some(seq) = m.seq.and_then(|v| v.as_i64()).filter(|s| *s >= 0) {
            let seq = seq as u64;
            // A restarted client starts a new sequence: no gap across a boot.
            if let Some(prev) = h.seq.filter(|_| !booted) {
                if seq > prev + 1 {
                    h.seq_gaps += seq - prev - 1;
                    delta = seq - prev;
                }
            }
            h.seq = Some(seq);
        }
        h.interval = m
            .interval
            .and_then(|v| v.as_f64())
            .filter(|v| *v > 0.0 && *v < 1e6)
            .unwrap_or(default_iv);
        if let Some(rtt) = m.rtt.and_then(|v| v.as_f64()).filter(|v| *v >= 0.0) {
            h.rtt_ms = Some(rtt);
        }
        if let Some(ver) = m.ver {
            let ver = ver.text();
            if *ver != *h.version {
                h.version = self.versions.intern(&ver);
            }
        }
        let uptime = m.uptime.and_then(|v| v.as_f64());
        let lower_uptime = matches!((h.uptime, uptime), (Some(a), Some(b)) if b < a);
        if let Some(u) = uptime {
            h.uptime = Some(u);
            h.boot_wall = Some(now.wall - u);
        } else if booted {
            h.boot_wall = Some(now.wall);
        }
        if seen_before && (booted || lower_uptime) {
            changes.push(HostChange {
                host: h.name.to_string(),
                kind: ChangeKind::Reboot,
                time: now.wall,
                message: if booted {
                    "restarted (boot=1)".into()
                } else {
                    "uptime went down".into()
                },
            });
        }
        // Only gaps between heartbeats of a live host describe its rhythm.
        if let (Some(last), Reach::Up | Reach::Late) = (h.last_seen, h.state) {
            if !booted {
                h.window.observe(now.mono - last, delta);
            }
        }
        h.last_seen = Some(now.mono);
        h.last_seen_wall = Some(now.wall);
        let shutdown = m.shutdown.and_then(|v| v.as_bool()) == Some(true);
        let new = if shutdown { Reach::Stopped } else { Reach::Up };
        if h.state != new {
            let old = h.state;
            h.state = new;
            changes.push(HostChange {
                host: h.name.to_string(),
                kind: ChangeKind::Heartbeat { old, new },
                time: now.wall,
                message: if shutdown {
                    "planned stop (shutdown=1)".into()
                } else {
                    back_message(old, prev_seen.map(|t| now.mono - t), from)
                },
            });
        }
        changes.extend(path::heartbeat(h, now));
        let work_lm = h.work_lm;
        self.schedule(i);
        if ack_due(m, work_lm) {
            self.build_ack(m, now, work_lm, ack);
        }
        Ok(())
    }
}

/// Whether an accepted HTB is answered (docs/wire.md, "ACK on demand"):
/// always, unless it says `ack=0`; then only when it names a `work`
/// version other than the one we have for it (a pending work change).
/// Senders that do not know the field (hbd's) get an ACK for every one.
pub(super) fn ack_due(m: &HtbFields<'_>, work_lm: crate::work::version::Version) -> bool {
    if m.ack.and_then(|v| v.as_bool()) != Some(false) {
        return true;
    }
    match m.work {
        Some(v) => work_lm > 0 && v.as_i64() != Some(work_lm),
        None => false,
    }
}

/// The fields of an HTB its handling reads, found in one pass over the
/// pairs: each `Message::get` is a scan of them all, and a heartbeat made a
/// dozen (issue 18's profile: 8 % of the per-datagram CPU). As with `get`,
/// the first value of a key counts.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct HtbFields<'a> {
    pub seq: Option<Val<'a>>,
    pub ts: Option<Val<'a>>,
    pub bid: Option<Val<'a>>,
    pub interval: Option<Val<'a>>,
    pub rtt: Option<Val<'a>>,
    pub ver: Option<Val<'a>>,
    pub uptime: Option<Val<'a>>,
    pub boot: Option<Val<'a>>,
    pub shutdown: Option<Val<'a>>,
    pub ack: Option<Val<'a>>,
    pub work: Option<Val<'a>>,
}

impl<'a> HtbFields<'a> {
    pub fn of(m: &Message<'a>) -> HtbFields<'a> {
        let mut f = HtbFields::default();
        for (k, v) in m.pairs() {
            let slot = match k {
                "seq" => &mut f.seq,
                "ts" => &mut f.ts,
                "bid" => &mut f.bid,
                "interval" => &mut f.interval,
                "rtt" => &mut f.rtt,
                "ver" => &mut f.ver,
                "uptime" => &mut f.uptime,
                "boot" => &mut f.boot,
                "shutdown" => &mut f.shutdown,
                "ack" => &mut f.ack,
                "work" => &mut f.work,
                _ => continue,
            };
            slot.get_or_insert(v);
        }
        f
    }
}

/// Why a host is up now: its first heartbeat, or back after a silence.
pub(super) fn back_message(old: Reach, silent: Option<f64>, from: SocketAddr) -> String {
    match (old, silent) {
        (Reach::New, _) | (_, None) => format!("first heartbeat, from {}", from.ip()),
        (Reach::Stopped, Some(s)) => format!("heartbeat again after a planned stop ({s:.1}s)"),
        (_, Some(s)) => format!("heartbeat again after {s:.1}s of silence"),
    }
}
