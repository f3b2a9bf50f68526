//! UPGRADE: the fleet upgrades itself from the server (DESIGN §3). This
//! module owns the offer (what the server serves: version, size, SHA-256,
//! HMAC, the bytes), the wire lines between server and client, and the
//! server's rollout (canary, waves). The client side (fetch, checks, swap,
//! re-exec) is in `install.rs`; the watchdog, rollback and the start-up
//! check of an interrupted upgrade are in `watch.rs`. Everything here runs in
//! helper threads with blocking sockets; the loop only hands over jobs.

pub mod install;
pub mod task;
pub mod watch;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The largest binary offered or fetched.
pub const MAX_BINARY: u64 = 512 << 20;
/// A client's whole fetch + checks + swap must fit in this.
pub const INSTALL_TIMEOUT: Duration = Duration::from_secs(240);
/// `ival_upgrade_check` (seconds, range-checked where it was read) as the
/// time a re-exec'd client has to answer PING at the new version.
pub fn come_back(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs).unwrap_or(Duration::from_secs(60))
}

/// Clients upgraded at once after the canaries.
pub const WAVE: usize = 8;

/// What the server offers: the bytes with the answer frame around them,
/// built once so every BINARY session shares them.
pub struct Offer {
    pub line: OfferLine,
    pub framed: Arc<Vec<u8>>,
}

/// The offer as the client is told it: `UPGRADE OFFER <version> <size>
/// <sha256> <hmac or -> <force 0|1>`.
#[derive(Debug, Clone, PartialEq)]
pub struct OfferLine {
    pub version: String,
    pub size: u64,
    pub sha: String,
    pub hmac: String,
    pub force: bool,
}

impl OfferLine {
    pub fn to_line(&self) -> String {
        let f = u8::from(self.force);
        format!("UPGRADE OFFER {} {} {} {} {f}", self.version, self.size, self.sha, self.hmac)
    }

    /// From the arguments after `OFFER`.
    pub fn parse(args: &[String]) -> Result<OfferLine, String> {
        let usage = "usage: UPGRADE OFFER <version> <size> <sha256> <hmac|-> <force 0|1>";
        let [version, size, sha, hmac, force] = args else { return Err(usage.into()) };
        let size: u64 = size.parse().map_err(|_| format!("bad size {size}"))?;
        if size == 0 || size > MAX_BINARY {
            return Err(format!("size {size} out of range (1..={MAX_BINARY})"));
        }
        let hexlen = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hexlen(sha) {
            return Err("bad sha256".into());
        }
        if hmac != "-" && !hexlen(hmac) {
            return Err("bad hmac".into());
        }
        if !version.starts_with("hbmon-") || version.len() > 64 {
            return Err(format!("bad version {version}"));
        }
        Ok(OfferLine {
            version: version.clone(),
            size,
            sha: sha.to_ascii_lowercase(),
            hmac: hmac.to_ascii_lowercase(),
            force: force == "1",
        })
    }
}

/// The slot through which the rollout thread publishes its offer to the
/// loop's BINARY verb (a short lock, never held across I/O).
pub type OfferSlot = Arc<Mutex<Option<Arc<Offer>>>>;

/// The daemon's upgrade state, owned by `State`.
#[derive(Default)]
pub struct Local {
    pub offer: OfferSlot,
    /// An upgrade (rollout or install) is running.
    pub busy: bool,
    /// The last outcome on this host (from `$vardir/upgrade/state`).
    pub last: String,
    /// A rollback to report as the `upgrade` item once the client is up.
    pub report: Option<String>,
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// HMAC-SHA256 over the offer's facts with the fleet key.
pub fn signature(key: &str, version: &str, size: u64, sha: &str) -> String {
    let Ok(mut m) = Hmac::<Sha256>::new_from_slice(key.as_bytes()) else { return "-".into() };
    m.update(format!("hbmon-upgrade {version} {size} {sha}").as_bytes());
    hex(&m.finalize().into_bytes())
}

/// Constant-time comparison of two hex strings.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `hbmon X.Y.Z` (clap) or `hbmon-X.Y.Z` -> `hbmon-X.Y.Z`.
pub fn parse_version(out: &str) -> Option<String> {
    let w = out.lines().next()?.split_whitespace().last()?;
    let v = if w.starts_with("hbmon-") { w.to_string() } else { format!("hbmon-{w}") };
    (v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic())).then_some(v)
}

