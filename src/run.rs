//! `hbmon start`: parse and validate first (conf, name, work), then fork,
//! lock, log, bind, build the role parts and run the loop; HUP/WORK_RELOAD
//! re-read conf and work without a restart. Which work a host runs:
//! - no conf file: the embedded solo work (all roles, on 127.0.0.1);
//! - conf `server` unset or naming this host: this host is the server and
//!   reads `$vardir/works/<host>.json` (made by `hbmon mkwork`, or made here
//!   from `workconf` when missing);
//! - otherwise a client: its cached `$vardir/work.json`, else a bootstrap
//!   work that knows only the server, until the server sends the real one.

use crate::conf::Conf;
use crate::daemon::{self, ReadyPipe};
use crate::error::{Error, Result};
use crate::event_loop::{self, EventLoop, Exit, Sockets};
use crate::reexec;
use crate::state::{Bound, Counters, Effects, Now, State};
use crate::work::model::{Endpoint, Ports, Roles, Work};
use crate::work::version::{self, Version};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

/// The host's canonical name.
pub fn hostname(conf: &Conf) -> String {
    crate::hostname::canonical(conf.hostname.as_deref(), conf.domain.as_deref())
}

/// Is this host the server by its conf?
pub fn conf_says_server(conf: &Conf, host: &str) -> bool {
    match conf.server.as_deref() {
        None => true,
        Some(s) => s.eq_ignore_ascii_case(host),
    }
}

/// The work this host runs and where it came from (for `hbmon test` and the log).
pub fn load_work(conf: &Conf, host: &str) -> Result<(Work, String)> {
    if conf.file.is_none() {
        return Ok((crate::work::solo(host)?, "embedded solo work".into()));
    }
    if conf_says_server(conf, host) {
        let path = conf.works_dir().join(format!("{host}.json"));
        if !path.exists() && conf.workconf.exists() {
            let opts = crate::work::mkwork::MkworkOpts {
                workconf: conf.workconf.clone(),
                out: conf.works_dir(),
                force: false,
                verbose: false,
                dry_run: false,
            };
            crate::work::mkwork::mkwork(&opts)?;
        }
        if path.exists() {
            return Ok((read_work_file(&path)?, path.display().to_string()));
        }
        if conf.server.is_none() {
            return Ok((crate::work::solo(host)?, "embedded solo work (no work-file)".into()));
        }
        return Err(Error::Usage(format!(
            "{host} is the server but has no work-file {} and no work-config {}: write one and run `hbmon mkwork`",
            path.display(),
            conf.workconf.display()
        )));
    }
    let cache = conf.work_cache();
    if cache.exists() {
        match read_work_file(&cache) {
            Ok(w) if w.host.eq_ignore_ascii_case(host) => {
                return Ok((w, format!("{} (cached)", cache.display())))
            }
            Ok(w) => log::warn!("ignoring cached work for {} (this host is {host})", w.host),
            Err(e) => log::error!("ignoring unreadable cached work: {e}"),
        }
    }
    Ok((bootstrap_work(conf, host)?, "bootstrap (waiting for the server's work)".into()))
}

/// A daemon's check of its cached work before using it: a cache that does
/// not parse is moved aside (`work.json.corrupt-<time>`) and reported (log,
/// and a notice the client raises as its `store` item), never silently
/// replaced by the bootstrap work.
fn check_work_cache(conf: &Conf, host: &str) {
    let cache = conf.work_cache();
    if conf.file.is_none() || conf_says_server(conf, host) || !cache.exists() {
        return;
    }
    let Err(e) = read_work_file(&cache) else { return };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let aside = crate::dbfile::aside_name(&cache, now);
    let moved = match std::fs::rename(&cache, &aside) {
        Ok(()) => format!("moved to {}", aside.display()),
        Err(m) => format!("could not move it aside: {m}"),
    };
    let notice = format!("cached work is corrupt ({e}); {moved}; waiting for the server's work");
    log::error!("{notice}");
    crate::vardir::notice(notice);
}

pub fn read_work_file(path: &Path) -> Result<Work> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("read work-file {}", path.display()), e))?;
    parse_work_json(&text).map_err(|e| Error::Usage(format!("work-file {}: {e}", path.display())))
}

