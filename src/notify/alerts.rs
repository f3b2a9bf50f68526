//! Alert state per host-item (level, since, notified channels, ack, flapping,
//! suppression) and its persistence in `notify_alerts`. No sending here.

use rusqlite::{params, Connection};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct AlertState {
    pub host: String,
    pub item: String,
    /// Current level index (0 = best).
    pub level: usize,
    pub level_name: String,
    pub value: Option<f64>,
    /// When the item left the best level.
    pub since: f64,
    /// Level of the last alert actually sent, if one was.
    pub sent_level: Option<usize>,
    pub sent_level_name: String,
    /// Channels that got the alert: they, and only they, get the recovery.
    pub notified: BTreeSet<String>,
    /// Channel -> user, for storm accounting of reminders and recoveries.
    pub users: BTreeMap<String, String>,
    /// Channel -> outbox id of this episode's first alert row there. If
    /// that row has not left the outbox when the item recovers, the
    /// episode's rows are withdrawn (nothing is sent to that channel,
    /// neither the alert nor a recovery); the outbox says whether it left.
    #[serde(default)]
    pub queued: BTreeMap<String, i64>,
    pub acked: bool,
    pub flapping: bool,
    /// The down parent this alert was suppressed into, if any.
    pub suppressed_by: Option<String>,
    /// A down child waits this long for its parent's verdict before alerting
    /// (the parent's heartbeat may be noticed missing a little later).
    #[serde(default)]
    pub wait_parent_until: Option<f64>,
    pub last_sent: f64,
}

impl AlertState {
    pub fn alerting(&self) -> bool {
        self.level > 0
    }
}

pub type Key = (String, String);

pub fn load(conn: &Connection) -> rusqlite::Result<BTreeMap<Key, AlertState>> {
    let mut st = conn.prepare("SELECT host, item, state FROM notify_alerts")?;
    let rows = st.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (h, i, js) = row?;
        match serde_json::from_str::<AlertState>(&js) {
            Ok(a) => {
                out.insert((h, i), a);
            }
            Err(e) => log::warn!("notify: dropping unreadable alert state {h} {i}: {e}"),
        }
    }
    Ok(out)
}

/// Writes the state, or deletes it once it is back to best with nothing owed.
pub fn save(conn: &Connection, a: &AlertState) -> rusqlite::Result<()> {
    if !a.alerting() && a.notified.is_empty() {
        conn.execute(
            "DELETE FROM notify_alerts WHERE host = ?1 AND item = ?2",
            params![a.host, a.item],
        )?;
    } else {
        let js = serde_json::to_string(a).unwrap_or_default();
        conn.execute(
            "INSERT OR REPLACE INTO notify_alerts (host, item, state) VALUES (?1, ?2, ?3)",
            params![a.host, a.item, js],
        )?;
    }
    Ok(())
}

/// Deletes the stored state of an alert the notifier no longer keeps.
pub fn delete(conn: &Connection, key: &Key) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM notify_alerts WHERE host = ?1 AND item = ?2", params![key.0, key.1])?;
    Ok(())
}

pub fn load_silences(conn: &Connection) -> rusqlite::Result<BTreeMap<Key, f64>> {
    let mut st = conn.prepare("SELECT host, item, until FROM notify_silences")?;
    let rows = st.query_map([], |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)))?;
    rows.collect()
}

pub fn save_silence(conn: &Connection, host: &str, item: &str, until: f64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO notify_silences (host, item, until) VALUES (?1, ?2, ?3)",
        params![host, item, until],
    )?;
    Ok(())
}

pub fn drop_expired_silences(conn: &Connection, now: f64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM notify_silences WHERE until <= ?1", [now])?;
    Ok(())
}
