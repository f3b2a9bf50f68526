//! Issue 12, items 4, 5, 6, 7 and 14, end to end on real processes: the
//! real binary in a test fleet on 127.X.Y.N, real HTTP receivers started
//! here (tiny_http, on 127.0.0.1) and a real Alertmanager
//! (/usr/bin/prometheus-alertmanager, Debian prometheus-alertmanager).

mod common;
use common::http::{am_alerts, free_port, Hit, Proc, Receiver};
use common::*;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

fn wall() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

fn webhook(name: &str, port: u16, path: &str) -> String {
    format!(
        "channel {name} webhook http://127.0.0.1:{port}/{path}?host={{HOST}}&item={{ITEM}}&old={{OLD}}&new={{NEW}} method=GET\n"
    )
}

fn wait_up(f: &Fleet, tag: &str) {
    let name = format!("-- host {tag}.{DOMAIN} up");
    f.server().wait_state(20.0, &format!("{tag} up"), |s| s.lines().any(|l| l.starts_with(&name)));
}

/// The server has nothing left to deliver.
fn wait_outbox_idle(f: &Fleet) {
    f.server().wait_state(30.0, "an idle outbox", |s| {
        s.contains("-- notify pending 0 held 0 inflight 0")
    });
}

fn active(alerts: &[serde_json::Value]) -> Vec<&serde_json::Value> {
    alerts.iter().filter(|a| a["status"]["state"] == "active").collect()
}

#[test]
fn alertmanager_single_alert_resolves_12_4() {
    let tmp = tempfile::tempdir().unwrap();
    let am = free_port();
    let cfg = tmp.path().join("am.yml");
    std::fs::write(&cfg, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
        .unwrap();
    let _am = Proc(
        Command::new("/usr/bin/prometheus-alertmanager")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", tmp.path().join("am").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{am}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager (tests/tools/install-deps.sh installs it)"),
    );
    wait_for(20.0, "alertmanager up", || am_alerts(am));
    let rx = Receiver::start_on(0);
    // The documented target (the full API URL), and a storm from the
    // second event on, so the recovery goes into the webhook's digest.
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\nstorm 1 60s\n\
         channel am alertmanager http://127.0.0.1:{am}/api/v2/alerts\n{}\
         user ops am hook\nalert all heartbeat sick ops\n",
        webhook("hook", rx.port, "hook")
    );
    let mut f = Fleet::new(&["srv", "www1"], &work, "");
    f.start_all();
    wait_up(&f, "www1");
    let name = format!("www1.{DOMAIN}");
    let ours = |a: &&serde_json::Value| a["labels"]["host"] == name.as_str();
    f.host("www1").kill9();
    // sick (late), then dead (down): one firing alert, its level updated.
    let mut most = 0;
    let a = wait_for(40.0, "the dead alert in Alertmanager", || {
        let all = am_alerts(am)?;
        let mine: Vec<serde_json::Value> = active(&all).into_iter().filter(ours).cloned().collect();
        most = most.max(mine.len());
        mine.into_iter().find(|a| a["annotations"]["level"] == "dead")
    });
    assert_eq!(
        a["labels"],
        serde_json::json!({"alertname": "hbmon", "host": name, "item": "heartbeat"}),
        "{a}"
    );
    let all = am_alerts(am).unwrap();
    assert_eq!(active(&all).len(), 1, "one firing alert per host-item: {all:?}");
    assert!(most <= 1, "never two firing alerts for one host-item");
    f.host("www1").start();
    wait_for(40.0, "zero active alerts in Alertmanager", || {
        let all = am_alerts(am)?;
        active(&all).is_empty().then_some(())
    });
    // The webhook's user was in a storm: its recovery waits in a digest,
    // the Alertmanager's did not. STATE shows the store thread's snapshot of
    // the alerts, which follows the close within a drain: awaited.
    let open = format!("-- alert {name} heartbeat");
    f.server().wait_state(10.0, "the alert closed in STATE", |s| !s.contains(&open));
}

