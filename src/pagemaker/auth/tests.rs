use super::*;
use crate::work::model::Ports;

fn host(name: &str, tag: &str, groups: &[&str]) -> HostEntry {
    HostEntry {
        host: name.into(),
        tag: tag.into(),
        address: "127.0.0.1".into(),
        ports: Ports::default(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }
}

fn user(name: &str, admin: bool, groups: &[&str], hosts: &[&str]) -> WebUser {
    WebUser {
        name: name.into(),
        hash: String::new(),
        admin,
        groups: groups.iter().map(|g| g.to_string()).collect(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
    }
}

#[test]
fn login_finds_the_user_only_with_the_right_password() {
    let mut alice = user("alice", true, &[], &[]);
    alice.hash = hash_password("s3cret").unwrap();
    let users = vec![alice];
    assert_eq!(login(&users, "alice", "s3cret").map(|u| u.name.as_str()), Some("alice"));
    assert!(login(&users, "alice", "S3cret").is_none());
    assert!(login(&users, "mallory", "s3cret").is_none());
}

#[test]
fn sessions_live_24h_carry_a_csrf_token_and_end_at_logout() {
    let mut s = Sessions::default();
    let n = s.create("alice", 100.0).unwrap();
    assert_eq!(n.token.expose().len(), 2 * TOKEN_BYTES);
    assert_ne!(n.token, n.csrf);
    let got = s.get(n.token.expose(), 100.0 + SESSION_TTL - 1.0).unwrap();
    assert_eq!(got.user, "alice");
    assert_eq!(got.csrf, n.csrf);
    assert!(s.check_csrf(n.token.expose(), n.csrf.expose(), 101.0));
    assert!(!s.check_csrf(n.token.expose(), "", 101.0));
    assert!(!s.check_csrf(n.token.expose(), n.token.expose(), 101.0));
    assert!(s.get("0".repeat(64).as_str(), 101.0).is_none());
    assert!(s.remove(n.token.expose()));
    assert!(s.get(n.token.expose(), 101.0).is_none());
    assert!(!s.remove(n.token.expose()));

    let n = s.create("bob", 0.0).unwrap();
    assert!(s.get(n.token.expose(), SESSION_TTL).is_none(), "expired at 24 h");
    assert_eq!(s.len(), 0, "an expired session is dropped when seen");
    assert!(!s.check_csrf(n.token.expose(), n.csrf.expose(), SESSION_TTL));
}

#[test]
fn tokens_are_random_and_distinct() {
    let mut s = Sessions::default();
    let mut seen = std::collections::HashSet::new();
    for i in 0..200 {
        let n = s.create("u", f64::from(i)).unwrap();
        assert!(seen.insert(n.token.expose().to_string()));
        assert!(seen.insert(n.csrf.expose().to_string()));
    }
}

#[test]
fn the_store_is_capped_and_the_oldest_session_is_evicted() {
    let mut s = Sessions::new(3, SESSION_TTL);
    let t: Vec<NewSession> = (0..4).map(|i| s.create("u", f64::from(i)).unwrap()).collect();
    assert_eq!(s.len(), 3);
    assert!(s.get(t[0].token.expose(), 5.0).is_none(), "oldest evicted");
    for n in &t[1..] {
        assert!(s.get(n.token.expose(), 5.0).is_some());
    }
}

#[test]
fn sessions_of_users_gone_from_the_work_end() {
    let mut s = Sessions::default();
    let a = s.create("alice", 0.0).unwrap();
    let b = s.create("bob", 0.0).unwrap();
    s.retain_users(&[user("bob", false, &[], &[])]);
    assert!(s.get(a.token.expose(), 1.0).is_none());
    assert!(s.get(b.token.expose(), 1.0).is_some());
}

#[test]
fn no_secret_shows_in_debug_output() {
    let mut s = Sessions::default();
    let n = s.create("alice", 0.0).unwrap();
    let sess = s.get(n.token.expose(), 1.0).unwrap().clone();
    for text in [format!("{n:?}"), format!("{sess:?}"), format!("{s:?}")] {
        assert!(!text.contains(n.token.expose()), "{text}");
        assert!(!text.contains(n.csrf.expose()), "{text}");
    }
    assert!(format!("{n:?}").contains("<redacted>"));
}

#[test]
fn visibility_admin_groups_owner_and_anonymous() {
    let www1 = host("www1.example.org", "www1", &["all", "web"]);
    let db1 = host("db1.example.org", "db1", &["all", "backend", "db"]);
    let hosts = vec![www1.clone(), db1.clone()];
    let admin = user("root", true, &[], &[]);
    let webber = user("w", false, &["web"], &[]);
    let owner = user("o", false, &[], &["db1.example.org"]);
    let by_tag = user("t", false, &[], &["db1"]);
    let nobody = user("n", false, &[], &[]);
    for h in [&www1, &db1] {
        assert!(can_see(Some(&admin), h, true));
        assert!(can_see(None, h, false));
        assert!(!can_see(None, h, true));
        assert!(!can_see(Some(&nobody), h, false));
    }
    assert!(can_see(Some(&webber), &www1, false));
    assert!(!can_see(Some(&webber), &db1, false));
    assert!(can_see(Some(&owner), &db1, true));
    assert!(!can_see(Some(&owner), &www1, true));
    assert!(can_see(Some(&by_tag), &db1, true));
    // By name, as CLIENTS gives it; a host not in the work: admins only.
    assert!(can_see_host(Some(&webber), "www1", &hosts, true));
    assert!(!can_see_host(Some(&webber), "db1.example.org", &hosts, true));
    assert!(!can_see_host(Some(&webber), "stranger", &hosts, false));
    assert!(can_see_host(Some(&admin), "stranger", &hosts, true));
    assert!(can_see_host(None, "stranger", &hosts, false));
    // Changing needs a login that sees the host.
    assert!(!can_change(None));
    assert!(can_change(Some(&nobody)));
    assert!(!can_change_host(None, "www1", &hosts));
    assert!(can_change_host(Some(&webber), "www1", &hosts));
    assert!(!can_change_host(Some(&webber), "db1", &hosts));
    assert!(can_change_host(Some(&admin), "db1", &hosts));
}

#[test]
fn the_session_cookie_has_the_safe_attributes() {
    let t = "ab".repeat(TOKEN_BYTES);
    let plain = session_cookie(&t, false);
    assert_eq!(
        plain,
        format!("hbmon_session={t}; HttpOnly; SameSite=Strict; Path=/; Max-Age=86400")
    );
    let secure = session_cookie(&t, true);
    assert_eq!(
        secure,
        format!(
            "__Host-hbmon_session={t}; HttpOnly; SameSite=Strict; Path=/; Max-Age=86400; Secure"
        )
    );
    assert!(clear_cookie(false).starts_with("hbmon_session=; "));
    assert!(clear_cookie(false).contains("Max-Age=0"));
    assert!(clear_cookie(true).ends_with("; Secure"));
}

#[test]
fn the_cookie_header_parser_takes_only_a_well_formed_token() {
    let t = "0123456789abcdef".repeat(4);
    let h = format!("theme=dark; hbmon_session={t}; other=1");
    assert_eq!(session_token(&h, false), Some(t.as_str()));
    assert_eq!(session_token(&h, true), None, "over https only the __Host- cookie counts");
    assert_eq!(session_token(&format!("__Host-hbmon_session={t}"), true), Some(t.as_str()));
    assert_eq!(cookie_value("a=1;b=2", "b"), Some("2"));
    assert_eq!(cookie_value("a=\"q\"", "a"), Some("q"));
    for bad in [
        String::new(),
        "hbmon_session".into(),
        "hbmon_session=".into(),
        "hbmon_session=xyz".into(),
        format!("hbmon_session={}", "g".repeat(64)),
        format!("hbmon_session={t}0"),
        format!("xhbmon_session={t}"),
        "=;;==; ;".into(),
    ] {
        assert_eq!(session_token(&bad, false), None, "{bad}");
    }
}

#[test]
fn a_login_form_token_matches_only_its_cookie_and_expires() {
    let mut f = LoginForms::default();
    assert!(!f.check(&"a".repeat(64), "1.00", 0.0), "no key yet: nothing matches");
    let (nonce, field) = f.issue(1000.0).unwrap();
    let (n2, f2) = f.issue(1000.0).unwrap();
    assert_ne!(nonce, n2);
    assert!(f.check(nonce.expose(), field.expose(), 1001.0));
    assert!(!f.check(nonce.expose(), f2.expose(), 1001.0), "another form's field");
    assert!(!f.check(n2.expose(), field.expose(), 1001.0), "another form's cookie");
    assert!(!f.check(nonce.expose(), "", 1001.0));
    assert!(!f.check(nonce.expose(), field.expose(), 1000.0 + LOGIN_FORM_TTL + 2.0), "expired");
    // A later expiry in the field breaks the MAC.
    let (_, mac) = field.expose().split_once('.').unwrap();
    assert!(!f.check(nonce.expose(), &format!("99999999.{mac}"), 1001.0));
    assert!(!format!("{field:?}").contains(mac), "Debug redacts");
    let c = login_cookie(nonce.expose(), true);
    assert!(c.starts_with("__Host-hbmon_login=") && c.contains("HttpOnly"), "{c}");
    assert!(c.contains("SameSite=Strict") && c.ends_with("; Secure"), "{c}");
    let hdr = format!("hbmon_session=x; {}", cookie_pair_of(&login_cookie(nonce.expose(), false)));
    assert_eq!(login_nonce(&hdr, false), Some(nonce.expose()));
    assert_eq!(login_nonce("hbmon_login=zz", false), None);
}

fn cookie_pair_of(set: &str) -> &str {
    set.split(';').next().unwrap_or("")
}
