//! The server role: who is alive (heartbeats), reports, durable events,
//! work distribution, the fleet verbs' domain side and alerting. This file
//! is the part (start, reload, ticks, calls, the REPORT/EVENTS/CLIENTS/ACK/
//! SILENCE paths); the verbs' table and framing are `verbs/server.rs`'s,
//! server.db and the notification engine belong to the store thread
//! (`store/`, queries in `fleet.rs`/`db.rs`; verbs waiting on a commit are
//! finished in `stored.rs`), reachability in `hosts/`, heartbeats
//! in `beats.rs`/`udp.rs`, work files in `works.rs`, fan-out targets in
//! `relay.rs`, the STATE/DUMP lines in `show.rs`.

mod beats;
mod confirm;
pub mod db;
pub mod detect_sim;
pub mod detector;
pub mod fleet;
pub mod hosts;
mod isolate;
mod reconcile;
mod relay;
mod show;
pub mod store;
mod stored;
pub mod udp;
mod works;

use crate::clock::Now;
use crate::command::{frame_err, Request};
use crate::effects::{Effects, ServerCall, ServerTick, Setup, Tick};
use crate::event::Event;
use crate::notify::NotifyDone;
use crate::timers::Chain;
use crate::verbs::reply::Reply;
use crate::work::model::Work;
use crate::work::version::Version;
use fleet::Report;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

/// Events are handed to delivery at most this long after they arrive.
const NOTIFY_COALESCE: f64 = 0.02;
/// How often old events are cleaned.
const CLEANUP_EVERY: f64 = 3600.0;

/// A fleet host as the server knows it from the work.
#[derive(Debug, Clone)]
struct FleetHost {
    tag: String,
    address: String,
    cmd: Option<SocketAddr>,
    /// Its groups of the work (`all` included): confirmation asks peers of
    /// the same group first (`confirm.rs`).
    groups: Vec<String>,
}

pub struct Server {
    host: String,
    work: Work,
    works_dir: PathBuf,
    /// The store thread: server.db and the notifier live there.
    store: store::Store,
    hosts: BTreeMap<String, FleetHost>,
    by_ip: HashMap<IpAddr, String>,
    by_tag: HashMap<String, String>,
    reports: BTreeMap<String, Report>,
    /// Heartbeats: the host table and the socket side.
    udp: hosts::HostTable,
    ingest: udp::Ingest,
    /// Monotonic time of the pending CheckHosts tick, if one is set.
    check_at: Option<f64>,
    /// The journal writer's counters (the writer itself lives in the ingest hook).
    journal_stats: Option<std::sync::Arc<crate::journal::JournalStats>>,
    /// Ids of the server's own events: `srv-<boot ms>-<seq>`.
    boot_id: u64,
    event_seq: u64,
    /// Monotonic time of the pending Notify tick, if one is set.
    notify_at: Option<f64>,
    stats: Stats,
    /// Addresses this host's own heartbeats may come from (its name is
    /// refused from anywhere else without a key).
    own_udp: Vec<IpAddr>,
    /// The work's names, resolved off the loop (`names.rs`).
    names: crate::names::Names,
    /// What was found wrong with server.db at start (shown in STATE).
    store_notice: Option<String>,
    /// Until the store thread has opened and read server.db: what waits
    /// for it (`stored.rs`).
    starting: Option<stored::Starting>,
    /// Why server.db cannot be used, when the store thread found so.
    store_unusable: Option<String>,
    /// The store's `failed_writes` already in the refusal counters.
    store_failed_writes: u64,
    /// Outbox ids handed to a helper thread and not yet done: the one gate
    /// of dispatch. With the outbox's rule (a row waits for the older rows
    /// of its alert and channel) it keeps one delivery per alert and channel
    /// in flight, even when a reload re-reads the outbox and sees the row
    /// again as pending.
    dispatched: std::collections::HashSet<i64>,
    /// Store answers not applied yet (`stored.rs`: a bounded slice a turn).
    store_backlog: std::collections::VecDeque<store::Answer>,
    /// Deliveries handed out by the notifier, waiting for room in the pool
    /// (`stored.rs`), how many are in the pool now, and the most that may be.
    deliveries_waiting: std::collections::VecDeque<crate::notify::NotifyJob>,
    in_pool: usize,
    deliveries_max: usize,
    /// The periodic save's rows so far and the next record (`beats.rs`).
    persisting: Option<(Vec<hosts::SavedHost>, usize)>,
    chains: Chains,
    /// The version of the server's own work that runs, and of the works
    /// dir (its mtime moves when mkwork renames or removes a file in it).
    own_lm: Version,
    dir_lm: Version,
    /// Host-items not at the best level, as the last event left them.
    open: reconcile::Open,
    /// Suspected hosts whose down is held while probes confirm it.
    confirm: confirm::Confirmations,
}

