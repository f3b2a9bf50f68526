//! Turning addresses given on the command line (`127.0.0.2`,
//! `srv.example.org`, `[::1]:50006`) into socket addresses, for the CLI.
//! These block in the resolver: the daemon never calls them; it reads the
//! names table `names.rs` fills off the loop.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// `address` with `port`; an address that is not an IP is looked up once.
pub fn resolve(address: &str, port: u16) -> Option<SocketAddr> {
    let a = address.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, port));
    }
    (a, port).to_socket_addrs().ok()?.next()
}

/// Parses `host`, `host:port`, `ip`, `[v6]:port` with a default port.
pub fn parse_host_port(s: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return Some(sa);
    }
    if let Some((h, p)) = s.rsplit_once(':') {
        if !h.contains(':') {
            if let Ok(p) = p.parse::<u16>() {
                return resolve(h, p);
            }
        }
    }
    resolve(s, default_port)
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
}
