//! The fleet's durable state on the server: events (stored before the
//! sender is told ok, de-duplicated by `(host, id)`) and the latest report
//! of every host. Payload checks live here too, so a malformed or foreign
//! REPORT/EVENTS is refused before anything is stored. No sockets.

use crate::error::{Error, Result};
use crate::event::Event;
use rusqlite::{params, Connection};
use serde_json::Value;
use std::collections::BTreeMap;

/// Most events one EVENTS batch may carry.
pub const MAX_EVENTS_PER_BATCH: usize = 10_000;

/// A client's latest report, as the server keeps it.
#[derive(Debug, Clone)]
pub struct Report {
    pub time: f64,
    pub ip: String,
    pub body: Value,
}

/// An EVENTS payload, checked.
#[derive(Debug)]
pub struct EventsBatch {
    pub host: String,
    pub events: Vec<Event>,
}

/// Parses `EVENTS <json>`: `{"host": H, "events": [Event...]}`; every event
/// must be for H.
pub fn parse_events(rest: &str) -> std::result::Result<EventsBatch, String> {
    #[derive(serde::Deserialize)]
    struct Wire {
        host: String,
        events: Vec<Event>,
    }
    let w: Wire = serde_json::from_str(rest).map_err(|e| format!("bad EVENTS JSON: {e}"))?;
    if w.events.len() > MAX_EVENTS_PER_BATCH {
        return Err(format!("too many events ({} > {MAX_EVENTS_PER_BATCH})", w.events.len()));
    }
    if let Some(e) = w.events.iter().find(|e| e.host != w.host) {
        return Err(format!("event {} is for {}, not {}", e.id, e.host, w.host));
    }
    if let Some(e) = w.events.iter().find(|e| e.id.is_empty() || e.item.is_empty()) {
        return Err(format!("event without id or item ({:?})", e.id));
    }
    Ok(EventsBatch { host: w.host, events: w.events })
}

/// A REPORT's JSON is at most this long (the server keeps one per host,
/// so this bounds the memory a host can take).
pub const MAX_REPORT_BYTES: usize = 512 * 1024;
/// Items per REPORT at most.
pub const MAX_REPORT_ITEMS: usize = 1000;
/// One item's JSON (name and state) at most.
pub const MAX_ITEM_BYTES: usize = 4096;

/// Parses `REPORT <json>`: an object with `host` (string) and `items`,
/// within the limits above (issue 13 item 7: oversized reports are refused
/// with the limit they broke, before anything is kept).
pub fn parse_report(rest: &str) -> std::result::Result<(String, Value), String> {
    if rest.len() > MAX_REPORT_BYTES {
        return Err(format!("REPORT too large: {} bytes (at most {MAX_REPORT_BYTES})", rest.len()));
    }
    let v: Value = serde_json::from_str(rest).map_err(|e| format!("bad REPORT JSON: {e}"))?;
    check_report_items(v.get("items"))?;
    let host = v
        .get("host")
        .and_then(Value::as_str)
        .ok_or_else(|| "REPORT without a host".to_string())?
        .to_string();
    match v.get("items") {
        Some(Value::Object(_)) | Some(Value::Array(_)) => Ok((host, v)),
        _ => Err("REPORT without items".into()),
    }
}

fn check_report_items(items: Option<&Value>) -> std::result::Result<(), String> {
    let check = |name: &str, v: &Value| {
        let n = name.len() + json_len(v);
        if n > MAX_ITEM_BYTES {
            let name: String = name.chars().take(64).collect();
            return Err(format!(
                "REPORT item '{name}' too large: {n} bytes (at most {MAX_ITEM_BYTES})"
            ));
        }
        Ok(())
    };
    let n = match items {
        Some(Value::Object(m)) => {
            for (k, v) in m {
                check(k, v)?;
            }
            m.len()
        }
        Some(Value::Array(a)) => {
            for v in a {
                check("", v)?;
            }
            a.len()
        }
        _ => 0,
    };
    if n > MAX_REPORT_ITEMS {
        return Err(format!("REPORT has {n} items (at most {MAX_REPORT_ITEMS})"));
    }
    Ok(())
}

