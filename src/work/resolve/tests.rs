use super::*;
use crate::work::model::{Op, Rule};
use crate::work::parse::parse;

fn works(text: &str) -> Vec<Work> {
    resolve_with(&parse(Path::new("/w"), text).unwrap(), &|_| true).unwrap()
}

fn item<'a>(w: &'a Work, name: &str) -> &'a Item {
    w.items.iter().find(|i| i.name == name).unwrap()
}

fn source(w: &Work, name: &str) -> Option<String> {
    item(w, name).fit.as_ref().map(|f| f.source.clone())
}

const FLEET: &str = "host s.example.org s 127.0.0.1
host w1.example.org w1 127.0.0.2
host w2.example.org w2
host d.example.org d
group web w1 w2
group front web
server s
pmaker d
get all cpu_load disk_used:/ disk_used:/var
get front http:http://127.0.0.9/
nagios web check_x /bin/check_x -w 1
probe d raid --fast
fit cpu_load soso >1
fit web:cpu_load soso >2
fit front:cpu_load soso >3
fit w1:cpu_load soso >4
fit disk_used soso >80
fit disk_used:/var soso >90
fit s:disk_used soso >70
timeout disk_used 3s
timeout http:http://127.0.0.9/ 4s
";

#[test]
fn most_specific_fit_wins() {
    let ws = works(FLEET);
    let (s, w1, w2, d) = (&ws[0], &ws[1], &ws[2], &ws[3]);
    assert_eq!(source(w1, "cpu_load").as_deref(), Some("w1:cpu_load"));
    // w2 is in web and (through web) in front: the later group line wins.
    assert_eq!(source(w2, "cpu_load").as_deref(), Some("front:cpu_load"));
    assert_eq!(source(d, "cpu_load").as_deref(), Some("cpu_load"));
    assert_eq!(
        item(w1, "cpu_load").fit.as_ref().unwrap().rules,
        vec![Rule { level: "soso".into(), op: Op::Gt, value: 4.0 }]
    );
    // The exact item beats the generic one, scoped or not.
    assert_eq!(source(s, "disk_used:/var").as_deref(), Some("disk_used:/var"));
    assert_eq!(source(s, "disk_used:/").as_deref(), Some("s:disk_used"));
    assert_eq!(source(d, "disk_used:/").as_deref(), Some("disk_used"));
    assert_eq!(source(w1, "http:http://127.0.0.9/"), None);
}