#[derive(Debug, Default)]
struct Chains {
    persist: Chain,
    cleanup: Chain,
    check_work: Chain,
}

#[derive(Debug, Default, serde::Serialize)]
struct Stats {
    reports: u64,
    events_received: u64,
    events_stored: u64,
    events_duplicate: u64,
}

impl Server {
    /// Starts the part; its store thread opens and reads server.db
    /// meanwhile (`store/start.rs`), and what it read is put in place when
    /// it says so (`on_started`). Until then heartbeats, PING and STATE
    /// are served as usual, and what needs the store waits for it.
    pub fn start(st: &Setup, now: Now, fx: &mut Effects) -> crate::error::Result<Server> {
        let open = store::Open {
            path: st.conf.server_db(),
            work: Box::new(st.work.server_part.clone().unwrap_or_default()),
            levels: st.work.levels.clone(),
            intervals: st.work.intervals.clone(),
            dash: dashboard(st.work),
            host: st.hostname.to_string(),
        };
        let store = store::Store::spawn(open, st.wake.clone())?;
        let key = st.conf.key.as_ref().map(|k| k.as_bytes().to_vec());
        let table_conf = hosts::TableConf { intervals: st.work.intervals.clone(), key };
        let work_hosts = st.work.server_part.as_ref().map(|p| p.hosts.clone()).unwrap_or_default();
        let udp = hosts::HostTable::new(table_conf, &work_hosts);
        let mut ingest = udp::Ingest::new();
        let mut journal_stats = None;
        if st.conf.journal_enabled {
            let j = crate::journal::Journal::spawn(
                crate::journal::JournalConf::from_conf(st.conf),
                crate::journal::QUEUE,
            )?;
            journal_stats = Some(j.stats.clone());
            let mut dec = crate::wire::Decoder::new();
            ingest.journal = Some(Box::new(move |data: &[u8], from, wall| {
                let message = match dec.decode(data) {
                    Ok(m) => m.to_json(),
                    Err(_) => serde_json::Value::Null,
                };
                j.log(crate::journal::Entry { wall, from, message });
            }));
        }
        let mut s = Server {
            host: st.hostname.to_string(),
            work: st.work.clone(),
            works_dir: st.conf.works_dir(),
            store,
            hosts: BTreeMap::new(),
            by_ip: HashMap::new(),
            by_tag: HashMap::new(),
            reports: BTreeMap::new(),
            udp,
            ingest,
            check_at: None,
            journal_stats,
            boot_id: (now.wall * 1000.0) as u64,
            event_seq: 0,
            notify_at: None,
            stats: Stats::default(),
            own_udp: beats::own_udp_sources(st),
            names: st.names.clone(),
            store_notice: None,
            starting: Some(Default::default()),
            store_unusable: None,
            store_failed_writes: 0,
            dispatched: Default::default(),
            store_backlog: Default::default(),
            deliveries_waiting: Default::default(),
            in_pool: 0,
            persisting: None,
            deliveries_max: stored::deliveries_max(st.conf.workers_queue),
            chains: Chains::default(),
            own_lm: st.work_lm,
            dir_lm: 0,
            open: Default::default(),
            confirm: Default::default(),
        };
        s.index_hosts();
        s.set_work_lms();
        s.allow_udp_sources();
        let g = s.chains.cleanup.arm();
        fx.timer(now.mono + 5.0, Tick::Server(ServerTick::Cleanup(g)));
        let g = s.chains.persist.arm();
        fx.timer(now.mono + beats::PERSIST_EVERY, Tick::Server(ServerTick::Persist(g)));
        s.schedule_check_work(now, fx);
        s.arm_check(now, fx);
        // Deliveries left pending by a previous run go out once the store
        // has read them (the Tick waits behind the opening in its queue).
        s.notify_soon(now, fx, 0.0);
        Ok(s)
    }

