//! The dashboard's HTTP side: a tiny_http server on `bind:http_port`, a
//! small fixed pool of threads taking its requests, the limits (URL and
//! body size, methods, slow clients) and the routing table. Pages, SVG and
//! JSON are rendered by the other files; this one only parses requests
//! into [`Req`] and writes [`Resp`]s back.

use super::{api, pages, views, Shared};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Threads answering requests (rendering is fast; the fetcher's single
/// flight keeps the server's load at one CLIENTS per interval).
pub const POOL: usize = 4;
/// Longest URL accepted (path + query).
pub const MAX_URL: usize = 4096;
/// Largest request body (forms are small).
pub const MAX_BODY: usize = 16 << 10;
/// A client must send each part of its request within this: sockets
/// accepted by the listener inherit it (Linux copies SO_RCVTIMEO/SNDTIMEO),
/// so a slow or silent client frees its connection.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

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
    crate::notify::message::pct_encode(s)
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

/// The routing table: one arm per page.
pub fn route(sh: &Shared, req: &Req) -> Resp {
    let segs: Vec<&str> = req.segs.iter().map(String::as_str).collect();
    let user = super::views::session_user(sh, req);
    if user.is_none() && sh.site().part.login_required && !matches!(segs.as_slice(), ["login"]) {
        return Resp::redirect("/login");
    }
    let u = user.as_ref();
    match (req.method, segs.as_slice()) {
        (Method::Get, []) => pages::problems(sh, req, u),
        (Method::Get, ["hosts"]) => pages::hosts(sh, req, u),
        (Method::Get, ["host", h]) => pages::host(sh, req, u, h),
        (Method::Get, ["item", i]) => pages::item(sh, req, u, i),
        (Method::Get, ["events"]) => views::events(sh, req, u),
        (Method::Get, ["alerts"]) => views::alerts(sh, req, u),
        (Method::Get, ["graph", h, i]) => views::graph(sh, req, u, h, Some(i)),
        (Method::Get, ["graph", h]) => views::graph(sh, req, u, h, None),
        (Method::Get, ["svg", h, i]) => views::svg(sh, req, u, h, Some(i)),
        (Method::Get, ["svg", h]) => views::svg(sh, req, u, h, None),
        (Method::Get, ["login"]) => views::login_page(sh, req, None),
        (Method::Post, ["login"]) => views::login(sh, req),
        (Method::Post, ["logout"]) => views::logout(sh, req),
        (Method::Post, ["ack"]) => views::change(sh, req, u, "ack"),
        (Method::Post, ["silence"]) => views::change(sh, req, u, "silence"),
        (Method::Get, ["metrics"]) => views::metrics(sh, req, u),
        (_, ["api", "v1", rest @ ..]) => api::route(sh, req, u, rest),
        (Method::Get, ["favicon.ico"]) => Resp::new(204, TEXT, ""),
        (Method::Get, _) => pages::not_found(sh, req, u, "No such page."),
        (Method::Post, _) => Resp::new(405, TEXT, "method not allowed\n"),
    }
}

/// The server while it runs; dropping it stops the pool.
pub struct Running {
    pub addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for _ in &self.threads {
            self.server.unblock();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub fn serve(addr: SocketAddr, sh: Arc<Shared>) -> crate::error::Result<Running> {
    use socket2::{Domain, Socket, Type};
    let io =
        |e: std::io::Error| crate::error::Error::io(format!("listen on {addr} (dashboard)"), e);
    let dom = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(dom, Type::STREAM, None).map_err(io)?;
    s.set_reuse_address(true).map_err(io)?;
    s.bind(&addr.into()).map_err(io)?;
    s.listen(128).map_err(io)?;
    s.set_read_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    s.set_write_timeout(Some(CLIENT_TIMEOUT)).map_err(io)?;
    let listener: std::net::TcpListener = s.into();
    let bound = listener.local_addr().map_err(io)?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| crate::error::Error::Runtime(format!("dashboard on {addr}: {e}")))?;
    let server = Arc::new(server);
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for i in 0..POOL {
        let (server, stop, sh) = (server.clone(), stop.clone(), sh.clone());
        let t = std::thread::Builder::new()
            .name(format!("http-{i}"))
            .spawn(move || worker(&server, &stop, &sh))
            .map_err(|e| crate::error::Error::io("spawn a dashboard thread", e))?;
        threads.push(t);
    }
    Ok(Running { addr: bound, server, stop, threads })
}

fn worker(server: &tiny_http::Server, stop: &AtomicBool, sh: &Shared) {
    while !stop.load(Ordering::SeqCst) {
        match server.recv_timeout(Duration::from_secs(1)) {
            Ok(Some(rq)) => answer(sh, rq),
            Ok(None) => {}
            Err(e) => {
                log::debug!("dashboard: {e}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

/// Checks the limits, builds the [`Req`], routes, writes the answer.
fn answer(sh: &Shared, mut rq: tiny_http::Request) {
    let url = rq.url().to_string();
    let method = match rq.method() {
        tiny_http::Method::Get | tiny_http::Method::Head => Some(Method::Get),
        tiny_http::Method::Post => Some(Method::Post),
        _ => None,
    };
    let head = *rq.method() == tiny_http::Method::Head;
    let resp = if url.len() > MAX_URL {
        Resp::new(414, TEXT, "URL too long\n")
    } else if let Some(method) = method {
        let mut body = Vec::new();
        let too_big = rq.body_length().is_some_and(|n| n > MAX_BODY);
        let read = !too_big && {
            use std::io::Read;
            let r = rq.as_reader().take(MAX_BODY as u64 + 1).read_to_end(&mut body);
            r.is_ok() && body.len() <= MAX_BODY
        };
        if method == Method::Post && !read {
            Resp::new(413, TEXT, "request body too large or unreadable\n")
        } else {
            let mut req = Req::get(&url, now_wall());
            req.method = method;
            req.peer = rq.remote_addr().map(|a| a.ip());
            req.cookie = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Cookie"))
                .map(|h| h.value.as_str().to_string());
            let is_form = rq.headers().iter().any(|h| {
                h.field.equiv("Content-Type")
                    && h.value.as_str().starts_with("application/x-www-form-urlencoded")
            });
            if method == Method::Post && is_form {
                req.form = parse_form(&String::from_utf8_lossy(&body));
            }
            route(sh, &req)
        }
    } else {
        Resp::new(405, TEXT, "method not allowed\n")
    };
    let len = resp.body.len();
    let body = if head { Vec::new() } else { resp.body };
    let mut out = tiny_http::Response::from_data(body).with_status_code(resp.status);
    let mut hs = vec![
        ("Content-Type".to_string(), resp.ctype.to_string()),
        ("X-Content-Type-Options".into(), "nosniff".into()),
        ("Referrer-Policy".into(), "same-origin".into()),
        ("X-Frame-Options".into(), "DENY".into()),
        // Our only script is inline and ours; nothing may load from elsewhere.
        (
            "Content-Security-Policy".into(),
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'".into(),
        ),
        ("Cache-Control".into(), "no-store".into()),
    ];
    if head {
        hs.push(("X-Content-Length".into(), len.to_string()));
    }
    hs.extend(resp.headers);
    for (k, v) in hs {
        if let Ok(h) = tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()) {
            out.add_header(h);
        }
    }
    if let Err(e) = rq.respond(out) {
        log::debug!("dashboard: answer not sent: {e}");
    }
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
