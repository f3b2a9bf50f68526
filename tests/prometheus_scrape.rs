//! Issue 11: a real Prometheus (Debian `prometheus`), started by the test
//! on 127.0.0.1 with a temp config and storage, scrapes the pagemaker's
//! `/metrics` every second; its query API returns `hbmon_host_up` for each
//! host of the test fleet, and the text passes `promtool check metrics`.

mod common;
mod webclient;
use common::http::free_port;
use common::*;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use webclient::*;

/// A Prometheus process, killed by PID on drop (its log printed when the
/// test fails).
struct Prometheus {
    child: Child,
    log: std::path::PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- prometheus log:\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

fn start_prometheus(dir: &std::path::Path, target: SocketAddr, port: u16) -> Prometheus {
    let conf = dir.join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: hbmon\n    metrics_path: /metrics\n    \
             static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let log = dir.join("prometheus.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new("/usr/bin/prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", dir.join("tsdb").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start /usr/bin/prometheus (Debian package prometheus)");
    Prometheus { child, log }
}

#[test]
fn prometheus_scrapes_the_pagemaker_and_answers_hbmon_host_up_per_host() {
    let work = "pmaker srv\nival_heartbeat 1s\nival_make_state 1s\nival_send_report 1s\n\
                get all cpu_load mem_used\n";
    let mut f = Fleet::new(&["srv", "cli1", "cli2"], work, "");
    f.start_all();
    let dash = SocketAddr::new(f.hosts[0].ip.into(), f.port + 1);
    let w = Web::new(dash, Ipv4Addr::LOCALHOST);
    let names: Vec<String> = f.hosts.iter().map(|h| h.name.clone()).collect();
    // The pagemaker's own /metrics first: every host up, promtool happy.
    let text = wait_for(60.0, "/metrics shows every host up", || {
        let a = w.try_request("GET", "/metrics", None, None)?;
        let up = |n: &String| a.body.contains(&format!("hbmon_host_up{{host=\"{n}\"}} 1"));
        (a.status == 200 && names.iter().all(up)).then_some(a)
    });
    assert!(
        text.header("Content-Type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        text.headers
    );
    let mut pt = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    pt.stdin.take().unwrap().write_all(text.body.as_bytes()).unwrap();
    let out = pt.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let port = free_port();
    let _p = start_prometheus(f.dir.path(), dash, port);
    let api = Web::new(SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port), Ipv4Addr::LOCALHOST);
    let got = wait_for(90.0, "Prometheus has hbmon_host_up for every host", || {
        let a = api.try_request("GET", "/api/v1/query?query=hbmon_host_up", None, None)?;
        let v: Value = serde_json::from_str(&a.body).ok()?;
        let res = v["data"]["result"].as_array()?.clone();
        let all = names
            .iter()
            .all(|n| res.iter().any(|r| r["metric"]["host"] == n.as_str() && r["value"][1] == "1"));
        all.then_some(res)
    });
    assert_eq!(got.len(), names.len(), "one series per host: {got:?}");
    for r in &got {
        assert_eq!(r["metric"]["job"], "hbmon", "{r}");
    }
    // The scrape itself is healthy in Prometheus' eyes.
    let a = api.get("/api/v1/query?query=up%7Bjob%3D%22hbmon%22%7D", None);
    let v: Value = serde_json::from_str(&a.body).unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{}", a.body);
}
