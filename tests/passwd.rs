//! Issue 11: `hbmon passwd USER` prints a work line whose argon2id hash
//! verifies; from a pipe it reads one line, on a real terminal (tmux) it
//! asks twice without echoing; the line it prints is accepted by mkwork.

mod common;
use common::*;
use hbmon::pagemaker::auth::verify_password;
use std::io::Write;
use std::process::{Command, Stdio};

fn passwd_piped(user: &str, input: &[u8]) -> std::process::Output {
    let mut c = Command::new(BIN)
        .args(["passwd", user])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // hbmon may refuse before reading (a bad name): a closed pipe is fine.
    let _ = c.stdin.take().unwrap().write_all(input);
    c.wait_with_output().unwrap()
}

#[test]
fn from_stdin_the_line_verifies_and_mkwork_takes_it() {
    let out = passwd_piped("alice", b"open sesame\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line = String::from_utf8(out.stdout).unwrap();
    let line = line.trim_end();
    let hash = line.strip_prefix("user alice password ").expect(line);
    assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
    assert!(verify_password(hash, "open sesame"));
    assert!(!verify_password(hash, "open sesame\n"));

    let f = Fleet::new(&["srv"], &format!("pmaker srv\n{line} admin\n"), "");
    let out = f.hosts[0].hbmon(&["mkwork", "-o", f.dir.path().join("works").to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let w = std::fs::read_to_string(f.dir.path().join(format!("works/srv.{DOMAIN}.json"))).unwrap();
    assert!(w.contains(hash), "the pagemaker's work carries the hash");
}

#[test]
fn bad_input_is_a_usage_error() {
    for (user, input, want) in [
        ("alice", &b"\n"[..], "empty password"),
        ("alice", &b""[..], "empty password"),
        ("a b", &b"pw\n"[..], "is not a user name"),
        ("admin", &b"pw\n"[..], "is not a user name"),
    ] {
        let out = passwd_piped(user, input);
        assert_eq!(out.status.code(), Some(2), "{user:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(want), "{user:?}");
        assert!(out.stdout.is_empty());
    }
    // Too long: refused without reading it all (a stream with no newline).
    let long = vec![b'x'; 1 << 20];
    let out = passwd_piped("alice", &long);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("longer than 1024 bytes"));
}

struct Tmux {
    socket: String,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> String {
        let out = Command::new("tmux").arg("-L").arg(&self.socket).args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
    fn screen(&self) -> String {
        self.run(&["capture-pane", "-p", "-t", "pw"])
    }
    fn wait(&self, what: &str) -> String {
        wait_for(20.0, what, || Some(self.screen()).filter(|s| s.contains(what)))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.run(&["kill-server"]);
    }
}

#[test]
fn on_a_terminal_it_asks_twice_without_echo() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("line");
    let t = Tmux { socket: format!("hbmon-pw-{}", std::process::id()) };
    let cmd = format!("{BIN} passwd bob > {}; echo EXIT=$?; sleep 60", out.display());
    t.run(&["new-session", "-d", "-s", "pw", "-x", "200", "-y", "20", &cmd]);
    t.wait("Password for bob:");
    t.run(&["send-keys", "-t", "pw", "-l", "tty-secret-42"]);
    t.run(&["send-keys", "-t", "pw", "Enter"]);
    t.wait("Again:");
    t.run(&["send-keys", "-t", "pw", "-l", "tty-secret-42"]);
    t.run(&["send-keys", "-t", "pw", "Enter"]);
    let screen = t.wait("EXIT=");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(!screen.contains("tty-secret-42"), "the password was echoed:\n{screen}");
    let line = std::fs::read_to_string(&out).unwrap();
    let hash = line.trim_end().strip_prefix("user bob password ").expect(&line);
    assert!(verify_password(hash, "tty-secret-42"));
}

#[test]
fn on_a_terminal_two_different_answers_are_refused() {
    let t = Tmux { socket: format!("hbmon-pw2-{}", std::process::id()) };
    let cmd = format!("{BIN} passwd bob; echo EXIT=$?; sleep 60");
    t.run(&["new-session", "-d", "-s", "pw", "-x", "200", "-y", "20", &cmd]);
    t.wait("Password for bob:");
    t.run(&["send-keys", "-t", "pw", "-l", "one"]);
    t.run(&["send-keys", "-t", "pw", "Enter"]);
    t.wait("Again:");
    t.run(&["send-keys", "-t", "pw", "-l", "two"]);
    t.run(&["send-keys", "-t", "pw", "Enter"]);
    let screen = t.wait("EXIT=");
    assert!(screen.contains("the passwords differ") && screen.contains("EXIT=2"), "{screen}");
    assert!(!screen.contains("$argon2id$"), "{screen}");
}
