//! HIST (DESIGN.md §3): bucket averages over a time range, one SQL query.
//!
//! Buckets are aligned on multiples of their width since the epoch; the
//! last bucket is the one holding `now`. Rows come for every bucket of the
//! range (ascending), `null` where an item has no data. Columns are the
//! asked items, or every item the history knows, sorted.

use super::History;
use crate::error::{Error, Result};
use serde_json::{json, Value};
use std::collections::HashMap;

/// The buckets of one HIST answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistSpan {
    /// Bucket width, seconds.
    pub width: i64,
    /// Number of buckets (rows).
    pub rows: i64,
}

/// A bucket expected to hold at least this many stored rows per item is
/// summed inside SQLite rather than streamed.
const DENSE_ROWS: i64 = 16;

/// dmon's groupings: (letter, bucket width s, rows).
const GROUPINGS: &[(char, i64, i64)] = &[
    ('H', 60, 60),
    ('D', 600, 145),
    ('W', 3600, 168),
    ('M', 4 * 3600, 186),
    ('Y', 2 * 86400, 184),
];

/// `ival` (H/D/W/M/Y, first letter, any case; empty = H) and an optional
/// `pnts` -> the buckets. A given `pnts` keeps the default range
/// (width x rows) and picks the width so about `pnts` rows come back.
/// Bad arguments are `Error::Usage` (the verb answers `COMMAND ERROR bad args`).
pub fn parse_hist_ival(ival: &str, pnts: Option<u32>) -> Result<HistSpan> {
    let letter = ival.trim().chars().next().unwrap_or('H').to_ascii_uppercase();
    let Some(&(_, width, rows)) = GROUPINGS.iter().find(|g| g.0 == letter) else {
        return Err(Error::Usage(format!("bad args: interval {ival:?} is not H, D, W, M or Y")));
    };
    match pnts {
        None => Ok(HistSpan { width, rows }),
        Some(0) => Err(Error::Usage("bad args: pnts must be at least 1".into())),
        Some(p) if p > 100_000 => Err(Error::Usage(format!("bad args: pnts {p} is over 100000"))),
        Some(p) => {
            let range = width * rows;
            let w = (range + i64::from(p) - 1) / i64::from(p);
            let w = w.max(1);
            Ok(HistSpan { width: w, rows: (range + w - 1) / w })
        }
    }
}

/// The arguments of `HIST [ival] [pnts] [host] [item...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct HistArgs {
    pub ival: String,
    pub pnts: Option<u32>,
    pub host: Option<String>,
    pub items: Vec<String>,
}

/// Splits HIST's arguments. `ival` is taken only when the first argument is
/// an interval word (`h`, `hour(s)`, `d`, `day(s)`, `w`, `week(s)`, `m`,
/// `month(s)`, `y`, `year(s)`, any case), so items such as `heartbeat` or
/// `disk_used:/` are never mistaken for one; `pnts` when the next is all
/// digits; `host` when `is_host` says so; the rest are items.
pub fn parse_hist_args(args: &[&str], is_host: impl Fn(&str) -> bool) -> Result<HistArgs> {
    const WORDS: &[&str] = &[
        "h", "hour", "hours", "d", "day", "days", "w", "week", "weeks", "m", "month", "months",
        "y", "year", "years",
    ];
    let mut rest = args.iter().copied().peekable();
    let ival = match rest.peek() {
        Some(a) if WORDS.contains(&a.to_ascii_lowercase().as_str()) => {
            rest.next().unwrap_or("H").to_string()
        }
        _ => "H".to_string(),
    };
    let pnts = match rest.peek() {
        Some(a) if !a.is_empty() && a.bytes().all(|b| b.is_ascii_digit()) => {
            let p = a.parse::<u32>().map_err(|_| Error::Usage(format!("bad args: pnts {a}")))?;
            rest.next();
            Some(p)
        }
        _ => None,
    };
    let host = match rest.peek() {
        Some(a) if is_host(a) => rest.next().map(str::to_string),
        _ => None,
    };
    let out = HistArgs { ival, pnts, host, items: rest.map(str::to_string).collect() };
    parse_hist_ival(&out.ival, out.pnts)?;
    Ok(out)
}

