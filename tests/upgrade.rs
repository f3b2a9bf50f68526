//! Issue 17, UPGRADE on real processes: the server offers `$bindir/hbmon`,
//! clients fetch it over the command port, check it, swap it in and re-exec.
//!
//! Each client runs from its own copy of the test binary (`<host>/bin/hbmon`),
//! since that file is what an upgrade replaces; the copies are made from one
//! `strip --strip-debug`ped copy (a quarter of the size: a test moves the
//! binary around a dozen times). The "new" binary is the same
//! program with its embedded version literal `hbmon-0.1.0` rewritten to
//! `hbmon-0.1.9` (same length): a really different file (other bytes, other
//! digest) that reports the other version by its own code, in `--version`
//! and PING, with no run-time switch anyone could trip over. Broken binaries
//! are shell scripts (an executable the kernel runs like any other) that
//! pass or fail `--version`, `test` and `start` as each case needs.

mod common;
use common::*;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const OLD: &str = "hbmon-0.1.0";
const NEW: &str = "hbmon-0.1.9";

fn chmod_x(p: &Path) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

/// The fleet's base binary: the test binary without its debug info.
fn base(f: &Fleet) -> PathBuf {
    f.dir.path().join("hbmon.base")
}

/// The base binary with its version literal rewritten.
fn patched(f: &Fleet, version: &str) {
    let to = &offer_path(f);
    assert_eq!(version.len(), OLD.len());
    let mut b = std::fs::read(base(f)).expect("read binary");
    let (from, with) = (OLD.as_bytes(), version.as_bytes());
    let mut n = 0;
    let mut i = 0;
    while i + from.len() <= b.len() {
        if &b[i..i + from.len()] == from {
            b[i..i + from.len()].copy_from_slice(with);
            n += 1;
            i += from.len();
        } else {
            i += 1;
        }
    }
    assert!(n > 0, "no version literal in the binary");
    std::fs::create_dir_all(to.parent().expect("dir")).expect("mkdir");
    std::fs::write(to, b).expect("write payload");
    chmod_x(to);
    let out = Command::new(to).arg("--version").output().expect("run payload");
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.contains(&version["hbmon-".len()..]), "payload --version says {v}");
}

/// A script payload: `--version` says `version`; `test` runs the real
/// binary's test, then exits `test_rc`; `start` exits 1 (a crash at start).
fn script(to: &Path, version: &str, test_rc: u8) {
    script_starting(to, version, test_rc, "echo 'this binary crashes at start' >&2; exit 1");
}

/// As `script`, with `start` running the shell text `start`.
fn script_starting(to: &Path, version: &str, test_rc: u8, start: &str) {
    let text = format!(
        "#!/bin/sh\nfor a in \"$@\"; do case \"$a\" in\n\
         --version) echo 'hbmon {v}'; exit 0;;\n\
         test) {BIN} \"$@\" || exit 9; exit {test_rc};;\n\
         start) {start};;\n\
         esac; done\nexit 3\n",
        v = &version["hbmon-".len()..]
    );
    std::fs::create_dir_all(to.parent().expect("dir")).expect("mkdir");
    std::fs::write(to, text).expect("write script");
    chmod_x(to);
}

fn bin_of(h: &Host) -> PathBuf {
    h.dir.join("bin/hbmon")
}

/// Starts `start -i` from the host's own copy of the binary (copied first
/// when `fresh`).
fn start_copy(h: &mut Host, from: Option<&Path>) {
    let bin = bin_of(h);
    if let Some(from) = from {
        std::fs::create_dir_all(bin.parent().expect("dir")).expect("mkdir");
        std::fs::copy(from, &bin).expect("copy binary");
    }
    let err = std::fs::File::create(h.dir.join("stderr.log")).expect("stderr file");
    let mut cmd = Command::new(&bin);
    cmd.arg("-c").arg(&h.conf).args(["-v", "start", "-i"]);
    let child = spawn_fresh(cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(err));
    h.child = Some(child);
    h.wait_port();
}

/// PING's version word, when the host answers.
fn version(h: &Host) -> Option<String> {
    let a = h.try_cmd("PING")?;
    let l = a.lines().find(|l| l.starts_with("PONG"))?;
    l.split_whitespace().last().map(String::from)
}

