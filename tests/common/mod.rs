//! The test fleet: several real `hbmon` processes, each with its own conf,
//! vardir and 127.X.Y.N address, sharing one set of free ports (each host
//! has its own address, as DESIGN.md section 7 describes). Every
//! integration test builds its hosts with this.
//!
//! On a failing test, dropping a host prints its command, log, stdout and
//! stderr; processes are killed by PID on drop.
#![allow(dead_code)]

pub mod disk;
pub mod http;

// Not every test binary uses them all.
#[allow(unused_imports)]
pub use disk::{fill, is_root, sqlite, sqlite_ro, try_sqlite_ro, Tmpfs};

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_hbmon");

static NET_SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh 127.X.Y.0/24 for one fleet: X from the pid (test binaries and
/// concurrent runs differ), Y from a counter (tests in one binary differ).
pub fn unique_net() -> [u8; 2] {
    let n = NET_SEQ.fetch_add(1, Ordering::SeqCst);
    let x = 10 + (std::process::id() % 240) as u8;
    let y = 1 + (n % 250) as u8;
    [x, y]
}

/// A port number free for TCP and UDP on every given address (and the
/// next one, for the dashboard).
pub fn free_ports(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..200 {
        let Ok(l) = TcpListener::bind(SocketAddr::new(IpAddr::V4(ips[0]), 0)) else { continue };
        let Ok(a) = l.local_addr() else { continue };
        drop(l);
        let p = a.port();
        if p >= 65000 {
            continue;
        }
        let ok = ips.iter().all(|ip| {
            [p, p + 1].iter().all(|&q| {
                let sa = SocketAddr::new(IpAddr::V4(*ip), q);
                TcpListener::bind(sa).is_ok() && UdpSocket::bind(sa).is_ok()
            })
        });
        if ok {
            return p;
        }
    }
    panic!("no free port found");
}

pub struct Host {
    pub name: String,
    pub tag: String,
    pub ip: Ipv4Addr,
    pub port: u16,
    pub dir: PathBuf,
    pub conf: PathBuf,
    pub child: Option<Child>,
    /// Extra conf lines (intervals for tests etc.).
    pub extra_conf: String,
    /// Extra environment for the next `start`.
    pub env: Vec<(String, String)>,
}

impl Host {
    pub fn cmd_addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(self.ip), self.port)
    }
    pub fn vardir(&self) -> PathBuf {
        self.dir.join("var")
    }
    pub fn log_path(&self) -> PathBuf {
        self.dir.join("log/hbmon.log")
    }
    pub fn pid_path(&self) -> PathBuf {
        self.dir.join("run/hbmon.pid")
    }

    /// `hbmon -c CONF ARGS...`, waited for.
    pub fn hbmon(&self, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run hbmon");
        out
    }

    /// Starts `hbmon start -i` in the foreground as a child and waits for
    /// its command port.
    pub fn start(&mut self) {
        self.start_within(10.0);
    }

    /// `start`, waiting up to `secs` for the port (a big work in a debug
    /// build on a loaded machine takes longer to load).
    pub fn start_within(&mut self, secs: f64) {
        assert!(self.child.is_none(), "{} already started", self.name);
        let err = std::fs::File::create(self.dir.join("stderr.log")).expect("stderr file");
        let out = std::fs::File::create(self.dir.join("stdout.log")).expect("stdout file");
        let child = Command::new(BIN)
            .arg("-c")
            .arg(&self.conf)
            .args(["-v", "start", "-i"])
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn hbmon");
        self.child = Some(child);
        self.wait_port_within(secs);
    }

    /// Waits until the command port answers PING (10 s), or fails with the logs.
    pub fn wait_port(&mut self) {
        self.wait_port_within(10.0);
    }

    pub fn wait_port_within(&mut self, secs: f64) {
        let t = Instant::now();
        while t.elapsed().as_secs_f64() < secs {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("{} exited early ({status})\n{}", self.name, self.diag());
                }
            }
            if self.try_cmd("PING").is_some_and(|a| a.contains("PONG")) {
                return;
            }
            // sleep: poll interval while waiting for PING with a deadline
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} did not answer on {}\n{}", self.name, self.cmd_addr(), self.diag());
    }

    /// One command over TCP; None when the port does not answer.
    pub fn try_cmd(&self, line: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.cmd_addr(), Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        s.write_all(format!("{line}\n").as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    pub fn cmd(&self, line: &str) -> String {
        match self.try_cmd(line) {
            Some(a) => a,
            None => panic!("{}: no answer to {line}\n{}", self.name, self.diag()),
        }
    }

    /// The body of a framed answer (panics on COMMAND ERROR).
    pub fn body(&self, line: &str) -> String {
        let a = self.cmd(line);
        let mut lines: Vec<&str> = a.lines().collect();
        assert!(lines.last() == Some(&"COMMAND DONE"), "{line} -> {a}\n{}", self.diag());
        lines.pop();
        lines.remove(0);
        lines.join("\n")
    }

    /// One command through real netcat (`nc -N`).
    pub fn nc(&self, input: &[u8]) -> String {
        nc(self.cmd_addr(), input)
    }

    /// Polls `cond` on STATE until it holds (or panics after `secs`).
    pub fn wait_state(&self, secs: f64, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.try_cmd("STATE").unwrap_or_default();
            if cond(&s) {
                return s;
            }
            if t.elapsed().as_secs_f64() > secs {
                panic!(
                    "{}: waited {secs}s for {what}; last STATE:\n{s}\n{}",
                    self.name,
                    self.diag()
                );
            }
            // sleep: poll interval of wait_state's deadline loop
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn pid(&self) -> Option<i32> {
        if let Some(c) = &self.child {
            return Some(c.id() as i32);
        }
        std::fs::read_to_string(self.pid_path()).ok()?.trim().parse().ok()
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        } else if let Some(pid) = self.pid() {
            signal(pid, libc::SIGKILL);
            wait_gone(pid, 5.0);
        }
    }

    /// SIGTERM (clean stop), then reap.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id() as i32, libc::SIGTERM);
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(10) {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                // sleep: poll interval while waiting for the child to exit after SIGTERM
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Command, log, stdout and stderr: printed when a test fails.
    pub fn diag(&self) -> String {
        let read = |p: PathBuf| std::fs::read_to_string(p).unwrap_or_default();
        format!(
            "--- host {} ({}) command: {BIN} -c {} start -i\n--- conf:\n{}--- log:\n{}--- stdout:\n{}--- stderr:\n{}",
            self.name,
            self.cmd_addr(),
            self.conf.display(),
            read(self.conf.clone()),
            self.log(),
            read(self.dir.join("stdout.log")),
            read(self.dir.join("stderr.log")),
        )
    }

    pub fn write_conf(&self, text: &str) {
        std::fs::write(&self.conf, text).expect("write conf");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.diag());
        }
        self.kill9();
        // A daemonized instance (hbmon start without -i) is not our child.
        if let Some(pid) =
            std::fs::read_to_string(self.pid_path()).ok().and_then(|s| s.trim().parse::<i32>().ok())
        {
            if cmdline_mentions(pid, &self.conf) {
                signal(pid, libc::SIGKILL);
            }
        }
    }
}

