//! CLIENTS, the fleet view, the loop's side: a cheap snapshot of every
//! host (the work's and the strangers heard from: plain values and shared
//! reports, no JSON, `fleet_view.rs`) goes to the store thread with the
//! query; the store thread adds the events and open alerts and serializes
//! the answer. With 10,000 hosts the loop's part is copying small records;
//! the JSON (megabytes) is built off it. DUMP shows the same host records.

use super::fleet::Report;
use super::fleet_view::{Beat, Row, Snapshot};
use super::{fleet, show, FleetHost, Server};
use crate::answer::Refused;
use crate::clock::Now;
use crate::effects::Ticket;
use crate::units::round_json;
use serde_json::Value;
use std::sync::Arc;

impl Server {
    /// `CLIENTS [host] [item] [n or ival]`: the snapshot goes to the store
    /// thread, which answers the ticket with the whole fleet view.
    pub fn clients(&mut self, args: &[String], now: Now) -> Result<Ticket, Refused> {
        let ticket = crate::effects::new_ticket();
        if let Some(s) = self.starting.as_mut() {
            // The reports and the host table are not read yet: asked again
            // once they are (`on_started`).
            s.clients.push((ticket, args.to_vec()));
            return Ok(ticket);
        }
        self.clients_for(ticket, args, now)?;
        Ok(ticket)
    }

    /// CLIENTS for a session waiting on `ticket`: the store thread answers it.
    pub(super) fn clients_for(
        &mut self,
        ticket: Ticket,
        args: &[String],
        now: Now,
    ) -> Result<(), Refused> {
        let resolve =
            |a: &str| self.resolve_host(a).or_else(|| self.stranger(a).map(str::to_string));
        let parsed = fleet::parse_clients_args(args, resolve, |i| self.known_item(i), now.wall);
        let (host, item, filter) = parsed.map_err(Refused::Bad)?;
        let wanted = |n: &str| host.as_deref().is_none_or(|x| x == n);
        let mut rows: Vec<Row> = Vec::new();
        for (name, h) in self.hosts.iter().filter(|(n, _)| wanted(n)) {
            rows.push(self.host_row(name, h, now));
        }
        // Senders not in the work (hbd-style clients) are hosts with items too.
        for h in self.table.hosts().iter().filter(|h| !h.in_work && wanted(&h.name)) {
            if self.hosts.contains_key(&*h.name) {
                continue;
            }
            rows.push(Row {
                name: h.name.to_string(),
                tag: h.name.to_string(),
                address: h.addr.map(|a| a.ip().to_string()).unwrap_or_default(),
                in_work: false,
                beat: self.beat(&h.name, now),
                report: None,
            });
        }
        let view = Box::new(Snapshot { rows, now: now.wall });
        let req = super::store::Req::Clients { ticket, host, item, filter, view, now: now.wall };
        self.store.send(req);
        Ok(())
    }

    pub(super) fn host_row(&self, name: &str, h: &FleetHost, now: Now) -> Row {
        let stale = show::is_stale(self.reach_name(name));
        Row {
            name: name.to_string(),
            tag: h.tag.clone(),
            address: h.address.clone(),
            in_work: true,
            beat: self.beat(name, now),
            report: self.reports.get(name).map(|r| (r.clone(), stale)),
        }
    }

    fn beat(&self, host: &str, now: Now) -> Option<Beat> {
        let h = self.table.host(host)?;
        Some(Beat {
            state: h.state.name(),
            level: super::beats::reach_level(&self.work.levels, h.state),
            rtt_ms: h.rtt_ms.map(round_json),
            phi: h
                .last_seen
                .and_then(|l| h.window.phi(now.mono - l, self.work.intervals.grace))
                .map(round_json),
            seen: h.last_seen.map(|l| round_json((now.mono - l).max(0.0))),
            lost: h.seq_gaps,
            loss: round_json(h.window.loss()),
            answered_probes: h.answered,
            path_warning: h.path_warned.is_some(),
            version: h.version.to_string(),
            uptime: h.uptime,
            items: h.items.clone(),
        })
    }

    /// The name of a sender heard from but not in the work.
    fn stranger(&self, name: &str) -> Option<&str> {
        self.table.host(name).filter(|h| !h.in_work).map(|h| &*h.name)
    }

    /// Does any host have an item of this name (in its report, its PLG
    /// items, or as one the server sets)?
    fn known_item(&self, item: &str) -> bool {
        use crate::event::builtin::{HEARTBEAT, REBOOT, RTT, SERVER};
        const SET: &[&str] = &[HEARTBEAT, REBOOT, RTT, SERVER];
        if SET.contains(&item) {
            return true;
        }
        let in_report = |r: &Arc<Report>| match r.body.get("items") {
            Some(Value::Object(m)) => m.contains_key(item),
            Some(Value::Array(a)) => {
                a.iter().any(|v| v.get("name").and_then(Value::as_str) == Some(item))
            }
            _ => false,
        };
        self.reports.values().any(in_report)
            || self.table.hosts().iter().any(|h| h.items.contains_key(item))
    }
}
