//! `/metrics`: the fleet as Prometheus text exposition (format 0.0.4),
//! built from the JSON of a `CLIENTS` answer and, when the pagemaker has
//! it, the server's `DUMP`. Pure: JSON in, text out; never fails (a field
//! missing or of the wrong type drops that one series, never the page).
//!
//! The API the web side calls:
//!
//! ```text
//! render(clients: &Value, server: Option<&Value>, levels: &[String]) -> String
//! render_at(clients: &Value, server: Option<&Value>, levels: &[String], now: f64) -> String
//! render_visible(clients: &Value, server: Option<&Value>, levels: &[String], now: f64,
//!                visible: &dyn Fn(&str) -> bool) -> String     // only the hosts a viewer sees
//! render_logins(t: &ThrottleStats, sessions: usize, csrf_refused: u64) -> String   // appended by the web side
//! ```
//!
//! Names follow Prometheus' conventions: base units (`_seconds`), `_total`
//! for counters, one HELP and TYPE per family, every series of a family
//! together. Item values keep the item's own unit (percent, load, ...):
//! hbmon items are not all of one unit, so no unit suffix is claimed.

use crate::pagemaker::auth::ThrottleStats;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt::Write;

/// Heartbeat states a host may be in, as CLIENTS and DUMP name them.
pub const STATES: &[&str] = &["new", "up", "late", "down", "stopped"];

/// The exposition format's content type (for the `Content-Type` header).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    push_escaped(&mut out, v);
    out
}

/// `escape_label` into `out`; most values need no escape and are copied.
fn push_escaped(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// A sample value as Prometheus parses it (`NaN`, `+Inf`, Go floats).
#[cfg(test)]
fn num(v: f64) -> String {
    let mut s = String::new();
    push_num(&mut s, v);
    s
}

fn push_num(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Most samples are 0/1 states, level indexes and counters: digits
        // by hand, without the formatting machinery (a third of /metrics'
        // time for 10,000 hosts).
        if v < 0.0 {
            out.push('-');
        }
        let mut n = v.abs() as u64;
        let mut buf = [0u8; 20];
        let mut i = buf.len();
        loop {
            i -= 1;
            buf[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        out.extend(buf[i..].iter().map(|&b| b as char));
    } else {
        // Debug gives the shortest round-trip form, with an exponent for
        // tiny or huge values (Display would print 300 digits).
        let _ = write!(out, "{v:?}");
    }
}

/// The text being built: families written one after another.
struct Out(String);

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}");
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    /// One sample; `labels` are (name, unescaped value).
    fn sample(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(k);
                self.0.push_str("=\"");
                push_escaped(&mut self.0, val);
                self.0.push('"');
            }
            self.0.push('}');
        }
        self.end(v);
    }

    /// One sample whose labels are already escaped and joined (`a="x",b="y"`).
    fn sample_pre(&mut self, name: &str, labels: &str, v: f64) {
        self.0.push_str(name);
        self.0.push('{');
        self.0.push_str(labels);
        self.0.push('}');
        self.end(v);
    }

    fn end(&mut self, v: f64) {
        self.0.push(' ');
        push_num(&mut self.0, v);
        self.0.push('\n');
    }
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_f64()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

fn obj<'a>(v: &'a Value, path: &[&str]) -> Option<&'a serde_json::Map<String, Value>> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_object()
}

/// `render_at` with the wall clock (for a last-seen time when DUMP is absent).
pub fn render(clients: &Value, server: Option<&Value>, levels: &[String]) -> String {
    render_at(clients, server, levels, crate::clock::Now::wall_now())
}

/// The whole exposition. `levels` are the work's level names, best first
/// (an item's `hbmon_item_level` is its index there); `now` is the wall
/// time CLIENTS was answered, used only when DUMP gives no last-seen time.
pub fn render_at(clients: &Value, server: Option<&Value>, levels: &[String], now: f64) -> String {
    render_visible(clients, server, levels, now, &|_| true)
}

