//! A real browser on the dashboard (issue 11): headless Chromium opens `/`,
//! a host page and a graph of a test fleet; the DOM (`--dump-dom`) must
//! show the hosts and their levels; screenshots go to the test's output
//! directory. With `HBMON_README_SHOTS=1` the same run also writes the
//! README's pictures, docs/img/problems.png and docs/img/graph.png.

mod common;
mod dashfleet;
use common::*;
use dashfleet::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Each host's `probe:demo` prints a queue length and a temperature.
fn demo_probe(h: &Host, queue: &str, temp: &str) {
    let dir = h.vardir().join("probes");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("demo");
    std::fs::write(
        &p,
        format!("#!/bin/sh\necho \"queue {queue} items waiting\"\necho \"temp {temp} degrees\"\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Two hours of one-minute samples of `cpu_load` (a slow wave across the
/// thresholds, with a gap) in a host's history, through sqlite3.
fn seed_history(h: &Host) {
    // The store thread opens history.db once the daemon answers.
    h.wait_state(30.0, "history.db open", |s| !s.contains("-- history.db starting"));
    let db = h.vardir().join("history.db");
    let sql = "INSERT OR IGNORE INTO items(name) VALUES('cpu_load');
        WITH RECURSIVE m(t) AS (SELECT CAST(strftime('%s','now') AS INTEGER)/60*60 - 7200
                                UNION ALL SELECT t + 60 FROM m WHERE t < CAST(strftime('%s','now') AS INTEGER) - 120)
        INSERT OR IGNORE INTO samples(item, t, v)
        SELECT (SELECT id FROM items WHERE name='cpu_load'), t, 0.4 + abs((t/60) % 40 - 20) * 0.33 + (t/60 % 7) * 0.1
        FROM m WHERE (t/60) % 53 NOT BETWEEN 20 AND 25;";
    let out = Command::new("sqlite3")
        .args(["-cmd", ".timeout 10000"])
        .arg(&db)
        .arg(sql)
        .output()
        .expect("sqlite3");
    assert!(out.status.success(), "sqlite3: {}", String::from_utf8_lossy(&out.stderr));
}

fn chromium(args: &[&str], url: &str) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-device-scale-factor=1",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium must be installed: make test installs it");
    assert!(
        out.status.success(),
        "chromium {args:?} {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn shot(url: &str, to: &Path, size: &str) {
    let _ = std::fs::remove_file(to);
    chromium(&[&format!("--screenshot={}", to.display()), &format!("--window-size={size}")], url);
    let png = std::fs::read(to).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot at {}",
        to.display()
    );
}

#[test]
fn chromium_renders_problems_host_and_graph() {
    let work = format!(
        "pmaker dash\ngroup web www1 www2\ngroup db db1\n{FAST}title hbmon demo fleet\n\
         get all cpu_load mem_used uptime procs\nprobe all demo\n\
         fit cpu_load soso >6 sick >12 crit >24\nfit www1:cpu_load soso >2 sick >4 crit >8\n\
         fit db1:procs soso >1\n"
    );
    let mut f = Fleet::new(&["srv", "dash", "db1", "www1", "www2", "app1"], &work, "");
    // Two Nagios-style checks with a status text (plugins of our own).
    let plugins = f.dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let mut extra = String::new();
    for (host, name, code, text) in [
        ("db1", "replica", 1, "WARNING: replica lag 42 s"),
        ("www2", "certificate", 2, "CRITICAL: certificate expires in 3 days"),
    ] {
        let p = plugins.join(name);
        std::fs::write(&p, format!("#!/bin/sh\necho '{text}'\nexit {code}\n")).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        extra.push_str(&format!("nagios {host} {name} {}\n", p.display()));
    }
    let text = std::fs::read_to_string(&f.workconf).unwrap() + &extra;
    std::fs::write(&f.workconf, text).unwrap();
    f.mkwork();
    for (tag, q, t) in [
        ("srv", "2", "41"),
        ("dash", "0", "38"),
        ("db1", "120", "66"),
        ("www1", "31", "$((70 + $(date +%S) % 12))"),
        ("www2", "3", "52"),
        ("app1", "1", "45"),
    ] {
        demo_probe(f.host(tag), q, t);
    }
    f.start_all();
    let web = Web { addr: SocketAddr::new(f.host("dash").ip.into(), f.port + 1) };
    seed_history(f.host("www1"));
    let names: Vec<String> = f.hosts.iter().map(|h| h.name.clone()).collect();
    wait_for(60.0, "every host up with its demo items", || {
        let v = web.json("/api/v1/hosts");
        let ok = names.iter().all(|n| {
            v["hosts"].as_array().is_some_and(|a| {
                a.iter().any(|h| {
                    h["name"] == n.as_str() && h["state"] == "up" && h["items"].as_u64() >= Some(7)
                })
            })
        });
        ok.then_some(())
    });
    // One host goes away for good: a down row at the top of the problems.
    let app1 = f.host("app1").name.clone();
    f.host("app1").kill9();
    wait_for(30.0, "app1 down", || web.ok("/").contains(">down<").then_some(()));
    let base = format!("http://{}", web.addr);

    let dom = chromium(&["--dump-dom"], &format!("{base}/"));
    assert!(
        dom.contains(&app1) && dom.contains(">down<"),
        "the down host, named and levelled: {dom}"
    );
    for lvl in ["crit", "sick", "soso", "dead"] {
        assert!(dom.contains(&format!(">{lvl}<")), "{lvl} on the problems page");
    }
    assert!(
        dom.contains("nagios:replica") && dom.contains("replica lag 42 s"),
        "db1's check is a problem: {dom}"
    );
    let www1 = f.host("www1").name.clone();
    let dom = chromium(&["--dump-dom"], &format!("{base}/host/{www1}"));
    assert!(
        dom.contains(&www1)
            && dom.contains(">up<")
            && dom.contains("demo.temp")
            && dom.contains("class=\"spark\""),
        "{dom}"
    );
    let graph = format!("{base}/graph/{www1}/cpu_load?ival=H");
    let dom = chromium(&["--dump-dom"], &graph);
    assert!(dom.contains("<svg") && dom.contains("sick 4..8") && dom.contains("min "), "{dom}");

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&out).unwrap();
    shot(&format!("{base}/"), &out.join("problems.png"), "1200,560");
    shot(&format!("{base}/host/{www1}"), &out.join("host.png"), "1200,640");
    shot(&graph, &out.join("graph.png"), "1000,520");
    eprintln!("screenshots in {}", out.display());
    if std::env::var_os("HBMON_README_SHOTS").is_some() {
        let img = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/img");
        std::fs::create_dir_all(&img).unwrap();
        for n in ["problems.png", "graph.png"] {
            std::fs::copy(out.join(n), img.join(n)).unwrap();
        }
    }
}