#[test]
fn queued_deliveries_follow_a_work_change_and_retries_stop_12_5() {
    let rx = Receiver::start_on(0);
    let dead = free_port(); // nothing listens there
    let v1 = format!(
        "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n\
         channel old webhook http://127.0.0.1:{dead}/old\n\
         channel gone webhook http://127.0.0.1:{dead}/gone\n\
         channel flaky webhook http://127.0.0.1:{dead}/flaky retries=2\n{}\
         user ops old\nuser bob gone\nuser carol flaky\n\
         alert all heartbeat sick ops bob carol\n",
        webhook("live", rx.port, "live")
    );
    let mut f = Fleet::new(&["srv", "www1"], &v1, "");
    let head = std::fs::read_to_string(&f.workconf).unwrap();
    f.start_all();
    wait_up(&f, "www1");
    f.host("www1").kill9();
    // carol's channel gives up after its 2 tries, visibly.
    let st = f.server().wait_state(40.0, "carol's delivery given up", |s| {
        s.contains("-- notify failed ") && s.contains(" flaky tries 2 ")
    });
    assert!(st.contains("gave up after 2 tries"), "{st}");
    let dump = f.server().body("DUMP");
    assert!(dump.contains("gave up after 2 tries"), "{dump}");
    // ops's and bob's are still being retried.
    assert!(f.server().body("STATE").contains(&format!("-- alert www1.{DOMAIN} heartbeat")));
    // The work changes: ops now has the live channel, bob is gone.
    let v2 = head
        .replace("user ops old\n", "user ops live\n")
        .replace("user bob gone\n", "")
        .replace("ops bob carol", "ops carol");
    std::fs::write(&f.workconf, v2).unwrap();
    f.mkwork();
    assert!(f.server().cmd("WORK_RELOAD").contains("COMMAND DONE"));
    let hit = wait_for(30.0, "ops's alert on its new channel", || {
        rx.find(&["/live?", "host=www1.fleet.test", "item=heartbeat"])
    });
    assert!(hit.url.contains("new=sick") || hit.url.contains("new=dead"), "{hit:?}");
    let st = f.server().wait_state(10.0, "bob's deliveries dropped", |s| {
        s.contains("user bob is no longer in the work")
    });
    assert!(st.contains(" gone tries "), "{st}");
    // Nothing is left for the old channel: ops's rows all moved.
    f.server().wait_state(30.0, "no retries left", |s| s.contains("-- notify pending 0 "));
    // The recovery follows the alert to the live channel.
    f.host("www1").start();
    wait_for(30.0, "the recovery on the live channel", || rx.find(&["/live?", "new=fine"]));
}

#[test]
fn silence_end_alerts_a_host_still_down_12_6() {
    let rx = Receiver::start_on(0);
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n{}user ops hook\n\
         alert all heartbeat sick ops\n",
        webhook("hook", rx.port, "hook")
    );
    let mut f = Fleet::new(&["srv", "www1"], &work, "");
    f.start_all();
    wait_up(&f, "www1");
    let ends = wall() + 8.0;
    let a = f.server().cmd("SILENCE www1 8s");
    assert!(a.contains("COMMAND DONE"), "{a}");
    f.host("www1").kill9();
    f.server().wait_state(20.0, "www1 down while silenced", |s| {
        s.lines().any(|l| l.starts_with(&format!("-- host www1.{DOMAIN} down")))
    });
    let hit = wait_for(30.0, "the alert once the silence ended", || {
        rx.find(&["host=www1.fleet.test", "item=heartbeat"])
    });
    assert!(hit.at >= ends - 0.5, "alerted during the silence: {hit:?}");
    assert!(hit.url.contains("new=dead"), "{hit:?}");
}

