//! The event outbox: fitness-change events kept until the server says ok
//! (DESIGN.md §5), so nothing is lost while the server is down. An event is
//! stored as its JSON (the EVENTS wire shape); its id is the primary key, so
//! queueing the same event twice keeps one copy.

use super::History;
use crate::error::{Error, Result};
use crate::event::Event;
use rusqlite::{params, Connection};

/// Inserts events inside the caller's transaction.
pub(super) fn enqueue_in(conn: &Connection, events: &[Event]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut st = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO outbox(id, event, queued, tries, next_try) \
             VALUES (?1, ?2, ?3, 0, 0)",
        )
        .map_err(|e| Error::db("prepare outbox insert", e))?;
    for ev in events {
        let json = serde_json::to_string(ev)
            .map_err(|e| Error::Runtime(format!("encode event {}: {e}", ev.id)))?;
        st.execute(params![ev.id, json, ev.time])
            .map_err(|e| Error::db(format!("queue event {}", ev.id), e))?;
    }
    Ok(())
}

/// Deletes acknowledged events inside the caller's transaction.
pub(super) fn delete_in(conn: &Connection, ids: &[String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut st = conn
        .prepare_cached("DELETE FROM outbox WHERE id = ?1")
        .map_err(|e| Error::db("prepare outbox delete", e))?;
    for id in ids {
        st.execute(params![id]).map_err(|e| Error::db(format!("delete outbox event {id}"), e))?;
    }
    Ok(())
}

impl History {
    /// Queues events (one transaction).
    pub fn enqueue(&mut self, events: &[Event]) -> Result<()> {
        let tx = self.conn.transaction().map_err(|e| Error::db("begin enqueue", e))?;
        enqueue_in(&tx, events)?;
        tx.commit().map_err(|e| Error::db("commit enqueue", e))
    }

    /// The oldest `limit` queued events, whatever their retry time.
    pub fn pending(&self, limit: usize) -> Result<Vec<Event>> {
        self.select_events(f64::INFINITY, limit)
    }

    /// The oldest `limit` events whose retry time has come.
    pub fn due(&self, now: f64, limit: usize) -> Result<Vec<Event>> {
        self.select_events(now, limit)
    }

    fn select_events(&self, now: f64, limit: usize) -> Result<Vec<Event>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, event FROM outbox WHERE next_try <= ?1 ORDER BY queued, id LIMIT ?2",
            )
            .map_err(|e| Error::db("prepare outbox select", e))?;
        let now = if now.is_finite() { now } else { f64::MAX };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = st
            .query_map(params![now, limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| Error::db("read outbox", e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json) = row.map_err(|e| Error::db("read outbox row", e))?;
            // A row this build cannot decode is skipped, not fatal: it stays
            // queued for a build that can, and the rest still go out.
            match serde_json::from_str::<Event>(&json) {
                Ok(ev) => out.push(ev),
                Err(e) => log::warn!("outbox: event {id} unreadable: {e}"),
            }
        }
        Ok(out)
    }

    /// Removes acknowledged events.
    pub fn ack(&mut self, ids: &[String]) -> Result<usize> {
        self.update_ids(ids, "DELETE FROM outbox WHERE id = ?1", None)
    }

    /// Counts one more failed try and sets when to try again.
    pub fn bump_retry(&mut self, ids: &[String], next_try: f64) -> Result<usize> {
        self.update_ids(
            ids,
            "UPDATE outbox SET tries = tries + 1, next_try = ?2 WHERE id = ?1",
            Some(next_try),
        )
    }

    fn update_ids(&mut self, ids: &[String], sql: &str, arg: Option<f64>) -> Result<usize> {
        let tx = self.conn.transaction().map_err(|e| Error::db("begin outbox update", e))?;
        let mut n = 0;
        {
            let mut st =
                tx.prepare_cached(sql).map_err(|e| Error::db("prepare outbox update", e))?;
            for id in ids {
                n += match arg {
                    Some(a) => st.execute(params![id, a]),
                    None => st.execute(params![id]),
                }
                .map_err(|e| Error::db(format!("update outbox event {id}"), e))?;
            }
        }
        tx.commit().map_err(|e| Error::db("commit outbox update", e))?;
        Ok(n)
    }

    pub fn outbox_len(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| Error::db("count outbox", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(id: &str, time: f64) -> Event {
        Event {
            id: id.into(),
            host: "h1".into(),
            item: "cpu_load".into(),
            old_level: Some("fine".into()),
            new_level: "sick".into(),
            old_value: Some(0.5),
            new_value: Some(5.0),
            time,
            message: String::new(),
        }
    }

    #[test]
    fn queue_retry_ack() {
        let mut h = History::open_in_memory().unwrap();
        h.enqueue(&[ev("b", 2.0), ev("a", 1.0), ev("a", 1.0)]).unwrap();
        assert_eq!(h.outbox_len().unwrap(), 2);
        let p = h.pending(10).unwrap();
        assert_eq!(p, vec![ev("a", 1.0), ev("b", 2.0)]);
        assert_eq!(h.pending(1).unwrap().len(), 1);
        assert_eq!(h.bump_retry(&["a".into()], 100.0).unwrap(), 1);
        assert_eq!(h.due(50.0, 10).unwrap(), vec![ev("b", 2.0)]);
        assert_eq!(h.due(100.0, 10).unwrap().len(), 2);
        let tries: i64 =
            h.conn.query_row("SELECT tries FROM outbox WHERE id='a'", [], |r| r.get(0)).unwrap();
        assert_eq!(tries, 1);
        assert_eq!(h.ack(&["a".into(), "zz".into()]).unwrap(), 1);
        assert_eq!(h.outbox_len().unwrap(), 1);
    }

    #[test]
    fn a_round_and_its_events_commit_together_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.db");
        {
            let mut h = History::open(&p).unwrap();
            h.insert_round_with_events(10.0, &[("cpu_load", 5.0)], &[ev("e1", 10.0)]).unwrap();
        }
        let h = History::open(&p).unwrap();
        assert_eq!(h.pending(10).unwrap(), vec![ev("e1", 10.0)]);
        assert_eq!(h.sample_count().unwrap(), 1);
    }

    #[test]
    fn unreadable_rows_are_skipped() {
        let mut h = History::open_in_memory().unwrap();
        h.conn
            .execute("INSERT INTO outbox(id, event, queued) VALUES ('x', 'not json', 0)", [])
            .unwrap();
        h.enqueue(&[ev("ok", 1.0)]).unwrap();
        assert_eq!(h.pending(10).unwrap(), vec![ev("ok", 1.0)]);
        assert_eq!(h.outbox_len().unwrap(), 2);
    }
}
