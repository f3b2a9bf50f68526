//! `hbmon passwd USER`: reads a password (from the terminal without echo,
//! asked twice; or one line of stdin when it is not a terminal, for
//! scripts) and prints the work-config line that gives USER a dashboard
//! login. The hash is argon2id (`hash::hash_password`).

use crate::error::{Error, Result};
use std::io::{BufRead, Read, Write};

/// Longest password accepted (bytes): far beyond any passphrase, short of
/// making argon2 hash megabytes.
pub const MAX_PASSWORD: usize = 1024;

/// The line to put in the work-config for `user` with password `pw`.
pub fn work_line(user: &str, pw: &str) -> Result<String> {
    check_user(user)?;
    check_password(pw)?;
    let hash = crate::hash::hash_password(pw)?;
    Ok(format!("user {user} password {hash}"))
}

fn check_user(user: &str) -> Result<()> {
    let bad = user.is_empty()
        || user.contains(|c: char| c.is_whitespace() || c.is_control() || c == '#' || c == '=')
        || crate::work::logins::LOGIN_WORDS.contains(&user);
    if bad {
        return Err(Error::Usage(format!(
            "passwd: '{user}' is not a user name (no spaces, '#' or '=')"
        )));
    }
    Ok(())
}

fn check_password(pw: &str) -> Result<()> {
    if pw.is_empty() {
        return Err(Error::Usage("passwd: empty password".into()));
    }
    if pw.len() > MAX_PASSWORD {
        return Err(Error::Usage(format!("passwd: password longer than {MAX_PASSWORD} bytes")));
    }
    Ok(())
}

/// One line of `r` without its line end, read up to just past
/// `MAX_PASSWORD` (a longer one is then refused, never read whole).
fn read_line(r: &mut impl BufRead) -> Result<String> {
    let mut s = String::new();
    r.take(MAX_PASSWORD as u64 + 3)
        .read_line(&mut s)
        .map_err(|e| Error::io("passwd: reading the password", e))?;
    while s.ends_with('\n') || s.ends_with('\r') {
        s.pop();
    }
    Ok(s)
}

/// Turns terminal echo off on stdin until dropped (also on an error path).
struct NoEcho {
    saved: libc::termios,
}

impl NoEcho {
    fn new() -> Result<NoEcho> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a termios we own.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return Err(Error::io("passwd: tcgetattr", std::io::Error::last_os_error()));
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            t.c_lflag |= libc::ECHONL;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return Err(Error::io("passwd: tcsetattr", std::io::Error::last_os_error()));
            }
            Ok(NoEcho { saved })
        }
    }
}

impl Drop for NoEcho {
    fn drop(&mut self) {
        // SAFETY: restores the attributes saved in `new`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
    }
}

fn prompt(text: &str) -> Result<String> {
    // Echo goes off before the prompt shows: whoever types as soon as they
    // see it must not have the first keys echoed (as getpass(3) does).
    let _guard = NoEcho::new()?;
    eprint!("{text}");
    let _ = std::io::stderr().flush();
    let line = read_line(&mut std::io::stdin().lock());
    eprintln!();
    line
}

/// The command: prints `user USER password HASH`.
pub fn run(user: &str) -> Result<i32> {
    check_user(user)?;
    // SAFETY: isatty only inspects the descriptor.
    let tty = unsafe { libc::isatty(0) } == 1;
    let pw = if tty {
        let a = prompt(&format!("Password for {user}: "))?;
        let b = prompt("Again: ")?;
        if a != b {
            return Err(Error::Usage("passwd: the passwords differ".into()));
        }
        a
    } else {
        read_line(&mut std::io::stdin().lock())?
    };
    println!("{}", work_line(user, &pw)?);
    if tty {
        eprintln!("Put this line in the work-config; add admin, groups=GROUPS or owns=HOSTS.");
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_parses_back_and_verifies() {
        let line = work_line("alice", "s3cret pass").unwrap();
        let (head, hash) = line.rsplit_once(' ').unwrap();
        assert_eq!(head, "user alice password");
        assert!(crate::hash::verify_password(hash, "s3cret pass"));
    }

    #[test]
    fn bad_names_and_passwords_are_usage_errors() {
        for u in ["", "a b", "a#b", "a=b", "admin", "password", "a\tb"] {
            assert!(matches!(work_line(u, "pw"), Err(Error::Usage(_))), "{u:?}");
        }
        assert!(matches!(work_line("u", ""), Err(Error::Usage(_))));
        let long = "x".repeat(MAX_PASSWORD + 1);
        assert!(matches!(work_line("u", &long), Err(Error::Usage(_))));
        assert!(work_line("u", &"x".repeat(MAX_PASSWORD)).is_ok());
    }

    #[test]
    fn a_line_end_is_not_part_of_the_password() {
        let mut r = std::io::Cursor::new(b"pw\r\nrest".to_vec());
        assert_eq!(read_line(&mut r).unwrap(), "pw");
    }
}
