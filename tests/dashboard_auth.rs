//! Issue 11, logins through the real dashboard (HTTP on the pagemaker of a
//! real fleet): a wrong password is refused, counted and slowed (429 with
//! Retry-After, per source); the right one sets a session cookie with the
//! safe attributes; POSTs without the session's CSRF token are refused;
//! acknowledging from the dashboard reaches the server; logout ends the
//! session; a non-admin does not see another group's hosts (pages, API,
//! SVG); `login everywhere` keeps anonymous viewers out; `cookies secure`.

mod common;
mod webclient;
use common::*;
use hbmon::pagemaker::auth::hash_password;
use std::net::{Ipv4Addr, SocketAddr};
use webclient::*;

/// A fleet srv (server + pagemaker), web1 (group web), db1 (group db);
/// every host's `proc:FLAG` item is sick (no such process), so each host
/// has an open alert. Users: root (admin), wendy (groups=web).
fn fleet(extra: &str) -> (Fleet, String) {
    let f = Fleet::new(&["srv", "web1", "db1"], "", "");
    let flag = format!("hbauth{}x{}", f.net[0], f.net[1]);
    let work = format!(
        "pmaker srv\ngroup web web1\ngroup db db1\n\
         ival_heartbeat 1s\nival_make_state 1s\nival_send_report 1s\n\
         get all cpu_load proc:{flag}\nfit proc sick <1\n\
         user root password {} admin\nuser wendy password {} groups=web\n{extra}",
        hash_password("root-pw").unwrap(),
        hash_password("wendy-pw").unwrap(),
    );
    let text = std::fs::read_to_string(&f.workconf).unwrap() + &work;
    std::fs::write(&f.workconf, text).unwrap();
    (f, format!("proc:{flag}"))
}

fn web(f: &Fleet, last_octet: u8) -> Web {
    let addr = SocketAddr::new(f.hosts[0].ip.into(), f.port + 1);
    Web::new(addr, Ipv4Addr::new(127, f.net[0], f.net[1], last_octet))
}

/// Waits until the dashboard shows every host's alert (the fleet is up).
fn wait_ready(f: &Fleet, w: &Web) {
    let names: Vec<String> = f.hosts.iter().map(|h| h.name.clone()).collect();
    wait_for(60.0, "the dashboard shows every host's alert", || {
        let a = w.try_request("GET", "/api/v1/alerts", None, None)?;
        names.iter().all(|n| a.body.contains(n.as_str())).then_some(())
    });
}

/// GET /login as a browser does: the form's cookie pair and its CSRF field.
fn login_form(w: &Web) -> (String, String) {
    let a = w.get("/login", None);
    assert_eq!(a.status, 200, "{a:?}");
    let set = a.header("Set-Cookie").unwrap_or_else(|| panic!("no form cookie: {a:?}"));
    let attrs: Vec<&str> = set.split(';').map(str::trim).skip(1).collect();
    for want in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(attrs.contains(&want), "{want} missing in {set}");
    }
    let csrf = csrf_in(&a.body).unwrap_or_else(|| panic!("no CSRF field on /login:\n{}", a.body));
    (cookie_pair(set), csrf)
}

/// POSTs the login form fetched just before, as a browser does.
fn post_login(w: &Web, user: &str, pw: &str) -> Answer {
    let (cookie, csrf) = login_form(w);
    w.post("/login", Some(&cookie), &[("csrf", &csrf), ("user", user), ("password", pw)])
}

/// Logs in; returns the cookie pair to send back and the full Set-Cookie.
fn login(w: &Web, user: &str, pw: &str) -> (String, String) {
    let a = post_login(w, user, pw);
    assert_eq!(a.status, 303, "login as {user}: {a:?}");
    let set = a.header("Set-Cookie").unwrap_or_else(|| panic!("no cookie: {a:?}")).to_string();
    (cookie_pair(&set), set)
}

fn csrf(w: &Web, cookie: &str) -> String {
    let page = w.get("/alerts", Some(cookie));
    csrf_in(&page.body).unwrap_or_else(|| panic!("no CSRF token on /alerts:\n{}", page.body))
}