/// Parses a work-file's JSON and checks its version.
pub fn parse_work_json(text: &str) -> std::result::Result<Work, String> {
    let w: Work = serde_json::from_str(text).map_err(|e| format!("bad work JSON: {e}"))?;
    if w.version != crate::work::model::WORK_VERSION {
        return Err(format!(
            "work version {} (this hbmon reads {})",
            w.version,
            crate::work::model::WORK_VERSION
        ));
    }
    Ok(w)
}

/// A client's work before the server has sent one: no items, the server from conf.
pub fn bootstrap_work(conf: &Conf, host: &str) -> Result<Work> {
    let server = conf.server.clone().unwrap_or_default();
    // Until the work says otherwise, one port is the fleet's: the conf's
    // `port` is the server's too (`server ADDRESS` reaches ADDRESS:P), and
    // the port of `server ADDRESS:P` is ours too.
    let d = Ports::default();
    let (address, server_port) = split_host_port(&server, conf.port.unwrap_or(d.port));
    let hb_port = conf.hb_port.unwrap_or(d.hb_port);
    let ports = Ports { port: conf.port.unwrap_or(server_port), hb_port, ..d };
    Ok(Work {
        version: crate::work::model::WORK_VERSION,
        host: host.to_string(),
        tag: host.split('.').next().unwrap_or(host).to_string(),
        address: conf.bind.clone().unwrap_or_else(|| host.to_string()),
        roles: Roles { client: true, server: false, pmaker: false },
        ports,
        server: Endpoint {
            host: address.clone(),
            tag: address.clone(),
            address,
            ports: Ports { port: server_port, ..ports },
        },
        pmaker: None,
        intervals: Default::default(),
        levels: crate::work::default_levels(),
        nagios_map: crate::work::default_nagios_map(),
        items: Vec::new(),
        server_part: None,
        pmaker_part: None,
    })
}

/// `name`, `name:port`, `[v6]:port` -> (address, port).
fn split_host_port(s: &str, default_port: u16) -> (String, u16) {
    if let Ok(sa) = s.parse::<SocketAddr>() {
        return (sa.ip().to_string(), sa.port());
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse::<u16>() {
            Ok(p) => (h.to_string(), p),
            Err(_) => (s.to_string(), default_port),
        },
        _ => (s.trim_matches(['[', ']']).to_string(), default_port),
    }
}

/// Does a conf `server` value name a port (`addr:port`, `[v6]:port`)?
fn has_port(s: &str) -> bool {
    s.parse::<SocketAddr>().is_ok()
        || s.rsplit_once(':').is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok())
}

/// Conf keys override the work on this host (ports, intervals, server address).
pub fn apply_conf_overrides(conf: &Conf, mut w: Work) -> Work {
    let is_server = w.roles.server;
    if let Some(p) = conf.port {
        w.ports.port = p;
        if is_server {
            w.server.ports.port = p;
        }
    }
    if let Some(p) = conf.hb_port {
        w.ports.hb_port = p;
        if is_server {
            w.server.ports.hb_port = p;
        }
    }
    if let Some(p) = conf.http_port {
        w.ports.http_port = p;
    }
    // A server bound to one address is reached there (the solo work says 127.0.0.1).
    if let Some(ip) = conf.bind.as_deref().and_then(|b| b.parse::<IpAddr>().ok()) {
        if is_server && !ip.is_unspecified() {
            w.server.address = ip.to_string();
            w.address = ip.to_string();
        }
    }
    if let Some(s) = conf.server.as_deref().filter(|_| !is_server) {
        let (addr, port) = split_host_port(s, w.server.ports.port);
        if addr.parse::<IpAddr>().is_ok() {
            w.server.address = addr;
        }
        if has_port(s) {
            w.server.ports.port = port;
        } else {
            // `server ADDRESS` with a fleet-wide `port`/`hb_port` in the
            // conf: the server listens there too, unless the work names a
            // port of its own (anything but the default).
            let d = Ports::default();
            match conf.port {
                Some(p) if w.server.ports.port == d.port => w.server.ports.port = p,
                _ => {}
            }
            match conf.hb_port {
                Some(p) if w.server.ports.hb_port == d.hb_port => w.server.ports.hb_port = p,
                _ => {}
            }
        }
    }
    let iv = &mut w.intervals;
    for (k, v) in &conf.intervals {
        match k.as_str() {
            "ival_heartbeat" => iv.heartbeat = *v,
            "ival_make_state" => iv.make_state = *v,
            "ival_send_report" => iv.send_report = *v,
            "ival_check_work" => iv.check_work = *v,
            "ival_keep_events" => iv.keep_events = *v,
            "ival_keep_history" => iv.keep_history = *v,
            "ival_renotify" => iv.renotify = *v,
            "ival_server_dead" => iv.server_dead = *v,
            "ival_deadman" => iv.deadman = *v,
            "ival_upgrade_check" => iv.upgrade_check = *v,
            "grace" => iv.grace = *v,
            "missed" => iv.missed = *v as u32,
            "hbd_senders" => iv.hbd_senders = *v as u32,
            _ => {}
        }
    }
    w
}

