//! The canonical hostname, as dmon derives it: the `hostname` conf key or
//! the system hostname, lower-cased; a name without a dot gets the `domain`
//! conf key or resolv.conf's search domain appended; then a CNAME is
//! followed to its canonical name when the name resolves.
//!
//! It never fails: every step that cannot answer leaves the name as it is.
//! The text-handling steps are pure ([`qualify`], [`resolv_search`]); only
//! [`canonical`] reads files and asks the resolver.

use std::ffi::{CStr, CString};
use std::sync::mpsc;
use std::time::Duration;

/// This host's canonical name by its conf (`hostname`, `domain` keys).
pub fn of_conf(conf: &crate::conf::Conf) -> String {
    canonical(conf.hostname.as_deref(), conf.domain.as_deref())
}

/// How long the resolver may take to answer the CNAME question. glibc's
/// own default is 5 s per server and attempt, which would stall start-up
/// on a host whose DNS is down; a name that does not answer by then is
/// used as it is.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(2);

/// The name this host goes by in the fleet (see the module doc).
pub fn canonical(conf_hostname: Option<&str>, conf_domain: Option<&str>) -> String {
    let given = conf_hostname.map(str::trim).filter(|h| !h.is_empty());
    // A fully-qualified name from the conf is taken as meant: no lookup
    // (test fleets use names such as www1.example.org that do not resolve).
    if let Some(h) = given.filter(|h| h.contains('.')) {
        return normalize(h);
    }
    let name = given.map_or_else(system_hostname, str::to_string);
    let resolv = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let name = qualify(&name, conf_domain, &resolv);
    if !worth_a_lookup(&name) {
        return name;
    }
    match cname_with_timeout(&name, LOOKUP_TIMEOUT) {
        Some(c) => c,
        None => name,
    }
}

/// Special-use names (RFC 6761, and mDNS's .local) never have a CNAME in
/// DNS; asking would only cost a timeout on a host without a resolver.
pub fn worth_a_lookup(name: &str) -> bool {
    const SPECIAL: [&str; 5] = ["invalid", "test", "example", "localhost", "local"];
    let tld = name.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    !name.is_empty() && !SPECIAL.contains(&tld)
}

/// The kernel's hostname, lower-cased; "localhost" if it cannot be read.
pub fn system_hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|s| s.into_string().ok())
        .map(|s| normalize(&s))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// Lower-case, trimmed, without the root's trailing dot.
fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Appends a domain to a name without a dot: `domain` if given and not
/// empty, else resolv.conf's search domain, else nothing.
pub fn qualify(name: &str, domain: Option<&str>, resolv_conf_text: &str) -> String {
    let name = normalize(name);
    if name.contains('.') || name.is_empty() {
        return name;
    }
    let domain = domain
        .map(|d| d.trim().trim_matches('.').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .or_else(|| resolv_search(resolv_conf_text));
    match domain {
        Some(d) => format!("{name}.{d}"),
        None => name,
    }
}

/// The first domain of resolv.conf's search list. As in glibc, `search`
/// and `domain` lines override each other and the last one wins; comments
/// start with `#` or `;`. A lone "." (the root) counts as none.
pub fn resolv_search(text: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.split(['#', ';']).next().unwrap_or("");
        let mut words = line.split_whitespace();
        if let Some("search" | "domain") = words.next() {
            found = words.map(|w| w.trim_matches('.').to_ascii_lowercase()).find(|w| !w.is_empty());
        }
    }
    found
}

/// Runs the lookup on a helper thread so a dead resolver cannot stall the
/// caller longer than `timeout`. An answer in time joins the thread, so none
/// is left when the caller forks (daemonize() expects a single thread); only
/// on timeout is it left to finish on its own (it owns nothing we need).
fn cname_with_timeout(name: &str, timeout: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    let owned = name.to_string();
    let handle = std::thread::Builder::new()
        .name("hostname-lookup".into())
        .spawn(move || {
            let _ = tx.send(canonical_name(&owned));
        })
        .ok()?;
    let answer = rx.recv_timeout(timeout).ok()?;
    let _ = handle.join();
    answer
}

