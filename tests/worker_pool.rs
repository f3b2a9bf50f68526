//! Issue 14: the bounded worker pool. A flood of slow probes (Nagios items
//! running `sleep`) never gets more worker threads than `workers`, counted
//! in /proc/PID/task while it runs; PING, the loop's own items and a name
//! lookup (another kind of job) go on meanwhile; a full queue refuses jobs,
//! gives their items a clear error and counts them in STATE.

mod common;
use common::*;

/// `-- workers KIND busy B/C queued Q/QC done D refused R` as numbers.
fn kind(state: &str, kind: &str) -> Option<[u64; 6]> {
    let l = state.lines().find(|l| l.starts_with(&format!("-- workers {kind} busy ")))?;
    let w: Vec<&str> = l.split_whitespace().collect();
    let pair = |s: &str| -> Option<(u64, u64)> {
        let (a, b) = s.split_once('/')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let (busy, cap) = pair(w.get(4)?)?;
    let (queued, qcap) = pair(w.get(6)?)?;
    Some([busy, cap, queued, qcap, w.get(8)?.parse().ok()?, w.get(10)?.parse().ok()?])
}

/// Threads of `pid` now.
fn tasks(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).expect("task dir").count()
}

/// The pool's own count of its threads (`-- workers size N threads T`).
fn pool_threads(state: &str) -> Option<usize> {
    let l = state.lines().find(|l| l.starts_with("-- workers size "))?;
    l.split_whitespace().nth(5)?.parse().ok()
}

/// Most threads a pool of 4 busy with Nagios items may give the process:
/// each running plugin has a worker and two pipe readers (`probes/exec.rs`),
/// plus the loop and the daemon's other long-lived threads (store, journal).
const MOST_TASKS: usize = 4 * 3 + 10;

/// A solo host whose work has `n` Nagios items that sleep 30 s, each
/// round, plus the inline `uptime`; the conf gets `conf`.
fn flood(n: usize, conf: &str) -> Fleet {
    let mut work = String::from("ival_make_state 1s\nget all uptime\n");
    for i in 0..n {
        work.push_str(&format!("nagios all s{i} /bin/sleep 30\ntimeout nagios:s{i} 60s\n"));
    }
    // A host named by name: every reload starts a lookup job, another kind.
    work.push_str("host other.fleet.test other localhost\n");
    let mut f = Fleet::new(&["solo"], &work, conf);
    f.hosts[0].start();
    f
}

#[test]
fn a_probe_flood_is_bounded_and_the_rest_goes_on() {
    let n = 60;
    let f = flood(n, "workers 4\nworkers_queue 1000\n");
    let h = &f.hosts[0];
    let pid = h.pid().expect("pid");
    // Probes fill their share of the pool (3 of 4) and the rest wait.
    let st = h.wait_state(30.0, "probe flood queued", |s| {
        kind(s, "probe").is_some_and(|k| k[0] == 3 && k[1] == 3 && k[2] >= 10)
    });
    assert!(pool_threads(&st).is_some_and(|t| t <= 4), "{st}");
    let all = tasks(pid);
    assert!(all <= MOST_TASKS && all < n, "{all} threads for {n} slow probes\n{st}");
    // The loop goes on: PING, and the inline item keeps its 1 s cadence.
    assert!(h.cmd("PING").contains("PONG"), "PING during the flood");
    let up = |s: &str| item_line(s, "uptime").map(|l| l.to_string());
    let first = up(&st).expect("uptime item");
    h.wait_state(20.0, "uptime sampled again", |s| up(s).is_some_and(|l| l != first));
    // A lookup (another kind) still gets a worker: a reload's round finishes.
    let before = kind(&st, "lookup").expect("lookup line")[4];
    assert!(h.cmd("WORK_RELOAD").contains("COMMAND DONE"));
    let st = h.wait_state(30.0, "lookup done during the flood", |s| {
        kind(s, "lookup").is_some_and(|k| k[4] > before)
            && s.contains("lookups done")
            && kind(s, "probe").is_some_and(|k| k[0] == 3 && k[2] > 0)
    });
    assert!(pool_threads(&st).is_some_and(|t| t <= 4), "{st}");
    assert!(tasks(pid) <= MOST_TASKS, "{} threads\n{st}", tasks(pid));
    assert_eq!(kind(&st, "probe").unwrap()[5], 0, "nothing refused with room: {st}");
}

#[test]
fn a_full_queue_refuses_and_counts() {
    let f = flood(20, "workers 4\nworkers_queue 2\n");
    let h = &f.hosts[0];
    // 3 run, 2 wait, the other 15 of each round are refused at once.
    let st = h.wait_state(30.0, "refusals counted", |s| {
        kind(s, "probe").is_some_and(|k| k[0] == 3 && k[2] == 2 && k[3] == 2 && k[5] >= 15)
    });
    let total: u64 = st
        .lines()
        .find_map(|l| l.strip_prefix("-- workers size 4 "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("pool line");
    assert!(total >= 15, "pool refusals {total}: {st}");
    // A refused item gets the error, not silence.
    let refused = (0..20)
        .filter_map(|i| item_line(&st, &format!("nagios:s{i}")))
        .filter(|l| l.contains("worker pool full"))
        .count();
    assert!(refused >= 1, "no item shows the refusal: {st}");
    assert!(h.cmd("PING").contains("PONG"));
}

#[test]
fn bad_pool_settings_name_file_and_line() {
    let f = Fleet::new(&["solo"], "", "workers 2\nworkers_queue lots\n");
    let out = f.hosts[0].hbmon(&["start", "-i"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let conf = f.hosts[0].conf.display().to_string();
    let lines = std::fs::read_to_string(&f.hosts[0].conf).unwrap();
    let line_of = |key: &str| lines.lines().position(|l| l.starts_with(key)).unwrap() + 1;
    assert!(
        err.contains(&format!("{conf}:{}", line_of("workers 2")))
            && err.contains("workers: 2 is out of range (4 to 1024)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("{conf}:{}", line_of("workers_queue")))
            && err.contains("'lots' is not a count"),
        "{err}"
    );
}
