//! The bottom of the dashboard: requests and answers as values ([`Req`],
//! [`Resp`]), content types, URL and form encoding, and the formatting every
//! renderer shares (numbers, units, level badges, links). Depends on nothing
//! of the dashboard but `Site` (mod.rs).

use super::Site;
use maud::{html, Markup};
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// A request as the renderers see it.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: Method,
    /// Percent-decoded path segments (`/host/a.b` -> `["host", "a.b"]`).
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub cookie: Option<String>,
    pub peer: Option<IpAddr>,
    pub now: f64,
}

impl Req {
    pub fn get(path_and_query: &str, now: f64) -> Req {
        let (path, q) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
        Req {
            method: Method::Get,
            segs: path.split('/').filter(|s| !s.is_empty()).map(pct_decode).collect(),
            query: parse_form(q),
            form: Vec::new(),
            cookie: None,
            peer: None,
            now,
        }
    }

    /// The first value of a query parameter.
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    /// Every value of a query parameter (repeated `item=` on graphs).
    pub fn qs(&self, k: &str) -> Vec<&str> {
        self.query.iter().filter(|(a, _)| a == k).map(|(_, v)| v.as_str()).collect()
    }

    pub fn f(&self, k: &str) -> Option<&str> {
        self.form.iter().find(|(a, _)| a == k).map(|(_, v)| v.as_str())
    }
}

/// An answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub ctype: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

pub const HTML: &str = "text/html; charset=utf-8";
pub const JSON: &str = "application/json";
pub const SVG: &str = "image/svg+xml";
pub const TEXT: &str = "text/plain; charset=utf-8";

impl Resp {
    pub fn new(status: u16, ctype: &'static str, body: impl Into<Vec<u8>>) -> Resp {
        Resp { status, ctype, body: body.into(), headers: Vec::new() }
    }
    pub fn redirect(to: &str) -> Resp {
        let mut r = Resp::new(303, TEXT, format!("see {to}\n"));
        r.headers.push(("Location".into(), to.to_string()));
        r
    }
    pub fn header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
}

/// `%41` -> `A`, `+` -> space (forms); bad escapes stay as they are.
pub fn pct_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A path segment or query value, encoded for a URL.
pub fn enc(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

pub fn parse_form(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (pct_decode(k), pct_decode(v))
        })
        .collect()
}

pub fn now_wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A level badge: colour and name together.
pub fn lv(site: &Site, level: Option<&str>) -> Markup {
    match level {
        Some(l) => {
            let c = site.colour(site.level_index(l));
            html! { span class=(format!("lv l{c}")) { (l) } }
        }
        None => html! { span.lv.lna { "none" } },
    }
}

/// A reachability state badge, coloured as the level it stands for.
pub fn reach(site: &Site, state: &str) -> Markup {
    let cls = match site.reach_index(state) {
        Some(i) => format!("lv l{}", site.colour(i)),
        None => "lv lna".into(),
    };
    html! { span class=(cls) { (state) } }
}

/// The unit of an item, by its probe (DESIGN.md section 5).
pub fn unit(item: &str) -> &'static str {
    let base = item.split(':').next().unwrap_or(item);
    match base {
        "cpu_pct" | "mem_used" | "swap_used" | "disk_used" | "inode_used" => "%",
        "disk_avail" => "GiB",
        "uptime" => "s",
        "net_rx" | "net_tx" => "B/s",
        "tcp" | "http" | "ping" | "rtt" => "ms",
        _ => "",
    }
}

pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

pub fn host_link(h: &str) -> String {
    format!("/host/{}", enc(h))
}
pub fn graph_link(h: &str, i: &str) -> String {
    format!("/graph/{}/{}", enc(h), enc(i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse() {
        let r = Req::get("/item/disk_used%3A%2F?ival=D&item=a&item=b+c&bad=%zz", 1.0);
        assert_eq!(r.segs, vec!["item", "disk_used:/"]);
        assert_eq!(r.q("ival"), Some("D"));
        assert_eq!(r.qs("item"), vec!["a", "b c"]);
        assert_eq!(r.q("bad"), Some("%zz"));
        assert_eq!(r.q("none"), None);
        assert_eq!(pct_decode("%"), "%");
        assert_eq!(pct_decode("a%4"), "a%4");
        assert_eq!(pct_decode("%e2%82%ac"), "€");
        assert_eq!(enc("a b/<"), "a%20b%2F%3C");
    }
}
