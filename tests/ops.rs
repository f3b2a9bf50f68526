//! Operating hbmon as an administrator: `hbmon test` on the server checks
//! the work-config with mkwork's file:line errors and exit 2.

mod common;

use common::Fleet;

#[test]
fn hbmon_test_on_the_server_checks_the_workconf() {
    let f = Fleet::new(&["srv", "c1"], "get all cpu_load\n", "");
    f.mkwork();
    let srv = f.server();
    let o = srv.hbmon(&["test"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains(&format!("workconf {} ok (2 hosts)", f.workconf.display())), "{out}");
    // Break the work-config after mkwork: the old work-files would still
    // run, but `test` must say what is wrong, where, and exit 2.
    let mut text = std::fs::read_to_string(&f.workconf).unwrap();
    let lines = text.lines().count();
    text.push_str("get nosuchgroup cpu_load\nfit cpu_load bogus >2\n");
    std::fs::write(&f.workconf, text).unwrap();
    let o = srv.hbmon(&["test"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    let wc = f.workconf.display();
    assert!(err.contains(&format!("{wc}:{}:", lines + 1)) && err.contains("nosuchgroup"), "{err}");
    assert!(err.contains(&format!("{wc}:{}:", lines + 2)) && err.contains("bogus"), "{err}");
    // mkwork says the same.
    let m = srv.hbmon(&["mkwork"]);
    assert_eq!(m.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&m.stderr), err);
    // A client does not read the server's work-config.
    let o = f.hosts[1].hbmon(&["test"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
