//! The dashboard (issue 11) through the real binary: a server, a pagemaker
//! on another host and two clients on 127.X.Y.N; every page and API route
//! with the fleet's real hosts and items; a SIGKILLed client down on `/` and
//! in the API; hostile names and messages escaped everywhere, SVG included.

mod common;
mod dashfleet;
use common::*;
use dashfleet::*;
use serde_json::Value;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

fn host_of<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    v["hosts"].as_array()?.iter().find(|h| h["name"] == name)
}

/// An hbd-style sender (HTB + PLG) whose name is a script.
fn hostile_sender(srv: &Host) {
    let to = SocketAddr::new(srv.ip.into(), srv.port);
    let sock = std::net::UdpSocket::bind(SocketAddr::new(srv.ip.into(), 0)).unwrap();
    use hbmon::wire::{encode, Value as W};
    let htb = encode(
        "HTB",
        &[("name", W::Str(XSS.into())), ("seq", W::Int(1)), ("interval", W::Int(10))],
    );
    let plg = encode(
        "PLG",
        &[("name", W::Str(XSS.into())), ("plugin", W::Str("cpu".into())), ("load", W::Float(0.5))],
    );
    sock.send_to(&htb, to).unwrap();
    sock.send_to(&plg, to).unwrap();
}

#[test]
fn every_page_and_route_shows_the_fleet() {
    let (mut f, web) = dash_fleet("");
    let names: Vec<String> = f.hosts.iter().map(|h| h.name.clone()).collect();
    let c1 = f.host("c1").name.clone();
    // All four up with their items, seen through a pagemaker that is not the server.
    let v = wait_for(30.0, "every host up with items in /api/v1/hosts", || {
        let v = web.json("/api/v1/hosts");
        names
            .iter()
            .all(|n| {
                host_of(&v, n).is_some_and(|h| h["state"] == "up" && h["items"].as_u64() >= Some(2))
            })
            .then_some(v)
    });
    assert!(v["data"]["error"].is_null(), "{v}");
    for n in &names {
        let hosts = web.ok("/hosts");
        assert!(hosts.contains(n.as_str()), "{n} on /hosts");
        let page = web.ok(&format!("/host/{n}"));
        assert!(page.contains("cpu_load") && page.contains("uptime"), "items on /host/{n}");
        assert!(page.contains(r#"class="lv l0">up<"#), "up, with its level colour: {page}");
    }
    // The probe's sick item is a problem, with its level name.
    wait_for(20.0, "probe:xss sick on /", || {
        let p = web.ok("/");
        (p.contains("probe:xss") && p.contains(">sick<")).then_some(())
    });
    let item = web.ok("/item/cpu_load");
    assert!(names.iter().all(|n| item.contains(n.as_str())), "hosts by item");
    assert_eq!(web.get("/item/no_such_item").0, 404);
    assert_eq!(web.get("/host/nobody.example.org").0, 404);
    assert_eq!(web.get("/no/such/page").0, 404);
    // History through RELAY HIST: a graph and the bare SVG.
    let g = wait_for(30.0, "cpu_load history on the graph", || {
        let g = web.ok(&format!("/graph/{c1}/cpu_load?ival=H"));
        (g.contains("<svg") && g.contains("<circle")).then_some(g)
    });
    assert!(g.contains("min ") && g.contains("avg ") && g.contains("max "), "{g}");
    let svg = web.ok(&format!("/svg/{c1}/cpu_load?ival=D"));
    assert!(svg.starts_with("<svg") && svg.contains("UTC"));
    let two = web.ok(&format!("/svg/{}/cpu_load?ival=H", names[2..].join(",")));
    assert_eq!(two.matches("<path d=\"M").count(), 2, "two hosts, two lines: {two}");
    let several = web.ok(&format!("/graph/{c1}/cpu_load?item=uptime"));
    assert!(several.contains("cpu_load, uptime"), "two items on one chart");
    // The fitness thresholds are bands in the level colours.
    let banded = wait_for(30.0, "probe:xss history", || {
        let s = web.ok(&format!("/svg/{c1}/probe:xss?ival=H"));
        s.contains("<circle").then_some(s)
    });
    assert!(banded.contains("<title>sick 0..inf</title>"), "{banded}");
    for iv in ["W", "M", "Y"] {
        assert!(web.ok(&format!("/svg/{c1}/cpu_load?ival={iv}")).contains("</svg>"));
    }
    // The other pages.
    let ev = wait_for(20.0, "the probe's event on /events", || {
        let p = web.ok(&format!("/events?host={c1}&level=sick"));
        p.contains("probe:xss").then_some(p)
    });
    assert!(!ev.contains("cpu_load"), "level filter: {ev}");
    assert!(web.ok("/alerts").contains("probe:xss"), "the open alert");
    // The API.
    let h = web.json(&format!("/api/v1/hosts/{c1}"));
    assert!(h["host"]["items"].as_array().unwrap().iter().any(|i| i["name"] == "cpu_load"));
    let it = web.json("/api/v1/items/cpu_load");
    assert_eq!(it["hosts"].as_array().unwrap().len(), 4);
    let es = web.json(&format!("/api/v1/events?host={c1}&item=probe:xss&limit=5"));
    assert!(es["events"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["item"] == "probe:xss" && e["host"] == c1.as_str()));
    assert!(!es["events"].as_array().unwrap().is_empty());
    let al = web.json("/api/v1/alerts");
    assert!(al["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["item"] == "probe:xss" && a["acked"] == false));
    let hi = web.json(&format!("/api/v1/history/{c1}/cpu_load?ival=H&pnts=10"));
    assert_eq!(hi["cols"][1], "cpu_load");
    assert!(hi["rows"].as_array().unwrap().iter().any(|r| r[1].is_number()), "{hi}");
    let su = web.json("/api/v1/summary");
    assert_eq!(su["hosts"], 4);
    assert!(su["items_by_level"]["sick"].as_u64() >= Some(1), "{su}");
    let (st, b) = web.get("/api/v1/hosts/nobody");
    assert_eq!(st, 404);
    assert!(b.contains("\"error\""));
    assert_eq!(web.get("/api/v1/events?limit=0").0, 400);
    assert_eq!(web.get("/api/v1/history/nobody/cpu_load").0, 404);
    let (st, _, b) = http(web.addr, "POST", "/api/v1/ack", "", "");
    assert_eq!(st, 401, "ack needs a login: {b}");
    let (st, _) = web.get("/api/v1/nothing");
    assert_eq!(st, 404);

    // A SIGKILLed client is down on / and in the API within the detection time.
    let c2 = f.host("c2").name.clone();
    f.host("c2").kill9();
    let t = std::time::Instant::now();
    wait_for(30.0, "c2 down in /api/v1/hosts", || {
        host_of(&web.json("/api/v1/hosts"), &c2).is_some_and(|h| h["state"] == "down").then_some(())
    });
    let p = web.ok("/");
    let row = p.split("<tr>").find(|r| r.contains(&format!(">{c2}<"))).unwrap_or("");
    assert!(row.contains(">down<"), "c2's row on / says down: {row}");
    eprintln!(
        "c2 down on the dashboard {:?} after SIGKILL (heartbeat 1 s, grace 1 s, missed 3)",
        t.elapsed()
    );
}

#[test]
fn hostile_strings_are_escaped_everywhere() {
    let (f, web) = dash_fleet("");
    hostile_sender(f.server());
    let c1 = f.hosts[2].name.clone();
    let item = format!("xss.{XSS}");
    wait_for(30.0, "the hostile item and sender on /hosts", || {
        let p = web.ok("/hosts");
        (p.contains("xss.&lt;script&gt;")
            && p.contains("&lt;script&gt;alert(1)&lt;/script&gt;</a>"))
        .then_some(())
    });
    let enc = |s: &str| hbmon::notify::message::pct_encode(s);
    let pages = [
        "/".to_string(),
        "/hosts".to_string(),
        format!("/host/{c1}"),
        format!("/host/{}", enc(XSS)),
        format!("/item/{}", enc(&item)),
        format!("/events?host={c1}"),
        "/alerts".to_string(),
        format!("/graph/{c1}/{}?ival=H", enc(&item)),
        format!("/graph/{}/cpu.load", enc(XSS)),
        format!("/item/{}", enc(XSS)),
        format!("/svg/{c1}/{}?ival=H", enc(&item)),
        format!("/host/{}", enc(&format!("{XSS}x"))),
        "/api/v1/hosts".to_string(),
        format!("/api/v1/hosts/{c1}"),
        "/api/v1/alerts".to_string(),
    ];
    let mut seen = 0;
    for p in &pages {
        let (st, body) = web.get(p);
        assert!(st == 200 || st == 404, "{p}: {st}");
        assert!(!body.contains(XSS), "{p} carries the raw script: {body}");
        if body.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || body.contains("\\u003cscript")
            || body.contains("<\\/script")
        {
            seen += 1;
        }
    }
    // The message of probe:xss is on / (escaped), the item on /host and in the SVG.
    let home = web.ok("/");
    assert!(
        home.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "the probe message shows, escaped: {home}"
    );
    let svg = web.ok(&format!("/svg/{c1}/{}?ival=H", enc(&item)));
    assert!(svg.contains("xss.&lt;script&gt;alert(1)&lt;/script&gt;"), "{svg}");
    assert!(seen >= 10, "the hostile strings show (escaped) on most pages: {seen}");
}

#[test]
fn limits_and_a_restarting_server() {
    let (mut f, web) = dash_fleet("");
    wait_for(30.0, "c1's probe on /", || web.ok("/").contains("probe:xss").then_some(()));
    // Too long a URL, too big a body, a method we do not serve.
    let long = format!("/?{}", "a".repeat(5000));
    assert_eq!(web.get(&long).0, 414);
    let body = "x".repeat(20 << 10);
    let (st, _, _) = http(
        web.addr,
        "POST",
        "/ack",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &body,
    );
    assert_eq!(st, 413);
    let (st, _, _) = http(web.addr, "DELETE", "/", "", "");
    assert_eq!(st, 405);
    // Forms that change state need a login.
    let (st, _, _) = http(
        web.addr,
        "POST",
        "/ack",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "host=a&item=b",
    );
    assert_eq!(st, 403);
    // A client that sends nothing is cut off (its connection is not held forever).
    let mut idle = TcpStream::connect(web.addr).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut buf = [0u8; 64];
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the idle connection is closed without an answer");
    // Connections past the pool and its queue are told busy at once.
    // Each try holds a fresh set: on a loaded machine the previous set can
    // reach its idle cut-off before the probe request is made. The set is
    // larger than pool + queue: the accept thread can fill the queue
    // before every worker has taken its first connection (they take turns
    // at the queue's lock), and then turns away some of the set itself,
    // which leaves room behind it for the probe.
    let mut idle: Vec<TcpStream> = Vec::new();
    let busy = wait_for(30.0, "a 503 while every worker and queue slot is held", || {
        let held = 2 * (4 + 64);
        idle = (0..held).filter_map(|_| TcpStream::connect(web.addr).ok()).collect();
        let (st, _, b) = http(web.addr, "GET", "/", "", "");
        (st == 503).then_some(b)
    });
    assert!(busy.contains("busy"));
    drop(idle);
    wait_for(30.0, "the dashboard answers again", || (web.get("/").0 == 200).then_some(()));
    // The server goes away: the dashboard keeps answering with what it had,
    // and says how old it is.
    f.hosts[0].kill9();
    let p = wait_for(30.0, "the dashboard says the server is unreachable", || {
        let (st, p) = web.get("/");
        (st == 200 && p.contains("server unreachable")).then_some(p)
    });
    assert!(p.contains(&f.hosts[2].name), "the last answer is still shown");
    let v = web.json("/api/v1/hosts");
    assert!(v["data"]["error"].is_string() && v["hosts"].as_array().unwrap().len() == 4, "{v}");
    f.hosts[0].start();
    wait_for(30.0, "fresh data after the server's restart", || {
        web.json("/api/v1/hosts")["data"]["error"].is_null().then_some(())
    });
}

#[test]
fn the_api_examples_of_docs_api_md() {
    let (f, web) = dash_fleet("");
    let c1 = f.hosts[2].name.clone();
    wait_for(30.0, "c1 reported", || {
        web.json(&format!("/api/v1/hosts/{c1}"))["host"]["items"]
            .as_array()
            .is_some_and(|a| a.len() >= 3)
            .then_some(())
    });
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).unwrap();
    let block = doc
        .split("```api-examples\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the examples block");
    let mut n = 0;
    for line in block.lines().filter(|l| !l.trim().is_empty()) {
        let w: Vec<&str> = line.split_whitespace().collect();
        let (method, path, status, keys) = (w[0], w[1].replace("{c1}", &c1), w[2], &w[3..]);
        let (st, _, body) = http(web.addr, method, &path, "", "");
        assert_eq!(st.to_string(), status, "{line}: {body}");
        let v: Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{line}: {e}: {body}"));
        for k in keys {
            assert!(v.get(k).is_some(), "{line}: no {k} in {body}");
        }
        n += 1;
    }
    assert!(n >= 15, "{n} examples");
}
