//! One test per validation error, each asserting the exact `file:line: problem`.

use crate::work::parse::parse;
use crate::work::resolve::{resolve_text, resolve_with};
use std::path::Path;

const BASE: &str = "host a.example.org a 127.0.0.2\nhost b.example.org b 127.0.0.3\nserver a\n";

/// Errors of BASE + `extra` (extra starts at line 4), all joined by newlines.
fn errs_with(extra: &str, sendmail: bool) -> String {
    let text = format!("{BASE}{extra}");
    match resolve_text(Path::new("/w"), &text, &|_| sendmail) {
        Ok(_) => String::new(),
        Err(e) => e.to_string(),
    }
}

fn errs(extra: &str) -> String {
    errs_with(extra, true)
}

#[track_caller]
fn has(extra: &str, want: &str) {
    let got = errs(extra);
    assert!(got.lines().any(|l| l == want), "want {want:?}\ngot:\n{got}");
}

#[test]
fn base_is_valid() {
    assert_eq!(errs("get all cpu_load\n"), "");
}

#[test]
fn unknown_host_in_get() {
    has("get c cpu_load\n", "/w:4: get: unknown host or group 'c'");
}

#[test]
fn unknown_group_member() {
    has("group web a zz\n", "/w:4: group 'web': unknown host or group 'zz'");
}

#[test]
fn unknown_level_in_fit() {
    has("get all cpu_load\nfit cpu_load bad >2\n", "/w:5: fit cpu_load: undeclared level 'bad'");
}

#[test]
fn declared_levels_replace_the_defaults() {
    has(
        "fit_level ok\nfit_level bad\nget all cpu_load\nfit cpu_load sick >2\n",
        "/w:7: fit cpu_load: undeclared level 'sick'",
    );
}

#[test]
fn unknown_level_in_alert() {
    has("user u syslog\nalert all * awful u\n", "/w:5: alert: unknown level 'awful'");
}

#[test]
fn unknown_user_in_alert() {
    has("user u syslog\nalert all * sick nobody\n", "/w:5: alert: unknown user or ugroup 'nobody'");
}

#[test]
fn unknown_user_in_ugroup() {
    has("user u syslog\nugroup ops u v\n", "/w:5: ugroup ops: unknown user 'v'");
}

#[test]
fn unknown_channel_of_user() {
    has("user u pager\n", "/w:4: user u: unknown channel 'pager'");
}

#[test]
fn unknown_channel_type() {
    has(
        "channel x sms 123\n",
        "/w:4: channel x: unknown type 'sms' (expected mail webhook command syslog alertmanager)",
    );
}

#[test]
fn unknown_channel_option() {
    has("channel x webhook http://h/ color=red\n", "/w:4: channel x: unknown option 'color' (expected min_level method body timeout retries fallback sendmail from ends_after smtp_server port tls user password tls_ca)");
}

#[test]
fn channel_retries_is_a_bounded_count_12_5() {
    has(
        "channel x webhook http://h/ retries=0\n",
        "/w:4: channel x: retries '0' is not a number of tries from 1 to 100",
    );
    has(
        "channel x webhook http://h/ retries=lots\n",
        "/w:4: channel x: retries 'lots' is not a number of tries from 1 to 100",
    );
    assert_eq!(errs("channel x webhook http://h/ retries=3\nuser u x\n"), "");
}

#[test]
fn channel_min_level_and_fallback_must_exist() {
    let e = errs("channel x webhook http://h/ min_level=awful fallback=nope\n");
    assert!(e.contains("/w:4: channel x: min_level: unknown level 'awful'"), "{e}");
    assert!(e.contains("/w:4: channel x: fallback: unknown channel 'nope'"), "{e}");
}

#[test]
fn tag_defined_twice() {
    has("host c.example.org a\n", "/w:4: host: 'a' already defined at line 1");
}

#[test]
fn fqdn_defined_twice() {
    has("host a.example.org c\n", "/w:4: host: 'a.example.org' already defined at line 1");
}

#[test]
fn group_defined_twice_or_named_like_a_host() {
    has("group g a\ngroup g b\n", "/w:5: group 'g' already defined at line 4");
    has("group b a\n", "/w:4: group 'b': a host has that name");
    has("group all a\n", "/w:4: group: 'all' is built in and cannot be redefined");
}

