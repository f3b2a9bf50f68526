//! `$vardir/server.db`: opened once, WAL, migrated by `user_version`. Holds
//! the durable side of the server: events (de-duplicated by the sender's
//! event id), the latest report per host, the host table, and the tables
//! of the notification engine. WAL with synchronous=NORMAL survives a crash
//! of the process (what we promise: nothing acknowledged is lost when hbmon
//! is killed); a power loss may lose the last moments.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;

/// One entry per schema version; never edit a shipped entry, add one.
const MIGRATIONS: &[&str] = &[
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
];

/// Opens the file (created 0600, tightened if older); a corrupt one is
/// moved aside, its readable rows kept, and the notice says what was lost.
pub fn open(path: &Path) -> Result<crate::dbfile::Opened> {
    crate::dbfile::open(path, &setup)
}

pub fn open_in_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory().map_err(|e| Error::db("open in-memory", e))?;
    setup(&conn)?;
    Ok(conn)
}

fn setup(conn: &Connection) -> Result<()> {
    let db = |op: &str, e| Error::db(op.to_string(), e);
    // journal_mode answers a row, so it goes through query_row.
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).map_err(|e| db("set WAL", e))?;
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=5000;")
        .map_err(|e| db("pragmas", e))?;
    migrate(conn, MIGRATIONS)
}

/// Applies the migrations past the database's `user_version`, each in its
/// own transaction with the version bump.
pub fn migrate(conn: &Connection, migrations: &[&str]) -> Result<()> {
    let db = |op: &str, e| Error::db(op.to_string(), e);
    let have: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
        .map_err(|e| db("user_version", e))? as usize;
    if have > migrations.len() {
        return Err(Error::Runtime(format!(
            "server.db schema version {have} is newer than this hbmon knows ({})",
            migrations.len()
        )));
    }
    for (i, sql) in migrations.iter().enumerate().skip(have) {
        let batch = format!("BEGIN; {sql}; PRAGMA user_version={}; COMMIT;", i + 1);
        conn.execute_batch(&batch).map_err(|e| db(&format!("migration {}", i + 1), e))?;
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

/// Creates a part's own tables (`CREATE TABLE IF NOT EXISTS ...`): the host
/// table and the notification engine keep their schema next to their code.
pub fn ensure(conn: &Connection, what: &str, schema: &str) -> Result<()> {
    conn.execute_batch(schema).map_err(|e| Error::db(format!("create {what} tables"), e))
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
    fn newer_schema_is_refused() {
        let c = open_in_memory().unwrap();
        c.execute_batch("PRAGMA user_version=99").unwrap();
        assert!(migrate(&c, MIGRATIONS).unwrap_err().to_string().contains("newer"));
    }
}
