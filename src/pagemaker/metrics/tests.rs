use super::*;
use serde_json::json;

fn levels() -> Vec<String> {
    ["fine", "soso", "sick", "crit", "dead"].iter().map(|s| s.to_string()).collect()
}

/// A CLIENTS answer as the server gives it (trimmed from a real one).
fn clients() -> Value {
    json!({"resp":"ok clients","cdmp":{
        "cli.t":{"tag":"cli","address":"127.0.77.2","heartbeat":{"state":"up","rtt_ms":0.54049,"phi":-0.0,"seen":0.95,"version":"hbmon-0.1.0","uptime":null,"items":{}},
            "report":{"time":1796124541.2,"age":1.0,"ip":"127.0.77.2","items":{
                "cpu_load":{"value":2.28,"level":"soso","message":"","error":null,"time":1796124540.4},
                "disk_used:/":{"value":25.3,"level":"fine","message":"","error":null,"time":1796124540.4},
                "proc:nginx":{"value":null,"level":"crit","message":"","error":"no such process","time":1796124540.4}}}},
        "srv.t":{"tag":"srv","address":"127.0.77.1","heartbeat":{"state":"late","rtt_ms":1.5,"phi":3.2,"seen":12.0,"lost":7,"loss":0.05,"answered_probes":2,"version":"hbmon-0.1.0","uptime":null,"items":{}},"report":null},
        "gone.t":{"tag":"gone","address":"127.0.77.3","heartbeat":null,"report":null}},
    "events":[]})
}

fn dump() -> Value {
    json!({"version":"hbmon-0.1.0","hostname":"srv.t","started":1796124534.17,
        "counters":{"commands":21,"refused":{"STOP refused":2}},
        "server":{"server":"srv.t","stats":{"reports":6,"events_received":2,"events_stored":2,"events_duplicate":0},
            "notify":{"alerts":[{"host":"cli.t","item":"cpu_load","level":1,"level_name":"soso","acked":true},
                                {"host":"cli.t","item":"proc:nginx","level":3,"level_name":"crit","acked":false}],
                      "outbox":{"pending":3,"failed":1}},
            "udp":{"udp":{"received":16,"accepted":15,"acked":15,"refused":1},"refused":{"bad mac":1},
                   "hosts":[{"name":"cli.t","last_seen":1796124541.25}]}}})
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

#[test]
fn hosts_get_up_state_rtt_phi_and_last_seen() {
    let t = render_at(&clients(), None, &levels(), 1796124550.0);
    let l = lines(&t);
    for want in [
        "hbmon_host_up{host=\"cli.t\"} 1",
        "hbmon_host_up{host=\"srv.t\"} 1",
        "hbmon_host_up{host=\"gone.t\"} 0",
        "hbmon_host_state{host=\"cli.t\",state=\"up\"} 1",
        "hbmon_host_state{host=\"cli.t\",state=\"down\"} 0",
        "hbmon_host_state{host=\"srv.t\",state=\"late\"} 1",
        "hbmon_host_state{host=\"gone.t\",state=\"new\"} 0",
        "hbmon_heartbeat_rtt_seconds{host=\"srv.t\"} 0.0015",
        "hbmon_heartbeat_phi{host=\"srv.t\"} 3.2",
        "hbmon_heartbeat_lost_total{host=\"srv.t\"} 7",
        "hbmon_heartbeat_loss_ratio{host=\"srv.t\"} 0.05",
        "hbmon_heartbeat_answered_probes_total{host=\"srv.t\"} 2",
        "hbmon_host_last_seen_timestamp_seconds{host=\"srv.t\"} 1796124538",
        "hbmon_host_info{host=\"cli.t\",tag=\"cli\",address=\"127.0.77.2\",version=\"hbmon-0.1.0\"} 1",
    ] {
        assert!(l.contains(&want), "missing {want}\n{t}");
    }
    // One series per state per host; none for a host with no heartbeat data.
    assert_eq!(l.iter().filter(|x| x.starts_with("hbmon_host_state{")).count(), 3 * STATES.len());
    assert!(!t.contains("hbmon_heartbeat_rtt_seconds{host=\"gone.t\"}"));
    assert!(!t.contains("hbmon_heartbeat_lost_total{host=\"cli.t\"}"), "no field, no series");
    assert!(t.contains("# TYPE hbmon_heartbeat_lost_total counter"), "{t}");
}

#[test]
fn items_get_value_and_level_index_and_counts_per_level() {
    let t = render_at(&clients(), None, &levels(), 0.0);
    let l = lines(&t);
    for want in [
        "hbmon_item_value{host=\"cli.t\",item=\"cpu_load\"} 2.28",
        "hbmon_item_level{host=\"cli.t\",item=\"cpu_load\"} 1",
        "hbmon_item_level{host=\"cli.t\",item=\"disk_used:/\"} 0",
        "hbmon_item_level{host=\"cli.t\",item=\"proc:nginx\"} 3",
        "hbmon_host_report_timestamp_seconds{host=\"cli.t\"} 1796124541.2",
        "hbmon_items{level=\"fine\"} 1",
        "hbmon_items{level=\"crit\"} 1",
        "hbmon_items{level=\"dead\"} 0",
    ] {
        assert!(l.contains(&want), "missing {want}\n{t}");
    }
    // A value of null gives no value series (its level still shows).
    assert!(!t.contains("hbmon_item_value{host=\"cli.t\",item=\"proc:nginx\"}"));
    // Without DUMP there are no server families.
    assert!(!t.contains("hbmon_alerts"));
}

#[test]
fn the_server_dump_gives_alerts_outbox_and_counters() {
    let t = render_at(&clients(), Some(&dump()), &levels(), 0.0);
    let l = lines(&t);
    for want in [
        "hbmon_alerts{level=\"soso\"} 1",
        "hbmon_alerts{level=\"crit\"} 1",
        "hbmon_alerts{level=\"fine\"} 0",
        "hbmon_alerts_acknowledged 1",
        "hbmon_notify_outbox{state=\"pending\"} 3",
        "hbmon_notify_outbox{state=\"failed\"} 1",
        "hbmon_udp_datagrams_received_total 16",
        "hbmon_udp_datagrams_refused_total 1",
        "hbmon_udp_datagrams_refused_by_reason_total{reason=\"bad mac\"} 1",
        "hbmon_reports_received_total 6",
        "hbmon_events_stored_total 2",
        "hbmon_commands_total 21",
        "hbmon_commands_refused_total{reason=\"STOP refused\"} 2",
        "# TYPE hbmon_commands_total counter",
        "# TYPE hbmon_alerts gauge",
        // DUMP's wall time beats now - age.
        "hbmon_host_last_seen_timestamp_seconds{host=\"cli.t\"} 1796124541.25",
    ] {
        assert!(l.contains(&want), "missing {want}\n{t}");
    }
}

#[test]
fn every_family_has_help_and_type_once_before_its_samples() {
    let t = render_at(&clients(), Some(&dump()), &levels(), 0.0);
    let mut seen = std::collections::HashSet::new();
    let mut current = String::new();
    for line in t.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap().to_string();
            assert!(seen.insert(name.clone()), "family {name} twice");
            current = name;
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(rest.starts_with(&format!("{current} ")), "{line}");
            let counter = rest.ends_with(" counter");
            assert_eq!(counter, current.ends_with("_total"), "{line}");
        } else {
            let name = line.split(['{', ' ']).next().unwrap();
            assert_eq!(name, current, "{line} outside its family");
        }
    }
}

