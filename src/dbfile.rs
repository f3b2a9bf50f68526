//! Opening the vardir's SQLite files (history.db, server.db) so that a bad
//! file never stops the daemon: created 0600 whatever the umask (they hold
//! tokens and the event outbox), checked at open (`PRAGMA quick_check`), and
//! when corrupt moved aside as `NAME.corrupt-YYYYMMDD-HHMMSS` (with its WAL
//! and SHM), replaced by a fresh file into which every row that can still be
//! read is copied. The caller gets a notice saying exactly what was kept and
//! what was lost, to raise as an event.
//!
//! Runs at start-up (before the loop serves anything); never panics on a
//! bad file.

use crate::error::{Error, Result};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// A database opened for use, and what happened to a corrupt predecessor.
pub struct Opened {
    pub conn: Connection,
    /// Set when the file was corrupt: one line for the log, STATE and an event.
    pub notice: Option<String>,
}

/// Rows copied per query while salvaging.
const BATCH: i64 = 500;

/// Opens `path` with `setup` (pragmas, migrations); a corrupt file is
/// moved aside and salvaged. Other failures are errors naming the file.
pub fn open(path: &Path, setup: &dyn Fn(&Connection) -> Result<()>) -> Result<Opened> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
    }
    crate::vardir::prepare_secret_db(path)?;
    let why = match try_open(path, setup) {
        Ok(conn) => return Ok(Opened { conn, notice: None }),
        Err(Bad::Corrupt(why)) => why,
        Err(Bad::Other(e)) => return Err(e),
    };
    let aside = move_aside(path, &aside_name(path, now_wall()))?;
    crate::vardir::prepare_secret_db(path)?;
    let conn = try_open(path, setup).map_err(|b| match b {
        Bad::Corrupt(w) => {
            Error::Runtime(format!("{}: fresh file is unusable: {w}", path.display()))
        }
        Bad::Other(e) => e,
    })?;
    let salvage = salvage(&aside, &conn);
    let name = file_name(path);
    let notice = format!(
        "{name} was corrupt ({why}); moved to {} and started a fresh one; {salvage}",
        aside.display()
    );
    log::error!("{notice}");
    Ok(Opened { conn, notice: Some(notice) })
}

enum Bad {
    Corrupt(String),
    Other(Error),
}

fn is_corrupt(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt)
    )
}

fn try_open(
    path: &Path,
    setup: &dyn Fn(&Connection) -> Result<()>,
) -> std::result::Result<Connection, Bad> {
    let conn = Connection::open(path)
        .map_err(|e| Bad::Other(Error::db(format!("open {}", path.display()), e)))?;
    let check: rusqlite::Result<String> = conn.query_row("PRAGMA quick_check", [], |r| r.get(0));
    match check {
        Ok(s) if s == "ok" => {}
        Ok(s) => return Err(Bad::Corrupt(format!("quick_check: {}", first_line(&s)))),
        Err(e) if is_corrupt(&e) => return Err(Bad::Corrupt(e.to_string())),
        Err(e) => return Err(Bad::Other(Error::db(format!("check {}", path.display()), e))),
    }
    match setup(&conn) {
        Ok(()) => Ok(conn),
        Err(Error::Db { source, .. }) if is_corrupt(&source) => {
            Err(Bad::Corrupt(source.to_string()))
        }
        Err(e) => Err(Bad::Other(Error::Runtime(format!("{}: {e}", path.display())))),
    }
}

/// The first line of a quick_check answer that says something (not the
/// `*** in database main ***` header).
fn first_line(s: &str) -> &str {
    s.lines().find(|l| !l.trim().is_empty() && !l.starts_with("***")).unwrap_or(s)
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn now_wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `history.db` -> `history.db.corrupt-20261201-113000` (UTC).
pub fn aside_name(path: &Path, wall: f64) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".corrupt-{}", crate::clock::file_stamp(wall)));
    PathBuf::from(p)
}

/// Renames the file and its WAL/SHM (so SQLite still pairs them); an
/// existing target gets a numeric suffix instead of being overwritten.
fn move_aside(path: &Path, aside: &Path) -> Result<PathBuf> {
    let mut target = aside.to_path_buf();
    let mut n = 1;
    while target.exists() {
        let mut p = aside.as_os_str().to_owned();
        p.push(format!(".{n}"));
        target = PathBuf::from(p);
        n += 1;
    }
    let with = |p: &Path, ext: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(ext);
        PathBuf::from(s)
    };
    std::fs::rename(path, &target)
        .map_err(|e| Error::io(format!("move corrupt {} aside", path.display()), e))?;
    for ext in ["-wal", "-shm"] {
        let from = with(path, ext);
        if from.exists() {
            let _ = std::fs::rename(&from, with(&target, ext));
        }
    }
    Ok(target)
}