/// Ports from the cached or generated work, for commands that run without a
/// daemon (`hbmon state`, `hbmon cmd`).
pub fn cached_ports(conf: &Conf) -> Ports {
    let host = hostname(conf);
    match load_work(conf, &host) {
        Ok((w, _)) => apply_conf_overrides(conf, w).ports,
        Err(_) => Ports::default(),
    }
}

/// The address this host listens on: conf `bind`, else all addresses.
fn bind_ip(conf: &Conf) -> Result<IpAddr> {
    match conf.bind.as_deref() {
        None => Ok(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
        Some(b) => b
            .trim_matches(['[', ']'])
            .parse::<IpAddr>()
            .map_err(|_| Error::Usage(format!("bind {b}: not an IP address"))),
    }
}

fn bind_sockets(conf: &Conf, work: &Work) -> Result<Sockets> {
    let ip = bind_ip(conf)?;
    let cmd = SocketAddr::new(ip, work.ports.port);
    let listener = std::net::TcpListener::bind(cmd)
        .map_err(|e| Error::io(format!("listen on {cmd} (command port)"), e))?;
    let udp_server =
        if work.roles.server { Some(bind_udp_server(ip, work.ports.hb_port)?) } else { None };
    let udp_client = Some(bind_udp_client(ip)?);
    Ok(Sockets {
        listener,
        udp_server,
        udp_client,
        bind_ip: Some(ip).filter(|i| !i.is_unspecified()),
    })
}

fn bind_udp_server(ip: IpAddr, port: u16) -> Result<std::net::UdpSocket> {
    let a = SocketAddr::new(ip, port);
    let s = std::net::UdpSocket::bind(a)
        .map_err(|e| Error::io(format!("bind {a}/udp (heartbeats)"), e))?;
    // A big receive buffer rides out bursts of 100,000 hosts' heartbeats.
    let _ = nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::RcvBuf, &(8 << 20));
    Ok(s)
}

fn bind_udp_client(ip: IpAddr) -> Result<std::net::UdpSocket> {
    let a = SocketAddr::new(ip, 0);
    let s =
        std::net::UdpSocket::bind(a).map_err(|e| Error::io(format!("bind {a}/udp (client)"), e))?;
    let _ = s.set_broadcast(true);
    if let Err(e) = crate::client::heartbeat::enable_timestamps(&s) {
        log::info!("no SO_TIMESTAMP on the heartbeat socket ({e}); RTT from the loop's clock");
    }
    Ok(s)
}