#[test]
fn probes_timeouts_and_nagios_default_fit() {
    let ws = works(FLEET);
    let (w1, d) = (&ws[1], &ws[3]);
    let n = item(w1, "nagios:check_x");
    assert_eq!(
        n.probe,
        ProbeSpec::Nagios { argv: vec!["/bin/check_x".into(), "-w".into(), "1".into()] }
    );
    assert!(n.fit.as_ref().unwrap().nagios);
    assert_eq!(n.timeout, EXTERNAL_TIMEOUT);
    let r = item(d, "probe:raid");
    assert_eq!(
        r.probe,
        ProbeSpec::External { program: "raid".into(), args: vec!["--fast".into()] }
    );
    assert_eq!(item(d, "disk_used:/").timeout, 3.0);
    assert_eq!(item(w1, "http:http://127.0.0.9/").timeout, 4.0);
    assert_eq!(item(d, "cpu_load").timeout, BUILTIN_TIMEOUT);
    let names: Vec<&str> = w1.items.iter().map(|i| i.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
}

#[test]
fn bare_nagios_name_and_prefixed_fit_both_match() {
    let t = "host a.example.org a\nserver a\nnagios all x /bin/x\nnagios all y /bin/y\nfit x sick >0\nfit nagios:y crit >0\n";
    let w = &works(t)[0];
    assert_eq!(source(w, "nagios:x").as_deref(), Some("x"));
    assert_eq!(source(w, "nagios:y").as_deref(), Some("nagios:y"));
}

#[test]
fn roles_endpoints_intervals() {
    let ws = works(&format!("{FLEET}ival_heartbeat 2s\nport 9000\nmissed 5\ndetector phi 9\n"));
    let (s, w2, d) = (&ws[0], &ws[2], &ws[3]);
    assert!(s.roles.server && s.roles.client && !s.roles.pmaker);
    assert!(d.roles.pmaker && !d.roles.server);
    assert_eq!(w2.address, "w2.example.org");
    assert_eq!(w2.server.address, "127.0.0.1");
    assert_eq!(w2.server.ports.port, 9000);
    assert_eq!(w2.pmaker.as_ref().unwrap().host, "d.example.org");
    assert_eq!(w2.intervals.heartbeat, 2.0);
    assert_eq!(w2.intervals.server_dead, 10.0);
    assert_eq!(w2.intervals.missed, 5);
    assert_eq!(w2.intervals.phi_threshold, Some(9.0));
    assert!(!w2.intervals.detector_tuned, "phi T opts out of the tuned default");
    assert_eq!(w2.levels.len(), 5);
    assert_eq!(w2.nagios_map.warning, "sick");
    assert!(w2.server_part.is_none() && w2.pmaker_part.is_none());
    assert_eq!(d.pmaker_part.as_ref().unwrap().title, "hbmon");
}

#[test]
fn server_part_expands_groups_users_and_alerts() {
    let t = format!("{FLEET}parent w1 s\nuser al syslog pg\nuser bo webhook https://h.example.org/x\nchannel pg command /bin/pg\nugroup ops al bo\nalert front http:* crit ops\nalert d * sick bo\nflap 2 1m\n");
    let ws = works(&t);
    let sp = ws[0].server_part.as_ref().unwrap();
    let hosts: Vec<&str> = sp.hosts.iter().map(|h| h.host.as_str()).collect();
    assert_eq!(hosts, vec!["d.example.org", "s.example.org", "w1.example.org", "w2.example.org"]);
    assert_eq!(sp.hosts[2].groups, vec!["all", "front", "web"]);
    assert_eq!(sp.parents["w1.example.org"], "s.example.org");
    assert_eq!(sp.users[0].channels, vec!["al.syslog", "pg"]);
    let chans: Vec<&str> = sp.channels.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(chans, vec!["al.syslog", "bo.webhook", "pg"]);
    assert_eq!(sp.alerts[0].hosts, vec!["w1.example.org", "w2.example.org"]);
    assert_eq!(sp.alerts[0].users, vec!["al", "bo"]);
    assert_eq!(sp.alerts[1].hosts, vec!["d.example.org"]);
    assert_eq!(sp.noise.flap_changes, 2);
    assert_eq!(sp.noise.storm_events, 10);
}

#[test]
fn for_host_by_fqdn_or_tag() {
    let ws = works(FLEET);
    assert_eq!(for_host(&ws, "w1.example.org").unwrap().tag, "w1");
    assert_eq!(for_host(&ws, "d").unwrap().host, "d.example.org");
    assert!(for_host(&ws, "nope").is_none());
}

#[test]
fn same_text_same_json() {
    let a = serde_json::to_string(&works(FLEET)).unwrap();
    let b = serde_json::to_string(&works(FLEET)).unwrap();
    assert_eq!(a, b);
}

#[test]
fn solo_work_is_the_embedded_file() {
    let w = crate::work::solo("box.example.org").unwrap();
    assert_eq!(w.host, "box.example.org");
    assert!(w.roles.client && w.roles.server && w.roles.pmaker);
    let names: Vec<&str> = w.items.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "cpu_load",
            "cpu_pct",
            "disk_used:/",
            "inode_used:/",
            "mem_used",
            "procs",
            "swap_used",
            "uptime"
        ]
    );
    assert!(w.items.iter().filter(|i| i.name != "uptime").all(|i| i.fit.is_some()));
    assert_eq!(w.pmaker_part.as_ref().unwrap().title, "hbmon on box.example.org");
    assert_eq!(w.server.address, "127.0.0.1");
    assert!(crate::work::solo("bad name").is_err());
}

