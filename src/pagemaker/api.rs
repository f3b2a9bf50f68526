//! The JSON API under `/api/v1/` (docs/api.md): hosts, one host, one item
//! on every host, events, alerts, history, a summary; POST ack and silence
//! for logged-in users. Errors are `{"error": "..."}` with a 4xx/5xx status.
//! The same visibility as the pages: a user sees only the hosts they may.

use super::fetch::{HostView, ItemView};
use super::login::{can_see, visible_host, User};
use super::views::parse_ival;
use super::web::{Method, Req, Resp, JSON};
use super::Shared;
use serde_json::{json, Value};

fn ok(v: Value) -> Resp {
    Resp::new(200, JSON, safe_json(&v))
}

pub fn error(status: u16, msg: &str) -> Resp {
    Resp::new(status, JSON, safe_json(&json!({ "error": msg })))
}

/// JSON with `<`, `>` and `&` as `\u` escapes: still the same JSON, but
/// inert if a browser is ever tricked into reading it as HTML.
pub fn safe_json(v: &Value) -> String {
    let s = v.to_string();
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("\\u003c"),
            '>' => o.push_str("\\u003e"),
            '&' => o.push_str("\\u0026"),
            c => o.push(c),
        }
    }
    o
}

pub fn route(sh: &Shared, req: &Req, user: Option<&User>, rest: &[&str]) -> Resp {
    match (req.method, rest) {
        (Method::Get, ["hosts"]) => hosts(sh, req, user),
        (Method::Get, ["hosts", h]) => host(sh, req, user, h),
        (Method::Get, ["items", i]) => item(sh, req, user, i),
        (Method::Get, ["events"]) => events(sh, req, user),
        (Method::Get, ["alerts"]) => alerts(sh, req, user),
        (Method::Get, ["history", h, i]) => history(sh, req, user, h, i),
        (Method::Get, ["summary"]) => summary(sh, req, user),
        (Method::Post, ["ack"]) => post(sh, req, user, "ack"),
        (Method::Post, ["silence"]) => post(sh, req, user, "silence"),
        (Method::Post, _) => error(405, "method not allowed"),
        _ => error(404, "no such API route"),
    }
}

fn item_json(i: &ItemView) -> Value {
    json!({"name": i.name, "value": i.value, "text": i.text, "level": i.level, "message": i.message,
           "error": i.error, "time": i.time, "unit": super::web::unit(&i.name)})
}

fn host_json(h: &HostView, items: bool) -> Value {
    let mut v = json!({"name": h.name, "tag": h.tag, "address": h.address, "in_work": h.in_work,
        "state": h.state, "up": h.state == "up", "rtt_ms": h.rtt_ms, "phi": h.phi, "seen_ago": h.seen,
        "version": h.version, "uptime": h.uptime, "report_age": h.report_age});
    if items {
        v["items"] = Value::Array(h.items.iter().map(item_json).collect());
    } else {
        v["items"] = json!(h.items.len());
    }
    v
}

fn meta(snap: &super::fetch::Snapshot, now: f64) -> Value {
    json!({"time": snap.fetched, "age": snap.age(now), "error": snap.error})
}

fn hosts(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let list: Vec<Value> = snap
        .fleet
        .hosts
        .iter()
        .filter(|h| can_see(&site, user, &h.name))
        .map(|h| host_json(h, false))
        .collect();
    ok(json!({"data": meta(&snap, req.now), "hosts": list}))
}

fn host(sh: &Shared, req: &Req, user: Option<&User>, name: &str) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    match visible_host(&snap.fleet, &site, user, name) {
        Some(h) => ok(json!({"data": meta(&snap, req.now), "host": host_json(h, true)})),
        None => error(404, &format!("no host {name}")),
    }
}

fn item(sh: &Shared, req: &Req, user: Option<&User>, name: &str) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let list: Vec<Value> = snap
        .fleet
        .hosts
        .iter()
        .filter(|h| can_see(&site, user, &h.name))
        .filter_map(|h| h.items.iter().find(|i| i.name == name).map(|i| (h, i)))
        .map(|(h, i)| {
            let mut v = item_json(i);
            v["host"] = json!(h.name);
            v
        })
        .collect();
    if list.is_empty() {
        return error(404, &format!("no host has an item {name}"));
    }
    ok(json!({"data": meta(&snap, req.now), "item": name, "hosts": list}))
}

