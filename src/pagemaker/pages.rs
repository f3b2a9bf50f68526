//! The fleet pages: the layout every page shares (inline CSS, header,
//! auto-refresh), `/` problems, `/hosts` grid, `/host/<host>`,
//! `/item/<item>` and the 404 page. HTML through maud only, so every string
//! from a host, a probe or the network is escaped. Pure over a snapshot:
//! the fetching is the caller's (see `render_*` for the bench). Uses
//! `web.rs` (badges, links, numbers), `svg.rs` (sparklines) and `login.rs`
//! (who sees what); `views.rs` builds on its layout.

use super::fetch::{AlertView, HostView, ItemView, Snapshot};
use super::login::{can_see, visible_host, User};
use super::web::{enc, fmt_num, graph_link, host_link, lv, reach, unit, Req, Resp, HTML};
use super::{Shared, Site};
use crate::clock::{fmt_age, fmt_time};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::collections::{BTreeMap, HashMap};

/// One stylesheet for every page: system fonts, tabular numbers, no
/// decoration; level colours l0 (best) .. l4 (worst) from the Okabe-Ito
/// palette (colour-blind safe), always next to the level's name.
const CSS: &str = r#"
:root{--bg:#fff;--fg:#1b1b1b;--mute:#666;--line:#ddd;--head:#f4f4f4;--link:#0550ae;
--l0:#009e73;--l1:#c9b800;--l2:#e69f00;--l3:#d55e00;--l4:#6c2a8a;--na:#999}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--fg:#e4e4e4;--mute:#9a9a9a;--line:#333;
--head:#1e1e1e;--link:#7ab7ff;--l0:#2bc48f;--l1:#e8d84a;--l2:#f0ad2c;--l3:#ff7a3d;--l4:#c48be0}}
*{box-sizing:border-box}body{margin:0;font:14px/1.35 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:var(--bg);color:var(--fg);font-variant-numeric:tabular-nums}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
header{display:flex;flex-wrap:wrap;gap:.2em 1em;align-items:baseline;padding:.4em .8em;border-bottom:1px solid var(--line);background:var(--head)}
header b{font-size:15px}nav a{margin-right:.8em}main{padding:.5em .8em}
.sum{color:var(--mute);margin:.2em 0 .6em}.stale{color:var(--l3);font-weight:600}
table{border-collapse:collapse;width:100%}th,td{padding:.15em .5em;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;background:var(--head);position:sticky;top:0}td.n,th.n{text-align:right}
.lv{display:inline-block;min-width:4.2em;padding:0 .35em;border-radius:2px;font-weight:600;color:#fff;text-align:center}
.l0{background:var(--l0)}.l1{background:var(--l1);color:#000}.l2{background:var(--l2);color:#000}.l3{background:var(--l3)}.l4{background:var(--l4)}.lna{background:var(--na)}
td.c0{border-left:4px solid var(--l0)}td.c1{border-left:4px solid var(--l1)}td.c2{border-left:4px solid var(--l2)}td.c3{border-left:4px solid var(--l3)}td.c4{border-left:4px solid var(--l4)}
.b{display:inline-block;border:1px solid var(--mute);border-radius:2px;padding:0 .3em;margin-right:.2em;font-size:12px;color:var(--mute)}
.msg{color:var(--mute);max-width:40em;overflow-wrap:anywhere}.err{color:var(--l3)}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1em 1em;margin:.3em 0 .8em}dt{color:var(--mute)}dd{margin:0}
form.inl{display:inline}input,select,button{font:inherit}fieldset{border:1px solid var(--line);margin:.4em 0}
svg{max-width:100%;height:auto}.spark{vertical-align:middle}.tabs a{margin-right:.5em}.tabs a.on{font-weight:700}
"#;

/// Reloads the page every `refresh` seconds unless the user is typing.
const REFRESH_JS: &str = "(function(){var t=+document.body.dataset.refresh;if(!t)return;var busy=0;\
document.addEventListener('focusin',function(e){if(/INPUT|SELECT|TEXTAREA/.test(e.target.tagName))busy=1});\
document.addEventListener('focusout',function(){busy=0});\
setInterval(function(){if(!busy&&!document.hidden)location.reload()},t*1000)})();";

/// The page frame. `refresh` false for forms and graphs people read.
pub fn layout(
    site: &Site,
    snap: Option<&Snapshot>,
    user: Option<&User>,
    title: &str,
    refresh: bool,
    now: f64,
    body: Markup,
) -> Markup {
    let r = if refresh { format!("{:.0}", site.refresh) } else { String::new() };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (site.title) }
                style { (PreEscaped(CSS)) }
            }
            body data-refresh=(r) {
                header {
                    b { a href="/" { (site.title) } }
                    nav {
                        a href="/" { "Problems" } a href="/hosts" { "Hosts" } a href="/events" { "Events" }
                        a href="/alerts" { "Alerts" }
                    }
                    @if let Some(s) = snap { (data_age(s, now)) }
                    span style="margin-left:auto" {
                        @match user {
                            Some(u) => { (u.name) " " form.inl method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(u.csrf);
                                button { "log out" } } }
                            None => a href="/login" { "log in" },
                        }
                    }
                }
                main { (body) }
                script { (PreEscaped(REFRESH_JS)) }
            }
        }
    }
}