#[test]
fn group_cycle() {
    let e = errs("group g1 a g2\ngroup g2 b g3\ngroup g3 g1\n");
    assert!(e.contains("/w:6: group 'g3': cycle g1 -> g2 -> g3 -> g1"), "{e}");
}

#[test]
fn parent_cycle() {
    has("parent a b\nparent b a\n", "/w:5: parent: cycle ('a' is already below 'b')");
}

#[test]
fn parent_unknown_host_and_two_parents() {
    has("parent a zz\n", "/w:4: parent: unknown host 'zz'");
    has(
        "host c.example.org c\nparent a b\nparent a c\n",
        "/w:6: parent: 'a' already has a parent (line 5)",
    );
}

#[test]
fn no_server() {
    let e = parse(Path::new("/w"), "host a.example.org a\n").unwrap();
    let e = resolve_with(&e, &|_| true).unwrap_err().to_string();
    assert_eq!(e, "/w:0: no 'server' line: one host must be the server");
}

#[test]
fn server_unknown_or_twice() {
    has("server b\n", "/w:4: server given twice (first at line 3)");
    has("pmaker zz\n", "/w:4: pmaker: unknown host 'zz'");
}

#[test]
fn condition_that_does_not_parse() {
    has(
        "get all cpu_load\nfit cpu_load soso >x\n",
        "/w:5: fit cpu_load: condition '>x': 'x' is not a number",
    );
    has(
        "get all cpu_load\nfit cpu_load soso ~2\n",
        "/w:5: fit cpu_load: condition '~2': expected > >= < <= == or !=",
    );
    has(
        "get all cpu_load\nfit cpu_load soso\n",
        "/w:5: fit cpu_load: level 'soso' has no condition",
    );
    has(
        "get all cpu_load\nfit cpu_load count 2\n",
        "/w:5: fit cpu_load: needs at least one 'LEVEL OPVALUE' or 'nagios'",
    );
}

#[test]
fn item_no_probe_provides() {
    has("get all cpu_lod\n", "/w:4: no probe provides item 'cpu_lod'");
    has("get all disk_used\n", "/w:4: item 'disk_used' needs an argument (disk_used:...)");
    has("get all tcp:h\n", "/w:4: item 'tcp:h': expected tcp:HOST:PORT");
    has(
        "get all http:ftp://x/\n",
        "/w:4: item 'http:ftp://x/': 'ftp://x/' is not an http:// or https:// URL",
    );
    has(
        "get all nagios:check_x\n",
        "/w:4: item 'nagios:check_x': no 'nagios' line defines 'check_x'",
    );
    has("get all probe:raid\n", "/w:4: item 'probe:raid': no 'probe' line defines 'raid'");
}

#[test]
fn fit_for_an_item_nobody_gets() {
    has("get all cpu_load\nfit mem_used soso >1\n", "/w:5: fit mem_used: no host gets this item");
}

#[test]
fn fit_with_unknown_scope() {
    has(
        "get all cpu_load\nfit web:cpu_load soso >1\n",
        "/w:5: fit web:cpu_load: unknown host or group 'web'",
    );
}

#[test]
fn timeout_for_an_item_nobody_gets() {
    has("timeout http 5s\n", "/w:4: timeout: no host gets item 'http'");
}

#[test]
fn channel_url_that_does_not_parse() {
    has(
        "channel h webhook hooks.example.org/x\n",
        "/w:4: channel h: 'hooks.example.org/x' is not an http:// or https:// URL",
    );
    has("channel h alertmanager http:///api\n", "/w:4: channel h: 'http:///api' has no valid host");
    has("user u webhook ftp://x\n", "/w:4: user u: 'ftp://x' is not an http:// or https:// URL");
    has("deadman nowhere\n", "/w:4: deadman: 'nowhere' is not an http:// or https:// URL");
}

