//! Time from a host's last heartbeat to the webhook arriving: a release
//! server and client on 127.10.0.1/2 (1 s heartbeats, grace 1 s), a webhook
//! receiver in this process; the client is SIGKILLed, the server's DUMP
//! says when it last heard it, the receiver when the alert came. Repeated;
//! the median is reported. Run: `cargo run --release --example bench_alert [RUNS]`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn wall() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn cmd(addr: SocketAddr, line: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    s.write_all(format!("{line}\n").as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn start(bin: &str, conf: &std::path::Path) -> Child {
    Command::new(bin)
        .args(["-c", &conf.display().to_string(), "start", "-i"])
        // Not this process's stdout: bench/ab.sh reads it through a pipe
        // that a daemon left behind by a failed run would hold open.
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start hbmon (cargo build --release first)")
}

/// Children killed when the bench ends, a panic included (else a failed
/// run leaves its daemons behind).
struct Kill(Vec<u32>);
impl Drop for Kill {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

fn wait<T>(secs: f64, what: &dyn Fn() -> String, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(t.elapsed().as_secs_f64() < secs, "timed out waiting for {}", what());
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(7);
    let bin = hbmon::bench_daemon::bench_bin();
    let bin = bin.as_str();
    let rx = tiny_http::Server::http("127.0.0.1:0").expect("receiver");
    let rport = rx.server_addr().to_ip().map(|a| a.port()).unwrap_or(0);
    let got: Arc<Mutex<Vec<(f64, String)>>> = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for req in rx.incoming_requests() {
            g.lock().unwrap().push((wall(), req.url().to_string()));
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        }
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let (srv, cli) = ("127.10.0.1", "127.10.0.2");
    let port = {
        let l = std::net::TcpListener::bind((srv, 0)).expect("bind");
        l.local_addr().expect("addr").port()
    };
    let work = format!(
        "host srv.bench.example srv {srv}\nhost www1.bench.example www1 {cli}\nserver srv\nport {port}\nhb_port {port}\n\
         ival_heartbeat 1s\ngrace 1s\nmissed 3\nival_make_state 1h\n\
         channel hook webhook http://127.0.0.1:{rport}/hook?host={{HOST}}&new={{NEW}} method=GET\n\
         flap 1000 1h\nuser ops hook\nalert all heartbeat sick ops\n"
    );
    std::fs::write(dir.path().join("work"), work).expect("work");
    let mut confs = Vec::new();
    for (name, ip, extra) in [
        ("srv", srv, format!("workconf {}/work\n", dir.path().display())),
        ("www1", cli, format!("server {srv}:{port}\n")),
    ] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).expect("dir");
        let c = d.join("hbmon.conf");
        std::fs::write(&c, format!("hostname {name}.bench.example\nbind {ip}\nvardir {0}/var\nlogdir {0}/log\nrundir {0}/run\nloglvl quiet\n{extra}", d.display())).expect("conf");
        confs.push(c);
    }
    let mut server = start(bin, &confs[0]);
    let mut kill = Kill(vec![server.id()]);
    let saddr: SocketAddr = format!("{srv}:{port}").parse().expect("addr");
    wait(10.0, &|| "the server's PING".into(), || cmd(saddr, "PING"));
    let mut client = start(bin, &confs[1]);
    kill.0.push(client.id());
    let mut lat = Vec::new();
    for run in 0..runs {
        let up = "-- host www1.bench.example up";
        let state = || format!("{up:?} in STATE:\n{}", cmd(saddr, "STATE").unwrap_or_default());
        wait(20.0, &state, || cmd(saddr, "STATE").filter(|s| s.contains(up)));
        std::thread::sleep(Duration::from_millis(1500));
        let before = got.lock().unwrap().len();
        let _ = client.kill();
        let _ = client.wait();
        let (at, _) = wait(20.0, &|| "the new=sick webhook".into(), || {
            got.lock().unwrap()[before..].iter().find(|(_, u)| u.contains("new=sick")).cloned()
        });
        let dump: serde_json::Value = serde_json::from_str(
            cmd(saddr, "DUMP").unwrap_or_default().lines().nth(1).unwrap_or("null"),
        )
        .unwrap_or_default();
        let last = dump["server"]["udp"]["hosts"]
            .as_array()
            .and_then(|a| a.iter().find(|h| h["name"] == "www1.bench.example"))
            .and_then(|h| h["last_seen"].as_f64())
            .unwrap_or(at);
        lat.push(at - last);
        println!("  run {run}: webhook {:.3} s after the last heartbeat", at - last);
        client = start(bin, &confs[1]);
        kill.0.push(client.id());
        wait(20.0, &|| "the new=fine webhook".into(), || {
            got.lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(t, u)| *t > at && u.contains("new=fine"))
                .cloned()
        });
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "last heartbeat -> webhook (interval 1 s + grace 1 s = late): median {:.3} s over {runs} runs (min {:.3}, max {:.3})",
        lat[lat.len() / 2],
        lat[0],
        lat[lat.len() - 1]
    );
    hbmon::bench_daemon::figure(
        "bench_alert",
        "last heartbeat to webhook, median",
        lat[lat.len() / 2],
        "s",
        hbmon::bench_daemon::Better::Lower,
    );
    let _ = client.kill();
    let _ = server.kill();
    let _ = client.wait();
    let _ = server.wait();
}
