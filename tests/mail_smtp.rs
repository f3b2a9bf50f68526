//! Mail without a local MTA: the `mail` channel with `smtp_server=` speaks
//! SMTP itself (lettre, rustls) to a real aiosmtpd started by the test on
//! 127.0.0.1 — with STARTTLS and AUTH, with implicit TLS and AUTH, and
//! plain without TLS — using a self-signed certificate made here with
//! openssl. Alerts go through the notifier and its outbox as in production.
//! Also: such a channel needs no sendmail in the work (mkwork passes with a
//! sendmail path that does not exist), and a bad password is a failure the
//! outbox retries, not a success.

mod common;
use common::http::free_port;

use hbmon::event::Event;
use hbmon::notify::{run_job, Notifier};
use hbmon::work::model::{AlertRule, Channel, Intervals, Level, ServerWork, User};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Sink {
    child: Child,
    out: PathBuf,
    port: u16,
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private CA and a server certificate it signed for 127.0.0.1 and
/// localhost: (CA cert, server cert, server key). rustls, rightly, will not
/// take a CA certificate as the server's own.
fn cert(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let p = |n: &str| dir.join(n);
    let run = |args: &[&str]| {
        let o = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=hbmon test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-keyout",
        "srv.key",
        "-out",
        "srv.csr",
    ]);
    std::fs::write(
        p("ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "srv.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "ext",
        "-out",
        "srv.pem",
    ]);
    (p("ca.pem"), p("srv.pem"), p("srv.key"))
}

fn sink(dir: &Path, mode: &str, cert: Option<&(PathBuf, PathBuf, PathBuf)>) -> Sink {
    let port = free_port();
    let out = dir.join(format!("mail-{mode}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/smtp_sink.py");
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(script).arg(mode).arg(port.to_string()).arg(&out);
    if let Some((_, c, k)) = cert {
        cmd.arg(c).arg(k);
    }
    let child = cmd.stdout(Stdio::null()).spawn().expect("python3-aiosmtpd");
    let until = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "aiosmtpd ({mode}) not listening on {port}");
        // sleep: poll interval while waiting for the SMTP port, with a deadline
        std::thread::sleep(Duration::from_millis(50));
    }
    Sink { child, out, port }
}

fn work(opts: &[(&str, String)]) -> ServerWork {
    ServerWork {
        users: vec![User { name: "ops".into(), channels: vec!["ch".into()] }],
        channels: vec![Channel {
            name: "ch".into(),
            kind: "mail".into(),
            target: "ops@example.org, oncall@example.org".into(),
            options: opts.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
        }],
        alerts: vec![AlertRule {
            hosts: vec!["*".into()],
            item: "*".into(),
            level: "sick".into(),
            users: vec!["ops".into()],
        }],
        ..Default::default()
    }
}

fn levels() -> Vec<Level> {
    ["ok", "sick", "crit"]
        .iter()
        .map(|n| Level { name: n.to_string(), long: n.to_string() })
        .collect()
}

/// One alert through the notifier for real: the delivery's result.
fn alert(w: &ServerWork) -> Result<(), String> {
    let conn = hbmon::server::db::open_in_memory().unwrap();
    let mut n = Notifier::new(&conn, w, &levels(), &Intervals::default(), None).unwrap();
    let t = 1_795_924_573.0;
    let ev = Event {
        id: "e1".into(),
        host: "www1.example.org".into(),
        item: "disk_used:/".into(),
        old_level: Some("ok".into()),
        new_level: "crit".into(),
        old_value: Some(40.0),
        new_value: Some(97.5),
        time: t,
        message: String::new(),
    };
    n.on_event(&conn, &ev, "down", t).unwrap();
    let jobs = n.tick(&conn, t).unwrap();
    assert_eq!(jobs.len(), 1);
    let done = run_job(jobs[0].clone());
    let r = done.result.clone();
    n.on_done(&conn, done, t).unwrap();
    r
}