fn acked(f: &Fleet, host: &str, item: &str) -> bool {
    let d: serde_json::Value = serde_json::from_str(&f.server().body("DUMP")).unwrap();
    let alerts = d["server"]["notify"]["alerts"].as_array().cloned().unwrap_or_default();
    alerts.iter().any(|a| a["host"] == host && a["item"] == item && a["acked"] == true)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn logins_cookies_csrf_ack_and_logout() {
    let (mut f, item) = fleet("");
    f.start_all();
    let (w, other) = (web(&f, 200), web(&f, 201));
    wait_ready(&f, &w);

    // Wrong passwords: refused, and after the free ones the source must wait.
    let mut statuses = Vec::new();
    let throttled = loop {
        let a = post_login(&w, "root", "nope");
        assert!(!a.header("Set-Cookie").unwrap_or("").starts_with("hbmon_session="), "{a:?}");
        statuses.push(a.status);
        if a.status == 429 {
            break a;
        }
        assert_eq!(a.status, 403, "a wrong password: {a:?}");
        assert!(statuses.len() < 12, "never slowed: {statuses:?}");
    };
    assert!(statuses.iter().filter(|s| **s == 403).count() >= 4, "{statuses:?}");
    let wait: f64 = throttled.header("Retry-After").and_then(|r| r.parse().ok()).unwrap_or(0.0);
    assert!(wait >= 1.0, "429 says how long to wait: {throttled:?}");
    // While it waits, even the right password is refused from that source...
    let a = post_login(&w, "root", "root-pw");
    assert_eq!(a.status, 429, "{a:?}");
    assert!(!a.header("Set-Cookie").unwrap_or("").starts_with("hbmon_session="), "{a:?}");
    // ... but not from another one. An unknown user is refused like a bad password.
    assert_eq!(post_login(&other, "mallory", "x").status, 403);
    let (cookie, set) = login(&other, "root", "root-pw");
    let token = cookie.strip_prefix("hbmon_session=").expect(&set);
    assert_eq!(token.len(), 64, "{set}");
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()), "{set}");
    let attrs: Vec<&str> = set.split(';').map(str::trim).skip(1).collect();
    for want in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=86400"] {
        assert!(attrs.contains(&want), "{want} missing in {set}");
    }
    assert!(!attrs.contains(&"Secure"), "plain http: no Secure ({set})");
    // The login form's CSRF token: a POST with the right password but
    // without the form's cookie and field, with a wrong field, with another
    // form's field, or with a field but no cookie, is refused.
    let third = web(&f, 202);
    let (fc, ff) = login_form(&third);
    let (_, ff2) = login_form(&third);
    let zeros = format!("9999999999.{}", "0".repeat(64));
    let up = [("user", "root"), ("password", "root-pw")];
    let with = |cookie: Option<&str>, csrf: Option<&str>| {
        let mut form = up.to_vec();
        if let Some(c) = csrf {
            form.push(("csrf", c));
        }
        third.post("/login", cookie, &form)
    };
    for (what, a) in [
        ("no token", with(None, None)),
        ("cookie, no field", with(Some(&fc), None)),
        ("field, no cookie", with(None, Some(&ff))),
        ("a forged field", with(Some(&fc), Some(&zeros))),
        ("another form's field", with(Some(&fc), Some(&ff2))),
    ] {
        assert_eq!(a.status, 403, "login with {what}: {a:?}");
        assert!(!a.header("Set-Cookie").unwrap_or("").starts_with("hbmon_session="), "{a:?}");
    }
    let a = with(Some(&fc), Some(&ff));
    assert_eq!(a.status, 303, "the form's own token: {a:?}");
    assert!(a.header("Set-Cookie").is_some_and(|c| c.starts_with("hbmon_session=")), "{a:?}");

    // Counted: /metrics has the failures and the refusals.
    let m = w.get("/metrics", None).body;
    let n = metric(&m, "hbmon_dashboard_login_csrf_refused_total");
    assert!(n.is_some_and(|n| n >= 5.0), "{m}");
    assert!(metric(&m, "hbmon_dashboard_login_failures_total").is_some_and(|n| n >= 5.0), "{m}");
    assert!(metric(&m, "hbmon_dashboard_login_refused_total").is_some_and(|n| n >= 2.0), "{m}");
    assert!(!m.contains(token), "no token in /metrics");

    // CSRF: a POST without the session's token is refused; with it, the ack
    // reaches the server.
    let host = f.hosts[1].name.clone();
    let token_csrf = csrf(&other, &cookie);
    assert_ne!(token_csrf, token);
    let anon = other.post("/ack", None, &[("host", &host), ("item", &item)]);
    assert_eq!(anon.status, 403, "anonymous ack: {anon:?}");
    for bad in ["", "0000000000000000000000000000000000000000000000000000000000000000", token] {
        let mut form = vec![("host", host.as_str()), ("item", item.as_str())];
        if !bad.is_empty() {
            form.push(("csrf", bad));
        }
        let a = other.post("/ack", Some(&cookie), &form);
        assert_eq!(a.status, 403, "csrf {bad:?}: {a:?}");
    }
    assert!(!acked(&f, &host, &item), "refused POSTs changed nothing");
    let a = other.post(
        "/ack",
        Some(&cookie),
        &[("csrf", &token_csrf), ("host", &host), ("item", &item)],
    );
    assert_eq!(a.status, 303, "{a:?}");
    wait_for(20.0, "the server's alert acknowledged", || acked(&f, &host, &item).then_some(()));
    let st = f.server().cmd("STATE");
    let line =
        st.lines().find(|l| l.starts_with(&format!("-- alert {host} {item} "))).unwrap_or("");
    assert!(line.contains("acked"), "STATE shows the acknowledgement: {line:?}\n{st}");
    assert!(other.get("/alerts", Some(&cookie)).body.contains(">acked<"), "and so does /alerts");

    // Logout ends the session: the cookie is cleared and no longer works.
    let a = other.post("/logout", Some(&cookie), &[("csrf", &token_csrf)]);
    assert_eq!(a.status, 303, "{a:?}");
    let cleared = a.header("Set-Cookie").unwrap_or_default();
    assert!(cleared.starts_with("hbmon_session=;") && cleared.contains("Max-Age=0"), "{a:?}");
    let db = f.hosts[2].name.clone();
    let a =
        other.post("/ack", Some(&cookie), &[("csrf", &token_csrf), ("host", &db), ("item", &item)]);
    assert_eq!(a.status, 403, "after logout: {a:?}");
    assert!(csrf_in(&other.get("/alerts", Some(&cookie)).body).is_none());
    assert!(!acked(&f, &db, &item));
}