/// `bin --version`, as a child process with a timeout.
pub fn binary_version(bin: &Path) -> Result<String, String> {
    let argv = [bin.display().to_string(), "--version".to_string()];
    let out = crate::probes::exec::run_command(&argv, Duration::from_secs(20), 4096)
        .map_err(|e| format!("{} --version: {e}", bin.display()))?;
    if out.code != Some(0) {
        return Err(format!("{} --version exited with {:?}", bin.display(), out.code));
    }
    parse_version(&out.stdout).ok_or_else(|| format!("{} --version: no version", bin.display()))
}

/// Reads and describes the binary to offer.
pub fn load_offer(bin: &Path, key: Option<&str>, force: bool) -> Result<Offer, String> {
    let version = binary_version(bin)?;
    let meta = std::fs::metadata(bin).map_err(|e| format!("{}: {e}", bin.display()))?;
    if meta.len() == 0 || meta.len() > MAX_BINARY {
        return Err(format!("{}: size {} out of range", bin.display(), meta.len()));
    }
    let bytes = std::fs::read(bin).map_err(|e| format!("read {}: {e}", bin.display()))?;
    let size = bytes.len() as u64;
    let sha = hex(&Sha256::digest(&bytes));
    let hmac = key.map_or_else(|| "-".to_string(), |k| signature(k, &version, size, &sha));
    let mut framed = format!("COMMAND BINARY\nBINARY {size} {sha}\n").into_bytes();
    framed.extend_from_slice(&bytes);
    framed.extend_from_slice(b"\nCOMMAND DONE\n");
    let line = OfferLine { version, size, sha, hmac, force };
    Ok(Offer { line, framed: Arc::new(framed) })
}

/// Which binary the server offers: the work's `upgrade_bin`, else
/// `$bindir/hbmon`, else the running binary.
pub fn offered_path(upgrade_bin: Option<&Path>, bindir: &Path, running: Option<&Path>) -> PathBuf {
    if let Some(p) = upgrade_bin {
        return p.to_path_buf();
    }
    let b = bindir.join("hbmon");
    match running {
        Some(r) if !b.exists() => r.to_path_buf(),
        _ => b,
    }
}

/// The server's rollout, run by a helper thread.
pub struct Rollout {
    pub bin: PathBuf,
    pub key: Option<String>,
    pub force: bool,
    pub canary: usize,
    /// (host, command address), in host order.
    pub targets: Vec<(String, SocketAddr)>,
    /// Hosts named but not upgraded, with why.
    pub skipped: Vec<(String, String)>,
    pub bind: Option<IpAddr>,
    pub slot: OfferSlot,
    /// The server's `ival_upgrade_check` (how long a client may take).
    pub come_back: Duration,
    /// The server's own command address: CLIENTS there says which version
    /// a client last heartbeated at.
    pub server: SocketAddr,
}

/// Runs the rollout; returns the answer body (one line per client).
pub fn rollout(r: Rollout) -> String {
    let offer = match load_offer(&r.bin, r.key.as_deref(), r.force) {
        Ok(o) => Arc::new(o),
        Err(e) => return format!("upgrade refused: {e}"),
    };
    let line = offer.line.clone();
    if let Ok(mut s) = r.slot.lock() {
        *s = Some(offer);
    }
    let mut out: Vec<String> = Vec::new();
    let (canaries, rest) = r.targets.split_at(r.canary.min(r.targets.len()));
    let mut failed = false;
    for group in std::iter::once(canaries).chain(rest.chunks(WAVE)) {
        if group.is_empty() {
            continue;
        }
        if failed {
            for (h, _) in group {
                out.push(format!("upgrade {h} not tried: the rollout stopped"));
            }
            continue;
        }
        let lines: Vec<(bool, String)> = std::thread::scope(|s| {
            let hs: Vec<_> =
                group.iter().map(|(h, a)| s.spawn(|| one_client(h, *a, &line, &r))).collect();
            hs.into_iter()
                .map(|h| h.join().unwrap_or((false, "upgrade ? failed: helper died".into())))
                .collect()
        });
        for (ok, l) in lines {
            failed |= !ok; // the first failure stops the rollout
            out.push(l);
        }
    }
    for (h, why) in &r.skipped {
        out.push(format!("upgrade {h} skipped: {why}"));
    }
    if let Ok(mut s) = r.slot.lock() {
        *s = None;
    }
    out.join("\n")
}

