//! The client's side of UPGRADE, run by a helper thread: fetch the offered
//! binary from the server (BINARY: length and digest, bounded in size and
//! time) into `$vardir/upgrade/`, check size, SHA-256 and HMAC, run
//! `hbmon.new --version` and `hbmon.new -c <conf> test`, then swap: the
//! running binary is kept as `hbmon.old` next to it and the new one renamed
//! over it (same directory, so the rename is atomic). A watchdog (the old
//! binary, `upgrade-watch`) is started before the re-exec; see `watch.rs`.
//! Every step before the rename only touches staging files, so a SIGKILL
//! there leaves the installed binary as it was.

use super::watch::{side_paths, staging, write_state, State};
use super::{connect, hex, same, signature, OfferLine, INSTALL_TIMEOUT};
use sha2::{Digest, Sha256};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Install {
    pub offer: OfferLine,
    /// The server's command address (where BINARY is asked).
    pub server: SocketAddr,
    pub bind: Option<IpAddr>,
    pub key: Option<String>,
    pub vardir: PathBuf,
    /// The running binary, absolute (the re-exec plan's).
    pub exe: PathBuf,
    pub conf: Option<PathBuf>,
    /// This host's command address, for the watchdog's PING.
    pub cmd: SocketAddr,
    /// `ival_upgrade_check`: the watchdog's deadline for that PING.
    pub check: Duration,
}

/// Runs the whole install; Ok is the answer body (`swapping A -> B`): the
/// caller re-execs after answering.
pub fn install(j: &Install) -> Result<String, String> {
    let dir = staging(&j.vardir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let part = dir.join("hbmon.part");
    let new = dir.join("hbmon.new");
    let deadline = Instant::now() + INSTALL_TIMEOUT;
    let _ = std::fs::remove_file(&new);
    let fetched = fetch(j, &part, deadline);
    if let Err(e) = fetched {
        let _ = std::fs::remove_file(&part);
        return Err(e);
    }
    std::fs::rename(&part, &new).map_err(|e| format!("rename {}: {e}", part.display()))?;
    if let Err(e) = self_test(j, &new) {
        let _ = std::fs::remove_file(&new);
        return Err(e);
    }
    swap(j, &new)?;
    Ok(format!("swapping {} -> {}", crate::VERSION, j.offer.version))
}

/// BINARY from the server into `part`, checked against the offer.
fn fetch(j: &Install, part: &Path, deadline: Instant) -> Result<(), String> {
    let o = &j.offer;
    if let Some(k) = &j.key {
        // With a fleet key the offer must be signed by it.
        if !same(&o.hmac, &signature(k, &o.version, o.size, &o.sha)) {
            return Err("bad HMAC (not signed with this fleet's key)".into());
        }
    }
    let mut s = connect(j.server, j.bind, Duration::from_secs(30))?;
    s.write_all(b"BINARY\n").map_err(|e| format!("send BINARY: {e}"))?;
    let mut r = BufReader::new(s);
    let head = read_line(&mut r, deadline)?;
    if head != "COMMAND BINARY" {
        return Err(format!("server: {head}"));
    }
    let head = read_line(&mut r, deadline)?;
    let mut w = head.split_whitespace();
    let (Some("BINARY"), Some(size), Some(sha)) = (w.next(), w.next(), w.next()) else {
        return Err(format!("bad BINARY header {head:?}"));
    };
    if size.parse::<u64>().ok() != Some(o.size) || sha != o.sha {
        return Err(format!(
            "the server serves {size} {sha}, not the offered {} {}",
            o.size, o.sha
        ));
    }
    let mut f =
        std::fs::File::create(part).map_err(|e| format!("create {}: {e}", part.display()))?;
    let mut h = Sha256::new();
    let mut left = o.size;
    let mut buf = vec![0u8; 64 * 1024];
    while left > 0 {
        if Instant::now() > deadline {
            return Err("download timed out".into());
        }
        let want = buf.len().min(left as usize);
        let n = match r.read(&mut buf[..want]) {
            Ok(0) => return Err(format!("download cut short ({left} bytes missing)")),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("download: {e}")),
        };
        h.update(&buf[..n]);
        f.write_all(&buf[..n]).map_err(|e| format!("write {}: {e}", part.display()))?;
        left -= n as u64;
    }
    let got = hex(&h.finalize());
    if got != o.sha {
        return Err(format!("bad digest: got sha256 {got}, offered {}", o.sha));
    }
    let _ = read_line(&mut r, deadline); // the newline after the bytes
    if read_line(&mut r, deadline)? != "COMMAND DONE" {
        return Err("no COMMAND DONE after the bytes".into());
    }
    f.set_permissions(std::fs::Permissions::from_mode(0o755))
        .and_then(|_| f.sync_all())
        .map_err(|e| format!("sync {}: {e}", part.display()))
}

