//! The server's heartbeat side, glued to the rest: datagrams drained from
//! the UDP socket into the host table, reachability checked on the table's
//! own deadlines (never by scanning per packet), host changes turned into
//! events that are stored like a client's and handed to notifications, and
//! the table saved to server.db periodically and on stop.

use super::{fleet, Server};
use crate::clock::Now;
use crate::effects::ServerTick;
use crate::effects::{Effects, Tick};
use crate::event::{builtin, Event};
use crate::event_loop::mmsg::{Drained, Outgoing, Received};
use crate::server::detector::Reach;
use crate::server::hosts::{ChangeKind, HostChange};
use crate::units::round_json;
use crate::work::model::Level;
use fleet::EventsFilter;

/// The level of the last `store:server.db` event of `host` (read at start,
/// before the store thread takes the database).
pub(super) fn last_store_notice(db: &rusqlite::Connection, host: &str) -> Option<String> {
    fleet::query_events(db, Some(host), Some(builtin::SERVER_STORE), &EventsFilter::Last(1))
        .ok()
        .and_then(|v| v.last()?.get("new_level")?.as_str().map(String::from))
}

/// How often the host table is saved.
pub const PERSIST_EVERY: f64 = 60.0;
/// Host records copied for the save in one turn (~0.3 µs each).
pub const PERSIST_SLICE: usize = 2_000;

/// The work level a reachability state stands for: up is the best level,
/// late `sick` (or the middle), down the worst; a planned stop is the
/// second best (not a failure, but not fine either).
pub fn reach_level(levels: &[Level], r: Reach) -> String {
    let n = levels.len();
    let at = |i: usize| {
        levels.get(i.min(n.saturating_sub(1))).map(|l| l.name.clone()).unwrap_or_default()
    };
    match r {
        Reach::New | Reach::Up => at(0),
        Reach::Late | Reach::Unreachable => match levels.iter().find(|l| l.name == "sick") {
            Some(l) => l.name.clone(),
            None => at(n / 2),
        },
        Reach::Down => at(n.saturating_sub(1)),
        Reach::Stopped => at(1),
    }
}

impl Server {
    /// One batch of datagrams the loop received: applied to the host table,
    /// the ACKs that are due queued in `acks` (the loop sends them).
    pub fn on_datagrams(&mut self, rx: &Received, acks: &mut Outgoing, now: Now) {
        self.ingest.on_batch(rx, &mut self.table, now, acks);
    }

    /// The end of a drain (one turn's share of the socket): ACKs counted,
    /// host changes turned into events, the deadline timer set.
    pub fn udp_drained(
        &mut self,
        d: &Drained,
        err: Option<std::io::Error>,
        now: Now,
        fx: &mut Effects,
    ) {
        if let Some(e) = err {
            log::warn!("heartbeat socket: {e}");
        }
        let changes = self.ingest.after_drain(d, &mut self.table);
        self.host_changes(changes, now, fx);
        self.arm_check(now, fx);
    }

    /// The CheckHosts timer: late/down from the table's deadlines.
    pub(super) fn check_hosts(&mut self, now: Now, fx: &mut Effects) {
        // A timer served late means the loop itself stalled: the silence it
        // finds may be the server's own (isolation guard).
        if let Some(at) = self.check_at {
            self.note_lag(now.mono - at, now, fx);
        }
        self.check_at = None;
        let changes = self.table.check(now);
        self.host_changes(changes, now, fx);
        self.arm_check(now, fx);
    }

    /// Sets a CheckHosts timer for the table's next deadline, unless an
    /// earlier one is already set.
    pub(super) fn arm_check(&mut self, now: Now, fx: &mut Effects) {
        let Some(t) = self.table.next_deadline() else { return };
        // A deadline already past (the rest of a sliced mass check) is due
        // next turn; armed for "now" so its wait does not read as a stall.
        let t = t.max(now.mono);
        // One pending at or before it is enough, even one already past due
        // (served by this turn's timers): a drain arms after every batch.
        if self.check_at.is_some_and(|c| c <= t) {
            return;
        }
        self.check_at = Some(t);
        fx.timer(t, Tick::Server(ServerTick::CheckHosts));
    }

    /// The host table's rows go to the store thread, which rewrites the
    /// saved table.
    pub(super) fn persist_hosts(&mut self) {
        self.persisting = None;
        if self.starting.is_some() {
            // The saved table is not read yet: writing this one would lose it.
            return;
        }
        self.store.send(super::store::Req::SaveHosts(self.table.rows()));
    }

    /// The periodic save: the rows are copied [`PERSIST_SLICE`] a turn
    /// (a timer due at once for the next slice), then sent in one request.
    pub(super) fn persist_slice(&mut self, now: Now, fx: &mut Effects) {
        if self.starting.is_some() {
            // As in `persist_hosts`: the saved table is not read yet.
            self.persisting = None;
            return;
        }
        let (mut rows, from) = self.persisting.take().unwrap_or_default();
        let next = self.table.rows_from(from, PERSIST_SLICE, &mut rows);
        if next < self.table.hosts().len() {
            self.persisting = Some((rows, next));
            fx.timer(now.mono, Tick::Server(ServerTick::PersistMore));
        } else {
            self.store.send(super::store::Req::SaveHosts(rows));
        }
    }

    /// Stores the events of a batch of changes in one transaction (a mass
    /// outage or 100,000 first heartbeats must not cost a commit each),
    /// then hands each to notifications.
    fn host_changes(&mut self, changes: Vec<HostChange>, now: Now, fx: &mut Effects) {
        let changes = self.hold_for_confirmation(changes, now, fx);
        self.emit_changes(changes, now, fx);
    }