/// One client: offer, then wait for it to come back: PING at the new
/// version, then its first heartbeat at it. (ok, answer line).
fn one_client(host: &str, addr: SocketAddr, offer: &OfferLine, r: &Rollout) -> (bool, String) {
    let bind = r.bind;
    let body = match call(addr, bind, &offer.to_line(), INSTALL_TIMEOUT) {
        Ok(b) => b,
        Err(e) => return (false, format!("upgrade {host} failed: {e}")),
    };
    let Some(from) = body.strip_prefix("swapping ") else {
        // `unchanged ...` is fine; `refused: ...` is a failure.
        return (body.starts_with("unchanged"), format!("upgrade {host} {body}"));
    };
    let from = from.split_whitespace().next().unwrap_or("?").to_string();
    let deadline = Instant::now() + r.come_back + Duration::from_secs(30);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(300));
        match call(addr, bind, "PING", Duration::from_secs(5)) {
            Ok(p) if p.split_whitespace().last() == Some(offer.version.as_str()) => {
                return match first_beat(host, &offer.version, r) {
                    Ok(()) => (true, format!("upgrade {host} ok {from} -> {}", offer.version)),
                    Err(e) => (false, format!("upgrade {host} failed: {e}")),
                };
            }
            Ok(_) => {
                // The old version again: rolled back if the client says so.
                if let Ok(s) = call(addr, bind, "UPGRADE STATUS", Duration::from_secs(5)) {
                    if s.starts_with("rolled back") {
                        return (false, format!("upgrade {host} {s}"));
                    }
                }
            }
            Err(_) => {}
        }
    }
    (false, format!("upgrade {host} failed: not back at {} in time", offer.version))
}

/// Waits (bounded by `ival_upgrade_check` again) until the server's host table has a
/// heartbeat from `host` at `version` (HTB `ver`), asking CLIENTS on the
/// server's own command port like any tool would: the table is the loop's.
fn first_beat(host: &str, version: &str, r: &Rollout) -> Result<(), String> {
    let mut server = r.server;
    if server.ip().is_unspecified() {
        server.set_ip(if server.is_ipv4() {
            IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)
        });
    }
    let deadline = Instant::now() + r.come_back;
    let mut seen = String::from("nothing");
    while Instant::now() < deadline {
        let got = call(server, r.bind, &format!("CLIENTS {host} 1"), Duration::from_secs(10))
            .ok()
            .and_then(|b| serde_json::from_str::<serde_json::Value>(&b).ok())
            .and_then(|j| j["hosts"][host]["heartbeat"]["version"].as_str().map(String::from));
        match got {
            Some(v) if v == version => return Ok(()),
            Some(v) => seen = if v.is_empty() { "no version".into() } else { v },
            None => {}
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    Err(format!(
        "answers PING at {version} but no heartbeat at it within {}s (last heartbeat: {seen})",
        r.come_back.as_secs_f64()
    ))
}

/// One blocking command from this host's address; the answer's body.
pub fn call(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    line: &str,
    t: Duration,
) -> Result<String, String> {
    let text = request(addr, bind, line, t, 1 << 20)?;
    let text = String::from_utf8(text).map_err(|_| "answer not UTF-8".to_string())?;
    crate::command::parse_answer(&text)
}

/// Connects from `bind` (the server knows hosts by address), sends `line`,
/// reads the whole answer up to `cap` bytes within `t`.
pub fn request(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    line: &str,
    t: Duration,
    cap: u64,
) -> Result<Vec<u8>, String> {
    use std::io::{Read, Write};
    let mut s = connect(addr, bind, t)?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut out = Vec::new();
    let deadline = Instant::now() + t;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("{addr}: timeout"));
        }
        s.set_read_timeout(Some(left)).map_err(|e| format!("timeout on {addr}: {e}"))?;
        match s.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                if out.len() as u64 + n as u64 > cap {
                    return Err(format!("{addr}: answer longer than {cap} bytes"));
                }
                out.extend_from_slice(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
    }
}