/// Starts the daemon; returns when it stops (in the foreground, or in the
/// daemon process). Errors before the fork reach the terminal directly.
pub fn start(conf: Conf, interactive: bool) -> Result<()> {
    let host = hostname(&conf);
    check_work_cache(&conf, &host);
    // The version is read before the file: a work-file replaced in between
    // then looks newer than what runs, and is loaded again by the poll.
    let lm = work_version(&conf, &host);
    let (work, origin) = load_work(&conf, &host)?;
    let work = apply_conf_overrides(&conf, work);
    // Resolved before the fork's `chdir /` (see reexec.rs).
    let plan = reexec::Plan::at_start(conf.file.as_deref());
    event_loop::block_signals()?;
    // A daemon that re-executed itself (SIGUSR1) is already detached: it
    // must not fork again, so its pid stays what the init system knows.
    let reexeced = std::env::var_os(reexec::REEXEC_ENV).is_some();
    if reexeced {
        std::env::remove_var(reexec::REEXEC_ENV);
    }
    let mut ready = if interactive || reexeced { None } else { Some(daemon::daemonize()?) };
    let mut run = (conf, host, work, lm, origin);
    loop {
        let (conf, host, work, lm, origin) = run;
        let again = conf.clone();
        let res = run_daemon(conf, host, (work, lm), origin, interactive, &mut ready, plan.clone());
        if let (Err(e), Some(r)) = (&res, ready.take()) {
            // The parent waiting on the pipe reports it and exits with its code.
            r.fail_error(e);
            return Ok(());
        }
        match res {
            Ok(Exit::Reexec) => {
                let why = match &plan {
                    Ok(p) => {
                        if !interactive {
                            std::env::set_var(reexec::REEXEC_ENV, "1");
                        }
                        p.exec()
                    }
                    Err(e) => e.clone(),
                };
                // Still here: the exec failed. Run on rather than vanish.
                std::env::remove_var(reexec::REEXEC_ENV);
                log::error!("SIGUSR1: re-exec failed ({why}); running on");
                let host = hostname(&again);
                let lm = work_version(&again, &host);
                let (work, origin) = load_work(&again, &host)?;
                let work = apply_conf_overrides(&again, work);
                run = (again, host, work, lm, origin);
            }
            Ok(Exit::Stop) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

fn run_daemon(
    conf: Conf,
    host: String,
    (work, lm): (Work, Version),
    origin: String,
    interactive: bool,
    ready: &mut Option<ReadyPipe>,
    plan: std::result::Result<reexec::Plan, String>,
) -> Result<Exit> {
    let files = crate::daemon::RunFiles::of(&conf);
    let lock = daemon::take_lock(&files)?;
    // One daemon per vardir, whatever its rundir.
    let vardir_lock = crate::vardir::lock(&conf.vardir)?;
    init_logging(&conf, interactive)?;
    // Work-files carry channel tokens: older ones made world-readable are tightened.
    for r in
        [crate::vardir::tighten_dir(&conf.works_dir()), crate::vardir::tighten(&conf.work_cache())]
    {
        if let Err(e) = r {
            log::error!("{e}");
        }
    }
    let sockets = bind_sockets(&conf, &work)?;
    let bound = Bound {
        cmd: sockets.listener.local_addr().map_err(|e| Error::io("listener address", e))?,
        udp: match &sockets.udp_server {
            Some(u) => Some(u.local_addr().map_err(|e| Error::io("udp address", e))?),
            None => None,
        },
        http: None,
    };
    let mut el = EventLoop::new(sockets)?;
    let now = el.now();
    let secret = daemon::read_secret(&files)?;
    let mut own_addrs = Vec::new();
    if let Ok(ip) = bind_ip(&conf) {
        if !ip.is_unspecified() {
            own_addrs.push(ip);
        }
    }
    if let Ok(ip) = work.address.parse::<IpAddr>() {
        own_addrs.push(ip);
    }
    let work_lm = settle_version(&conf, &host, &work, lm);
    // Finishes or undoes an upgrade a SIGKILL interrupted (upgrade/watch.rs).
    let exe = plan.as_ref().ok().map(|p| p.exe.clone());
    let (last, report) = crate::upgrade::watch::recover(&conf.vardir, exe.as_deref());
    let mut st = State {
        conf,
        hostname: host,
        work,
        work_lm,
        started: now.wall,
        secret,
        counters: Counters::default(),
        bound,
        client: None,
        server: None,
        pmaker: None,
        stop: false,
        reload: false,
        own_addrs,
        reexec: plan,
        upgrade: crate::upgrade::Local { last, report, ..Default::default() },
        wake: el.wake(),
    };
    let mut fx = Effects::default();
    build_parts(&mut st, now, &mut fx)?;
    if let (Some(why), Some(c)) = (st.upgrade.report.take(), st.client.as_mut()) {
        log::error!("upgrade rolled back: {why}");
        c.set_item("upgrade", None, "", &format!("rolled back: {why}"), now, &mut fx);
    }
    log::info!(
        "hbmon {} started as {} ({}) on {}; work: {origin}",
        crate::VERSION,
        st.hostname,
        st.roles_text(),
        st.bound.cmd
    );
    if !interactive {
        daemon::detach_stdio()?;
    }
    if let Some(r) = ready.take() {
        r.ready();
    }
    // Sockets bound, work loaded, parts built: now systemd may call us up.
    let notifier = crate::systemd::Notifier::from_env();
    notifier.send(crate::systemd::Note::Ready);
    el.set_notifier(notifier);
    let exit = el.run(&mut st, &mut fx, &mut reload)?;
    el.notifier().send(crate::systemd::Note::Stopping);
    let now = el.now();
    shutdown_parts(&mut st, now, &mut fx);
    el.flush(&mut fx);
    log::info!("hbmon stopping ({exit:?})");
    drop(el);
    drop(vardir_lock);
    drop(lock);
    Ok(exit)
}

fn init_logging(conf: &Conf, interactive: bool) -> Result<()> {
    let target = if interactive {
        crate::logger::Target::Stderr
    } else {
        match &conf.log {
            crate::conf::LogTarget::Syslog => crate::logger::Target::Syslog,
            _ => crate::logger::Target::File {
                path: conf.log_file(),
                rotate_num: conf.rotate.0,
                rotate_ival_secs: conf.rotate.1,
            },
        }
    };
    crate::logger::init(target, conf.loglvl.filter())
}

/// The version of the work `load_work` would read (see `work::version`):
/// the server's work-file's, or the client's cache's (stamped with the
/// server's version when it was written); 0 when there is none.
pub fn work_version(conf: &Conf, host: &str) -> Version {
    if conf.file.is_none() {
        return 0;
    }
    let path = if conf_says_server(conf, host) {
        conf.works_dir().join(format!("{host}.json"))
    } else {
        conf.work_cache()
    };
    version::of_file(&path).unwrap_or(0)
}

/// A version for the work actually loaded: a work-file mkwork made during
/// the load is read now; the embedded work was "made" when it was loaded;
/// a client's bootstrap work has none (any served work is newer).
fn settle_version(conf: &Conf, host: &str, work: &Work, lm: Version) -> Version {
    match lm {
        0 if work.roles.server => match work_version(conf, host) {
            0 => version::of_time(std::time::SystemTime::now()),
            v => v,
        },
        v => v,
    }
}

/// Creates or drops the client and server parts to match the work's roles.
fn build_parts(st: &mut State, now: Now, fx: &mut Effects) -> Result<()> {
    let roles = st.work.roles;
    if roles.server && st.server.is_none() {
        st.server = Some(crate::server::Server::start(st, now, fx)?);
    } else if !roles.server {
        if let Some(mut s) = st.server.take() {
            s.shutdown(now, fx);
        }
    }
    if roles.pmaker && st.pmaker.is_none() {
        st.pmaker = Some(crate::pagemaker::Pagemaker::start(&st.conf, &st.work)?);
    } else if !roles.pmaker {
        // Dropping it stops its pool and closes the port.
        st.pmaker = None;
    }
    if roles.client && st.client.is_none() {
        st.client = Some(crate::client::Client::start(st, now, fx)?);
    } else if !roles.client {
        if let Some(mut c) = st.client.take() {
            c.shutdown(now, fx);
        }
    }
    Ok(())
}

fn shutdown_parts(st: &mut State, now: Now, fx: &mut Effects) {
    if let Some(c) = st.client.as_mut() {
        c.shutdown(now, fx);
    }
    if let Some(s) = st.server.as_mut() {
        s.shutdown(now, fx);
    }
}

/// HUP and WORK_RELOAD: re-read the conf (kept as it was when it has an
/// error) and the work, then tell the parts.
fn reload(st: &mut State, el: &mut EventLoop, now: Now, fx: &mut Effects) {
    if std::mem::take(&mut fx.reload) {
        st.reload = true;
    }
    if let Some((work, lm)) = fx.new_work.take() {
        let work = apply_conf_overrides(&st.conf, work);
        st.work_lm = lm;
        // At every start the client fetches its work; the cached one is
        // usually current, and then there is nothing to install or tell.
        if work == st.work {
            log::debug!("the server's work is the one we run (lm {lm})");
        } else {
            log::info!("new work from the server (lm {lm})");
            install_work(st, work, now, fx);
        }
        if !st.reload {
            return;
        }
    }
    let conf = match &st.conf.file {
        Some(f) => match crate::conf::load(Some(f)) {
            Ok(mut c) => {
                c.loglvl = st.conf.loglvl.max(c.loglvl);
                c
            }
            Err(e) => {
                log::error!("reload: conf not changed: {e}");
                st.conf.clone()
            }
        },
        None => st.conf.clone(),
    };
    crate::logger::set_level(conf.loglvl.filter());
    let host = hostname(&conf);
    check_work_cache(&conf, &host);
    let lm = work_version(&conf, &host);
    let work = match load_work(&conf, &host) {
        Ok((w, origin)) => {
            log::info!("reload: work from {origin}");
            apply_conf_overrides(&conf, w)
        }
        Err(e) => {
            log::error!("reload: work not changed: {e}");
            return;
        }
    };
    let had_server = st.work.roles.server;
    st.conf = conf;
    st.work_lm = settle_version(&st.conf, &host, &work, lm);
    st.hostname = host;
    install_work(st, work, now, fx);
    if st.work.roles.server != had_server || (st.work.roles.server && !el.has_udp_server()) {
        let udp = if st.work.roles.server {
            match bind_ip(&st.conf).and_then(|ip| bind_udp_server(ip, st.work.ports.hb_port)) {
                Ok(s) => Some(s),
                Err(e) => {
                    log::error!("reload: {e}");
                    None
                }
            }
        } else {
            None
        };
        let client = bind_ip(&st.conf).and_then(bind_udp_client).ok();
        if let Err(e) = el.set_udp(udp, client) {
            log::error!("reload: {e}");
        }
    }
}

/// Puts a new work in place (a reload, or a client that fetched a new
/// work) and lets the parts adapt without losing their state.
pub fn install_work(st: &mut State, work: Work, now: Now, fx: &mut Effects) {
    st.work = work;
    if let Err(e) = build_parts(st, now, fx) {
        log::error!("reload: {e}");
    }
    let (work, conf) = (st.work.clone(), st.conf.clone());
    if let Some(c) = st.client.as_mut() {
        c.reload(&conf, &work, now, fx);
    }
    if let Some(s) = st.server.as_mut() {
        s.reload(&conf, &work, st.work_lm, now, fx);
    }
    if let Some(p) = st.pmaker.as_ref() {
        p.reload(&conf, &work);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> Conf {
        crate::conf::parse(Path::new("/x/conf"), text).expect("conf")
    }

    #[test]
    fn a_conf_port_is_the_servers_until_the_work_names_one() {
        let c = conf("server 127.0.0.9\nport 6001\nhb_port 6002\n");
        let w = bootstrap_work(&c, "c1.example.org").expect("bootstrap");
        assert_eq!((w.server.ports.port, w.server.ports.hb_port), (6001, 6002));
        // A served work with default ports: the conf's still hold.
        let served = Work { server: Endpoint { ports: Ports::default(), ..w.server.clone() }, ..w };
        let o = apply_conf_overrides(&c, served.clone());
        assert_eq!((o.server.ports.port, o.server.ports.hb_port), (6001, 6002));
        // The work naming its own port wins; `server ADDRESS:PORT` wins over both.
        let mut named = served;
        named.server.ports.port = 7000;
        assert_eq!(apply_conf_overrides(&c, named.clone()).server.ports.port, 7000);
        let c = conf("server 127.0.0.9:8000\nport 6001\n");
        assert_eq!(apply_conf_overrides(&c, named).server.ports.port, 8000);
        // `server ADDRESS:PORT` alone: that port is ours too until the work says.
        let c = conf("server 127.0.0.9:8000\n");
        let w = bootstrap_work(&c, "c1.example.org").expect("bootstrap");
        assert_eq!((w.ports.port, w.server.ports.port), (8000, 8000));
    }
}
