//! Which work this host runs, read from disk (DESIGN §5): the server's
//! `$vardir/works/<host>.json` (made from `workconf` when missing), a
//! client's cached `$vardir/work.json`, the embedded solo work, or a
//! bootstrap work that knows only the server; the conf's overrides on top
//! (ports, intervals, server address) and the version of what was loaded.
//! Used by `run.rs` (start, reload), `control.rs` (commands without a
//! daemon) and the parts that re-read work-files. Blocking file reads: not
//! for the event-loop thread except at start and reload, as before.

use crate::conf::Conf;
use crate::error::{Error, Result};
use crate::work::model::{Endpoint, Ports, Roles, Work};
use crate::work::version::{self, Version};
use std::net::IpAddr;
use std::path::Path;

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
pub fn check_work_cache(conf: &Conf, host: &str) {
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
    let (address, port) = crate::work::addr::split_host_port(&server);
    let server_port = port.unwrap_or(conf.port.unwrap_or(d.port));
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
        let (addr, port) = crate::work::addr::split_host_port(s);
        if addr.parse::<IpAddr>().is_ok() {
            w.server.address = addr;
        }
        if let Some(port) = port {
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
    for (k, v) in &conf.intervals {
        w.intervals.set(k, *v);
    }
    w
}

/// Ports from the cached or generated work, for commands that run without a
/// daemon (`hbmon state`, `hbmon cmd`).
pub fn cached_ports(conf: &Conf) -> Ports {
    let host = crate::hostname::of_conf(conf);
    match load_work(conf, &host) {
        Ok((w, _)) => apply_conf_overrides(conf, w).ports,
        Err(_) => Ports::default(),
    }
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
pub fn settle_version(conf: &Conf, host: &str, work: &Work, lm: Version) -> Version {
    match lm {
        0 if work.roles.server => match work_version(conf, host) {
            0 => version::of_time(std::time::SystemTime::now()),
            v => v,
        },
        v => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

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
