//! `hbmon start`: parse and validate first (conf, name, work), then fork,
//! lock, log, bind, build the role parts and run the loop; HUP/WORK_RELOAD
//! re-read conf and work without a restart. Which work a host runs, and the
//! conf's overrides on it, is `work/load.rs`'s.

use crate::clock::Now;
use crate::conf::Conf;
use crate::daemon::{self, ReadyPipe};
use crate::effects::Effects;
use crate::error::{Error, Result};
use crate::event_loop::{self, EventLoop, Exit, Sockets};
use crate::reexec;
use crate::state::{Bound, Counters, State};
use crate::work::load;
use crate::work::model::Work;
use crate::work::version::Version;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

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
    if let Err(e) = crate::event_loop::mmsg::enable_timestamps(&s) {
        log::info!("no SO_TIMESTAMP on the heartbeat socket ({e}); RTT from the loop's clock");
    }
    Ok(s)
}

/// Starts the daemon; returns when it stops (in the foreground, or in the
/// daemon process). Errors before the fork reach the terminal directly.
pub fn start(conf: Conf, interactive: bool) -> Result<()> {
    let host = crate::hostname::of_conf(&conf);
    load::check_work_cache(&conf, &host);
    // The version is read before the file: a work-file replaced in between
    // then looks newer than what runs, and is loaded again by the poll.
    let lm = load::work_version(&conf, &host);
    let (work, origin) = load::load_work(&conf, &host)?;
    let work = load::apply_conf_overrides(&conf, work);
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
                let host = crate::hostname::of_conf(&again);
                let lm = load::work_version(&again, &host);
                let (work, origin) = load::load_work(&again, &host)?;
                let work = load::apply_conf_overrides(&again, work);
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
    let work_lm = load::settle_version(&conf, &host, &work, lm);
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
        names: Default::default(),
        names_round: Default::default(),
        pool: Default::default(),
        turns: Default::default(),
        wake: el.wake(),
    };
    el.set_pool(st.conf.workers, st.conf.workers_queue);
    el.prime_names(&mut st, now, crate::event_loop::names::START_WAIT);
    let mut fx = Effects::default();
    build_parts(&mut st, now, &mut fx)?;
    if let (Some(why), Some(c)) = (st.upgrade.report.take(), st.client.as_mut()) {
        log::error!("upgrade rolled back: {why}");
        c.set_item(
            crate::event::builtin::UPGRADE,
            None,
            "",
            &format!("rolled back: {why}"),
            now,
            &mut fx,
        );
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

/// Creates or drops the client and server parts to match the work's roles.
fn build_parts(st: &mut State, now: Now, fx: &mut Effects) -> Result<()> {
    let roles = st.work.roles;
    // Before the parts start their threads (a server's store thread gets
    // the second arena it allocates in).
    crate::footprint::limit_arenas(!roles.server && !roles.pmaker);
    if roles.server && st.server.is_none() {
        st.server = Some(crate::server::Server::start(&st.setup(), now, fx)?);
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
        st.client = Some(crate::client::Client::start(&st.setup(), now, fx)?);
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
        let work = load::apply_conf_overrides(&st.conf, work);
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
    let host = reload_hostname(st, &conf);
    load::check_work_cache(&conf, &host);
    let lm = load::work_version(&conf, &host);
    let work = match load::load_work(&conf, &host) {
        Ok((w, origin)) => {
            log::info!("reload: work from {origin}");
            load::apply_conf_overrides(&conf, w)
        }
        Err(e) => {
            log::error!("reload: work not changed: {e}");
            return;
        }
    };
    let had_server = st.work.roles.server;
    el.set_pool(conf.workers, conf.workers_queue);
    st.conf = conf;
    st.work_lm = load::settle_version(&st.conf, &host, &work, lm);
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
    crate::event_loop::names::refresh(st, now, fx);
}

/// The hostname after a reload, without asking the resolver on the loop:
/// unchanged `hostname`/`domain` keys keep the name found at start; new
/// ones are qualified but their CNAME is not followed until a restart.
fn reload_hostname(st: &State, conf: &Conf) -> String {
    if conf.hostname == st.conf.hostname && conf.domain == st.conf.domain {
        return st.hostname.clone();
    }
    let name = crate::hostname::without_lookup(conf.hostname.as_deref(), conf.domain.as_deref());
    log::info!("reload: hostname now {name} (a restart follows its CNAME, if any)");
    name
}
