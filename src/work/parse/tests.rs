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
    assert!(check_url("x", "http://[::1]/").is_ok());
    assert!(check_url("x", "http://a]:b/").is_err());
    assert!(check_url("x", "http://a]:80/").is_err());
    assert!(check_url("x", "http://[::1/").is_err());
    assert!(check_url("x", "http://[nothex]:80/").is_err());
    assert!(check_url("x", "http://[::1]80/").is_err());
    assert!(check_url("x", "http://[::1]:99999/").unwrap_err().contains("bad port"));
    assert!(check_url("x", "http://h:1:2/").unwrap_err().contains("bad port"));
    assert!(check_url("x", "http://:80/").is_err());
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

fn err(text: &str) -> String {
    parse(Path::new("/w"), text).unwrap_err().to_string()
}

#[test]
fn word_counts_ports_and_unknown_keys() {
    assert_eq!(err("host a b 127.0.0.2 x\n"), "/w:1: host: expected 'host FQDN TAG [ADDRESS]'");
    assert_eq!(err("server a b\n"), "/w:1: server: expected 'server HOST'");
    assert_eq!(err("fit_level a b c\n"), "/w:1: fit_level: expected 'fit_level NAME [LONG]'");
    assert!(err("fit_level count\n").contains("'count' is reserved"));
    let a = p("fit_level fine\nfit_level sick Sick\n");
    assert_eq!(a.levels[1], (2, "sick".to_string(), Some("Sick".to_string())));
    assert!(err("port 0\n").contains("'0' is not a port"));
    assert!(err("http_port 65536\n").contains("'65536' is not a port"));
    assert_eq!(p("hb_port 65535\n").ports["hb_port"], (1, 65535));
    assert_eq!(err("bogus 1\n"), "/w:1: unknown key 'bogus'");
    assert_eq!(err("title\n"), "/w:1: title: expected 'title TEXT'");
    let a = p("detector phi 300\n");
    assert_eq!(a.phi_threshold, Some(300.0));
    // phi is capped at 300: a higher threshold would never fire.
    assert!(err("detector phi 300.5\n").contains("'300.5' is not a threshold"));
    assert!(err("detector phi 1000\n").contains("'1000' is not a threshold"));
}

#[test]
fn groups_user_groups_urls_and_the_file() {
    let a = p("group g a,,b\nugroup ops alice,bob\ndeadman http://127.0.0.1:9/x\ndashboard https://h.example.org/\n");
    assert_eq!(a.file, Path::new("/w"));
    assert_eq!((a.groups.len(), a.groups[0].members.clone()), (1, vec!["a".into(), "b".into()]));
    assert_eq!((a.ugroups.len(), a.ugroups[0].name.as_str()), (1, "ops"));
    assert_eq!(a.deadman, Some((3, "http://127.0.0.1:9/x".to_string())));
    assert_eq!(a.dashboard, Some((4, "https://h.example.org/".to_string())));
}

#[test]
fn nagios_and_probe_lines_need_their_words() {
    assert_eq!(
        err("nagios all chk\n"),
        "/w:1: nagios: expected 'nagios HOSTS NAME COMMAND ARGS...'"
    );
    assert_eq!(err("probe db\n"), "/w:1: probe: expected 'probe HOSTS NAME [ARGS...]'");
    assert_eq!(p("probe db raid\n").probes[0].argv, Vec::<String>::new());
    assert!(err("probe db a/b\n").contains("name 'a/b' may not contain"));
}

