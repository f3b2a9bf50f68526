//! A minimal HTTP/1.1 client for the dashboard tests: one request per
//! connection, from a chosen source address (the login throttle counts per
//! source), every header kept (several `Set-Cookie`s), chunked bodies
//! decoded. No redirects followed: the tests look at them.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub struct Web {
    pub addr: SocketAddr,
    pub src: Ipv4Addr,
}

/// `%`-encodes a form value.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn form(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn dechunk(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = b;
    while let Some(nl) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..nl])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(n) = size.filter(|n| *n > 0) else { break };
        let start = nl + 2;
        if rest.len() < start + n {
            out.extend_from_slice(&rest[start..]);
            break;
        }
        out.extend_from_slice(&rest[start..start + n]);
        rest = &rest[(start + n + 2).min(rest.len())..];
    }
    out
}

impl Web {
    pub fn new(addr: SocketAddr, src: Ipv4Addr) -> Web {
        Web { addr, src }
    }

    /// One request; `None` when the dashboard does not answer.
    pub fn try_request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Option<&str>,
    ) -> Option<Answer> {
        use socket2::{Domain, Socket, Type};
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).ok()?;
        s.bind(&SocketAddr::new(IpAddr::V4(self.src), 0).into()).ok()?;
        s.connect_timeout(&self.addr.into(), Duration::from_secs(5)).ok()?;
        let mut s: TcpStream = s.into();
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: hbmon-test\r\n",
            self.addr
        );
        if let Some(c) = cookie {
            req.push_str(&format!("Cookie: {c}\r\n"));
        }
        let body = body.unwrap_or("");
        if method == "POST" {
            req.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).ok()?;
        let mut raw = Vec::new();
        let _ = s.read_to_end(&mut raw);
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&raw[..split]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut body = raw[split + 4..].to_vec();
        let chunked = headers.iter().any(|(k, v)| {
            k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        if chunked {
            body = dechunk(&body);
        }
        Some(Answer { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        cookie: Option<&str>,
        body: Option<&str>,
    ) -> Answer {
        self.try_request(method, path, cookie, body)
            .unwrap_or_else(|| panic!("no HTTP answer from {} to {method} {path}", self.addr))
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Answer {
        self.request("GET", path, cookie, None)
    }

    pub fn post(&self, path: &str, cookie: Option<&str>, pairs: &[(&str, &str)]) -> Answer {
        self.request("POST", path, cookie, Some(&form(pairs)))
    }
}

/// The `name=value` part of a `Set-Cookie` header (what a browser sends back).
pub fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap_or("").trim().to_string()
}

/// The value of the first `name="csrf" value="..."` hidden input in a page.
pub fn csrf_in(page: &str) -> Option<String> {
    let at = page.find("name=\"csrf\"")?;
    let rest = &page[at..];
    let v = rest.find("value=\"")? + 7;
    let end = rest[v..].find('"')?;
    Some(rest[v..v + end].to_string()).filter(|s| !s.is_empty())
}