/// getaddrinfo(AI_CANONNAME): the name's canonical name when it resolves
/// and the answer is fully qualified; None otherwise.
fn canonical_name(name: &str) -> Option<String> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: a zeroed addrinfo is the documented "no hints" value; only
    // the fields set below are read by getaddrinfo.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_flags = libc::AI_CANONNAME;
    hints.ai_family = libc::AF_UNSPEC;
    hints.ai_socktype = libc::SOCK_STREAM;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: valid NUL-terminated name, valid hints, out-pointer to a
    // local; the result list is freed exactly once below.
    let rc = unsafe { libc::getaddrinfo(c_name.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    // SAFETY: res is a valid list from getaddrinfo; ai_canonname of the
    // first entry is either null or a NUL-terminated string owned by it,
    // copied out before freeaddrinfo.
    let canon = unsafe {
        let p = (*res).ai_canonname;
        let s =
            if p.is_null() { None } else { Some(CStr::from_ptr(p).to_string_lossy().into_owned()) };
        libc::freeaddrinfo(res);
        s
    };
    canon.map(|c| normalize(&c)).filter(|c| c.contains('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    const RESOLV: &str = "# generated\nnameserver 127.0.0.53\nsearch Corp.Example.COM. lab.example.com\noptions edns0\n";

    #[test]
    fn resolv_search_takes_the_first_domain_of_the_last_line() {
        assert_eq!(resolv_search(RESOLV).as_deref(), Some("corp.example.com"));
        assert_eq!(resolv_search("domain a.org\nsearch b.org c.org\n").as_deref(), Some("b.org"));
        assert_eq!(resolv_search("search b.org\ndomain a.org\n").as_deref(), Some("a.org"));
        assert_eq!(resolv_search("nameserver 1.1.1.1\n"), None);
        assert_eq!(resolv_search("search .\n"), None);
        assert_eq!(resolv_search("#search x.org\n; domain y.org\n"), None);
        assert_eq!(resolv_search("search\tx.org # comment\n").as_deref(), Some("x.org"));
        assert_eq!(resolv_search("searchx y.org\n"), None);
    }

    #[test]
    fn qualify_appends_conf_domain_then_resolv() {
        assert_eq!(qualify("WWW1", Some("Example.org"), RESOLV), "www1.example.org");
        assert_eq!(qualify("www1", None, RESOLV), "www1.corp.example.com");
        assert_eq!(qualify("www1", Some(" "), RESOLV), "www1.corp.example.com");
        assert_eq!(qualify("www1", None, ""), "www1");
        assert_eq!(qualify("Www1.Other.NET.", Some("example.org"), RESOLV), "www1.other.net");
        assert_eq!(qualify("db", Some(".example.org."), ""), "db.example.org");
    }

    #[test]
    fn dotted_conf_name_is_used_without_lookup() {
        let t = Instant::now();
        assert_eq!(canonical(Some("WWW1.Example.ORG"), Some("x.net")), "www1.example.org");
        assert_eq!(canonical(Some(" db7.test. "), None), "db7.test");
        assert!(t.elapsed() < Duration::from_millis(100), "{:?}", t.elapsed());
    }

    #[test]
    fn threaded_lookup_drops_an_unqualified_answer() {
        // localhost comes from /etc/hosts (no DNS) and its answer has no dot.
        assert_eq!(cname_with_timeout("localhost", Duration::from_secs(2)), None);
    }

    #[test]
    fn special_use_names_are_not_looked_up() {
        assert!(worth_a_lookup("www1.example.org"));
        assert!(worth_a_lookup("vm"));
        assert!(!worth_a_lookup("vm.hbmon-test.invalid"));
        assert!(!worth_a_lookup("db.test"));
        assert!(!worth_a_lookup("printer.local."));
        assert!(!worth_a_lookup("localhost"));
        assert!(!worth_a_lookup(""));
    }

    #[test]
    fn localhost_canonical_name_is_not_qualified_so_ignored() {
        // /etc/hosts answers "localhost" with itself, which has no dot.
        assert_eq!(canonical_name("localhost"), None);
        assert_eq!(canonical_name("bad\0name"), None);
    }

    #[test]
    fn system_hostname_is_lower_case_and_not_empty() {
        let h = system_hostname();
        assert!(!h.is_empty());
        assert_eq!(h, h.to_ascii_lowercase());
    }

    #[test]
    fn canonical_never_fails() {
        // .invalid is special-use: no query is sent, the qualified name stays.
        let h = canonical(None, Some("hbmon-test.invalid"));
        let sys = system_hostname();
        if sys.contains('.') {
            assert!(!h.is_empty());
        } else {
            assert_eq!(h, format!("{sys}.hbmon-test.invalid"));
        }
    }
}
