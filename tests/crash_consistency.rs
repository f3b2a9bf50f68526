//! Issue 13's crash-consistency run, kept in the suite: a server and three
//! clients whose `probe:flip` items flip every few hundred milliseconds (an
//! external probe reading a file the test flips), 20 SIGKILLs of the server
//! and 20 of clients on a seeded schedule, then:
//! - every fitness change a client recorded is stored on the server exactly
//!   once: per client boot the event ids `<boot>-1 .. <boot>-N` are all there
//!   with no duplicate, and every event found in a killed client's outbox
//!   (read with sqlite3 right after the kill) is among them;
//! - every alert the webhook receiver got has its recovery after it.
//!
//! `HBMON_CRASH_SEED=N` replays another schedule.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// xorshift64*: a seeded schedule, no crate needed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

const CLIENTS: [&str; 3] = ["www1", "www2", "www3"];

fn flag_of(dir: &Path, tag: &str) -> PathBuf {
    dir.join(format!("flag-{tag}"))
}

fn install_flip(h: &Host, flag: &Path) {
    let dir = h.vardir().join("probes");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("flip");
    std::fs::write(
        &p,
        format!("#!/bin/sh\nexit $(cat {} 2>/dev/null || echo 0)\n", flag.display()),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The ids in a (dead) client's outbox, read with the real sqlite3.
fn outbox_ids(h: &Host) -> Vec<String> {
    let db = h.vardir().join("history.db");
    let out = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg("SELECT id FROM outbox")
        .output()
        .expect("sqlite3 must be installed: make test installs it");
    String::from_utf8_lossy(&out.stdout).lines().map(String::from).collect()
}

/// (host, item, kind) of each webhook received.
type Hooks = Arc<Mutex<Vec<(String, String, String)>>>;

/// A webhook receiver recording (host, item, kind) of every POST.
fn receiver() -> (u16, Hooks) {
    let server = tiny_http::Server::http("127.0.0.1:0").expect("receiver");
    let port = server.server_addr().to_ip().map(|a| a.port()).unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    std::thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = String::new();
            let _ = std::io::Read::read_to_string(req.as_reader(), &mut body);
            let v: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
            let s = |k: &str| v[k].as_str().unwrap_or("?").to_string();
            g.lock().unwrap().push((s("host"), s("item"), s("kind")));
            let _ = req.respond(tiny_http::Response::from_string("ok"));
        }
    });
    (port, got)
}

fn server_events(srv: &Host, host: &str) -> Vec<Value> {
    let body = srv.body(&format!("CLIENTS {host} 100000"));
    let v: Value = serde_json::from_str(&body).expect("CLIENTS JSON");
    v["events"].as_array().cloned().unwrap_or_default()
}

