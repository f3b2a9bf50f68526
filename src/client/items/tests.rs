use super::*;
use crate::work::model::{
    Endpoint, Intervals, Item, NagiosMap, Op, Ports, ProbeSpec, Roles, Rule, WORK_VERSION,
};

fn work(items: Vec<Item>) -> Work {
    Work {
        version: WORK_VERSION,
        host: "h1.example.org".into(),
        tag: "h1".into(),
        address: "127.0.0.1".into(),
        roles: Roles { client: true, server: false, pmaker: false },
        ports: Ports::default(),
        server: Endpoint {
            host: "s".into(),
            tag: "s".into(),
            address: "127.0.0.1".into(),
            ports: Ports::default(),
        },
        pmaker: None,
        intervals: Intervals::default(),
        levels: ["fine", "soso", "sick", "crit", "dead"]
            .iter()
            .map(|n| Level { name: n.to_string(), long: n.to_string() })
            .collect(),
        nagios_map: NagiosMap {
            ok: "fine".into(),
            warning: "sick".into(),
            critical: "crit".into(),
            unknown: "soso".into(),
        },
        items,
        server_part: None,
        pmaker_part: None,
    }
}

fn item(name: &str, fit: Option<Fitness>) -> Item {
    Item {
        name: name.into(),
        probe: ProbeSpec::Builtin,
        fit,
        timeout: 30.0,
        family: Default::default(),
    }
}

fn cpu_fit(count: u32) -> Fitness {
    Fitness {
        source: "cpu_load".into(),
        rules: vec![Rule { level: "sick".into(), op: Op::Gt, value: 4.0 }],
        count,
        hyst: 0.0,
        nagios: false,
    }
}

fn rd(item: &str, value: Option<f64>) -> Reading {
    Reading {
        item: item.into(),
        value,
        message: String::new(),
        error: value.is_none().then(|| "timed out after 30s".to_string()),
    }
}

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("boot-{n}")
    }
}

#[test]
fn first_best_level_is_quiet_changes_are_events() {
    let w = work(vec![item("cpu_load", Some(cpu_fit(1))), item("uptime", None)]);
    let mut it = Items::new(&w);
    let mut ids = counter();
    let ev =
        it.apply("h1", vec![rd("cpu_load", Some(0.5)), rd("uptime", Some(9.0))], 100.0, &mut ids);
    assert!(ev.is_empty());
    let ev = it.apply("h1", vec![rd("cpu_load", Some(5.0))], 160.0, &mut ids);
    assert_eq!(ev.len(), 1);
    let e = &ev[0];
    assert_eq!((e.id.as_str(), e.item.as_str(), e.host.as_str()), ("boot-1", "cpu_load", "h1"));
    assert_eq!((e.old_level.as_deref(), e.new_level.as_str()), (Some("fine"), "sick"));
    assert_eq!((e.old_value, e.new_value, e.time), (Some(0.5), Some(5.0), 160.0));
    // Same level again: no event.
    assert!(it.apply("h1", vec![rd("cpu_load", Some(6.0))], 220.0, &mut ids).is_empty());
}

#[test]
fn first_level_that_is_not_best_is_an_event() {
    let w = work(vec![item("cpu_load", Some(cpu_fit(1)))]);
    let mut it = Items::new(&w);
    let ev = it.apply("h1", vec![rd("cpu_load", Some(9.0))], 1.0, &mut counter());
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].old_level, None);
    assert_eq!(ev[0].new_level, "sick");
}

#[test]
fn count_three_needs_three_samples() {
    let w = work(vec![item("cpu_load", Some(cpu_fit(3)))]);
    let mut it = Items::new(&w);
    let mut ids = counter();
    let mut n = vec![];
    for t in 0..4 {
        n.push(it.apply("h1", vec![rd("cpu_load", Some(5.0))], t as f64, &mut ids).len());
    }
    assert_eq!(n, vec![0, 0, 1, 0]);
    assert_eq!(it.get("cpu_load").unwrap().level, Some(2));
}

#[test]
fn failing_probe_is_dead_with_its_error() {
    let w = work(vec![item("http:https://x/", None)]);
    let mut it = Items::new(&w);
    let ev = it.apply("h1", vec![rd("http:https://x/", None)], 10.0, &mut counter());
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].new_level, "dead");
    assert_eq!(ev[0].message, "timed out after 30s");
    let mut s = String::new();
    it.state_lines(&mut s, 13.0);
    assert_eq!(s, "-- item http:https://x/ - dead error \"timed out after 30s\" age 3s\n");
}

#[test]
fn family_items_are_tracked_without_events() {
    let w = work(vec![item("nagios:check_load", None)]);
    let mut it = Items::new(&w);
    let ev = it.apply(
        "h1",
        vec![rd("nagios:check_load", Some(0.0)), rd("nagios:check_load.load1", None)],
        5.0,
        &mut counter(),
    );
    assert!(ev.is_empty());
    let fam = it.get("nagios:check_load.load1").unwrap();
    assert_eq!((fam.origin, fam.level), (Origin::Family, Some(4)));
}