fn data_age(s: &Snapshot, now: f64) -> Markup {
    html! {
        @if s.fetched == 0.0 {
            span.stale { "no data from the server yet" @if let Some(e) = &s.error { ": " (e) } }
        } @else if let Some(e) = &s.error {
            span.stale title=(e) { "server unreachable; data " (fmt_age(s.age(now))) " old" }
        } @else {
            span.sum { "data of " (fmt_time(s.fetched)) }
        }
    }
}

pub fn value_text(it: &ItemView) -> String {
    match (it.value, &it.text) {
        (Some(v), _) => {
            let u = unit(&it.name);
            if u.is_empty() {
                fmt_num(v)
            } else {
                format!("{} {u}", fmt_num(v))
            }
        }
        (None, Some(t)) => t.clone(),
        _ => "-".into(),
    }
}

fn badges(a: Option<&AlertView>) -> Markup {
    html! {
        @if let Some(a) = a {
            @if a.acked { span.b title="acknowledged" { "acked" } }
            @if a.silenced { span.b title="silenced" { "silenced" } }
            @if a.flapping { span.b title="flapping" { "flapping" } }
            @if let Some(p) = &a.suppressed_by { span.b title="suppressed by its down parent" { "via " (p) } }
        }
    }
}

/// A row of the problems table.
struct Problem<'a> {
    level: usize,
    host: &'a HostView,
    item: Option<&'a ItemView>,
    since: Option<f64>,
}

pub fn problems(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    Resp::new(200, HTML, render_problems(&site, &snap, user, req.now).into_string())
}

