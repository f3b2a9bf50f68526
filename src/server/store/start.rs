//! The store thread's start: before its first request it opens
//! `server.db` (created, checked, migrated: `server/db.rs`), reads what the
//! server part keeps in memory (the latest reports, the items not at the
//! best level, the saved host table, the last `store:server.db` level),
//! builds the notifier on it, and hands the loop a [`Started`] (through
//! the waker, as `Answer::Started`). The loop never waits for any of it:
//! requests sent meanwhile queue in the channel and are taken after.
//!
//! A file that cannot be used (a newer schema, an unreadable disk) is not
//! touched again: the thread answers every request with that reason
//! ([`refuse_all`]), and the server shows it in STATE.

use super::{Answer, Req, Shared};
use crate::answer::Answered;
use crate::effects::{Done, Wake};
use crate::error::{Error, Result};
use crate::notify::Notifier;
use crate::server::fleet::{self, Report};
use crate::server::hosts::SavedHost;
use crate::work::model::{Intervals, Level, ServerWork};
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

/// What the thread needs to open the database and build the notifier.
pub struct Open {
    pub path: PathBuf,
    pub work: Box<ServerWork>,
    pub levels: Vec<Level>,
    pub intervals: Intervals,
    pub dash: Option<String>,
    /// This host's name (its own `store:server.db` events).
    pub host: String,
}

/// What the server part reads from server.db at start.
pub struct Started {
    pub reports: BTreeMap<String, Report>,
    /// Host-items not at the best level, as their last event left them.
    pub open: BTreeMap<(String, String), (String, f64)>,
    pub hosts: Vec<SavedHost>,
    /// What was found wrong with the file (a corrupt one moved aside).
    pub notice: Option<String>,
    /// The level of the server's last `store:server.db` event.
    pub last_notice: Option<String>,
}

/// Opens and reads; the connection and notifier stay on the thread.
pub(super) fn open(o: &Open) -> Result<(Connection, Notifier, Started)> {
    let opened = crate::server::db::open(&o.path)?;
    let db = opened.conn;
    let reports = fleet::load_reports(&db)?;
    let best = o.levels.first().map(|l| l.name.as_str()).unwrap_or_default();
    let open = crate::server::reconcile::load(&db, best)?;
    let hosts = crate::server::hosts::load_rows(&db).unwrap_or_else(|e| {
        log::error!("loading the host table: {e}");
        Vec::new()
    });
    let last_notice = crate::server::beats::last_store_notice(&db, &o.host);
    let notifier = Notifier::new(&db, &o.work, &o.levels, &o.intervals, o.dash.clone())
        .map_err(|e| Error::db("start notifications", e))?;
    let started = Started { reports, open, hosts, notice: opened.notice, last_notice };
    Ok((db, notifier, started))
}

/// The thread's life when server.db could not be opened: every request
/// is answered with the reason (nothing is stored), until the loop goes.
pub(super) fn refuse_all(rx: Receiver<Req>, why: &str, wake: &Wake, shared: &Shared) {
    while let Ok(r) = rx.recv() {
        shared.requests.fetch_add(1, Ordering::Relaxed);
        shared.failed.fetch_add(1, Ordering::Relaxed);
        if let Some(a) = refusal(r, why) {
            wake.send(Done::Store(vec![a]));
        }
    }
}

fn refusal(r: Req, why: &str) -> Option<Answer> {
    let text = |ticket, verb: &'static str| {
        let answer = Answered::failed(verb, format!("cannot store: server.db unusable: {why}"));
        Answer::Verb { ticket, answer, notify_in: None }
    };
    Some(match r {
        Req::Events { events, ticket, .. } => {
            Answer::Events { ticket: ticket?, n: events.len(), new: None }
        }
        Req::Report { host, report, ticket, .. } => {
            let Report { time, ip, body } = report;
            Answer::Report { ticket, host, time, ip, body, stored: false, work_lm: 0 }
        }
        Req::Clients { ticket, .. } => text(ticket, "CLIENTS"),
        Req::Ack { ticket, .. } => text(ticket, "ACK"),
        Req::Silence { ticket, .. } => text(ticket, "SILENCE"),
        // No jobs, and no next deadline: the Notify chain stops.
        Req::Tick { .. } => Answer::Jobs { jobs: Vec::new(), next: None },
        Req::NotifyDone { done, .. } => Answer::Recorded { id: done.id, next: None },
        Req::Reload { .. } | Req::SaveHosts(_) | Req::Cleanup { .. } => return None,
    })
}
