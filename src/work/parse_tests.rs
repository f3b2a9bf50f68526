use super::*;

fn p(text: &str) -> Ast {
    parse(Path::new("/w"), text).unwrap()
}

#[test]
fn hosts_groups_roles_and_continuations() {
    let a = p("host a.example.org a 127.0.0.2\nhost b.example.org b\ngroup g a,b\n  c\nserver a\npmaker b\n");
    assert_eq!(a.hosts[0].address.as_deref(), Some("127.0.0.2"));
    assert_eq!(a.hosts[1].address, None);
    assert_eq!(a.groups[0].members, vec!["a", "b", "c"]);
    assert_eq!(a.groups[0].line, 3);
    assert_eq!(a.server, vec![(5, "a".to_string())]);
    assert_eq!(a.pmaker, vec![(6, "b".to_string())]);
}

#[test]
fn fit_syntax_scope_options_and_spaced_conditions() {
    let a = p("fit web:cpu_load soso >4 sick > 8 crit >=16 count 3 hyst 5%\nfit disk_used:/var soso >80\nfit check_load nagios\nfit a,b:nagios:x ok ==0\n");
    let f = &a.fits[0];
    assert_eq!((f.scope.clone(), f.item.as_str()), (vec!["web".to_string()], "cpu_load"));
    assert_eq!(f.rules.len(), 3);
    assert_eq!(f.rules[1], Rule { level: "sick".into(), op: Op::Gt, value: 8.0 });
    assert_eq!(f.rules[2].op, Op::Ge);
    assert_eq!((f.count, f.hyst), (3, 5.0));
    assert!(a.fits[1].scope.is_empty());
    assert_eq!(a.fits[1].item, "disk_used:/var");
    assert!(a.fits[2].nagios && a.fits[2].rules.is_empty());
    assert_eq!(a.fits[3].scope, vec!["a", "b"]);
    assert_eq!(a.fits[3].item, "nagios:x");
    assert_eq!(a.fits[3].rules[0].op, Op::Eq);
}

#[test]
fn conditions() {
    assert_eq!(condition(">2"), Ok((Op::Gt, 2.0)));
    assert_eq!(condition("<=0.5"), Ok((Op::Le, 0.5)));
    assert_eq!(condition("!=-1"), Ok((Op::Ne, -1.0)));
    assert_eq!(condition("<3"), Ok((Op::Lt, 3.0)));
    assert!(condition("=3").is_err());
    assert!(condition(">inf").is_err());
    assert!(condition(">").is_err());
}

#[test]
fn intervals_ports_detector_noise() {
    let a = p("ival_heartbeat 2s\nmissed 4\ngrace hm\nport 9000\ndetector phi 8\nflap 3 5m\nstorm 20 10s\n");
    assert_eq!(a.intervals["ival_heartbeat"], 2.0);
    assert_eq!(a.intervals["missed"], 4.0);
    assert_eq!(a.intervals["grace"], 3660.0);
    assert_eq!(a.ports["port"], (4, 9000));
    assert_eq!(a.phi_threshold, Some(8.0));
    assert_eq!(a.flap, Some((3, 300.0)));
    assert_eq!(a.storm, Some((20, 10.0)));
}

#[test]
fn users_channels_alerts() {
    let a = p("user alice mail alice@example.org pager syslog webhook http://h/x?t={TEXT}\nchannel pager command /bin/page timeout=5s min_level=crit\nchannel log syslog local0\nchannel log2 syslog min_level=sick\nalert web,db http:* crit alice,ops bob\n");
    assert_eq!(
        a.users[0].channels,
        vec![
            ChanRef::Inline { kind: "mail".into(), target: "alice@example.org".into() },
            ChanRef::Named("pager".into()),
            ChanRef::Inline { kind: "syslog".into(), target: String::new() },
            ChanRef::Inline { kind: "webhook".into(), target: "http://h/x?t={TEXT}".into() },
        ]
    );
    assert_eq!(a.channels[0].options["timeout"], "5s");
    assert_eq!(a.channels[1].target, "local0");
    assert_eq!(a.channels[2].target, "");
    assert_eq!(a.channels[2].options["min_level"], "sick");
    assert_eq!(a.alerts[0].hosts, vec!["web", "db"]);
    assert_eq!(a.alerts[0].who, vec!["alice", "ops", "bob"]);
}

#[test]
fn nagios_probe_timeout_title() {
    let a = p("nagios all check_load /usr/lib/check_load -w 5 -c 10\nprobe db raid --all\ntimeout probe:raid 1m\ntitle My  fleet\n");
    assert_eq!(a.nagios[0].argv, vec!["/usr/lib/check_load", "-w", "5", "-c", "10"]);
    assert_eq!(a.probes[0].argv, vec!["--all"]);
    assert_eq!(a.timeouts[0], (3, "probe:raid".to_string(), 60.0));
    assert_eq!(a.title.as_deref(), Some("My  fleet"));
}

#[test]
fn line_errors_are_all_collected() {
    let e = parse(Path::new("/w"), "host a\nnagios all x:y /bin/x\nfit cpu_load soso >2 hyst 200%\nchannel c webhook http://h/ method=PUT\n").unwrap_err().to_string();
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        vec![
            "/w:1: host: expected 'host FQDN TAG [ADDRESS]'",
            "/w:2: nagios: name 'x:y' may not contain ':' or '/'",
            "/w:3: fit cpu_load: hyst '200%' is not a percentage like 5%",
            "/w:4: channel c: method 'PUT' is not GET or POST",
        ]
    );
}

#[test]
fn urls() {
    assert!(check_url("x", "https://h.example.org/a?b={TEXT}").is_ok());
    assert!(check_url("x", "http://127.0.0.1:9093/api").is_ok());
    assert!(check_url("x", "http://[::1]:80/").is_ok());
    assert!(check_url("x", "http://h:port/").is_err());
    assert!(check_url("x", "https://").is_err());
    assert!(check_url("x", "mailto:x@y").is_err());
}

#[test]
fn detector_kinds_and_errors() {
    assert!(!p("\n").detector_fixed, "tuned is the default");
    assert!(!p("detector fixed\ndetector tuned\n").detector_fixed);
    let a = p("detector tuned\ndetector fixed\n");
    assert!(a.detector_fixed && a.phi_threshold.is_none());
    let a = p("detector fixed\ndetector phi 8\n");
    assert!(!a.detector_fixed && a.phi_threshold == Some(8.0));
    for bad in [
        "detector\n",
        "detector phi\n",
        "detector phi 0\n",
        "detector phi nan\n",
        "detector slow\n",
    ] {
        let e = parse(Path::new("/w"), bad).unwrap_err().to_string();
        assert!(e.starts_with("/w:1: detector:"), "{bad:?}: {e}");
    }
}

#[test]
fn upgrade_bin_is_an_absolute_path_and_errors_name_file_and_line() {
    let a = p("host a.example.org a\nupgrade_bin /srv/hbmon/hbmon-0.2.0\n");
    assert_eq!(a.upgrade_bin, Some((2, PathBuf::from("/srv/hbmon/hbmon-0.2.0"))));
    let e = parse(Path::new("/w"), "host a.example.org a\nupgrade_bin bin/hbmon\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/w:2") && e.contains("not an absolute path"), "{e}");
    let e = parse(Path::new("/w"), "upgrade_bin\n").unwrap_err().to_string();
    assert!(e.contains("/w:1") && e.contains("upgrade_bin"), "{e}");
    let e = parse(Path::new("/w"), "upgrade_bin /a /b\n").unwrap_err().to_string();
    assert!(e.contains("/w:1"), "{e}");
}
