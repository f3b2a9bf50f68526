//! What the dashboard knows of the fleet, and how it learns it: `CLIENTS`
//! from the server and `RELAY <host> HIST ...` for history, over the
//! command port like any peer (blocking TCP, from the pool threads only).
//!
//! One fleet snapshot is cached for a few seconds and fetched by one thread
//! at a time, so 50 open tabs cost the server one CLIENTS per interval; the
//! last good answer is kept with its age when the server cannot be reached.

use serde_json::Value;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest answer read from a peer (CLIENTS of 10,000 hosts is ~2-3 MB).
const MAX_ANSWER: u64 = 64 << 20;
/// History answers cached per (host, item, ival, pnts).
const HIST_CACHE: usize = 256;

/// How the pagemaker reaches the server.
#[derive(Debug, Clone)]
pub struct Peer {
    pub server: SocketAddr,
    /// The server's name when the work gives one: resolved at each connect.
    pub name: Option<String>,
    /// Our own address: outgoing connections come from it, so the server
    /// recognises the pagemaker as a host of its work.
    pub bind: Option<IpAddr>,
    pub timeout: Duration,
    /// This host's own name and command port: its own history is asked
    /// there directly, not relayed.
    pub own: Option<(String, SocketAddr)>,
}

/// One command; the JSON body of a `COMMAND DONE` answer, else the reason.
pub fn command(peer: &Peer, line: &str) -> Result<Value, String> {
    let text = exchange(peer, line)?;
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    if !first.starts_with("COMMAND ") {
        return Err("no answer".into());
    }
    let rest: Vec<&str> = lines.collect();
    match rest.last() {
        Some(&"COMMAND DONE") => {}
        Some(l) if l.starts_with("COMMAND ERROR ") => {
            return Err(l["COMMAND ERROR ".len()..].to_string());
        }
        _ => return Err("answer cut short".into()),
    }
    let body = rest[..rest.len() - 1].join("\n");
    serde_json::from_str(&body).map_err(|e| format!("bad JSON from {}: {e}", peer.server))
}

fn exchange(peer: &Peer, line: &str) -> Result<String, String> {
    use socket2::{Domain, Socket, Type};
    let resolved;
    let peer = match &peer.name {
        Some(n) => {
            use std::net::ToSocketAddrs;
            let port = peer.server.port();
            let a = (n.as_str(), port).to_socket_addrs().ok().and_then(|mut a| a.next());
            let a = a.ok_or_else(|| format!("cannot resolve the server {n}"))?;
            resolved = Peer { server: a, name: None, ..peer.clone() };
            &resolved
        }
        None => peer,
    };
    let err = |what: &str, e: std::io::Error| format!("{what} {}: {e}", peer.server);
    let dom = if peer.server.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let s = Socket::new(dom, Type::STREAM, None).map_err(|e| err("socket for", e))?;
    if let Some(ip) = peer.bind.filter(|ip| ip.is_ipv4() == peer.server.is_ipv4()) {
        s.bind(&SocketAddr::new(ip, 0).into()).map_err(|e| err("bind to reach", e))?;
    }
    s.connect_timeout(&peer.server.into(), peer.timeout).map_err(|e| err("connect to", e))?;
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(peer.timeout)).map_err(|e| err("timeout on", e))?;
    s.set_write_timeout(Some(peer.timeout)).map_err(|e| err("timeout on", e))?;
    s.write_all(format!("{line}\n").as_bytes()).map_err(|e| err("send to", e))?;
    let mut out = Vec::new();
    s.take(MAX_ANSWER).read_to_end(&mut out).map_err(|e| err("read from", e))?;
    String::from_utf8(out).map_err(|_| format!("answer from {} is not UTF-8", peer.server))
}

/// A fleet snapshot: the parsed CLIENTS answer and when it was fetched.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub fleet: Arc<Fleet>,
    /// The answer as it came (for /metrics).
    pub raw: Arc<Value>,
    /// Wall time of the answer shown (0 = never had one).
    pub fetched: f64,
    /// Why the last try failed, when it did (the snapshot is then older).
    pub error: Option<String>,
}

impl Snapshot {
    pub fn age(&self, now: f64) -> f64 {
        (now - self.fetched).max(0.0)
    }
}