/// A fit for a perfdata or probe-line item (carried by its parent item in
/// the work) judges it and raises events; a reload keeps its state.
#[test]
fn family_items_with_a_fit_raise_events_12_12() {
    let mut parent = item("nagios:check_load", None);
    let mut fit = cpu_fit(1);
    fit.source = "check_load.load1".into();
    parent.family.insert("check_load.load1".into(), fit);
    let mut probe = item("probe:myprobe", None);
    let crit = Fitness {
        source: "myprobe.disk".into(),
        rules: vec![Rule { level: "crit".into(), op: Op::Gt, value: 80.0 }],
        count: 1,
        hyst: 0.0,
        nagios: false,
    };
    probe.family.insert("myprobe.disk".into(), crit);
    let w = work(vec![parent, probe]);
    let mut it = Items::new(&w);
    let mut ids = counter();
    let readings = vec![
        rd("nagios:check_load", Some(0.0)),
        rd("check_load.load1", Some(5.0)),
        rd("check_load.load5", Some(9.0)),
        rd("myprobe.disk:/var", Some(95.0)),
    ];
    let ev = it.apply("h1", readings, 5.0, &mut ids);
    let got: Vec<(&str, &str)> =
        ev.iter().map(|e| (e.item.as_str(), e.new_level.as_str())).collect();
    assert_eq!(got, vec![("check_load.load1", "sick"), ("myprobe.disk:/var", "crit")]);
    it.reload(&w);
    assert_eq!(it.get("check_load.load1").unwrap().level, Some(2), "kept across a reload");
    let ev = it.apply("h1", vec![rd("check_load.load1", Some(1.0))], 6.0, &mut ids);
    assert_eq!(ev.len(), 1);
    assert_eq!((ev[0].old_level.as_deref(), ev[0].new_level.as_str()), (Some("sick"), "fine"));
}

#[test]
fn state_lines_and_report() {
    let w = work(vec![item("cpu_load", Some(cpu_fit(1))), item("never", None)]);
    let mut it = Items::new(&w);
    let mut r = rd("cpu_load", Some(0.42));
    r.message = "load \"ok\"".into();
    it.apply("h1", vec![r], 100.0, &mut counter());
    let mut s = String::new();
    it.state_lines(&mut s, 112.0);
    assert_eq!(
        s,
        "-- item cpu_load 0.42 fine msg \"load \\\"ok\\\"\" age 12s\n-- item never - - age -\n"
    );
    let rep = it.report_json();
    assert_eq!(
        rep["cpu_load"],
        json!({"value": 0.42, "level": "fine", "message": "load \"ok\"", "error": null, "time": 100.0})
    );
    assert_eq!(rep["never"]["level"], Value::Null);
    assert_eq!(it.dump()["cpu_load"]["fit"], "cpu_load");
}

#[test]
fn set_items_from_the_heartbeat_path() {
    let w = work(vec![]);
    let mut it = Items::new(&w);
    let mut ids = counter();
    assert!(it.set("h1", "server", Some(1.0), "fine", "", 1.0, &mut ids).is_none());
    let ev = it.set("h1", "server", None, "dead", "no ACK for 50s", 60.0, &mut ids).unwrap();
    assert_eq!((ev.old_level.as_deref(), ev.new_level.as_str()), (Some("fine"), "dead"));
    assert_eq!(ev.message, "no ACK for 50s");
    // Unknown level name: the worst.
    let ev = it.set("h1", "rtt", Some(3.0), "bogus", "", 61.0, &mut ids).unwrap();
    assert_eq!(ev.new_level, "dead");
}

#[test]
fn reload_keeps_state_of_remaining_items() {
    let w =
        work(vec![item("a", Some(cpu_fit(3))), item("b", Some(cpu_fit(3))), item("gone", None)]);
    let mut it = Items::new(&w);
    let mut ids = counter();
    let rs = || vec![rd("a", Some(5.0)), rd("b", Some(5.0)), rd("gone", Some(1.0))];
    it.apply("h1", rs(), 1.0, &mut ids);
    it.apply("h1", rs(), 2.0, &mut ids);
    it.set("h1", "server", Some(1.0), "fine", "", 2.0, &mut ids);
    it.apply("h1", vec![rd("a.perf", Some(1.0)), rd("zz.perf", Some(1.0))], 2.0, &mut ids);
    // b's fitness changes (count 3 -> 4): its pending count restarts.
    let w2 =
        work(vec![item("a", Some(cpu_fit(3))), item("b", Some(cpu_fit(4))), item("new", None)]);
    it.reload(&w2);
    assert!(it.get("gone").is_none() && it.get("zz.perf").is_none());
    assert!(it.get("new").is_some() && it.get("server").is_some() && it.get("a.perf").is_some());
    assert_eq!(it.get("a").unwrap().value, Some(5.0));
    assert_eq!(it.get("b").unwrap().judge.pending(), None);
    let ev = it.apply("h1", vec![rd("a", Some(5.0)), rd("b", Some(5.0))], 3.0, &mut ids);
    let names: Vec<&str> = ev.iter().map(|e| e.item.as_str()).collect();
    assert_eq!(names, vec!["a"]);
}

#[test]
fn values_format_compactly() {
    assert_eq!(crate::units::fmt_plain(0.42), "0.42");
    assert_eq!(crate::units::fmt_plain(3.0), "3");
    assert_eq!(crate::units::fmt_plain(1234.5678), "1234.57");
    assert_eq!(crate::units::fmt_plain(-0.000123456789), "-0.000123457");
    assert_eq!(sample_values(&[rd("a", Some(1.0)), rd("b", None)]), vec![("a", 1.0)]);
}

#[test]
fn a_non_finite_value_is_a_failed_probe() {
    let w = work(vec![item("cpu_load", Some(cpu_fit(1)))]);
    let mut it = Items::new(&w);
    let ev = it.apply("h1", vec![rd("cpu_load", Some(f64::NAN))], 1.0, &mut counter());
    assert_eq!(ev[0].new_level, "dead");
    assert_eq!(it.get("cpu_load").unwrap().error.as_deref(), Some("value is not a finite number"));
}