/// One line (at most 512 bytes) without its newline.
fn read_line(r: &mut impl BufRead, deadline: Instant) -> Result<String, String> {
    let mut line = Vec::new();
    let mut lim = r.by_ref().take(512);
    loop {
        if Instant::now() > deadline {
            return Err("timeout".into());
        }
        match lim.read_until(b'\n', &mut line) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    if line.last() != Some(&b'\n') {
        return Err("connection closed or line too long".into());
    }
    line.pop();
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// `new --version` must say the offered version; `new -c conf test` must pass.
fn self_test(j: &Install, new: &Path) -> Result<(), String> {
    let v = super::binary_version(new)?;
    if v != j.offer.version {
        return Err(format!("hbmon.new --version says {v}, offered {}", j.offer.version));
    }
    let mut argv = vec![new.display().to_string()];
    if let Some(c) = &j.conf {
        argv.extend(["-c".to_string(), c.display().to_string()]);
    }
    argv.push("test".into());
    let out = crate::probes::exec::run_command(&argv, Duration::from_secs(60), 4096)
        .map_err(|e| format!("hbmon.new test: {e}"))?;
    if out.code != Some(0) {
        let why = crate::probes::exec::first_line(out.stderr.trim()).to_string();
        return Err(format!("hbmon.new test failed (exit {:?}): {why}", out.code));
    }
    Ok(())
}

fn swap(j: &Install, staged: &Path) -> Result<(), String> {
    let (tmp, old) = side_paths(&j.exe);
    let e = |op: &str, p: &Path, err: std::io::Error| format!("{op} {}: {err}", p.display());
    let st = State::Swap {
        from: crate::VERSION.into(),
        to: j.offer.version.clone(),
        sha: j.offer.sha.clone(),
    };
    write_state(&j.vardir, &st)?;
    // Into the binary's own directory first, so the final rename is atomic.
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(staged, &tmp).map_err(|x| e("copy to", &tmp, x))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|x| e("sync", &tmp, x))?;
    let old_tmp = old.with_extension("old.tmp");
    let _ = std::fs::remove_file(&old_tmp);
    // hbmon.old appears whole or not at all (link, else copy, then rename).
    std::fs::hard_link(&j.exe, &old_tmp)
        .or_else(|_| std::fs::copy(&j.exe, &old_tmp).map(|_| ()))
        .map_err(|x| e("keep", &old_tmp, x))?;
    std::fs::rename(&old_tmp, &old).map_err(|x| e("rename to", &old, x))?;
    std::fs::rename(&tmp, &j.exe).map_err(|x| e("rename to", &j.exe, x))?;
    if let Some(d) = j.exe.parent() {
        let _ = std::fs::File::open(d).and_then(|f| f.sync_all());
    }
    let _ = std::fs::remove_file(staged);
    let pid = match spawn_watchdog(j, &old) {
        Ok(p) => p,
        Err(why) => {
            // No watchdog, no trial: the old binary goes back at once.
            let _ = std::fs::rename(&old, &j.exe);
            return Err(why);
        }
    };
    let st =
        State::Trial { from: crate::VERSION.into(), to: j.offer.version.clone(), watcher: pid };
    write_state(&j.vardir, &st)
}

/// Starts the watchdog from the old binary; its pid.
pub fn spawn_watchdog(j: &Install, old: &Path) -> Result<u32, String> {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(old);
    if let Some(conf) = &j.conf {
        c.arg("-c").arg(conf);
    }
    c.arg("upgrade-watch")
        .arg(std::process::id().to_string())
        .arg(j.cmd.to_string())
        .arg(&j.offer.version)
        .arg(&j.exe)
        .arg(&j.vardir)
        .arg(format!("{}", j.check.as_secs_f64()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: only async-signal-safe calls between fork and exec: a new
    // session (so it outlives our process group) and an empty signal mask
    // (the daemon's threads block the loop's signals).
    unsafe {
        c.pre_exec(|| {
            libc::setsid();
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
            Ok(())
        });
    }
    let child = c.spawn().map_err(|e| format!("start the watchdog {}: {e}", old.display()))?;
    let pid = child.id();
    // Reaped by whoever: it outlives us on purpose.
    std::mem::forget(child);
    Ok(pid)
}
