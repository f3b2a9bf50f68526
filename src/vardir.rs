//! The vardir as one daemon's property: an exclusive `flock` on
//! `$vardir/vardir.lock` (two daemons with different rundirs would otherwise
//! both write history.db and server.db), finding the daemon that holds it
//! (for `hbmon stop` when the pid file is gone), and the file modes of the
//! files in it that hold secrets (server.db and the work-files carry
//! webhook tokens).
//!
//! The lock file is never unlinked: a daemon that stops just releases the
//! lock, so no starter can ever lock an inode nobody else sees. Its content
//! (the holder's pid) is a hint; who holds the lock is read from the kernel
//! (`/proc/locks`).

use crate::error::{Error, Result};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The lock file's name inside the vardir.
pub const LOCK_NAME: &str = "vardir.lock";

/// Mode of every file in the vardir that may hold a secret.
pub const SECRET_MODE: u32 = 0o600;

/// Held for the daemon's life; dropping it releases the lock.
pub struct VardirLock {
    _lock: Flock<File>,
}

pub fn lock_path(vardir: &Path) -> PathBuf {
    vardir.join(LOCK_NAME)
}

/// Takes the vardir's lock, or says which daemon has it.
pub fn lock(vardir: &Path) -> Result<VardirLock> {
    std::fs::create_dir_all(vardir)
        .map_err(|e| Error::io(format!("mkdir {}", vardir.display()), e))?;
    let path = lock_path(vardir);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(&path)
        .map_err(|e| Error::io(format!("open vardir lock {}", path.display()), e))?;
    let mut held = match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, Errno::EWOULDBLOCK)) => {
            let pid = holder(vardir).map_or_else(|| "unknown".to_string(), |p| p.to_string());
            return Err(Error::Usage(format!(
                "another hbmon (pid {pid}) is using the vardir {} (lock {}): refusing to start \
                 a second daemon on the same history.db and server.db; give this one its own vardir",
                vardir.display(),
                path.display()
            )));
        }
        Err((_, e)) => return Err(Error::io(format!("lock {}", path.display()), e.into())),
    };
    // The pid is a hint for humans and for systems without /proc/locks.
    let _ = held.set_len(0);
    let _ = held.write_all(format!("{}\n", std::process::id()).as_bytes());
    Ok(VardirLock { _lock: held })
}

/// The pid of the process holding the vardir's lock, if one does.
pub fn holder(vardir: &Path) -> Option<i32> {
    let path = lock_path(vardir);
    let meta = std::fs::metadata(&path).ok()?;
    if let Ok(locks) = std::fs::read_to_string("/proc/locks") {
        return flock_holder(&locks, meta.dev(), meta.ino());
    }
    // No /proc: the file's pid, if a shared lock cannot be had right now.
    let f = File::open(&path).ok()?;
    match Flock::lock(f, FlockArg::LockSharedNonblock) {
        Ok(_) => None,
        Err(_) => std::fs::read_to_string(&path).ok()?.trim().parse().ok().filter(|p| *p > 0),
    }
}

/// The pid of a FLOCK line of `/proc/locks` on the file (dev, inode).
/// Lines look like `1: FLOCK  ADVISORY  WRITE 1234 00:2e:5678 0 EOF`; the
/// device is `major:minor` in hex. Blocked waiters (`->` lines) hold nothing.
pub fn flock_holder(locks: &str, dev: u64, ino: u64) -> Option<i32> {
    let (major, minor) = (libc::major(dev) as u64, libc::minor(dev) as u64);
    locks.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.get(1) != Some(&"FLOCK") {
            return None;
        }
        let mut id = f.get(5)?.split(':');
        let ma = u64::from_str_radix(id.next()?, 16).ok()?;
        let mi = u64::from_str_radix(id.next()?, 16).ok()?;
        let i = id.next()?.parse::<u64>().ok()?;
        (ma == major && mi == minor && i == ino).then(|| f.get(4)?.parse().ok()).flatten()
    })
}

/// Problems with the vardir's files found outside a part (the cached work
/// is read before the client exists); the client raises them as its
/// `store` item.
static NOTICES: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

