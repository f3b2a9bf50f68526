//! Notification channels against real receivers started by the test, all on
//! 127.0.0.1: a tiny_http webhook receiver (also down first, then up), mail
//! through msmtp (sendmail-compatible) into an aiosmtpd sink, a command, and
//! a real Alertmanager that lists the alert and sees it resolved.
//!
//! Needs the Debian packages msmtp (or msmtp-mta), python3-aiosmtpd and
//! prometheus-alertmanager.

mod common;
use common::http::{free_port, Proc};

use hbmon::event::Event;
use hbmon::notify::{run_job, Notifier, NotifyDone, NotifyJob};
use hbmon::work::model::{AlertRule, Channel, Intervals, Level, ServerWork, User};
use rusqlite::Connection;
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn wait_port(port: u16) {
    let until = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "nothing listening on {port}");
        // sleep: poll interval while waiting for the port, with a deadline
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn levels() -> Vec<Level> {
    ["ok", "sick", "crit"]
        .iter()
        .map(|n| Level { name: n.to_string(), long: n.to_string() })
        .collect()
}

fn work(kind: &str, target: &str, opts: &[(&str, &str)]) -> ServerWork {
    ServerWork {
        users: vec![User { name: "ops".into(), channels: vec!["ch".into()] }],
        channels: vec![Channel {
            name: "ch".into(),
            kind: kind.into(),
            target: target.into(),
            options: opts.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }],
        alerts: vec![AlertRule {
            hosts: vec!["*".into()],
            item: "*".into(),
            level: "sick".into(),
            users: vec!["ops".into()],
        }],
        dashboard_url: Some("http://127.0.0.1:50004".into()),
        ..Default::default()
    }
}

fn ev(old: &str, new: &str, t: f64) -> Event {
    Event {
        id: format!("{t}"),
        host: "www1.example.org".into(),
        item: "heartbeat".into(),
        old_level: Some(old.into()),
        new_level: new.into(),
        old_value: None,
        new_value: Some(if new == "ok" { 1.0 } else { 0.0 }),
        time: t,
        message: String::new(),
    }
}

fn setup(w: &ServerWork) -> (Connection, Notifier) {
    let conn = hbmon::server::db::open_in_memory().unwrap();
    let n = Notifier::new(&conn, w, &levels(), &Intervals::default(), None).unwrap();
    (conn, n)
}

/// Ticks and runs every job for real (on this thread), recording outcomes.
fn pump(c: &Connection, n: &mut Notifier, now: f64) -> Vec<(NotifyJob, NotifyDone)> {
    let mut out = Vec::new();
    for job in n.tick(c, now).unwrap() {
        let done = run_job(job.clone());
        n.on_done(c, done.clone(), now).unwrap();
        out.push((job, done));
    }
    out
}

/// A tiny_http receiver thread forwarding (url, body) of each request.
fn receiver(port: u16) -> mpsc::Receiver<(String, String)> {
    let server = tiny_http::Server::http(("127.0.0.1", port)).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = req.as_reader().read_to_string(&mut body);
            let _ = tx.send((req.url().to_string(), body));
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        }
    });
    rx
}

#[test]
fn webhook_alert_and_recovery() {
    let port = free_port();
    let rx = receiver(port);
    let url = format!("http://127.0.0.1:{port}/hook?host={{HOST}}&new={{NEW}}&text={{TEXT}}");
    let w = work("webhook", &url, &[]);
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("ok", "crit", 100.0), "down", 100.0).unwrap();
    let done = pump(&c, &mut n, 100.0);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1.result, Ok(()));
    let (u, body) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(u.starts_with("/hook?host=www1.example.org&new=crit&text=%5Bhbmon%5D%20www1"), "{u}");
    let js: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(js["kind"], "alert");
    assert!(js["body"].as_str().unwrap().contains("http://127.0.0.1:50004/host/www1.example.org"));
    n.on_event(&c, &ev("crit", "ok", 160.0), "up", 160.0).unwrap();
    assert_eq!(pump(&c, &mut n, 160.0).len(), 1);
    let (u, _) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(u.contains("new=ok"), "{u}");
}

#[test]
fn webhook_receiver_down_then_up_delivers_once() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/h");
    let w = work("webhook", &url, &[("method", "GET"), ("timeout", "2")]);
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("ok", "crit", 0.0), "down", 0.0).unwrap();
    let mut now = 0.0;
    for _ in 0..3 {
        let done = pump(&c, &mut n, now);
        assert_eq!(done.len(), 1);
        assert!(done[0].1.result.is_err(), "nothing listens yet");
        now = n.next_deadline().unwrap();
    }
    assert_eq!(now, 35.0, "backoff 5 + 10 + 20");
    let mut s = String::new();
    n.state_lines(&mut s, now);
    assert!(s.contains("pending 1"), "{s}");
    let rx = receiver(port);
    let done = pump(&c, &mut n, now);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1.result, Ok(()));
    assert!(rx.recv_timeout(Duration::from_secs(5)).is_ok());
    assert!(pump(&c, &mut n, now + 1000.0).is_empty());
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "delivered exactly once");
}