/// Rounds to 6 significant digits: enough for any gauge, and short JSON.
fn round_sig(v: f64) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let digits = 5 - v.abs().log10().floor() as i32;
    let m = 10f64.powi(digits);
    let r = (v * m).round() / m;
    if r.is_finite() {
        r
    } else {
        v
    }
}

impl History {
    /// The HIST answer body for `items` (empty = all) at `now`.
    pub fn hist(&self, ival: &str, pnts: Option<u32>, items: &[String], now: f64) -> Result<Value> {
        let span = parse_hist_ival(ival, pnts)?;
        self.hist_span(span, items, now)
    }

    pub fn hist_span(&self, span: HistSpan, items: &[String], now: f64) -> Result<Value> {
        let w = span.width;
        let last = (now as i64).div_euclid(w) * w;
        let first = last - (span.rows - 1) * w;
        let mut cols: Vec<String> =
            if items.is_empty() { self.item_names()? } else { items.to_vec() };
        cols.sort();
        cols.dedup();
        let col_of: HashMap<&str, usize> =
            cols.iter().enumerate().map(|(i, c)| (c.as_str(), i)).collect();
        // items.id -> column, for the asked items that the history knows.
        let mut col_of_id: HashMap<i64, usize> = HashMap::new();
        {
            let mut st = self
                .conn
                .prepare_cached("SELECT id, name FROM items")
                .map_err(|e| Error::db("prepare HIST items", e))?;
            let mut rows = st.query([]).map_err(|e| Error::db("list HIST items", e))?;
            while let Some(r) = rows.next().map_err(|e| Error::db("read HIST item", e))? {
                let id: i64 = r.get(0).map_err(|e| Error::db("read HIST item id", e))?;
                let name: String = r.get(1).map_err(|e| Error::db("read HIST item name", e))?;
                if let Some(&c) = col_of.get(name.as_str()) {
                    col_of_id.insert(id, c);
                }
            }
        }
        let n = cols.len();
        let mut sum = vec![0.0f64; n * span.rows as usize];
        let mut cnt = vec![0u32; n * span.rows as usize];

        // `item IN (...)` makes SQLite seek the (item, t) key per item
        // instead of scanning the whole table for the time range.
        let mut ids: Vec<i64> = col_of_id.keys().copied().collect();
        ids.sort_unstable();
        let list = ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        let mut acc = |id: i64, row: i64, v: f64, c_n: u32| {
            let Some(&c) = col_of_id.get(&id) else { return };
            if (0..span.rows).contains(&row) {
                let k = row as usize * n + c;
                sum[k] += v;
                cnt[k] += c_n;
            }
        };
        // Buckets holding many stored rows each (the recent, finer tiers)
        // are summed inside SQLite, one query per bucket grouped by item
        // (index order, so no sort); sparse older buckets are streamed as
        // rows and bucketed here. Handing every row to Rust, or grouping by
        // `t / width` in SQL (a temp B-tree sort of every row), cost 2-4x
        // more on a year of history.
        let split = (0..span.rows)
            .map(|i| first + i * w)
            .find(|b| w >= DENSE_ROWS * super::zap::stored_width(now as i64 - b))
            .unwrap_or(last + w);
        if split > first {
            let sql = format!(
                "SELECT item, t, v FROM samples WHERE item IN ({list}) AND t >= ?1 AND t < ?2"
            );
            let mut st = self.conn.prepare(&sql).map_err(|e| Error::db("prepare HIST", e))?;
            let mut rows = st.query([first, split]).map_err(|e| Error::db("run HIST", e))?;
            while let Some(r) = rows.next().map_err(|e| Error::db("read HIST row", e))? {
                let id: i64 = r.get(0).map_err(|e| Error::db("read HIST item", e))?;
                let t: i64 = r.get(1).map_err(|e| Error::db("read HIST time", e))?;
                let v: f64 = r.get(2).map_err(|e| Error::db("read HIST value", e))?;
                acc(id, (t - first).div_euclid(w), v, 1);
            }
        }
        if split <= last {
            let sql = format!(
                "SELECT item, sum(v), count(*) FROM samples \
                 WHERE item IN ({list}) AND t >= ?1 AND t < ?2 GROUP BY item"
            );
            let mut st = self.conn.prepare(&sql).map_err(|e| Error::db("prepare HIST", e))?;
            let mut b = split;
            while b <= last {
                let row = (b - first) / w;
                let mut rows = st.query([b, b + w]).map_err(|e| Error::db("run HIST", e))?;
                while let Some(r) = rows.next().map_err(|e| Error::db("read HIST row", e))? {
                    let id: i64 = r.get(0).map_err(|e| Error::db("read HIST item", e))?;
                    let s: f64 = r.get(1).map_err(|e| Error::db("read HIST sum", e))?;
                    let c: i64 = r.get(2).map_err(|e| Error::db("read HIST count", e))?;
                    acc(id, row, s, u32::try_from(c).unwrap_or(u32::MAX));
                }
                b += w;
            }
        }
        let out_rows: Vec<Value> =
            (0..span.rows as usize)
                .map(|i| {
                    let mut row = Vec::with_capacity(n + 1);
                    row.push(json!(first + i as i64 * w));
                    row.extend((i * n..(i + 1) * n).map(|k| {
                        json!((cnt[k] > 0).then(|| round_sig(sum[k] / f64::from(cnt[k]))))
                    }));
                    Value::Array(row)
                })
                .collect();
        let mut head = vec!["TIME".to_string()];
        head.extend(cols);
        Ok(json!({
            "resp": format!("ok rows {}", out_rows.len()),
            "data": {"cols": head, "rows": out_rows},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_groupings_and_pnts() {
        assert_eq!(parse_hist_ival("", None).unwrap(), HistSpan { width: 60, rows: 60 });
        assert_eq!(parse_hist_ival("day", None).unwrap(), HistSpan { width: 600, rows: 145 });
        assert_eq!(parse_hist_ival("w", None).unwrap(), HistSpan { width: 3600, rows: 168 });
        assert_eq!(parse_hist_ival("M", None).unwrap(), HistSpan { width: 14400, rows: 186 });
        assert_eq!(parse_hist_ival("y", None).unwrap(), HistSpan { width: 172800, rows: 184 });
        // H with 30 points: 2-minute buckets.
        assert_eq!(parse_hist_ival("H", Some(30)).unwrap(), HistSpan { width: 120, rows: 30 });
        // D with 1000 points: 87 s buckets, 1000 rows.
        assert_eq!(parse_hist_ival("D", Some(1000)).unwrap(), HistSpan { width: 87, rows: 1000 });
        for bad in [parse_hist_ival("X", None), parse_hist_ival("H", Some(0))] {
            assert!(matches!(bad, Err(Error::Usage(m)) if m.starts_with("bad args")));
        }
    }

    #[test]
    fn empty_history_and_unknown_items() {
        let h = History::open_in_memory().unwrap();
        let v = h.hist("H", Some(2), &[], 3700.0).unwrap();
        assert_eq!(v["data"], json!({"cols": ["TIME"], "rows": [[1800], [3600]]}));
        let v = h.hist("Y", None, &["nope".to_string()], 1e9).unwrap();
        assert_eq!(v["resp"], "ok rows 184");
        assert_eq!(v["data"]["rows"][183][1], Value::Null);
    }

    #[test]
    fn hist_args_split() {
        let host = |a: &str| a == "www1.example.org";
        let a = parse_hist_args(&["day", "30", "www1.example.org", "cpu_load"], host).unwrap();
        assert_eq!(a.ival, "day");
        assert_eq!(a.pnts, Some(30));
        assert_eq!(a.host.as_deref(), Some("www1.example.org"));
        assert_eq!(a.items, vec!["cpu_load"]);
        let a = parse_hist_args(&["heartbeat", "disk_used:/"], host).unwrap();
        assert_eq!((a.ival.as_str(), a.pnts, a.host), ("H", None, None));
        assert_eq!(a.items, vec!["heartbeat", "disk_used:/"]);
        assert_eq!(parse_hist_args(&[], host).unwrap().items, Vec::<String>::new());
        for bad in [&["H", "0"][..], &["Y", "99999999999"][..]] {
            assert!(matches!(parse_hist_args(bad, host), Err(Error::Usage(_))), "{bad:?}");
        }
    }

    #[test]
    fn rounding_keeps_six_significant_digits() {
        assert_eq!(round_sig(0.123456789), 0.123457);
        assert_eq!(round_sig(1234567.89), 1234570.0);
        assert_eq!(round_sig(-2.5), -2.5);
        assert_eq!(round_sig(0.0), 0.0);
    }

    #[test]
    fn hour_buckets_average_with_nulls_and_sorted_columns() {
        let mut h = History::open_in_memory().unwrap();
        let now = 7200.0 + 30.0; // last bucket starts at 7200, first at 3660
        h.insert_series("b", &[(7200, 1.0), (7230, 3.0), (3660, 5.0), (3659, 100.0)]).unwrap();
        h.insert_series("a", &[(7140, 2.0)]).unwrap();
        let v = h.hist("h", None, &[], now).unwrap();
        assert_eq!(v["resp"], "ok rows 60");
        assert_eq!(v["data"]["cols"], json!(["TIME", "a", "b"]));
        let rows = v["data"]["rows"].as_array().unwrap();
        assert_eq!(rows[0], json!([3660, null, 5.0]));
        assert_eq!(rows[58], json!([7140, 2.0, null]));
        assert_eq!(rows[59], json!([7200, null, 2.0]));
        assert!(rows.windows(2).all(|p| p[0][0].as_i64() < p[1][0].as_i64()));
    }

    #[test]
    fn asked_items_only_and_unknown_ones_are_null() {
        let mut h = History::open_in_memory().unwrap();
        h.insert_series("a", &[(600, 1.0), (1200, 4.0), (1500, 6.0)]).unwrap();
        h.insert_series("b", &[(600, 9.0)]).unwrap();
        let items = vec!["zz".to_string(), "a".to_string()];
        let v = h.hist("D", Some(3), &items, 1800.0).unwrap();
        // D range 87000 s in 3 buckets of 29000 s: the last one holds 0..29000.
        assert_eq!(v["data"]["cols"], json!(["TIME", "a", "zz"]));
        let rows = v["data"]["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2], json!([0, round_sig(11.0 / 3.0), null]));
        assert_eq!(rows[0], json!([-58000, null, null]));
    }

    #[test]
    fn dense_and_sparse_paths_agree_with_a_plain_group_by() {
        let mut h = History::open_in_memory().unwrap();
        let now: i64 = 1_700_000_000;
        for (name, step) in [("a", 60), ("b", 3600), ("c", 4 * 3600)] {
            let s: Vec<(i64, f64)> = (0..(90 * 86400 / step))
                .map(|i| (now - i * step, ((i * 37) % 101) as f64))
                .collect();
            h.insert_series(name, &s).unwrap();
        }
        for (ival, pnts) in [("M", None), ("W", None), ("D", Some(7)), ("Y", None)] {
            let span = parse_hist_ival(ival, pnts).unwrap();
            let w = span.width;
            let last = now / w * w;
            let first = last - (span.rows - 1) * w;
            let got = h.hist(ival, pnts, &[], now as f64).unwrap();
            let mut st = h
                .conn
                .prepare(
                    "SELECT i.name, s.t / ?1 * ?1, avg(s.v) FROM samples s JOIN items i \
                     ON i.id = s.item WHERE s.t >= ?2 AND s.t < ?3 GROUP BY s.item, s.t / ?1",
                )
                .unwrap();
            let want: Vec<(String, i64, f64)> = st
                .query_map([w, first, last + w], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(|r| r.unwrap())
                .collect();
            assert!(!want.is_empty());
            let rows = got["data"]["rows"].as_array().unwrap();
            let cols = got["data"]["cols"].as_array().unwrap();
            let mut n = 0;
            for (name, b, v) in want {
                let c = cols.iter().position(|c| c == &json!(name)).unwrap();
                let r = ((b - first) / w) as usize;
                assert_eq!(rows[r][0], json!(b));
                assert_eq!(rows[r][c], json!(round_sig(v)), "{ival} {name} {b}");
                n += 1;
            }
            let filled: usize = rows
                .iter()
                .map(|r| r.as_array().unwrap()[1..].iter().filter(|v| !v.is_null()).count())
                .sum();
            assert_eq!(filled, n, "{ival}: no value where SQL has none");
        }
    }
}