#[test]
fn fit_items_by_family_and_fit_errors() {
    let a = p("fit nagios:x ok ==0\nfit probe:raid sick >0\nfit web,db: sick >1\n");
    assert!(a.fits[0].scope.is_empty() && a.fits[0].item == "nagios:x");
    assert!(a.fits[1].scope.is_empty() && a.fits[1].item == "probe:raid");
    assert_eq!(a.fits[0].written(), "nagios:x");
    let a = p("fit web,db:cpu_load sick >1\n");
    assert_eq!(a.fits[0].written(), "web,db:cpu_load");
    assert!(err("fit cpu_load\n").starts_with("/w:1: fit: expected 'fit [HOSTS:]ITEM"));
    assert_eq!(
        err("fit cpu_load count 3\n"),
        "/w:1: fit cpu_load: needs at least one 'LEVEL OPVALUE' or 'nagios'"
    );
    assert_eq!(err("fit cpu_load sick\n"), "/w:1: fit cpu_load: level 'sick' has no condition");
    assert_eq!(err("fit cpu_load sick >1 count\n"), "/w:1: fit cpu_load: 'count' needs a number");
    assert!(err("fit cpu_load sick >1 hyst\n").contains("'hyst' needs a percentage"));
    let a = p("fit cpu_load sick >1 hyst 5 count 2 nagios crit <= 0\n");
    let f = &a.fits[0];
    assert_eq!((f.hyst, f.count, f.nagios, f.rules.len()), (5.0, 2, true, 2));
    assert_eq!(f.rules[1], Rule { level: "crit".into(), op: Op::Le, value: 0.0 });
}

#[test]
fn parse_partial_says_whether_a_defining_line_failed() {
    let part = parse_partial(Path::new("/w"), "host a\nfit_level ok\n").unwrap();
    assert!(part.definition_failed && part.errors.len() == 1);
    assert_eq!(part.ast.levels.len(), 1, "the good lines are kept");
    let part = parse_partial(Path::new("/w"), "fit cpu_load\nhost a.x a\n").unwrap();
    assert!(!part.definition_failed && part.errors.len() == 1);
    let part = parse_partial(Path::new("/w"), "bogus 1\nchannel c fax x\n").unwrap();
    assert!(part.definition_failed && part.errors.len() == 2);
}

#[test]
fn channel_shapes_names_and_options() {
    let c = |t: &str| p(t).channels.remove(0);
    assert_eq!(c("channel s syslog\n").target, "");
    assert_eq!(
        err("channel x\n"),
        "/w:1: channel: expected 'channel NAME TYPE TARGET [key=value ...]'"
    );
    assert_eq!(
        err("channel x webhook\n"),
        "/w:1: channel: expected 'channel NAME TYPE TARGET [key=value ...]'"
    );
    assert!(err("channel a=b webhook http://h/\n").contains("that name is reserved"));
    assert!(err("channel password webhook http://h/\n").contains("that name is reserved"));
    let o = c("channel h webhook http://h/ method=POST body=form retries=3\n").options;
    assert_eq!(
        (o["method"].as_str(), o["body"].as_str(), o["retries"].as_str()),
        ("POST", "form", "3")
    );
    assert_eq!(c("channel h webhook http://h/ method=GET body=json\n").options["method"], "GET");
    assert!(
        err("channel h webhook http://h/ body=xml\n").contains("body 'xml' is not json or form")
    );
    assert!(err("channel h webhook http://h/ timeout=soon\n").contains("channel timeout"));
    assert!(err("channel h webhook http://h/ retries=0\n").contains("retries '0'"));
    assert!(err("channel h webhook http://h/ retries=101\n").contains("from 1 to 100"));
    assert_eq!(c("channel h webhook http://h/ retries=100\n").options["retries"], "100");
    assert!(err("channel h webhook h/x\n").contains("not an http:// or https:// URL"));
    assert!(err("channel am alertmanager h/x\n").contains("not an http:// or https:// URL"));
    assert_eq!(c("channel m mail ops@example.org\n").target, "ops@example.org");
    assert!(err("channel m mail ops\n").contains("'ops' is not a mail address"));
    // A target with '=' is still the target for every type but syslog.
    assert_eq!(c("channel k command /bin/page?a=1 min_level=crit\n").target, "/bin/page?a=1");
}
