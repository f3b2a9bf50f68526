//! The answers of the host table: the ACK of an accepted HTB, and the
//! signed, rate-limited `clock_off` ACK of a heartbeat whose `ts` is off by
//! more than the window (issue 13 item 5), so its client can say its clock
//! is wrong instead of only "no ACK". Also PLG datagrams (plugin items).

use super::{HostChange, ItemVal, Records, Refused, MAX_ITEMS};
use crate::clock::Now;
use crate::wire::{self, Message, Val};
use std::fmt::Write;
use std::net::SocketAddr;

/// `;srv_ts=<wall>` formatted once per clock reading: a batch of datagrams
/// shares one `now`, and a float's formatting was a tenth of an ACK's cost.
#[derive(Debug, Default)]
pub(super) struct SrvTs {
    wall: Option<u64>,
    text: String,
}

impl SrvTs {
    fn text(&mut self, wall: f64) -> &str {
        if self.wall != Some(wall.to_bits()) {
            self.text.clear();
            let _ = write!(self.text, ";srv_ts={wall:.5}");
            self.wall = Some(wall.to_bits());
        }
        &self.text
    }
}

impl Records {
    pub(super) fn build_ack(
        &mut self,
        m: &super::records::HtbFields<'_>,
        now: Now,
        work_lm: crate::work::version::Version,
        ack: &mut Vec<u8>,
    ) {
        let t = &mut self.ack_text;
        t.clear();
        // seq and ts are echoed as sent (ts verbatim, so the client can match it).
        let _ = write!(t, "seq={}", m.seq.map(|v| v.text()).unwrap_or_default());
        if let Some(Val::Plain(ts)) = m.ts {
            let _ = write!(t, ";ts={ts}");
        }
        t.push_str(self.srv_ts.text(now.wall));
        // The work version is an integer (ms): the client compares it exactly.
        let _ = write!(t, ";work={work_lm}");
        if let Some(key) = &self.conf.key {
            wire::sign_payload(t, key);
        }
        wire::frame_stored("ACK", t.as_bytes(), ack);
    }

    /// A correctly signed datagram with a stale `ts`: counted per source
    /// with the measured offset; an HTB is answered (at most once per
    /// source every few seconds) with `clock_off=<seconds>`.
    pub(super) fn on_stale(
        &mut self,
        m: &Message<'_>,
        from: SocketAddr,
        now: Now,
        ack: &mut Vec<u8>,
    ) -> Refused {
        let off = m.get("ts").and_then(|v| v.as_f64()).map(|ts| ts - now.wall);
        let name = m.get("name").map(|v| v.text().chars().take(255).collect()).unwrap_or_default();
        self.detail = Some((name, off));
        let Some(off) = off.filter(|o| o.is_finite()) else { return Refused("stale") };
        if m.id != "HTB" || !self.clock_acks.allow(from.ip(), now.mono) {
            return Refused("stale");
        }
        let Some(key) = &self.conf.key else { return Refused("stale") };
        let t = &mut self.ack_text;
        t.clear();
        let _ = write!(t, "seq={}", m.get("seq").map(|v| v.text()).unwrap_or_default());
        if let Some(Val::Plain(ts)) = m.get("ts") {
            let _ = write!(t, ";ts={ts}");
        }
        let _ = write!(t, ";srv_ts={:.5};clock_off={off:.1}", now.wall);
        wire::sign_payload(t, key);
        wire::frame_stored("ACK", t.as_bytes(), ack);
        Refused("stale")
    }

    pub(super) fn on_plg(
        &mut self,
        m: &Message<'_>,
        from: SocketAddr,
        now: Now,
        changes: &mut Vec<HostChange>,
    ) -> Result<(), Refused> {
        let plugin = match m.get("plugin") {
            Some(p) => p.text().into_owned(),
            None => return Err(Refused("no_plugin")),
        };
        let i = self.host_for(m, from, now, changes)?;
        self.touch(i, from);
        let h = &mut self.hosts[i];
        for (k, v) in m.pairs() {
            if matches!(k, "name" | "plugin" | "ts" | "sig") {
                continue;
            }
            let item = format!("{plugin}.{k}");
            if h.items.len() >= MAX_ITEMS && !h.items.contains_key(&item) {
                continue;
            }
            let val = match v.as_f64() {
                Some(n) => ItemVal::Num(n),
                None => ItemVal::Text(v.text().chars().take(1024).collect()),
            };
            h.items.insert(item, val);
        }
        Ok(())
    }
}