/// The length of `v`'s compact JSON text, counted as it is written, not
/// kept: the loop checks every item of every REPORT against its limit.
fn json_len(v: &Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// Stores events in one transaction; returns how many were new (a retry of
/// an already stored event is ignored).
pub fn store_events(conn: &Connection, events: &[Event], now: f64) -> Result<usize> {
    let db = |op: &str, e| Error::db(op.to_string(), e);
    let tx = super::db::Savepoint::new(conn).map_err(|e| db("begin events", e))?;
    let mut new = 0;
    {
        let mut ins = tx
            .prepare_cached(
                "INSERT OR IGNORE INTO events(host,id,item,time,received,json) VALUES(?1,?2,?3,?4,?5,?6)",
            )
            .map_err(|e| db("prepare events", e))?;
        for e in events {
            let js = serde_json::to_string(e).unwrap_or_default();
            new += ins
                .execute(params![e.host, e.id, e.item, e.time, now, js])
                .map_err(|e| db("insert event", e))?;
        }
    }
    tx.commit().map_err(|e| db("commit events", e))?;
    Ok(new)
}

/// Which events CLIENTS returns.
#[derive(Debug, Clone, PartialEq)]
pub enum EventsFilter {
    Last(usize),
    Since(f64),
}

pub fn query_events(
    conn: &Connection,
    host: Option<&str>,
    item: Option<&str>,
    filter: &EventsFilter,
) -> Result<Vec<Value>> {
    let (limit, since) = match filter {
        EventsFilter::Last(n) => (*n as i64, f64::MIN),
        EventsFilter::Since(t) => (-1, *t),
    };
    let mut q = conn
        .prepare_cached(
            "SELECT json FROM events WHERE (?1 IS NULL OR host=?1) AND (?2 IS NULL OR item=?2)
             AND time >= ?3 ORDER BY time DESC, seq DESC LIMIT ?4",
        )
        .map_err(|e| Error::db("prepare events query", e))?;
    let rows = q
        .query_map(params![host, item, since, limit], |r| r.get::<_, String>(0))
        .map_err(|e| Error::db("events query", e))?;
    let mut out = Vec::new();
    for r in rows {
        let s = r.map_err(|e| Error::db("events row", e))?;
        out.push(serde_json::from_str(&s).unwrap_or(Value::Null));
    }
    out.reverse();
    Ok(out)
}

/// The newest event (in the order they were stored) of every host-item.
pub fn latest_events(conn: &Connection) -> Result<Vec<Event>> {
    // SQLite gives the bare column `json` from the row holding max(seq).
    let mut q = conn
        .prepare("SELECT json, max(seq) FROM events GROUP BY host, item")
        .map_err(|e| Error::db("prepare latest events", e))?;
    let rows =
        q.query_map([], |r| r.get::<_, String>(0)).map_err(|e| Error::db("latest events", e))?;
    let mut out = Vec::new();
    for r in rows {
        let s = r.map_err(|e| Error::db("latest events row", e))?;
        match serde_json::from_str::<Event>(&s) {
            Ok(e) => out.push(e),
            Err(e) => log::warn!("skipping an unreadable stored event: {e}"),
        }
    }
    Ok(out)
}

pub fn count_events(conn: &Connection) -> u64 {
    conn.query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0)).unwrap_or(0) as u64
}

/// Deletes events older than `before`; returns how many.
pub fn cleanup_events(conn: &Connection, before: f64) -> Result<usize> {
    conn.execute("DELETE FROM events WHERE time < ?1", params![before])
        .map_err(|e| Error::db("clean events", e))
}

/// Stores `host`'s latest report, its JSON as the client sent it (`json`,
/// checked by `parse_report`): one statement, prepared once per connection
/// (the store thread runs it for every REPORT, and parsing the upsert again
/// each time cost as much as running it).
pub fn store_report(conn: &Connection, host: &str, time: f64, ip: &str, json: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO reports(host,time,ip,json) VALUES(?1,?2,?3,?4)
         ON CONFLICT(host) DO UPDATE SET time=excluded.time, ip=excluded.ip, json=excluded.json",
    )
    .and_then(|mut q| q.execute(params![host, time, ip, json]))
    .map_err(|e| Error::db("store report", e))?;
    Ok(())
}

