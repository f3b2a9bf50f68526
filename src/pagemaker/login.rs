//! Logins on the HTTP side: the session store and the login throttle
//! behind one mutex, the request's user from its cookie, the CSRF check of
//! forms, the login POST's outcome (a value: `views.rs` draws the page),
//! `/logout`, and `/metrics` for what a viewer may see. The policies
//! (hashes, tokens, who sees what) are `auth.rs`'s; this file only calls
//! them. Passwords and tokens are never logged. Below the renderers: it
//! depends on `auth.rs`, `metrics.rs` and `web.rs` only.

use super::auth::{self, LoginThrottle, Sessions};
use super::fetch::{Fleet, HostView};
use super::web::{Req, Resp, TEXT};
use super::{Shared, Site};
use crate::work::model::WebUser;
use std::sync::Mutex;

/// A logged-in viewer: their work entry and their session's tokens.
#[derive(Clone, Debug)]
pub struct User {
    pub name: String,
    pub admin: bool,
    pub web: WebUser,
    pub csrf: String,
    token: String,
}

#[derive(Default)]
pub struct Logins {
    sessions: Sessions,
    throttle: LoginThrottle,
    forms: auth::LoginForms,
    /// Login POSTs refused for a missing or wrong form token.
    csrf_refused: u64,
}

pub type LoginState = Mutex<Logins>;

fn logins(sh: &Shared) -> std::sync::MutexGuard<'_, Logins> {
    match sh.logins.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// The user of this request's session cookie, if the session is live and
/// the user still in the work.
pub fn session_user(sh: &Shared, req: &Req) -> Option<User> {
    let site = sh.site();
    let token = auth::session_token(req.cookie.as_deref()?, site.part.secure_cookies)?;
    let mut l = logins(sh);
    let s = l.sessions.get(token, req.now)?;
    let web = site.part.users.iter().find(|u| u.name == s.user)?.clone();
    Some(User {
        name: web.name.clone(),
        admin: web.admin,
        web,
        csrf: s.csrf.expose().to_string(),
        token: token.to_string(),
    })
}

/// May this viewer see this host (auth.rs decides)?
pub fn can_see(site: &Site, user: Option<&User>, host: &str) -> bool {
    let (user, lr) = (user.map(|u| &u.web), site.part.login_required);
    match site.entry(host) {
        Some(e) => auth::can_see(user, e, lr),
        // Not in the work (an hbd-style sender): auth's rule for those.
        None => auth::can_see_host(user, host, &[], lr),
    }
}

/// The host named `name` (its FQDN or tag), if this viewer may see it: the
/// one lookup every page and API route uses, so none forgets visibility.
pub fn visible_host<'a>(
    fleet: &'a Fleet,
    site: &Site,
    user: Option<&User>,
    name: &str,
) -> Option<&'a HostView> {
    fleet.hosts.iter().find(|h| (h.name == name || h.tag == name) && can_see(site, user, &h.name))
}

pub fn csrf_ok(sh: &Shared, req: &Req, u: &User) -> bool {
    let given = req.f("csrf").unwrap_or("");
    !given.is_empty() && logins(sh).sessions.check_csrf(&u.token, given, req.now)
}

/// After a new work: sessions of users who left it end.
pub fn retain(sh: &Shared, users: &[WebUser]) {
    logins(sh).sessions.retain_users(users);
}

/// A new login form token: (the Set-Cookie value, the hidden field's value).
pub fn login_form(sh: &Shared, req: &Req) -> crate::error::Result<(String, String)> {
    let (nonce, field) = logins(sh).forms.issue(req.now)?;
    let cookie = auth::login_cookie(nonce.expose(), sh.site().part.secure_cookies);
    Ok((cookie, field.expose().to_string()))
}