fn same_file(a: &Path, b: impl AsRef<Path>) -> bool {
    std::fs::read(a).ok() == std::fs::read(b).ok()
}

/// A fleet `srv c1 c2` (with a fleet key), the server offering `bindir`'s
/// binary, clients started from their copies.
fn fleet() -> Fleet {
    let mut f = Fleet::new(&["srv", "c1", "c2"], "ival_heartbeat 1s\n", "key fleet-secret\n");
    let srv = &f.hosts[0];
    let conf = std::fs::read_to_string(&srv.conf).expect("conf");
    srv.write_conf(&format!("{conf}bindir {}\n", srv.dir.join("offer").display()));
    let st = Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(base(&f))
        .arg(BIN)
        .status()
        .expect("strip (binutils)");
    assert!(st.success(), "strip failed");
    f.hosts[0].start();
    let b = base(&f);
    for i in 1..f.hosts.len() {
        start_copy(&mut f.hosts[i], Some(&b));
    }
    f
}

fn offer_path(f: &Fleet) -> PathBuf {
    f.server().dir.join("offer/hbmon")
}

fn upgrade(f: &Fleet, args: &[&str]) -> String {
    let mut a = vec!["upgrade"];
    a.extend_from_slice(args);
    let out = f.server().hbmon(&a);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[test]
fn two_clients_upgrade_and_come_back_at_the_new_version() {
    let mut f = fleet();
    patched(&f, NEW);
    // Only from the server's localhost; an OFFER only from the client's server.
    let denied = cmd_from(f.hosts[1].ip, f.server().cmd_addr(), "UPGRADE");
    assert!(denied.contains("access denied"), "{denied}");
    let line = format!("UPGRADE OFFER {NEW} 5 {} - 1", "a".repeat(64));
    let denied = cmd_from(f.hosts[2].ip, f.hosts[1].cmd_addr(), &line);
    assert!(denied.contains("access denied"), "{denied}");

    let out = upgrade(&f, &[]);
    for c in ["c1", "c2"] {
        let want = format!("upgrade {c}.{DOMAIN} ok {OLD} -> {NEW}");
        assert!(out.lines().any(|l| l == want), "{want} not in:\n{out}");
    }
    for i in 1..3 {
        let h = &f.hosts[i];
        assert_eq!(version(h).as_deref(), Some(NEW), "{}", h.diag());
        // Same pid (re-exec, not a new process), the new file in place, the old kept.
        let pid = h.child.as_ref().map(|c| c.id()).expect("child");
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).expect("exe");
        assert_eq!(exe, bin_of(h));
        assert!(same_file(&bin_of(h), offer_path(&f)));
        assert!(same_file(&h.dir.join("bin/hbmon.old"), base(&f)));
        // The watchdog saw it come back.
        wait_for(30.0, "ok state", || {
            let s = std::fs::read_to_string(h.vardir().join("upgrade/state")).ok()?;
            s.contains(&format!("ok {OLD} -> {NEW}")).then_some(())
        });
    }
    // The server sees them report at the new version.
    wait_for(30.0, "reports at the new version", || {
        let c = f.server().try_cmd("DUMP")?;
        (c.matches(NEW).count() >= 2).then_some(())
    });
    // Again: nothing to do.
    let out = upgrade(&f, &["c1"]);
    assert!(out.contains(&format!("upgrade c1.{DOMAIN} unchanged {NEW}")), "{out}");
    f.host("c1").stop();
}

