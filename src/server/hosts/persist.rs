//! The host table in server.db: saved periodically and on stop, loaded at
//! start so a restart remembers every host (no "new host" storm) and gives
//! each one interval of grace (last-seen is set to the load time). The
//! table is made by server.db's migration list (`server/db.rs`).

use super::{ChangeKind, Host, HostChange, HostTable, ItemVal};
use crate::clock::Now;
use crate::error::{Error, Result};
use crate::server::detector::Reach;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// One host as saved: what a restart needs to remember it.
#[derive(Debug, Clone)]
pub struct SavedHost {
    // Shared with the record and formatted on the store thread: copying
    // 100,000 rows on the loop allocates nothing per row but PLG items.
    name: std::sync::Arc<str>,
    in_work: bool,
    addr: Option<std::net::SocketAddr>,
    state: &'static str,
    last_seen_wall: Option<f64>,
    seq: Option<i64>,
    seq_gaps: i64,
    rtt_ms: Option<f64>,
    boot_wall: Option<f64>,
    uptime: Option<f64>,
    version: std::sync::Arc<str>,
    interval: f64,
    items: BTreeMap<String, ItemVal>,
}

/// Replaces the saved table with `rows`, in one transaction (a savepoint
/// inside the store thread's drain).
pub fn save_rows(conn: &Connection, rows: &[SavedHost]) -> Result<()> {
    let tx =
        crate::server::db::Savepoint::new(conn).map_err(|e| Error::db("begin hosts save", e))?;
    tx.execute("DELETE FROM hosts", []).map_err(|e| Error::db("clear hosts", e))?;
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO hosts (name, in_work, addr, state, last_seen_wall, seq, seq_gaps,
                 rtt_ms, boot_wall, uptime, version, interval, items)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .map_err(|e| Error::db("prepare hosts insert", e))?;
        // In key order: the name index is then appended to, not split at
        // random pages (100,000 rows a minute on the store thread).
        let mut sorted: Vec<&SavedHost> = rows.iter().collect();
        sorted.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        for h in sorted {
            // Most hosts send no PLG: no JSON (and its String) for them.
            let items = match h.items.is_empty() {
                true => std::borrow::Cow::Borrowed("{}"),
                false => serde_json::to_string(&h.items).unwrap_or_else(|_| "{}".into()).into(),
            };
            st.execute(params![
                &*h.name,
                h.in_work,
                h.addr.map(|a| a.to_string()),
                h.state,
                h.last_seen_wall,
                h.seq,
                h.seq_gaps,
                h.rtt_ms,
                h.boot_wall,
                h.uptime,
                &*h.version,
                h.interval,
                items,
            ])
            .map_err(|e| Error::db(format!("save host {}", h.name), e))?;
        }
    }
    tx.commit().map_err(|e| Error::db("commit hosts save", e))
}

impl HostTable {
    /// The rows `save_rows` writes: taken on the loop (a copy of the
    /// table's saved fields), written on the store thread.
    pub fn rows(&self) -> Vec<SavedHost> {
        let mut out = Vec::with_capacity(self.r.hosts.len());
        self.rows_from(0, usize::MAX, &mut out);
        out
    }

    /// Up to `max` rows from record `start` on, appended to `out`; the
    /// index to go on from (the table's length when done). The periodic
    /// save takes the table a slice a turn, so 100,000 records do not
    /// hold one turn (records are only appended, so indexes stay valid).
    pub fn rows_from(&self, start: usize, max: usize, out: &mut Vec<SavedHost>) -> usize {
        let end = start.saturating_add(max).min(self.r.hosts.len());
        let Some(slice) = self.r.hosts.get(start..end) else { return self.r.hosts.len() };
        out.extend(slice.iter().map(|h| SavedHost {
            name: h.name.clone(),
            in_work: h.in_work,
            addr: h.addr,
            state: h.state.name(),
            last_seen_wall: h.last_seen_wall,
            seq: h.seq.map(|s| s as i64),
            seq_gaps: h.seq_gaps as i64,
            rtt_ms: h.rtt_ms,
            boot_wall: h.boot_wall,
            uptime: h.uptime,
            version: h.version.clone(),
            interval: h.interval,
            items: h.items.clone(),
        }));
        end
    }

    /// Replaces the saved table with the current one, in one transaction.
    pub fn save(&self, conn: &Connection) -> Result<()> {
        save_rows(conn, &self.rows())
    }

