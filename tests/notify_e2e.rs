//! Issue 7 end to end on real processes: a client is SIGKILLed, the
//! server's webhook reaches a real HTTP receiver started by the test, and
//! so does the recovery when the client comes back; the receiver being
//! down first only delays delivery.

mod common;
use common::http::{am_alerts, free_port, Proc, Receiver};
use common::*;

/// The number after `key` on STATE's `-- notify pending ...` line.
fn notify_count(line: &str, key: &str) -> Option<u64> {
    let mut w = line.split_whitespace();
    w.find(|&x| x == key)?;
    w.next()?.parse().ok()
}

#[test]
fn webhook_for_a_dead_client_and_its_recovery() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n\
         channel hook webhook http://127.0.0.1:{port}/hook?host={{HOST}}&item={{ITEM}}&new={{NEW}}&text={{TEXT}} method=GET\n\
         user ops hook\nalert all heartbeat sick ops\n"
    );
    let mut f = Fleet::new(&["srv", "www1"], &work, "");
    f.start_all();
    let name = format!("www1.{DOMAIN}");
    wait_for(10.0, "www1 up", || {
        let st = f.server().try_cmd("STATE")?;
        st.lines().any(|l| l.starts_with(&format!("-- host {name} up"))).then_some(())
    });
    // The receiver is down when the client dies; deliveries are retried.
    f.host("www1").kill9();
    // The down notification is queued, its first try fails (nothing listens)
    // and it stays pending for a retry: both counters say so.
    let line = wait_for(30.0, "a pending delivery with a failed try", || {
        let st = f.server().try_cmd("STATE")?;
        let l = st.lines().find(|l| l.starts_with("-- notify pending "))?.to_string();
        (notify_count(&l, "pending")? >= 1 && notify_count(&l, "retrying")? >= 1).then_some(l)
    });
    assert_eq!(notify_count(&line, "failed"), Some(0), "{line}");
    let rx = Receiver::start_on(port);
    let url = wait_for(40.0, "the down webhook", || rx.got("host=www1.fleet.test"));
    assert!(url.contains("item=heartbeat"), "{url}");
    assert!(url.contains("new=sick") || url.contains("new=dead"), "{url}");
    f.host("www1").start();
    let url = wait_for(40.0, "the recovery webhook", || rx.got("new=fine"));
    assert!(url.contains("host=www1.fleet.test"), "{url}");
}

#[test]
fn a_client_whose_server_died_uses_its_fallback_channel() {
    let rx = Receiver::start_on(0);
    let conf = format!(
        "ival_server_dead 2s\nfallback webhook http://127.0.0.1:{}/fb?host={{HOST}}&item={{ITEM}}&new={{NEW}}&text={{TEXT}} method=GET\n",
        rx.port
    );
    let work = "ival_heartbeat 0.5s\nival_make_state 1h\n";
    let mut f = Fleet::new(&["srv", "www1"], work, "");
    let c = std::fs::read_to_string(&f.hosts[1].conf).unwrap();
    f.hosts[1].write_conf(&format!("{c}{conf}"));
    f.start_all();
    wait_for(10.0, "www1's rtt", || {
        let st = f.host("www1").try_cmd("STATE")?;
        item_line(&st, "rtt").map(|_| ())
    });
    f.host("srv").kill9();
    let url = wait_for(15.0, "the fallback webhook", || rx.got("/fb?"));
    assert!(
        url.contains("host=www1.fleet.test")
            && url.contains("item=server")
            && url.contains("new=dead"),
        "{url}"
    );
    let st = f.host("www1").cmd("STATE");
    assert!(item_line(&st, "server").is_some_and(|l| l.contains(" dead")), "{st}");
    f.host("srv").start();
    wait_for(15.0, "the fallback recovery", || rx.got("new=fine"));
}

fn mails(dir: &std::path::Path) -> Vec<String> {
    let files: Vec<_> =
        std::fs::read_dir(dir.join("new")).map(|d| d.flatten().collect()).unwrap_or_default();
    files.iter().filter_map(|f| std::fs::read_to_string(f.path()).ok()).collect()
}

#[test]
fn mail_and_alertmanager_for_a_dead_client_through_the_daemon() {
    use std::process::{Command, Stdio};
    let tmp = tempfile::tempdir().unwrap();
    // A real SMTP sink, a real MTA (msmtp, sendmail-compatible) relaying to it.
    let smtp = free_port();
    let maildir = tmp.path().join("mail");
    let _sink = Proc(
        Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{smtp}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (make test installs it)"),
    );
    let rc = tmp.path().join("msmtprc");
    std::fs::write(&rc, format!("account default\nhost 127.0.0.1\nport {smtp}\nfrom hbmon@mon.example.org\nauth off\ntls off\n"))
        .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let sendmail = tmp.path().join("sendmail");
    std::fs::write(
        &sendmail,
        format!("#!/bin/sh\nexec /usr/bin/msmtp -C {} \"$@\"\n", rc.display()),
    )
    .unwrap();
    std::fs::set_permissions(&sendmail, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    // A real Alertmanager.
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
            .expect("prometheus-alertmanager (make test installs it)"),
    );
    wait_for(20.0, "alertmanager up", || am_alerts(am));
    let work = format!(
        "ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n\
         channel mail1 mail ops@example.org sendmail={} from=hbmon@mon.example.org\n\
         channel am alertmanager http://127.0.0.1:{am}/\n\
         user ops mail1 am\nalert all heartbeat sick ops\n",
        sendmail.display()
    );
    let mut f = Fleet::new(&["srv", "www1"], &work, "");
    f.start_all();
    let name = format!("www1.{DOMAIN}");
    wait_for(10.0, "www1 up", || {
        let st = f.server().try_cmd("STATE")?;
        st.lines().any(|l| l.starts_with(&format!("-- host {name} up"))).then_some(())
    });
    f.host("www1").kill9();
    let ours = |a: &serde_json::Value| {
        a["labels"]["host"] == name.as_str() && a["status"]["state"] == "active"
    };
    let a = wait_for(30.0, "the alert in Alertmanager", || {
        am_alerts(am)?.into_iter().find(|a| ours(a))
    });
    assert_eq!(a["labels"]["item"], "heartbeat", "{a}");
    let m = wait_for(30.0, "the alert mail", || {
        mails(&maildir).into_iter().find(|m| m.contains("www1 heartbeat"))
    });
    assert!(m.contains("To: ops@example.org"), "{m}");
    assert!(m.contains("Subject: [hbmon] www1 heartbeat"), "{m}");
    f.host("www1").start();
    wait_for(30.0, "resolved in Alertmanager", || (!am_alerts(am)?.iter().any(ours)).then_some(()));
    wait_for(30.0, "the recovery mail", || {
        mails(&maildir)
            .into_iter()
            .find(|m| m.contains("www1 heartbeat") && m.to_lowercase().contains("fine"))
    });
}
