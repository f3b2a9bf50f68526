use super::*;
use crate::pagemaker::auth::{hash_password, TOKEN_BYTES};
use crate::pagemaker::metrics;

fn part(secure: bool) -> PmakerWork {
    let user = |name: &str, pw: &str, admin: bool| WebUser {
        name: name.into(),
        hash: hash_password(pw).unwrap(),
        admin,
        groups: if admin { vec![] } else { vec!["web".into()] },
        hosts: vec![],
    };
    PmakerWork {
        users: vec![user("root", "root-pw", true), user("wendy", "wendy-pw", false)],
        secure_cookies: secure,
        ..PmakerWork::default()
    }
}

fn ip(s: &str) -> Option<IpAddr> {
    s.parse().ok()
}

fn cookie_of(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn login_session_csrf_and_logout() {
    let (l, p) = (Logins::new(), part(false));
    let Attempt::Ok { user, set_cookie, csrf } =
        l.attempt(&p, ip("127.0.0.1"), "root", "root-pw", 0.0)
    else {
        panic!("root could not log in")
    };
    assert!(user.admin);
    assert!(set_cookie.starts_with("hbmon_session=") && set_cookie.contains("HttpOnly"));
    let c = cookie_of(&set_cookie);
    let header = format!("theme=x; {c}");
    let (u, got) = l.session(&p, Some(&header), 1.0).unwrap();
    assert_eq!((u.name.as_str(), &got), ("root", &csrf));
    assert!(l.csrf_ok(&p, Some(&header), Some(csrf.expose()), 1.0));
    assert!(!l.csrf_ok(&p, Some(&header), None, 1.0));
    assert!(!l.csrf_ok(&p, Some(&header), Some("x"), 1.0));
    assert!(!l.csrf_ok(&p, None, Some(csrf.expose()), 1.0));
    assert!(l.logout(&p, Some(&header), Some("wrong"), 1.0).is_none(), "logout needs the token");
    let cleared = l.logout(&p, Some(&header), Some(csrf.expose()), 1.0).unwrap();
    assert!(cleared.contains("Max-Age=0"));
    assert!(l.session(&p, Some(&header), 2.0).is_none());
    assert!(!l.csrf_ok(&p, Some(&header), Some(csrf.expose()), 2.0));
    assert_eq!(l.stats(2.0), (ThrottleStats { successes: 1, ..ThrottleStats::default() }, 0));
}

#[test]
fn failures_are_counted_then_throttled_per_source() {
    let (l, p) = (Logins::new(), part(false));
    let a = ip("127.0.0.7");
    for _ in 0..3 {
        assert!(
            matches!(l.attempt(&p, a, "root", "bad", 0.0), Attempt::Refused { wait } if wait == 0.0)
        );
    }
    assert!(
        matches!(l.attempt(&p, a, "nobody", "x", 0.0), Attempt::Refused { wait } if wait == 1.0)
    );
    assert!(matches!(
        l.attempt(&p, a, "root", "root-pw", 0.5),
        Attempt::Throttled { retry_after: 1 }
    ));
    assert!(matches!(l.attempt(&p, ip("127.0.0.8"), "root", "root-pw", 0.5), Attempt::Ok { .. }));
    let m = l.metrics(0.5);
    assert!(m.contains("hbmon_dashboard_login_failures_total 4"), "{m}");
    assert!(m.contains("hbmon_dashboard_login_refused_total 1"), "{m}");
    assert!(m.contains("hbmon_dashboard_sessions 1"), "{m}");
    assert!(metrics::render_logins(&l.stats(0.5).0, 1) == m);
    assert!(
        matches!(l.attempt(&p, a, "root", "root-pw", 1.0), Attempt::Ok { .. }),
        "after the wait"
    );
}

#[test]
fn secure_cookies_work_and_the_work_decides_who_is_logged_in() {
    let (l, mut p) = (Logins::new(), part(true));
    let Attempt::Ok { set_cookie, .. } = l.attempt(&p, None, "wendy", "wendy-pw", 0.0) else {
        panic!("wendy could not log in")
    };
    assert!(set_cookie.starts_with("__Host-hbmon_session=") && set_cookie.ends_with("; Secure"));
    let c = cookie_of(&set_cookie);
    assert_eq!(c.len(), "__Host-hbmon_session=".len() + 2 * TOKEN_BYTES);
    assert!(l.session(&p, Some(&c), 1.0).is_some());
    // The plain cookie name does not count on a secure dashboard.
    let plain = c.replace("__Host-", "");
    assert!(l.session(&p, Some(&plain), 1.0).is_none());
    // A new work without wendy: her session no longer logs her in.
    p.users.retain(|u| u.name != "wendy");
    assert!(l.session(&p, Some(&c), 1.0).is_none());
    l.reload(&p);
    assert_eq!(l.stats(1.0).1, 0);
    // Without users, logins are off.
    p.users.clear();
    assert!(matches!(l.attempt(&p, None, "root", "root-pw", 2.0), Attempt::Unavailable));
}
