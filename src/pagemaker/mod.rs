//! The pagemaker role (DESIGN.md section 9): the dashboard. Owns starting
//! and stopping the HTTP server and what its threads share (the site
//! settings from the work, the fetcher in front of the server). Never runs
//! on the event-loop thread and never touches the loop's state: it learns
//! the fleet over the command port like any peer.
//!
//! The files in layers; each uses only those below it (and this file's
//! `Site`/`Shared`), so there is no import circle:
//!
//! 1. `web.rs`: requests and answers as values (`Req`, `Resp`), content
//!    types, URL/form encoding, shared formatting (numbers, units, level
//!    badges, links). `fetch.rs` asks the server (caches the fleet);
//!    `auth.rs` (with `throttle.rs`) owns the login policies: hashes,
//!    sessions, tokens, visibility; `metrics.rs` the Prometheus text.
//! 2. `svg.rs`: pure graph drawing, on `web.rs`'s formatting only.
//!    `login.rs`: auth wired to requests (the session user, CSRF checks,
//!    `/logout`, `/metrics`); a login POST returns a `LoginOutcome` value
//!    and draws no page.
//! 3. `pages.rs`: the layout and the fleet pages; `views.rs` on top of it:
//!    events, alerts, graphs, the login form and the login outcome's page;
//!    `api.rs`: the JSON API (reuses `views.rs`'s checks).
//! 4. `http.rs`: the router, on top of all; `serve.rs` (sockets, threads,
//!    limits) knows only `web.rs` and gets the router as a closure here.

pub mod api;
pub mod auth;
pub mod fetch;
pub mod http;
pub mod login;
pub mod metrics;
pub mod pages;
pub mod serve;
pub mod svg;
pub mod views;
pub mod web;

use crate::conf::Conf;
use crate::work::model::{Level, PmakerWork, Work};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// How long a fleet snapshot serves before the server is asked again.
pub const CACHE_TTL: Duration = Duration::from_secs(3);

/// What the pages need from the work.
#[derive(Debug, Clone, Default)]
pub struct Site {
    pub title: String,
    pub host: String,
    /// Levels, best first.
    pub levels: Vec<Level>,
    pub part: PmakerWork,
    /// Seconds between heartbeats: the pages refresh themselves at it.
    pub refresh: f64,
    /// The server's name, for the header.
    pub server: String,
    /// `part.hosts` by FQDN and tag, so visibility is one lookup per host.
    pub host_ix: std::collections::HashMap<String, usize>,
}

impl Site {
    pub fn from_work(w: &Work) -> Site {
        let part = w.pmaker_part.clone().unwrap_or_default();
        let mut host_ix = std::collections::HashMap::new();
        for (i, h) in part.hosts.iter().enumerate() {
            host_ix.insert(h.host.clone(), i);
            host_ix.entry(h.tag.clone()).or_insert(i);
        }
        Site {
            host_ix,
            title: if part.title.is_empty() { "hbmon".into() } else { part.title.clone() },
            host: w.host.clone(),
            levels: w.levels.clone(),
            part,
            refresh: w.intervals.heartbeat.clamp(2.0, 300.0),
            server: w.server.host.clone(),
        }
    }

    /// The work's entry of a host (by FQDN or tag).
    pub fn entry(&self, name: &str) -> Option<&crate::work::model::HostEntry> {
        self.host_ix.get(name).and_then(|&i| self.part.hosts.get(i))
    }

    /// Index of a level name (0 = best); unknown names count as the worst.
    pub fn level_index(&self, name: &str) -> usize {
        self.levels.iter().position(|l| l.name == name).unwrap_or(self.levels.len())
    }

    /// The colour class of a level: 0..=4, spread over the declared levels
    /// so best is always 0 and worst always 4, whatever their number.
    pub fn colour(&self, idx: usize) -> usize {
        let n = self.levels.len();
        if n <= 1 {
            return 0;
        }
        if idx >= n {
            return 4;
        }
        (idx * 4 + (n - 1) / 2) / (n - 1)
    }