#[test]
fn parent_down_children_quiet_then_alert_or_nothing_12_6() {
    let rx = Receiver::start_on(0);
    // grace 3s: a child's wait for its parent (heartbeat + grace) is longer
    // than it takes to start a host here; the test's ups and downs are not
    // flapping.
    let work = format!(
        "ival_heartbeat 1s\ngrace 3s\nmissed 3\nival_make_state 1h\nflap 50 10m\nparent www1 gw\n{}\
         user ops hook\nalert all heartbeat sick ops\n",
        webhook("hook", rx.port, "hook")
    );
    let mut f = Fleet::new(&["srv", "gw", "www1"], &work, "");
    f.start_all();
    wait_up(&f, "gw");
    wait_up(&f, "www1");
    let www1 = format!("host=www1.{DOMAIN}");
    let gw = format!("host=gw.{DOMAIN}");
    // Phase A: both die; only the parent alerts.
    f.host("www1").kill9();
    f.host("gw").kill9();
    let alert = wait_for(30.0, "the parent's dead alert", || rx.find(&[&gw, "new=dead"]));
    f.server().wait_state(20.0, "the child folded into the parent", |s| {
        s.contains(&format!("-- alert www1.{DOMAIN} heartbeat dead"))
            && s.contains("suppressed-by=gw")
    });
    let _ = alert;
    // The parent comes back, the child does not: it alerts on its own.
    f.host("gw").start();
    let back = wait_for(30.0, "the parent's recovery", || rx.find(&[&gw, "new=fine"]));
    let own = wait_for(30.0, "the child's own alert", || rx.find(&[&www1, "new=dead"]));
    let before: Vec<Hit> =
        rx.all().into_iter().filter(|h| h.url.contains(&www1) && h.at < back.at).collect();
    assert!(before.is_empty(), "the child spoke while its parent was down: {before:?}");
    assert!(own.url.contains("old=fine"), "not `dead -> dead`: {own:?}");
    f.host("www1").start();
    wait_for(30.0, "the child's recovery", || rx.find(&[&www1, "new=fine"]));
    wait_outbox_idle(&f);
    // Phase B: both die again and come back together: the child, back a
    // moment after its parent, gets nothing at all.
    let mark = rx.all().len();
    f.host("www1").kill9();
    f.host("gw").kill9();
    wait_for(30.0, "the parent's second alert", || {
        rx.all()[mark..].iter().find(|h| h.url.contains(&gw) && h.url.contains("new=dead")).cloned()
    });
    f.server().wait_state(20.0, "the child folded into the parent again", |s| {
        s.contains("suppressed-by=gw")
    });
    f.host("gw").start();
    f.host("www1").start();
    wait_for(30.0, "the parent's second recovery", || {
        rx.all()[mark..].iter().find(|h| h.url.contains(&gw) && h.url.contains("new=fine")).cloned()
    });
    f.server().wait_state(30.0, "no alert left for the child", |s| {
        !s.contains(&format!("-- alert www1.{DOMAIN} "))
    });
    wait_outbox_idle(&f);
    let child: Vec<Hit> =
        rx.all()[mark..].iter().filter(|h| h.url.contains(&www1)).cloned().collect();
    assert!(child.is_empty(), "the child came back with its parent: {child:?}");
}

