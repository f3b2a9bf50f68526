//! Tables for people from the command port's JSON: `hbmon clients`,
//! `hbmon hist`, `hbmon events` (the raw JSON stays on the port, for
//! programs). Pure: JSON in, aligned text out; values with their units.

use crate::clock::fmt_time;
use crate::units::fmt_with_unit;
use serde_json::Value;

/// Columns padded to their widest cell, two spaces apart; the last column
/// is not padded (no trailing blanks).
pub fn render(head: &[&str], rows: &[Vec<String>]) -> String {
    let n = head.len();
    let mut w: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 < cells.len() {
                l.push_str(&format!("{c:<width$}  ", width = w[i]));
            } else {
                l.push_str(c);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(head.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(x) => x.clone(),
        x => x.to_string(),
    }
}

fn age(v: &Value) -> String {
    v.as_f64().map(crate::units::fmt_duration).unwrap_or_else(|| "-".into())
}

/// The worst level among a report's items, by the order `levels` (best first).
fn worst(items: &Value, levels: &[&str]) -> String {
    let Some(m) = items.as_object() else { return "-".into() };
    let rank = |l: &str| levels.iter().position(|x| *x == l).unwrap_or(levels.len());
    m.values()
        .filter_map(|i| i.get("level").and_then(Value::as_str))
        .max_by_key(|l| rank(l))
        .unwrap_or("-")
        .to_string()
}

/// `hbmon clients`: one row per host of a CLIENTS answer.
pub fn clients(answer: &Value, levels: &[&str]) -> String {
    let hosts = answer.get("hosts").or_else(|| answer.get("cdmp"));
    let mut rows = Vec::new();
    for (name, h) in hosts.and_then(Value::as_object).into_iter().flatten() {
        let hb = &h["heartbeat"];
        let rep = &h["report"];
        let stale = rep["stale"].as_bool() == Some(true);
        let items = rep["items"].as_object().map(|m| m.len()).unwrap_or(0);
        rows.push(vec![
            name.clone(),
            s(&hb["state"]),
            hb["rtt_ms"].as_f64().map(|v| fmt_with_unit("rtt", v)).unwrap_or_else(|| "-".into()),
            age(&hb["seen"]),
            age(&hb["uptime"]),
            age(&rep["age"]),
            items.to_string(),
            if stale { "stale".into() } else { worst(&rep["items"], levels) },
        ]);
    }
    render(&["HOST", "STATE", "RTT", "SEEN", "UPTIME", "REPORT", "ITEMS", "WORST"], &rows)
}

/// The items of one host's last report: name, value with unit, level, age.
pub fn host_items(answer: &Value, host: &str, now: f64) -> String {
    let hosts = answer.get("hosts").or_else(|| answer.get("cdmp"));
    let rep = hosts.and_then(|h| h.get(host)).map(|h| &h["report"]);
    let stale = rep.is_some_and(|r| r["stale"].as_bool() == Some(true));
    let mut rows = Vec::new();
    for (name, it) in rep.and_then(|r| r["items"].as_object()).into_iter().flatten() {
        let value = it["value"].as_f64().map(|v| fmt_with_unit(name, v));
        let note = it["error"].as_str().or(it["message"].as_str()).unwrap_or("");
        rows.push(vec![
            name.clone(),
            value.unwrap_or_else(|| "-".into()),
            if stale { "stale".into() } else { s(&it["level"]) },
            it["time"].as_f64().map(|t| crate::units::fmt_duration(now - t)).unwrap_or("-".into()),
            note.to_string(),
        ]);
    }
    render(&["ITEM", "VALUE", "LEVEL", "AGE", "NOTE"], &rows)
}

/// `hbmon events`: the events of a CLIENTS answer, oldest first.
pub fn events(answer: &Value) -> String {
    let mut rows = Vec::new();
    for e in answer["events"].as_array().into_iter().flatten() {
        let item = s(&e["item"]);
        let val = |v: &Value| v.as_f64().map(|x| fmt_with_unit(&item, x)).unwrap_or("-".into());
        rows.push(vec![
            e["time"].as_f64().map(fmt_time).unwrap_or_else(|| "-".into()),
            s(&e["host"]),
            item.clone(),
            format!("{} -> {}", s(&e["old_level"]), s(&e["new_level"])),
            format!("{} -> {}", val(&e["old_value"]), val(&e["new_value"])),
            e["message"].as_str().unwrap_or("").to_string(),
        ]);
    }
    render(&["TIME", "HOST", "ITEM", "LEVEL", "VALUE", "MESSAGE"], &rows)
}

/// `hbmon hist`: a HIST answer as rows of time and values with units.
pub fn hist(answer: &Value) -> String {
    let cols: Vec<String> =
        answer["data"]["cols"].as_array().into_iter().flatten().map(s).collect();
    let mut rows = Vec::new();
    for r in answer["data"]["rows"].as_array().into_iter().flatten() {
        let Some(cells) = r.as_array() else { continue };
        let mut row = Vec::with_capacity(cols.len());
        for (i, c) in cells.iter().enumerate() {
            row.push(match (i, c.as_f64()) {
                (0, Some(t)) => fmt_time(t).trim_end_matches(" UTC").to_string(),
                (_, Some(v)) => fmt_with_unit(cols.get(i).map(String::as_str).unwrap_or(""), v),
                _ => "-".into(),
            });
        }
        rows.push(row);
    }
    let mut head: Vec<&str> = cols.iter().map(String::as_str).collect();
    if let Some(h) = head.first_mut() {
        *h = "TIME (UTC)";
    }
    render(&head, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn aligned_columns_without_trailing_blanks() {
        let t = render(&["A", "BB", "C"], &[vec!["xxx".into(), "y".into(), "z".into()]]);
        assert_eq!(t, "A    BB  C\nxxx  y   z\n");
    }

    #[test]
    fn clients_table_has_units_and_marks_stale_hosts() {
        let a = json!({"resp":"ok clients","hosts":{
            "a.example":{"heartbeat":{"state":"up","rtt_ms":0.523,"seen":2.2,"uptime":780.0},
                "report":{"age":64.0,"stale":false,"items":{"x":{"level":"fine"},"y":{"level":"sick"}}}},
            "b.example":{"heartbeat":{"state":"down","rtt_ms":null,"seen":300.0,"uptime":null},
                "report":{"age":400.0,"stale":true,"items":{"x":{"level":"fine"}}}}}});
        let t = clients(&a, &["fine", "soso", "sick"]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "HOST       STATE  RTT     SEEN  UPTIME  REPORT  ITEMS  WORST");
        assert_eq!(lines[1], "a.example  up     0.52ms  2s    13m     1m4s    2      sick");
        assert_eq!(lines[2], "b.example  down   -       5m    -       6m40s   1      stale");
    }

    #[test]
    fn hist_table_formats_time_and_units() {
        let a = json!({"resp":"ok rows 2","data":{"cols":["TIME","disk_used:/","uptime"],
            "rows":[[1796121360, null, null],[1796121420, 41.234, 780.0]]}});
        let t = hist(&a);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "TIME (UTC)           disk_used:/  uptime");
        assert_eq!(lines[1], "2026-12-01 10:36:00  -            -");
        assert_eq!(lines[2], "2026-12-01 10:37:00  41.2%        13m");
    }

    #[test]
    fn events_table() {
        let a = json!({"events":[{"id":"1","host":"a","item":"mem_used","old_level":"fine",
            "new_level":"sick","old_value":3.0,"new_value":91.25,"time":1796121420.0,"message":""}]});
        let t = events(&a);
        assert!(
            t.lines().nth(1).unwrap().starts_with(
                "2026-12-01 10:37:00 UTC  a     mem_used  fine -> sick  3.0% -> 91.2%"
            ),
            "{t}"
        );
    }
}
