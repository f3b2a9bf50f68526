//! The pages beyond the fleet tables: `/events`, `/alerts` with the
//! acknowledge and silence forms, `/graph/...` and `/svg/...`, and `/login`:
//! the login form and the page of a login POST's outcome (decided by
//! `login.rs`). HTML through maud only. Above `pages.rs` (its layout),
//! `svg.rs`, `login.rs` and `web.rs`; only `http.rs` and `api.rs` use it.

use super::fetch::Snapshot;
use super::login::{can_see, csrf_ok, LoginOutcome, User};
use super::pages::{layout, not_found};
use super::svg::{self, Band, Chart, Series};
use super::web::{enc, graph_link, host_link, lv, unit, Req, Resp, HTML, SVG, TEXT};
use super::{Shared, Site};
use crate::clock::{fmt_age, fmt_time};
use maud::{html, PreEscaped};
use serde_json::Value;

/// A window name -> (seconds, default points).
pub fn ival_span(ival: char) -> (f64, u32) {
    match ival {
        'D' => (86400.0, 145),
        'W' => (7.0 * 86400.0, 168),
        'M' => (31.0 * 86400.0, 186),
        'Y' => (368.0 * 86400.0, 184),
        _ => (3600.0, 60),
    }
}

pub fn parse_ival(s: Option<&str>) -> char {
    s.and_then(|s| s.chars().next())
        .map(|c| c.to_ascii_uppercase())
        .filter(|c| "HDWMY".contains(*c))
        .unwrap_or('H')
}

