//! Graphs as SVG text: pure functions from series to markup, no I/O. A time
//! axis with ticks at round times, a value axis with the unit and round
//! ticks, fitness thresholds as faint bands in the level colours, gaps
//! where there is no data, min/avg/max per series in the legend, and each
//! point's value in a `<title>`. Every text is XML-escaped here.

use serde_json::Value;
use std::fmt::Write;

/// One line on a chart: (time, value or no data).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, Option<f64>)>,
}

/// A threshold band: values in `lo..hi` are at this level (colour 0..=4).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    pub lo: f64,
    pub hi: f64,
    pub colour: usize,
    pub level: String,
}

#[derive(Debug, Clone)]
pub struct Chart {
    pub title: String,
    pub unit: String,
    pub w: u32,
    pub h: u32,
    /// The window shown.
    pub t0: f64,
    pub t1: f64,
    pub bands: Vec<Band>,
    /// Shown instead of lines (e.g. the client could not be reached).
    pub note: Option<String>,
}

/// Series colours (Okabe-Ito, distinct from each other for colour-blind eyes).
const LINES: [&str; 6] = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9"];
/// Level band colours, l0 .. l4 as on the pages.
const LEVELS: [&str; 5] = ["#009e73", "#c9b800", "#e69f00", "#d55e00", "#6c2a8a"];

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => o.push(' '),
            c => o.push(c),
        }
    }
    o
}

/// One column of a HIST answer's `data` (`{"cols":["TIME",...],"rows":[...]}`).
pub fn series_of(data: &Value, item: &str) -> Option<Vec<(f64, Option<f64>)>> {
    let cols = data.get("cols")?.as_array()?;
    let ix = cols.iter().position(|c| c.as_str() == Some(item))?;
    let rows = data.get("rows")?.as_array()?;
    Some(
        rows.iter()
            .filter_map(|r| {
                let r = r.as_array()?;
                Some((r.first()?.as_f64()?, r.get(ix).and_then(Value::as_f64)))
            })
            .collect(),
    )
}

/// A small line of the values, no axes (for tables).
pub fn sparkline(pts: &[(f64, Option<f64>)], w: u32, h: u32) -> String {
    let vals: Vec<f64> = pts.iter().filter_map(|p| p.1).collect();
    let mut out = format!(
        r#"<svg class="spark" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#
    );
    if let (Some(t0), Some(t1), false) =
        (pts.first().map(|p| p.0), pts.last().map(|p| p.0), vals.is_empty())
    {
        let (lo, hi) = min_max(&vals);
        let span = if hi > lo { hi - lo } else { 1.0 };
        let dt = if t1 > t0 { t1 - t0 } else { 1.0 };
        let x = |t: f64| (t - t0) / dt * (w as f64 - 2.0) + 1.0;
        let y = |v: f64| h as f64 - 1.0 - (v - lo) / span * (h as f64 - 2.0);
        let d = path(pts, x, y);
        let _ =
            write!(out, r#"<path d="{d}" fill="none" stroke="currentColor" stroke-width="1"/>"#);
    }
    out.push_str("</svg>");
    out
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)))
}

/// `M x y L x y ...`, a new `M` after every gap; a lone point is a dot.
fn path(pts: &[(f64, Option<f64>)], x: impl Fn(f64) -> f64, y: impl Fn(f64) -> f64) -> String {
    let mut d = String::new();
    let mut pen = false;
    for (i, &(t, v)) in pts.iter().enumerate() {
        match v {
            Some(v) => {
                let next_gap = pts.get(i + 1).is_none_or(|p| p.1.is_none());
                if !pen && next_gap {
                    // A lone sample: a short horizontal tick, so it shows.
                    let _ = write!(d, "M{:.1} {:.1}h1.5", x(t) - 0.75, y(v));
                } else {
                    let _ = write!(d, "{}{:.1} {:.1}", if pen { "L" } else { "M" }, x(t), y(v));
                }
                pen = true;
            }
            None => pen = false,
        }
    }
    d
}