#[test]
fn mail_channel_in_use_needs_sendmail() {
    let e = errs_with("user u mail u@example.org\n", false);
    assert_eq!(e, "/w:4: channel u.mail: sendmail '/usr/sbin/sendmail' does not exist (install an MTA or set sendmail=PATH on a 'channel' line)");
    let e = errs_with("channel m mail u@example.org sendmail=/opt/sm\nuser u m\n", false);
    assert!(e.starts_with("/w:4: channel m: sendmail '/opt/sm' does not exist"), "{e}");
    // Declared but used by nobody: no MTA needed.
    assert_eq!(errs_with("channel m mail u@example.org\n", false), "");
    assert_eq!(errs_with("user u mail u@example.org\n", true), "");
}

#[test]
fn nagios_map_unknown_level() {
    has("nagios_map fine sick crit nope\n", "/w:4: nagios_map: unknown level 'nope'");
}

#[test]
fn defined_twice() {
    has("fit_level a\nfit_level a\n", "/w:5: fit_level 'a' already declared at line 4");
    has("user u syslog\nuser u syslog\n", "/w:5: user 'u' already defined at line 4");
    has("channel c syslog\nchannel c syslog\n", "/w:5: channel 'c' already defined at line 4");
    has("nagios all x /bin/x\nnagios all x /bin/y\n", "/w:5: nagios 'x' already defined at line 4");
    has("user u syslog\nugroup u u\n", "/w:5: ugroup 'u': a user has that name");
}

#[test]
fn unknown_key_and_bad_values() {
    has("colour blue\n", "/w:4: unknown key 'colour'");
    has("fit_level count\n", "/w:4: fit_level: 'count' is reserved (a fit option)");
    has("port 70000\n", "/w:4: port: '70000' is not a port (1 to 65535)");
    has("port 0\n", "/w:4: port: '0' is not a port (1 to 65535)");
    has("ival_heartbeat 5x\n", "/w:4: ival_heartbeat: unknown unit 'x' in interval '5x'");
    has("missed -1\n", "/w:4: missed: '-1' is not a count (a whole number 1 to 100)");
    // Issue 13 item 8: every number has a documented range.
    has("missed 0\n", "/w:4: missed: 0 is out of range (1 to 100)");
    has("ival_heartbeat 0\n", "/w:4: ival_heartbeat: 0s is out of range (0.1s to 1h)");
    has(
        "ival_keep_events 999999999999999999w\n",
        "/w:4: ival_keep_events: interval '999999999999999999w' is too long (at most 10 years)",
    );
    has("hbd_senders 1000001\n", "/w:4: hbd_senders: 1000001 is out of range (0 to 100000)");
    has("detector phi inf\n", "/w:4: detector: 'inf' is not a threshold");
    has("fit cpu_load soso >nan\n", "/w:4: fit cpu_load: condition '>nan': 'nan' is not a number");
    has(
        "fit cpu_load soso >2 count 0\n",
        "/w:4: fit cpu_load: count: 0 is out of range (1 to 1000)",
    );
    has("host x\n", "/w:4: host: expected 'host FQDN TAG [ADDRESS]'");
}

#[test]
fn every_error_is_reported_in_line_order() {
    let e = errs("get c cpu_load\nfit_level\nuser u nope\nparent a zz\n");
    let lines: Vec<&str> = e.lines().collect();
    // Line 5, a defining line, does not parse: names are not cross-checked.
    assert_eq!(lines, vec!["/w:5: fit_level: expected 'fit_level NAME [LONG]'"]);
    // A line error elsewhere is reported together with the name errors.
    let e = errs("get c cpu_load\nfit cpu_load soso >x\nalert all * sick nobody\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        vec![
            "/w:4: get: unknown host or group 'c'",
            "/w:5: fit cpu_load: condition '>x': 'x' is not a number",
            "/w:6: alert: unknown user or ugroup 'nobody'",
        ]
    );
    let e = errs("get c cpu_load\nuser u nope\nparent a zz\n");
    let lines: Vec<&str> = e.lines().collect();
    assert_eq!(
        lines,
        vec![
            "/w:4: get: unknown host or group 'c'",
            "/w:5: user u: unknown channel 'nope'",
            "/w:6: parent: unknown host 'zz'",
        ]
    );
}

