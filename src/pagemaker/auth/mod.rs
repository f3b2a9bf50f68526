//! Dashboard logins: sessions, CSRF tokens, the login
//! throttle, who may see and change what, and the session cookie. Pure
//! values in, values out: no sockets, no threads, no logging. The HTTP side
//! wraps `Sessions` and `LoginThrottle` in a `Mutex` and passes `now`
//! (seconds, monotonic is best) so tests need no clock.
//!
//! Nothing here ever prints a password, a token or a CSRF value: secrets
//! are `Secret`s, whose `Debug` says `<redacted>`.
//!
//! The API the web side calls (all in `hbmon::pagemaker::auth`; the HTTP
//! side's `login.rs` keeps one `Sessions` and one `LoginThrottle` behind a
//! mutex and checks passwords outside it):
//!
//! ```text
//! hash_password, check_hash, verify_password                // re-exported from `crate::hash`
//! login<'a>(users: &'a [WebUser], name: &str, pw: &str) -> Option<&'a WebUser>
//!                                                           // same cost for unknown names
//! Sessions::new(cap: usize, ttl: f64) / Sessions::default() // MAX_SESSIONS, SESSION_TTL (24 h)
//! Sessions::create(&mut self, user: &str, now: f64) -> Result<NewSession>
//!     NewSession { token: Secret, csrf: Secret }            // token -> cookie, csrf -> forms
//! Sessions::get(&mut self, token: &str, now: f64) -> Option<&Session>
//!     Session { user: String, csrf: Secret, created: f64, expires: f64 }
//! Sessions::check_csrf(&mut self, token: &str, csrf: &str, now: f64) -> bool
//! Sessions::remove(&mut self, token: &str) -> bool          // logout
//! Sessions::retain_users(&mut self, users: &[WebUser])      // after a new work
//! Sessions::len(&self) -> usize
//! LoginThrottle::default() / LoginThrottle::new(cap: usize)
//! LoginThrottle::check(&mut self, ip: IpAddr, now: f64) -> Result<(), f64 /* retry after, s */>
//! LoginThrottle::failure(&mut self, ip: IpAddr, now: f64) -> f64 /* wait before the next try */
//! LoginThrottle::success(&mut self, ip: IpAddr)
//! LoginThrottle::stats(&self, now: f64) -> ThrottleStats    // for STATE and /metrics
//! can_see(user: Option<&WebUser>, host: &HostEntry, login_required: bool) -> bool
//! can_see_host(user: Option<&WebUser>, name: &str, hosts: &[HostEntry], login_required: bool) -> bool
//! can_change(user: Option<&WebUser>) -> bool
//! can_change_host(user: Option<&WebUser>, name: &str, hosts: &[HostEntry]) -> bool
//! session_cookie(token: &str, secure: bool) -> String       // a Set-Cookie header value
//! clear_cookie(secure: bool) -> String                      // logout's Set-Cookie value
//! session_token(cookie_header: &str, secure: bool) -> Option<&str>
//! cookie_value<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str>
//! LoginForms::default()                                     // a per-process key, made on first use
//! LoginForms::issue(&mut self, now: f64) -> Result<(Secret, Secret)> // (cookie nonce, form field)
//! LoginForms::check(&self, nonce: &str, field: &str, now: f64) -> bool
//! login_cookie(nonce: &str, secure: bool) -> String         // the login form's Set-Cookie value
//! login_nonce(cookie_header: &str, secure: bool) -> Option<&str>
//! ```

use crate::error::{Error, Result};
use crate::work::model::{HostEntry, WebUser};
// The hash rules live below both the dashboard and the work's validation.
pub use crate::hash::{check_hash, hash_password, verify_password};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;
use subtle::ConstantTimeEq;

mod throttle;
pub use throttle::{delay_after, LoginThrottle, ThrottleStats};

/// Seconds a session lives (absolute, from the login).
pub const SESSION_TTL: f64 = 24.0 * 3600.0;
/// Sessions kept at once; a login beyond it evicts the oldest.
pub const MAX_SESSIONS: usize = 1000;
/// Random bytes in a session token and in a CSRF token (256 bits each).
pub const TOKEN_BYTES: usize = 32;
/// The session cookie's name over plain http.
pub const COOKIE_NAME: &str = "hbmon_session";
/// Over https: the `__Host-` prefix makes browsers refuse it unless it is
/// `Secure`, host-only and `Path=/`, so no sibling domain can plant one.
pub const SECURE_COOKIE_NAME: &str = "__Host-hbmon_session";

/// A password, token or CSRF value: shown as `<redacted>` by `Debug`, so
/// a `{:?}` of a struct holding one cannot leak it into a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// `n` bytes from the OS RNG (getrandom(2)).
fn random_bytes(n: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; n];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Runtime(format!("reading the OS random number generator: {e}")))?;
    Ok(b)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token: `TOKEN_BYTES` from the OS RNG, as lower-case hex.
