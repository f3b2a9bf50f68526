//! The durable side of notifications in `server.db`: the outbox of pending
//! deliveries, alert states, silences, and the retry schedule. Only SQL and
//! arithmetic here; it never sends anything. The tables themselves are
//! made by server.db's migration list (`server/db.rs`).

use super::message::Message;
use rusqlite::{params, Connection, OptionalExtension};

/// First retry after 5 s, doubling, capped at 5 min.
pub const BACKOFF_FIRST: f64 = 5.0;
pub const BACKOFF_CAP: f64 = 300.0;
/// Tries before a delivery is marked failed (about 20 min of retrying);
/// a channel's `retries=N` option changes it for that channel.
pub const MAX_TRIES: u32 = 8;
/// A delivery still undelivered this long after it was queued is given up
/// (a chain of rows behind a dead channel must not wait for days).
pub const MAX_AGE: f64 = 6.0 * 3600.0;
/// Failed rows kept for STATE/DUMP (the oldest go first): disk stays bounded.
pub const MAX_FAILED: i64 = 100;

/// Delay before try number `tries + 1`, after `tries` failed tries (>= 1).
pub fn backoff(tries: u32) -> f64 {
    let exp = tries.saturating_sub(1).min(30);
    (BACKOFF_FIRST * f64::from(1u32 << exp)).min(BACKOFF_CAP)
}

/// At start: deliveries in flight when the process died are retried. The
/// tables are made by server.db's one migration list (`server/db.rs`).
pub fn recover_inflight(conn: &Connection) -> rusqlite::Result<()> {
    // Deliveries in flight when the process died are retried (at least
    // once); they may have arrived, so they are never withdrawn.
    conn.execute(
        "UPDATE notify_outbox SET state = 'pending',
           last_error = CASE WHEN last_error = '' THEN 'in flight when hbmon stopped'
                        ELSE last_error END
         WHERE state = 'inflight'",
        [],
    )?;
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
) -> rusqlite::Result<i64> {
    let payload = serde_json::to_string(msg).unwrap_or_default();
    conn.execute(
        "INSERT INTO notify_outbox (alert_key, channel, user, payload, next_at, state, created)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)",
        params![key, channel, user, payload, now, if held { "held" } else { "pending" }],
    )?;
    Ok(conn.last_insert_rowid())
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
    let old = conn.execute(
        "UPDATE notify_outbox SET state = 'failed', last_error = 'gave up after ' || tries
           || ' tries: undelivered for ' || ?2 || ' s' || CASE WHEN last_error = '' THEN ''
           ELSE '; last error: ' || last_error END
         WHERE state = 'pending' AND created < ?1",
        params![now - MAX_AGE, MAX_AGE as i64],
    )?;
    if old > 0 {
        prune_failed(conn)?;
    }
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

/// Records a failed try: back to pending with backoff, or failed for good
/// once the channel's tries (`max_tries(channel)`) are used up. True when
/// it failed for good.
pub fn failed_try(
    conn: &Connection,
    id: i64,
    err: &str,
    now: f64,
    max_tries: impl Fn(&str) -> u32,
) -> rusqlite::Result<bool> {
    let row: Option<(u32, String)> = conn
        .query_row("SELECT tries, channel FROM notify_outbox WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let Some((tries, channel)) = row else { return Ok(false) };
    let tries = tries + 1;
    let give_up = tries >= max_tries(&channel).max(1);
    let (state, next, err) = if give_up {
        ("failed", now, format!("gave up after {tries} tries: {err}"))
    } else {
        ("pending", now + backoff(tries), err.to_string())
    };
    conn.execute(
        "UPDATE notify_outbox SET tries = ?2, state = ?3, next_at = ?4, last_error = ?5 WHERE id = ?1",
        params![id, tries, state, next, err],
    )?;
    if give_up {
        prune_failed(conn)?;
    }
    Ok(give_up)
}

/// Marks a row failed at once, with why (a channel or user that is gone).
pub fn fail_now(conn: &Connection, id: i64, why: &str) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE notify_outbox SET state = 'failed', last_error = ?2 WHERE id = ?1",
        params![id, why],
    )?;
    prune_failed(conn)
}

/// Keeps the newest `MAX_FAILED` failed rows.
fn prune_failed(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "DELETE FROM notify_outbox WHERE state = 'failed' AND id NOT IN
           (SELECT id FROM notify_outbox WHERE state = 'failed' ORDER BY id DESC LIMIT ?1)",
        [MAX_FAILED],
    )?;
    Ok(())
}

/// A row never handed out: still waiting, no try, no error (a row in
/// flight when the process stopped is marked by `recover_inflight`).
const UNTOUCHED: &str = "state IN ('pending', 'held') AND tries = 0 AND last_error = ''";

/// Whether the episode's first row `from` of this (alert, channel) pair
/// can still be withdrawn when the alert recovers: it was never handed out
/// and waits for no older delivery of the pair (it did not leave only
/// because no tick came between the two events: a burst, a client's late
/// batch, a storm). False when it had left or is queued behind earlier
/// news of the alert (then the whole story goes out, in order).
pub fn withdrawable(
    conn: &Connection,
    key: &str,
    channel: &str,
    from: i64,
) -> rusqlite::Result<bool> {
    conn.query_row(
        &format!(
            "SELECT EXISTS (SELECT 1 FROM notify_outbox o WHERE id = ?1 AND alert_key = ?2
               AND channel = ?3 AND {UNTOUCHED} AND {UNBLOCKED})"
        ),
        params![from, key, channel],
        |r| r.get(0),
    )
}

/// The alert recovered before it left ([`withdrawable`]): removes the
/// episode's row `from` and its later untouched rows of the pair; how many.
pub fn withdraw(conn: &Connection, key: &str, channel: &str, from: i64) -> rusqlite::Result<usize> {
    conn.execute(
        &format!(
            "DELETE FROM notify_outbox WHERE alert_key = ?1 AND channel = ?2 AND id >= ?3
               AND {UNTOUCHED}"
        ),
        params![key, channel, from],
    )
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

/// Failed rows (at most `MAX_FAILED`, see `prune_failed`).
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
