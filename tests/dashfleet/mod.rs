//! The dashboard test fleet: a server, a pagemaker on another host and
//! two clients (one with a hostile probe), plus a raw HTTP client. Shared
//! by the dashboard and browser tests.
#![allow(dead_code)]

use crate::common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

pub const XSS: &str = "<script>alert(1)</script>";

/// Fast intervals: heartbeats every second, down after ~4 s, reports every 2 s.
pub const FAST: &str =
    "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1s\nival_send_report 2s\n";

pub struct Web {
    pub addr: SocketAddr,
}

/// A raw HTTP/1.1 exchange (the dashboard closes after each answer).
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => return (0, String::new(), e.to_string()),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new(), String::new());
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

impl Web {
    pub fn get(&self, path: &str) -> (u16, String) {
        let (st, _, b) = http(self.addr, "GET", path, "", "");
        (st, b)
    }
    /// GET that must answer 200.
    pub fn ok(&self, path: &str) -> String {
        let (st, b) = self.get(path);
        assert_eq!(st, 200, "GET {path}: {b}");
        b
    }
    pub fn json(&self, path: &str) -> Value {
        let b = self.ok(path);
        serde_json::from_str(&b).unwrap_or_else(|e| panic!("{path}: {e}: {b}"))
    }
}

/// srv (server), web (pagemaker), c1 and c2 (clients); c1 runs a hostile
/// probe. Started, with the dashboard answering.
pub fn dash_fleet(work_extra: &str) -> (Fleet, Web) {
    let work = format!(
        "pmaker web\n{FAST}probe c1 xss\nfit probe:xss sick >0\nget all cpu_load uptime\n\
         channel cmd command /bin/true\nuser ops cmd\nalert all * sick ops\n{work_extra}"
    );
    let mut f = Fleet::new(&["srv", "web", "c1", "c2"], &work, "");
    f.mkwork();
    // The probe prints an item named like a script, with such a message,
    // and fails with it on stderr (the probe item's message).
    let probes = f.host("c1").vardir().join("probes");
    std::fs::create_dir_all(&probes).unwrap();
    let script = format!("#!/bin/sh\necho '{XSS} 5 {XSS}'\necho '{XSS}' >&2\nexit 2\n");
    let p = probes.join("xss");
    std::fs::write(&p, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    f.start_all();
    let web = Web { addr: SocketAddr::new(f.host("web").ip.into(), f.port + 1) };
    wait_for(20.0, "the dashboard answers", || (web.get("/api/v1/summary").0 == 200).then_some(()));
    (f, web)
}
