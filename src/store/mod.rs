//! The client's local history, `$vardir/history.db` (DESIGN.md §6): SQLite
//! opened once, migrated by `PRAGMA user_version`, sample rounds written one
//! transaction each. HIST reads live in `store/hist.rs`, ZAP downsampling in
//! `store/zap.rs`, the event outbox in `store/outbox.rs`. On a running
//! client one thread owns the connection (`store/thread.rs`): the event
//! loop sends it requests and never calls SQLite itself.
//!
//! This module owns the file's schema; nothing else writes SQL against it.
//! It never blocks on the network and never panics on a bad file: every
//! failure is an `Error::Db` naming the operation.
//!
//! The schema version users see is `PRAGMA user_version`
//! (`sqlite3 history.db 'PRAGMA user_version'`), equal to `MIGRATIONS.len()`
//! once opened by this build; `History::schema_version` reports it.

mod hist;
mod outbox;
pub mod spool;
pub mod thread;
mod zap;

pub use hist::{parse_hist_args, parse_hist_ival, HistArgs, HistSpan};
pub use thread::{Query, StoreDone, StoreReq, StoreStatus, StoreThread};

use crate::error::{Error, Result};
use crate::event::Event;
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::HashMap;
use std::path::Path;

/// Schema steps; step i brings `user_version` from i to i+1. Append only.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
    -- t = Unix seconds; ZAP replaces old rows by bucket averages stored at the
    -- bucket start, so every tier lives in this one table.
    CREATE TABLE samples(
        item INTEGER NOT NULL, t INTEGER NOT NULL, v REAL NOT NULL,
        PRIMARY KEY(item, t)) WITHOUT ROWID;
    -- Fitness-change events not yet acknowledged by the server.
    CREATE TABLE outbox(
        id TEXT PRIMARY KEY, event TEXT NOT NULL, queued REAL NOT NULL,
        tries INTEGER NOT NULL DEFAULT 0, next_try REAL NOT NULL DEFAULT 0);
    CREATE INDEX outbox_queued ON outbox(queued);
"];

pub struct History {
    conn: Connection,
    /// item name -> items.id, filled lazily; cleared when a write fails so a
    /// rolled-back insert never leaves a stale id behind.
    ids: HashMap<String, i64>,
    /// Each tier's upper bound at the last ZAP: rows below it were already
    /// averaged, so the next ZAP scans only what entered a tier since
    /// (hourly ZAP stays cheap). Empty = scan everything (after start-up or
    /// a bulk load of arbitrary times).
    zap_cuts: Vec<i64>,
    /// `PRAGMA data_version` after the last ZAP: a different value means
    /// another connection (an import, sqlite3) wrote rows of any age since,
    /// so the cuts no longer hold.
    zap_data_version: Option<i64>,
}

impl History {
    pub fn open(path: &Path) -> Result<History> {
        History::open_checked(path).map(|(h, _)| h)
    }

    /// Opens the file (created 0600); a corrupt one is moved aside and its
    /// readable rows (the outbox first of all) carried over: the notice says
    /// what happened (see `dbfile`).
    pub fn open_checked(path: &Path) -> Result<(History, Option<String>)> {
        let probe = |c: &Connection| user_version(c).map(|_| ());
        let opened = crate::dbfile::open(path, &probe)?;
        let h = History::setup(opened.conn, true)
            .map_err(|e| Error::Runtime(format!("{}: {e}", path.display())))?;
        Ok((h, opened.notice))
    }

    pub fn open_in_memory() -> Result<History> {
        let conn = Connection::open_in_memory().map_err(|e| Error::db("open in memory", e))?;
        History::setup(conn, false)
    }

