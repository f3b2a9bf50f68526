//! `$vardir/server.db`: opened once, WAL, migrated by `user_version`. Holds
//! the durable side of the server: events (de-duplicated by the sender's
//! event id), the latest report per host, the host table, and the tables
//! of the notification engine. WAL with synchronous=NORMAL survives a crash
//! of the process (what we promise: nothing acknowledged is lost when hbmon
//! is killed); a power loss may lose the last moments.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;

/// The one list of `server.db`'s schema (every table of every part: the
/// fleet's, the host table's, the notification engine's). Entry i brings
/// `user_version` from i to i+1, in one transaction. Append only: never
/// edit a shipped entry, add one.
pub const MIGRATIONS: &[&str] = &[
    // 1: events and reports.
    "CREATE TABLE events(
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        host TEXT NOT NULL,
        id TEXT NOT NULL,
        item TEXT NOT NULL,
        time REAL NOT NULL,
        received REAL NOT NULL,
        json TEXT NOT NULL,
        UNIQUE(host, id));
     CREATE INDEX events_time ON events(time);
     CREATE INDEX events_host_item ON events(host, item, time);
     CREATE TABLE reports(host TEXT PRIMARY KEY, time REAL NOT NULL, ip TEXT, json TEXT NOT NULL);",
    // 2: the notification engine's tables (the outbox of deliveries, alert
    // states, silences) and the host table. Builds before this one made
    // them outside `user_version`, so a version-1 file may have them
    // already: IF NOT EXISTS keeps their rows.
    "CREATE TABLE IF NOT EXISTS notify_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_key TEXT NOT NULL,      -- host '\t' item, or 'digest:<user>'
        channel TEXT NOT NULL,
        user TEXT NOT NULL,
        payload TEXT NOT NULL,        -- notify::message::Message as JSON
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
        state TEXT NOT NULL,          -- notify::alerts::AlertState as JSON
        PRIMARY KEY (host, item)
     );
     CREATE TABLE IF NOT EXISTS notify_silences (
        host TEXT NOT NULL,
        item TEXT NOT NULL,           -- '' = every item of the host
        until REAL NOT NULL,
        PRIMARY KEY (host, item)
     );
     CREATE TABLE IF NOT EXISTS hosts (
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
     );",
];

/// Opens the file (created 0600, tightened if older); a corrupt one is
/// moved aside, its readable rows kept, and the notice says what was lost.
/// A file from a newer hbmon is refused before anything is written to it.
pub fn open(path: &Path) -> Result<crate::dbfile::Opened> {
    crate::dbfile::open(path, &setup)
}

/// A fresh database with the whole schema (tests, benches, tools).
pub fn open_in_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory().map_err(|e| Error::db("open in-memory", e))?;
    setup(&conn)?;
    Ok(conn)
}

fn setup(conn: &Connection) -> Result<()> {
    let db = |op: &str, e| Error::db(op.to_string(), e);
    // Refused before the pragmas: a newer file is not touched.
    check_version(conn, MIGRATIONS.len())?;
    // journal_mode answers a row, so it goes through query_row.
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).map_err(|e| db("set WAL", e))?;
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")
        .map_err(|e| db("pragmas", e))?;
    migrate(conn, MIGRATIONS)
}

/// The database's `user_version`, refused when beyond what this build knows.
fn check_version(conn: &Connection, known: usize) -> Result<usize> {
    let have: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| Error::db("read user_version", e))?;
    if have < 0 || have as usize > known {
        return Err(Error::Runtime(format!(
            "server.db schema version {have} is newer than this hbmon knows ({known}): \
             refused, the file is left as it is (run the newer hbmon, or move the file away)"
        )));
    }
    Ok(have as usize)
}

