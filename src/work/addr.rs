//! Work and conf addresses (`127.0.0.2`, `srv.example.org`, `[::1]:7001`):
//! `split_host_port` reads one (pure), `resolve`/`parse_host_port` turn it
//! into a socket address, which for a name is a blocking `getaddrinfo`
//! (not for the event-loop thread: names are being resolved on a helper
//! and installed through the waker, issue 14), and `canonical_ip` makes
//! IPv4-mapped IPv6 addresses compare as IPv4.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// `address` with `port`; an address that is not an IP is looked up once.
pub fn resolve(address: &str, port: u16) -> Option<SocketAddr> {
    let a = address.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    (a, port).to_socket_addrs().ok()?.next()
}

/// Splits `host`, `host:port`, `ip`, `v6`, `[v6]`, `[v6]:port` into the
/// address (brackets off) and the port, if one is named. Pure: the one
/// reading of a conf or work address with an optional port.
pub fn split_host_port(s: &str) -> (String, Option<u16>) {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return (sa.ip().to_string(), Some(sa.port()));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse::<u16>() {
            Ok(p) => (h.to_string(), Some(p)),
            Err(_) => (s.to_string(), None),
        },
        _ => (s.trim_matches(['[', ']']).to_string(), None),
    }
}

/// Parses `host`, `host:port`, `ip`, `[v6]:port` with a default port.
pub fn parse_host_port(s: &str, default_port: u16) -> Option<SocketAddr> {
    let (h, p) = split_host_port(s);
    resolve(&h, p.unwrap_or(default_port))
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_forms() {
        assert_eq!(parse_host_port("127.0.0.2", 5), Some("127.0.0.2:5".parse().unwrap()));
        assert_eq!(parse_host_port("127.0.0.2:7", 5), Some("127.0.0.2:7".parse().unwrap()));
        assert_eq!(parse_host_port("[::1]:7", 5), Some("[::1]:7".parse().unwrap()));
        assert_eq!(parse_host_port("::1", 5), Some("[::1]:5".parse().unwrap()));
        assert_eq!(parse_host_port("localhost:9", 5).map(|a| a.port()), Some(9));
    }

    #[test]
    fn splits_forms() {
        let s = |t: &str| split_host_port(t);
        assert_eq!(s("srv.example.org"), ("srv.example.org".into(), None));
        assert_eq!(s("srv.example.org:7001"), ("srv.example.org".into(), Some(7001)));
        assert_eq!(s("127.0.0.2:7"), ("127.0.0.2".into(), Some(7)));
        assert_eq!(s("[::1]:7"), ("::1".into(), Some(7)));
        assert_eq!(s("[::1]"), ("::1".into(), None));
        assert_eq!(s("::1"), ("::1".into(), None));
        assert_eq!(s("srv:notaport"), ("srv:notaport".into(), None));
    }
}
