//! SIGUSR1: the daemon replaces itself by a fresh image of its binary. What
//! to exec is fixed at start-up, while the paths still mean what the user
//! meant: the binary by its absolute path (`/proc/self/exe`, so a binary
//! swapped in by an upgrade is the one that runs) and the conf by its
//! absolute path (a daemon has done `chdir /`, so `-c c1/conf` would name
//! nothing any more). Before stopping anything the plan is checked; an exec
//! that fails anyway is reported to the caller, which runs on.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Set across a SIGUSR1 re-exec of a daemon (not of `start -i`): the new
/// image must not fork again, so its pid stays what the init system knows.
pub const REEXEC_ENV: &str = "HBMON_REEXEC";

#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub exe: PathBuf,
    pub argv: Vec<OsString>,
}

impl Plan {
    /// The plan for this process: resolved now, at start-up.
    pub fn at_start(conf: Option<&Path>) -> Result<Plan, String> {
        let exe = std::fs::read_link("/proc/self/exe")
            .or_else(|_| std::env::current_exe())
            .map_err(|e| format!("cannot resolve this binary's path: {e}"))?;
        let exe = std::path::absolute(&exe).unwrap_or(exe);
        let conf = conf.map(|c| std::path::absolute(c).unwrap_or_else(|_| c.to_path_buf()));
        let args: Vec<OsString> = std::env::args_os().collect();
        Ok(Plan { argv: argv(&exe, &args, conf.as_deref()), exe })
    }

    /// Would an exec find what it needs? (Checked before the daemon stops.)
    pub fn check(&self) -> Result<(), String> {
        use nix::unistd::{access, AccessFlags};
        access(&self.exe, AccessFlags::X_OK)
            .map_err(|e| format!("binary {}: {e}", self.exe.display()))?;
        if let Some(c) = conf_arg(&self.argv) {
            access(c, AccessFlags::R_OK).map_err(|e| format!("conf {}: {e}", c.display()))?;
        }
        Ok(())
    }

    /// Execs the plan; returns only on failure, with the reason.
    pub fn exec(&self) -> String {
        let cs = |a: &std::ffi::OsStr| CString::new(a.as_bytes());
        let exe = match cs(self.exe.as_os_str()) {
            Ok(e) => e,
            Err(e) => return format!("binary path with a NUL byte: {e}"),
        };
        let argv: Result<Vec<CString>, _> = self.argv.iter().map(|a| cs(a)).collect();
        match argv {
            Ok(argv) => match nix::unistd::execv(&exe, &argv) {
                Err(e) => format!("exec {}: {e}", self.exe.display()),
                Ok(never) => match never {},
            },
            Err(e) => format!("argument with a NUL byte: {e}"),
        }
    }
}

/// The conf path given with `-c` right after the binary (as `argv` puts it).
fn conf_arg(argv: &[OsString]) -> Option<&Path> {
    (argv.get(1).map(|a| a.as_bytes()) == Some(b"-c")).then(|| argv.get(2).map(Path::new))?
}

/// Short flags that take no value and may precede `c` in a cluster (`-vc F`).
const BOOL_SHORTS: &[u8] = b"sqvdTifn";

/// The argument vector of the new image: `exe`, then `-c CONF` (absolute)
/// when there is a conf, then the original arguments without their conf
/// options (`-c F`, `-cF`, `-vc F`, `--conf F`, `--conf=F`).
pub fn argv(exe: &Path, args: &[OsString], conf: Option<&Path>) -> Vec<OsString> {
    let mut out = vec![exe.as_os_str().to_owned()];
    if let Some(c) = conf {
        out.push("-c".into());
        out.push(c.as_os_str().to_owned());
    }
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        if b == b"--" {
            out.push(a.clone());
            out.extend(it.cloned());
            break;
        }
        if b == b"--conf" {
            it.next();
            continue;
        }
        if b.starts_with(b"--conf=") {
            continue;
        }
        if b.len() > 1 && b[0] == b'-' && b[1] != b'-' {
            let cluster = &b[1..];
            if let Some(k) = cluster.iter().position(|&ch| !BOOL_SHORTS.contains(&ch)) {
                if cluster[k] == b'c' {
                    if k > 0 {
                        let mut flags = b"-".to_vec();
                        flags.extend_from_slice(&cluster[..k]);
                        out.push(std::ffi::OsStr::from_bytes(&flags).to_owned());
                    }
                    if k + 1 == cluster.len() {
                        it.next(); // the value is the next argument
                    }
                    continue;
                }
            }
        }
        out.push(a.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_conf_becomes_absolute_in_every_spelling() {
        let exe = Path::new("/usr/bin/hbmon");
        let conf = Some(Path::new("/srv/c1/conf"));
        let want = v(&["/usr/bin/hbmon", "-c", "/srv/c1/conf", "start"]);
        for args in [
            v(&["hbmon", "-c", "c1/conf", "start"]),
            v(&["./hbmon", "-cc1/conf", "start"]),
            v(&["hbmon", "--conf", "c1/conf", "start"]),
            v(&["hbmon", "--conf=c1/conf", "start"]),
            v(&["hbmon", "start", "-c", "c1/conf"]),
            v(&["hbmon", "start"]),
        ] {
            assert_eq!(argv(exe, &args, conf), want, "{args:?}");
        }
        assert_eq!(
            argv(exe, &v(&["hbmon", "-vc", "c1/conf", "start", "-i"]), conf),
            v(&["/usr/bin/hbmon", "-c", "/srv/c1/conf", "-v", "start", "-i"])
        );
        assert_eq!(
            argv(exe, &v(&["hbmon", "-d", "start"]), None),
            v(&["/usr/bin/hbmon", "-d", "start"])
        );
        assert_eq!(conf_arg(&argv(exe, &v(&["hbmon", "start"]), conf)), conf);
    }

    #[test]
    fn a_missing_binary_fails_the_check() {
        let p = Plan { exe: "/nonexistent/hbmon".into(), argv: v(&["/nonexistent/hbmon"]) };
        assert!(p.check().unwrap_err().contains("/nonexistent/hbmon"));
        assert!(p.exec().contains("exec /nonexistent/hbmon"));
    }
}