pub fn render_problems(site: &Site, snap: &Snapshot, user: Option<&User>, now: f64) -> Markup {
    let fleet = &snap.fleet;
    let alerts: HashMap<(&str, &str), &AlertView> =
        fleet.alerts.iter().map(|a| ((a.host.as_str(), a.item.as_str()), a)).collect();
    let hosts: Vec<&HostView> =
        fleet.hosts.iter().filter(|h| can_see(site, user, &h.name)).collect();
    let mut states: BTreeMap<&str, usize> = BTreeMap::new();
    let mut levels = vec![0usize; site.levels.len() + 1];
    let mut rows: Vec<Problem> = Vec::new();
    for h in &hosts {
        *states.entry(h.state.as_str()).or_default() += 1;
        if let Some(i) = site.reach_index(&h.state).filter(|&i| i > 0) {
            let since = alerts.get(&(h.name.as_str(), "heartbeat")).map(|a| a.since);
            rows.push(Problem { level: i, host: h, item: None, since });
        }
        for it in &h.items {
            let Some(l) = it.level.as_deref() else { continue };
            let i = site.level_index(l);
            levels[i.min(site.levels.len())] += 1;
            if i > 0 && it.name != "heartbeat" {
                let since = alerts.get(&(h.name.as_str(), it.name.as_str())).map(|a| a.since);
                rows.push(Problem { level: i, host: h, item: Some(it), since });
            }
        }
    }
    // Hosts first, then worst first, then longest-standing first.
    rows.sort_by(|a, b| {
        (a.item.is_some(), std::cmp::Reverse(a.level), a.since.unwrap_or(f64::MAX), &a.host.name)
            .partial_cmp(&(
                b.item.is_some(),
                std::cmp::Reverse(b.level),
                b.since.unwrap_or(f64::MAX),
                &b.host.name,
            ))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let count = |s: &str| states.get(s).copied().unwrap_or(0);
    let body = html! {
        p.sum {
            "hosts " (hosts.len()) " · up " (count("up")) " · late " (count("late")) " · down " (count("down"))
            " · unreachable " (count("unreachable")) " · stopped " (count("stopped")) " · new " (count("new"))
            " — items: "
            @for (i, l) in site.levels.iter().enumerate() { (lv(site, Some(&l.name))) " " (levels[i]) " " }
            @if fleet.outbox_failed > 0 { span.stale { " · deliveries failing: " (fleet.outbox_failed) } }
            @if fleet.outbox_pending > 0 { " · deliveries pending: " (fleet.outbox_pending) }
        }
        @if rows.is_empty() {
            @if snap.fetched > 0.0 { p { "All " (hosts.len()) " hosts fine at " (fmt_time(snap.fetched)) "." } }
        } @else {
            table {
                thead { tr { th { "level" } th { "host" } th { "item" } th.n { "value" } th { "since" } th { "" } th { "message" } } }
                tbody { @for r in &rows { (problem_row(site, r, &alerts, now)) } }
            }
        }
    };
    layout(site, Some(snap), user, "Problems", true, now, body)
}

fn problem_row(
    site: &Site,
    r: &Problem,
    alerts: &HashMap<(&str, &str), &AlertView>,
    now: f64,
) -> Markup {
    let h = r.host;
    let c = site.colour(r.level);
    match r.item {
        None => {
            let a = alerts.get(&(h.name.as_str(), "heartbeat")).copied();
            html! { tr {
                td class=(format!("c{c}")) { (reach(site, &h.state)) }
                td { a href=(host_link(&h.name)) { (h.name) } }
                td { a href=(graph_link(&h.name, "rtt")) { "heartbeat" } }
                td.n { @if let Some(s) = h.seen { "seen " (fmt_age(s)) " ago" } @else { "never seen" } }
                td { @if let Some(s) = r.since { (fmt_age(now - s)) } }
                td { (badges(a)) }
                td.msg { @if let Some(rtt) = h.rtt_ms { "rtt " (fmt_num(rtt)) " ms" } }
            } }
        }
        Some(it) => {
            let a = alerts.get(&(h.name.as_str(), it.name.as_str())).copied();
            html! { tr {
                td class=(format!("c{c}")) { (lv(site, it.level.as_deref())) }
                td { a href=(host_link(&h.name)) { (h.name) } }
                td { a href=(graph_link(&h.name, &it.name)) { (it.name) } }
                td.n { (value_text(it)) }
                td { @if let Some(s) = r.since.or(it.time) { (fmt_age(now - s)) } }
                td { (badges(a)) }
                td.msg { @if let Some(e) = &it.error { span.err { (e) } } @else { (it.message) } }
            } }
        }
    }
}

/// The items most hosts have (the grid's columns), at most `n`.
pub fn standard_items(hosts: &[&HostView], n: usize) -> Vec<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for h in hosts {
        for it in &h.items {
            *count.entry(it.name.as_str()).or_default() += 1;
        }
    }
    let mut v: Vec<(&str, usize)> = count.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let mut names: Vec<String> = v.into_iter().take(n).map(|(k, _)| k.to_string()).collect();
    names.sort();
    names
}

/// Rows of the /hosts grid per page.
pub const HOSTS_PER_PAGE: usize = 500;

pub fn hosts(sh: &Shared, req: &Req, user: Option<&User>) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let group = req.q("group");
    let sort = req.q("sort").unwrap_or("host");
    let page = req.q("page").and_then(|p| p.parse().ok()).unwrap_or(0);
    Resp::new(200, HTML, render_hosts(&site, &snap, user, group, sort, page, req.now).into_string())
}