    /// A new work; `lm` is the version of the server's own work-file it came from.
    pub fn reload(
        &mut self,
        conf: &crate::conf::Conf,
        work: &Work,
        lm: Version,
        now: Now,
        fx: &mut Effects,
    ) {
        self.work = work.clone();
        self.own_lm = lm;
        self.works_dir = conf.works_dir();
        self.deliveries_max = stored::deliveries_max(conf.workers_queue);
        let before: std::collections::HashSet<String> = self.hosts.keys().cloned().collect();
        self.index_hosts();
        let left = before.into_iter().filter(|h| !self.hosts.contains_key(h)).collect();
        let work_hosts = work.server_part.as_ref().map(|p| p.hosts.clone()).unwrap_or_default();
        self.udp.set_work_hosts(&work_hosts);
        self.allow_udp_sources();
        self.udp.set_intervals(work.intervals.clone());
        self.set_work_lms();
        self.schedule_check_work(now, fx);
        self.arm_check(now, fx);
        // The notifier keeps what it knows (alerts, host states, storms)
        // and moves what is owed to the new work's users and channels.
        let sp = work.server_part.clone().unwrap_or_default();
        self.store.send(store::Req::Reload {
            work: Box::new(sp),
            levels: work.levels.clone(),
            intervals: work.intervals.clone(),
            dash: dashboard(work),
        });
        self.notify_soon(now, fx, 0.0);
        self.reconcile_work(&left, now, fx);
    }

    /// Makes sure a Notify tick comes within `after` seconds.
    fn notify_soon(&mut self, now: Now, fx: &mut Effects, after: f64) {
        let at = now.mono + after.max(0.0);
        if self.notify_at.is_some_and(|t| t <= at && t > now.mono - 1.0) {
            return;
        }
        self.notify_at = Some(at);
        fx.timer(at, Tick::Server(ServerTick::Notify));
    }

    /// The notifier's clock runs on the store thread; its jobs come back
    /// in `on_store`.
    fn notify_tick(&mut self, now: Now, _fx: &mut Effects) {
        self.notify_at = None;
        self.store.send(store::Req::Tick { now: now.wall });
    }

    /// Saves the host table and waits for the store thread to finish
    /// everything queued (the process is stopping or leaving the role).
    pub fn shutdown(&mut self, _now: Now, _fx: &mut Effects) {
        self.persist_hosts();
        self.store.close();
    }

    /// Besides its work address, a host's heartbeats may come from the
    /// address its name resolved to, and the server's own from its own
    /// addresses.
    fn allow_udp_sources(&mut self) {
        for (name, h) in &self.hosts {
            if let Some(a) = h.cmd {
                self.udp.allow_sources(name, &[a.ip()]);
            }
        }
        self.udp.allow_sources(&self.host, &self.own_udp);
    }

    /// A new names table: hosts named by name get (or change) addresses.
    pub fn set_names(&mut self, names: crate::names::Names) {
        self.names = names;
        self.index_hosts();
        let work_hosts =
            self.work.server_part.as_ref().map(|p| p.hosts.clone()).unwrap_or_default();
        self.udp.set_work_hosts(&work_hosts);
        self.allow_udp_sources();
    }

