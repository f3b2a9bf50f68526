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