pub fn render_hosts(
    site: &Site,
    snap: &Snapshot,
    user: Option<&User>,
    group: Option<&str>,
    sort: &str,
    page: usize,
    now: f64,
) -> Markup {
    let in_group = |h: &str| match group {
        None => true,
        Some(g) => site.entry(h).is_some_and(|e| e.groups.iter().any(|x| x == g)),
    };
    let mut hosts: Vec<&HostView> = snap
        .fleet
        .hosts
        .iter()
        .filter(|h| can_see(site, user, &h.name) && in_group(&h.name))
        .collect();
    let cols = standard_items(&hosts, 12);
    let cols_enc: Vec<String> = cols.iter().map(|c| enc(c)).collect();
    const CELL: [&str; 5] = ["n c0", "n c1", "n c2", "n c3", "n c4"];
    let worst = |h: &HostView| {
        let r = site.reach_index(&h.state).unwrap_or(0);
        h.items
            .iter()
            .filter_map(|i| i.level.as_deref())
            .map(|l| site.level_index(l))
            .fold(r, usize::max)
    };
    match sort {
        "level" => hosts.sort_by_key(|h| std::cmp::Reverse(worst(h))),
        "state" => hosts.sort_by(|a, b| a.state.cmp(&b.state)),
        s if cols.iter().any(|c| c == s) => hosts.sort_by(|a, b| {
            let v = |h: &HostView| h.items.iter().find(|i| i.name == s).and_then(|i| i.value);
            v(b).partial_cmp(&v(a)).unwrap_or(std::cmp::Ordering::Equal)
        }),
        _ => {}
    }
    let groups: std::collections::BTreeSet<&str> =
        site.part.hosts.iter().flat_map(|h| h.groups.iter().map(String::as_str)).collect();
    let link = |s: &str, p: usize| match group {
        Some(g) => format!("/hosts?group={}&sort={}&page={p}", enc(g), enc(s)),
        None => format!("/hosts?sort={}&page={p}", enc(s)),
    };
    let sort_link = |s: &str| link(s, 0);
    // A page of the grid at a time: 10,000 rows help nobody and cost the
    // browser more than the server.
    let pages = hosts.len().div_ceil(HOSTS_PER_PAGE).max(1);
    let page = page.min(pages - 1);
    let all = hosts.len();
    let hosts: Vec<&HostView> =
        hosts.into_iter().skip(page * HOSTS_PER_PAGE).take(HOSTS_PER_PAGE).collect();
    let body = html! {
        form.sum method="get" action="/hosts" {
            "group " select name="group" {
                option value="" { "all" }
                @for g in &groups { option value=(g) selected[group == Some(*g)] { (g) } }
            }
            input type="hidden" name="sort" value=(sort);
            " " button { "show" } " · " (all) " hosts"
            @if pages > 1 { " · page " (page + 1) " of " (pages) " "
                @if page > 0 { a href=(link(sort, page - 1)) { "← previous" } " " }
                @if page + 1 < pages { a href=(link(sort, page + 1)) { "next →" } } }
        }
        table {
            thead { tr {
                th { a href=(sort_link("host")) { "host" } }
                th { a href=(sort_link("state")) { "state" } }
                th.n { "rtt ms" } th.n { a href=(sort_link("level")) { "worst" } }
                @for c in &cols { th.n { a href=(sort_link(c)) { (c) } } }
            } }
            tbody { @for h in &hosts { @let he = enc(&h.name); tr {
                td { a href=(format!("/host/{he}")) { (h.name) } }
                td { (reach(site, &h.state)) }
                td.n { @if let Some(r) = h.rtt_ms { (fmt_num(r)) } }
                td.n { @let w = worst(h); @if let Some(l) = site.levels.get(w) { (lv(site, Some(&l.name))) } }
                @for (c, ce) in cols.iter().zip(&cols_enc) {
                    @match h.items.iter().find(|i| &i.name == c) {
                        Some(it) => {
                            @let cls = it.level.as_deref().map(|l| CELL[site.colour(site.level_index(l)).min(4)]).unwrap_or("n");
                            td class=(cls) title=(it.level.as_deref().unwrap_or("no level")) {
                                a href=(format!("/graph/{he}/{ce}")) { (value_text(it)) } }
                        }
                        None => td.n { "" },
                    }
                }
            } } }
        }
    };
    layout(site, Some(snap), user, "Hosts", true, now, body)
}

pub fn host(sh: &Shared, req: &Req, user: Option<&User>, name: &str) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let Some(h) = visible_host(&snap.fleet, &site, user, name) else {
        return not_found(sh, req, user, &format!("No host {name} in the fleet."));
    };
    // One HIST for every item: the sparklines of the last day.
    let names: Vec<&str> =
        h.items.iter().filter(|i| i.value.is_some()).map(|i| i.name.as_str()).collect();
    let hist = if names.is_empty() || !h.in_work {
        Err("no history".to_string())
    } else {
        sh.fetch.hist(&h.name, 'D', 48, &names)
    };
    Resp::new(200, HTML, render_host(&site, &snap, user, h, &hist, req.now).into_string())
}

