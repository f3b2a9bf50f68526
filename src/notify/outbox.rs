//! The durable side of notifications in `server.db`: the outbox of pending
//! deliveries, alert states, silences, and the retry schedule. Only SQL and
//! arithmetic here; it never sends anything.

use super::message::Message;
use rusqlite::{params, Connection, OptionalExtension};

/// Tables the notifier needs; `Notifier::new` applies it (idempotent).
pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS notify_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_key TEXT NOT NULL,      -- host '\t' item, or 'digest:<user>'
    channel TEXT NOT NULL,
    user TEXT NOT NULL,
    payload TEXT NOT NULL,        -- message::Message as JSON
    tries INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    state TEXT NOT NULL,          -- held | pending | inflight | failed
    last_error TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS notify_outbox_state ON notify_outbox(state, next_at);
CREATE INDEX IF NOT EXISTS notify_outbox_pair ON notify_outbox(alert_key, channel, id);
CREATE TABLE IF NOT EXISTS notify_alerts (
    host TEXT NOT NULL,
    item TEXT NOT NULL,
    state TEXT NOT NULL,          -- alerts::AlertState as JSON
    PRIMARY KEY (host, item)
);
CREATE TABLE IF NOT EXISTS notify_silences (
    host TEXT NOT NULL,
    item TEXT NOT NULL,           -- '' = every item of the host
    until REAL NOT NULL,
    PRIMARY KEY (host, item)
);
";

/// First retry after 5 s, doubling, capped at 5 min.
pub const BACKOFF_FIRST: f64 = 5.0;
pub const BACKOFF_CAP: f64 = 300.0;
/// Tries before a delivery is marked failed (about 20 min of retrying).
pub const MAX_TRIES: u32 = 8;

/// Delay before try number `tries + 1`, after `tries` failed tries (>= 1).
pub fn backoff(tries: u32) -> f64 {
    let exp = tries.saturating_sub(1).min(30);
    (BACKOFF_FIRST * f64::from(1u32 << exp)).min(BACKOFF_CAP)
}

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(SCHEMA)?;
    // Deliveries in flight when the process died are retried (at least once).
    conn.execute("UPDATE notify_outbox SET state = 'pending' WHERE state = 'inflight'", [])?;
    Ok(())
}

pub fn alert_key(host: &str, item: &str) -> String {
    format!("{host}\t{item}")
}

pub fn enqueue(
    conn: &Connection,
    key: &str,
    channel: &str,
    user: &str,
    msg: &Message,
    held: bool,
    now: f64,
) -> rusqlite::Result<()> {
    let payload = serde_json::to_string(msg).unwrap_or_default();
    conn.execute(
        "INSERT INTO notify_outbox (alert_key, channel, user, payload, next_at, state, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
        params![key, channel, user, payload, now, if held { "held" } else { "pending" }],
    )?;
    Ok(())
}

/// No older undelivered row of the same (alert, channel) pair.
const UNBLOCKED: &str = "NOT EXISTS (SELECT 1 FROM notify_outbox p
    WHERE p.alert_key = o.alert_key AND p.channel = o.channel AND p.id < o.id
      AND p.state IN ('pending', 'inflight', 'held'))";

/// A due delivery row.
pub struct Due {
    pub id: i64,
    pub channel: String,
    pub msg: Message,
    pub tries: u32,
}

/// Due pending rows, oldest first, at most one per (alert, channel): a row
/// waits while an older one of the same pair is undelivered, so an alert is
/// never overtaken by its recovery and never two are in flight.
pub fn take_due(conn: &Connection, now: f64, limit: usize) -> rusqlite::Result<Vec<Due>> {
    let mut st = conn.prepare(&format!(
        "SELECT id, channel, payload, tries FROM notify_outbox o
         WHERE state = 'pending' AND next_at <= ?1 AND {UNBLOCKED} ORDER BY id LIMIT ?2"
    ))?;
    let rows = st.query_map(params![now, limit as i64], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, channel, payload, tries) = row?;
        match serde_json::from_str::<Message>(&payload) {
            Ok(msg) => out.push(Due { id, channel, msg, tries }),
            Err(e) => {
                conn.execute(
                    "UPDATE notify_outbox SET state = 'failed', last_error = ?2 WHERE id = ?1",
                    params![id, format!("bad payload: {e}")],
                )?;
            }
        }
    }
    for d in &out {
        conn.execute("UPDATE notify_outbox SET state = 'inflight' WHERE id = ?1", [d.id])?;
    }
    Ok(out)
}

pub fn delivered(conn: &Connection, id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM notify_outbox WHERE id = ?1", [id])?;
    Ok(())
}

/// Records a failed try: back to pending with backoff, or failed for good.
pub fn failed_try(conn: &Connection, id: i64, err: &str, now: f64) -> rusqlite::Result<()> {
    let tries: Option<u32> = conn
        .query_row("SELECT tries FROM notify_outbox WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    let Some(tries) = tries else { return Ok(()) };
    let tries = tries + 1;
    let (state, next) =
        if tries >= MAX_TRIES { ("failed", now) } else { ("pending", now + backoff(tries)) };
    conn.execute(
        "UPDATE notify_outbox SET tries = ?2, state = ?3, next_at = ?4, last_error = ?5 WHERE id = ?1",
        params![id, tries, state, next, err],
    )?;
    Ok(())
}

/// Earliest `next_at` of a pending row.
pub fn next_pending(conn: &Connection) -> rusqlite::Result<Option<f64>> {
    let sql =
        format!("SELECT MIN(next_at) FROM notify_outbox o WHERE state = 'pending' AND {UNBLOCKED}");
    conn.query_row(&sql, [], |r| r.get(0))
}

/// (state, count) pairs.
/// Also counts `retrying`: pending rows that have failed at least one try.
pub fn counts(conn: &Connection) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut st = conn.prepare(
        "SELECT state, COUNT(*) FROM notify_outbox GROUP BY state
         UNION ALL SELECT 'retrying', COUNT(*) FROM notify_outbox WHERE state = 'pending' AND tries > 0",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    rows.collect()
}

/// A failed row: (id, channel, subject, tries, last_error).
pub type Failure = (i64, String, String, u32, String);

/// Failed rows.
pub fn failures(conn: &Connection) -> rusqlite::Result<Vec<Failure>> {
    let mut st = conn.prepare(
        "SELECT id, channel, payload, tries, last_error FROM notify_outbox
         WHERE state = 'failed' ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        let payload: String = r.get(2)?;
        let subject =
            serde_json::from_str::<Message>(&payload).map(|m| m.subject).unwrap_or(payload);
        Ok((r.get(0)?, r.get(1)?, subject, r.get(3)?, r.get(4)?))
    })?;
    rows.collect()
}

/// Users with held rows, and the held rows of one user: (id, channel, msg).
pub fn held_users(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare("SELECT DISTINCT user FROM notify_outbox WHERE state = 'held'")?;
    let rows = st.query_map([], |r| r.get(0))?;
    rows.collect()
}

pub fn held_of(conn: &Connection, user: &str) -> rusqlite::Result<Vec<(i64, String, Message)>> {
    let mut st = conn.prepare(
        "SELECT id, channel, payload FROM notify_outbox WHERE state = 'held' AND user = ?1 ORDER BY id",
    )?;
    let rows = st.query_map([user], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, ch, payload) = row?;
        if let Ok(m) = serde_json::from_str(&payload) {
            out.push((id, ch, m));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s: Vec<f64> = (1..=8).map(backoff).collect();
        assert_eq!(s, vec![5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0]);
    }
}