    /// Stores and notifies changes (confirmed ones come here directly).
    pub(super) fn emit_changes(&mut self, changes: Vec<HostChange>, now: Now, fx: &mut Effects) {
        if changes.is_empty() {
            return;
        }
        let mut events = Vec::with_capacity(changes.len());
        for c in &changes {
            if let Some(ev) = self.change_event(c) {
                log_change(c, &ev);
                events.push(ev);
            }
        }
        self.store_events(events, None, now, fx);
    }

    /// The event for a change of the host table; none for a known host's
    /// first healthy heartbeat (not news).
    fn change_event(&mut self, c: &HostChange) -> Option<Event> {
        let levels = &self.work.levels;
        let (item, old, new) = match &c.kind {
            ChangeKind::Heartbeat { old: Reach::New, new: Reach::Up } => return None,
            ChangeKind::Heartbeat { old, new } => {
                let old = (*old != Reach::New).then(|| reach_level(levels, *old));
                (builtin::HEARTBEAT, old, reach_level(levels, *new))
            }
            ChangeKind::Reboot => (builtin::REBOOT, None, reach_level(levels, Reach::Up)),
            // A new host is news about its heartbeat (the message says so),
            // not about an item called `new`.
            ChangeKind::NewHost => (builtin::HEARTBEAT, None, reach_level(levels, Reach::Up)),
            // A warning (the second best level), not a failure of the host.
            ChangeKind::HeartbeatPath(on) => {
                let fine = reach_level(levels, Reach::Up);
                let warn = levels.get(1).map(|l| l.name.clone()).unwrap_or_else(|| fine.clone());
                if *on {
                    (builtin::HEARTBEAT_PATH, Some(fine), warn)
                } else {
                    (builtin::HEARTBEAT_PATH, Some(warn), fine)
                }
            }
            ChangeKind::Isolated(on) => {
                let (fine, sick) =
                    (reach_level(levels, Reach::Up), reach_level(levels, Reach::Late));
                if *on {
                    (builtin::ISOLATION, Some(fine), sick)
                } else {
                    (builtin::ISOLATION, Some(sick), fine)
                }
            }
        };
        self.event_seq += 1;
        Some(Event {
            id: format!("srv-{}-{}", self.boot_id, self.event_seq),
            host: c.host.clone(),
            item: item.to_string(),
            old_level: old,
            new_level: new,
            old_value: None,
            new_value: None,
            time: round_json(c.time),
            message: c.message.clone(),
        })
    }

    /// server.db was corrupt at start: the notice becomes an event of this
    /// host's `store:server.db` item (so it alerts like any other) and a
    /// STATE line. A healthy start after such an event is its recovery.
    pub(super) fn store_notice_event(
        &mut self,
        notice: Option<String>,
        last: Option<String>,
        now: Now,
        fx: &mut Effects,
    ) {
        let best = reach_level(&self.work.levels, Reach::Up);
        let (level, message) = match &notice {
            Some(n) => (reach_level(&self.work.levels, Reach::Late), n.clone()),
            None if last.as_ref().is_some_and(|l| *l != best) => {
                (best, "server.db opened healthy".to_string())
            }
            None => return,
        };
        self.event_seq += 1;
        let ev = Event {
            id: format!("srv-{}-{}", self.boot_id, self.event_seq),
            host: self.host.clone(),
            item: builtin::SERVER_STORE.into(),
            old_level: last,
            new_level: level,
            old_value: None,
            new_value: None,
            time: now.wall,
            message,
        };
        self.store_notice = notice;
        self.store_events(vec![ev], None, now, fx);
    }

    /// The host's reachability as notifications and CLIENTS see it.
    pub(super) fn reach_name(&self, host: &str) -> &'static str {
        self.table.host(host).map(|h| h.state.name()).unwrap_or("new")
    }
}

/// A host going late, unreachable, down, stopped or back, as
/// `HOST ITEM: message`: WARN for down (someone should look), INFO for the rest.
fn log_change(c: &HostChange, ev: &Event) {
    let level = match &c.kind {
        ChangeKind::Heartbeat { new: Reach::Down, .. } => log::Level::Warn,
        _ => log::Level::Info,
    };
    log::log!(level, "{} {}: {}", ev.host, ev.item, c.message);
}

/// The addresses this host's own client sends heartbeats from: its bind
/// address and work address; with no bind address (all interfaces) also
/// loopback, which the kernel picks as the source towards 127.0.0.1.
pub(super) fn own_udp_sources(st: &crate::effects::Setup) -> Vec<std::net::IpAddr> {
    use std::net::IpAddr;
    let mut v = st.own_addrs.to_vec();
    let bind =
        st.conf.bind.as_deref().and_then(|b| b.trim_matches(['[', ']']).parse::<IpAddr>().ok());
    if bind.is_none_or(|b| b.is_unspecified()) {
        v.push(IpAddr::from([127, 0, 0, 1]));
        v.push(IpAddr::from(std::net::Ipv6Addr::LOCALHOST));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reach_levels() {
        let lv = crate::work::default_levels();
        assert_eq!(reach_level(&lv, Reach::Up), "fine");
        assert_eq!(reach_level(&lv, Reach::Late), "sick");
        assert_eq!(reach_level(&lv, Reach::Down), "dead");
        assert_eq!(reach_level(&lv, Reach::Stopped), "soso");
        let two = vec![
            Level { name: "ok".into(), long: "ok".into() },
            Level { name: "bad".into(), long: "bad".into() },
        ];
        assert_eq!(reach_level(&two, Reach::Late), "bad");
        assert_eq!(reach_level(&two, Reach::Stopped), "bad");
    }
}