    fn setup(conn: Connection, wal: bool) -> Result<History> {
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| Error::db("set busy_timeout", e))?;
        let version = user_version(&conn)?;
        if version as usize > MIGRATIONS.len() {
            // Refused before any pragma: a newer file is left as it is.
            return Err(Error::Runtime(format!(
                "history.db schema version {version} is newer than this hbmon ({}): \
                 refused, the file is left as it is",
                MIGRATIONS.len()
            )));
        }
        if version == 0 {
            // Only effective before the first table exists: lets ZAP give
            // pages back with `incremental_vacuum` instead of a full VACUUM.
            conn.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
                .map_err(|e| Error::db("set auto_vacuum", e))?;
        }
        if wal {
            // journal_mode cannot change inside a transaction: set it first.
            let mode: String = conn
                .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
                .map_err(|e| Error::db("set journal_mode=WAL", e))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::Runtime(format!("history: journal_mode is {mode}, not wal")));
            }
        }
        // NORMAL is durable enough in WAL mode (a power cut may lose the
        // last round, never corrupt). A 1 MiB page cache instead of the
        // default 2 MiB: the client's RSS budget is 4 MiB, and the file
        // system cache serves the rest of a HIST Y about as fast.
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -1024")
            .map_err(|e| Error::db("set synchronous/cache_size", e))?;
        let mut h =
            History { conn, ids: HashMap::new(), zap_cuts: Vec::new(), zap_data_version: None };
        h.migrate(version)?;
        Ok(h)
    }

    fn migrate(&mut self, from: u32) -> Result<()> {
        let have = from as usize;
        if have > MIGRATIONS.len() {
            return Err(Error::Runtime(format!(
                "history.db schema version {have} is newer than this hbmon ({})",
                MIGRATIONS.len()
            )));
        }
        for (i, step) in MIGRATIONS.iter().enumerate().skip(have) {
            let tx = self.conn.transaction().map_err(|e| Error::db("begin migration", e))?;
            tx.execute_batch(step).map_err(|e| Error::db(format!("migration {}", i + 1), e))?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(|e| Error::db("set user_version", e))?;
            tx.commit().map_err(|e| Error::db("commit migration", e))?;
        }
        Ok(())
    }

    /// `PRAGMA user_version`: the number of migrations applied.
    pub fn schema_version(&self) -> Result<u32> {
        user_version(&self.conn)
    }

    /// Writes one sample round (t in Unix seconds, truncated) in one
    /// transaction. A second sample of an item in the same second replaces
    /// the first.
    pub fn insert_round(&mut self, t: f64, values: &[(&str, f64)]) -> Result<()> {
        self.insert_round_with_events(t, values, &[])
    }

    /// A round and the events it raised, in one transaction: a crash leaves
    /// either both or neither.
    pub fn insert_round_with_events(
        &mut self,
        t: f64,
        values: &[(&str, f64)],
        events: &[Event],
    ) -> Result<()> {
        self.write_batch(&[(t, values.to_vec())], events, &[])
    }

    /// One drain of the store thread: several rounds `(t, values)`, the
    /// events they raised and the ids the server acknowledged, in one
    /// transaction (a burst of rounds is one commit, not one each).
    pub fn write_batch(
        &mut self,
        rounds: &[(f64, Vec<(&str, f64)>)],
        events: &[Event],
        acked: &[String],
    ) -> Result<()> {
        for (t, _) in rounds {
            if self.zap_cuts.first().is_some_and(|cut| (*t as i64) < *cut) {
                self.zap_cuts.clear(); // the clock went back: rows below a cut
            }
        }
        let r = self.write_rounds(rounds, events, acked);
        if r.is_err() {
            self.ids.clear();
        }
        r
    }

    fn write_rounds(
        &mut self,
        rounds: &[(f64, Vec<(&str, f64)>)],
        events: &[Event],
        acked: &[String],
    ) -> Result<()> {
        let tx = self.conn.transaction().map_err(|e| Error::db("begin round", e))?;
        {
            let mut ins = tx
                .prepare_cached("INSERT OR REPLACE INTO samples(item, t, v) VALUES (?1, ?2, ?3)")
                .map_err(|e| Error::db("prepare sample insert", e))?;
            for (t, values) in rounds {
                let t = *t as i64;
                for (name, v) in values {
                    if !v.is_finite() {
                        continue; // SQLite stores NaN as NULL, which the schema refuses.
                    }
                    let id = item_id(&tx, &mut self.ids, name)?;
                    ins.execute(params![id, t, v])
                        .map_err(|e| Error::db(format!("insert sample {name}"), e))?;
                }
            }
            outbox::enqueue_in(&tx, events)?;
            outbox::delete_in(&tx, acked)?;
        }
        tx.commit().map_err(|e| Error::db("commit round", e))
    }

    /// Bulk load of one item's samples `(t, v)` in one transaction (for
    /// imports, tests and the benchmark).
    pub fn insert_series(&mut self, item: &str, samples: &[(i64, f64)]) -> Result<()> {
        self.zap_cuts.clear();
        let r = (|| {
            let tx = self.conn.transaction().map_err(|e| Error::db("begin series", e))?;
            {
                let id = item_id(&tx, &mut self.ids, item)?;
                let mut ins = tx
                    .prepare_cached(
                        "INSERT OR REPLACE INTO samples(item, t, v) VALUES (?1, ?2, ?3)",
                    )
                    .map_err(|e| Error::db("prepare sample insert", e))?;
                for (t, v) in samples.iter().filter(|(_, v)| v.is_finite()) {
                    ins.execute(params![id, t, v])
                        .map_err(|e| Error::db(format!("insert sample {item}"), e))?;
                }
            }
            tx.commit().map_err(|e| Error::db("commit series", e))
        })();
        if r.is_err() {
            self.ids.clear();
        }
        r
    }

    /// Number of rows in `samples`.
    pub fn sample_count(&self) -> Result<u64> {
        self.conn
            .query_row("SELECT count(*) FROM samples", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| Error::db("count samples", e))
    }

    /// Every item name the history knows, sorted.
    pub fn item_names(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT name FROM items ORDER BY name")
            .map_err(|e| Error::db("prepare item list", e))?;
        let rows = st.query_map([], |r| r.get(0)).map_err(|e| Error::db("list items", e))?;
        rows.collect::<rusqlite::Result<Vec<String>>>().map_err(|e| Error::db("list items", e))
    }

    /// Writes the WAL back into the main file and truncates it (after ZAP,
    /// so the file size on disk reflects the data).
    pub fn checkpoint(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .map_err(|e| Error::db("wal checkpoint", e))
    }
}