#[test]
fn webhook_form_post_and_restart_resends_inflight_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("server.db");
    let port = free_port();
    let rx = receiver(port);
    let url = format!("http://127.0.0.1:{port}/form");
    let w = work("webhook", &url, &[("body", "form")]);
    {
        let c = hbmon::server::db::open(&db).unwrap().conn;
        let mut n = Notifier::new(&c, &w, &levels(), &Intervals::default(), None).unwrap();
        n.on_event(&c, &ev("ok", "crit", 10.0), "down", 10.0).unwrap();
        let jobs = n.tick(&c, 10.0).unwrap();
        assert_eq!(jobs.len(), 1);
        // The process "dies" with the job in flight: never run, never done.
    }
    let c = hbmon::server::db::open(&db).unwrap().conn;
    let mut n = Notifier::new(&c, &w, &levels(), &Intervals::default(), None).unwrap();
    let done = pump(&c, &mut n, 11.0);
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].1.result, Ok(()));
    let (u, body) = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(u, "/form");
    assert!(body.contains("host=www1.example.org") && body.contains("kind=alert"), "{body}");
    assert!(pump(&c, &mut n, 100.0).is_empty());
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "not sent twice");
    // The alert state survived too: the recovery goes to the same channel.
    n.on_event(&c, &ev("crit", "ok", 120.0), "up", 120.0).unwrap();
    assert_eq!(pump(&c, &mut n, 120.0).len(), 1);
    assert!(rx.recv_timeout(Duration::from_secs(5)).unwrap().1.contains("kind=recovery"));
}

#[test]
fn command_gets_event_in_env() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cmd = format!(
        "echo \"$HBMON_KIND $HBMON_HOST $HBMON_ITEM $HBMON_OLD $HBMON_NEW\" > {}",
        out.display()
    );
    let w = work("command", &cmd, &[]);
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("ok", "sick", 5.0), "up", 5.0).unwrap();
    assert_eq!(pump(&c, &mut n, 5.0)[0].1.result, Ok(()));
    let got = std::fs::read_to_string(&out).unwrap();
    assert_eq!(got, "alert www1.example.org heartbeat ok sick\n");
}

#[test]
fn mail_through_msmtp_to_smtp_sink() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let maildir = dir.path().join("mail");
    let _sink = Proc(
        Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd"),
    );
    let rc = dir.path().join("msmtprc");
    std::fs::write(
        &rc,
        format!("account default\nhost 127.0.0.1\nport {port}\nfrom hbmon@mon.example.org\nauth off\ntls off\n"),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    wait_port(port);
    let sendmail = format!("/usr/bin/msmtp -C {}", rc.display());
    let opts = [("sendmail", sendmail.as_str()), ("from", "hbmon@mon.example.org")];
    let w = work("mail", "ops@example.org", &opts);
    hbmon::notify::validate_channel("mail", "ops@example.org", &w.channels[0].options).unwrap();
    let (c, mut n) = setup(&w);
    n.on_event(&c, &ev("ok", "crit", 1_795_924_573.0), "down", 1_795_924_573.0).unwrap();
    let done = pump(&c, &mut n, 1_795_924_573.0);
    assert_eq!(done[0].1.result, Ok(()));
    let newdir = maildir.join("new");
    let until = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let files: Vec<_> =
            std::fs::read_dir(&newdir).map(|d| d.flatten().collect()).unwrap_or_default();
        if let Some(f) = files.first() {
            break std::fs::read_to_string(f.path()).unwrap();
        }
        assert!(Instant::now() < until, "no mail arrived");
        // sleep: poll interval while waiting for the mail, with a deadline
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(text.contains("Subject: [hbmon] www1 heartbeat crit (0)"), "{text}");
    assert!(text.contains("To: ops@example.org"), "{text}");
    assert!(text.contains("Date: Sun, 29 Nov 2026 03:56:13 +0000"), "{text}");
    assert!(text.contains("Level:  ok -> crit"), "{text}");
}

fn am_alerts(port: u16) -> Vec<serde_json::Value> {
    let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
    let body = ureq::get(&url).call().unwrap().into_string().unwrap();
    serde_json::from_str(&body).unwrap()
}

#[test]
fn alertmanager_lists_then_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("am.yml");
    std::fs::write(&cfg, "route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
        .unwrap();
    let _am = Proc(
        Command::new("/usr/bin/prometheus-alertmanager")
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager"),
    );
    wait_port(port);
    let w = work("alertmanager", &format!("http://127.0.0.1:{port}/"), &[]);
    let (c, mut n) = setup(&w);
    let t0 =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    n.on_event(&c, &ev("ok", "crit", t0), "down", t0).unwrap();
    assert_eq!(pump(&c, &mut n, t0)[0].1.result, Ok(()));
    let ours = |a: &&serde_json::Value| a["labels"]["host"] == "www1.example.org";
    let listed = am_alerts(port);
    let a = listed.iter().find(ours).expect("alert listed");
    assert_eq!(a["annotations"]["level"], "crit");
    assert!(a["labels"].get("level").is_none(), "the level is not part of the identity: {a}");
    assert_eq!(a["status"]["state"], "active");
    n.on_event(&c, &ev("crit", "ok", t0 + 1.0), "up", t0 + 1.0).unwrap();
    assert_eq!(pump(&c, &mut n, t0 + 1.0)[0].1.result, Ok(()));
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let after = am_alerts(port);
        let active = after.iter().filter(ours).any(|a| a["status"]["state"] == "active");
        if !active {
            break;
        }
        assert!(Instant::now() < until, "still active: {after:?}");
        // sleep: poll interval while waiting for alertmanager to resolve, with a deadline
        std::thread::sleep(Duration::from_millis(100));
    }
}
