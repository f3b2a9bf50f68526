//! Issue 11: `/metrics` text from a real fleet's CLIENTS and DUMP answers
//! passes the real `promtool check metrics` (parser and linter), and says
//! what the fleet is: both hosts up, then the SIGKILLed one down.

mod common;
use common::*;
use hbmon::pagemaker::metrics::render;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

fn levels() -> Vec<String> {
    ["fine", "soso", "sick", "crit", "dead"].iter().map(|s| s.to_string()).collect()
}

fn json(h: &Host, verb: &str) -> Value {
    serde_json::from_str(&h.body(verb)).unwrap_or_else(|e| panic!("{verb} is not JSON: {e}"))
}

/// `promtool check metrics` on `text`: Ok or the tool's complaint.
fn promtool(text: &str) -> Result<(), String> {
    let mut c = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) runs");
    c.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    let said =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if out.status.success() && said.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("promtool: {} {said}\n--- text:\n{text}", out.status))
    }
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_real_fleets_metrics_pass_promtool_and_follow_the_fleet() {
    let work = "ival_heartbeat 1s\nival_make_state 1s\nival_send_report 1s\n\
                get all cpu_load mem_used disk_used:/ uptime\nfit cpu_load soso >-1\n";
    let mut f = Fleet::new(&["srv", "cli"], work, "");
    f.start_all();
    let (srv_name, cli_name) = (f.hosts[0].name.clone(), f.hosts[1].name.clone());
    let text = wait_for(30.0, "both hosts up with items", || {
        let c = json(f.server(), "CLIENTS");
        let ready = [&srv_name, &cli_name].iter().all(|h| {
            c["cdmp"][h.as_str()]["heartbeat"]["state"] == "up"
                // (A report sent before the first round has the item, no level.)
                && c["cdmp"][h.as_str()]["report"]["items"]["cpu_load"]["level"].is_string()
        });
        ready.then(|| render(&c, Some(&json(f.server(), "DUMP")), &levels()))
    });
    promtool(&text).unwrap();
    for h in [&srv_name, &cli_name] {
        assert_eq!(sample(&text, &format!("hbmon_host_up{{host=\"{h}\"}}")), Some(1.0), "{text}");
        let lvl = sample(&text, &format!("hbmon_item_level{{host=\"{h}\",item=\"cpu_load\"}}"));
        assert_eq!(lvl, Some(1.0), "cpu_load > -1 is soso\n{text}");
        assert!(sample(&text, &format!("hbmon_heartbeat_rtt_seconds{{host=\"{h}\"}}")).is_some());
    }
    assert!(sample(&text, "hbmon_udp_datagrams_received_total").is_some_and(|n| n > 0.0));
    assert!(sample(&text, "hbmon_commands_total").is_some_and(|n| n > 0.0));
    assert!(sample(&text, "hbmon_alerts{level=\"soso\"}").is_some_and(|n| n >= 2.0), "{text}");

    f.host("cli").kill9();
    let series = format!("hbmon_host_up{{host=\"{cli_name}\"}}");
    let text = wait_for(30.0, "the killed client down in /metrics", || {
        let t = render(&json(f.server(), "CLIENTS"), Some(&json(f.server(), "DUMP")), &levels());
        (sample(&t, &series) == Some(0.0)).then_some(t)
    });
    promtool(&text).unwrap();
    let down = format!("hbmon_host_state{{host=\"{cli_name}\",state=\"down\"}}");
    assert_eq!(sample(&text, &down), Some(1.0), "{text}");
}

#[test]
fn hostile_names_are_escaped_so_promtool_still_parses() {
    let c = serde_json::json!({"cdmp": {
        "evil\"host\\\n<script>alert(1)</script>": {"tag": "t\"", "address": "a\nb",
            "heartbeat": {"state": "up", "rtt_ms": 0.5, "phi": 0.1, "seen": 1.0, "version": "v\\"},
            "report": {"items": {"probe:\"x\"\n": {"value": 1e-9, "level": "crit", "time": 1.0}}}}}});
    let text = render(&c, None, &levels());
    promtool(&text).unwrap();
    assert!(text.contains("item=\"probe:\\\"x\\\"\\n\""), "{text}");
}