/// Is `pid` an hbmon started with this conf (so we only ever kill our own)?
fn cmdline_mentions(pid: i32, conf: &Path) -> bool {
    let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
    let c = conf.to_string_lossy();
    raw.split(|&b| b == 0).any(|a| a == c.as_bytes())
}

pub fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory effects; the pid is one of ours.
    unsafe {
        libc::kill(pid, sig);
    }
}

pub fn alive(pid: i32) -> bool {
    // A zombie still answers kill(0): look at its state too. Every thread's:
    // a leader that is already a zombie while another thread still finishes
    // (a history write in fsync at an abort) still holds the process's
    // files and locks.
    let live = |stat: &Path| match std::fs::read_to_string(stat) {
        Ok(s) => !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    };
    match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(tasks) => tasks.filter_map(|t| t.ok()).any(|t| live(&t.path().join("stat"))),
        Err(_) => live(Path::new(&format!("/proc/{pid}/stat"))),
    }
}

pub fn wait_gone(pid: i32, secs: f64) -> bool {
    let t = Instant::now();
    while t.elapsed().as_secs_f64() < secs {
        if !alive(pid) {
            return true;
        }
        // sleep: poll interval of wait_gone's deadline loop
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Real netcat: `nc -N -w 15 ADDR PORT` with `input` on stdin.
pub fn nc(addr: SocketAddr, input: &[u8]) -> String {
    let mut child = Command::new("nc")
        .args(["-N", "-w", "15", &addr.ip().to_string(), &addr.port().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("netcat (nc) must be installed: make test installs netcat-openbsd");
    if let Some(mut i) = child.stdin.take() {
        let _ = i.write_all(input);
    }
    let out = child.wait_with_output().expect("nc output");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A set of hosts sharing one work-config. Host 0 is the server.
pub struct Fleet {
    /// Dropped first (fields drop in order): hosts are killed and, on a
    /// failure, print their logs before the directory goes.
    pub hosts: Vec<Host>,
    pub net: [u8; 2],
    pub port: u16,
    pub workconf: PathBuf,
    pub dir: tempfile::TempDir,
}

pub const DOMAIN: &str = "fleet.test";

impl Fleet {
    /// Hosts `tags[i]` at 127.X.Y.(i+1); `tags[0]` is the server. The
    /// work-config gets `work_extra` appended; every conf gets `conf_extra`.
    /// Nothing is started.
    pub fn new(tags: &[&str], work_extra: &str, conf_extra: &str) -> Fleet {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = unique_net();
        let ips: Vec<Ipv4Addr> =
            (0..tags.len()).map(|i| Ipv4Addr::new(127, net[0], net[1], i as u8 + 1)).collect();
        let port = free_ports(&ips);
        let workconf = dir.path().join("work");
        let mut work = String::new();
        for (tag, ip) in tags.iter().zip(&ips) {
            work.push_str(&format!("host {tag}.{DOMAIN} {tag} {ip}\n"));
        }
        work.push_str(&format!(
            "server {}\nport {port}\nhb_port {port}\nhttp_port {}\n",
            tags[0],
            port + 1
        ));
        work.push_str(work_extra);
        std::fs::write(&workconf, work).expect("write work");
        let mut hosts = Vec::new();
        for (i, (tag, ip)) in tags.iter().zip(&ips).enumerate() {
            let hdir = dir.path().join(tag);
            std::fs::create_dir_all(&hdir).expect("host dir");
            let mut conf = format!(
                "hostname {tag}.{DOMAIN}\nbind {ip}\nvardir {d}/var\nlogdir {d}/log\nrundir {d}/run\nloglvl debug\n",
                d = hdir.display()
            );
            if i == 0 {
                conf.push_str(&format!("workconf {}\n", workconf.display()));
            } else {
                conf.push_str(&format!("server {}:{port}\n", ips[0]));
            }
            conf.push_str(conf_extra);
            let conf_path = hdir.join("hbmon.conf");
            std::fs::write(&conf_path, &conf).expect("write conf");
            hosts.push(Host {
                name: format!("{tag}.{DOMAIN}"),
                tag: tag.to_string(),
                ip: *ip,
                port,
                dir: hdir,
                conf: conf_path,
                child: None,
                extra_conf: conf_extra.to_string(),
                env: Vec::new(),
            });
        }
        Fleet { hosts, net, port, workconf, dir }
    }

    /// One host with a conf but no work-config: it runs the embedded solo
    /// work on its own address.
    pub fn solo(conf_extra: &str) -> Fleet {
        let f = Fleet::new(&["solo"], "", conf_extra);
        let conf = std::fs::read_to_string(&f.hosts[0].conf).expect("conf");
        let conf: String =
            conf.lines().filter(|l| !l.starts_with("workconf")).map(|l| format!("{l}\n")).collect();
        let conf = format!("{conf}port {p}\nhb_port {p}\nhttp_port {}\n", f.port + 1, p = f.port);
        f.hosts[0].write_conf(&conf);
        let _ = std::fs::remove_file(&f.workconf);
        f
    }

    pub fn server(&self) -> &Host {
        &self.hosts[0]
    }

    pub fn host(&mut self, tag: &str) -> &mut Host {
        self.hosts.iter_mut().find(|h| h.tag == tag).expect("no such host")
    }

    /// Appends lines to the work-config (a later line overrides an earlier).
    pub fn append_work(&self, lines: &str) {
        let text = std::fs::read_to_string(&self.workconf).expect("read the work-config");
        std::fs::write(&self.workconf, text + lines).expect("write the work-config");
    }

    /// `hbmon mkwork` on the server host.
    pub fn mkwork(&self) -> Output {
        let out = self.hosts[0].hbmon(&["mkwork"]);
        assert!(out.status.success(), "mkwork failed: {}", String::from_utf8_lossy(&out.stderr));
        out
    }

    pub fn start_all(&mut self) {
        for h in &mut self.hosts {
            h.start();
        }
    }
}

/// Runs a closure until it returns Some, or panics with `what` after `secs`.
pub fn wait_for<T>(secs: f64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        if t.elapsed().as_secs_f64() > secs {
            panic!("waited {secs}s for {what}");
        }
        // sleep: poll interval of wait_for's deadline loop
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One command sent from a chosen source address (to test access control).
pub fn cmd_from(src: Ipv4Addr, to: SocketAddr, line: &str) -> String {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::new(IpAddr::V4(src), 0).into()).expect("bind source");
    s.connect_timeout(&to.into(), Duration::from_secs(5)).expect("connect");
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(15))).expect("timeout");
    s.write_all(format!("{line}\n").as_bytes()).expect("send");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

/// Starts a process whose name (comm) is `name`: a copy of sleep, so
/// `proc:NAME` items can be driven from a test. Killed on drop.
pub struct NamedProc {
    child: Child,
}

impl NamedProc {
    pub fn start(dir: &Path, name: &str) -> NamedProc {
        let exe = dir.join(name);
        if !exe.exists() {
            std::fs::copy("/bin/sleep", &exe).expect("copy sleep");
        }
        let child = spawn_fresh(Command::new(&exe).arg("600"));
        NamedProc { child }
    }
}

impl Drop for NamedProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line of STATE about `item`, if any (`-- item NAME ...`).
pub fn item_line<'a>(state: &'a str, item: &str) -> Option<&'a str> {
    let want = format!("-- item {item} ");
    state.lines().find(|l| l.starts_with(&want))
}

/// Spawns a program file this test just wrote (a copied binary), retrying
/// while it is busy: another test thread's fork can hold a writable
/// descriptor to it for the instant before that child execs (ETXTBSY).
pub fn spawn_fresh(cmd: &mut Command) -> Child {
    let mut wait = Duration::from_millis(10);
    for _ in 0..8 {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                // sleep: waiting out another process's exec, no condition to poll
                std::thread::sleep(wait);
                wait *= 2;
            }
            r => return r.expect("spawn"),
        }
    }
    cmd.spawn().expect("spawn (still busy)")
}

/// One unsigned HTB heartbeat of `name`, as an hbd-style sender sends it,
/// with a one-hour interval (it stays up while a test counts events).
pub fn hbd_heartbeat(name: &str, seq: i64) -> Vec<u8> {
    use hbmon::wire::Value;
    hbmon::wire::encode(
        "HTB",
        &[
            ("name", Value::Str(name.into())),
            ("ts", Value::Float(hbmon::clock::Now::wall_now())),
            ("seq", Value::Int(seq)),
            ("interval", Value::Float(3600.0)),
            ("ver", Value::Str("test".into())),
        ],
    )
}

/// Sends one such heartbeat and waits for its ACK (the socket's read
/// timeout bounds the wait): true when one came.
pub fn hbd_heartbeat_acked(sock: &UdpSocket, to: SocketAddr, name: &str, seq: i64) -> bool {
    let mut buf = [0u8; 512];
    sock.send_to(&hbd_heartbeat(name, seq), to).is_ok()
        && sock.recv_from(&mut buf).is_ok_and(|(n, _)| n >= 5)
}