/// The worked example of work/README.md, checked.
#[test]
fn readme_worked_example() {
    let t = "host mon.example.org  mon  127.0.0.1
host www1.example.org www1 127.0.0.11
host www2.example.org www2 127.0.0.12
group web www1 www2
server mon
pmaker mon
get all cpu_load disk_used:/ disk_used:/var
get web http:http://127.0.0.11:8080/health
fit cpu_load        soso >2 sick >4 crit >8
fit web:cpu_load    soso >4 sick >8 count 3
fit www2:cpu_load   soso >8
fit disk_used       soso >80 sick >90 hyst 2%
fit disk_used:/var  soso >90 sick >95
user alice syslog webhook https://hooks.example.org/x?text={TEXT}
alert all * sick alice
";
    let ws = works(t);
    let (mon, w1, w2) = (&ws[0], &ws[1], &ws[2]);
    assert_eq!(source(w1, "cpu_load").as_deref(), Some("web:cpu_load"));
    assert_eq!(source(w1, "disk_used:/").as_deref(), Some("disk_used"));
    assert_eq!(source(w1, "disk_used:/var").as_deref(), Some("disk_used:/var"));
    assert_eq!(source(w1, "http:http://127.0.0.11:8080/health"), None);
    assert_eq!(source(w2, "cpu_load").as_deref(), Some("www2:cpu_load"));
    assert_eq!(source(mon, "cpu_load").as_deref(), Some("cpu_load"));
    let sp = mon.server_part.as_ref().unwrap();
    assert!(w1.server_part.is_none());
    assert_eq!(sp.users[0].channels, vec!["alice.syslog", "alice.webhook"]);
    assert_eq!(sp.alerts[0].hosts.len(), 3);
    let bad = t.replace("get web http", "get wbe http");
    let e = parse(Path::new("work"), &bad).and_then(|a| resolve_with(&a, &|_| true)).unwrap_err();
    assert_eq!(e.to_string(), "work:8: get: unknown host or group 'wbe'");
}

#[test]
fn dashboard_logins_reach_the_pagemakers_part_only() {
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$LzeTFRdvWOPdAUP9SSnOvQ$dZ3h0jCTxJhwwZY+flFSEJNS7YelrHP7Fbl/VKmhkjU";
    let text = format!(
        "{FLEET}user root password {HASH} admin\nuser wes syslog password {HASH} groups=web owns=d,s.example.org,d\nuser nolog syslog\nlogin everywhere\ndashboard https://mon.example.org/\n"
    );
    let ws = works(&text);
    let d = for_host(&ws, "d").unwrap();
    let p = d.pmaker_part.unwrap();
    assert!(p.login_required);
    assert!(p.secure_cookies, "an https dashboard URL means Secure cookies");
    let names: Vec<&str> = p.users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["root", "wes"], "only users with a password, sorted");
    let wes = &p.users[1];
    assert_eq!(wes.hash, HASH);
    assert!(!wes.admin && p.users[0].admin);
    assert_eq!(wes.groups, ["web"]);
    assert_eq!(wes.hosts, ["d.example.org", "s.example.org"], "owned hosts by FQDN, once");
    // The server's notification users still include everyone, hash-free.
    let s = for_host(&ws, "s").unwrap().server_part.unwrap();
    assert_eq!(s.users.len(), 3);
    assert!(!serde_json::to_string(&s).unwrap().contains("argon2id"));
    assert!(for_host(&ws, "w1").unwrap().pmaker_part.is_none());

    let plain = works(&format!("{FLEET}dashboard https://x.example.org/\ncookies plain\n"));
    let p = for_host(&plain, "d").unwrap().pmaker_part.unwrap();
    assert!(!p.secure_cookies && !p.login_required && p.users.is_empty());
    let sec = works(&format!("{FLEET}cookies secure\n"));
    assert!(for_host(&sec, "d").unwrap().pmaker_part.unwrap().secure_cookies);
}