/// Serves BINARY from the server's address with bytes that do not match
/// the header; the test then plays the server and sends the OFFER.
#[test]
fn a_bad_digest_a_bad_hmac_and_a_failing_self_test_are_refused() {
    use sha2::{Digest, Sha256};
    let mut f = fleet();
    // A binary that fails `hbmon.new test`, through the real server.
    script(&offer_path(&f), NEW, 1);
    let out = upgrade(&f, &["c1"]);
    assert!(out.contains(&format!("upgrade c1.{DOMAIN} refused: hbmon.new test failed")), "{out}");
    assert!(!out.contains("c2."), "{out}");
    // The server stops; the test takes its address.
    f.hosts[0].stop();
    let srv_addr = f.server().cmd_addr();
    let l = TcpListener::bind(srv_addr).expect("bind the server's address");
    let claimed = b"the bytes the offer describes".to_vec();
    let sha: String = Sha256::digest(&claimed).iter().map(|b| format!("{b:02x}")).collect();
    let (sha2, size) = (sha.clone(), claimed.len());
    let server = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = l.accept().expect("accept");
        let mut b = [0u8; 64];
        let _ = s.read(&mut b);
        let mut body = format!("COMMAND BINARY\nBINARY {size} {sha2}\n").into_bytes();
        body.extend(std::iter::repeat_n(b'X', size)); // not those bytes
        body.extend_from_slice(b"\nCOMMAND DONE\n");
        let _ = s.write_all(&body);
    });
    let c1 = &f.hosts[1];
    let key = "fleet-secret";
    let hmac = hbmon::upgrade::signature(key, NEW, size as u64, &sha);
    let a = cmd_from(
        f.server().ip,
        c1.cmd_addr(),
        &format!("UPGRADE OFFER {NEW} {size} {sha} {hmac} 0"),
    );
    assert!(a.contains("refused: bad digest"), "{a}");
    server.join().expect("fake server");
    // Signed with another key: refused before anything is fetched.
    let bad = hbmon::upgrade::signature("another key", NEW, size as u64, &sha);
    let a = cmd_from(
        f.server().ip,
        c1.cmd_addr(),
        &format!("UPGRADE OFFER {NEW} {size} {sha} {bad} 0"),
    );
    assert!(a.contains("refused: bad HMAC"), "{a}");
    // Nothing changed: same binary, no staging left, still the old version.
    assert!(same_file(&bin_of(c1), base(&f)));
    assert!(!c1.dir.join("bin/hbmon.old").exists());
    assert!(!c1.dir.join("bin/.hbmon.new").exists());
    for p in ["hbmon.part", "hbmon.new"] {
        assert!(!c1.vardir().join("upgrade").join(p).exists(), "{p} left");
    }
    assert_eq!(version(c1).as_deref(), Some(OLD));
    let st = c1.body("UPGRADE STATUS");
    assert!(st.contains("refused: bad HMAC"), "{st}");
}

#[test]
fn a_crashing_canary_is_rolled_back_and_stops_the_rollout() {
    let f = fleet();
    script(&offer_path(&f), NEW, 0);
    let out = upgrade(&f, &["--canary", "1"]);
    let c1 = format!("upgrade c1.{DOMAIN} rolled back: {NEW} exited at start");
    assert!(out.lines().any(|l| l == c1), "{c1} not in:\n{out}");
    assert!(out.contains(&format!("upgrade c2.{DOMAIN} not tried")), "{out}");
    // c1 runs the old binary again (a daemon the watchdog started).
    let h = &f.hosts[1];
    wait_for(30.0, "c1 back at the old version", || (version(h)? == OLD).then_some(()));
    assert!(same_file(&bin_of(h), base(&f)));
    assert!(!h.dir.join("bin/hbmon.old").exists());
    // ... and reported the rollback to the server: an `upgrade` event.
    wait_for(60.0, "the upgrade event on the server", || {
        let c = f.server().try_cmd(&format!("CLIENTS c1.{DOMAIN}"))?;
        (c.contains("\"upgrade\"") && c.contains("rolled back")).then_some(())
    });
    // c2 was not touched.
    let h2 = &f.hosts[2];
    assert!(same_file(&bin_of(h2), base(&f)));
    assert!(!h2.vardir().join("upgrade").exists());
    assert_eq!(version(h2).as_deref(), Some(OLD));
}

