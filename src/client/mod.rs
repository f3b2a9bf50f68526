//! The client role: items probed every `ival_make_state` (`rounds.rs`),
//! judged by their fitness functions, kept in the local history;
//! heartbeats, reports and events to the server. This file is the part and
//! its lifecycle (start, reload, shutdown, calls to the server, readings,
//! STATE/DUMP). By concern: reports and SEND in `report.rs`, work fetch in
//! `fetch.rs` (its pure half in `sync.rs`), HIST and ZAP in `history.rs`
//! (they return values, typed refusals or tickets; `verbs/client.rs`
//! frames every answer), the event outbox and the history thread's answers
//! in `spool.rs`, heartbeats in `heartbeat.rs`/`beats.rs`, timers in
//! `ticks.rs`. The history belongs to the store thread (`store/thread.rs`):
//! this role only sends it requests, so a slow disk never holds up the loop.

mod beats;
pub mod fallback;
mod fetch;
pub mod fitness;
pub mod heartbeat;
mod history;
pub mod items;
mod report;
mod rounds;
pub mod spool;
pub mod sync;
mod ticks;

use crate::clock::Now;
use crate::effects::{CallOwner, ClientCall, Done, Effects, Setup};
use crate::probes::Inline;
use crate::store::{StoreDone, StoreStatus, StoreThread};
use crate::work::model::Work;
use heartbeat::Heartbeat;
use items::{Items, Reading};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use sync::{Backoff, Outbox, ReportCall, ReportFollow, WorkSync};

/// Seconds a call to the server may take.
const CALL_TIMEOUT: f64 = 10.0;
/// Most events in one EVENTS batch.
const EVENTS_BATCH: usize = 500;

pub struct Client {
    host: String,
    work: Work,
    /// The server reads its own work from disk; only other hosts fetch.
    fetches_work: bool,
    server: Option<SocketAddr>,
    /// The running work's version (0: the bootstrap work, none yet).
    work_lm: crate::work::version::Version,
    cache: PathBuf,
    work_backoff: Backoff,
    /// The conversation about our work (bootstrap, idle, asking).
    work_sync: WorkSync,
    items: Items,
    inline: Inline,
    /// The owner of history.db; the loop only sends it requests.
    store: StoreThread,
    /// Its health after its last write (outbox length, held events...).
    status: StoreStatus,
    /// The EVENTS conversation: a batch asked of the store, then in flight.
    outbox: Outbox,
    /// What REPORTs send: the items as of the last write the store did.
    reported: serde_json::Value,
    /// The items as of each write sent and not done yet, oldest first, and
    /// whether that write is a round.
    unstored: VecDeque<(serde_json::Value, bool)>,
    /// Rounds sent to the store / stored since start.
    rounds_sent: u64,
    rounds_stored: u64,
    /// Whether REPORTs have this start's (or work's) first round yet.
    report_follow: ReportFollow,
    probes_dir: PathBuf,
    /// Blocking probes in flight, with their start (never two runs of one
    /// item: a hung mount holds one thread, not one per round).
    running: HashMap<String, f64>,
    /// Event ids: `<boot ms>-<seq>`, unique across restarts.
    boot_id: u64,
    event_seq: u64,
    events_backoff: Backoff,
    report_call: ReportCall,
    next_report_wall: f64,
    /// The periodic jobs' timers, one schedule each.
    chains: ticks::Chains,
    hb: Heartbeat,
    /// Where heartbeats go: the server's heartbeat port and conf `heartbeat_to`.
    hb_targets: Vec<SocketAddr>,
    extra_targets: Vec<String>,
    server_dead: bool,
    /// The server said our clock is off (the `clock` item is raised).
    clock_off: bool,
    /// Conf `fallback`: this host's own channel for a dead server.
    fallback: Option<fallback::Fallback>,
    /// Files of the vardir found corrupt at start (raised as `store`).
    store_notices: Vec<String>,
    /// The store thread has opened history.db (`StoreDone::Opened`).
    history_open: bool,
    vardir: PathBuf,
    /// The work's names, resolved off the loop (`names.rs`).
    names: crate::names::Names,
}

