//! The commands that talk to a running daemon or only look at files:
//! `stop`, `reload`, `state`, `cmd`, `test`, `mkwork`. Plain blocking std
//! sockets: these run in the `hbmon` command, never in the daemon.

use crate::conf::Conf;
use crate::daemon::{self, RunFiles};
use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

/// How long `stop` waits for the daemon to be gone.
const STOP_WAIT: Duration = Duration::from_secs(15);

/// Sends one command line and returns the whole answer (the peer closes
/// after answering).
pub fn send_command(addr: SocketAddr, line: &str, timeout: Duration) -> Result<String> {
    let io = |op: &str, e| Error::io(format!("{op} {addr}"), e);
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| io("connect to", e))?;
    s.set_read_timeout(Some(timeout)).map_err(|e| io("set timeout on", e))?;
    s.set_write_timeout(Some(timeout)).map_err(|e| io("set timeout on", e))?;
    s.write_all(format!("{}\n", line.trim_end()).as_bytes()).map_err(|e| io("send to", e))?;
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| io("read answer from", e))?;
    String::from_utf8(out).map_err(|_| Error::Runtime(format!("answer from {addr} is not UTF-8")))
}

/// The local daemon's command address: conf `bind` (loopback when it is a
/// wildcard) and conf `port`, else the work's port, else 50006.
pub fn local_cmd_addr(conf: &Conf) -> SocketAddr {
    let port = conf.port.unwrap_or_else(|| crate::work::load::cached_ports(conf).port);
    let ip = conf
        .bind
        .as_deref()
        .and_then(|b| b.trim_matches(['[', ']']).parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, port)
}

/// Prints an answer's body; COMMAND ERROR makes the exit code 1.
fn print_answer(text: &str) -> i32 {
    match crate::command::parse_answer(text) {
        Ok(body) => {
            if !body.is_empty() {
                println!("{body}");
            }
            0
        }
        Err(reason) => {
            eprintln!("hbmon: {reason}");
            1
        }
    }
}

/// A local command that may take minutes (UPGRADE waits for the fleet).
pub fn long_command(conf: &Conf, line: &str) -> Result<i32> {
    let text = send_command(local_cmd_addr(conf), line, Duration::from_secs(900))?;
    Ok(print_answer(&text))
}

/// The JSON body of the local daemon's answer to `line`; a COMMAND ERROR
/// is a run-time error with its reason. A RELAYed answer is unwrapped.
fn local_json(conf: &Conf, line: &str) -> Result<serde_json::Value> {
    let text = send_command(local_cmd_addr(conf), line, Duration::from_secs(60))?;
    let mut body = crate::command::parse_answer(&text).map_err(Error::Runtime)?;
    if body.starts_with("COMMAND ") {
        body = crate::command::parse_answer(&body).map_err(Error::Runtime)?;
    }
    serde_json::from_str(&body).map_err(|e| Error::Runtime(format!("{line}: not JSON ({e})")))
}

fn level_names() -> Vec<String> {
    crate::work::default_levels().into_iter().map(|l| l.name).collect()
}

