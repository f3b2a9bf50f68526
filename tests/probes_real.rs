//! Blocking probes against real things: Debian's monitoring-plugins-basic,
//! shell scripts as `probe:` programs (one that hangs), a local HTTP server,
//! local TCP ports and `ping 127.0.0.1`. Only 127.0.0.1 is ever contacted.

use hbmon::probes::{run_blocking, Sample};
use hbmon::work::model::ProbeSpec;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const PLUGINS: &str = "/usr/lib/nagios/plugins";
const T: Duration = Duration::from_secs(20);

fn plugin(name: &str, args: &[&str]) -> ProbeSpec {
    let path = Path::new(PLUGINS).join(name);
    assert!(
        path.exists(),
        "{} missing: apt-get install -y monitoring-plugins-basic",
        path.display()
    );
    let mut argv = vec![path.to_string_lossy().into_owned()];
    argv.extend(args.iter().map(|s| s.to_string()));
    ProbeSpec::Nagios { argv }
}

fn find<'a>(samples: &'a [Sample], item: &str) -> &'a Sample {
    samples
        .iter()
        .find(|s| s.item == item)
        .unwrap_or_else(|| panic!("no sample {item} in {samples:#?}"))
}

fn nowhere() -> &'static Path {
    Path::new("/nonexistent")
}

#[test]
fn check_load_ok_with_perfdata() {
    let spec = plugin("check_load", &["-w", "1000,1000,1000", "-c", "2000,2000,2000"]);
    let s = run_blocking("nagios:check_load", &spec, nowhere(), T);
    let main = find(&s, "nagios:check_load");
    assert_eq!(main.value, Some(0.0), "{s:#?}");
    assert!(main.message.starts_with("LOAD OK"), "{main:?}");
    assert!(!main.message.contains('|'));
    for label in ["load1", "load5", "load15"] {
        let p = find(&s, &format!("check_load.{label}"));
        assert!(p.value.is_some_and(|v| v >= 0.0), "{p:?}");
        assert!(p.message.contains("warn=1000"), "{p:?}");
    }
}

#[test]
fn check_procs_levels() {
    // There is certainly not exactly one process on this machine.
    let warn = plugin("check_procs", &["-w", "1:1", "-c", "1:100000"]);
    let s = run_blocking("nagios:check_procs", &warn, nowhere(), T);
    assert_eq!(find(&s, "nagios:check_procs").value, Some(1.0), "{s:#?}");
    assert!(find(&s, "check_procs.procs").value.is_some_and(|v| v > 1.0));

    let crit = plugin("check_procs", &["-w", "1:1", "-c", "1:1"]);
    let s = run_blocking("nagios:check_procs", &crit, nowhere(), T);
    assert_eq!(find(&s, "nagios:check_procs").value, Some(2.0), "{s:#?}");

    let ok = plugin("check_procs", &["-w", "1:1000000", "-c", "1:2000000"]);
    let s = run_blocking("nagios:check_procs", &ok, nowhere(), T);
    assert_eq!(find(&s, "nagios:check_procs").value, Some(0.0), "{s:#?}");
}

#[test]
fn check_disk_perfdata_in_bytes() {
    let spec = plugin("check_disk", &["-w", "0%", "-c", "0%", "-p", "/"]);
    let s = run_blocking("nagios:check_disk", &spec, nowhere(), T);
    let main = find(&s, "nagios:check_disk");
    assert!(main.message.starts_with("DISK"), "{main:?}");
    assert_eq!(main.value, Some(0.0), "{s:#?}");
    let root = find(&s, "check_disk./");
    assert!(root.value.is_some_and(|v| v > 0.0), "{root:?}");
}

#[test]
fn plugin_named_without_a_path_is_found_in_the_plugin_dir() {
    let argv = ["check_procs", "-w", "1:1000000", "-c", "1:2000000"];
    let spec = ProbeSpec::Nagios { argv: argv.iter().map(|s| s.to_string()).collect() };
    let s = run_blocking("nagios:procs", &spec, nowhere(), T);
    assert_eq!(find(&s, "nagios:procs").value, Some(0.0), "{s:#?}");
    assert!(find(&s, "procs.procs").value.is_some());
}

#[test]
fn plugin_usage_error_and_missing_plugin() {
    // A bad option: check_load exits 3 (UNKNOWN) with its usage text.
    let spec = plugin("check_load", &["--no-such-option"]);
    let s = run_blocking("nagios:check_load", &spec, nowhere(), T);
    assert_eq!(find(&s, "nagios:check_load").value, Some(3.0), "{s:#?}");

    let spec = ProbeSpec::Nagios { argv: vec![format!("{PLUGINS}/check_nothing_here")] };
    let s = run_blocking("nagios:gone", &spec, nowhere(), T);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].value, None);
    assert!(s[0].error.as_deref().unwrap().contains("cannot run"), "{s:?}");
}

fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Whether a process still runs (a zombie waiting for a reaper that is not
/// ours does not count: it is dead).
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
            state != Some(Some('Z'))
        }
        Err(_) => false,
    }
}

#[test]
fn hanging_probe_and_its_child_are_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("child.pid");
    script(
        dir.path(),
        "hang",
        &format!("sleep 987654 &\necho $! > {}\necho early 1\nwait", pidfile.display()),
    );
    let spec = ProbeSpec::External { program: "hang".into(), args: vec![] };
    let t0 = Instant::now();
    let s = run_blocking("probe:hang", &spec, dir.path(), Duration::from_secs(1));
    let took = t0.elapsed();
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    assert!(took >= Duration::from_secs(1), "took {took:?}");
    assert_eq!(s.len(), 1, "{s:?}");
    assert_eq!(s[0].value, None);
    assert_eq!(s[0].error.as_deref(), Some("timed out after 1s"));
    let pid: u32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    // SIGKILL is delivered at once, but give the kernel a moment to tear down.
    let until = Instant::now() + Duration::from_secs(10);
    while running(pid) && Instant::now() < until {
        // sleep: poll interval while waiting for the killed child to go
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!running(pid), "the probe's child sleep {pid} survived");
}