    /// The level a reachability state stands for (as the server derives the
    /// `heartbeat` item): up best, stopped second, late middle, down worst.
    pub fn reach_index(&self, state: &str) -> Option<usize> {
        let n = self.levels.len().max(1);
        match state {
            "up" => Some(0),
            "stopped" => Some(1.min(n - 1)),
            "late" => Some(self.levels.iter().position(|l| l.name == "sick").unwrap_or(n / 2)),
            "unreachable" => Some(n.saturating_sub(2)),
            "down" => Some(n - 1),
            _ => None,
        }
    }
}

/// What the pool threads share.
pub struct Shared {
    pub site: RwLock<Arc<Site>>,
    pub fetch: fetch::Fetcher,
    pub logins: login::LoginState,
}

impl Shared {
    pub fn site(&self) -> Arc<Site> {
        match self.site.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

/// The running dashboard: stop it by dropping it.
pub struct Pagemaker {
    shared: Arc<Shared>,
    server: serve::Running,
}

/// How the pagemaker reaches the server: the work's address, from our own
/// bind address (so the server knows who asks).
fn peer_of(conf: &Conf, w: &Work) -> fetch::Peer {
    let bind = conf.bind.as_deref().and_then(|b| b.trim_matches(['[', ']']).parse::<IpAddr>().ok());
    let bind = bind.filter(|ip| !ip.is_unspecified());
    // A name is resolved by the pool threads when they connect (a lookup
    // blocks, and this runs on the event loop); an address is used as is.
    let (ip, name) = match w.server.address.parse::<IpAddr>() {
        Ok(ip) => (ip, None),
        Err(_) => (IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), Some(w.server.address.clone())),
    };
    fetch::Peer {
        server: SocketAddr::new(ip, w.server.ports.port),
        name,
        bind,
        timeout: Duration::from_secs(10),
        own: Some((
            w.host.clone(),
            SocketAddr::new(
                bind.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
                w.ports.port,
            ),
        )),
    }
}

impl Pagemaker {
    /// Binds `bind:http_port` and starts the pool.
    pub fn start(conf: &Conf, w: &Work) -> crate::error::Result<Pagemaker> {
        let peer = peer_of(conf, w);
        let shared = Arc::new(Shared {
            site: RwLock::new(Arc::new(Site::from_work(w))),
            fetch: fetch::Fetcher::new(peer, CACHE_TTL),
            logins: Default::default(),
        });
        let ip = conf
            .bind
            .as_deref()
            .and_then(|b| b.trim_matches(['[', ']']).parse::<IpAddr>().ok())
            .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        let addr = SocketAddr::new(ip, w.ports.http_port);
        let sh = shared.clone();
        let server = serve::serve(addr, Arc::new(move |req: &web::Req| http::route(&sh, req)))?;
        log::warn!("dashboard on http://{addr}/");
        Ok(Pagemaker { shared, server })
    }

    /// A new work: new settings for the next requests (the port stays).
    pub fn reload(&self, conf: &Conf, w: &Work) {
        if let Ok(mut g) = self.shared.site.write() {
            *g = Arc::new(Site::from_work(w));
        }
        login::retain(&self.shared, &self.shared.site().part.users);
        self.shared.fetch.set_peer(peer_of(conf, w));
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_spread_best_to_worst() {
        let mut s = Site { levels: crate::work::default_levels(), ..Site::default() };
        let c: Vec<usize> = (0..6).map(|i| s.colour(i)).collect();
        assert_eq!(c, vec![0, 1, 2, 3, 4, 4]);
        s.levels.truncate(2);
        assert_eq!((s.colour(0), s.colour(1)), (0, 4));
        assert_eq!(s.reach_index("down"), Some(1));
        s.levels = crate::work::default_levels();
        assert_eq!(s.reach_index("late"), Some(2));
        assert_eq!(s.reach_index("unreachable"), Some(3));
        assert_eq!(s.reach_index("new"), None);
        assert_eq!(s.level_index("crit"), 3);
    }
}