pub fn events(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let site = sh.site();
    let snap = sh.fetch.fleet(req.now);
    let host = req.q("host");
    let item = req.q("item");
    let level = req.q("level");
    let window = req.q("window");
    let page: usize = req.q("page").and_then(|p| p.parse().ok()).unwrap_or(0).min(1000);
    const PER: usize = 50;
    if let Some(h) = host {
        if !snap.fleet.hosts.iter().any(|x| x.name == h && can_see(&site, user, h)) {
            return not_found(sh, req, user, &format!("No host {h} in the fleet."));
        }
    }
    if let Some(w) = window {
        if crate::ranges::parse_ival(w).is_err() || !w.chars().any(|c| c.is_ascii_digit()) {
            return Resp::new(400, TEXT, format!("bad window {w:?}: use e.g. 1h, 2d\n"));
        }
    }
    let mut args: Vec<String> = Vec::new();
    args.extend(host.map(str::to_string));
    args.extend(item.map(str::to_string));
    match window {
        Some(w) => args.push(w.to_string()),
        None => args.push(((page + 1) * PER * 4 + 1).min(100_000).to_string()),
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let got = sh.fetch.events(&refs);
    let min_level = level.map(|l| site.level_index(l));
    let list: Vec<Value> = match &got {
        Ok(es) => es
            .iter()
            .rev()
            .filter(|e| can_see(&site, user, e.get("host").and_then(Value::as_str).unwrap_or("")))
            .filter(|e| {
                let nl = e.get("new_level").and_then(Value::as_str).unwrap_or("");
                min_level.is_none_or(|m| site.level_index(nl) >= m)
            })
            .cloned()
            .collect(),
        Err(_) => Vec::new(),
    };
    let shown: Vec<&Value> = list.iter().skip(page * PER).take(PER).collect();
    let more = list.len() > (page + 1) * PER;
    let link = |p: usize| {
        let mut q = vec![format!("page={p}")];
        for (k, v) in [("host", host), ("item", item), ("level", level), ("window", window)] {
            if let Some(v) = v {
                q.push(format!("{k}={}", enc(v)));
            }
        }
        format!("/events?{}", q.join("&"))
    };
    let s = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let v = |e: &Value, k: &str| e.get(k).and_then(Value::as_f64).map(svg::fmt).unwrap_or_default();
    let body = html! {
        form.sum method="get" action="/events" {
            "host " input name="host" size="18" value=(host.unwrap_or(""));
            " item " input name="item" size="14" value=(item.unwrap_or(""));
            " level at least " select name="level" { option value="" { "any" }
                @for l in &site.levels { option value=(l.name) selected[level == Some(l.name.as_str())] { (l.name) } } }
            " window " input name="window" size="5" placeholder="1h" value=(window.unwrap_or(""));
            " " button { "filter" }
        }
        @if let Err(e) = &got { p.stale { "events unavailable: " (e) } }
        table {
            thead { tr { th { "time" } th { "host" } th { "item" } th { "level" } th.n { "value" } th { "message" } } }
            tbody { @for e in &shown { tr {
                td { (fmt_time(e.get("time").and_then(Value::as_f64).unwrap_or(0.0))) }
                td { a href=(host_link(&s(e, "host"))) { (s(e, "host")) } }
                td { a href=(graph_link(&s(e, "host"), &s(e, "item"))) { (s(e, "item")) } }
                td { @let ol = s(e, "old_level"); @if !ol.is_empty() { (lv(&site, Some(&ol))) " → " } (lv(&site, Some(&s(e, "new_level")))) }
                td.n { (v(e, "old_value")) @if e.get("old_value").is_some_and(|x| !x.is_null()) { " → " } (v(e, "new_value")) }
                td.msg { (s(e, "message")) }
            } } }
        }
        p { @if page > 0 { a href=(link(page - 1)) { "← newer" } " " } @if more { a href=(link(page + 1)) { "older →" } }
            " " span.sum { (list.len()) " events" } }
    };
    Resp::new(
        200,
        HTML,
        layout(&site, Some(&snap), user, "Events", true, req.now, body).into_string(),
    )
}

pub fn alerts(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let site = sh.site();
    let snap = sh.fetch.fleet(req.now);
    Resp::new(200, HTML, render_alerts(&site, &snap, user, req.now, req.q("msg")).into_string())
}

pub fn render_alerts(
    site: &Site,
    snap: &Snapshot,
    user: Option<&User>,
    now: f64,
    msg: Option<&str>,
) -> maud::Markup {
    let mut list: Vec<_> =
        snap.fleet.alerts.iter().filter(|a| can_see(site, user, &a.host)).collect();
    list.sort_by_key(|a| {
        (std::cmp::Reverse(site.level_index(&a.level)), a.host.clone(), a.item.clone())
    });
    let csrf = user.map(|u| u.csrf.clone()).unwrap_or_default();
    let body = html! {
        @if let Some(m) = msg { p.sum { (m) } }
        @if user.is_none() { p.sum { a href="/login" { "Log in" } " to acknowledge or silence." } }
        @if list.is_empty() { p { "No open alerts." } } @else {
        table {
            thead { tr { th { "level" } th { "host" } th { "item" } th.n { "value" } th { "since" } th { "told" } th { "state" } th { "" } } }
            tbody { @for a in &list { tr {
                td { (lv(site, Some(&a.level))) }
                td { a href=(host_link(&a.host)) { (a.host) } }
                td { a href=(graph_link(&a.host, &a.item)) { (a.item) } }
                td.n { @if let Some(v) = a.value { (svg::fmt(v)) } }
                td { (fmt_age(now - a.since)) }
                td { (a.channels.join(", ")) }
                td { @if a.acked { span.b { "acked" } } @if a.silenced { span.b { "silenced" } }
                     @if a.flapping { span.b { "flapping" } } @if let Some(p) = &a.suppressed_by { span.b { "via " (p) } } }
                td { @if user.is_some() {
                    @if !a.acked { form.inl method="post" action="/ack" {
                        input type="hidden" name="csrf" value=(csrf); input type="hidden" name="host" value=(a.host);
                        input type="hidden" name="item" value=(a.item); button { "acknowledge" } } }
                    " " form.inl method="post" action="/silence" {
                        input type="hidden" name="csrf" value=(csrf); input type="hidden" name="host" value=(a.host);
                        input type="hidden" name="item" value=(a.item);
                        select name="for" { option value="1h" { "1 h" } option value="4h" { "4 h" } option value="1d" { "1 day" } option value="1w" { "1 week" } }
                        button { "silence" } }
                } }
            } } }
        } }
        @if !snap.fleet.silences.is_empty() {
            h3 { "Silences" }
            table { tbody { @for (h, i, u) in &snap.fleet.silences { @if can_see(site, user, h) { tr {
                td { (h) } td { @if i.is_empty() { "all items" } @else { (i) } } td { "until " (fmt_time(*u)) } } } } } }
        }
    };
    layout(site, Some(snap), user, "Alerts", user.is_none(), now, body)
}

/// POST /ack and /silence: logged in, with the session's CSRF token, for a
/// host the user sees; then straight to the server.
pub fn change(sh: &Shared, req: &Req, user: Option<&User>, what: &str) -> Resp {
    let Some(u) = user else { return Resp::new(403, TEXT, "log in first\n") };
    if !csrf_ok(sh, req, u) {
        return Resp::new(403, TEXT, "bad or missing CSRF token\n");
    }
    let site = sh.site();
    let (Some(host), item) = (req.f("host"), req.f("item").filter(|i| !i.is_empty())) else {
        return Resp::new(400, TEXT, "host missing\n");
    };
    let word_ok = |s: &str| {
        !s.is_empty() && s.len() <= 256 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    };
    if !word_ok(host) || !item.is_none_or(word_ok) || !can_see(&site, Some(u), host) {
        return Resp::new(400, TEXT, "bad host or item\n");
    }
    let line = match (what, item) {
        ("ack", Some(i)) => format!("ACK {host} {i}"),
        ("ack", None) => return Resp::new(400, TEXT, "item missing\n"),
        (_, i) => {
            let f = req.f("for").unwrap_or("1h");
            if crate::ranges::parse_ival(f).is_err() || !word_ok(f) {
                return Resp::new(400, TEXT, "bad duration\n");
            }
            format!("SILENCE {host} {}{f}", i.map(|i| format!("{i} ")).unwrap_or_default())
        }
    };
    log::info!("dashboard: {} by {}", line, u.name);
    let msg = match sh.fetch.change(&line) {
        Ok(m) => m,
        Err(e) => format!("{what} failed: {e}"),
    };
    Resp::redirect(&format!("/alerts?msg={}", enc(&msg)))
}

/// The threshold bands of an item's fitness function on a host.
pub fn bands(site: &Site, host: &str, item: &str) -> Vec<Band> {
    let fits = &site.part.fits;
    let mine = fits.iter().find(|f| f.item == item && f.hosts.iter().any(|h| h == host));
    match mine.or_else(|| fits.iter().find(|f| f.item == item && f.hosts.is_empty())) {
        Some(f) => bands_of(site, &f.rules),
        None => Vec::new(),
    }
}

/// `soso >2 sick >4 crit >8` -> soso 2..4, sick 4..8, crit 8..; `<` rules
/// band downwards. `==`/`!=` rules have no band.
pub fn bands_of(site: &Site, rules: &[crate::work::model::Rule]) -> Vec<Band> {
    use crate::work::model::Op;
    let band = |lo: f64, hi: f64, level: &str| Band {
        lo,
        hi,
        colour: site.colour(site.level_index(level)),
        level: level.to_string(),
    };
    let mut up: Vec<_> = rules.iter().filter(|r| matches!(r.op, Op::Gt | Op::Ge)).collect();
    up.sort_by(|a, b| a.value.total_cmp(&b.value));
    let mut down: Vec<_> = rules.iter().filter(|r| matches!(r.op, Op::Lt | Op::Le)).collect();
    down.sort_by(|a, b| b.value.total_cmp(&a.value));
    let mut out = Vec::new();
    for (i, r) in up.iter().enumerate() {
        let hi = up.get(i + 1).map(|n| n.value).unwrap_or(f64::INFINITY);
        out.push(band(r.value, hi, &r.level));
    }
    for (i, r) in down.iter().enumerate() {
        let lo = down.get(i + 1).map(|n| n.value).unwrap_or(f64::NEG_INFINITY);
        out.push(band(lo, r.value, &r.level));
    }
    out
}

/// What one graph shows: hosts x items in a window.
struct GraphSpec {
    hosts: Vec<String>,
    items: Vec<String>,
    ival: char,
    pnts: u32,
    w: u32,
    h: u32,
}

fn graph_spec(
    sh: &Shared,
    req: &Req,
    user: Option<&User>,
    hosts: &str,
    item: Option<&str>,
) -> Result<GraphSpec, Resp> {
    let site = sh.site();
    let snap = sh.fetch.fleet(req.now);
    let mut hs = Vec::new();
    for h in hosts.split(',').filter(|h| !h.is_empty()).take(8) {
        match snap
            .fleet
            .hosts
            .iter()
            .find(|x| (x.name == h || x.tag == h) && can_see(&site, user, &x.name))
        {
            Some(x) => hs.push(x),
            None => return Err(not_found(sh, req, user, &format!("No host {h} in the fleet."))),
        }
    }
    if hs.is_empty() {
        return Err(not_found(sh, req, user, "No host named."));
    }
    let mut items: Vec<String> = item.into_iter().map(str::to_string).collect();
    items.extend(req.qs("item").into_iter().filter(|i| !i.is_empty()).map(str::to_string));
    if items.is_empty() {
        items = hs[0]
            .items
            .iter()
            .filter(|i| i.value.is_some())
            .map(|i| i.name.clone())
            .take(6)
            .collect();
    }
    items.dedup();
    items.truncate(8);
    for i in &items {
        let known = hs.iter().any(|h| h.items.iter().any(|x| &x.name == i)) || i == "rtt";
        if !known {
            return Err(not_found(sh, req, user, &format!("No item {i} on {}.", hs[0].name)));
        }
    }
    let ival = parse_ival(req.q("ival"));
    let pnts = req
        .q("pnts")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(ival_span(ival).1)
        .clamp(1, 2000);
    let num = |k: &str, d: u32| req.q(k).and_then(|v| v.parse::<u32>().ok()).unwrap_or(d);
    Ok(GraphSpec {
        hosts: hs.iter().map(|h| h.name.clone()).collect(),
        items,
        ival,
        pnts,
        w: num("w", 900),
        h: num("h", 320),
    })
}

/// Fetches the history and draws it.
fn draw(sh: &Shared, g: &GraphSpec, now: f64) -> String {
    let site = sh.site();
    let mut series = Vec::new();
    let mut errors = Vec::new();
    for h in &g.hosts {
        let items: Vec<&str> = g.items.iter().map(String::as_str).collect();
        match sh.fetch.hist(h, g.ival, g.pnts, &items) {
            Ok(d) => {
                for i in &g.items {
                    let label = if g.hosts.len() > 1 { format!("{h} {i}") } else { i.clone() };
                    series
                        .push(Series { label, points: svg::series_of(&d, i).unwrap_or_default() });
                }
            }
            Err(e) => errors.push(format!("history of {h} unavailable: {e}")),
        }
    }
    let units: Vec<&str> = g.items.iter().map(|i| unit(i)).collect();
    let unit = if units.iter().all(|u| *u == units[0]) { units[0] } else { "mixed units" };
    let bands = if g.items.len() == 1 && g.hosts.len() == 1 {
        bands(&site, &g.hosts[0], &g.items[0])
    } else {
        Vec::new()
    };
    let span = ival_span(g.ival).0;
    let c = Chart {
        title: format!("{} — {} ({})", g.hosts.join(", "), g.items.join(", "), g.ival),
        unit: unit.to_string(),
        w: g.w,
        h: g.h,
        t0: now - span,
        t1: now,
        bands,
        note: (!errors.is_empty()).then(|| errors.join("; ")),
    };
    svg::chart(&c, &series)
}

pub fn svg(sh: &Shared, req: &Req, user: Option<&User>, hosts: &str, item: Option<&str>) -> Resp {
    match graph_spec(sh, req, user, hosts, item) {
        Ok(g) => Resp::new(200, SVG, draw(sh, &g, req.now)),
        Err(r) => r,
    }
}

pub fn graph(sh: &Shared, req: &Req, user: Option<&User>, hosts: &str, item: Option<&str>) -> Resp {
    let g = match graph_spec(sh, req, user, hosts, item) {
        Ok(g) => g,
        Err(r) => return r,
    };
    let site = sh.site();
    let snap = sh.fetch.fleet(req.now);
    let chart = draw(sh, &g, req.now);
    let hpath = enc(&g.hosts.join(","));
    let extra: String = g.items.iter().skip(1).map(|i| format!("&item={}", enc(i))).collect();
    let here = |iv: char| format!("/graph/{hpath}/{}?ival={iv}{extra}", enc(&g.items[0]));
    let first = snap.fleet.hosts.iter().find(|h| h.name == g.hosts[0]);
    let body = html! {
        p.tabs { @for iv in ['H', 'D', 'W', 'M', 'Y'] { a class=(if iv == g.ival { "on" } else { "" }) href=(here(iv)) { (iv) } } }
        div { (PreEscaped(chart)) }
        form.sum method="get" action=(format!("/graph/{hpath}")) {
            input type="hidden" name="ival" value=(g.ival);
            "items "
            select name="item" multiple size="4" {
                @if let Some(h) = first { @for it in h.items.iter().filter(|i| i.value.is_some()) {
                    option value=(it.name) selected[g.items.contains(&it.name)] { (it.name) } } }
            }
            " " button { "show" }
        }
        p.sum { a href=(format!("/svg/{hpath}/{}?ival={}{extra}", enc(&g.items[0]), g.ival)) { "bare SVG" } " · "
            a href=(format!("/api/v1/history/{}/{}?ival={}", enc(&g.hosts[0]), enc(&g.items[0]), g.ival)) { "JSON" } " · "
            @for h in &g.hosts { a href=(host_link(h)) { (h) } " " } }
    };
    Resp::new(
        200,
        HTML,
        layout(
            &site,
            Some(&snap),
            user,
            &format!("{} {}", g.hosts.join(","), g.items.join(",")),
            false,
            req.now,
            body,
        )
        .into_string(),
    )
}

/// The login form, with a fresh CSRF token in a hidden field and its
/// pre-session cookie (`login.rs`).
pub fn login_page(sh: &Shared, req: &Req, err: Option<&str>) -> Resp {
    let site = sh.site();
    let (cookie, csrf) = match super::login::login_form(sh, req) {
        Ok(t) => t,
        Err(e) => return Resp::new(500, TEXT, format!("no login form: {e}\n")),
    };
    let body = html! {
        h2 { "Log in" }
        @if let Some(e) = err { p.stale { (e) } }
        form method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            p { label { "user " input name="user" autocomplete="username" required; } }
            p { label { "password " input name="password" type="password" autocomplete="current-password" required; } }
            button { "log in" }
        }
    };
    let status = if err.is_some() { 403 } else { 200 };
    let page = layout(&site, None, None, "Log in", false, req.now, body).into_string();
    Resp::new(status, HTML, page).header("Set-Cookie", &cookie)
}

