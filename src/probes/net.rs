//! `tcp:HOST:PORT` and `http:URL` items: connect or fetch, value = time in ms.
//!
//! Both block (name resolution, connect, the HTTP exchange) for up to the
//! timeout, so they run on a helper thread. A `tcp:` item whose host is an
//! IP address never comes here: the client connects to it from the event
//! loop without blocking (`client::tcp_target`); only names, which need a
//! lookup, use `tcp` below.

use super::Sample;
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// `HOST:PORT` or `[V6]:PORT` -> (host, port).
pub fn split_host_port(arg: &str) -> Result<(String, u16), String> {
    let (host, port) = arg.rsplit_once(':').ok_or_else(|| format!("'{arg}' has no :PORT"))?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    if host.is_empty() {
        return Err(format!("'{arg}' has no host"));
    }
    let port = port.parse::<u16>().map_err(|_| format!("bad port '{port}' in '{arg}'"))?;
    Ok((host.to_string(), port))
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Connect time to `HOST:PORT` in ms; trying each resolved address in turn
/// within the one timeout.
pub fn tcp(item: &str, arg: &str, timeout: Duration) -> Sample {
    let (host, port) = match split_host_port(arg) {
        Ok(hp) => hp,
        Err(e) => return Sample::failed(item, e),
    };
    let started = Instant::now();
    let addrs: Vec<SocketAddr> = match (host.as_str(), port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => return Sample::failed(item, format!("cannot resolve {host}: {e}")),
    };
    let mut last = format!("no address for {host}");
    for addr in addrs {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            last = format!("timed out after {}", super::exec::fmt_secs(timeout));
            break;
        }
        let t0 = Instant::now();
        match TcpStream::connect_timeout(&addr, left) {
            Ok(_) => return Sample::ok(item, ms(t0.elapsed()), format!("connected to {addr}")),
            Err(e) => last = format!("connect {addr}: {e}"),
        }
    }
    Sample::failed(item, last)
}

/// The URL an `http:` item fetches: `http:https://x/`, `http:http://x/` and
/// `http://x/` itself (split at the first colon: arg `//x/`) all work; a
/// bare `http:x/y` means `http://x/y`.
pub fn url_of(family: &str, arg: &str) -> String {
    if arg.starts_with("http://") || arg.starts_with("https://") {
        arg.to_string()
    } else if arg.starts_with("//") {
        format!("{family}:{arg}")
    } else {
        format!("http://{arg}")
    }
}

/// GET the URL (redirects followed); value = response time in ms. A status
/// outside 2xx/3xx is an error `HTTP 503`.
pub fn http(item: &str, url: &str, timeout: Duration) -> Sample {
    let agent =
        ureq::AgentBuilder::new().timeout(timeout).redirects(5).user_agent(crate::VERSION).build();
    let t0 = Instant::now();
    match agent.get(url).call() {
        Ok(resp) => {
            let status = resp.status();
            let elapsed = ms(t0.elapsed());
            if (200..400).contains(&status) {
                Sample::ok(item, elapsed, format!("HTTP {status}"))
            } else {
                Sample::failed(item, format!("HTTP {status}"))
            }
        }
        Err(ureq::Error::Status(code, _)) => Sample::failed(item, format!("HTTP {code}")),
        Err(ureq::Error::Transport(t)) => Sample::failed(item, format!("GET {url}: {t}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port() {
        assert_eq!(split_host_port("db1:5432"), Ok(("db1".into(), 5432)));
        assert_eq!(split_host_port("[::1]:22"), Ok(("::1".into(), 22)));
        assert!(split_host_port("db1").is_err());
        assert!(split_host_port(":80").is_err());
        assert!(split_host_port("h:99999").is_err());
    }

    #[test]
    fn urls() {
        assert_eq!(url_of("http", "https://x/y"), "https://x/y");
        assert_eq!(url_of("http", "//x/y"), "http://x/y");
        assert_eq!(url_of("https", "//x/y"), "https://x/y");
        assert_eq!(url_of("http", "x:8080/y"), "http://x:8080/y");
    }
}
