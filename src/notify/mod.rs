//! Notifications on the server: routes fitness-change events to users'
//! channels through alert rules, keeps the alert state per host-item, controls
//! noise (flapping, storms, down parents, silences, acks), and delivers
//! through a durable outbox in `server.db` with retries and backoff.
//!
//! The engine (`Notifier`) lives on the server's store thread
//! (`server/store/mod.rs`), next to the `server.db` tables it keeps, and never
//! blocks on the network: `tick` hands out `NotifyJob`s that the loop has
//! `run_job` deliver on a helper thread; `on_done` records the outcome.
//! Every state change and the deliveries it causes are written in the same
//! transaction as the event that caused them (the store thread's drain), and
//! the event is acknowledged only after its commit, so a restart resumes
//! exactly what was owed (at least once: a job in flight at a crash is resent).
//! The loop shows the engine (STATE, DUMP) from the store thread's snapshot.
//! Inside the engine, deciding and writing are apart: `engine/decide/` is a
//! pure state machine returning the writes a change calls for, and
//! `engine/apply.rs` turns them into SQL in that transaction.

pub mod alerts;
pub mod channels;
mod engine;
pub mod message;
pub mod noise;
pub mod outbox;
mod retarget;
pub mod rules;

pub use channels::validate_channel;
pub use engine::Notifier;

use crate::work::model::Channel;
use message::{Kind, Message};

/// Outbox id of the dead-man's-switch ping (not stored in the outbox).
pub const DEADMAN_ID: i64 = -1;

/// One delivery, owned and Send: everything `run_job` needs.
#[derive(Clone, Debug)]
pub struct NotifyJob {
    pub id: i64,
    pub channel: Channel,
    pub msg: Message,
    /// When the job was handed out (mail Date/Message-ID).
    pub now: f64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct NotifyDone {
    pub id: i64,
    pub result: Result<(), String>,
}

/// Delivers one job; blocking, bounded by the channel's timeout.
pub fn run_job(job: NotifyJob) -> NotifyDone {
    let ch = &job.channel;
    let t = channels::timeout(&ch.options);
    let result = match ch.kind.as_str() {
        "mail" => channels::mail::send(&ch.target, &ch.options, &job.msg, job.now, job.id, t),
        "webhook" => channels::webhook::send(&ch.target, &ch.options, &job.msg, t),
        "command" => channels::command::send(&ch.target, &job.msg, t),
        "syslog" => channels::syslog::send(&job.msg),
        "alertmanager" => channels::alertmanager::send(&ch.target, &ch.options, &job.msg, t),
        other => Err(format!("unknown channel type {other:?}")),
    };
    // Errors reach the log, STATE and DUMP: no URL token or password in them.
    let result = result.map_err(|e| crate::redact::urls(&e));
    NotifyDone { id: job.id, result }
}

/// Whether a message kind counts toward the storm of its user.
fn storm_counted(kind: Kind) -> bool {
    !matches!(kind, Kind::Deadman | Kind::Digest)
}