pub fn random_token() -> Result<Secret> {
    Ok(Secret(hex(&random_bytes(TOKEN_BYTES)?)))
}

/// A hash of a password nobody knows, verified for unknown user names so
/// that the answer's timing does not tell which names exist.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let pw = random_token().map(|s| s.0).unwrap_or_else(|_| "x".repeat(64));
        hash_password(&pw).unwrap_or_default()
    })
}

/// The user called `name` when `pw` is their password. Costs one argon2
/// verification whether or not the name exists.
pub fn login<'a>(users: &'a [WebUser], name: &str, pw: &str) -> Option<&'a WebUser> {
    match users.iter().find(|u| u.name == name) {
        Some(u) if verify_password(&u.hash, pw) => Some(u),
        Some(_) => None,
        None => {
            let _ = verify_password(dummy_hash(), pw);
            None
        }
    }
}

/// One logged-in browser.
#[derive(Clone, Debug)]
pub struct Session {
    pub user: String,
    /// Every state-changing form carries it; `check_csrf` compares.
    pub csrf: Secret,
    pub created: f64,
    pub expires: f64,
}

/// What a login gives: the cookie's token and the session's CSRF token.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub token: Secret,
    pub csrf: Secret,
}

/// The session store. Keyed by the SHA-256 of the token, so the map's
/// timing says nothing about a token, and a memory dump holds no cookie
/// that could be replayed.
pub struct Sessions {
    map: HashMap<[u8; 32], Session>,
    cap: usize,
    ttl: f64,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sessions({} of {})", self.map.len(), self.cap)
    }
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions::new(MAX_SESSIONS, SESSION_TTL)
    }
}

fn key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// At most `cap` sessions (at least 1), each living `ttl` seconds.
    pub fn new(cap: usize, ttl: f64) -> Sessions {
        Sessions { map: HashMap::new(), cap: cap.max(1), ttl }
    }

    /// Opens a session for `user`: expired sessions are dropped, then the
    /// oldest one while the store is full.
    pub fn create(&mut self, user: &str, now: f64) -> Result<NewSession> {
        self.map.retain(|_, s| s.expires > now);
        while self.map.len() >= self.cap {
            let oldest =
                self.map.iter().min_by(|a, b| a.1.created.total_cmp(&b.1.created)).map(|(k, _)| *k);
            match oldest {
                Some(k) => self.map.remove(&k),
                None => break,
            };
        }
        let (token, csrf) = (random_token()?, random_token()?);
        let s = Session {
            user: user.into(),
            csrf: csrf.clone(),
            created: now,
            expires: now + self.ttl,
        };
        self.map.insert(key(&token.0), s);
        Ok(NewSession { token, csrf })
    }

    /// The live session of `token`; an expired one is removed.
    pub fn get(&mut self, token: &str, now: f64) -> Option<&Session> {
        let k = key(token);
        if self.map.get(&k).is_some_and(|s| s.expires <= now) {
            self.map.remove(&k);
        }
        self.map.get(&k)
    }

    /// Does `csrf` belong to the live session of `token`? Constant-time.
    pub fn check_csrf(&mut self, token: &str, csrf: &str, now: f64) -> bool {
        match self.get(token, now) {
            Some(s) => bool::from(s.csrf.0.as_bytes().ct_eq(csrf.as_bytes())),
            None => false,
        }
    }

    /// Logout: ends the session of `token`. False when there was none.
    pub fn remove(&mut self, token: &str) -> bool {
        self.map.remove(&key(token)).is_some()
    }

    /// Drops the sessions of users no longer in the work (after a reload).
    pub fn retain_users(&mut self, users: &[WebUser]) {
        self.map.retain(|_, s| users.iter().any(|u| u.name == s.user));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// May `user` (None = not logged in) see `host`? An admin sees every host;
/// another user the hosts in their groups and those they own; nobody
/// logged in sees every host unless the work asks for logins everywhere.
pub fn can_see(user: Option<&WebUser>, host: &HostEntry, login_required: bool) -> bool {
    match user {
        None => !login_required,
        Some(u) if u.admin => true,
        Some(u) => {
            u.hosts.iter().any(|h| *h == host.host || *h == host.tag)
                || u.groups.iter().any(|g| host.groups.contains(g))
        }
    }
}

/// `can_see` for a host known by name (FQDN or tag), as CLIENTS gives it.
/// A host not in the work (an hbd-style sender) is seen by admins, and by
/// everybody when the dashboard is open.
pub fn can_see_host(
    user: Option<&WebUser>,
    name: &str,
    hosts: &[HostEntry],
    login_required: bool,
) -> bool {
    match hosts.iter().find(|h| h.host == name || h.tag == name) {
        Some(h) => can_see(user, h, login_required),
        None => match user {
            None => !login_required,
            Some(u) => u.admin,
        },
    }
}

/// May `user` change state (acknowledge, silence) at all? Any login may;
/// which hosts is `can_change_host`'s question.
pub fn can_change(user: Option<&WebUser>) -> bool {
    user.is_some()
}

/// May `user` acknowledge or silence the host called `name`? Only a login
/// that sees it.
pub fn can_change_host(user: Option<&WebUser>, name: &str, hosts: &[HostEntry]) -> bool {
    can_change(user) && can_see_host(user, name, hosts, true)
}

/// The session cookie's name: `__Host-` prefixed when `secure`.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// The `Set-Cookie` value for a new session: not readable by scripts, not
/// sent on cross-site requests, for the whole dashboard, 24 h.
pub fn session_cookie(token: &str, secure: bool) -> String {
    let mut c = format!(
        "{}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        cookie_name(secure),
        SESSION_TTL as u64
    );
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The `Set-Cookie` value that makes the browser drop the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let mut c = format!("{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0", cookie_name(secure));
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The value of cookie `name` in a `Cookie:` request header
/// (`a=1; b=2`), if present and well-formed.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        let v = v.trim().trim_matches('"');
        (k.trim() == name && !v.is_empty()).then_some(v)
    })
}