/// The fleet as CLIENTS tells it.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// Sorted by name.
    pub hosts: Vec<HostView>,
    /// Oldest first.
    pub events: Vec<Value>,
    pub alerts: Vec<AlertView>,
    pub silences: Vec<(String, String, f64)>,
    pub outbox_pending: i64,
    pub outbox_failed: i64,
}

#[derive(Debug, Clone, Default)]
pub struct HostView {
    pub name: String,
    pub tag: String,
    pub address: String,
    pub in_work: bool,
    /// Reachability: new up late unreachable down stopped.
    pub state: String,
    pub rtt_ms: Option<f64>,
    pub phi: Option<f64>,
    /// Seconds since the last heartbeat.
    pub seen: Option<f64>,
    pub version: String,
    pub uptime: Option<f64>,
    pub report_age: Option<f64>,
    /// Sorted by name: the report's items, then heartbeat (PLG) items.
    pub items: Vec<ItemView>,
}

#[derive(Debug, Clone, Default)]
pub struct ItemView {
    pub name: String,
    pub value: Option<f64>,
    /// A text value (hbd plugins send some).
    pub text: Option<String>,
    pub level: Option<String>,
    pub message: String,
    pub error: Option<String>,
    /// Wall time of the sample.
    pub time: Option<f64>,
}

#[derive(Debug, Clone, Default)]
pub struct AlertView {
    pub host: String,
    pub item: String,
    pub level: String,
    pub value: Option<f64>,
    pub since: f64,
    pub acked: bool,
    pub silenced: bool,
    pub flapping: bool,
    pub suppressed_by: Option<String>,
    pub channels: Vec<String>,
}

