//! Work changes and what is owed: undelivered outbox rows and alert states
//! name a (channel, user) pair. After a work change they follow the user to
//! the channels it has now; the rows of a user that is gone (or has no
//! channel left) are dropped, i.e. marked failed with why, so STATE and
//! DUMP show it. Rows in flight are left alone until their try fails
//! ([`retarget_one`]). The rows' SQL, and the alert states' bookkeeping
//! (pure: [`retarget_alert`], which the decision calls at a reload).

use super::alerts::AlertState;
use super::outbox;
use crate::work::model::ServerWork;
use rusqlite::{params, Connection, OptionalExtension};

/// The user's channels that exist in the work; None when the user is gone.
fn user_channels(work: &ServerWork, user: &str) -> Option<Vec<String>> {
    let u = work.users.iter().find(|u| u.name == user)?;
    Some(
        u.channels
            .iter()
            .filter(|c| work.channels.iter().any(|ch| &ch.name == *c))
            .cloned()
            .collect(),
    )
}

struct Row {
    id: i64,
    key: String,
    channel: String,
    user: String,
    payload: String,
}

/// Re-targets pending and held rows (the alert states follow in the
/// decision, [`retarget_alert`]); returns one line per change, for the log.
pub fn retarget_rows(conn: &Connection, work: &ServerWork) -> rusqlite::Result<Vec<String>> {
    let mut notes = Vec::new();
    let rows: Vec<Row> = {
        let mut st = conn.prepare(
            "SELECT id, alert_key, channel, user, payload FROM notify_outbox
             WHERE state IN ('pending', 'held') ORDER BY id",
        )?;
        let it = st.query_map([], |r| {
            Ok(Row {
                id: r.get(0)?,
                key: r.get(1)?,
                channel: r.get(2)?,
                user: r.get(3)?,
                payload: r.get(4)?,
            })
        })?;
        it.collect::<rusqlite::Result<_>>()?
    };
    for row in rows {
        retarget_row(conn, work, row, &mut notes)?;
    }
    Ok(notes)
}

/// A row that failed a try after a work change (it was in flight when the
/// change came, so [`retarget`] left it alone) follows its user now, instead
/// of retrying on a channel the user no longer has.
pub fn retarget_one(
    conn: &Connection,
    work: &ServerWork,
    id: i64,
) -> rusqlite::Result<Vec<String>> {
    let row = conn
        .query_row(
            "SELECT id, alert_key, channel, user, payload FROM notify_outbox
             WHERE id = ?1 AND state IN ('pending', 'held')",
            [id],
            |r| {
                Ok(Row {
                    id: r.get(0)?,
                    key: r.get(1)?,
                    channel: r.get(2)?,
                    user: r.get(3)?,
                    payload: r.get(4)?,
                })
            },
        )
        .optional()?;
    let mut notes = Vec::new();
    if let Some(row) = row {
        retarget_row(conn, work, row, &mut notes)?;
    }
    Ok(notes)
}

/// One pending or held row: kept when its channel is still its user's,
/// moved (or copied) to the user's channels otherwise, dropped when the
/// user or all its channels are gone.
fn retarget_row(
    conn: &Connection,
    work: &ServerWork,
    row: Row,
    notes: &mut Vec<String>,
) -> rusqlite::Result<()> {
    let chs = match user_channels(work, &row.user) {
        Some(c) if c.contains(&row.channel) => return Ok(()),
        Some(c) if c.is_empty() => {
            let why = format!(
                "dropped at a work change: user {} has no channel left (was {})",
                row.user, row.channel
            );
            outbox::fail_now(conn, row.id, &why)?;
            notes.push(format!("delivery {}: {why}", row.id));
            return Ok(());
        }
        Some(c) => c,
        None => {
            let why =
                format!("dropped at a work change: user {} is no longer in the work", row.user);
            outbox::fail_now(conn, row.id, &why)?;
            notes.push(format!("delivery {}: {why}", row.id));
            return Ok(());
        }
    };
    let mut moved = Vec::new();
    for c in chs {
        let dup: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM notify_outbox WHERE alert_key = ?1 AND channel = ?2
               AND payload = ?3 AND state IN ('pending', 'held', 'inflight'))",
            params![row.key, c, row.payload],
            |r| r.get(0),
        )?;
        if dup {
            continue;
        }
        if moved.is_empty() {
            conn.execute(
                "UPDATE notify_outbox SET channel = ?2 WHERE id = ?1",
                params![row.id, c],
            )?;
        } else {
            conn.execute(
                "INSERT INTO notify_outbox (alert_key, channel, user, payload, tries, next_at, state, created)
                 SELECT alert_key, ?2, user, payload, tries, next_at, state, created
                 FROM notify_outbox WHERE id = ?1",
                params![row.id, c],
            )?;
        }
        moved.push(c);
    }
    if moved.is_empty() {
        outbox::delivered(conn, row.id)?; // every channel of the user has it already
    }
    notes.push(format!(
        "delivery {} of {}: channel {} -> {}",
        row.id,
        row.user,
        row.channel,
        if moved.is_empty() { "(already queued)".to_string() } else { moved.join(",") }
    ));
    Ok(())
}

/// The channels that got (or are about to get) an alert follow its users;
/// true when something changed.
pub fn retarget_alert(work: &ServerWork, a: &mut AlertState, notes: &mut Vec<String>) -> bool {
    let mut changed = false;
    let pairs: Vec<(String, String)> = a
        .notified
        .iter()
        .map(|c| (c.clone(), a.users.get(c).cloned().unwrap_or_default()))
        .collect();
    for (c, u) in pairs {
        let now = user_channels(work, &u);
        if now.as_ref().is_some_and(|chs| chs.contains(&c)) {
            continue;
        }
        changed = true;
        a.notified.remove(&c);
        a.users.remove(&c);
        let was_queued = a.queued.remove(&c);
        let to: Vec<String> = now.unwrap_or_default();
        if to.is_empty() {
            notes.push(format!(
                "alert {} {}: no recovery through {c} (user {u:?} or its channels are gone)",
                a.host, a.item
            ));
        }
        for ch in to {
            if a.notified.insert(ch.clone()) {
                a.users.insert(ch.clone(), u.clone());
                if let Some(id) = was_queued {
                    a.queued.insert(ch, id);
                }
            }
        }
    }
    changed
}