    fn index_hosts(&mut self) {
        self.hosts.clear();
        self.by_ip.clear();
        self.by_tag.clear();
        let Some(sp) = self.work.server_part.as_ref() else { return };
        for h in &sp.hosts {
            let cmd = self.names.sock(&h.address, h.ports.port);
            if let Some(a) = cmd {
                self.by_ip.insert(crate::work::addr::canonical_ip(a.ip()), h.host.clone());
            }
            self.by_tag.insert(h.tag.clone(), h.host.clone());
            self.hosts.insert(
                h.host.clone(),
                FleetHost {
                    tag: h.tag.clone(),
                    address: h.address.clone(),
                    cmd,
                    groups: h.groups.clone(),
                },
            );
        }
    }

    /// A host's fqdn from its fqdn or tag.
    fn resolve_host(&self, name: &str) -> Option<String> {
        if self.hosts.contains_key(name) {
            return Some(name.to_string());
        }
        self.by_tag.get(name).cloned()
    }

    /// May `peer` speak for `host`? Its own address, or localhost.
    fn speaks_for(&self, host: &str, peer: IpAddr, local: bool) -> bool {
        local || self.by_ip.get(&crate::work::addr::canonical_ip(peer)).is_some_and(|h| h == host)
    }

    pub(crate) fn report(
        &mut self,
        req: &Request,
        peer: IpAddr,
        local: bool,
        now: Now,
        _fx: &mut Effects,
    ) -> Reply {
        let (host, body) = match fleet::parse_report(&req.rest) {
            Ok(x) => x,
            Err(e) => return Reply::Now(frame_err("REPORT", &e)),
        };
        if !self.hosts.contains_key(&host) {
            return Reply::Now(frame_err("REPORT", &format!("{host} is not in the work")));
        }
        if !self.speaks_for(&host, peer, local) {
            return Reply::Now(frame_err(
                "REPORT",
                &format!("report for {host} from {peer}: not that host"),
            ));
        }
        let report = Report { time: now.wall, ip: peer.to_string(), body };
        // Answered (`on_store`) once stored.
        let ticket = crate::effects::new_ticket();
        self.store.send(store::Req::Report { host, report, ticket });
        Reply::Wait(ticket)
    }

    pub(crate) fn events(
        &mut self,
        req: &Request,
        peer: IpAddr,
        local: bool,
        now: Now,
        fx: &mut Effects,
    ) -> Reply {
        let batch = match fleet::parse_events(&req.rest) {
            Ok(b) => b,
            Err(e) => return Reply::Now(frame_err("EVENTS", &e)),
        };
        if !self.hosts.contains_key(&batch.host) {
            return Reply::Now(frame_err("EVENTS", &format!("{} is not in the work", batch.host)));
        }
        if !self.speaks_for(&batch.host, peer, local) {
            let why = format!("events for {} from {peer}: not that host", batch.host);
            return Reply::Now(frame_err("EVENTS", &why));
        }
        // Answered `ok` (`on_store`) only once the events are committed.
        let ticket = crate::effects::new_ticket();
        self.store_events(batch.events, Some(ticket), now, fx);
        Reply::Wait(ticket)
    }