fn events(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let site = sh.site();
    let mut args: Vec<String> = Vec::new();
    if let Some(h) = req.q("host") {
        let snap = sh.fetch.fleet(req.now);
        if !snap.fleet.hosts.iter().any(|x| x.name == h && can_see(&site, user, h)) {
            return error(404, &format!("no host {h}"));
        }
        args.push(h.to_string());
    }
    args.extend(req.q("item").map(str::to_string));
    let limit = match req.q("limit").map(str::parse::<usize>) {
        None => 100,
        Some(Ok(n)) if (1..=10_000).contains(&n) => n,
        Some(_) => return error(400, "limit must be 1..10000"),
    };
    match req.q("since") {
        // Seconds since the epoch, or an interval back from now (`1h`).
        Some(s) => {
            let back = match s.parse::<f64>() {
                Ok(t) if t > 1e9 => req.now - t,
                _ => match crate::ranges::parse_ival(s) {
                    Ok(b) if s.chars().any(|c| c.is_ascii_digit()) => b,
                    _ => return error(400, "since must be epoch seconds or an interval like 1h"),
                },
            };
            args.push(format!("{:.0}s", back.max(1.0)));
        }
        None => args.push(limit.to_string()),
    }
    let min = match req.q("level") {
        Some(l) if site.levels.iter().any(|x| x.name == l) => Some(site.level_index(l)),
        Some(l) => return error(400, &format!("no level {l}")),
        None => None,
    };
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    match sh.fetch.events(&refs) {
        Ok(es) => {
            let list: Vec<Value> = es
                .into_iter()
                .rev()
                .filter(|e| {
                    can_see(&site, user, e.get("host").and_then(Value::as_str).unwrap_or(""))
                })
                .filter(|e| {
                    let nl = e.get("new_level").and_then(Value::as_str).unwrap_or("");
                    min.is_none_or(|m| site.level_index(nl) >= m)
                })
                .take(limit)
                .collect();
            ok(json!({"events": list}))
        }
        Err(e) => error(502, &format!("server: {e}")),
    }
}

fn alerts(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let list: Vec<Value> = snap
        .fleet
        .alerts
        .iter()
        .filter(|a| can_see(&site, user, &a.host))
        .map(|a| {
            json!({"host": a.host, "item": a.item, "level": a.level, "value": a.value, "since": a.since,
                   "acked": a.acked, "silenced": a.silenced, "flapping": a.flapping,
                   "suppressed_by": a.suppressed_by, "channels": a.channels})
        })
        .collect();
    ok(json!({"data": meta(&snap, req.now), "alerts": list}))
}

fn history(sh: &Shared, req: &Req, user: Option<&User>, host: &str, item: &str) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let Some(h) = visible_host(&snap.fleet, &site, user, host) else {
        return error(404, &format!("no host {host}"));
    };
    if !h.items.iter().any(|i| i.name == item) && item != "rtt" {
        return error(404, &format!("no item {item} on {}", h.name));
    }
    let ival = parse_ival(req.q("ival"));
    let pnts = match req.q("pnts").map(str::parse::<u32>) {
        None => super::views::ival_span(ival).1,
        Some(Ok(n)) if (1..=2000).contains(&n) => n,
        Some(_) => return error(400, "pnts must be 1..2000"),
    };
    match sh.fetch.hist(&h.name, ival, pnts, &[item]) {
        Ok(d) => {
            let pts = super::svg::series_of(&d, item).unwrap_or_default();
            let rows: Vec<Value> = pts.iter().map(|(t, v)| json!([t, v])).collect();
            ok(
                json!({"host": h.name, "item": item, "ival": ival.to_string(), "unit": super::web::unit(item),
                      "cols": ["TIME", item], "rows": rows}),
            )
        }
        Err(e) => error(502, &format!("history of {} unavailable: {e}", h.name)),
    }
}

fn summary(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let mut states = serde_json::Map::new();
    let mut levels: serde_json::Map<String, Value> =
        site.levels.iter().map(|l| (l.name.clone(), json!(0))).collect();
    let mut n = 0;
    for h in snap.fleet.hosts.iter().filter(|h| can_see(&site, user, &h.name)) {
        n += 1;
        let e = states.entry(h.state.clone()).or_insert(json!(0));
        *e = json!(e.as_u64().unwrap_or(0) + 1);
        for l in h.items.iter().filter_map(|i| i.level.as_deref()) {
            if let Some(e) = levels.get_mut(l) {
                *e = json!(e.as_u64().unwrap_or(0) + 1);
            }
        }
    }
    let open = snap.fleet.alerts.iter().filter(|a| can_see(&site, user, &a.host)).count();
    ok(json!({"data": meta(&snap, req.now), "hosts": n, "states": states, "items_by_level": levels,
              "alerts": open, "deliveries_pending": snap.fleet.outbox_pending, "deliveries_failed": snap.fleet.outbox_failed}))
}

/// POST ack / silence: the page's handler, answered as JSON.
fn post(sh: &Shared, req: &Req, user: Option<&User>, what: &str) -> Resp {
    if user.is_none() {
        return error(401, "log in first");
    }
    let r = super::views::change(sh, req, user, what);
    if r.status != 303 {
        return error(r.status, String::from_utf8_lossy(&r.body).trim());
    }
    let loc =
        r.headers.iter().find(|(k, _)| k == "Location").map(|(_, v)| v.as_str()).unwrap_or("");
    let msg = super::web::pct_decode(loc.trim_start_matches("/alerts?msg="));
    if msg.contains(" failed: ") {
        error(502, &msg)
    } else {
        ok(json!({"ok": msg}))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_is_inert_in_html() {
        let v = serde_json::json!({"name": "<script>alert(1)</script> & co"});
        let s = super::safe_json(&v);
        assert!(!s.contains('<') && !s.contains('&'), "{s}");
        let back: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v, "the same JSON");
    }
}