#[test]
fn label_values_are_escaped() {
    assert_eq!(escape_label("a\\b\"c\nd<script>"), "a\\\\b\\\"c\\nd<script>");
    let c = json!({"cdmp":{"h\"1\n":{"tag":"t\\","heartbeat":{"state":"up"},
        "report":{"items":{"probe:x\"y":{"value":1,"level":"fine"}}}}}});
    let t = render_at(&c, None, &levels(), 0.0);
    assert!(t.contains("hbmon_host_up{host=\"h\\\"1\\n\"} 1"), "{t}");
    assert!(t.contains("tag=\"t\\\\\""), "{t}");
    assert!(t.contains("item=\"probe:x\\\"y\""), "{t}");
    // No raw newline inside a sample line: every line is a comment or a sample.
    assert!(t.lines().all(|l| l.starts_with('#') || l.starts_with("hbmon_")), "{t}");
}

#[test]
fn garbage_json_gives_the_empty_families_not_a_panic() {
    for bad in [json!(null), json!([1, 2]), json!({"cdmp": 3}), json!({"cdmp": {"h": 7}})] {
        let t = render_at(&bad, Some(&json!("x")), &levels(), 0.0);
        assert!(t.contains("# TYPE hbmon_host_up gauge"), "{t}");
    }
    let t = render_at(&json!({"cdmp": {"h": 7}}), None, &levels(), 0.0);
    assert!(t.contains("hbmon_host_up{host=\"h\"} 0"));
}

#[test]
fn sample_values_use_prometheus_float_syntax() {
    assert_eq!(num(f64::NAN), "NaN");
    assert_eq!(num(f64::INFINITY), "+Inf");
    assert_eq!(num(f64::NEG_INFINITY), "-Inf");
    assert_eq!(num(1e-9), "1e-9");
    assert_eq!(num(1e300), "1e300");
    assert_eq!(num(42.0), "42");
    assert_eq!(num(-3.0), "-3");
    assert_eq!(num(0.5), "0.5");
    assert_eq!(num(1e15), "1000000000000000.0");
    assert_eq!(num(1e16), "1e16");
}

#[test]
fn login_counters_render() {
    let s = ThrottleStats { failures: 4, successes: 2, refused: 1, sources: 1, locked: 1 };
    let t = render_logins(&s, 3, 5);
    assert!(t.contains("hbmon_dashboard_login_csrf_refused_total 5"));
    assert!(t.contains("hbmon_dashboard_login_failures_total 4"));
    assert!(t.contains("# TYPE hbmon_dashboard_logins_total counter"));
    assert!(t.contains("hbmon_dashboard_sessions 3"));
}