/// What a login POST came to; `views.rs` renders it (the form again, or
/// the redirect), so this file draws no page.
#[derive(Debug)]
pub enum LoginOutcome {
    /// Logged in: the session cookie's Set-Cookie value.
    Session(String),
    /// No session could be made (500).
    Failed(String),
    /// The form again with this message (403): bad form token, wrong
    /// user or password.
    Refused(String),
    /// Too many failed logins from this source: wait this many seconds (429).
    Throttled(f64),
}

/// POST /login: the form's CSRF token, throttled per source, then the
/// password; a session cookie.
pub fn login(sh: &Shared, req: &Req) -> LoginOutcome {
    let site = sh.site();
    let ip = req.peer.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    let nonce = req.cookie.as_deref().and_then(|c| auth::login_nonce(c, site.part.secure_cookies));
    let field = req.f("csrf").unwrap_or("");
    let form_ok = {
        let mut l = logins(sh);
        let ok = nonce.is_some_and(|n| l.forms.check(n, field, req.now));
        if !ok {
            l.csrf_refused += 1;
        }
        ok
    };
    if !form_ok {
        log::info!("dashboard: login from {ip} refused: bad or missing form token");
        // A fresh form, so a user whose form merely expired can try again.
        let msg = "The login form expired or was not ours: please log in again.";
        return LoginOutcome::Refused(msg.to_string());
    }
    // Its own statement: the lock must be released before the form is
    // drawn again, which takes it for a fresh form token.
    let checked = logins(sh).throttle.check(ip, req.now);
    if let Err(wait) = checked {
        return LoginOutcome::Throttled(wait.ceil().max(1.0));
    }
    let (name, pw) = (req.f("user").unwrap_or(""), req.f("password").unwrap_or(""));
    // Verifying a hash is slow by design; the lock is not held meanwhile.
    let who = auth::login(&site.part.users, name, pw).map(|u| u.name.clone());
    let mut l = logins(sh);
    match who {
        Some(user) => {
            l.throttle.success(ip);
            match l.sessions.create(&user, req.now) {
                Ok(s) => {
                    log::info!("dashboard: {user} logged in from {ip}");
                    LoginOutcome::Session(auth::session_cookie(
                        s.token.expose(),
                        site.part.secure_cookies,
                    ))
                }
                Err(e) => LoginOutcome::Failed(format!("no session: {e}")),
            }
        }
        None => {
            let wait = l.throttle.failure(ip, req.now);
            drop(l);
            log::info!("dashboard: failed login from {ip}");
            let msg = if wait > 0.0 {
                format!("Wrong user or password. Wait {:.0} s before the next try.", wait.ceil())
            } else {
                "Wrong user or password.".to_string()
            };
            LoginOutcome::Refused(msg)
        }
    }
}

/// POST /logout: the session ends and the cookie is cleared.
pub fn logout(sh: &Shared, req: &Req) -> Resp {
    let site = sh.site();
    if let Some(u) = session_user(sh, req) {
        if !csrf_ok(sh, req, &u) {
            return Resp::new(403, TEXT, "bad or missing CSRF token\n");
        }
        logins(sh).sessions.remove(&u.token);
    }
    Resp::redirect("/").header("Set-Cookie", &auth::clear_cookie(site.part.secure_cookies))
}

/// GET /metrics: the fleet the viewer may see, the server's counters, the
/// login counters.
pub fn metrics(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let site = sh.site();
    let snap = sh.fetch.fleet(req.now);
    // The server's own counters only for those who see the whole fleet.
    let all = user.is_none_or(|u| u.admin);
    let dump = if all { sh.fetch.dump().ok() } else { None };
    let levels: Vec<String> = site.levels.iter().map(|l| l.name.clone()).collect();
    let visible = |h: &str| all || can_see(&site, user, h);
    let mut text =
        super::metrics::render_visible(&snap.raw, dump.as_deref(), &levels, snap.fetched, &visible);
    let l = logins(sh);
    let stats = l.throttle.stats(req.now);
    text.push_str(&super::metrics::render_logins(&stats, l.sessions.len(), l.csrf_refused));
    Resp::new(200, "text/plain; version=0.0.4; charset=utf-8", text)
}
