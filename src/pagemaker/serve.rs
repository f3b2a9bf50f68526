//! The dashboard's sockets: one accept thread, a bounded queue and a fixed
//! pool of worker threads, one request per connection (HTTP/1.1 with
//! `Connection: close`). Owns the limits: head and body size, a deadline
//! for the whole request (slow clients are cut off), the number of
//! connections waiting (the rest get 503 at once).
//!
//! Why not tiny_http (which DESIGN.md names): it starts a thread per open
//! connection without bound, cannot time out a client that sends nothing,
//! and stops accepting for good on the first accept error (EMFILE); a
//! dashboard facing a network needs all three, in ~200 lines.

use super::web::{Method, Req, Resp};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Worker threads (rendering is fast; the fetcher's single flight keeps
/// the server's load at one CLIENTS per interval whatever their number).
pub const POOL: usize = 4;
/// Connections accepted but not yet taken by a worker.
pub const QUEUE: usize = 64;
/// Request line + headers.
pub const MAX_HEAD: usize = 16 << 10;
/// Longest URL accepted (path + query).
pub const MAX_URL: usize = 4096;
/// Largest request body (forms are small).
pub const MAX_BODY: usize = 16 << 10;
/// The whole request must arrive within this.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed request head.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// Names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Head {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// Parses the head (everything before the blank line).
pub fn parse_head(raw: &[u8]) -> Result<Head, (u16, &'static str)> {
    let text = std::str::from_utf8(raw).map_err(|_| (400, "request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or("");
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err((400, "bad request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return Err((400, "bad request line"));
    }
    if target.len() > MAX_URL {
        return Err((414, "URL too long"));
    }
    if !target.starts_with('/') {
        return Err((400, "bad request target"));
    }
    let mut headers = Vec::new();
    for l in lines.filter(|l| !l.is_empty()) {
        let Some((k, v)) = l.split_once(':') else { return Err((400, "bad header line")) };
        if headers.len() >= 100 {
            return Err((431, "too many headers"));
        }
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Ok(Head { method: method.to_string(), target: target.to_string(), headers })
}

/// The server while it runs; dropping it stops the threads.
pub struct Running {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread with a connection of our own.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

pub type Handler = Arc<dyn Fn(&Req) -> Resp + Send + Sync>;

pub fn serve(addr: SocketAddr, handler: Handler) -> crate::error::Result<Running> {
    use socket2::{Domain, Socket, Type};
    let io =
        |e: std::io::Error| crate::error::Error::io(format!("listen on {addr} (dashboard)"), e);
    let dom = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(dom, Type::STREAM, None).map_err(io)?;
    s.set_reuse_address(true).map_err(io)?;
    s.bind(&addr.into()).map_err(io)?;
    s.listen(128).map_err(io)?;
    let listener: TcpListener = s.into();
    let bound = listener.local_addr().map_err(io)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = sync_channel::<TcpStream>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name)
            .spawn(f)
            .map_err(|e| crate::error::Error::io("spawn a dashboard thread", e))
    };
    let mut threads = Vec::new();
    for i in 0..POOL {
        let (rx, h, stop) = (rx.clone(), handler.clone(), stop.clone());
        threads.push(spawn(format!("http-{i}"), Box::new(move || worker(&rx, &h, &stop)))?);
    }
    let st = stop.clone();
    threads.push(spawn("http-accept".into(), Box::new(move || accept(listener, tx, &st)))?);
    Ok(Running { addr: bound, stop, threads })
}

fn accept(listener: TcpListener, tx: std::sync::mpsc::SyncSender<TcpStream>, stop: &AtomicBool) {
    let mut last_err = Instant::now() - Duration::from_secs(60);
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((s, _)) => match tx.try_send(s) {
                Ok(()) => {}
                Err(TrySendError::Full(mut s)) => {
                    let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
                    let _ =
                        s.write_all(&response(&Resp::new(503, super::web::TEXT, "busy\n"), false));
                }
                Err(TrySendError::Disconnected(_)) => return,
            },
            Err(e) => {
                // EMFILE and friends: keep serving once it passes.
                if last_err.elapsed() > Duration::from_secs(10) {
                    log::error!("dashboard: accept: {e}");
                    last_err = Instant::now();
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
    // Dropping `tx` ends the workers once the queue is drained.
}

fn worker(rx: &Mutex<Receiver<TcpStream>>, h: &Handler, stop: &AtomicBool) {
    loop {
        let next = match rx.lock() {
            Ok(g) => g.recv(),
            Err(_) => return,
        };
        let Ok(s) = next else { return };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        one(s, h);
    }
}

/// Reads until the deadline, at most `max` bytes in all.
fn read_some(s: &mut TcpStream, buf: &mut Vec<u8>, deadline: Instant) -> std::io::Result<usize> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(std::io::ErrorKind::TimedOut.into());
    }
    s.set_read_timeout(Some(left))?;
    let mut chunk = [0u8; 4096];
    let n = s.read(&mut chunk)?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn one(mut s: TcpStream, h: &Handler) {
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let _ = s.set_write_timeout(Some(CLIENT_TIMEOUT));
    let peer = s.peer_addr().ok().map(|a| a.ip());
    let mut buf = Vec::new();
    let end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > MAX_HEAD {
            return fail(&mut s, 431, "request head too large");
        }
        match read_some(&mut s, &mut buf, deadline) {
            Ok(0) | Err(_) => return, // gone, or too slow: nothing to answer
            Ok(_) => {}
        }
    };
    let head = match parse_head(&buf[..end]) {
        Ok(h) => h,
        Err((code, why)) => return fail(&mut s, code, why),
    };
    let method = match head.method.as_str() {
        "GET" | "HEAD" => Method::Get,
        "POST" => Method::Post,
        _ => return fail(&mut s, 405, "method not allowed"),
    };
    if head.header("transfer-encoding").is_some() {
        return fail(&mut s, 411, "send a Content-Length");
    }
    let len = match head.header("content-length").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) if n <= MAX_BODY => n,
        Some(Ok(_)) => return fail(&mut s, 413, "request body too large"),
        Some(Err(_)) => return fail(&mut s, 400, "bad Content-Length"),
    };
    let mut body = buf.split_off(end + 4);
    while body.len() < len {
        match read_some(&mut s, &mut body, deadline) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
    body.truncate(len);
    let mut req = Req::get(&head.target, super::web::now_wall());
    req.method = method;
    req.peer = peer;
    req.cookie = head.header("cookie").map(str::to_string);
    let form = head
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    if method == Method::Post && form {
        req.form = super::web::parse_form(&String::from_utf8_lossy(&body));
    }
    let resp = h(&req);
    let _ = s.write_all(&response(&resp, head.method == "HEAD"));
    let _ = s.shutdown(std::net::Shutdown::Write);
}

fn fail(s: &mut TcpStream, code: u16, why: &str) {
    let _ = s.write_all(&response(&Resp::new(code, super::web::TEXT, format!("{why}\n")), false));
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        204 => "No Content",
        303 => "See Other",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// The bytes of an answer, with the headers every answer carries.
pub fn response(r: &Resp, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\
         X-Content-Type-Options: nosniff\r\nReferrer-Policy: same-origin\r\nX-Frame-Options: DENY\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'\r\n\
         Cache-Control: no-store\r\n",
        r.status,
        reason(r.status),
        r.ctype,
        r.body.len()
    );
    for (k, v) in &r.headers {
        // A header value never carries a line break (no response splitting).
        if !k.contains(['\r', '\n', ':']) && !v.contains(['\r', '\n']) {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    out.push_str("\r\n");
    let mut b = out.into_bytes();
    if !head_only {
        b.extend_from_slice(&r.body);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_and_bad_ones_are_refused() {
        let h = parse_head(b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nCookie: s=1").unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str()), ("GET", "/a?b=1"));
        assert_eq!(h.header("cookie"), Some("s=1"));
        assert_eq!(parse_head(b"GET / HTTP/1.1 x").unwrap_err().0, 400);
        assert_eq!(parse_head(b"GET http://x/ HTTP/1.1").unwrap_err().0, 400);
        assert_eq!(parse_head(b"GET / SMTP").unwrap_err().0, 400);
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nnocolon").unwrap_err().0, 400);
        assert_eq!(parse_head(&[0xff, 0xfe]).unwrap_err().0, 400);
        let long = format!("GET /{} HTTP/1.1", "a".repeat(MAX_URL));
        assert_eq!(parse_head(long.as_bytes()).unwrap_err().0, 414);
        let many: String = (0..101).map(|i| format!("\r\nh{i}: v")).collect();
        assert_eq!(parse_head(format!("GET / HTTP/1.1{many}").as_bytes()).unwrap_err().0, 431);
    }

    #[test]
    fn answers_cannot_be_split() {
        let r = Resp::new(303, "text/plain", "x").header("Location", "/a\r\nSet-Cookie: evil=1");
        let b = String::from_utf8(response(&r, false)).unwrap();
        assert!(!b.contains("evil"), "{b}");
        assert!(b.starts_with("HTTP/1.1 303 See Other\r\n") && b.ends_with("\r\n\r\nx"));
        assert!(!String::from_utf8(response(&r, true)).unwrap().ends_with('x'), "HEAD: no body");
    }
}