/// Copies every readable row of every table of `old` into `new`, and
/// describes what was kept and lost.
pub fn salvage(old: &Path, new: &Connection) -> String {
    let src = match Connection::open_with_flags(old, OpenFlags::SQLITE_OPEN_READ_ONLY) {
        Ok(c) => c,
        Err(e) => return format!("nothing could be read ({e}): every row is lost"),
    };
    let tables: rusqlite::Result<Vec<(String, String)>> = src
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .and_then(|mut st| st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect());
    let tables = match tables {
        Ok(t) => t,
        Err(e) => return format!("nothing could be read ({e}): every row is lost"),
    };
    let mut kept = Vec::new();
    let mut lost = Vec::new();
    for (name, sql) in tables {
        // The fresh file has the current schema; a table it lacks is made
        // as the old file had it (a part creates its tables later).
        let _ = new.execute_batch(&sql.replacen("CREATE TABLE", "CREATE TABLE IF NOT EXISTS", 1));
        let t = copy_table(&src, new, &name);
        kept.push(format!("{name} {}", t.kept));
        if let Some(l) = t.lost {
            lost.push(format!("{name}: {l}"));
        }
    }
    let mut out =
        format!("kept rows: {}", if kept.is_empty() { "none".into() } else { kept.join(", ") });
    if lost.is_empty() {
        out.push_str("; nothing lost");
    } else {
        let _ = write!(out, "; lost: {}", lost.join("; "));
    }
    out
}