/// POST /login, drawn: `login.rs` decides, this renders its outcome.
pub fn login(sh: &Shared, req: &Req) -> Resp {
    match super::login::login(sh, req) {
        LoginOutcome::Session(cookie) => Resp::redirect("/").header("Set-Cookie", &cookie),
        LoginOutcome::Failed(e) => Resp::new(500, TEXT, format!("{e}\n")),
        LoginOutcome::Refused(msg) => login_page(sh, req, Some(&msg)),
        LoginOutcome::Throttled(secs) => {
            let msg = format!("Too many failed logins: wait {secs:.0} s.");
            let r = login_page(sh, req, Some(&msg));
            Resp { status: 429, ..r }.header("Retry-After", &format!("{secs:.0}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::model::{Op, Rule};

    #[test]
    fn rules_become_bands() {
        let site = Site { levels: crate::work::default_levels(), ..Site::default() };
        let r = |level: &str, op, value| Rule { level: level.into(), op, value };
        let b = bands_of(
            &site,
            &[r("crit", Op::Gt, 8.0), r("soso", Op::Gt, 2.0), r("sick", Op::Ge, 4.0)],
        );
        let got: Vec<(f64, f64, &str, usize)> =
            b.iter().map(|b| (b.lo, b.hi, b.level.as_str(), b.colour)).collect();
        assert_eq!(
            got,
            vec![(2.0, 4.0, "soso", 1), (4.0, 8.0, "sick", 2), (8.0, f64::INFINITY, "crit", 3)]
        );
        let low = bands_of(&site, &[r("sick", Op::Lt, 1.0), r("dead", Op::Eq, 0.0)]);
        assert_eq!(low.len(), 1);
        assert_eq!((low[0].lo, low[0].hi), (f64::NEG_INFINITY, 1.0));
    }
}
