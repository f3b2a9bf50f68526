//! The host table in server.db: saved periodically and on stop, loaded at
//! start so a restart remembers every host (no "new host" storm) and gives
//! each one interval of grace (last-seen is set to the load time).

use super::{Host, HostTable, ItemVal};
use crate::clock::Now;
use crate::error::{Error, Result};
use crate::server::detector::Reach;
use rusqlite::{params, Connection};
use std::collections::BTreeMap;

/// The `hosts` table.
pub const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS hosts (
    name TEXT PRIMARY KEY,
    in_work INTEGER NOT NULL,
    addr TEXT,
    state TEXT NOT NULL,
    last_seen_wall REAL,
    seq INTEGER,
    seq_gaps INTEGER NOT NULL,
    rtt_ms REAL,
    boot_wall REAL,
    uptime REAL,
    version TEXT NOT NULL,
    interval REAL NOT NULL,
    items TEXT NOT NULL
);";

/// One host as saved: what a restart needs to remember it.
#[derive(Debug, Clone)]
pub struct SavedHost {
    name: String,
    in_work: bool,
    addr: Option<String>,
    state: &'static str,
    last_seen_wall: Option<f64>,
    seq: Option<i64>,
    seq_gaps: i64,
    rtt_ms: Option<f64>,
    boot_wall: Option<f64>,
    uptime: Option<f64>,
    version: String,
    interval: f64,
    items: BTreeMap<String, ItemVal>,
}

/// Replaces the saved table with `rows`, in one transaction (a savepoint
/// inside the store thread's drain).
pub fn save_rows(conn: &Connection, rows: &[SavedHost]) -> Result<()> {
    let tx =
        crate::server::db::Savepoint::new(conn).map_err(|e| Error::db("begin hosts save", e))?;
    tx.execute_batch(SCHEMA).map_err(|e| Error::db("create hosts table", e))?;
    tx.execute("DELETE FROM hosts", []).map_err(|e| Error::db("clear hosts", e))?;
    {
        let mut st = tx
            .prepare_cached(
                "INSERT INTO hosts (name, in_work, addr, state, last_seen_wall, seq, seq_gaps,
                 rtt_ms, boot_wall, uptime, version, interval, items)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .map_err(|e| Error::db("prepare hosts insert", e))?;
        for h in rows {
            let items = serde_json::to_string(&h.items).unwrap_or_else(|_| "{}".into());
            st.execute(params![
                h.name,
                h.in_work,
                h.addr,
                h.state,
                h.last_seen_wall,
                h.seq,
                h.seq_gaps,
                h.rtt_ms,
                h.boot_wall,
                h.uptime,
                h.version,
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
            name: h.name.to_string(),
            in_work: h.in_work,
            addr: h.addr.map(|a| a.to_string()),
            state: h.state.name(),
            last_seen_wall: h.last_seen_wall,
            seq: h.seq.map(|s| s as i64),
            seq_gaps: h.seq_gaps as i64,
            rtt_ms: h.rtt_ms,
            boot_wall: h.boot_wall,
            uptime: h.uptime,
            version: h.version.to_string(),
            interval: h.interval,
            items: h.items.clone(),
        }));
        end
    }

    /// Replaces the saved table with the current one, in one transaction.
    pub fn save(&self, conn: &Connection) -> Result<()> {
        save_rows(conn, &self.rows())
    }

    /// Restores saved hosts into this table (call right after `new`). Hosts
    /// keep their state; those seen get `now` as last-seen, so the first
    /// deadline is one interval (plus grace) away.
    pub fn load(&mut self, conn: &Connection, now: Now) -> Result<usize> {
        conn.execute_batch(SCHEMA).map_err(|e| Error::db("create hosts table", e))?;
        let mut st = conn
            .prepare(
                "SELECT name, addr, state, last_seen_wall, seq, seq_gaps, rtt_ms, boot_wall,
                 uptime, version, interval, items FROM hosts",
            )
            .map_err(|e| Error::db("prepare hosts load", e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<f64>>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<f64>>(6)?,
                    r.get::<_, Option<f64>>(7)?,
                    r.get::<_, Option<f64>>(8)?,
                    r.get::<_, String>(9)?,
                    r.get::<_, f64>(10)?,
                    r.get::<_, String>(11)?,
                ))
            })
            .map_err(|e| Error::db("load hosts", e))?;
        let (mut n, mut skipped) = (0, 0);
        for row in rows {
            let (name, addr, state, seen, seq, gaps, rtt, boot, up, ver, ival, items) =
                row.map_err(|e| Error::db("read saved host", e))?;
            // Only work hosts and up to `hbd_senders` other names come
            // back: a table bloated by a flood is not restored.
            if !self.r.by_name.contains_key(name.as_str()) {
                if self.r.senders >= self.r.conf.intervals.hbd_senders as usize {
                    skipped += 1;
                    continue;
                }
                self.r.senders += 1;
            }
            let i = self.r.find_or_add(&name, false);
            let h: &mut Host = &mut self.r.hosts[i];
            h.addr = addr.and_then(|a| a.parse().ok());
            h.state = Reach::parse(&state).unwrap_or(Reach::New);
            h.last_seen_wall = seen;
            h.last_seen = seen.map(|_| now.mono);
            h.seq = seq.map(|s| s.max(0) as u64);
            h.seq_gaps = gaps.max(0) as u64;
            h.rtt_ms = rtt;
            h.boot_wall = boot;
            h.uptime = up;
            h.version = self.r.versions.intern(&ver);
            h.interval = if ival > 0.0 { ival } else { h.interval };
            h.items = serde_json::from_str::<BTreeMap<String, ItemVal>>(&items).unwrap_or_default();
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
        Ok(n)
    }
}