/// Applies the migrations past the database's `user_version`, each in its
/// own transaction with the version bump (a failed one leaves the file at
/// the version before it).
pub fn migrate(conn: &Connection, migrations: &[&str]) -> Result<()> {
    let have = check_version(conn, migrations.len())?;
    for (i, sql) in migrations.iter().enumerate().skip(have) {
        let step = || -> rusqlite::Result<()> {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()
        };
        step().map_err(|e| Error::db(format!("server.db migration {}", i + 1), e))?;
    }
    Ok(())
}

/// A nestable transaction: `SAVEPOINT` inside the store thread's drain
/// transaction (one commit per drain), a transaction of its own outside one
/// (tests, start-up). Dropped without `commit`, it rolls back to where it
/// began, so one failed request does not undo the rest of its drain.
pub struct Savepoint<'c> {
    conn: &'c Connection,
    done: bool,
}

impl<'c> Savepoint<'c> {
    pub fn new(conn: &'c Connection) -> rusqlite::Result<Savepoint<'c>> {
        conn.execute_batch("SAVEPOINT hbmon")?;
        Ok(Savepoint { conn, done: false })
    }

    pub fn commit(mut self) -> rusqlite::Result<()> {
        self.done = true;
        self.conn.execute_batch("RELEASE hbmon")
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK TO hbmon; RELEASE hbmon");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.db");
        {
            let c = open(&p).unwrap().conn;
            c.execute(
                "INSERT INTO events(host,id,item,time,received,json) VALUES('a','1','x',1,1,'{}')",
                [],
            )
            .unwrap();
        }
        let c = open(&p).unwrap().conn;
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let n: i64 = c.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
    }

    #[test]
    fn a_newer_file_is_refused_and_left_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch("CREATE TABLE future(x); PRAGMA user_version=99").unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let err = open(&p).err().unwrap().to_string();
        assert!(
            err.contains("server.db schema version 99 is newer") && err.contains("(2)"),
            "{err}"
        );
        assert_eq!(std::fs::read(&p).unwrap(), before, "not one byte changed");
        assert!(!dir.path().join("server.db-wal").exists(), "not switched to WAL");
    }

    /// The file a build before the one migration list left (its dump in
    /// tests/fixtures): version 1 with the notify and host tables made
    /// outside it. It upgrades in place, every row kept.
    #[test]
    fn a_version_1_file_upgrades_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("server.db");
        let dump = include_str!("../../tests/fixtures/server-db-v1.sql");
        let count = |c: &Connection, t: &str| -> i64 {
            c.query_row(&format!("SELECT count(*) FROM {t}"), [], |r| r.get(0)).unwrap()
        };
        let tables = ["events", "reports", "hosts", "notify_outbox", "notify_alerts"];
        let old: Vec<i64> = {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(dump).unwrap();
            tables.iter().map(|t| count(&c, t)).collect()
        };
        assert!(old.iter().all(|n| *n > 0), "the fixture has rows in each: {old:?}");
        let c = open(&p).unwrap().conn;
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v as usize, MIGRATIONS.len());
        let now: Vec<i64> = tables.iter().map(|t| count(&c, t)).collect();
        assert_eq!(now, old);
    }

    #[test]
    fn a_failed_migration_leaves_the_version_before_it() {
        let c = Connection::open_in_memory().unwrap();
        let list = ["CREATE TABLE a(x)", "CREATE TABLE b(x); INSERT INTO nowhere VALUES(1)"];
        let err = migrate(&c, &list).unwrap_err().to_string();
        assert!(err.contains("migration 2"), "{err}");
        let v: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 1);
        let b: i64 = c
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'b'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(b, 0, "migration 2 rolled back whole");
        assert!(c.is_autocommit(), "no transaction left open");
        migrate(&c, &list[..1]).unwrap();
    }

    #[test]
    fn newer_schema_is_refused() {
        let c = open_in_memory().unwrap();
        c.execute_batch("PRAGMA user_version=99").unwrap();
        assert!(migrate(&c, MIGRATIONS).unwrap_err().to_string().contains("newer"));
    }
}