fn s(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

fn f(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

/// Parses a CLIENTS answer; unknown or missing fields are empty, never fatal.
pub fn parse_clients(v: &Value) -> Fleet {
    let mut fleet = Fleet::default();
    if let Some(Value::Object(m)) = v.get("cdmp") {
        for (name, h) in m {
            fleet.hosts.push(parse_host(name, h));
        }
    }
    fleet.hosts.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(Value::Array(es)) = v.get("events") {
        fleet.events = es.clone();
    }
    let n = v.get("notify").cloned().unwrap_or(Value::Null);
    if let Some(Value::Array(al)) = n.get("alerts") {
        fleet.alerts = al.iter().map(parse_alert).collect();
    }
    if let Some(Value::Array(si)) = n.get("silences") {
        fleet.silences =
            si.iter().map(|x| (s(x, "host"), s(x, "item"), f(x, "until").unwrap_or(0.0))).collect();
    }
    let ob = n.get("outbox").cloned().unwrap_or(Value::Null);
    fleet.outbox_pending = ob.get("pending").and_then(Value::as_i64).unwrap_or(0);
    fleet.outbox_failed = ob.get("failed").and_then(Value::as_i64).unwrap_or(0);
    fleet
}

fn parse_host(name: &str, h: &Value) -> HostView {
    let hb = h.get("heartbeat").cloned().unwrap_or(Value::Null);
    let rep = h.get("report").cloned().unwrap_or(Value::Null);
    let mut items: Vec<ItemView> = match rep.get("items") {
        Some(Value::Object(m)) => m.iter().map(|(k, x)| parse_item(k, x)).collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Object(m)) = hb.get("items") {
        for (k, x) in m {
            if items.iter().any(|i| &i.name == k) {
                continue;
            }
            let (value, text) = match x {
                Value::Number(n) => (n.as_f64(), None),
                Value::String(t) => (None, Some(t.clone())),
                other => (None, Some(other.to_string())),
            };
            items.push(ItemView { name: k.clone(), value, text, ..ItemView::default() });
        }
    }
    items.sort_by(|a, b| a.name.cmp(&b.name));
    HostView {
        name: name.to_string(),
        tag: s(h, "tag"),
        address: s(h, "address"),
        in_work: h.get("in_work").and_then(Value::as_bool).unwrap_or(true),
        state: Some(s(&hb, "state")).filter(|x| !x.is_empty()).unwrap_or_else(|| "new".into()),
        rtt_ms: f(&hb, "rtt_ms"),
        phi: f(&hb, "phi"),
        seen: f(&hb, "seen"),
        version: s(&hb, "version"),
        uptime: f(&hb, "uptime"),
        report_age: f(&rep, "age"),
        items,
    }
}

fn parse_item(name: &str, x: &Value) -> ItemView {
    ItemView {
        name: name.to_string(),
        value: f(x, "value"),
        text: None,
        level: x.get("level").and_then(Value::as_str).map(str::to_string),
        message: s(x, "message"),
        error: x.get("error").and_then(Value::as_str).map(str::to_string),
        time: f(x, "time"),
    }
}

fn parse_alert(a: &Value) -> AlertView {
    let b = |k: &str| a.get(k).and_then(Value::as_bool).unwrap_or(false);
    AlertView {
        host: s(a, "host"),
        item: s(a, "item"),
        level: s(a, "level"),
        value: f(a, "value"),
        since: f(a, "since").unwrap_or(0.0),
        acked: b("acked"),
        silenced: b("silenced"),
        flapping: b("flapping"),
        suppressed_by: a.get("suppressed_by").and_then(Value::as_str).map(str::to_string),
        channels: match a.get("channels") {
            Some(Value::Array(c)) => c.iter().filter_map(Value::as_str).map(String::from).collect(),
            _ => Vec::new(),
        },
    }
}

/// A history answer and when it came.
type Cached = (Instant, Result<Value, String>);
type CachedDump = (Instant, Result<Arc<Value>, String>);

/// The cache in front of the server.
pub struct Fetcher {
    peer: Mutex<Peer>,
    ttl: Duration,
    snap: Mutex<(Snapshot, Option<Instant>)>,
    /// Held by the one thread asking the server; the others wait and then
    /// take its answer.
    asking: Mutex<()>,
    hist: Mutex<HashMap<String, Cached>>,
    dump: Mutex<Option<CachedDump>>,
    /// CLIENTS asked of the server (for tests and the bench).
    pub asked: std::sync::atomic::AtomicU64,
}

impl Fetcher {
    pub fn new(peer: Peer, ttl: Duration) -> Fetcher {
        Fetcher {
            peer: Mutex::new(peer),
            ttl,
            snap: Mutex::new((Snapshot::default(), None)),
            asking: Mutex::new(()),
            hist: Mutex::new(HashMap::new()),
            dump: Mutex::new(None),
            asked: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn set_peer(&self, p: Peer) {
        if let Ok(mut g) = self.peer.lock() {
            *g = p;
        }
    }

    fn peer(&self) -> Peer {
        match self.peer.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn fresh(&self) -> Option<Snapshot> {
        let g = self.snap.lock().ok()?;
        g.1.filter(|t| t.elapsed() < self.ttl).map(|_| g.0.clone())
    }

    /// The fleet, at most `ttl` old when the server answers.
    pub fn fleet(&self, now_wall: f64) -> Snapshot {
        if let Some(s) = self.fresh() {
            return s;
        }
        let _one = self.asking.lock();
        if let Some(s) = self.fresh() {
            return s;
        }
        self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let answer = command(&self.peer(), "CLIENTS 200");
        let Ok(mut g) = self.snap.lock() else { return Snapshot::default() };
        match answer {
            Ok(v) => {
                let fleet = Arc::new(parse_clients(&v));
                g.0 = Snapshot { fleet, raw: Arc::new(v), fetched: now_wall, error: None }
            }
            Err(e) => {
                log::info!("dashboard: CLIENTS from {}: {e}", self.peer().server);
                g.0.error = Some(e);
            }
        }
        // A failed try also waits one ttl, so an unreachable server is not
        // asked by every request.
        g.1 = Some(Instant::now());
        g.0.clone()
    }

    /// Events for /events: CLIENTS with its filter arguments (not cached:
    /// the query names its own window).
    pub fn events(&self, args: &[&str]) -> Result<Vec<Value>, String> {
        let line = format!("CLIENTS {}", args.join(" "));
        let v = command(&self.peer(), line.trim())?;
        Ok(match v.get("events") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        })
    }

    /// A host's history through the server (`RELAY host HIST ...`), cached
    /// for the ttl.
    pub fn hist(&self, host: &str, ival: char, pnts: u32, items: &[&str]) -> Result<Value, String> {
        let peer = self.peer();
        let own = peer.own.as_ref().filter(|(h, _)| h == host).map(|o| o.1);
        let line = match own {
            Some(_) => format!("HIST {ival} {pnts} {}", items.join(" ")),
            None => format!("RELAY {host} HIST {ival} {pnts} {}", items.join(" ")),
        };
        if let Ok(g) = self.hist.lock() {
            if let Some((t, v)) = g.get(&line).filter(|(t, _)| t.elapsed() < self.ttl) {
                let _ = t;
                return v.clone();
            }
        }
        let to = match own {
            Some(a) => Peer { server: a, name: None, ..peer },
            None => peer,
        };
        let v = command(&to, &line).and_then(|v| match v.get("data") {
            Some(d) if d.is_object() => Ok(d.clone()),
            _ => Err(format!("no history from {host}")),
        });
        if let Ok(mut g) = self.hist.lock() {
            if g.len() >= HIST_CACHE {
                g.retain(|_, (t, _)| t.elapsed() < self.ttl);
                if g.len() >= HIST_CACHE {
                    g.clear();
                }
            }
            g.insert(line, (Instant::now(), v.clone()));
        }
        v
    }

    /// The server's DUMP (its counters, for /metrics), cached for the ttl.
    pub fn dump(&self) -> Result<Arc<Value>, String> {
        let Ok(mut g) = self.dump.lock() else { return Err("lock".into()) };
        if let Some((t, v)) = g.as_ref() {
            if t.elapsed() < self.ttl {
                return v.clone();
            }
        }
        let v = command(&self.peer(), "DUMP").map(Arc::new);
        *g = Some((Instant::now(), v.clone()));
        v
    }

    /// A state-changing command (ACK, SILENCE): straight to the server; the
    /// snapshot is dropped so the next page shows the result.
    pub fn change(&self, line: &str) -> Result<String, String> {
        let text = exchange(&self.peer(), line)?;
        if let Ok(mut g) = self.snap.lock() {
            g.1 = None;
        }
        match text.lines().last() {
            Some("COMMAND DONE") => Ok(text.lines().nth(1).unwrap_or("").to_string()),
            Some(l) if l.starts_with("COMMAND ERROR ") => Err(l[14..].to_string()),
            _ => Err("no answer".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn clients_answer_parses() {
        let v = json!({"resp":"ok clients","cdmp":{
            "b.x":{"tag":"b","address":"127.0.0.3","heartbeat":{"state":"down","rtt_ms":0.3,"seen":40.0,"items":{"hbc.cpu":3}},
                   "report":{"age":5.0,"items":{"cpu_load":{"value":0.5,"level":"fine","message":"","error":null,"time":9.0}}}},
            "a.x":{"tag":"a","address":"127.0.0.2","heartbeat":null,"report":null}},
            "events":[{"host":"b.x"}],
            "notify":{"alerts":[{"host":"b.x","item":"heartbeat","level":"dead","since":1.0,"acked":true,"channels":["ops"]}],
                      "silences":[{"host":"a.x","item":"","until":99.0}],"outbox":{"pending":2,"failed":1}}});
        let f = parse_clients(&v);
        assert_eq!(f.hosts[0].name, "a.x", "sorted");
        assert_eq!(f.hosts[0].state, "new");
        let b = &f.hosts[1];
        assert_eq!((b.state.as_str(), b.rtt_ms, b.report_age), ("down", Some(0.3), Some(5.0)));
        assert_eq!(b.items.len(), 2);
        assert_eq!(b.items[0].name, "cpu_load");
        assert_eq!(b.items[1].value, Some(3.0), "PLG items too");
        assert!(f.alerts[0].acked && f.alerts[0].channels == ["ops"]);
        assert_eq!(f.silences, vec![("a.x".to_string(), String::new(), 99.0)]);
        assert_eq!((f.outbox_pending, f.outbox_failed), (2, 1));
        assert_eq!(parse_clients(&json!("garbage")).hosts.len(), 0);
    }

    #[test]
    fn unreachable_server_keeps_last_answer() {
        // Nothing listens on port 1 of loopback.
        let peer = Peer {
            server: "127.0.0.1:1".parse().unwrap(),
            name: None,
            bind: None,
            timeout: Duration::from_millis(500),
            own: None,
        };
        let fx = Fetcher::new(peer, Duration::from_secs(0));
        let s = fx.fleet(100.0);
        assert!(s.error.is_some());
        assert_eq!(s.fetched, 0.0);
        assert!(command(&fx.peer(), "PING").is_err());
    }
}