/// A blocking connection from `bind`, with read/write timeouts.
pub fn connect(
    addr: SocketAddr,
    bind: Option<IpAddr>,
    t: Duration,
) -> Result<std::net::TcpStream, String> {
    use socket2::{Domain, Socket, Type};
    let e = |op: &str, err: std::io::Error| format!("{op} {addr}: {err}");
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM.cloexec(), None)
        .map_err(|x| e("socket for", x))?;
    if let Some(ip) = bind.filter(|ip| !ip.is_unspecified() && ip.is_ipv4() == addr.is_ipv4()) {
        sock.bind(&SocketAddr::new(ip, 0).into()).map_err(|x| e("bind for", x))?;
    }
    sock.connect_timeout(&addr.into(), t.min(Duration::from_secs(10)))
        .map_err(|x| e("connect to", x))?;
    let s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(10).min(t))).map_err(|x| e("timeout on", x))?;
    s.set_write_timeout(Some(Duration::from_secs(10).min(t))).map_err(|x| e("timeout on", x))?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offer_line_round_trips_and_bad_ones_are_refused() {
        let sha = "ab".repeat(32);
        let l = OfferLine {
            version: "hbmon-0.2.0".into(),
            size: 7,
            sha,
            hmac: "-".into(),
            force: true,
        };
        let args: Vec<String> = l.to_line().split(' ').skip(2).map(String::from).collect();
        assert_eq!(OfferLine::parse(&args), Ok(l));
        let bad =
            |a: &[&str]| OfferLine::parse(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(bad(&["hbmon-1", "0", &"a".repeat(64), "-", "0"]).unwrap_err().contains("size"));
        assert!(bad(&["hbmon-1", "9999999999999", &"a".repeat(64), "-", "0"]).is_err());
        assert!(bad(&["hbmon-1", "5", "xyz", "-", "0"]).unwrap_err().contains("sha"));
        assert!(bad(&["1.0", "5", &"a".repeat(64), "-", "0"]).unwrap_err().contains("version"));
        assert!(bad(&["hbmon-1"]).unwrap_err().starts_with("usage"));
    }

    #[test]
    fn versions_parse_from_clap_and_ours() {
        assert_eq!(parse_version("hbmon 0.1.0\n").as_deref(), Some("hbmon-0.1.0"));
        assert_eq!(parse_version("hbmon-0.2.0").as_deref(), Some("hbmon-0.2.0"));
        assert_eq!(parse_version(""), None);
        let s = signature("k", "hbmon-1", 5, "aa");
        assert!(same(&s, &signature("k", "hbmon-1", 5, "aa")));
        assert!(!same(&s, &signature("other", "hbmon-1", 5, "aa")));
    }

    /// A server whose host table still has the client at the old version:
    /// the bounded wait ends with a clear failure instead of `ok`.
    #[test]
    fn no_heartbeat_at_the_new_version_is_reported() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = l.local_addr().unwrap();
        std::thread::spawn(move || {
            use std::io::{Read, Write};
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut b = [0u8; 256];
                let _ = s.read(&mut b);
                let body = r#"{"hosts":{"c1":{"heartbeat":{"version":"hbmon-0.1.0"}}}}"#;
                let _ = s.write_all(crate::command::frame_ok("CLIENTS", body).as_bytes());
            }
        });
        let r = Rollout {
            bin: PathBuf::new(),
            key: None,
            force: false,
            canary: 0,
            targets: Vec::new(),
            skipped: Vec::new(),
            bind: None,
            slot: OfferSlot::default(),
            come_back: Duration::from_secs(1),
            server,
        };
        let e = first_beat("c1", "hbmon-0.1.9", &r).unwrap_err();
        assert!(
            e.contains("no heartbeat at it") && e.contains("last heartbeat: hbmon-0.1.0"),
            "{e}"
        );
        assert_eq!(first_beat("c1", "hbmon-0.1.0", &r), Ok(()));
    }
}
