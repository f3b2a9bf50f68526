//! Dashboard logins in the work-config: the login words of a `user` line
//! (`password HASH`, `admin`, `groups=G,...`, `owns=H,...`) and the
//! `login` and `cookies` keys. `split` runs in the parse pass (shape: the
//! hash must be an argon2id PHC string); the names are checked in the
//! validate pass (`people::web_users`: groups and hosts must exist). Pure, like the rest of `work`.

/// Words of a `user` line that are not channels (no channel may be
/// called so).
pub const LOGIN_WORDS: &[&str] = &["password", "admin"];

/// The login part of a `user` line, as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoginDecl {
    pub hash: Option<String>,
    pub admin: bool,
    /// Host groups the user sees (`groups=`).
    pub groups: Vec<String>,
    /// Hosts the user owns (`owns=`), tags or FQDNs.
    pub owns: Vec<String>,
}

impl LoginDecl {
    fn grants(&self) -> bool {
        self.admin || !self.groups.is_empty() || !self.owns.is_empty()
    }
}

fn list(w: &str) -> Vec<String> {
    w.split(',').filter(|s| !s.is_empty()).map(String::from).collect()
}

/// Splits the words after `user NAME` into channel words and the login
/// part. The word after a channel type (`webhook URL`) is its target,
/// never a login word.
pub fn split<'a>(
    user: &str,
    w: &[&'a str],
) -> std::result::Result<(Vec<&'a str>, LoginDecl), String> {
    let mut chans = Vec::new();
    let mut l = LoginDecl::default();
    let mut i = 0;
    while i < w.len() {
        let word = w[i];
        if let Some(g) = word.strip_prefix("groups=") {
            l.groups.extend(list(g));
            if g.is_empty() {
                return Err(format!("user {user}: groups= needs a group list"));
            }
        } else if let Some(h) = word.strip_prefix("owns=") {
            l.owns.extend(list(h));
            if h.is_empty() {
                return Err(format!("user {user}: owns= needs a host list"));
            }
        } else if word == "admin" {
            l.admin = true;
        } else if word == "password" {
            let hash = w.get(i + 1).ok_or_else(|| {
                format!("user {user}: 'password' needs a hash (made by `hbmon passwd {user}`)")
            })?;
            if l.hash.is_some() {
                return Err(format!("user {user}: two passwords"));
            }
            crate::hash::check_hash(hash).map_err(|e| format!("user {user}: {e}"))?;
            l.hash = Some(hash.to_string());
            i += 1;
        } else if word.contains('=') {
            return Err(format!(
                "user {user}: unknown option '{word}' (expected groups= or owns=)"
            ));
        } else {
            chans.push(word);
            if crate::notify::channels::KINDS.contains(&word) && word != "syslog" {
                if let Some(t) = w.get(i + 1) {
                    chans.push(t);
                    i += 1;
                }
            }
        }
        i += 1;
    }
    if l.hash.is_none() && l.grants() {
        return Err(format!(
            "user {user}: admin, groups= and owns= need a password (see `hbmon passwd`)"
        ));
    }
    if l.hash.is_some() && !l.grants() {
        return Err(format!(
            "user {user}: a dashboard login needs admin, groups=GROUPS or owns=HOSTS"
        ));
    }
    Ok((chans, l))
}

/// `login everywhere|changes`: does every page need a login?
pub fn login_key(w: &[&str]) -> std::result::Result<bool, String> {
    match w {
        ["everywhere"] => Ok(true),
        ["changes"] => Ok(false),
        _ => Err("login: expected 'login everywhere' or 'login changes'".into()),
    }
}

/// `cookies secure|plain`: `Secure` session cookies (https in front)?
pub fn cookies_key(w: &[&str]) -> std::result::Result<bool, String> {
    match w {
        ["secure"] => Ok(true),
        ["plain"] => Ok(false),
        _ => Err("cookies: expected 'cookies secure' or 'cookies plain'".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash() -> String {
        // A real hash (of "pw"), made once by `hbmon passwd`.
        HASH.to_string()
    }

    pub const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$LzeTFRdvWOPdAUP9SSnOvQ$dZ3h0jCTxJhwwZY+flFSEJNS7YelrHP7Fbl/VKmhkjU";

    #[test]
    fn login_words_are_split_from_channels() {
        let h = hash();
        let w =
            ["ops-hook", "password", &h, "webhook", "http://h/admin", "groups=web,db", "owns=db1"];
        let (chans, l) = split("alice", &w).unwrap();
        assert_eq!(chans, ["ops-hook", "webhook", "http://h/admin"]);
        assert_eq!(l.hash.as_deref(), Some(HASH));
        assert_eq!(
            (l.admin, l.groups.clone(), l.owns.clone()),
            (false, vec!["web".into(), "db".into()], vec!["db1".into()])
        );
        let (chans, l) = split("root", &["admin", "password", &h]).unwrap();
        assert!(chans.is_empty() && l.admin);
        // A channel's target is never a login word.
        let (chans, l) = split("x", &["command", "admin"]).unwrap();
        assert_eq!((chans, l.admin), (vec!["command", "admin"], false));
    }

    #[test]
    fn bad_login_words_are_errors() {
        let h = hash();
        for (w, want) in [
            (vec!["password"], "needs a hash"),
            (vec!["password", "hunter2", "admin"], "not a password hash"),
            (vec!["password", &h, "password", &h, "admin"], "two passwords"),
            (vec!["admin"], "need a password"),
            (vec!["syslog", "groups=web"], "need a password"),
            (vec!["password", &h], "needs admin, groups=GROUPS or owns=HOSTS"),
            (vec!["password", &h, "groups="], "needs a group list"),
            (vec!["password", &h, "owns="], "needs a host list"),
            (vec!["password", &h, "admin", "role=x"], "unknown option 'role=x'"),
        ] {
            let e = split("u", &w).unwrap_err();
            assert!(e.contains(want), "{w:?}: {e}");
        }
    }

    #[test]
    fn the_real_hash_verifies() {
        assert!(crate::hash::verify_password(HASH, "pw"));
    }

    #[test]
    fn login_and_cookies_keys() {
        assert_eq!(login_key(&["everywhere"]), Ok(true));
        assert_eq!(login_key(&["changes"]), Ok(false));
        assert!(login_key(&["always"]).is_err());
        assert!(login_key(&[]).is_err());
        assert_eq!(cookies_key(&["secure"]), Ok(true));
        assert_eq!(cookies_key(&["plain"]), Ok(false));
        assert!(cookies_key(&["secure", "plain"]).is_err());
    }
}