#[test]
fn fallback_alert_arrives_while_the_server_is_dead_12_7() {
    let hook = Receiver::start_on(0);
    let fb_port = free_port(); // its receiver starts only later
    let work = format!(
        "ival_heartbeat 0.5s\nival_make_state 1h\n{}user ops hook\nalert all * sick ops\n",
        webhook("hook", hook.port, "hook")
    );
    let mut f = Fleet::new(&["srv", "www1"], &work, "");
    let conf = std::fs::read_to_string(&f.hosts[1].conf).unwrap();
    f.hosts[1].write_conf(&format!("{conf}ival_server_dead 2s\n"));
    f.start_all();
    wait_for(10.0, "www1's rtt", || {
        let st = f.host("www1").try_cmd("STATE")?;
        item_line(&st, "rtt").map(|_| ())
    });
    // The sysadmin adds a fallback and reloads (SIGHUP).
    let conf = std::fs::read_to_string(&f.hosts[1].conf).unwrap();
    f.hosts[1].write_conf(&format!(
        "{conf}fallback webhook http://127.0.0.1:{fb_port}/fb?host={{HOST}}&item={{ITEM}}&new={{NEW}} method=GET\n"
    ));
    let out = f.host("www1").hbmon(&["reload"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    f.host("www1").wait_state(10.0, "the fallback channel", |s| s.contains("-- fallback webhook"));
    f.host("srv").kill9();
    // Its receiver is down at first: the alert is retried, not lost.
    f.host("www1").wait_state(20.0, "a failed fallback try", |s| s.contains("failed tries)"));
    let fb = Receiver::start_on(fb_port);
    let hit =
        wait_for(90.0, "the fallback alert", || fb.find(&["/fb?", "item=server", "new=dead"]));
    assert!(hit.url.contains("host=www1.fleet.test"), "{hit:?}");
    let st = f.host("www1").cmd("STATE");
    assert!(
        item_line(&st, "server").is_some_and(|l| l.contains(" dead")),
        "the server is still dead: {st}"
    );
    f.host("srv").start();
    wait_for(30.0, "the fallback recovery", || fb.find(&["/fb?", "new=fine"]));
    // The server, back, hears of its own death from www1's outbox: old
    // news, already recovered, so it tells nobody.
    f.host("www1")
        .wait_state(30.0, "www1's events delivered", |s| s.contains("-- outbox 0 queued events"));
    wait_outbox_idle(&f);
    let stale: Vec<Hit> =
        hook.all().into_iter().filter(|h| h.url.contains("item=server")).collect();
    assert!(stale.is_empty(), "the server relayed its own death afterwards: {stale:?}");
}

/// The `Dashboard:` line of an alert body received by `rx`.
fn dashboard_line(rx: &Receiver) -> Option<Option<String>> {
    let hit = rx.find(&["/hook"])?;
    let js: serde_json::Value = serde_json::from_str(&hit.body).ok()?;
    let body = js["body"].as_str()?.to_string();
    Some(body.lines().find(|l| l.starts_with("Dashboard:")).map(str::to_string))
}

#[test]
fn alert_links_only_to_a_configured_pagemaker_12_14() {
    let work = |port: u16| {
        format!(
            "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n\
             channel hook webhook http://127.0.0.1:{port}/hook\nuser ops hook\n\
             alert all heartbeat sick ops\n"
        )
    };
    // No pagemaker in the work: no link.
    let rx = Receiver::start_on(0);
    let mut f = Fleet::new(&["srv", "www1"], &work(rx.port), "");
    f.start_all();
    wait_up(&f, "www1");
    f.host("www1").kill9();
    let line = wait_for(30.0, "an alert", || dashboard_line(&rx));
    assert_eq!(line, None, "a link with no pagemaker");
    drop(f);
    // The server is the pagemaker, its dashboard on the port of its conf.
    let rx = Receiver::start_on(0);
    let mut f = Fleet::new(&["srv", "www1"], &format!("pmaker srv\n{}", work(rx.port)), "");
    let http = free_port();
    let conf = std::fs::read_to_string(&f.hosts[0].conf).unwrap();
    f.hosts[0].write_conf(&format!("{conf}http_port {http}\n"));
    f.start_all();
    wait_up(&f, "www1");
    f.host("www1").kill9();
    let line = wait_for(30.0, "an alert", || dashboard_line(&rx));
    let url = format!("http://{}:{http}/host/www1.{DOMAIN}", f.hosts[0].ip);
    assert_eq!(line, Some(format!("Dashboard: {url}")));
    // The page it names exists.
    let page = wait_for(20.0, "the host's dashboard page", || ureq::get(&url).call().ok());
    assert_eq!(page.status(), 200);
    let html = page.into_string().unwrap_or_default();
    assert!(html.contains(&format!("www1.{DOMAIN}")), "{html}");
}

/// An external probe whose exit code (its `probe:NAME` value) is the
/// number in `file`.
fn level_probe(host: &Host, name: &str, file: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let dir = host.vardir().join("probes");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\nexit \"$(cat {})\"\n", file.display())).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn no_still_soso_reminder_below_the_rules_level_12_6() {
    let rx = Receiver::start_on(0);
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1s\nival_renotify 3s\n\
         flap 50 10m\nprobe www1 lvl\nprobe www1 mark\n\
         fit probe:lvl soso >=1 sick >=2\nfit probe:mark soso >=1 sick >=2\n\
         channel hook webhook http://127.0.0.1:{}/hook?item={{ITEM}}&text={{TEXT}} method=GET\n\
         user ops hook\nalert all probe:* sick ops\n",
        rx.port
    );
    let mut f = Fleet::new(&["srv", "www1"], &work, "");
    let (lvl, mark) = (f.dir.path().join("lvl"), f.dir.path().join("mark"));
    std::fs::write(&lvl, "2\n").unwrap();
    std::fs::write(&mark, "2\n").unwrap();
    level_probe(&f.hosts[1], "lvl", &lvl);
    level_probe(&f.hosts[1], "mark", &mark);
    f.start_all();
    wait_for(30.0, "lvl's alert", || rx.find(&["item=probe%3Alvl", "sick"]));
    std::fs::write(&lvl, "1\n").unwrap();
    f.server().wait_state(20.0, "lvl down to soso", |s| {
        s.contains(&format!("-- alert www1.{DOMAIN} probe:lvl soso"))
    });
    // Reminders go on for `mark`, still at the rule's level; none for lvl.
    let since = rx.all().len();
    wait_for(30.0, "two reminders for mark", || {
        let n = rx.all()[since..].iter().filter(|h| h.url.contains("mark%20still%20sick")).count();
        (n >= 2).then_some(())
    });
    let soso: Vec<Hit> = rx.all().into_iter().filter(|h| h.url.contains("still%20soso")).collect();
    assert!(soso.is_empty(), "a reminder below the rule's level: {soso:?}");
    // Back at the rule's level it reminds again, and recovers once.
    std::fs::write(&lvl, "2\n").unwrap();
    wait_for(30.0, "lvl's reminder at sick", || rx.find(&["lvl%20still%20sick"]));
    std::fs::write(&lvl, "0\n").unwrap();
    wait_for(30.0, "lvl's recovery", || rx.find(&["lvl%20recovered"]));
}