/// Round value ticks: steps of 1, 2 or 5 times a power of ten.
pub fn value_ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / want.max(1) as f64;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * p).find(|s| *s >= raw).unwrap_or(10.0 * p);
    // Multiples of the step, rounded to its decimals (no 0.6000000000000001).
    let scale = 10f64.powi((-step.log10().floor()).max(0.0) as i32);
    let first = (lo / step).ceil() as i64;
    (0..50)
        .map(|k| ((first + k) as f64 * step * scale).round() / scale)
        .take_while(|t| *t <= hi + step * 1e-9)
        .collect()
}

/// Round time ticks (UTC) for a window: minutes for an hour, hours for a
/// day, days for a week or month, months for a year. (time, label).
pub fn time_ticks(t0: f64, t1: f64) -> Vec<(f64, String)> {
    let span = t1 - t0;
    if span <= 0.0 {
        return Vec::new();
    }
    if span > 60.0 * 86400.0 {
        return month_ticks(t0, t1);
    }
    let steps = [
        60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0, 43200.0, 86400.0,
        172800.0, 604800.0,
    ];
    let step = steps.iter().copied().find(|s| span / s <= 8.0).unwrap_or(604800.0);
    let mut t = (t0 / step).ceil() * step;
    let mut out = Vec::new();
    while t <= t1 && out.len() < 40 {
        let (_, mo, d, hh, mi) = civil(t);
        // Midnight shows the date, so a day's axis says where it turns.
        let label = if step >= 86400.0 || (hh == 0 && mi == 0) {
            format!("{mo:02}-{d:02}")
        } else {
            format!("{hh:02}:{mi:02}")
        };
        out.push((t, label));
        t += step;
    }
    out
}

fn civil(t: f64) -> (i64, u32, u32, i64, i64) {
    let s = t.floor() as i64;
    let (days, rem) = (s.div_euclid(86400), s.rem_euclid(86400));
    let (y, mo, d) = crate::clock::civil_from_days(days);
    (y, mo, d, rem / 3600, rem % 3600 / 60)
}

fn month_ticks(t0: f64, t1: f64) -> Vec<(f64, String)> {
    const NAMES: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (mut y, mut m, ..) = civil(t0);
    let mut out = Vec::new();
    let every = if t1 - t0 > 200.0 * 86400.0 { 2 } else { 1 };
    loop {
        m += 1;
        if m > 12 {
            m = 1;
            y += 1;
        }
        let t = crate::clock::days_from_civil(y, m, 1) as f64 * 86400.0;
        if t > t1 || out.len() > 30 {
            break;
        }
        if (m - 1) % every == 0 {
            let name = NAMES[(m - 1) as usize];
            out.push((t, if m == 1 { format!("{name} {y}") } else { name.to_string() }));
        }
    }
    out
}

fn stats(pts: &[(f64, Option<f64>)]) -> Option<(f64, f64, f64)> {
    let v: Vec<f64> = pts.iter().filter_map(|p| p.1).collect();
    if v.is_empty() {
        return None;
    }
    let (lo, hi) = min_max(&v);
    Some((lo, v.iter().sum::<f64>() / v.len() as f64, hi))
}

pub fn fmt(v: f64) -> String {
    super::web::fmt_num(v)
}