fn received(s: &Sink) -> String {
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(t) = std::fs::read_to_string(s.out.join("1.eml")) {
            return t;
        }
        assert!(Instant::now() < until, "no mail reached the sink in {}", s.out.display());
        // sleep: poll interval while waiting for the mail, with a deadline
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn smtp_opts(s: &Sink, tls: &str, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut o = vec![
        ("smtp_server", "127.0.0.1".to_string()),
        ("port", s.port.to_string()),
        ("tls", tls.to_string()),
        ("from", "hbmon@mon.example.org".to_string()),
        // No MTA is needed: a sendmail that does not exist is never looked at.
        ("sendmail", "/nonexistent/sendmail".to_string()),
    ];
    o.extend_from_slice(extra);
    o
}

fn check_mail(text: &str, user: &str, tls: &str) {
    assert!(text.contains("X-Sink-From: hbmon@mon.example.org\n"), "{text}");
    assert!(text.contains("X-Sink-To: ops@example.org,oncall@example.org\n"), "{text}");
    assert!(text.contains(&format!("X-Sink-User: {user}\n")), "{text}");
    assert!(text.contains(&format!("X-Sink-TLS: {tls}\n")), "{text}");
    assert!(text.contains("Subject: [hbmon] www1 disk_used:/ crit"), "{text}");
    assert!(text.contains("Date: Sun, 29 Nov 2026 03:56:13 +0000"), "{text}");
}

#[test]
fn starttls_with_auth_and_a_private_ca() {
    let d = tempfile::tempdir().unwrap();
    let c = cert(d.path());
    let s = sink(d.path(), "starttls", Some(&c));
    let ca = c.0.display().to_string();
    let creds =
        [("user", "hbmon".to_string()), ("password", "s3cret".to_string()), ("tls_ca", ca.clone())];
    let w = work(&smtp_opts(&s, "starttls", &creds));
    hbmon::notify::validate_channel("mail", &w.channels[0].target, &w.channels[0].options).unwrap();
    assert_eq!(alert(&w), Ok(()));
    check_mail(&received(&s), "hbmon", "yes");

    // A wrong password is a failed delivery (the outbox retries it).
    let bad = [("user", "hbmon".to_string()), ("password", "wrong".to_string()), ("tls_ca", ca)];
    let e = alert(&work(&smtp_opts(&s, "starttls", &bad))).unwrap_err();
    assert!(e.contains("smtp 127.0.0.1"), "{e}");
    // Without the CA the self-signed certificate is refused, nothing is sent.
    let e = alert(&work(&smtp_opts(&s, "starttls", &creds[..2]))).unwrap_err();
    assert!(e.to_lowercase().contains("certificate") || e.contains("tls"), "{e}");
    assert!(!s.out.join("2.eml").exists());
}

#[test]
fn implicit_tls_with_auth() {
    let d = tempfile::tempdir().unwrap();
    let c = cert(d.path());
    let s = sink(d.path(), "tls", Some(&c));
    let creds = [
        ("user", "hbmon".to_string()),
        ("password", "s3cret".to_string()),
        ("tls_ca", c.0.display().to_string()),
    ];
    assert_eq!(alert(&work(&smtp_opts(&s, "tls", &creds))), Ok(()));
    check_mail(&received(&s), "hbmon", "yes");
}

#[test]
fn plain_smtp_without_tls() {
    let d = tempfile::tempdir().unwrap();
    let s = sink(d.path(), "plain", None);
    assert_eq!(alert(&work(&smtp_opts(&s, "none", &[]))), Ok(()));
    check_mail(&received(&s), "-", "no");
}

#[test]
fn a_work_with_an_smtp_channel_needs_no_sendmail() {
    let d = tempfile::tempdir().unwrap();
    let wc = d.path().join("work");
    let base = "host srv.example.org srv 127.0.0.1\nserver srv\nget all cpu_load\n";
    let mail = "channel m mail ops@example.org smtp_server=127.0.0.1 tls=starttls port=2525 \
                user=hbmon password=s3cret sendmail=/nonexistent/sendmail\nuser alice m\n\
                alert all * sick alice\n";
    std::fs::write(&wc, format!("{base}{mail}")).unwrap();
    let bin = env!("CARGO_BIN_EXE_hbmon");
    let out = d.path().join("works");
    let o = Command::new(bin).args(["mkwork", "-w"]).arg(&wc).arg("-o").arg(&out).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // The same channel through sendmail: now the missing MTA is an error,
    // and so are bad SMTP options, each at its line.
    let sm = "channel m mail ops@example.org sendmail=/nonexistent/sendmail\nuser alice m\n\
              channel n mail ops@example.org smtp_server=h tls=ssl\nuser bob n\n\
              alert all * sick alice bob\n";
    std::fs::write(&wc, format!("{base}{sm}")).unwrap();
    let o = Command::new(bin).args(["mkwork", "-w"]).arg(&wc).arg("-o").arg(&out).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(":4: channel m: sendmail '/nonexistent/sendmail' does not exist"),
        "{err}"
    );
    assert!(err.contains(":6: channel n: tls=ssl: expected starttls, tls or none"), "{err}");
}
