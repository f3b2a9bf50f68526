//! A fitness change of one host-item: what a client queues in its outbox,
//! the server stores durably, and notifications route. Shared by the client,
//! server and notify parts, so its JSON shape is part of the EVENTS protocol.

use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Event {
    /// Unique per sending host (the server de-duplicates on `(host, id)`),
    /// e.g. `<boot-time>-<seq>`; a retry carries the same id.
    pub id: String,
    pub host: String,
    pub item: String,
    /// None for the first level an item ever gets.
    pub old_level: Option<String>,
    pub new_level: String,
    pub old_value: Option<f64>,
    pub new_value: Option<f64>,
    /// Unix seconds.
    pub time: f64,
    /// The item's message or error text at the change, if any.
    #[serde(default)]
    pub message: String,
}

/// Item names that no work lists: set by the client's own machinery or
/// raised by the server. Client and server both name them, so they live
/// here, below both.
pub mod builtin {
    /// The server's heartbeat verdict on a host (late, down, back up).
    pub const HEARTBEAT: &str = "heartbeat";
    /// A host that restarted (its boot id changed).
    pub const REBOOT: &str = "reboot";
    /// A stranger that heartbeats without being in the work.
    pub const NEW: &str = "new";
    /// The server's own server.db health, raised on the server host.
    pub const SERVER_STORE: &str = "store:server.db";
    /// The client's view of its server (answers or not).
    pub const SERVER: &str = "server";
    /// Heartbeat round-trip time, from ACKs.
    pub const RTT: &str = "rtt";
    /// The client's clock against the server's.
    pub const CLOCK: &str = "clock";
    /// The client's history.db health.
    pub const STORE: &str = "store";
    /// A rolled-back upgrade.
    pub const UPGRADE: &str = "upgrade";
    /// The server's own isolation guard (most hosts silent at once).
    pub const ISOLATION: &str = "isolation";
    /// A host heard only through its peers, not directly.
    pub const HEARTBEAT_PATH: &str = "heartbeat_path";

    /// Items the server raises itself: never in a report.
    pub const RAISED_BY_SERVER: &[&str] =
        &[HEARTBEAT, REBOOT, NEW, SERVER_STORE, ISOLATION, HEARTBEAT_PATH];
    /// Items a client sets outside its work: never in a work.
    pub const SET_BY_CLIENT: &[&str] = &[SERVER, RTT, CLOCK, STORE, UPGRADE];
    /// Items set by the heartbeat path, never probed.
    pub const PASSIVE: &[&str] = &[HEARTBEAT, RTT, SERVER];
}
