//! The fleet view as CLIENTS and DUMP show it: a [`Snapshot`] of the hosts
//! the loop takes (plain values and shared reports, cheap to copy) and its
//! JSON (`body`), which the store thread serializes off the loop. Pure:
//! values in, text out.

use super::fleet::Report;
use super::hosts::ItemVal;
use crate::units::round_json;
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What CLIENTS shows of every host it names, as of the request.
pub struct Snapshot {
    pub rows: Vec<Row>,
    /// Wall time of the request (report ages).
    pub now: f64,
}

/// One host of the answer (`cdmp` / `hosts` entry).
pub struct Row {
    pub name: String,
    pub tag: String,
    pub address: String,
    pub in_work: bool,
    pub beat: Option<Beat>,
    /// The last report and whether it is stale (the host is not reachable).
    pub report: Option<(Arc<Report>, bool)>,
}

/// The `heartbeat` part of a host's entry, computed at the request.
#[derive(Serialize)]
pub struct Beat {
    pub state: &'static str,
    pub level: String,
    pub rtt_ms: Option<f64>,
    pub phi: Option<f64>,
    pub seen: Option<f64>,
    /// Observed loss (seq gaps) and probes answered while silent.
    pub lost: u64,
    pub loss: f64,
    pub answered_probes: u64,
    pub path_warning: bool,
    pub version: String,
    pub uptime: Option<f64>,
    pub items: BTreeMap<String, ItemVal>,
}

/// The report part of an entry (`fleet::report_json` plus `stale`).
#[derive(Serialize)]
struct ReportView<'a> {
    time: f64,
    age: f64,
    ip: &'a str,
    items: Option<&'a Value>,
    stale: bool,
}

impl Row {
    fn report_view(&self, now: f64) -> Option<ReportView<'_>> {
        self.report.as_ref().map(|(r, stale)| ReportView {
            time: round_json(r.time),
            age: (now - r.time).max(0.0).round(),
            ip: &r.ip,
            items: r.body.get("items"),
            stale: *stale,
        })
    }
}

/// A row with the time its report ages are counted from.
pub struct RowAt<'a>(pub &'a Row, pub f64);

impl Serialize for RowAt<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RowAt(r, now) = self;
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("tag", &r.tag)?;
        m.serialize_entry("address", &r.address)?;
        // The work's hosts and the strangers have always listed their keys
        // in these two orders; answers keep them.
        if r.in_work {
            m.serialize_entry("in_work", &true)?;
        }
        m.serialize_entry("heartbeat", &r.beat)?;
        m.serialize_entry("report", &r.report_view(*now))?;
        if !r.in_work {
            m.serialize_entry("in_work", &false)?;
        }
        m.end()
    }
}

/// The hosts as one JSON object, name -> entry, in snapshot order.
struct Hosts<'a>(&'a Snapshot);

impl Serialize for Hosts<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let v = self.0;
        s.collect_map(v.rows.iter().map(|r| (&r.name, RowAt(r, v.now))))
    }
}

/// The CLIENTS answer's JSON (run on the store thread): the hosts (as
/// `cdmp`, dmon's name kept for its tools, and as `hosts`, which says what
/// it is), the events and the open alerts.
pub fn body(view: &Snapshot, events: &[Value], notify: &Value) -> String {
    #[derive(Serialize)]
    struct Body<'a> {
        resp: &'static str,
        cdmp: Hosts<'a>,
        hosts: Hosts<'a>,
        events: &'a [Value],
        notify: &'a Value,
    }
    let b = Body { resp: "ok clients", cdmp: Hosts(view), hosts: Hosts(view), events, notify };
    // Serializing values we built cannot fail (string keys only).
    serde_json::to_string(&b).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_body_keeps_the_documented_key_order() {
        let report = Arc::new(Report {
            time: 100.0,
            ip: "127.0.0.2".into(),
            body: json!({"items": {"cpu": {"level": "fine"}}}),
        });
        let rows = vec![
            Row {
                name: "a".into(),
                tag: "ta".into(),
                address: "127.0.0.2".into(),
                in_work: true,
                beat: None,
                report: Some((report, false)),
            },
            Row {
                name: "s".into(),
                tag: "s".into(),
                address: String::new(),
                in_work: false,
                beat: None,
                report: None,
            },
        ];
        let text = body(&Snapshot { rows, now: 130.4 }, &[json!({"id": 1})], &json!([]));
        let host_a = r#"{"tag":"ta","address":"127.0.0.2","in_work":true,"heartbeat":null,"report":{"time":100.0,"age":30.0,"ip":"127.0.0.2","items":{"cpu":{"level":"fine"}},"stale":false}}"#;
        let host_s = r#"{"tag":"s","address":"","heartbeat":null,"report":null,"in_work":false}"#;
        let hosts = format!(r#"{{"a":{host_a},"s":{host_s}}}"#);
        let want = format!(
            r#"{{"resp":"ok clients","cdmp":{hosts},"hosts":{hosts},"events":[{{"id":1}}],"notify":[]}}"#
        );
        assert_eq!(text, want);
    }
}