struct Copied {
    kept: u64,
    lost: Option<String>,
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Copies one table; rowid tables skip over unreadable stretches (reported
/// as rowid ranges), others stop at the first unreadable row.
fn copy_table(src: &Connection, dst: &Connection, name: &str) -> Copied {
    let q = quote(name);
    let cols: Vec<String> = match src.prepare(&format!("SELECT * FROM {q} LIMIT 0")) {
        Ok(st) => st.column_names().iter().map(|c| c.to_string()).collect(),
        Err(e) => return Copied { kept: 0, lost: Some(format!("unreadable ({e})")) },
    };
    let list: Vec<String> = cols.iter().map(|c| quote(c)).collect();
    let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
    let ins = format!("INSERT OR IGNORE INTO {q}({}) VALUES ({})", list.join(","), marks.join(","));
    let has_rowid = src.prepare(&format!("SELECT rowid FROM {q} LIMIT 0")).is_ok();
    let mut c = Copied { kept: 0, lost: None };
    let tx = match dst.unchecked_transaction() {
        Ok(t) => t,
        Err(e) => return Copied { kept: 0, lost: Some(format!("cannot write ({e})")) },
    };
    if has_rowid {
        copy_by_rowid(src, &tx, &q, &list, &ins, &mut c);
    } else {
        let sql = format!("SELECT {} FROM {q}", list.join(","));
        if let Err(e) = copy_rows(src, &tx, &sql, &[], &ins, cols.len(), &mut c.kept, None) {
            c.lost = Some(format!("rows after the first {} unreadable ({e})", c.kept));
        }
    }
    if let Err(e) = tx.commit() {
        return Copied { kept: 0, lost: Some(format!("cannot write ({e})")) };
    }
    c
}

fn copy_by_rowid(
    src: &Connection,
    dst: &Connection,
    q: &str,
    list: &[String],
    ins: &str,
    c: &mut Copied,
) {
    let sql = format!(
        "SELECT rowid, {} FROM {q} WHERE rowid > ?1 ORDER BY rowid LIMIT {BATCH}",
        list.join(",")
    );
    let mut last = i64::MIN;
    let mut gaps = Vec::new();
    loop {
        let before = c.kept;
        let mut at = last;
        match copy_rows(
            src,
            dst,
            &sql,
            &[Value::Integer(last)],
            ins,
            list.len(),
            &mut c.kept,
            Some(&mut at),
        ) {
            Ok(()) if c.kept - before < BATCH as u64 => break,
            Ok(()) => last = at,
            Err(_) => {
                last = at;
                // Find the next readable rowid past the bad stretch.
                match next_readable(src, q, last) {
                    Some(next) => {
                        gaps.push(format!("rowids {}-{}", last.saturating_add(1), next - 1));
                        last = next - 1;
                    }
                    None => {
                        gaps.push(format!("rowids after {last}"));
                        break;
                    }
                }
            }
        }
    }
    if !gaps.is_empty() {
        c.lost = Some(format!("{} unreadable", gaps.join(", ")));
    }
}

/// The first rowid past `last` that a lookup can reach, jumping further
/// each time a lookup hits the damage.
fn next_readable(src: &Connection, q: &str, last: i64) -> Option<i64> {
    let sql = format!("SELECT rowid FROM {q} WHERE rowid > ?1 ORDER BY rowid LIMIT 1");
    let mut jump: i64 = 1;
    while jump < i64::MAX / 4 {
        let from = last.saturating_add(jump);
        match src.query_row(&sql, [from], |r| r.get::<_, i64>(0)) {
            Ok(r) => return Some(r),
            Err(rusqlite::Error::QueryReturnedNoRows) => return None,
            Err(_) => jump = jump.saturating_mul(2),
        }
    }
    None
}

/// Runs `sql` on `src` and inserts each row into `dst`; with `rowid`, the
/// first column is the rowid (tracked, not inserted).
#[allow(clippy::too_many_arguments)]
fn copy_rows(
    src: &Connection,
    dst: &Connection,
    sql: &str,
    args: &[Value],
    ins: &str,
    ncols: usize,
    kept: &mut u64,
    mut rowid: Option<&mut i64>,
) -> rusqlite::Result<()> {
    let mut st = src.prepare(sql)?;
    let mut put = dst.prepare_cached(ins)?;
    let mut rows = st.query(rusqlite::params_from_iter(args.iter()))?;
    let skip = usize::from(rowid.is_some());
    while let Some(r) = rows.next()? {
        let mut vals = Vec::with_capacity(ncols);
        for i in 0..ncols {
            vals.push(r.get::<_, Value>(i + skip)?);
        }
        if let Some(id) = rowid.as_deref_mut() {
            *id = r.get(0)?;
        }
        put.execute(rusqlite::params_from_iter(vals.iter()))?;
        *kept += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(c: &Connection) -> Result<()> {
        c.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT)")
            .map_err(|e| Error::db("setup", e))
    }

    #[test]
    fn aside_names_carry_a_utc_stamp() {
        let p = aside_name(Path::new("/v/history.db"), 0.0);
        assert_eq!(p, PathBuf::from("/v/history.db.corrupt-19700101-000000"));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_moved_aside_and_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("history.db");
        std::fs::write(&p, vec![b'x'; 8192]).unwrap();
        let o = open(&p, &setup).unwrap();
        let n = o.notice.expect("a notice");
        assert!(n.starts_with("history.db was corrupt (file is not a database)"), "{n}");
        assert!(n.contains("every row is lost"), "{n}");
        o.conn.execute("INSERT INTO t(v) VALUES ('fresh')", []).unwrap();
        let aside: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("history.db.corrupt-"))
            .collect();
        assert_eq!(aside.len(), 1);
        assert_eq!(std::fs::read(aside[0].path()).unwrap(), vec![b'x'; 8192]);
        drop(o.conn);
        assert!(open(&p, &setup).unwrap().notice.is_none(), "the fresh file is healthy");
    }

    #[test]
    fn readable_rows_are_kept_and_the_damage_is_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("server.db");
        {
            let c = Connection::open(&p).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode=DELETE; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)",
            )
            .unwrap();
            let tx = c.unchecked_transaction().unwrap();
            for i in 1..=3000 {
                tx.execute(
                    "INSERT INTO t(id, v) VALUES (?1, ?2)",
                    rusqlite::params![i, "x".repeat(100)],
                )
                .unwrap();
            }
            tx.commit().unwrap();
        }
        // Overwrite one leaf page in the middle of the table.
        let mut bytes = std::fs::read(&p).unwrap();
        let page = 4096;
        let mid = (bytes.len() / page / 2) * page;
        for b in &mut bytes[mid..mid + page] {
            *b = 0xA5;
        }
        std::fs::write(&p, &bytes).unwrap();
        let o = open(&p, &setup).unwrap();
        let n = o.notice.expect("a notice");
        assert!(n.contains("server.db was corrupt"), "{n}");
        assert!(n.contains("lost: t: rowids "), "{n}");
        let kept: i64 = o.conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert!(kept > 2500 && kept < 3000, "kept {kept}: {n}");
        assert!(n.contains(&format!("kept rows: t {kept}")), "{n}");
    }
}