/// `render_at` for the hosts `visible` accepts. The cached CLIENTS answer
/// is read by reference: cloning it to filter cost more than rendering.
pub fn render_visible(
    clients: &Value,
    server: Option<&Value>,
    levels: &[String],
    now: f64,
    visible: &dyn Fn(&str) -> bool,
) -> String {
    let empty = serde_json::Map::new();
    let hosts: Vec<Host> = obj(clients, &["cdmp"])
        .unwrap_or(&empty)
        .iter()
        .filter(|(name, _)| visible(name))
        .map(|(name, v)| {
            let hb = v.get("heartbeat").unwrap_or(&Value::Null);
            let state = hb.get("state").and_then(Value::as_str).unwrap_or("");
            Host { name, label: label("host", name), v, hb, state }
        })
        .collect();
    let mut o = Out(String::with_capacity(4096 + hosts.len() * 1500));
    host_families(&mut o, &hosts, server, now);
    item_families(&mut o, &hosts, levels);
    if let Some(d) = server {
        server_families(&mut o, d, levels);
    }
    o.0
}

/// A host of the CLIENTS answer with its label, escaped once for every
/// family (10,000 hosts x a dozen series each).
struct Host<'a> {
    name: &'a str,
    label: String,
    v: &'a Value,
    /// Its `heartbeat` object (Null when the server has none).
    hb: &'a Value,
    state: &'a str,
}

fn label(k: &str, v: &str) -> String {
    let mut l = String::with_capacity(k.len() + v.len() + 3);
    l.push_str(k);
    l.push_str("=\"");
    push_escaped(&mut l, v);
    l.push('"');
    l
}

fn host_families(o: &mut Out, hosts: &[Host], dump: Option<&Value>, now: f64) {
    o.family(
        "hbmon_host_info",
        "gauge",
        "Always 1: a host of the fleet, with its tag, address and hbmon version.",
    );
    for h in hosts {
        let tag = s(h.v, &["tag"]).unwrap_or("");
        let addr = s(h.v, &["address"]).unwrap_or("");
        let ver = s(h.hb, &["version"]).unwrap_or("");
        o.sample(
            "hbmon_host_info",
            &[("host", h.name), ("tag", tag), ("address", addr), ("version", ver)],
            1.0,
        );
    }
    o.family(
        "hbmon_host_up",
        "gauge",
        "1 when the host's heartbeats arrive (state up or late), else 0.",
    );
    for h in hosts {
        let up = matches!(h.state, "up" | "late");
        o.sample_pre("hbmon_host_up", &h.label, if up { 1.0 } else { 0.0 });
    }
    o.family(
        "hbmon_host_state",
        "gauge",
        "1 for the host's current heartbeat state, 0 for the others.",
    );
    for h in hosts {
        let st = h.state;
        for want in STATES {
            let l = format!("{},state=\"{want}\"", h.label);
            o.sample_pre("hbmon_host_state", &l, if st == *want { 1.0 } else { 0.0 });
        }
    }
    let per_host = |o: &mut Out, name: &str, help: &str, get: &dyn Fn(&Host) -> Option<f64>| {
        o.family(name, "gauge", help);
        for h in hosts {
            if let Some(x) = get(h) {
                o.sample_pre(name, &h.label, x);
            }
        }
    };
    per_host(
        o,
        "hbmon_heartbeat_rtt_seconds",
        "Round-trip time of the host's last acknowledged heartbeat.",
        &|h| f(h.hb, &["rtt_ms"]).map(|ms| ms / 1000.0),
    );
    per_host(
        o,
        "hbmon_heartbeat_phi",
        "Phi-accrual suspicion of the host (higher: more likely down).",
        &|h| f(h.hb, &["phi"]),
    );
    // Observed loss: seq gaps, the detector's loss estimate, probes the host
    // answered while its heartbeats were missing (issue 15).
    o.family(
        "hbmon_heartbeat_lost_total",
        "counter",
        "Heartbeats of the host never received (gaps in their seq numbers).",
    );
    for h in hosts {
        if let Some(x) = f(h.hb, &["lost"]) {
            o.sample_pre("hbmon_heartbeat_lost_total", &h.label, x);
        }
    }
    per_host(
        o,
        "hbmon_heartbeat_loss_ratio",
        "Moving-average share of the host's heartbeats lost (0 to 1).",
        &|h| f(h.hb, &["loss"]),
    );
    o.family(
        "hbmon_heartbeat_answered_probes_total",
        "counter",
        "Times the host, silent, answered the server's probe (heartbeats lost, host up).",
    );
    for h in hosts {
        if let Some(x) = f(h.hb, &["answered_probes"]) {
            o.sample_pre("hbmon_heartbeat_answered_probes_total", &h.label, x);
        }
    }
    // DUMP has the wall time of the last heartbeat; CLIENTS only its age.
    let udp_hosts = dump.and_then(|d| server_part(d).get("udp")?.get("hosts")?.as_array());
    let dumped: HashMap<&str, f64> = udp_hosts
        .into_iter()
        .flatten()
        .filter_map(|h| Some((s(h, &["name"])?, f(h, &["last_seen"])?)))
        .collect();
    o.family(
        "hbmon_host_last_seen_timestamp_seconds",
        "gauge",
        "Unix time of the host's last heartbeat.",
    );
    for h in hosts {
        let age = || f(h.hb, &["seen"]).map(|age| now - age);
        if let Some(t) = dumped.get(h.name).copied().or_else(age) {
            o.sample_pre("hbmon_host_last_seen_timestamp_seconds", &h.label, t);
        }
    }
    per_host(
        o,
        "hbmon_host_report_timestamp_seconds",
        "Unix time of the host's last REPORT (its items' values).",
        &|h| f(h.v, &["report", "time"]),
    );
}