/// The whole chart.
pub fn chart(c: &Chart, series: &[Series]) -> String {
    let (w, h) = (c.w.clamp(200, 4000) as f64, c.h.clamp(120, 3000) as f64);
    let legend_h = 16.0 * series.len().max(1) as f64;
    let (ml, mr, mt, mb) = (56.0, 12.0, 22.0, 26.0 + legend_h);
    let (pw, ph) = (w - ml - mr, (h - mt - mb).max(20.0));
    let vals: Vec<f64> = series.iter().flat_map(|s| s.points.iter().filter_map(|p| p.1)).collect();
    let (mut lo, mut hi) = if vals.is_empty() { (0.0, 1.0) } else { min_max(&vals) };
    // Bands near the data are shown: extend the range to the next threshold.
    for b in &c.bands {
        for t in [b.lo, b.hi] {
            if t.is_finite() && t > hi && t <= hi + (hi - lo).max(hi.abs()).max(1.0) {
                hi = t;
            }
        }
    }
    if lo > 0.0 && lo < (hi - lo) {
        lo = 0.0;
    }
    if hi <= lo {
        hi = lo + 1.0;
    }
    // A little headroom so the highest point is not on the frame.
    hi += (hi - lo) * 0.04;
    let ticks = value_ticks(lo, hi, 5);
    lo = lo.min(ticks.first().copied().unwrap_or(lo));
    hi = hi.max(ticks.last().copied().unwrap_or(hi));
    let (t0, t1) = (c.t0, if c.t1 > c.t0 { c.t1 } else { c.t0 + 1.0 });
    let x = |t: f64| ml + (t - t0) / (t1 - t0) * pw;
    let y = |v: f64| mt + ph - (v - lo) / (hi - lo) * ph;
    let mut o = String::with_capacity(4096 + 200 * vals.len());
    let _ = write!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="system-ui,sans-serif" font-size="12">"#
    );
    let _ = write!(o, "<title>{}</title>", esc(&c.title));
    o.push_str(r#"<style>text{fill:#555}.ax{stroke:#999;stroke-width:1}.gr{stroke:#ccc;stroke-width:.5}@media (prefers-color-scheme:dark){text{fill:#bbb}.gr{stroke:#444}}</style>"#);
    let _ = write!(
        o,
        r#"<text x="{ml}" y="14" font-size="12" font-weight="600">{}</text>"#,
        esc(&c.title)
    );
    for b in &c.bands {
        let (a, z) = (b.lo.max(lo), b.hi.min(hi));
        if z <= a {
            continue;
        }
        let col = LEVELS[b.colour.min(4)];
        let _ = write!(
            o,
            r#"<rect x="{ml:.1}" y="{:.1}" width="{pw:.1}" height="{:.1}" fill="{col}" fill-opacity="0.10"><title>{} {}..{}</title></rect>"#,
            y(z),
            y(a) - y(z),
            esc(&b.level),
            fmt(b.lo),
            fmt(b.hi)
        );
    }
    for v in &ticks {
        let _ = write!(
            o,
            r#"<line class="gr" x1="{ml}" x2="{:.1}" y1="{:.1}" y2="{:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            ml + pw,
            y(*v),
            y(*v),
            ml - 4.0,
            y(*v) + 4.0,
            esc(&fmt(*v))
        );
    }
    let _ = write!(
        o,
        r#"<text x="10" y="{:.1}" transform="rotate(-90 10 {:.1})" text-anchor="middle">{}</text>"#,
        mt + ph / 2.0,
        mt + ph / 2.0,
        esc(&c.unit)
    );
    for (t, label) in time_ticks(t0, t1) {
        let _ = write!(
            o,
            r#"<line class="gr" x1="{:.1}" x2="{:.1}" y1="{mt}" y2="{:.1}"/><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(t),
            x(t),
            mt + ph,
            x(t),
            mt + ph + 13.0,
            esc(&label)
        );
    }
    let _ = write!(
        o,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="end">UTC</text>"#,
        ml + pw,
        mt + ph + 24.0
    );
    let _ = write!(
        o,
        r#"<rect class="ax" x="{ml}" y="{mt}" width="{pw:.1}" height="{ph:.1}" fill="none"/>"#
    );
    for (i, s) in series.iter().enumerate() {
        let col = LINES[i % LINES.len()];
        let _ = write!(
            o,
            r#"<path d="{}" fill="none" stroke="{col}" stroke-width="1.5" stroke-linejoin="round"/>"#,
            path(&s.points, x, y)
        );
        // Invisible hit targets carry each point's value.
        let _ = write!(o, r#"<g fill="{col}" fill-opacity="0">"#);
        for &(t, v) in &s.points {
            if let Some(v) = v {
                let (yy, mo, d, hh, mi) = civil(t);
                let _ = write!(
                    o,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3"><title>{yy}-{mo:02}-{d:02} {hh:02}:{mi:02} {}: {}</title></circle>"#,
                    x(t),
                    y(v),
                    esc(&s.label),
                    esc(&fmt(v))
                );
            }
        }
        o.push_str("</g>");
        let ly = mt + ph + 40.0 + 16.0 * i as f64;
        let st = match stats(&s.points) {
            Some((a, m, b)) => {
                format!("min {} · avg {} · max {} {}", fmt(a), fmt(m), fmt(b), c.unit)
            }
            None => "no data".into(),
        };
        let _ = write!(
            o,
            r#"<rect x="{ml}" y="{:.1}" width="14" height="3" fill="{col}"/><text x="{:.1}" y="{:.1}">{}  —  {}</text>"#,
            ly - 4.0,
            ml + 20.0,
            ly,
            esc(&s.label),
            esc(&st)
        );
    }
    if let Some(n) = &c.note {
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13">{}</text>"#,
            ml + pw / 2.0,
            mt + ph / 2.0,
            esc(n)
        );
    } else if vals.is_empty() {
        let _ = write!(
            o,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="13">no data in this window</text>"#,
            ml + pw / 2.0,
            mt + ph / 2.0
        );
    }
    o.push_str("</svg>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart_of(pts: Vec<(f64, Option<f64>)>, label: &str) -> String {
        let c = Chart {
            title: "t".into(),
            unit: "%".into(),
            w: 600,
            h: 240,
            t0: 0.0,
            t1: 3600.0,
            bands: vec![Band { lo: 80.0, hi: 90.0, colour: 1, level: "soso".into() }],
            note: None,
        };
        chart(&c, &[Series { label: label.into(), points: pts }])
    }

    #[test]
    fn gaps_break_the_line() {
        let pts = vec![
            (0.0, Some(1.0)),
            (60.0, Some(2.0)),
            (120.0, None),
            (180.0, Some(3.0)),
            (240.0, Some(4.0)),
        ];
        let d = path(&pts, |t| t, |v| v);
        assert_eq!(d, "M0.0 1.0L60.0 2.0M180.0 3.0L240.0 4.0");
        assert_eq!(path(&[(0.0, Some(1.0))], |t| t, |v| v), "M-0.8 1.0h1.5", "a lone point shows");
        assert_eq!(path(&[(0.0, None)], |t| t, |v| v), "");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(value_ticks(0.0, 97.0, 5), vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(value_ticks(0.13, 0.61, 4), vec![0.2, 0.4, 0.6]);
        assert_eq!(value_ticks(0.13, 0.61, 8), vec![0.2, 0.3, 0.4, 0.5, 0.6]);
        assert_eq!(value_ticks(5.0, 5.0, 4), vec![5.0]);
        // An hour from 10:00:30: ticks every 10 minutes at round minutes.
        let t0 = 1_700_000_000.0 - 1_700_000_000.0 % 3600.0 + 30.0;
        let tt = time_ticks(t0, t0 + 3600.0);
        assert!(tt.iter().all(|(t, _)| t % 600.0 == 0.0), "{tt:?}");
        assert_eq!(tt.len(), 6);
        // A day: hours; a year: months (Jan with its year).
        assert!(time_ticks(t0, t0 + 86400.0).iter().all(|(t, _)| t % 10800.0 == 0.0));
        let y = time_ticks(1_704_067_200.0 - 86400.0 * 10.0, 1_704_067_200.0 + 86400.0 * 355.0);
        assert_eq!(y[0].1, "Jan 2024", "{y:?}");
        assert_eq!(y[0].0, 1_704_067_200.0);
    }

    #[test]
    fn chart_has_bands_stats_titles_and_escapes() {
        let s = chart_of(
            vec![(0.0, Some(70.0)), (600.0, Some(75.0)), (1200.0, None), (1800.0, Some(85.0))],
            "<script>alert(1)</script>",
        );
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(!s.contains("<script>"), "labels are escaped");
        assert!(s.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(s.contains("min 70 · avg 76.67 · max 85 %"), "{s}");
        assert!(s.contains("fill-opacity=\"0.10\"><title>soso 80..90</title>"), "the band");
        assert_eq!(s.matches("<circle").count(), 3, "one title per point with data");
        assert!(s.contains("1970-01-01 00:10 "), "point time in its title");
        assert!(s.matches("M").count() - s.matches("Mar").count() >= 2);
        let empty = chart_of(vec![], "x");
        assert!(empty.contains("no data in this window") && empty.contains("no data<"), "{empty}");
    }

    #[test]
    fn hist_columns() {
        let d = serde_json::json!({"cols":["TIME","a","b"],"rows":[[1.0,2.0,null],[2.0,null,3.0]]});
        assert_eq!(series_of(&d, "b").unwrap(), vec![(1.0, None), (2.0, Some(3.0))]);
        assert!(series_of(&d, "c").is_none());
        let sp = sparkline(&series_of(&d, "a").unwrap(), 100, 20);
        assert!(sp.contains("<path"));
    }
}