#[test]
fn kills_lose_and_duplicate_nothing_13_crash() {
    let seed: u64 =
        std::env::var("HBMON_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1313);
    eprintln!("crash schedule seed {seed} (HBMON_CRASH_SEED)");
    let mut rng = Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (port, hooks) = receiver();
    let work = format!(
        "group web {}\nival_make_state 0.5s\nival_send_report 1h\nival_check_work 1h\n\
         probe web flip\nfit probe:flip sick >0\nflap 100000 1m\nstorm 100000 1s\n\
         channel hook webhook http://127.0.0.1:{port}/hook\nuser ops hook\n\
         alert web probe:flip sick ops\n",
        CLIENTS.join(" ")
    );
    let mut f = Fleet::new(&["srv", "www1", "www2", "www3"], &work, "");
    let dir = f.dir.path().to_path_buf();
    for tag in CLIENTS {
        std::fs::write(flag_of(&dir, tag), "0\n").unwrap();
        let h = f.hosts.iter().find(|h| h.tag == tag).unwrap();
        install_flip(h, &flag_of(&dir, tag));
    }
    f.start_all();
    for tag in CLIENTS {
        f.host(tag).wait_state(30.0, "probe:flip", |s| item_line(s, "probe:flip").is_some());
    }
    // Items flip on their own while the test kills.
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (stop, dir) = (stop.clone(), dir.clone());
        let mut r = Rng(rng.next() | 1);
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let tag = CLIENTS[r.below(3) as usize];
                let p = flag_of(&dir, tag);
                let on = std::fs::read_to_string(&p).unwrap_or_default().trim() == "1";
                let _ = std::fs::write(&p, if on { "0\n" } else { "1\n" });
                // sleep: random flip pace: the chaos is the point, nothing to await
                std::thread::sleep(Duration::from_millis(150 + r.below(350)));
            }
        })
    };
    let mut victims: Vec<usize> = (0..20).map(|_| 0).chain((0..20).map(|i| 1 + i % 3)).collect();
    for i in (1..victims.len()).rev() {
        victims.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let mut recorded: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let t = Instant::now();
    for v in victims {
        // sleep: random pause between kills: the chaos is the point
        std::thread::sleep(Duration::from_millis(200 + rng.below(800)));
        let h = &mut f.hosts[v];
        h.kill9();
        if v > 0 {
            recorded.entry(h.name.clone()).or_default().extend(outbox_ids(h));
        }
        // sleep: random time dead before restart: the chaos is the point
        std::thread::sleep(Duration::from_millis(rng.below(300)));
        h.start();
    }
    stop.store(true, Ordering::SeqCst);
    flipper.join().unwrap();
    eprintln!("40 kills in {:?}", t.elapsed());
    // A last change per client (sick, then fine) pushes everything out.
    for on in [true, false] {
        for tag in CLIENTS {
            std::fs::write(flag_of(&dir, tag), if on { "1\n" } else { "0\n" }).unwrap();
        }
        let want = if on { " sick " } else { " fine " };
        for tag in CLIENTS {
            f.host(tag).wait_state(30.0, want, |s| {
                item_line(s, "probe:flip").is_some_and(|l| l.contains(want))
            });
        }
    }
    for tag in CLIENTS {
        f.host(tag)
            .wait_state(70.0, "an empty outbox", |s| s.contains("-- outbox 0 queued events\n"));
    }
    f.hosts[0].wait_state(70.0, "all deliveries done", |s| {
        s.contains("-- notify pending 0 held 0 inflight 0 failed 0")
    });

    for tag in CLIENTS {
        let host = format!("{tag}.{DOMAIN}");
        let evs = server_events(&f.hosts[0], &host);
        // The client's own events (the server's heartbeat events are `srv-...`).
        let ids: Vec<String> = evs
            .iter()
            .filter_map(|e| e["id"].as_str().map(String::from))
            .filter(|id| !id.starts_with("srv-"))
            .collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{host}: an event stored twice: {ids:?}");
        // Per boot, ids are consecutive from 1: a hole is a lost event.
        let mut by_boot: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
        for id in &ids {
            let (boot, n) = id.rsplit_once('-').expect("id BOOT-SEQ");
            by_boot.entry(boot.to_string()).or_default().insert(n.parse().expect("seq"));
        }
        for (boot, seqs) in &by_boot {
            let max = *seqs.iter().max().unwrap();
            let want: BTreeSet<u64> = (1..=max).collect();
            let lost: Vec<u64> = want.difference(seqs).copied().collect();
            assert!(lost.is_empty(), "{host} boot {boot}: events {lost:?} lost");
        }
        let all: BTreeSet<String> = ids.into_iter().collect();
        let missing: Vec<&String> =
            recorded.get(&host).map(|r| r.difference(&all).collect()).unwrap_or_default();
        assert!(missing.is_empty(), "{host}: recorded but never stored: {missing:?}");
        let seen = recorded.get(&host).map_or(0, |r| r.len());
        eprintln!(
            "{host}: {} events over {} boots, all stored once ({seen} were in an outbox at a kill)",
            all.len(),
            by_boot.len()
        );
    }
    let hooks = hooks.lock().unwrap().clone();
    for tag in CLIENTS {
        let host = format!("{tag}.{DOMAIN}");
        let kinds: Vec<&str> = hooks
            .iter()
            .filter(|(h, i, _)| *h == host && i == "probe:flip")
            .map(|(_, _, k)| k.as_str())
            .collect();
        assert!(kinds.contains(&"alert"), "{host}: no alert at all: {hooks:?}");
        let last_alert = kinds.iter().rposition(|k| *k == "alert");
        let last_recovery = kinds.iter().rposition(|k| *k == "recovery");
        assert!(last_recovery > last_alert, "{host}: an alert without its recovery: {kinds:?}");
        eprintln!("{host}: {} webhooks", kinds.len());
    }
}
