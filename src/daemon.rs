//! TEMP stub until the daemon helper lands.
use crate::error::{Error, Result};
use std::path::PathBuf;
pub struct RunFiles {
    pub pid: PathBuf,
    pub lock: PathBuf,
    pub stop: PathBuf,
}
pub struct ReadyPipe;
impl ReadyPipe {
    pub fn ready(self) {}
    pub fn fail(self, _m: &str) {}
}
pub fn daemonize() -> Result<ReadyPipe> {
    Err(Error::Runtime("stub".into()))
}
pub struct LockGuard;
pub fn take_lock(files: &RunFiles) -> Result<LockGuard> {
    std::fs::create_dir_all(files.pid.parent().unwrap_or(std::path::Path::new("/")))
        .map_err(|e| Error::io("mkdir", e))?;
    std::fs::write(&files.pid, format!("{}\n", std::process::id()))
        .map_err(|e| Error::io("pid", e))?;
    std::fs::write(&files.stop, "secret\n").map_err(|e| Error::io("stp", e))?;
    Ok(LockGuard)
}
pub fn read_pid(files: &RunFiles) -> Option<i32> {
    std::fs::read_to_string(&files.pid).ok()?.trim().parse().ok()
}
pub fn read_secret(files: &RunFiles) -> Result<String> {
    std::fs::read_to_string(&files.stop)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io("read secret", e))
}
pub fn process_alive(pid: i32) -> bool {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
}
pub fn wait_gone(pid: i32, timeout: std::time::Duration) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < timeout {
        if !process_alive(pid) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}
pub fn reexec() -> Error {
    Error::Runtime("stub".into())
}
