//! Issue 7 end to end on real processes: a client is SIGKILLed, the
//! server's webhook reaches a real HTTP receiver started by the test, and
//! so does the recovery when the client comes back; the receiver being
//! down first only delays delivery.

mod common;
use common::*;
use std::sync::{Arc, Mutex};

/// A real HTTP receiver (tiny_http) recording each request's URL.
struct Receiver {
    urls: Arc<Mutex<Vec<String>>>,
    port: u16,
    _thread: std::thread::JoinHandle<()>,
}

impl Receiver {
    fn start_on(port: u16) -> Receiver {
        let server = tiny_http::Server::http(("127.0.0.1", port)).expect("receiver");
        let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(port);
        let urls = Arc::new(Mutex::new(Vec::new()));
        let u = urls.clone();
        let t = std::thread::spawn(move || {
            for req in server.incoming_requests() {
                u.lock().unwrap().push(req.url().to_string());
                let _ = req.respond(tiny_http::Response::from_string("ok"));
            }
        });
        Receiver { urls, port, _thread: t }
    }
    fn got(&self, needle: &str) -> Option<String> {
        self.urls.lock().unwrap().iter().find(|u| u.contains(needle)).cloned()
    }
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
    std::thread::sleep(std::time::Duration::from_secs(4));
    let st = f.server().body("STATE");
    assert!(st.contains("-- notify"), "notification state in STATE:\n{st}");
    let rx = Receiver::start_on(port);
    let url = wait_for(40.0, "the down webhook", || rx.got("host=www1.fleet.test"));
    assert!(url.contains("item=heartbeat"), "{url}");
    assert!(url.contains("new=sick") || url.contains("new=dead"), "{url}");
    f.host("www1").start();
    let url = wait_for(40.0, "the recovery webhook", || rx.got("new=fine"));
    assert!(url.contains("host=www1.fleet.test"), "{url}");
    let _ = rx.port;
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
