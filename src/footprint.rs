//! The daemon's resident memory (issue 18): what a plain client keeps in
//! RAM beyond what it uses.
//!
//! - Start-up (argument, conf and work parsing, migrations) touches much of
//!   the binary and its libraries once. Once the daemon has settled,
//!   [`trim_code`] drops every read-only private file mapping that holds
//!   no private copy (our text and rodata, libc's, libm's, the loader's,
//!   libgcc's) from this process's page tables, so only what the steady
//!   state runs comes back. It comes back in blocks, whatever `madvise`
//!   says: the kernel maps the pages around each fault (fault-around, 64
//!   KiB) and, on Linux 6.18, the whole page-cache folio holding it (ext4
//!   caches a binary in large folios: runs of 16 to 166 pages were seen),
//!   so what stays is every block holding some code the steady state
//!   runs. Hence the release link's layout (build.rs, bench/client-hot.ld):
//!   the plain client's steady-state functions together, in `.text.hot`
//!   (measured: 2.0-2.2 MiB of text resident instead of 3.3 MiB).
//! - glibc keeps freed heap memory (start-up's, each round's) resident;
//!   [`release_heap`] gives the free pages back (`malloc_trim`), called
//!   after the trim and by the client's store thread after each write.
//! - SQLite's page cache and lookaside: [`lean_history`] keeps the
//!   history connection's small; its store thread releases the cache
//!   after each drain.
//! - One malloc arena per thread that allocates: [`limit_arenas`] allows
//!   one on a plain client (its helper threads allocate little and
//!   briefly), two otherwise (`main.rs` sets two before any thread).
//!
//! Dropping a page is exact only for pages never written: a mapping with
//! anything `Anonymous` (relro after relocation, data) is left alone, as
//! are writable and shared ones. A dropped page the steady state needs
//! comes back from the page cache (from disk only if the kernel evicted
//! it, as it may after any memory pressure).

/// Seconds after the start at which the loop trims (start-up is over: the
/// first round and heartbeats have run).
pub const TRIM_AFTER: f64 = 30.0;

/// Drops the read-only file pages start-up touched from the working set
/// and gives free heap back; returns the bytes of mapping advised (0
/// where unsupported).
pub fn trim_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else { return 0 };
        let mut done = 0;
        for (start, end) in clean_ranges(&smaps) {
            let len = end - start;
            // SAFETY: the range is a whole read-only private file mapping
            // of this process with no anonymous (copied-on-write) page,
            // read from /proc/self/smaps: nothing in it was ever written,
            // so MADV_DONTNEED only drops page-table entries (the next
            // access faults the same file bytes back in). RANDOM only
            // turns read-ahead off.
            unsafe {
                let p = start as *mut libc::c_void;
                if libc::madvise(p, len, libc::MADV_RANDOM) == 0
                    && libc::madvise(p, len, libc::MADV_DONTNEED) == 0
                {
                    done += len;
                }
            }
        }
        release_heap();
        done
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// Gives the heap's free pages back to the kernel (glibc keeps them).
pub fn release_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory; it takes the arenas' locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The most malloc arenas: one for a plain client, two when a server or
/// pagemaker runs (their store and HTTP threads allocate concurrently).
/// Takes effect for threads that allocate first after it.
pub fn limit_arenas(plain_client: bool) {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, if plain_client { 1 } else { 2 });
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = plain_client;
}

/// The history's page cache in KiB (a negative `cache_size`): a client
/// writes one round a minute, and a HIST reads through the file system's
/// cache about as fast.
const CACHE_KIB: u32 = 256;

/// The client's history connection (`store/thread.rs`) kept small: a small page cache, no
/// memory-mapped I/O, no lookaside slots (each connection's lookaside is
/// about 120 KiB allocated and touched at open; SQLite's general allocator
/// serves the same small objects).
pub fn lean_history(conn: &rusqlite::Connection) {
    let pragmas = format!("PRAGMA cache_size = -{CACHE_KIB}; PRAGMA mmap_size = 0");
    if let Err(e) = conn.execute_batch(&pragmas) {
        log::warn!("history: {pragmas}: {e}");
    }
    // SAFETY: the handle is live (we hold the connection) and used on this
    // thread only for the call; SQLITE_DBCONFIG_LOOKASIDE takes a buffer
    // pointer (null: none), a slot size and a count; with no statement
    // running no lookaside slot is in use, else it answers SQLITE_BUSY.
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            conn.handle(),
            rusqlite::ffi::SQLITE_DBCONFIG_LOOKASIDE,
            std::ptr::null_mut::<std::ffi::c_void>(),
            0 as std::ffi::c_int,
            0 as std::ffi::c_int,
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        log::debug!("history: lookaside not turned off (SQLite code {rc})");
    }
}