pub fn notice(msg: String) {
    if let Ok(mut n) = NOTICES.lock() {
        n.push(msg);
    }
}

pub fn take_notices() -> Vec<String> {
    NOTICES.lock().map(|mut n| std::mem::take(&mut *n)).unwrap_or_default()
}

/// Brings an existing secret-holding file (and its WAL and SHM) to
/// [`SECRET_MODE`]; missing files are fine. Errors name the file.
pub fn tighten(path: &Path) -> Result<()> {
    let mut all = vec![path.to_path_buf()];
    for ext in ["-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(ext);
        all.push(PathBuf::from(p));
    }
    for p in all {
        match std::fs::metadata(&p) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 && m.is_file() => {
                std::fs::set_permissions(&p, std::fs::Permissions::from_mode(SECRET_MODE))
                    .map_err(|e| Error::io(format!("chmod 600 {}", p.display()), e))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("stat {}", p.display()), e)),
        }
    }
    Ok(())
}

/// Creates `path` empty with [`SECRET_MODE`] if it does not exist, so
/// SQLite (which copies the main file's mode to its WAL and SHM) never
/// makes a world-readable database whatever the umask; then tightens.
pub fn prepare_secret_db(path: &Path) -> Result<()> {
    match OpenOptions::new().write(true).create_new(true).mode(SECRET_MODE).open(path) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(Error::io(format!("create {}", path.display()), e)),
    }
    tighten(path)
}

/// Writes a file that may hold secrets (a work-file): created with
/// [`SECRET_MODE`], and an existing one brought to it.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f =
        OpenOptions::new().write(true).create(true).truncate(true).mode(SECRET_MODE).open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(SECRET_MODE))?;
    f.write_all(bytes)
}

/// Every work-file under `dir` (the server's `works/`) to [`SECRET_MODE`],
/// and the directory itself to 0700.
pub fn tighten_dir(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_file()) {
            tighten(&e.path())?;
        }
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io(format!("chmod 700 {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_naming_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let l = lock(d.path()).unwrap();
        let Err(e) = lock(d.path()) else { panic!("second lock succeeded") };
        let msg = e.to_string();
        assert!(msg.contains(&format!("pid {}", std::process::id())), "{msg}");
        assert!(msg.contains("vardir.lock") && msg.contains("refusing"), "{msg}");
        assert_eq!(holder(d.path()), Some(std::process::id() as i32));
        drop(l);
        assert_eq!(holder(d.path()), None);
        let _again = lock(d.path()).unwrap();
    }

    #[test]
    fn proc_locks_lines_are_read() {
        let dev = libc::makedev(0, 0x2e);
        let locks = "1: POSIX  ADVISORY  WRITE 99 00:2e:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 1234 00:2e:77 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 555 00:2e:77 0 EOF\n";
        assert_eq!(flock_holder(locks, dev, 77), Some(1234));
        assert_eq!(flock_holder(locks, dev, 78), None);
        assert_eq!(flock_holder(locks, libc::makedev(8, 1), 77), None);
        assert_eq!(flock_holder("garbage\n3: FLOCK\n", dev, 77), None);
    }

    #[test]
    fn secret_files_are_created_and_tightened_to_0600() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("server.db");
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        prepare_secret_db(&db).unwrap();
        nix::sys::stat::umask(old);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&db), 0o600);
        let wal = d.path().join("server.db-wal");
        std::fs::write(&wal, "x").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o644)).unwrap();
        tighten(&db).unwrap();
        assert_eq!(mode(&wal), 0o600);
        let works = d.path().join("works");
        std::fs::create_dir(&works).unwrap();
        std::fs::write(works.join("a.json"), "{}").unwrap();
        std::fs::set_permissions(works.join("a.json"), std::fs::Permissions::from_mode(0o644))
            .unwrap();
        tighten_dir(&works).unwrap();
        assert_eq!(mode(&works.join("a.json")), 0o600);
        assert_eq!(mode(&works), 0o700);
    }
}
