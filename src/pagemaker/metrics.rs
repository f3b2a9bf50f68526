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
//! render_logins(t: &ThrottleStats, sessions: usize) -> String   // appended by the web side
//! ```
//!
//! Names follow Prometheus' conventions: base units (`_seconds`), `_total`
//! for counters, one HELP and TYPE per family, every series of a family
//! together. Item values keep the item's own unit (percent, load, ...):
//! hbmon items are not all of one unit, so no unit suffix is claimed.

use crate::pagemaker::auth::ThrottleStats;
use serde_json::Value;
use std::fmt::Write;

/// Heartbeat states a host may be in, as CLIENTS and DUMP name them.
pub const STATES: &[&str] = &["new", "up", "late", "down", "stopped"];

/// The exposition format's content type (for the `Content-Type` header).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A sample value as Prometheus parses it (`NaN`, `+Inf`, Go floats).
fn num(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        // Debug gives the shortest round-trip form, with an exponent for
        // tiny or huge values (Display would print 300 digits).
        format!("{v:?}")
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
                let _ = write!(self.0, "{k}=\"{}\"", escape_label(val));
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {}", num(v));
    }
}

fn f(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_f64()
}

fn s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_str()
}

fn state(h: &Value) -> &str {
    s(h, &["heartbeat", "state"]).unwrap_or("")
}

fn obj<'a>(v: &'a Value, path: &[&str]) -> Option<&'a serde_json::Map<String, Value>> {
    path.iter().try_fold(v, |v, k| v.get(*k))?.as_object()
}

/// `render_at` with the wall clock (for a last-seen time when DUMP is absent).
pub fn render(clients: &Value, server: Option<&Value>, levels: &[String]) -> String {
    render_at(clients, server, levels, crate::state::Now::wall_now())
}

/// The whole exposition. `levels` are the work's level names, best first
/// (an item's `hbmon_item_level` is its index there); `now` is the wall
/// time CLIENTS was answered, used only when DUMP gives no last-seen time.
pub fn render_at(clients: &Value, server: Option<&Value>, levels: &[String], now: f64) -> String {
    let empty = serde_json::Map::new();
    let hosts = obj(clients, &["cdmp"]).unwrap_or(&empty);
    let mut o = Out(String::with_capacity(256 + hosts.len() * 1200));
    host_families(&mut o, hosts, server, now);
    item_families(&mut o, hosts, levels);
    if let Some(d) = server {
        server_families(&mut o, d, levels);
    }
    o.0
}

fn host_families(
    o: &mut Out,
    hosts: &serde_json::Map<String, Value>,
    dump: Option<&Value>,
    now: f64,
) {
    o.family(
        "hbmon_host_info",
        "gauge",
        "Always 1: a host of the fleet, with its tag, address and hbmon version.",
    );
    for (name, h) in hosts {
        let tag = s(h, &["tag"]).unwrap_or("");
        let addr = s(h, &["address"]).unwrap_or("");
        let ver = s(h, &["heartbeat", "version"]).unwrap_or("");
        o.sample(
            "hbmon_host_info",
            &[("host", name), ("tag", tag), ("address", addr), ("version", ver)],
            1.0,
        );
    }
    o.family(
        "hbmon_host_up",
        "gauge",
        "1 when the host's heartbeats arrive (state up or late), else 0.",
    );
    for (name, h) in hosts {
        let up = matches!(state(h), "up" | "late");
        o.sample("hbmon_host_up", &[("host", name)], if up { 1.0 } else { 0.0 });
    }
    o.family(
        "hbmon_host_state",
        "gauge",
        "1 for the host's current heartbeat state, 0 for the others.",
    );
    for (name, h) in hosts {
        let st = state(h);
        for want in STATES {
            let v = if st == *want { 1.0 } else { 0.0 };
            o.sample("hbmon_host_state", &[("host", name), ("state", want)], v);
        }
    }
    o.family(
        "hbmon_heartbeat_rtt_seconds",
        "gauge",
        "Round-trip time of the host's last acknowledged heartbeat.",
    );
    for (name, h) in hosts {
        if let Some(ms) = f(h, &["heartbeat", "rtt_ms"]) {
            o.sample("hbmon_heartbeat_rtt_seconds", &[("host", name)], ms / 1000.0);
        }
    }
    o.family(
        "hbmon_heartbeat_phi",
        "gauge",
        "Phi-accrual suspicion of the host (higher: more likely down).",
    );
    for (name, h) in hosts {
        if let Some(phi) = f(h, &["heartbeat", "phi"]) {
            o.sample("hbmon_heartbeat_phi", &[("host", name)], phi);
        }
    }
    // DUMP has the wall time of the last heartbeat; CLIENTS only its age.
    let udp_hosts = dump.and_then(|d| server_part(d).get("udp")?.get("hosts")?.as_array());
    let dumped = |name: &str| {
        let hs = udp_hosts?;
        let h = hs.iter().find(|h| s(h, &["name"]) == Some(name))?;
        f(h, &["last_seen"])
    };
    o.family(
        "hbmon_host_last_seen_timestamp_seconds",
        "gauge",
        "Unix time of the host's last heartbeat.",
    );
    for (name, h) in hosts {
        let seen = dumped(name).or_else(|| f(h, &["heartbeat", "seen"]).map(|age| now - age));
        if let Some(t) = seen {
            o.sample("hbmon_host_last_seen_timestamp_seconds", &[("host", name)], t);
        }
    }
}

/// (host, item name, item JSON) of every item in the hosts' last reports.
fn items(hosts: &serde_json::Map<String, Value>) -> impl Iterator<Item = (&str, &str, &Value)> {
    hosts.iter().flat_map(|(name, h)| {
        obj(h, &["report", "items"])
            .into_iter()
            .flatten()
            .map(move |(item, v)| (name.as_str(), item.as_str(), v))
    })
}

fn level_index(levels: &[String], name: &str) -> Option<usize> {
    levels.iter().position(|l| l == name)
}

fn item_families(o: &mut Out, hosts: &serde_json::Map<String, Value>, levels: &[String]) {
    o.family("hbmon_item_value", "gauge", "The item's last value, in the item's own unit.");
    for (host, item, v) in items(hosts) {
        if let Some(x) = f(v, &["value"]) {
            o.sample("hbmon_item_value", &[("host", host), ("item", item)], x);
        }
    }
    o.family(
        "hbmon_item_level",
        "gauge",
        "The item's fitness level as an index into the work's levels (best = 0).",
    );
    let mut per_level = vec![0u64; levels.len()];
    for (host, item, v) in items(hosts) {
        if let Some(i) = s(v, &["level"]).and_then(|l| level_index(levels, l)) {
            per_level[i] += 1;
            o.sample("hbmon_item_level", &[("host", host), ("item", item)], i as f64);
        }
    }
    o.family("hbmon_item_timestamp_seconds", "gauge", "Unix time the item's last value was taken.");
    for (host, item, v) in items(hosts) {
        if let Some(t) = f(v, &["time"]) {
            o.sample("hbmon_item_timestamp_seconds", &[("host", host), ("item", item)], t);
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
pub fn render_logins(t: &ThrottleStats, sessions: usize) -> String {
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
        ("hbmon_dashboard_sessions", "gauge", "Open dashboard sessions.", sessions as f64),
    ] {
        o.family(name, kind, help);
        o.sample(name, &[], v);
    }
    o.0
}

#[cfg(test)]
#[path = "metrics_tests.rs"]
mod tests;