pub fn render_host(
    site: &Site,
    snap: &Snapshot,
    user: Option<&User>,
    h: &HostView,
    hist: &Result<serde_json::Value, String>,
    now: f64,
) -> Markup {
    let series = |item: &str| -> Option<Vec<(f64, Option<f64>)>> {
        super::svg::series_of(hist.as_ref().ok()?, item)
    };
    let entry = site.entry(&h.name);
    let body = html! {
        h2 { (h.name) " " (reach(site, &h.state)) }
        dl {
            dt { "state" } dd { (h.state) }
            dt { "rtt" } dd { @if let Some(r) = h.rtt_ms { (fmt_num(r)) " ms" } @else { "-" } }
            dt { "phi" } dd { @if let Some(p) = h.phi { (format!("{p:.2}")) } @else { "-" } }
            dt { "last seen" } dd { @if let Some(s) = h.seen { (fmt_age(s)) " ago" } @else { "never" } }
            dt { "version" } dd { (h.version) }
            dt { "boot time" } dd { @if let Some(u) = h.uptime { (fmt_time(now - u)) " (up " (fmt_age(u)) ")" } @else { "-" } }
            dt { "address" } dd { (h.address) }
            @if let Some(e) = entry { dt { "groups" } dd { (e.groups.join(" ")) } }
            @if !h.in_work { dt { "in the work" } dd { "no (a sender the work does not name)" } }
            dt { "report" } dd { @if let Some(a) = h.report_age { (fmt_age(a)) " ago" } @else { "none" } }
        }
        @if let Err(e) = hist { @if h.in_work { p.sum { "history unavailable: " (e) } } }
        table {
            thead { tr { th { "item" } th { "level" } th.n { "value" } th { "age" } th { "last day" } th { "message" } } }
            tbody { @for it in &h.items { tr {
                td { a href=(graph_link(&h.name, &it.name)) { (it.name) } }
                td { (lv(site, it.level.as_deref())) }
                td.n { (value_text(it)) }
                td { @if let Some(t) = it.time { (fmt_age(now - t)) } }
                td { @if let Some(s) = series(&it.name) { (PreEscaped(super::svg::sparkline(&s, 120, 18))) } }
                td.msg { @if let Some(e) = &it.error { span.err { (e) } } @else { (it.message) } }
            } } }
        }
        p { a href=(format!("/events?host={}", enc(&h.name))) { "events of this host" } " · "
            a href=(format!("/graph/{}?ival=D", enc(&h.name))) { "all items on one graph" } }
    };
    layout(site, Some(snap), user, &h.name, true, now, body)
}

pub fn item(sh: &Shared, req: &Req, user: Option<&User>, name: &str) -> Resp {
    let snap = sh.fetch.fleet(req.now);
    let site = sh.site();
    let rows: Vec<(&HostView, &ItemView)> = snap
        .fleet
        .hosts
        .iter()
        .filter(|h| can_see(&site, user, &h.name))
        .filter_map(|h| h.items.iter().find(|i| i.name == name).map(|i| (h, i)))
        .collect();
    if rows.is_empty() {
        return not_found(sh, req, user, &format!("No host has an item {name}."));
    }
    Resp::new(
        200,
        HTML,
        render_item(&site, &snap, user, name, rows, req.q("sort").unwrap_or("value"), req.now)
            .into_string(),
    )
}

fn render_item(
    site: &Site,
    snap: &Snapshot,
    user: Option<&User>,
    name: &str,
    mut rows: Vec<(&HostView, &ItemView)>,
    sort: &str,
    now: f64,
) -> Markup {
    let lvl = |i: &ItemView| i.level.as_deref().map(|l| site.level_index(l)).unwrap_or(0);
    match sort {
        "level" => rows.sort_by_key(|(h, i)| (std::cmp::Reverse(lvl(i)), h.name.clone())),
        "host" => rows.sort_by(|a, b| a.0.name.cmp(&b.0.name)),
        _ => rows
            .sort_by(|a, b| b.1.value.partial_cmp(&a.1.value).unwrap_or(std::cmp::Ordering::Equal)),
    }
    let base = format!("/item/{}", enc(name));
    let hosts: Vec<&str> = rows.iter().map(|(h, _)| h.name.as_str()).take(8).collect();
    let body = html! {
        h2 { (name) }
        p.sum { (rows.len()) " hosts · " a href=(format!("/graph/{}/{}?ival=D", enc(hosts.join(",").as_str()), enc(name))) { "graph of the first " (hosts.len()) } }
        table {
            thead { tr { th { a href=(format!("{base}?sort=host")) { "host" } } th { a href=(format!("{base}?sort=level")) { "level" } }
                th.n { a href=(format!("{base}?sort=value")) { "value" } } th { "age" } th { "message" } } }
            tbody { @for (h, it) in &rows { tr {
                td { a href=(graph_link(&h.name, name)) { (h.name) } }
                td { (lv(site, it.level.as_deref())) }
                td.n { (value_text(it)) }
                td { @if let Some(t) = it.time { (fmt_age(now - t)) } }
                td.msg { @if let Some(e) = &it.error { span.err { (e) } } @else { (it.message) } }
            } } }
        }
    };
    layout(site, Some(snap), user, name, true, now, body)
}

pub fn not_found(sh: &Shared, req: &Req, user: Option<&User>, why: &str) -> Resp {
    let site = sh.site();
    let body = html! { h2 { "Not found" } p { (why) } p { a href="/" { "Back to the problems" } } };
    Resp::new(404, HTML, layout(&site, None, user, "Not found", false, req.now, body).into_string())
}