fn user_version(conn: &Connection) -> Result<u32> {
    conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map(|v| v as u32)
        .map_err(|e| Error::db("read user_version", e))
}

/// The id of an item, created on first use.
fn item_id(conn: &Connection, cache: &mut HashMap<String, i64>, name: &str) -> Result<i64> {
    if let Some(id) = cache.get(name) {
        return Ok(*id);
    }
    let found: Option<i64> = conn
        .prepare_cached("SELECT id FROM items WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)).optional())
        .map_err(|e| Error::db(format!("look up item {name}"), e))?;
    let id = match found {
        Some(id) => id,
        None => {
            conn.execute("INSERT INTO items(name) VALUES (?1)", [name])
                .map_err(|e| Error::db(format!("add item {name}"), e))?;
            conn.last_insert_rowid()
        }
    };
    cache.insert(name.to_string(), id);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_to_the_latest_version_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.db");
        let h = History::open(&p).unwrap();
        assert_eq!(h.schema_version().unwrap(), MIGRATIONS.len() as u32);
        let mode: String = h.conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        let av: i64 = h.conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap();
        assert_eq!(av, 2, "incremental");
        drop(h);
        let h = History::open(&p).unwrap();
        assert_eq!(h.schema_version().unwrap(), MIGRATIONS.len() as u32);
    }

    #[test]
    fn refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.db");
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", 99).unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let err = History::open(&p).err().unwrap();
        assert!(err.to_string().contains("newer"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), before, "not one byte changed");
        assert!(!dir.path().join("history.db-wal").exists(), "not switched to WAL");
    }

    #[test]
    fn rounds_write_samples_and_reuse_item_ids() {
        let mut h = History::open_in_memory().unwrap();
        h.insert_round(100.7, &[("cpu_load", 0.5), ("mem_used", 40.0)]).unwrap();
        h.insert_round(160.0, &[("cpu_load", 0.7), ("bad", f64::NAN)]).unwrap();
        h.insert_round(160.2, &[("cpu_load", 0.9)]).unwrap();
        assert_eq!(h.sample_count().unwrap(), 3);
        // A NaN is skipped before its item is created.
        assert_eq!(h.item_names().unwrap(), vec!["cpu_load", "mem_used"]);
        let v: f64 = h
            .conn
            .query_row(
                "SELECT v FROM samples s JOIN items i ON i.id = s.item \
                 WHERE i.name = 'cpu_load' AND t = 160",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v, 0.9);
        let t: i64 = h.conn.query_row("SELECT min(t) FROM samples", [], |r| r.get(0)).unwrap();
        assert_eq!(t, 100);
    }

    #[test]
    fn series_bulk_load() {
        let mut h = History::open_in_memory().unwrap();
        let s: Vec<(i64, f64)> = (0..1000).map(|i| (i * 60, i as f64)).collect();
        h.insert_series("x", &s).unwrap();
        assert_eq!(h.sample_count().unwrap(), 1000);
    }
}