    /// Restores saved hosts into this table (call right after `new`).
    pub fn load(&mut self, conn: &Connection, now: Now) -> Result<usize> {
        Ok(self.restore(load_rows(conn)?, now).0)
    }

    /// Puts the saved rows (read by the store thread at start) into the
    /// table. Hosts keep their state; those seen get `now` as last-seen, so
    /// the first deadline is one interval (plus grace) away. A host heard
    /// from since start (the rows arrive after the loop has turned) keeps
    /// what its heartbeats said; when it was saved failing, the recovery is
    /// returned as a change, the one its heartbeat would have made.
    pub fn restore(&mut self, rows: Vec<SavedHost>, now: Now) -> (usize, Vec<HostChange>) {
        let (mut n, mut skipped, mut changes) = (0, 0, Vec::new());
        for row in rows {
            let known = self.r.by_name.get(&*row.name).map(|i| *i as usize);
            if let Some(h) = known.map(|i| &self.r.hosts[i]).filter(|h| h.last_seen.is_some()) {
                let old = Reach::parse(row.state).unwrap_or(Reach::New);
                if old != h.state && !matches!(old, Reach::New | Reach::Up) {
                    let message =
                        format!("heard from as {} while server.db was read", h.state.name());
                    changes.push(HostChange {
                        host: row.name.to_string(),
                        kind: ChangeKind::Heartbeat { old, new: h.state },
                        time: now.wall,
                        message,
                    });
                }
                continue;
            }
            // Only work hosts and up to `hbd_senders` other names come
            // back: a table bloated by a flood is not restored.
            if known.is_none() {
                if self.r.senders >= self.r.conf.intervals.hbd_senders as usize {
                    skipped += 1;
                    continue;
                }
                self.r.senders += 1;
            }
            let i = self.r.find_or_add(&row.name, false);
            let h: &mut Host = &mut self.r.hosts[i];
            h.addr = row.addr;
            h.state = Reach::parse(row.state).unwrap_or(Reach::New);
            h.last_seen_wall = row.last_seen_wall;
            h.last_seen = row.last_seen_wall.map(|_| now.mono);
            h.seq = row.seq.map(|s| s.max(0) as u64);
            h.seq_gaps = row.seq_gaps.max(0) as u64;
            h.rtt_ms = row.rtt_ms;
            h.boot_wall = row.boot_wall;
            h.uptime = row.uptime;
            h.version = self.r.versions.intern(&row.version);
            h.interval = if row.interval > 0.0 { row.interval } else { h.interval };
            h.items = row.items;
            if let Some(a) = h.addr {
                self.r.by_ip.insert(a.ip(), i as u32);
            }
            self.r.schedule(i);
            n += 1;
        }
        if skipped > 0 {
            log::warn!(
                "server.db: {skipped} saved hosts not in the work dropped (over hbd_senders)"
            );
        }
        (n, changes)
    }
}

/// The saved table's rows (on the store thread, at start).
pub fn load_rows(conn: &Connection) -> Result<Vec<SavedHost>> {
    let mut st = conn
        .prepare(
            "SELECT name, in_work, addr, state, last_seen_wall, seq, seq_gaps, rtt_ms, boot_wall,
             uptime, version, interval, items FROM hosts",
        )
        .map_err(|e| Error::db("prepare hosts load", e))?;
    let rows = st
        .query_map([], |r| {
            let state: String = r.get(3)?;
            let items: String = r.get(12)?;
            let (name, addr, version): (String, Option<String>, String) =
                (r.get(0)?, r.get(2)?, r.get(10)?);
            Ok(SavedHost {
                name: name.into(),
                in_work: r.get(1)?,
                addr: addr.and_then(|a| a.parse().ok()),
                state: Reach::parse(&state).unwrap_or(Reach::New).name(),
                last_seen_wall: r.get(4)?,
                seq: r.get(5)?,
                seq_gaps: r.get(6)?,
                rtt_ms: r.get(7)?,
                boot_wall: r.get(8)?,
                uptime: r.get(9)?,
                version: version.into(),
                interval: r.get(11)?,
                items: serde_json::from_str(&items).unwrap_or_default(),
            })
        })
        .map_err(|e| Error::db("load hosts", e))?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(|e| Error::db("read saved host", e))
}
