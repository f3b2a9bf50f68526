//! `Logins`: the session store and the login throttle behind one mutex,
//! with one method per thing the HTTP side does (log in, find the session
//! of a request, check a form's CSRF token, log out, count). The web side
//! keeps one `Logins` in its shared state and never touches the parts.
//! Part of `auth` (re-exported there); no HTTP types, no I/O.
//!
//! The argon2 check (tens of ms) runs outside the mutex, so one login never
//! stalls the other request threads.

use super::{
    clear_cookie, login, session_cookie, session_token, LoginThrottle, Secret, Sessions,
    ThrottleStats,
};
use crate::work::model::{PmakerWork, WebUser};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Mutex, MutexGuard};

/// What a login attempt gives the web side to answer with.
#[derive(Debug)]
pub enum Attempt {
    /// Logged in: send `set_cookie` as `Set-Cookie` and redirect (303).
    Ok { user: WebUser, set_cookie: String, csrf: Secret },
    /// Wrong name or password: 403 and the login page again. `wait` > 0
    /// when this source must now wait that long before its next try.
    Refused { wait: f64 },
    /// This source failed too often: 429 with `Retry-After: retry_after`
    /// (whole seconds, rounded up); the password was not even checked.
    Throttled { retry_after: u64 },
    /// No user of the work has a password: logins are off (403).
    Unavailable,
}

#[derive(Debug, Default)]
struct Parts {
    sessions: Sessions,
    throttle: LoginThrottle,
}

/// Logins of one dashboard; `Sync`, share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct Logins {
    parts: Mutex<Parts>,
}

impl Logins {
    pub fn new() -> Logins {
        Logins::default()
    }

    fn lock(&self) -> MutexGuard<'_, Parts> {
        // A panic elsewhere must not lock everybody out for good.
        self.parts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// POST /login: `name` and `pw` from the form, `peer` the source
    /// address (None counts as one unknown source).
    pub fn attempt(
        &self,
        part: &PmakerWork,
        peer: Option<IpAddr>,
        name: &str,
        pw: &str,
        now: f64,
    ) -> Attempt {
        if part.users.is_empty() {
            return Attempt::Unavailable;
        }
        let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        if let Err(wait) = self.lock().throttle.check(ip, now) {
            return Attempt::Throttled { retry_after: wait.ceil().max(1.0) as u64 };
        }
        let found = login(&part.users, name, pw).cloned();
        let mut p = self.lock();
        match found {
            Some(user) => {
                p.throttle.success(ip);
                match p.sessions.create(&user.name, now) {
                    Ok(s) => Attempt::Ok {
                        set_cookie: session_cookie(s.token.expose(), part.secure_cookies),
                        csrf: s.csrf,
                        user,
                    },
                    // No randomness from the OS: no session (never a weak one).
                    Err(_) => Attempt::Unavailable,
                }
            }
            None => Attempt::Refused { wait: p.throttle.failure(ip, now) },
        }
    }

    /// The logged-in user of a request (its `Cookie:` header) and the
    /// session's CSRF token for forms. The user is looked up in the current
    /// work, so a reload that removes or changes them applies at once.
    pub fn session(
        &self,
        part: &PmakerWork,
        cookie_header: Option<&str>,
        now: f64,
    ) -> Option<(WebUser, Secret)> {
        let token = session_token(cookie_header?, part.secure_cookies)?;
        let mut p = self.lock();
        let s = p.sessions.get(token, now)?;
        let user = part.users.iter().find(|u| u.name == s.user)?.clone();
        Some((user, s.csrf.clone()))
    }

    /// Does the form's `csrf` field belong to the request's session?
    pub fn csrf_ok(
        &self,
        part: &PmakerWork,
        cookie_header: Option<&str>,
        csrf: Option<&str>,
        now: f64,
    ) -> bool {
        let (Some(token), Some(csrf)) =
            (cookie_header.and_then(|c| session_token(c, part.secure_cookies)), csrf)
        else {
            return false;
        };
        self.lock().sessions.check_csrf(token, csrf, now)
    }

    /// POST /logout with the session's CSRF token: ends the session and
    /// gives the `Set-Cookie` value that clears the cookie. None (403) when
    /// the token does not match a live session.
    pub fn logout(
        &self,
        part: &PmakerWork,
        cookie_header: Option<&str>,
        csrf: Option<&str>,
        now: f64,
    ) -> Option<String> {
        if !self.csrf_ok(part, cookie_header, csrf, now) {
            return None;
        }
        let token = session_token(cookie_header?, part.secure_cookies)?;
        self.lock().sessions.remove(token);
        Some(clear_cookie(part.secure_cookies))
    }

    /// After a new work: sessions of users no longer in it end.
    pub fn reload(&self, part: &PmakerWork) {
        self.lock().sessions.retain_users(&part.users);
    }

    /// The throttle's counters and the number of open sessions.
    pub fn stats(&self, now: f64) -> (ThrottleStats, usize) {
        let p = self.lock();
        (p.throttle.stats(now), p.sessions.len())
    }

    /// The login families of `/metrics`.
    pub fn metrics(&self, now: f64) -> String {
        let (t, n) = self.stats(now);
        crate::pagemaker::metrics::render_logins(&t, n)
    }
}

#[cfg(test)]
#[path = "logins_tests.rs"]
mod tests;
