//! The server role: who is alive (heartbeats), reports, durable events,
//! work distribution, the fleet verbs' domain side and alerting. This file
//! is the part and its lifecycle (start, reload, shutdown, names, ticks,
//! calls). By concern: REPORT/EVENTS in `ingest.rs`, CLIENTS' snapshot in
//! `clients.rs`, ACK/SILENCE in `alerts.rs`, the journal's ingest hook in
//! `journal_hook.rs`; they return values, typed refusals or tickets, and
//! `verbs/server.rs` frames every answer. server.db and the notification
//! engine belong to the store thread (`store/`, queries in `fleet.rs` /
//! `db.rs`; its answers are applied in `stored.rs`), reachability to the
//! host table (`hosts/`, the field `table`), heartbeats to `beats.rs` /
//! `udp.rs`, work files to `works.rs`, fan-out targets to `relay.rs`, the
//! STATE/DUMP lines to `show.rs`.

mod alerts;
mod beats;
mod clients;
mod confirm;
pub mod db;
pub mod detect_sim;
pub mod detector;
pub mod fleet;
pub mod fleet_view;
pub mod hosts;
mod ingest;
mod isolate;
mod journal_hook;
mod peers;
mod reconcile;
mod relay;
mod show;
pub mod store;
mod stored;
pub mod udp;
mod works;

use crate::clock::Now;
use crate::effects::{Effects, ServerCall, ServerTick, Setup, Tick};
use crate::notify::NotifyDone;
use crate::timers::Chain;
use crate::work::model::Work;
use crate::work::version::Version;
use fleet::Report;
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

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
    /// Shared so a CLIENTS snapshot takes them without a copy.
    reports: BTreeMap<String, Arc<Report>>,
    /// Heartbeats: the host table and the socket side.
    table: hosts::HostTable,
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
        let table = hosts::HostTable::new(table_conf, &work_hosts);
        let mut ingest = udp::Ingest::new();
        let journal_stats = journal_hook::install(st.conf, &mut ingest)?;
        let mut s = Server {
            host: st.hostname.to_string(),
            work: st.work.clone(),
            works_dir: st.conf.works_dir(),
            store,
            hosts: BTreeMap::new(),
            by_ip: HashMap::new(),
            by_tag: HashMap::new(),
            reports: BTreeMap::new(),
            table,
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
        self.table.set_work_hosts(&work_hosts);
        self.allow_udp_sources();
        self.table.set_intervals(work.intervals.clone());
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
                self.table.allow_sources(name, &[a.ip()]);
            }
        }
        self.table.allow_sources(&self.host, &self.own_udp);
    }

    /// A new names table: hosts named by name get (or change) addresses.
    pub fn set_names(&mut self, names: crate::names::Names) {
        self.names = names;
        self.index_hosts();
        let work_hosts =
            self.work.server_part.as_ref().map(|p| p.hosts.clone()).unwrap_or_default();
        self.table.set_work_hosts(&work_hosts);
        self.allow_udp_sources();
    }

    fn index_hosts(&mut self) {
        self.index_work_hosts();
        self.index_peers();
    }

    fn index_work_hosts(&mut self) {
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