/// Every page and API answer a user gets for the fleet, as (what, answer).
fn views(w: &Web, cookie: Option<&str>, f: &Fleet) -> Vec<(String, Answer)> {
    let mut paths: Vec<String> = [
        "/",
        "/hosts",
        "/alerts",
        "/events",
        "/item/cpu_load",
        "/api/v1/hosts",
        "/api/v1/alerts",
        "/api/v1/events",
        "/api/v1/summary",
        "/api/v1/items/cpu_load",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for h in &f.hosts {
        paths.push(format!("/host/{}", h.name));
        paths.push(format!("/graph/{}/cpu_load", h.name));
        paths.push(format!("/svg/{}/cpu_load?ival=H", h.name));
        paths.push(format!("/api/v1/hosts/{}", h.name));
        paths.push(format!("/api/v1/history/{}/cpu_load?ival=H", h.name));
    }
    paths.into_iter().map(|p| (p.clone(), w.get(&p, cookie))).collect()
}

#[test]
fn a_non_admin_sees_only_their_groups_hosts() {
    let (mut f, item) = fleet("");
    f.start_all();
    let w = web(&f, 210);
    wait_ready(&f, &w);
    let (web1, db1) = (f.hosts[1].name.clone(), f.hosts[2].name.clone());
    let (cookie, _) = login(&w, "wendy", "wendy-pw");

    // srv is in no group of hers either: its pages are closed to her too
    // (its name may still show as the server in the page header).
    let srv = f.hosts[0].name.clone();
    for (path, a) in views(&w, Some(&cookie), &f) {
        if path.contains(&db1) || path.contains(&srv) {
            assert!(matches!(a.status, 403 | 404), "wendy got {path}: {} {}", a.status, a.body);
        } else {
            assert!(a.status < 400, "wendy {path}: {} {}", a.status, a.body);
        }
        if a.status < 400 {
            for other in [&db1, &srv] {
                assert!(
                    !a.body.contains(other.as_str()),
                    "wendy sees {other} on {path}:\n{}",
                    a.body
                );
            }
        }
    }
    let hosts = w.get("/hosts", Some(&cookie)).body;
    assert!(hosts.contains(&web1), "her own group's host is there:\n{hosts}");
    // She cannot act on a host she does not see, CSRF token or not.
    let token = csrf(&w, &cookie);
    let a = w.post("/ack", Some(&cookie), &[("csrf", &token), ("host", &db1), ("item", &item)]);
    assert!(a.status >= 400 && a.status != 429, "{a:?}");
    assert!(!acked(&f, &db1, &item));
    // The admin, and anonymous viewers of an open dashboard, see db1.
    let (root, _) = login(&w, "root", "root-pw");
    for c in [Some(root.as_str()), None] {
        let a = w.get("/hosts", c);
        assert!(a.body.contains(&db1), "{c:?}: {}", a.body);
        assert_eq!(w.get(&format!("/svg/{db1}/cpu_load?ival=H"), c).status, 200);
    }
}

#[test]
fn login_everywhere_keeps_anonymous_viewers_out_and_secure_cookies() {
    let (mut f, _) = fleet("login everywhere\ncookies secure\n");
    f.start_all();
    let w = web(&f, 220);
    wait_for(30.0, "the dashboard answers", || w.try_request("GET", "/login", None, None));
    for path in ["/", "/hosts", "/api/v1/hosts", "/svg/x/cpu_load", "/metrics"] {
        let a = w.get(path, None);
        assert!(
            a.status == 303 && a.header("Location") == Some("/login") || a.status == 401,
            "anonymous {path}: {a:?}"
        );
        assert!(!a.body.contains(&f.hosts[1].name), "{path}: {}", a.body);
    }
    assert_eq!(w.get("/login", None).status, 200);
    let (cookie, set) = login(&w, "root", "root-pw");
    assert!(cookie.starts_with("__Host-hbmon_session="), "{set}");
    assert!(set.split(';').any(|a| a.trim() == "Secure"), "{set}");
    let names: Vec<String> = f.hosts.iter().map(|h| h.name.clone()).collect();
    wait_for(60.0, "the admin sees every host", || {
        let a = w.get("/hosts", Some(&cookie));
        (a.status == 200 && names.iter().all(|n| a.body.contains(n.as_str()))).then_some(())
    });
}