/// A real argon2id hash (of "pw"), as `hbmon passwd` prints it.
const HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$LzeTFRdvWOPdAUP9SSnOvQ$dZ3h0jCTxJhwwZY+flFSEJNS7YelrHP7Fbl/VKmhkjU";

#[test]
fn dashboard_logins_name_real_groups_and_hosts() {
    let ok = format!("group web b\nuser u password {HASH} groups=web owns=a\n");
    assert_eq!(errs(&ok), "");
    has(
        &format!("group web b\nuser u password {HASH} groups=web,nope\n"),
        "/w:5: user u: groups=: unknown group 'nope'",
    );
    has(
        &format!("user u password {HASH} groups=b\n"),
        "/w:4: user u: 'b' is a host, not a group (use owns=b)",
    );
    has(&format!("user u password {HASH} owns=zz\n"), "/w:4: user u: owns=: unknown host 'zz'");
    has(
        &format!("group web b\nuser u password {HASH} owns=web\n"),
        "/w:5: user u: 'web' is a group, not a host (use groups=web)",
    );
    has(
        &format!("user u password {HASH} owns=all\n"),
        "/w:4: user u: 'all' is a group, not a host (use groups=all)",
    );
}

#[test]
fn a_bad_hash_is_an_error_on_its_line() {
    for bad in ["hunter2", "$2y$10$abcdefghijklmnopqrstuv"] {
        let got = errs(&format!("user u password {bad} admin\n"));
        assert!(got.starts_with("/w:4: user u: not a password hash ("), "{got}");
    }
    let md5ish = "user u password $argon2i$v=19$m=19456,t=2,p=1$LzeTFRdvWOPdAUP9SSnOvQ$dZ3h0jCTxJhwwZY+flFSEJNS7YelrHP7Fbl/VKmhkjU admin\n";
    has(md5ish, "/w:4: user u: 'argon2i' hash: expected argon2id (made by `hbmon passwd`)");
}

#[test]
fn login_words_without_a_password_and_logins_nobody_can_use() {
    has(
        "user u syslog admin\n",
        "/w:4: user u: admin, groups= and owns= need a password (see `hbmon passwd`)",
    );
    has(
        &format!("user u password {HASH}\n"),
        "/w:4: user u: a dashboard login needs admin, groups=GROUPS or owns=HOSTS",
    );
    has(
        "login everywhere\n",
        "/w:4: login everywhere: no user has a password, so nobody could log in",
    );
    has("login sometimes\n", "/w:4: login: expected 'login everywhere' or 'login changes'");
    has("cookies yes\n", "/w:4: cookies: expected 'cookies secure' or 'cookies plain'");
    has(
        "channel admin syslog\n",
        "/w:4: channel admin: that name is reserved (a user line option)",
    );
    assert_eq!(errs("login changes\nuser u syslog\n"), "");
}

/// Nagios perfdata (`NAME.label`) and external-probe lines (`NAME.item`)
/// may get fits, scoped too; a bad scoped fit's error keeps its scope.
#[test]
fn fits_for_perfdata_and_probe_items_12_12() {
    let defs = "nagios all check_load /bin/true\nprobe b myprobe\n";
    assert_eq!(errs(&format!("{defs}fit check_load.load1 sick >4\n")), "");
    assert_eq!(errs(&format!("{defs}fit myprobe.temp crit >80\n")), "");
    assert_eq!(
        errs(&format!("{defs}fit b:myprobe.temp crit >80\nfit all:check_load.load1 sick >4\n")),
        ""
    );
    has(
        &format!("{defs}fit nosuch.temp crit >80\n"),
        "/w:6: fit nosuch.temp: no host gets this item",
    );
    has(
        &format!("{defs}fit zz:myprobe.temp crit >80\n"),
        "/w:6: fit zz:myprobe.temp: unknown host or group 'zz'",
    );
    has(
        &format!("{defs}fit b:myprobe.temp awful >80\n"),
        "/w:6: fit b:myprobe.temp: undeclared level 'awful'",
    );
    has(
        &format!("{defs}fit b:cpu_load soso >x\n"),
        "/w:6: fit b:cpu_load: condition '>x': 'x' is not a number",
    );
    has("fit a,b:nothing soso >1\n", "/w:4: fit a,b:nothing: no host gets this item");
}