/// A fit for `NAME.label` rides on the `nagios:NAME` / `probe:NAME` item of
/// each host it applies to, chosen like any fit (host beats group beats all).
#[test]
fn family_fits_ride_on_their_item_12_12() {
    let w = works(&format!(
        "{FLEET}fit check_x.load1 sick >4\nfit w1:check_x.load1 sick >8\nfit raid.temp crit >80\nfit web:raid.temp crit >1\n"
    ));
    let by = |h: &str| w.iter().find(|x| x.tag == h).unwrap();
    let fam = |h: &str, it: &str| item(by(h), it).family.clone();
    let w1 = fam("w1", "nagios:check_x");
    assert_eq!(w1["check_x.load1"].source, "w1:check_x.load1");
    assert_eq!(w1["check_x.load1"].rules[0].value, 8.0);
    assert_eq!(fam("w2", "nagios:check_x")["check_x.load1"].source, "check_x.load1");
    // d is not in web: the unscoped raid.temp fit; no check_x item there at all.
    let d = fam("d", "probe:raid");
    assert_eq!(d["raid.temp"].source, "raid.temp");
    assert_eq!(d.len(), 1, "{d:?}");
    assert!(fam("w1", "cpu_load").is_empty());
}

/// Issue 15: the tuned detector is the default; `detector fixed` and
/// `detector phi T` select the others; a work saved before the field meant
/// the fixed rule.
#[test]
fn the_tuned_detector_is_the_default() {
    use crate::server::detector::Kind;
    let kind = |extra: &str| Kind::from_intervals(&works(&format!("{FLEET}{extra}"))[0].intervals);
    assert_eq!(kind(""), Kind::Tuned);
    assert_eq!(kind("detector tuned\n"), Kind::Tuned);
    assert_eq!(kind("detector fixed\n"), Kind::Fixed);
    assert_eq!(kind("detector phi 8\n"), Kind::Phi(8.0));
    assert_eq!(Kind::from_intervals(&Default::default()), Kind::Tuned);
    let json = serde_json::to_string(&works(FLEET)[0]).unwrap();
    let old = json.replace(",\"detector_tuned\":true", "");
    assert_ne!(old, json);
    let back: Work = serde_json::from_str(&old).unwrap();
    assert_eq!(Kind::from_intervals(&back.intervals), Kind::Fixed);
}

#[test]
fn upgrade_bin_and_ival_upgrade_check_resolve_and_older_works_still_load() {
    let ws = works(&format!("{FLEET}upgrade_bin /srv/hbmon-0.2.0\nival_upgrade_check 5s\n"));
    let sp = ws[0].server_part.as_ref().unwrap();
    assert_eq!(sp.upgrade_bin.as_deref(), Some(std::path::Path::new("/srv/hbmon-0.2.0")));
    assert_eq!(ws[2].intervals.upgrade_check, 5.0);
    // A work saved before these keys: no field at all, the defaults apply.
    let plain = works(FLEET);
    let json = serde_json::to_string(&plain[0]).unwrap();
    assert!(!json.contains("upgrade_bin") && !json.contains("upgrade_check"), "{json}");
    let back: Work = serde_json::from_str(&json).unwrap();
    assert_eq!(back.server_part.unwrap().upgrade_bin, None);
    assert_eq!(back.intervals.upgrade_check, crate::work::model::UPGRADE_CHECK);
    assert!(crate::ranges::check_ival("ival_upgrade_check", 0.5).is_err());
    assert!(crate::ranges::check_ival("ival_upgrade_check", 7200.0).is_err());
}