    /// A new event reached the server (from a client or its own heartbeat
    /// path), on its way to the store thread, which hands it to the
    /// notifier: the loop's part.
    fn on_event(&mut self, e: &Event, now: Now, fx: &mut Effects) {
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

    pub(crate) fn clients(&mut self, req: &Request, now: Now) -> Reply {
        let ticket = crate::effects::new_ticket();
        if let Some(s) = self.starting.as_mut() {
            // The reports and the host table are not read yet: asked again
            // once they are (`on_started`).
            s.clients.push((ticket, req.clone()));
            return Reply::Wait(ticket);
        }
        match self.clients_for(ticket, req, now) {
            Ok(()) => Reply::Wait(ticket),
            Err(text) => Reply::Now(text),
        }
    }

    /// CLIENTS for a session waiting on `ticket`: the store thread answers
    /// it; Err is the framed refusal of a bad request.
    pub(super) fn clients_for(
        &mut self,
        ticket: crate::effects::Ticket,
        req: &Request,
        now: Now,
    ) -> Result<(), String> {
        let resolve =
            |a: &str| self.resolve_host(a).or_else(|| self.stranger(a).map(str::to_string));
        let parsed =
            fleet::parse_clients_args(&req.args, resolve, |i| self.known_item(i), now.wall);
        let (host, item, filter) = match parsed {
            Ok(x) => x,
            Err(e) => return Err(frame_err("CLIENTS", &e)),
        };
        let mut cdmp = serde_json::Map::new();
        for (name, h) in &self.hosts {
            if host.as_ref().is_some_and(|x| x != name) {
                continue;
            }
            cdmp.insert(name.clone(), self.host_json(name, h, now));
        }
        // Senders not in the work (hbd-style clients) are hosts with items too.
        for h in self.udp.hosts().iter().filter(|h| !h.in_work) {
            if host.as_ref().is_some_and(|x| **x != *h.name) || cdmp.contains_key(&*h.name) {
                continue;
            }
            let addr = h.addr.map(|a| a.ip().to_string()).unwrap_or_default();
            let hb = self.heartbeat_json(&h.name, now);
            let entry = json!({"tag": h.name, "address": addr, "heartbeat": hb, "report": null, "in_work": false});
            cdmp.insert(h.name.to_string(), entry);
        }
        // The store thread adds the events and the open alerts.
        self.store.send(store::Req::Clients { ticket, host, item, filter, cdmp, now: now.wall });
        Ok(())
    }

    fn host_json(&self, name: &str, h: &FleetHost, now: Now) -> Value {
        let stale = show::is_stale(self.reach_name(name));
        let report = self.reports.get(name).map(|r| {
            let mut j = fleet::report_json(r, now.wall);
            j["stale"] = json!(stale);
            j
        });
        json!({
            "tag": h.tag,
            "address": h.address,
            "in_work": true,
            "heartbeat": self.heartbeat_json(name, now),
            "report": report,
        })
    }

    /// The name of a sender heard from but not in the work.
    fn stranger(&self, name: &str) -> Option<&str> {
        self.udp.host(name).filter(|h| !h.in_work).map(|h| &*h.name)
    }

    /// Does any host have an item of this name (in its report, its PLG
    /// items, or as one the server sets)?
    fn known_item(&self, item: &str) -> bool {
        const SET: &[&str] = &["heartbeat", "reboot", "rtt", "server"];
        if SET.contains(&item) {
            return true;
        }
        let in_report = |r: &Report| match r.body.get("items") {
            Some(Value::Object(m)) => m.contains_key(item),
            Some(Value::Array(a)) => {
                a.iter().any(|v| v.get("name").and_then(Value::as_str) == Some(item))
            }
            _ => false,
        };
        self.reports.values().any(in_report)
            || self.udp.hosts().iter().any(|h| h.items.contains_key(item))
    }

    /// `ACK <host> <item>`: no more reminders for this alert.
    pub(crate) fn ack(&mut self, req: &Request) -> Reply {
        let (Some(name), Some(item)) = (req.args.first(), req.args.get(1)) else {
            return Reply::Now(frame_err("ACK", "usage: ACK <host> <item>"));
        };
        let host = self.resolve_host(name).unwrap_or_else(|| name.clone());
        // Answered once the acknowledgement is on disk.
        let ticket = crate::effects::new_ticket();
        self.store.send(store::Req::Ack { ticket, host, item: item.clone() });
        Reply::Wait(ticket)
    }

    /// `SILENCE <host> [item] <ival>`: a maintenance window.
    pub(crate) fn silence(&mut self, req: &Request, now: Now, _fx: &mut Effects) -> Reply {
        let usage = "usage: SILENCE <host> [item] <ival>";
        let (name, item, ival) = match req.args.as_slice() {
            [h, i] => (h, None, i),
            [h, it, i] => (h, Some(it.as_str()), i),
            _ => return Reply::Now(frame_err("SILENCE", usage)),
        };
        let Some(host) = self.resolve_host(name) else {
            return Reply::Now(frame_err("SILENCE", &format!("unknown host {name}")));
        };
        let secs = match crate::ranges::silence_secs(ival) {
            Ok(s) => s,
            Err(e) => return Reply::Now(frame_err("SILENCE", &format!("{e}; {usage}"))),
        };
        let until = now.wall + secs;
        let what = item.map(|i| format!("{host} {i}")).unwrap_or(host.clone());
        let ok = format!("silenced {what} until {}", crate::clock::fmt_time(until));
        // Answered once the silence is on disk.
        let ticket = crate::effects::new_ticket();
        let item = item.map(str::to_string);
        self.store.send(store::Req::Silence { ticket, host, item, until, secs, ok });
        Reply::Wait(ticket)
    }

    fn host_state(&self, host: &str) -> &'static str {
        self.reach_name(host)
    }