fn level_index(levels: &[String], name: &str) -> Option<usize> {
    levels.iter().position(|l| l == name)
}

fn item_families(o: &mut Out, hosts: &[Host], levels: &[String]) {
    // (host="..",item="..", item JSON) for every item of every last report.
    let items: Vec<(String, Option<f64>, Option<&str>)> = hosts
        .iter()
        .flat_map(|h| {
            obj(h.v, &["report", "items"]).into_iter().flatten().map(move |(item, v)| {
                let mut l = String::with_capacity(h.label.len() + item.len() + 8);
                l.push_str(&h.label);
                l.push_str(",item=\"");
                push_escaped(&mut l, item);
                l.push('"');
                // One scan of the item's few fields beats two hashed lookups.
                let (mut value, mut level) = (None, None);
                for (k, x) in v.as_object().into_iter().flatten() {
                    match k.as_str() {
                        "value" => value = x.as_f64(),
                        "level" => level = x.as_str(),
                        _ => {}
                    }
                }
                (l, value, level)
            })
        })
        .collect();
    o.family("hbmon_item_value", "gauge", "The item's last value, in the item's own unit.");
    for (l, value, _) in &items {
        if let Some(x) = value {
            o.sample_pre("hbmon_item_value", l, *x);
        }
    }
    o.family(
        "hbmon_item_level",
        "gauge",
        "The item's fitness level as an index into the work's levels (best = 0).",
    );
    let mut per_level = vec![0u64; levels.len()];
    for (l, _, level) in &items {
        if let Some(i) = level.and_then(|n| level_index(levels, n)) {
            per_level[i] += 1;
            o.sample_pre("hbmon_item_level", l, i as f64);
        }
    }
    o.family("hbmon_items", "gauge", "Host-items at each fitness level.");
    for (l, n) in levels.iter().zip(&per_level) {
        o.sample("hbmon_items", &[("level", l)], *n as f64);
    }
}

/// The server part of a daemon's DUMP (or the value itself if it is one).
fn server_part(d: &Value) -> &Value {
    d.get("server").filter(|s| s.is_object()).unwrap_or(d)
}

fn counter_map(
    o: &mut Out,
    name: &str,
    help: &str,
    label: &str,
    m: Option<&serde_json::Map<String, Value>>,
) {
    o.family(name, "counter", help);
    for (k, v) in m.into_iter().flatten() {
        if let Some(n) = v.as_f64() {
            o.sample(name, &[(label, k)], n);
        }
    }
}