impl Client {
    pub fn start(st: &Setup, now: Now, fx: &mut Effects) -> crate::error::Result<Client> {
        // The store thread opens history.db itself (`StoreDone::Opened`).
        let wake = st.wake.clone();
        let deliver = Box::new(move |d: StoreDone| {
            wake.send(Done::History(d));
        });
        let stall = crate::store::thread::stall_hook();
        let store =
            StoreThread::start(st.conf.history_db(), st.conf.vardir.clone(), deliver, stall)?;
        let items = Items::new(st.work);
        let mut c = Client {
            host: st.hostname.to_string(),
            work: st.work.clone(),
            fetches_work: !st.work.roles.server,
            server: st.server_cmd,
            work_lm: st.work_lm,
            cache: st.conf.work_cache(),
            work_backoff: Backoff::default(),
            work_sync: WorkSync::Bootstrap,
            reported: items.report_json(),
            items,
            inline: Inline::from_env(),
            store,
            status: Default::default(),
            outbox: Outbox::Idle,
            unstored: VecDeque::new(),
            rounds_sent: 0,
            rounds_stored: 0,
            report_follow: ReportFollow::Before { round: 1 },
            probes_dir: st.conf.probes_dir(),
            running: HashMap::new(),
            boot_id: (now.wall * 1000.0) as u64,
            event_seq: 0,
            events_backoff: Backoff::default(),
            report_call: ReportCall::Idle,
            next_report_wall: 0.0,
            chains: ticks::Chains::default(),
            hb: Heartbeat::new(
                st.hostname,
                st.work.intervals.heartbeat,
                st.work.intervals.server_dead,
                st.conf.key.as_ref().map(|k| k.as_bytes().to_vec()),
            ),
            hb_targets: Vec::new(),
            extra_targets: st.conf.heartbeat_to.clone(),
            server_dead: false,
            clock_off: false,
            fallback: None,
            store_notices: crate::vardir::take_notices(),
            history_open: false,
            vardir: st.conf.vardir.clone(),
            names: st.names.clone(),
        };
        c.set_fallback(st.conf, now, fx);
        c.set_targets();
        // Read once at start (not per heartbeat): the monotonic clock carries it on.
        let root = crate::probes::inline::ProcRoot::from_env().proc.join("uptime");
        match std::fs::read_to_string(&root)
            .map_err(|e| e.to_string())
            .and_then(|t| crate::probes::procfs::parse_uptime(&t))
        {
            Ok(up) => c.hb.set_uptime(up, now.mono),
            Err(e) => log::debug!("no host uptime for heartbeats ({}): {e}", root.display()),
        }
        c.arm_all(now, fx);
        if c.fetches_work {
            c.ask_work(sync::WorkAsk::Work, now, fx);
        } else {
            // The server host's own client asks its server part to collect
            // fresh reports from everyone (a restarted server catches up).
            c.call_server(ClientCall::AllSend, "ALLSEND".into(), fx);
        }
        c.schedule_report(now, fx, c.work.intervals.send_report.min(5.0));
        c.store_item(now, fx);
        // Events left in the outbox by a previous run go out now.
        c.send_events(now, fx);
        Ok(c)
    }

    pub fn reload(&mut self, conf: &crate::conf::Conf, work: &Work, now: Now, fx: &mut Effects) {
        let (old_targets, old_interval) = (self.hb_targets.clone(), self.work.intervals.heartbeat);
        self.work = work.clone();
        self.fetches_work = !work.roles.server;
        self.server = self.names.sock(&work.server.address, work.server.ports.port);
        self.probes_dir = conf.probes_dir();
        self.items.reload(work);
        self.extra_targets = conf.heartbeat_to.clone();
        self.hb.set_intervals(work.intervals.heartbeat, work.intervals.server_dead);
        self.set_targets();
        self.set_fallback(conf, now, fx);
        // New heartbeat targets or interval (the bootstrap work guesses the
        // server's heartbeat port): the next heartbeat goes now, not after
        // the old interval.
        if self.hb_targets != old_targets || work.intervals.heartbeat != old_interval {
            self.arm_heartbeat(now.mono + 0.05, fx);
        }
        let notices = crate::vardir::take_notices();
        if !notices.is_empty() {
            self.store_notices.extend(notices);
            self.store_item(now, fx);
        }
        // A new work is worth a report at once, and a first round soon:
        // both restart their schedules (the old ticks go stale).
        self.arm_round(now.mono + 0.2, fx);
        self.schedule_report(now, fx, 1.0);
        self.report_follow = ReportFollow::Before { round: self.rounds_sent + 1 };
    }

    pub fn shutdown(&mut self, now: Now, fx: &mut Effects) {
        // The last heartbeat says this is a planned stop.
        let d = self.hb.build(now, true);
        for t in &self.hb_targets {
            fx.datagrams.push((*t, d.clone()));
        }
        // Writes what is queued, checkpoints the WAL, joins the thread.
        self.store.close();
    }

    /// Sends a call to the server; false (logged) when it has no address
    /// yet, so the caller's conversation does not move on.
    fn call_server(&mut self, what: ClientCall, line: String, fx: &mut Effects) -> bool {
        let Some(addr) = self.server else {
            log::error!("no address for the server {}", self.work.server.host);
            return false;
        };
        fx.call(CallOwner::Client(what), addr, line, CALL_TIMEOUT);
        true
    }