/// A new binary that hangs at start (never answers PING): the watchdog
/// waits the client's `ival_upgrade_check` (3 s here), kills it and rolls back.
#[test]
fn a_canary_that_hangs_at_start_is_rolled_back_after_ival_upgrade_check() {
    let mut f = fleet();
    let h = &mut f.hosts[1];
    let conf = std::fs::read_to_string(&h.conf).expect("conf");
    h.write_conf(&format!("{conf}ival_upgrade_check 3s\n"));
    h.stop();
    start_copy(h, None);
    // `exec`: the hanging program keeps the client's pid, which the watchdog kills.
    script_starting(&offer_path(&f), NEW, 0, "exec sleep 100000");
    let out = upgrade(&f, &["--canary", "1"]);
    let c1 = format!("upgrade c1.{DOMAIN} rolled back: {NEW} did not answer PING within 3s");
    assert!(out.lines().any(|l| l == c1), "{c1} not in:\n{out}");
    assert!(out.contains(&format!("upgrade c2.{DOMAIN} not tried")), "{out}");
    let h = &f.hosts[1];
    wait_for(30.0, "c1 back at the old version", || (version(h)? == OLD).then_some(()));
    assert!(same_file(&bin_of(h), base(&f)));
    assert!(!h.dir.join("bin/hbmon.old").exists());
    wait_for(60.0, "the upgrade event on the server", || {
        let c = f.server().try_cmd(&format!("CLIENTS c1.{DOMAIN}"))?;
        (c.contains("\"upgrade\"") && c.contains("did not answer PING")).then_some(())
    });
    assert_eq!(version(&f.hosts[2]).as_deref(), Some(OLD));
}

/// SIGKILL c1 as soon as `step` holds (a step of the install).
fn kill_during(f: &mut Fleet, step: impl Fn() -> bool) -> bool {
    let srv_conf = f.server().conf.clone();
    let mut up = Command::new(BIN)
        .arg("-c")
        .arg(&srv_conf)
        .args(["upgrade", "-f", &format!("c1.{DOMAIN}")])
        .stdout(std::fs::File::create(f.dir.path().join("upgrade.out")).expect("out"))
        .stderr(Stdio::null())
        .spawn()
        .expect("upgrade");
    // Polled tightly: the step lasts as long as moving 80 MB.
    let t = std::time::Instant::now();
    let mut seen = false;
    while t.elapsed().as_secs() < 60 {
        if step() {
            seen = true;
            break;
        }
        // sleep: poll interval of a deadline loop (the step is its condition)
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    f.hosts[1].kill9();
    let _ = up.kill();
    let _ = up.wait();
    if !seen {
        eprintln!("upgrade said: {:?}", std::fs::read_to_string(f.dir.path().join("upgrade.out")));
    }
    seen
}

#[test]
fn sigkill_mid_download_and_mid_swap_leave_a_client_that_starts() {
    let mut f = fleet();
    patched(&f, NEW);
    let part = f.hosts[1].vardir().join("upgrade/hbmon.part");
    let p = part.clone();
    assert!(kill_during(&mut f, move || p.exists()), "never saw the download");
    start_copy(&mut f.hosts[1], None);
    let h = &f.hosts[1];
    assert_eq!(version(h).as_deref(), Some(OLD));
    assert!(same_file(&bin_of(h), base(&f)));
    assert!(!part.exists(), "the partial download is cleared at start");

    // Mid-swap: from the `swap` state (written before the copy beside the
    // binary) to the rename.
    let staged = f.hosts[1].dir.join("bin/.hbmon.new");
    let state = f.hosts[1].vardir().join("upgrade/state");
    let s = state.clone();
    let swapping = move || std::fs::read_to_string(&s).is_ok_and(|t| t.starts_with("swap"));
    assert!(kill_during(&mut f, swapping), "never saw the swap");
    let trial = std::fs::read_to_string(&state).unwrap_or_default().starts_with("trial");
    if !trial {
        start_copy(&mut f.hosts[1], None);
    }
    // Whichever side of the rename the kill fell on, the client comes up
    // whole, on one version or the other, with nothing half-installed.
    let h = &f.hosts[1];
    let v = wait_for(30.0, "c1 answers", || version(h));
    assert!(v == OLD || v == NEW, "{v}");
    assert!(same_file(&bin_of(h), if v == OLD { base(&f) } else { offer_path(&f) }));
    assert!(!staged.exists(), "the staged copy is cleared");
    let st = h.body("UPGRADE STATUS");
    assert!(
        st.contains("interrupted") || st.starts_with("ok") || st.starts_with("rolled back"),
        "{st}"
    );
}