fn server_families(o: &mut Out, dump: &Value, levels: &[String]) {
    let sp = server_part(dump);
    o.family("hbmon_alerts", "gauge", "Open alerts at each level.");
    let alerts = sp.get("notify").and_then(|n| n.get("alerts")).and_then(Value::as_array);
    let mut per_level = vec![0u64; levels.len()];
    for a in alerts.into_iter().flatten() {
        if let Some(i) = s(a, &["level_name"]).and_then(|l| level_index(levels, l)) {
            per_level[i] += 1;
        }
    }
    for (l, n) in levels.iter().zip(&per_level) {
        o.sample("hbmon_alerts", &[("level", l)], *n as f64);
    }
    let acked = alerts.into_iter().flatten().filter(|a| a.get("acked") == Some(&Value::Bool(true)));
    o.family("hbmon_alerts_acknowledged", "gauge", "Open alerts that were acknowledged.");
    o.sample("hbmon_alerts_acknowledged", &[], acked.count() as f64);
    o.family(
        "hbmon_notify_outbox",
        "gauge",
        "Deliveries in the server's notification outbox, by state (pending, failed, ...).",
    );
    for (state, n) in obj(sp, &["notify", "outbox"]).into_iter().flatten() {
        if let Some(n) = n.as_f64() {
            o.sample("hbmon_notify_outbox", &[("state", state)], n);
        }
    }
    let udp = |k: &str| f(sp, &["udp", "udp", k]);
    for (k, help) in [
        ("received", "Heartbeat datagrams received by the server."),
        ("accepted", "Heartbeat datagrams accepted by the server."),
        ("acked", "Heartbeat datagrams the server acknowledged."),
        ("refused", "Heartbeat datagrams the server refused (all reasons)."),
    ] {
        if let Some(n) = udp(k) {
            let name = format!("hbmon_udp_datagrams_{k}_total");
            o.family(&name, "counter", help);
            o.sample(&name, &[], n);
        }
    }
    counter_map(
        o,
        "hbmon_udp_datagrams_refused_by_reason_total",
        "Heartbeat datagrams refused, by reason.",
        "reason",
        obj(sp, &["udp", "refused"]),
    );
    for (k, name, help) in [
        ("reports", "hbmon_reports_received_total", "REPORTs received by the server."),
        ("events_received", "hbmon_events_received_total", "Events received by the server."),
        ("events_stored", "hbmon_events_stored_total", "Events the server stored (new)."),
        (
            "events_duplicate",
            "hbmon_events_duplicate_total",
            "Events received again (already stored).",
        ),
    ] {
        if let Some(n) = f(sp, &["stats", k]) {
            o.family(name, "counter", help);
            o.sample(name, &[], n);
        }
    }
    if let Some(n) = f(dump, &["counters", "commands"]) {
        o.family("hbmon_commands_total", "counter", "Commands the server's command port answered.");
        o.sample("hbmon_commands_total", &[], n);
    }
    counter_map(
        o,
        "hbmon_commands_refused_total",
        "Commands the server refused, by reason.",
        "reason",
        obj(dump, &["counters", "refused"]),
    );
    if let Some(t) = f(dump, &["started"]) {
        o.family(
            "hbmon_server_start_time_seconds",
            "gauge",
            "Unix time the server's daemon started.",
        );
        o.sample("hbmon_server_start_time_seconds", &[], t);
    }
}

/// The dashboard's own login counters, for the web side to append.
pub fn render_logins(t: &ThrottleStats, sessions: usize, csrf_refused: u64) -> String {
    let mut o = Out(String::new());
    for (name, kind, help, v) in [
        (
            "hbmon_dashboard_login_failures_total",
            "counter",
            "Failed dashboard logins.",
            t.failures as f64,
        ),
        (
            "hbmon_dashboard_logins_total",
            "counter",
            "Successful dashboard logins.",
            t.successes as f64,
        ),
        (
            "hbmon_dashboard_login_refused_total",
            "counter",
            "Login attempts refused because their source had to wait.",
            t.refused as f64,
        ),
        (
            "hbmon_dashboard_login_sources_locked",
            "gauge",
            "Sources that must wait before their next login attempt.",
            t.locked as f64,
        ),
        (
            "hbmon_dashboard_login_csrf_refused_total",
            "counter",
            "Login attempts refused for a missing or wrong form token.",
            csrf_refused as f64,
        ),
        ("hbmon_dashboard_sessions", "gauge", "Open dashboard sessions.", sessions as f64),
    ] {
        o.family(name, kind, help);
        o.sample(name, &[], v);
    }
    o.0
}

#[cfg(test)]
mod tests;