    pub fn host_by_ip(&self, ip: IpAddr) -> Option<&str> {
        self.by_ip.get(&crate::work::addr::canonical_ip(ip)).map(String::as_str)
    }

    pub fn on_tick(&mut self, t: ServerTick, now: Now, fx: &mut Effects) {
        match t {
            ServerTick::Cleanup(g) if self.chains.cleanup.is_current(g) => {
                let keep = self.work.intervals.keep_events;
                if keep > 0.0 {
                    self.store.send(store::Req::Cleanup { before: now.wall - keep });
                }
                let g = self.chains.cleanup.arm();
                fx.timer(now.mono + CLEANUP_EVERY, Tick::Server(ServerTick::Cleanup(g)));
            }
            ServerTick::Persist(g) if self.chains.persist.is_current(g) => {
                self.persist_slice(now, fx);
                let g = self.chains.persist.arm();
                fx.timer(now.mono + beats::PERSIST_EVERY, Tick::Server(ServerTick::Persist(g)));
            }
            ServerTick::CheckWork(g) if self.chains.check_work.is_current(g) => {
                self.check_work(now, fx)
            }
            // Stale ticks of a replaced schedule.
            ServerTick::Cleanup(_) | ServerTick::Persist(_) | ServerTick::CheckWork(_) => {}
            ServerTick::Notify => self.notify_tick(now, fx),
            ServerTick::CheckHosts => self.check_hosts(now, fx),
            ServerTick::IsolationEnd => self.isolation_end(now, fx),
            ServerTick::StoreBacklog => self.apply_store_answers(now, fx),
            // A save under way (a stop's full save cancels it).
            ServerTick::PersistMore if self.persisting.is_some() => self.persist_slice(now, fx),
            ServerTick::PersistMore => {}
        }
    }

    pub fn on_call(
        &mut self,
        c: ServerCall,
        r: crate::session::CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        match c {
            ServerCall::Confirm(a) => self.on_confirm(a, r, now, fx),
        }
    }

    /// A delivery's outcome goes to the store thread; the id leaves the
    /// dispatch gate only when it is recorded (`on_store`), so a tick
    /// answered before that cannot hand the row out twice.
    pub fn on_notify_done(&mut self, n: NotifyDone, now: Now, fx: &mut Effects) {
        self.store.send(store::Req::NotifyDone { done: n, now: now.wall });
        // Its place in the pool is free for the next waiting delivery.
        self.in_pool = self.in_pool.saturating_sub(1);
        self.dispatch_waiting(fx);
    }
}

/// The pagemaker's base URL for links in alert texts, if the work names a
/// pagemaker: its address and dashboard port, or this host's own (after
/// conf `bind`/`http_port`) when the server is the pagemaker too. No
/// pagemaker, no link (unless the work sets a `dashboard` URL).
pub fn dashboard(work: &Work) -> Option<String> {
    let p = work.pmaker.as_ref()?;
    let (addr, port) = if work.roles.pmaker {
        (work.address.as_str(), work.ports.http_port)
    } else {
        (p.address.as_str(), p.ports.http_port)
    };
    let addr = if addr.contains(':') { format!("[{addr}]") } else { addr.to_string() };
    Some(format!("http://{addr}:{port}"))
}