/// `hbmon clients [HOST]`.
pub fn clients_table(conf: &Conf, host: Option<&str>) -> Result<i32> {
    let line = format!("CLIENTS {} 0", host.unwrap_or(""));
    let v = local_json(conf, &line)?;
    let levels = level_names();
    let levels: Vec<&str> = levels.iter().map(String::as_str).collect();
    print!("{}", crate::tables::clients(&v, &levels));
    if host.is_some() {
        let names: Vec<String> =
            v["hosts"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
        for name in names {
            println!();
            print!("{}", crate::tables::host_items(&v, &name, crate::clock::Now::wall_now()));
        }
    }
    Ok(0)
}

/// `hbmon events [HOST] [ITEM] [N|IVAL]`.
pub fn events_table(conf: &Conf, filter: &[String]) -> Result<i32> {
    let v = local_json(conf, &format!("CLIENTS {}", filter.join(" ")))?;
    print!("{}", crate::tables::events(&v));
    Ok(0)
}

/// `hbmon hist HOST [ITEM] [IVAL]`: HIST here when HOST is this host, else
/// RELAY through this host (the server).
pub fn hist_table(conf: &Conf, host: &str, rest: &[String]) -> Result<i32> {
    let is_ival = |a: &str| {
        let l = a.to_ascii_lowercase();
        ["h", "d", "w", "m", "y", "hour", "day", "week", "month", "year"].contains(&l.as_str())
    };
    let ival = rest.iter().find(|a| is_ival(a)).map(|a| a[..1].to_ascii_uppercase());
    let item = rest.iter().find(|a| !is_ival(a));
    let ival = ival.unwrap_or_else(|| "H".into());
    let me = crate::hostname::of_conf(conf);
    let local = host.eq_ignore_ascii_case(&me) || me.split('.').next() == Some(host);
    let item = item.map(String::as_str).unwrap_or("");
    let line = if local {
        format!("HIST {ival} {me} {item}")
    } else {
        format!("RELAY {host} HIST {ival} {item}")
    };
    let v = local_json(conf, line.trim_end())?;
    print!("{}", crate::tables::hist(&v));
    Ok(0)
}

pub fn local_command(conf: &Conf, line: &str) -> Result<i32> {
    let addr = local_cmd_addr(conf);
    let text = send_command(addr, line, Duration::from_secs(30))?;
    Ok(print_answer(&text))
}

/// `hbmon cmd HOST COMMAND...`: prints the framed answer as it came.
pub fn cmd(conf: &Conf, host: &str, line: &str) -> Result<i32> {
    let default_port = conf.port.unwrap_or_else(|| crate::work::load::cached_ports(conf).port);
    let addr = crate::work::addr::parse_host_port(host, default_port)
        .ok_or_else(|| Error::Usage(format!("{host}: not a host, host:port or address")))?;
    let text = send_command(addr, line, Duration::from_secs(60))?;
    print!("{text}");
    Ok(if text.lines().last().is_some_and(|l| l.starts_with("COMMAND ERROR")) { 1 } else { 0 })
}

/// The running daemon's pid: the pid file's when that process lives, else
/// the holder of the vardir's lock (the pid file may have been deleted).
pub fn daemon_pid(conf: &Conf) -> Option<i32> {
    let files = RunFiles::of(conf);
    daemon::read_pid(&files)
        .filter(|p| daemon::process_alive(*p))
        .or_else(|| crate::vardir::holder(&conf.vardir).filter(|p| daemon::process_alive(*p)))
}

fn not_running(conf: &Conf) -> Result<i32> {
    eprintln!(
        "hbmon: not running (no live pid in {}, nobody holds {})",
        conf.pid_file().display(),
        crate::vardir::lock_path(&conf.vardir).display()
    );
    Ok(1)
}

/// `hbmon stop`: STOP with the secret; if the port does not answer, SIGTERM.
/// The daemon is found by its pid file, else by the vardir's lock, else (no
/// pid at all, e.g. another pid namespace) by its command port and the
/// secret. Waits until the process is gone.
pub fn stop(conf: &Conf) -> Result<i32> {
    let files = RunFiles::of(conf);
    let pid = daemon_pid(conf);
    let by_command = daemon::read_secret(&files).and_then(|secret| {
        let text =
            send_command(local_cmd_addr(conf), &format!("STOP {secret}"), Duration::from_secs(5))?;
        crate::command::parse_answer(&text).map_err(Error::Runtime)
    });
    let Some(pid) = pid else {
        if by_command.is_err() {
            return not_running(conf);
        }
        // Stopped by the port alone: gone once the port no longer answers.
        let start = std::time::Instant::now();
        while start.elapsed() < STOP_WAIT {
            if send_command(local_cmd_addr(conf), "PING", Duration::from_secs(1)).is_err() {
                println!("hbmon: stopped (by the command port; no pid known)");
                return Ok(0);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        return Err(Error::Runtime(format!(
            "the daemon on {} still answers after {}s",
            local_cmd_addr(conf),
            STOP_WAIT.as_secs()
        )));
    };
    if let Err(e) = by_command {
        log::info!("STOP over the command port failed ({e}); sending SIGTERM to {pid}");
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGTERM);
    }
    if daemon::wait_gone(pid, STOP_WAIT) {
        println!("hbmon: stopped (pid {pid})");
        Ok(0)
    } else {
        Err(Error::Runtime(format!("pid {pid} is still running after {}s", STOP_WAIT.as_secs())))
    }
}

/// `hbmon reload`: SIGHUP to the daemon.
pub fn reload(conf: &Conf) -> Result<i32> {
    let Some(pid) = daemon_pid(conf) else {
        return not_running(conf);
    };
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGHUP)
        .map_err(|e| Error::io(format!("SIGHUP to {pid}"), e.into()))?;
    println!("hbmon: asked pid {pid} to reload");
    Ok(0)
}

/// `hbmon test`: checks the conf and the work; prints what would run.
pub fn test(conf: &Conf, verbose: bool) -> Result<i32> {
    let host = crate::hostname::of_conf(conf);
    // On the server the work-config is checked as mkwork checks it (every
    // problem as file:line, exit 2), even while older work-files still run.
    let workconf = match conf.file.is_some() && crate::work::load::conf_says_server(conf, &host) {
        true if conf.workconf.exists() => {
            let works = crate::work::load(&conf.workconf)?;
            Some(format!("workconf {} ok ({} hosts)", conf.workconf.display(), works.len()))
        }
        _ => None,
    };
    let (work, origin) = crate::work::load::load_work(conf, &host)?;
    let work = crate::work::load::apply_conf_overrides(conf, work);
    println!("hostname {host}");
    println!("roles {}", crate::state::roles_text(work.roles));
    println!("work {origin}");
    if let Some(w) = workconf {
        println!("{w}");
    }
    println!("server {} {}:{}", work.server.host, work.server.address, work.server.ports.port);
    println!("command port {}", local_cmd_addr(conf));
    if work.roles.server {
        println!("heartbeat port {}/udp", work.ports.hb_port);
    }
    if work.roles.pmaker {
        println!("dashboard port {}/tcp", work.ports.http_port);
    }
    if verbose {
        match &conf.file {
            Some(f) => println!("conf {}", f.display()),
            None => println!("conf (embedded default)"),
        }
        for (k, p) in [
            ("vardir", conf.vardir.clone()),
            ("logdir", conf.logdir.clone()),
            ("rundir", conf.rundir.clone()),
            ("log", conf.log_file()),
            ("pid", conf.pid_file()),
            ("lock", conf.lock_file()),
            ("vardir-lock", crate::vardir::lock_path(&conf.vardir)),
            ("stop-secret", conf.stop_file()),
            ("history", conf.history_db()),
            ("server-db", conf.server_db()),
            ("works", conf.works_dir()),
            ("work-cache", conf.work_cache()),
            ("workconf", conf.workconf.clone()),
            ("probes", conf.probes_dir()),
            ("journal", conf.journal_path()),
        ] {
            println!("path {k} {}", p.display());
        }
    }
    println!("items {}", work.items.len());
    for it in &work.items {
        let fit = it.fit.as_ref().map(|f| f.source.as_str()).unwrap_or("-");
        println!("item {} fit {fit}", it.name);
    }
    Ok(0)
}

/// `hbmon mkwork`.
pub fn mkwork(conf: &Conf, opts: &crate::work::mkwork::MkworkOpts) -> Result<i32> {
    let changes = crate::work::mkwork::mkwork(opts)?;
    print!("{}", crate::work::mkwork::report_text(&changes, opts.verbose, opts.dry_run));
    let changed = changes.iter().any(|(_, c)| *c != crate::work::mkwork::Change::Unchanged);
    if changed && !opts.dry_run && opts.out == conf.works_dir() {
        poke_daemon(conf);
    }
    Ok(0)
}

/// After mkwork wrote the works of a running server: WORK_RELOAD on its
/// command port, so it reloads in place at once (its `ival_check_work` poll
/// would notice later anyway). Nothing answering is fine: the next start
/// reads the new files. The port, not a signal: a stale pid file must never
/// make us signal some other process.
fn poke_daemon(conf: &Conf) {
    let addr = local_cmd_addr(conf);
    let Ok(text) = send_command(addr, "WORK_RELOAD", Duration::from_secs(3)) else { return };
    match crate::command::parse_answer(&text) {
        Ok(_) => println!("hbmon: the running daemon on {addr} reloads its work"),
        Err(e) => eprintln!("hbmon: the daemon on {addr} did not reload ({e}); it will notice within ival_check_work"),
    }
}