#[test]
fn external_probe_lines() {
    let dir = tempfile::tempdir().unwrap();
    script(
        dir.path(),
        "demo",
        "echo 'temp 41.5 celsius'\necho 'demo.fans 3'\necho 'broken'\necho 'x notanumber'",
    );
    let spec = ProbeSpec::External { program: "demo".into(), args: vec![] };
    let s = run_blocking("probe:demo", &spec, dir.path(), T);
    assert_eq!(find(&s, "probe:demo").value, Some(0.0));
    assert_eq!(find(&s, "probe:demo").message, "4 values, 2 malformed");
    let temp = find(&s, "demo.temp");
    assert_eq!((temp.value, temp.message.as_str()), (Some(41.5), "celsius"));
    assert_eq!(find(&s, "demo.fans").value, Some(3.0));
    assert!(find(&s, "demo.broken").error.is_some());
    assert!(find(&s, "demo.x").error.as_deref().unwrap().contains("notanumber"));
}

#[test]
fn shipped_mdraid_probe_runs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("probes");
    let spec = ProbeSpec::External { program: "mdraid".into(), args: vec![] };
    let s = run_blocking("probe:mdraid", &spec, &dir, T);
    assert_eq!(find(&s, "probe:mdraid").value, Some(0.0), "{s:#?}");
    assert!(find(&s, "mdraid.arrays").value.is_some());
    assert!(find(&s, "mdraid.degraded").value.is_some());
}

fn http_server() -> u16 {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let port = server.server_addr().to_ip().unwrap().port();
    std::thread::spawn(move || {
        for req in server.incoming_requests() {
            let resp = match req.url() {
                "/ok" => tiny_http::Response::from_string("fine"),
                "/moved" => tiny_http::Response::from_string("")
                    .with_status_code(302)
                    .with_header(tiny_http::Header::from_bytes("Location", "/ok").unwrap()),
                _ => tiny_http::Response::from_string("broken").with_status_code(500),
            };
            let _ = req.respond(resp);
        }
    });
    port
}

#[test]
fn http_200_redirect_and_500() {
    let port = http_server();
    let b = ProbeSpec::Builtin;
    let ok = run_blocking(&format!("http://127.0.0.1:{port}/ok"), &b, nowhere(), T);
    assert!(ok[0].value.is_some_and(|ms| ms >= 0.0), "{ok:?}");
    assert_eq!(ok[0].message, "HTTP 200");
    let item = format!("http:http://127.0.0.1:{port}/moved");
    let moved = run_blocking(&item, &b, nowhere(), T);
    assert_eq!((moved[0].item.as_str(), moved[0].message.as_str()), (item.as_str(), "HTTP 200"));
    let bad = run_blocking(&format!("http:127.0.0.1:{port}/fail"), &b, nowhere(), T);
    assert_eq!(bad[0].value, None);
    assert_eq!(bad[0].error.as_deref(), Some("HTTP 500"));
}

#[test]
fn tcp_open_and_closed_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let open = listener.local_addr().unwrap().port();
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let b = ProbeSpec::Builtin;
    let s = run_blocking(&format!("tcp:127.0.0.1:{open}"), &b, nowhere(), T);
    assert!(s[0].value.is_some_and(|ms| ms >= 0.0), "{s:?}");
    let s = run_blocking(&format!("tcp:127.0.0.1:{closed}"), &b, nowhere(), T);
    assert_eq!(s[0].value, None);
    assert!(s[0].error.as_deref().unwrap().contains("refused"), "{s:?}");
}

/// Whether the kernel lets this process open ICMP datagram sockets: one of
/// its groups is inside net.ipv4.ping_group_range.
fn icmp_sockets_allowed() -> bool {
    let Ok(range) = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range") else {
        return false;
    };
    let r: Vec<u32> = range.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    let mut groups = nix::unistd::getgroups().unwrap_or_default();
    groups.push(nix::unistd::getegid());
    r.len() == 2 && groups.iter().any(|g| (r[0]..=r[1]).contains(&g.as_raw()))
}

#[test]
fn ping_localhost() {
    let s = run_blocking("ping:127.0.0.1", &ProbeSpec::Builtin, nowhere(), T);
    assert_eq!(s.len(), 1);
    assert!(s[0].value.is_some_and(|ms| (0.0..1000.0).contains(&ms)), "{s:?}");
    assert!(s[0].message.contains("3/3 received, 0% loss"), "{s:?}");
    // The path taken must be the one the kernel allows.
    let via = if icmp_sockets_allowed() { "(icmp socket)" } else { "(ping command)" };
    assert!(s[0].message.ends_with(via), "{s:?}");
}

/// The ICMP socket path, whatever the host's ping_group_range: rerun
/// `ping_localhost` in a private network namespace (root only; the sysctl
/// is per namespace, so the host's setting is untouched).
#[test]
fn ping_via_icmp_socket_in_a_private_netns() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("not root: cannot make a network namespace; ping_localhost covers the fallback");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "ip link set lo up && echo '0 2147483647' > /proc/sys/net/ipv4/ping_group_range \
         && exec '{}' --exact ping_localhost --nocapture",
        exe.display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-n", "sh", "-c", &script])
        .output()
        .expect("run unshare");
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
}
