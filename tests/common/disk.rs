//! Disks and databases for tests: the sqlite3 CLI on a daemon's files (the
//! independent reader that checks what hbmon stored), a small tmpfs to
//! fill up, and whether the test may mount one (root).

use std::path::{Path, PathBuf};
use std::process::Command;

/// `sqlite3 DB SQL`, its output trimmed; a failing statement fails the
/// test with sqlite3's message. Waits up to 5 s for a lock the daemon holds.
pub fn sqlite(db: &Path, sql: &str) -> String {
    sqlite_cli(db, sql, &[])
}

/// [`sqlite`] read-only: for a file a running daemon owns.
pub fn sqlite_ro(db: &Path, sql: &str) -> String {
    sqlite_cli(db, sql, &["-readonly"])
}

/// [`sqlite_ro`] inside a `wait_for`: none while the statement fails (a
/// file the daemon has not made or filled yet).
pub fn try_sqlite_ro(db: &Path, sql: &str) -> Option<String> {
    sqlite_run(db, sql, &["-readonly"]).ok()
}

fn sqlite_cli(db: &Path, sql: &str, flags: &[&str]) -> String {
    sqlite_run(db, sql, flags).unwrap_or_else(|e| panic!("sqlite3 {sql}: {e}"))
}

fn sqlite_run(db: &Path, sql: &str, flags: &[&str]) -> Result<String, String> {
    let out = Command::new("sqlite3")
        .args(flags)
        .args(["-cmd", ".timeout 5000"])
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 CLI (make test installs it)");
    match out.status.success() {
        true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
        false => Err(String::from_utf8_lossy(&out.stderr).into_owned()),
    }
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A tmpfs mounted for the test, unmounted (lazily: a killed daemon may
/// still be closing its files) on drop. Needs root ([`is_root`]).
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`2m`) on `at`, made if missing.
    pub fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("run mount");
        assert!(st.success(), "mount -t tmpfs on {} failed (as root)", at.display());
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` to the last byte; the file that does it
/// (remove it to give the room back).
pub fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let p = dir.join("filler");
    let mut f = std::fs::File::create(&p).unwrap();
    let block = vec![0u8; 4096];
    while f.write_all(&block).is_ok() {}
    let _ = f.write_all(&[0u8; 1]);
    let _ = f.sync_all();
    p
}
