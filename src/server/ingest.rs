//! What clients send the server: REPORT (a client's latest items) and
//! EVENTS (its level changes, durable), checked here (the payload, the
//! host is in the work, the sender is that host) and sent to the store
//! thread; the answer waits for its commit (`stored.rs` applies it, and
//! `verbs/server.rs` frames it). Events the server raises itself take the
//! same way in (`on_event`).

use super::fleet::{self, Report};
use super::{store, Server, NOTIFY_COALESCE};
use crate::answer::Refused;
use crate::clock::Now;
use crate::effects::{Effects, Ticket};
use crate::event::Event;
use std::net::IpAddr;

impl Server {
    /// May `peer` speak for `host`? Its own address, or localhost.
    pub(super) fn speaks_for(&self, host: &str, peer: IpAddr, local: bool) -> bool {
        local || self.by_ip.get(&crate::work::addr::canonical_ip(peer)).is_some_and(|h| h == host)
    }

    /// Is `host` in the work, and is `peer` it?
    fn check_sender(
        &self,
        what: &'static str,
        host: &str,
        peer: IpAddr,
        local: bool,
    ) -> Result<(), Refused> {
        if !self.hosts.contains_key(host) {
            return Err(Refused::NotInWork(host.to_string()));
        }
        if !self.speaks_for(host, peer, local) {
            return Err(Refused::NotThatHost { what, host: host.to_string(), peer });
        }
        Ok(())
    }

    /// `REPORT <json>`: answered once stored.
    pub fn report(
        &mut self,
        payload: &str,
        peer: IpAddr,
        local: bool,
        now: Now,
    ) -> Result<Ticket, Refused> {
        let (host, body) = fleet::parse_report(payload).map_err(Refused::Bad)?;
        self.check_sender("report", &host, peer, local)?;
        let report = Report { time: now.wall, ip: peer.to_string(), body };
        let ticket = crate::effects::new_ticket();
        let (text, work_file) = (payload.trim().to_string(), self.work_path(&host));
        self.store.send(store::Req::Report { host, report, text, work_file, ticket });
        Ok(ticket)
    }

    /// `EVENTS <json>`: answered `ok` only once the events are committed.
    pub fn events(
        &mut self,
        payload: &str,
        peer: IpAddr,
        local: bool,
        now: Now,
        fx: &mut Effects,
    ) -> Result<Ticket, Refused> {
        let batch = fleet::parse_events(payload).map_err(Refused::Bad)?;
        self.check_sender("events", &batch.host, peer, local)?;
        let ticket = crate::effects::new_ticket();
        self.store_events(batch.events, Some(ticket), now, fx);
        Ok(ticket)
    }

    /// A new event reached the server (from a client or its own heartbeat
    /// path), on its way to the store thread, which hands it to the
    /// notifier: the loop's part.
    pub(super) fn on_event(&mut self, e: &Event, now: Now, fx: &mut Effects) {
        if let Some(s) = self.starting.as_mut() {
            // Newer than what server.db says of this item (`on_started`).
            s.touched.insert((e.host.clone(), e.item.clone()));
        }
        self.note_level(e);
        // A burst of events shares one Notify tick (its cost grows with the
        // number of alerts), 20 ms later at most.
        self.notify_soon(now, fx, NOTIFY_COALESCE);
        log::info!(
            "event {} {} {} -> {}",
            e.host,
            e.item,
            e.old_level.as_deref().unwrap_or("-"),
            e.new_level
        );
    }
}
