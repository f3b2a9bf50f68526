//! What the notification tests stand up around the daemon: a free TCP
//! port on 127.0.0.1, a real HTTP receiver (tiny_http) recording each
//! request, a child process killed on drop (Alertmanager, an SMTP server),
//! and Alertmanager's alert list.

use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A TCP port free on 127.0.0.1 just now (for a tool the test starts).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

fn wall() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// One request a receiver got: when, its URL and its body.
#[derive(Clone, Debug)]
pub struct Hit {
    pub at: f64,
    pub url: String,
    pub body: String,
}

/// A real HTTP receiver (tiny_http) recording every request, answering "ok".
pub struct Receiver {
    hits: Arc<Mutex<Vec<Hit>>>,
    pub port: u16,
}

impl Receiver {
    /// On `port` (0: any free one; `port` then says which).
    pub fn start_on(port: u16) -> Receiver {
        let server = tiny_http::Server::http(("127.0.0.1", port)).expect("receiver");
        let port = server.server_addr().to_ip().map(|a| a.port()).unwrap_or(port);
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        std::thread::spawn(move || {
            for mut req in server.incoming_requests() {
                let mut body = String::new();
                let _ = req.as_reader().read_to_string(&mut body);
                h.lock().unwrap().push(Hit { at: wall(), url: req.url().to_string(), body });
                let _ = req.respond(tiny_http::Response::from_string("ok"));
            }
        });
        Receiver { hits, port }
    }

    pub fn all(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The first request whose URL contains every needle.
    pub fn find(&self, needles: &[&str]) -> Option<Hit> {
        self.all().into_iter().find(|h| needles.iter().all(|n| h.url.contains(n)))
    }

    /// The first URL containing `needle`.
    pub fn got(&self, needle: &str) -> Option<String> {
        self.find(&[needle]).map(|h| h.url)
    }
}

/// A child process this test started, killed on drop (pass or fail).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Alertmanager's alerts (`/api/v2/alerts`), None while it does not answer.
pub fn am_alerts(port: u16) -> Option<Vec<serde_json::Value>> {
    let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
    let body = ureq::get(&url).call().ok()?.into_string().ok()?;
    serde_json::from_str(&body).ok()
}
