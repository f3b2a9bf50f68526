//! Secrets out of text meant for people (logs, STATE, DUMP): every
//! `http://` or `https://` URL in a text loses its userinfo and its query
//! (webhook tokens ride there), keeping scheme, host, port and path so the
//! reader still knows which endpoint failed. Pure string work.

/// `text` with every URL in it redacted (see [`url`]).
pub fn urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = find_scheme(rest) {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        // A URL ends at white space or a quote/bracket around it.
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`'))
            .unwrap_or(tail.len());
        let (u, after) = tail.split_at(end);
        // A trailing ':' or ',' is the sentence's, not the URL's.
        let trim = u.trim_end_matches([':', ',', ';', ')']);
        out.push_str(&url(trim));
        out.push_str(&u[trim.len()..]);
        rest = after;
    }
    out.push_str(rest);
    out
}

fn find_scheme(s: &str) -> Option<usize> {
    match (s.find("http://"), s.find("https://")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// One URL: `https://user:pw@h:1/p?token=x#f` -> `https://***@h:1/p?***`.
pub fn url(u: &str) -> String {
    let Some(sep) = u.find("://") else { return u.to_string() };
    let (scheme, rest) = u.split_at(sep + 3);
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(auth_end);
    let host = match authority.rfind('@') {
        Some(i) => format!("***@{}", &authority[i + 1..]),
        None => authority.to_string(),
    };
    let path = match path.find(['?', '#']) {
        Some(i) if path[i..].starts_with('?') => format!("{}?***", &path[..i]),
        Some(i) => path[..i].to_string(),
        None => path.to_string(),
    };
    format!("{scheme}{host}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_loses_userinfo_query_and_fragment() {
        assert_eq!(
            url("https://u:pw@h.org:8443/x/y?token=abc&b=2#f"),
            "https://***@h.org:8443/x/y?***"
        );
        assert_eq!(url("http://127.0.0.1:9/hook"), "http://127.0.0.1:9/hook");
        assert_eq!(url("http://h?t=1"), "http://h?***");
        assert_eq!(url("http://h/p#frag"), "http://h/p");
        assert_eq!(url("not a url"), "not a url");
    }

    #[test]
    fn urls_inside_text_are_redacted() {
        let e = "http://127.0.0.1:9/h?token=s3cret: Connection Failed: Connect error";
        assert_eq!(urls(e), "http://127.0.0.1:9/h?***: Connection Failed: Connect error");
        let two = "a \"https://x:y@a/b?c=d\" and http://c/d?e=f, done";
        assert_eq!(urls(two), "a \"https://***@a/b?***\" and http://c/d?***, done");
        assert_eq!(urls("no urls here"), "no urls here");
        assert!(!urls("x https://h/p?token=SECRET y").contains("SECRET"));
    }
}