/// The read-only private file mappings of a /proc/PID/smaps text that hold
/// no anonymous page: safe to drop and fault back from their files.
fn clean_ranges(smaps: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // The current mapping, if it qualifies so far, until its Anonymous line.
    let mut cur: Option<(usize, usize)> = None;
    for l in smaps.lines() {
        let mut f = l.split_whitespace();
        let Some(first) = f.next() else { continue };
        if let Some(v) = l.strip_prefix("Anonymous:") {
            let anon = v.split_whitespace().next().and_then(|n| n.parse::<u64>().ok());
            if let (Some(r), Some(0)) = (cur.take(), anon) {
                out.push(r);
            }
            continue;
        }
        let Some((a, b)) = first.split_once('-') else { continue };
        let (Ok(a), Ok(b)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16)) else {
            continue;
        };
        // A mapping header: range perms offset dev inode path.
        let perms = f.next().unwrap_or("");
        let path = f.nth(3).unwrap_or("");
        let p = perms.as_bytes();
        let read_only_private =
            p.len() == 4 && p[0] == b'r' && p[1] == b'-' && p[3] == b'p' && perms != "---p";
        cur = (read_only_private && path.starts_with('/') && b > a).then_some((a, b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_file_mappings_are_picked() {
        let smaps = "\
5600000000-5600100000 r--p 00000000 08:01 42 /usr/sbin/hbmon
Rss:                 100 kB
Anonymous:             0 kB
5600100000-5600500000 r-xp 00100000 08:01 42 /usr/sbin/hbmon
Anonymous:             0 kB
5600500000-5600600000 r--p 00500000 08:01 42 /usr/sbin/hbmon
Anonymous:           100 kB
5600600000-5600610000 rw-p 00600000 08:01 42 /usr/sbin/hbmon
Anonymous:             4 kB
7f00000000-7f00100000 r-xp 00000000 08:01 7 /usr/lib/libc.so.6
Anonymous:             0 kB
7f00100000-7f00110000 rw-s 00000000 08:01 9 /var/lib/hbmon/history.db-shm
Anonymous:             0 kB
7f00200000-7f00300000 r-xp 00000000 00:00 0
Anonymous:             0 kB
7f00300000-7f00400000 ---p 00000000 00:00 0 /usr/lib/libm.so.6
Anonymous:             0 kB
7fff00000000-7fff00002000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        assert_eq!(
            clean_ranges(smaps),
            vec![
                (0x5600000000, 0x5600100000),
                (0x5600100000, 0x5600500000),
                (0x7f00000000, 0x7f00100000)
            ]
        );
        // A header with no Anonymous line after it is not taken on trust.
        assert!(clean_ranges("5600100000-5600500000 r-xp 0 08:01 42 /x\n").is_empty());
        assert!(clean_ranges("garbage\n\nx-y r-xp\nAnonymous: 0 kB").is_empty());
    }

    /// The history connection's settings take: its page cache is 256 KiB,
    /// no memory map, and its lookaside is off (a statement then runs
    /// with no lookaside slot in use).
    #[test]
    fn the_history_connection_is_kept_small() {
        let dir = tempfile::tempdir().unwrap();
        let c = rusqlite::Connection::open(dir.path().join("h.db")).unwrap();
        c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)").unwrap();
        lean_history(&c);
        let get = |p: &str| c.query_row(&format!("PRAGMA {p}"), [], |r| r.get::<_, i64>(0));
        assert_eq!(get("cache_size").unwrap(), -(CACHE_KIB as i64));
        assert_eq!(get("mmap_size").unwrap(), 0);
        let n: i64 = c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 1);
        let (mut cur, mut hi) = (0, 0);
        // SAFETY: a live handle used on this thread; out-pointers to locals.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                c.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_LOOKASIDE_USED,
                &mut cur,
                &mut hi,
                0,
            )
        };
        assert_eq!((rc, cur, hi), (rusqlite::ffi::SQLITE_OK, 0, 0), "lookaside in use");
    }

    /// The real thing on this process: its text, rodata and libraries are
    /// trimmed and the code keeps running (it faults back in).
    #[test]
    fn trimming_our_own_pages_keeps_us_running() {
        assert!(trim_code() > 0);
        let v: Vec<u64> = (0..1000).map(|i| i * i).collect();
        assert_eq!(v.iter().sum::<u64>(), 332_833_500);
        assert!(trim_code() > 0, "again, after running trimmed code");
    }
}