/// The session token in a `Cookie:` header: a hex token of the right
/// length, or nothing (garbage never reaches the store).
pub fn session_token(header: &str, secure: bool) -> Option<&str> {
    cookie_value(header, cookie_name(secure))
        .filter(|t| t.len() == 2 * TOKEN_BYTES && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The login form's pre-session cookie (double-submit CSRF token).
pub const LOGIN_COOKIE_NAME: &str = "hbmon_login";
pub const SECURE_LOGIN_COOKIE_NAME: &str = "__Host-hbmon_login";
/// Seconds a login form stays good (its cookie's Max-Age, and the field's
/// own expiry, so an old cookie+field pair cannot be replayed for ever).
pub const LOGIN_FORM_TTL: f64 = 1800.0;

/// CSRF tokens for the login form, where there is no session yet. GET
/// /login sets a random nonce as an `HttpOnly; SameSite=Strict` cookie and
/// puts `EXPIRY.HMAC(key, nonce.EXPIRY)` in a hidden field; POST /login
/// must bring both. A site that can plant a cookie (a sibling domain over
/// plain http) still cannot make the matching field without the key, which
/// lives only in this process.
#[derive(Default)]
pub struct LoginForms {
    key: Option<Vec<u8>>,
}

impl fmt::Debug for LoginForms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LoginForms(<redacted>)")
    }
}

type HmacSha256 = hmac::Hmac<Sha256>;

fn form_mac(key: &[u8], nonce: &str, expires: u64) -> Option<HmacSha256> {
    use hmac::Mac;
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).ok()?;
    m.update(nonce.as_bytes());
    m.update(format!(".{expires}").as_bytes());
    Some(m)
}

impl LoginForms {
    /// A new (cookie nonce, form field) pair, good for `LOGIN_FORM_TTL`.
    pub fn issue(&mut self, now: f64) -> Result<(Secret, Secret)> {
        use hmac::Mac;
        if self.key.is_none() {
            self.key = Some(random_bytes(TOKEN_BYTES)?);
        }
        let key = self.key.as_deref().unwrap_or_default();
        let nonce = random_token()?;
        let expires = (now + LOGIN_FORM_TTL).ceil().max(0.0) as u64;
        let mac = form_mac(key, &nonce.0, expires)
            .ok_or_else(|| Error::Runtime("login form key".into()))?;
        let field = format!("{expires}.{}", hex(&mac.finalize().into_bytes()));
        Ok((nonce, Secret(field)))
    }

    /// Does `field` belong to the cookie's `nonce`, unexpired? Constant time.
    pub fn check(&self, nonce: &str, field: &str, now: f64) -> bool {
        use hmac::Mac;
        let (Some(key), Some((exp, mac))) = (self.key.as_deref(), field.split_once('.')) else {
            return false;
        };
        let Ok(expires) = exp.parse::<u64>() else { return false };
        if (expires as f64) <= now || expires as f64 > now + LOGIN_FORM_TTL + 1.0 {
            return false;
        }
        let Some(want) = form_mac(key, nonce, expires) else { return false };
        let want = hex(&want.finalize().into_bytes());
        bool::from(want.as_bytes().ct_eq(mac.as_bytes()))
    }
}

fn login_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_LOGIN_COOKIE_NAME
    } else {
        LOGIN_COOKIE_NAME
    }
}

/// The login form's `Set-Cookie` value: scripts cannot read it, other
/// sites cannot send it, it lasts as long as the form.
pub fn login_cookie(nonce: &str, secure: bool) -> String {
    let mut c = format!(
        "{}={nonce}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        login_cookie_name(secure),
        LOGIN_FORM_TTL as u64
    );
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// The login form's nonce in a `Cookie:` header (hex of the right length).
pub fn login_nonce(header: &str, secure: bool) -> Option<&str> {
    cookie_value(header, login_cookie_name(secure))
        .filter(|t| t.len() == 2 * TOKEN_BYTES && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests;