pub fn load_reports(conn: &Connection) -> Result<BTreeMap<String, Report>> {
    let mut q = conn
        .prepare("SELECT host,time,ip,json FROM reports")
        .map_err(|e| Error::db("prepare reports", e))?;
    let rows = q
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, f64>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })
        .map_err(|e| Error::db("load reports", e))?;
    let mut out = BTreeMap::new();
    for r in rows.flatten() {
        let body = serde_json::from_str(&r.3).unwrap_or(Value::Null);
        out.insert(r.0, Report { time: r.1, ip: r.2.unwrap_or_default(), body });
    }
    Ok(out)
}

/// Parses CLIENTS' arguments `[host] [item] [n or ival]`: a known host
/// (fqdn or tag) is the host, a number is a count, an interval spec with a
/// unit (`1h`) a time window, a known item the item. A first word that is
/// neither a known host nor a known item is an error (a mistyped host must
/// not answer with the whole fleet).
pub fn parse_clients_args(
    args: &[String],
    resolve_host: impl Fn(&str) -> Option<String>,
    known_item: impl Fn(&str) -> bool,
    now: f64,
) -> std::result::Result<(Option<String>, Option<String>, EventsFilter), String> {
    let (mut host, mut item, mut filter) = (None, None, EventsFilter::Last(100));
    for a in args {
        if crate::ranges::looks_numeric(a) {
            filter = EventsFilter::Last(crate::ranges::check_count("CLIENTS n", a)? as usize);
        } else if host.is_none() && item.is_none() && resolve_host(a).is_some() {
            host = resolve_host(a);
        } else if a.chars().any(|c| c.is_ascii_digit()) && crate::ranges::parse_ival(a).is_ok() {
            let secs = crate::ranges::parse_ival(a).unwrap_or(0.0);
            filter = EventsFilter::Since(now - crate::ranges::check_ival("CLIENTS ival", secs)?);
        } else if item.is_none() && (host.is_some() || known_item(a)) {
            item = Some(a.clone());
        } else if host.is_none() && item.is_none() {
            return Err(format!("CLIENTS: no host or item named '{a}'"));
        } else {
            return Err(format!("CLIENTS: unexpected argument '{a}'"));
        }
    }
    Ok((host, item, filter))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn oversized_reports_are_refused_13_7() {
        let items = |n: usize, len: usize| {
            let m: serde_json::Map<String, Value> =
                (0..n).map(|i| (format!("i{i}"), json!({"error": "x".repeat(len)}))).collect();
            json!({"host": "h", "items": m}).to_string()
        };
        assert!(parse_report(&items(MAX_REPORT_ITEMS, 100)).is_ok());
        let e = parse_report(&items(MAX_REPORT_ITEMS + 1, 1)).unwrap_err();
        assert_eq!(e, "REPORT has 1001 items (at most 1000)");
        let e = parse_report(&items(1, MAX_ITEM_BYTES)).unwrap_err();
        assert!(e.starts_with("REPORT item 'i0' too large: "), "{e}");
        let e = parse_report(&items(200, 3000)).unwrap_err();
        assert!(e.starts_with("REPORT too large: ") && e.ends_with("(at most 524288)"), "{e}");
    }

    #[test]
    fn an_items_length_is_its_json_texts() {
        for v in [json!({"v": 1.5, "s": "a\"b\u{e9}", "l": [1, null]}), json!("x"), json!({})] {
            assert_eq!(json_len(&v), v.to_string().len(), "{v}");
        }
    }

    fn ev(host: &str, id: &str, item: &str, t: f64) -> Event {
        Event {
            id: id.into(),
            host: host.into(),
            item: item.into(),
            old_level: Some("fine".into()),
            new_level: "sick".into(),
            old_value: Some(1.0),
            new_value: Some(9.0),
            time: t,
            message: String::new(),
        }
    }

    #[test]
    fn events_are_stored_once() {
        let c = super::super::db::open_in_memory().unwrap();
        let es = vec![ev("a", "1", "x", 10.0), ev("a", "2", "y", 11.0)];
        assert_eq!(store_events(&c, &es, 12.0).unwrap(), 2);
        assert_eq!(store_events(&c, &es, 13.0).unwrap(), 0, "a retry stores nothing");
        assert_eq!(store_events(&c, &[ev("b", "1", "x", 12.0)], 13.0).unwrap(), 1);
        assert_eq!(count_events(&c), 3);
        let all = query_events(&c, None, None, &EventsFilter::Last(10)).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0]["id"], "1", "oldest first");
        let a = query_events(&c, Some("a"), Some("y"), &EventsFilter::Last(10)).unwrap();
        assert_eq!(a.len(), 1);
        let recent = query_events(&c, None, None, &EventsFilter::Since(11.5)).unwrap();
        assert_eq!(recent.len(), 1);
        let last = query_events(&c, None, None, &EventsFilter::Last(1)).unwrap();
        assert_eq!(last[0]["host"], "b");
        assert_eq!(cleanup_events(&c, 10.5).unwrap(), 1);
    }

    #[test]
    fn payload_checks() {
        assert!(parse_events("{").unwrap_err().starts_with("bad EVENTS JSON"));
        let e = serde_json::to_string(&ev("b", "1", "x", 1.0)).unwrap();
        let p = format!("{{\"host\":\"a\",\"events\":[{e}]}}");
        assert!(parse_events(&p).unwrap_err().contains("is for b, not a"));
        let p = format!("{{\"host\":\"b\",\"events\":[{e}]}}");
        assert_eq!(parse_events(&p).unwrap().events.len(), 1);
        assert!(parse_report("[]").is_err());
        assert!(parse_report("{\"host\":\"a\"}").unwrap_err().contains("without items"));
        assert_eq!(parse_report("{\"host\":\"a\",\"items\":{}}").unwrap().0, "a");
    }

    #[test]
    fn clients_args_unknown_host_is_an_error_12_9() {
        let r = |h: &str| (h == "www1").then(|| "www1.example.org".to_string());
        let k = |i: &str| i == "disk_used:/" || i == "cpu_load";
        let (h, i, f) =
            parse_clients_args(&["www1".into(), "cpu_load".into(), "5".into()], r, k, 100.0)
                .unwrap();
        assert_eq!(h.as_deref(), Some("www1.example.org"));
        assert_eq!(i.as_deref(), Some("cpu_load"));
        assert_eq!(f, EventsFilter::Last(5));
        let (h, i, f) =
            parse_clients_args(&["disk_used:/".into(), "1h".into()], r, k, 7200.0).unwrap();
        assert_eq!((h, i.as_deref()), (None, Some("disk_used:/")));
        assert_eq!(f, EventsFilter::Since(3600.0));
        assert!(parse_clients_args(&["www1".into(), "b".into(), "c".into()], r, k, 0.0).is_err());
        // An unknown first word is neither all hosts nor an item filter.
        let e = parse_clients_args(&["nosuch.example.org".into()], r, k, 0.0).unwrap_err();
        assert!(e.contains("no host or item named 'nosuch.example.org'"), "{e}");
        // After a host, any item may be asked for (it may have none yet).
        let (_, i, _) = parse_clients_args(&["www1".into(), "new_item".into()], r, k, 0.0).unwrap();
        assert_eq!(i.as_deref(), Some("new_item"));
    }

    #[test]
    fn reports_round_trip() {
        let c = super::super::db::open_in_memory().unwrap();
        let r = Report { time: 5.0, ip: "127.0.0.2".into(), body: json!({"host":"a","items":{}}) };
        let text = r.body.to_string();
        store_report(&c, "a", r.time, &r.ip, &text).unwrap();
        store_report(&c, "a", 6.0, &r.ip, &text).unwrap();
        let all = load_reports(&c).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all["a"].time, 6.0);
    }
}
