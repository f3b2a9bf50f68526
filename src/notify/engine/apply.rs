//! The thin layer under the decisions (`decide/`): reads the `Facts` a
//! decision needs from the outbox beforehand, then turns its `Write`s into
//! SQLite statements on the store thread's connection (inside the
//! transaction of the drain) and hands the outbox rows' ids back to the
//! model. Nothing is decided here.

use super::super::alerts::{self, Key};
use super::super::message::{self, Message};
use super::super::{outbox, retarget};
use super::decide::{Facts, Model, Write};
use rusqlite::Connection;
use std::collections::BTreeMap;

/// Which of these queued rows (alert, channel, first row) never left.
pub fn withdrawable(
    conn: &Connection,
    rows: impl IntoIterator<Item = (Key, String, i64)>,
) -> rusqlite::Result<Facts> {
    let mut f = Facts::default();
    for ((host, item), channel, id) in rows {
        if outbox::withdrawable(conn, &outbox::alert_key(&host, &item), &channel, id)? {
            f.withdrawable.insert(id);
        }
    }
    Ok(f)
}

/// Applies `writes` in order; `now` is the decision's time (rows queued
/// then, retries scheduled from then).
pub fn apply(
    conn: &Connection,
    m: &mut Model,
    writes: Vec<Write>,
    now: f64,
) -> rusqlite::Result<()> {
    for w in writes {
        match w {
            Write::Enqueue { key, channel, user, msg, held, first_of } => {
                let id = outbox::enqueue(conn, &key, &channel, &user, &msg, held, now)?;
                if let Some(k) = first_of {
                    m.queued_row(&k, &channel, id);
                }
            }
            Write::Withdraw { host, item, channel, from } => {
                let n = outbox::withdraw(conn, &outbox::alert_key(&host, &item), &channel, from)?;
                log::info!(
                    "notify: {host} {item} recovered before its alert left: {n} withdrawn from {channel}"
                );
            }
            Write::SaveAlert(k) => match m.alert(&k) {
                Some(a) => alerts::save(conn, a)?,
                None => alerts::delete(conn, &k)?,
            },
            Write::SaveSilence { host, item, until } => {
                alerts::save_silence(conn, &host, &item, until)?
            }
            Write::DropSilences(at) => alerts::drop_expired_silences(conn, at)?,
            Write::Digest { user } => digest(conn, &user, now)?,
            Write::Delivered(id) => outbox::delivered(conn, id)?,
            Write::FailedTry { id, error } => {
                let max = |ch: &str| m.max_tries(ch);
                if outbox::failed_try(conn, id, &error, now, max)? {
                    log::error!("notify: delivery {id} given up: {error}");
                } else {
                    log::warn!("notify: delivery {id} failed: {error}");
                    // In flight at a work change: it follows its user now.
                    for note in retarget::retarget_one(conn, &m.work, id)? {
                        log::warn!("notify: {note}");
                    }
                }
            }
            Write::RetargetOutbox => {
                for note in retarget::retarget_rows(conn, &m.work)? {
                    log::warn!("notify: {note}");
                }
            }
            Write::Quiet { .. } => {}
            Write::Note(note) => log::warn!("notify: {note}"),
        }
    }
    Ok(())
}

/// A user's held rows become one digest per channel.
fn digest(conn: &Connection, user: &str, now: f64) -> rusqlite::Result<()> {
    let mut by_channel: BTreeMap<String, (Vec<i64>, Vec<Message>)> = BTreeMap::new();
    for (id, ch, m) in outbox::held_of(conn, user)? {
        let e = by_channel.entry(ch).or_default();
        e.0.push(id);
        e.1.push(m);
    }
    for (ch, (ids, msgs)) in by_channel {
        let d = message::digest(&msgs, now);
        outbox::enqueue(conn, &format!("digest:{user}"), &ch, user, &d, false, now)?;
        for id in ids {
            outbox::delivered(conn, id)?;
        }
    }
    Ok(())
}
