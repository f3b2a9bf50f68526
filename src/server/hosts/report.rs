//! STATE lines and DUMP JSON of the host table: functions of the state,
//! apart from any socket code.

use super::HostTable;
use crate::clock::Now;
use crate::server::detector::Reach;
use std::fmt::Write;

/// Strangers and refused sources listed in STATE (DUMP has them all).
const STATE_STRANGERS: usize = 10;
const STATE_SOURCES: usize = 20;

impl HostTable {
    /// STATE: the counters, refusals per reason, then one line per host:
    /// `-- udp received N accepted N acked N refused N`
    /// `-- udp refused REASON N`
    /// `-- host NAME STATE rtt 0.31ms phi 0.4 seen 2s`
    pub fn state_lines(&self, out: &mut String, now: Now) {
        let s = &self.r.stats;
        let _ = writeln!(
            out,
            "-- udp received {} accepted {} acked {} refused {}",
            s.received, s.accepted, s.acked, s.refused
        );
        for (reason, n) in &self.r.by_reason {
            let _ = writeln!(out, "-- udp refused {reason} {n}");
        }
        let st = &self.r.strangers;
        let _ = writeln!(
            out,
            "-- strangers held {} of {} names {} datagrams {} evicted {} new_host_events_limited {}",
            st.len(),
            super::strangers::MAX_STRANGERS,
            st.stats.names,
            st.stats.datagrams,
            st.stats.evicted,
            self.r.new_host_events.refused
        );
        for s in st.recent(STATE_STRANGERS) {
            let _ = writeln!(
                out,
                "-- stranger {} from {} datagrams {} seen {}",
                s.name,
                s.addr,
                s.datagrams,
                crate::clock::fmt_time(s.last_wall)
            );
        }
        // The sources refused most recently, with what they claimed.
        let mut src: Vec<_> = self.r.by_source.iter().collect();
        src.sort_by(|a, b| b.1.last_wall.total_cmp(&a.1.last_wall));
        for (ip, s) in src.into_iter().take(STATE_SOURCES) {
            let _ = write!(out, "-- udp refused_from {ip} {} {}", s.last_reason, s.count);
            if let Some(n) = &s.name {
                let _ = write!(out, " name {n}");
            }
            if let Some(off) = s.clock_off {
                let _ = write!(out, " clock_off {off:+.1}s");
            }
            out.push('\n');
        }
        let mut counts = [0usize; 6];
        for h in &self.r.hosts {
            counts[h.state as usize] += 1;
        }
        let _ = writeln!(
            out,
            "-- hosts total {} new {} up {} late {} down {} stopped {} unreachable {}",
            self.r.hosts.len(),
            counts[Reach::New as usize],
            counts[Reach::Up as usize],
            counts[Reach::Late as usize],
            counts[Reach::Down as usize],
            counts[Reach::Stopped as usize],
            counts[Reach::Unreachable as usize]
        );
        for h in &self.r.hosts {
            let _ = write!(out, "-- host {} {}", h.name, h.state.name());
            if let Some(rtt) = h.rtt_ms {
                let _ = write!(out, " rtt {rtt:.2}ms");
            }
            if let Some(phi) = self.phi(h, now) {
                let _ = write!(out, " phi {phi:.1}");
            }
            if let Some(last) = h.last_seen {
                let _ = write!(out, " seen {:.0}s", (now.mono - last).max(0.0));
            }
            // Seq gaps: heartbeats lost on the way (the detector's loss input).
            if h.seq_gaps > 0 {
                let _ = write!(out, " lost {} ({:.1}%)", h.seq_gaps, 100.0 * h.window.loss());
            }
            if h.answered > 0 {
                let _ = write!(out, " answered-probes {}", h.answered);
            }
            if h.path_warned.is_some() {
                out.push_str(" heartbeat-path-warning");
            }
            if !h.in_work {
                out.push_str(" (not in the work)");
            }
            out.push('\n');
        }
    }

    fn phi(&self, h: &super::Host, now: Now) -> Option<f64> {
        let last = h.last_seen?;
        h.window.phi(now.mono - last, self.r.conf.intervals.grace)
    }

    /// DUMP: counters, refusals per reason and per source, every host.
    pub fn dump(&self, now: Now) -> serde_json::Value {
        let hosts: Vec<serde_json::Value> = self
            .r
            .hosts
            .iter()
            .map(|h| {
                serde_json::json!({
                    "name": h.name,
                    "in_work": h.in_work,
                    "addr": h.addr.map(|a| a.to_string()),
                    "state": h.state.name(),
                    "seen_ago": h.last_seen.map(|l| now.mono - l),
                    "last_seen": h.last_seen_wall,
                    "seq": h.seq,
                    "seq_gaps": h.seq_gaps,
                    "loss": h.window.loss(),
                    "answered_probes": h.answered,
                    "path_warning": h.path_warned.is_some(),
                    "rtt_ms": h.rtt_ms,
                    "boot": h.boot_wall,
                    "uptime": h.uptime,
                    "version": &*h.version,
                    "interval": h.interval,
                    "phi": self.phi(h, now),
                    "gap_mean": h.window.mean(),
                    "gap_sd": h.window.std_dev(),
                    "received": h.received,
                    "items": h.items,
                })
            })
            .collect();
        let sources: serde_json::Map<String, serde_json::Value> =
            self.r.by_source.iter().map(|(ip, s)| (ip.to_string(), serde_json::json!(s))).collect();
        serde_json::json!({
            "udp": self.r.stats,
            "refused": self.r.by_reason,
            "refused_by_source": sources,
            "refused_other_sources": self.r.other_sources,
            "strangers": {
                "held": self.r.strangers.len(),
                "max": super::strangers::MAX_STRANGERS,
                "stats": self.r.strangers.stats,
                "new_host_events_limited": self.r.new_host_events.refused,
                "recent": self.r.strangers.recent(super::strangers::MAX_STRANGERS),
            },
            "clock_off_acks": self.r.clock_acks.sent,
            "hosts": hosts,
        })
    }
}