    /// Judges readings, stores them and their events in one transaction,
    /// and sends the events.
    fn take_readings(&mut self, readings: Vec<Reading>, now: Now, fx: &mut Effects) {
        if readings.is_empty() {
            return;
        }
        let host = self.host.clone();
        let values: Vec<(String, f64)> =
            readings.iter().filter_map(|r| r.value.map(|v| (r.item.clone(), v))).collect();
        let (seq, boot) = (&mut self.event_seq, self.boot_id);
        let mut next = || {
            *seq += 1;
            format!("{boot}-{seq}")
        };
        let events = self.items.apply(&host, readings, now.wall, &mut next);
        for e in &events {
            log::info!("{} {} -> {}", e.item, e.old_level.as_deref().unwrap_or("-"), e.new_level);
        }
        let raised = !events.is_empty();
        self.store_round(now, values, events);
        if raised {
            self.send_events(now, fx);
        }
    }

    /// Sets an item owned by another part (heartbeat path: `server`).
    pub fn set_item(
        &mut self,
        item: &str,
        value: Option<f64>,
        level: &str,
        msg: &str,
        now: Now,
        fx: &mut Effects,
    ) {
        // An id is taken only when the change is an event: ids stay consecutive.
        let (seq, boot) = (&mut self.event_seq, self.boot_id);
        let mut ids = || {
            *seq += 1;
            format!("{boot}-{seq}")
        };
        let host = self.host.clone();
        if let Some(e) = self.items.set(&host, item, value, level, msg, now.wall, &mut ids) {
            if item == crate::event::builtin::STORE && !msg.is_empty() {
                log::error!("{item} -> {level}: {msg}");
            }
            self.store_events(std::slice::from_ref(&e));
            self.send_events(now, fx);
        }
    }

    pub fn state_lines(&self, out: &mut String, now: Now) {
        use std::fmt::Write as _;
        if self.fetches_work {
            let _ = writeln!(
                out,
                "-- work from server {} ({}), sync {}",
                self.server.map(|a| a.to_string()).unwrap_or_else(|| "?".into()),
                if self.work_sync.served().is_some() { "fetched" } else { "not fetched yet" },
                self.work_sync.describe(now.wall)
            );
        }
        let _ = writeln!(out, "-- next report {}", crate::clock::fmt_time(self.next_report_wall));
        let _ = writeln!(
            out,
            "-- server calls events {}, report {}",
            self.outbox.describe(now.wall),
            self.report_call.describe(now.wall)
        );
        self.store_state_lines(out);
        let _ = writeln!(out, "-- probes running {}", self.running.len());
        if let Some(fb) = &self.fallback {
            let _ = writeln!(out, "-- fallback {} {}", fb.channel.kind, fb.describe());
        }
        self.items.state_lines(out, now.wall);
    }

    pub fn dump(&self, _now: Now) -> serde_json::Value {
        serde_json::json!({
            "work_lm": self.work_lm,
            "items": self.items.dump(),
            "outbox": self.status.outbox,
            "held_events": self.status.held,
            "samples_dropped": self.status.samples_dropped,
            "events_dropped": self.status.events_dropped,
            "store_failing": self.status.failing.as_ref().map(|f| &f.1),
            "store_queue": self.store.queued(),
            "store_notices": self.store_notices,
            "running": self.running.keys().collect::<Vec<_>>(),
            "heartbeats": {"sent": self.hb.sent, "acked": self.hb.acks},
            "next_report": self.next_report_wall,
        })
    }

    pub fn on_call(
        &mut self,
        c: ClientCall,
        r: crate::session::CallResult,
        now: Now,
        fx: &mut Effects,
    ) {
        match c {
            ClientCall::Work | ClientCall::WorkLm => self.on_work_answer(c, r, now, fx),
            ClientCall::Events(ids) => self.on_events_answer(ids, r, now, fx),
            ClientCall::Report => self.on_report_answer(r, now, fx),
            ClientCall::Tcp { item, started } => {
                self.running.remove(&item);
                let r = match r {
                    Ok(_) => Reading {
                        item,
                        value: Some(((now.mono - started) * 1000.0).max(0.0)),
                        message: String::new(),
                        error: None,
                    },
                    Err(e) => {
                        let e = if e == "timeout" {
                            format!("no connection within {:.0}s", now.mono - started)
                        } else {
                            e
                        };
                        Reading { item, value: None, message: String::new(), error: Some(e) }
                    }
                };
                self.take_readings(vec![r], now, fx);
            }
            ClientCall::AllSend => {
                if let Err(e) = r.and_then(|t| crate::command::parse_answer(&t)) {
                    log::warn!("ALLSEND at start-up: {e}");
                }
            }
        }
    }
}
