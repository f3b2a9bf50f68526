//! The server's verbs that answer with other hosts' answers: ALLPING and
//! ALLSEND (every client), RELAY (one client), and HIST naming another
//! host, which is that host's history. They return `Reply::Later`; the loop
//! runs the calls.

use super::Server;
use crate::command::{frame_err, Request};
use crate::verbs::reply::{Deferred, Reply, RELAYABLE};

impl Server {
    /// ALLPING / ALLSEND: the command to every client, in host order.
    pub(super) fn all(&self, verb: &str) -> Reply {
        // ALLSEND spreads the reports over about a second per 300 hosts
        // (at most 30 s), so a big fleet does not answer as one spike.
        let line = if verb == "ALLSEND" {
            format!("SEND {:.0}", (self.hosts.len() as f64 / 300.0).clamp(1.0, 30.0))
        } else {
            verb[3..].to_string()
        };
        let mut parts = Vec::new();
        for (name, h) in &self.hosts {
            match h.cmd {
                Some(a) => parts.push((name.clone(), a, line.clone())),
                None => log::warn!("{verb}: no address for {name}"),
            }
        }
        Reply::Later(Deferred { verb: verb.to_string(), relay: false, parts })
    }

    pub(super) fn relay(&self, req: &Request) -> Reply {
        let (Some(name), Some(verb)) = (req.args.first(), req.args.get(1)) else {
            return Reply::Now(frame_err("RELAY", "usage: RELAY <host> <command...>"));
        };
        let verb_uc = verb.to_ascii_uppercase();
        if !RELAYABLE.contains(&verb_uc.as_str()) {
            let why = format!("{verb_uc} may not be relayed (only {})", RELAYABLE.join(" "));
            return Reply::Now(frame_err("RELAY", &why));
        }
        let Some(host) = self.resolve_host(name) else {
            return Reply::Now(frame_err("RELAY", &format!("unknown host {name}")));
        };
        let Some(addr) = self.hosts.get(&host).and_then(|h| h.cmd) else {
            return Reply::Now(frame_err("RELAY", &format!("no address for {host}")));
        };
        let line = req.args[1..].join(" ");
        Reply::Later(Deferred {
            verb: "RELAY".into(),
            relay: true,
            parts: vec![(host, addr, line)],
        })
    }

    /// `HIST [ival] [pnts] [host] [item...]` naming another host of the
    /// fleet: its history lives there, so the answer is that client's
    /// (as `RELAY <host> HIST ...`). None: this host's own history.
    pub fn hist_elsewhere(&self, req: &Request) -> Option<Reply> {
        let args = &req.args;
        let mut i = 0;
        let is_host = |a: &String| self.resolve_host(a);
        let host = match args.first().map(is_host) {
            Some(Some(h)) => Some(h),
            _ => {
                // Past the interval word and the point count, as the client parses.
                if args.first().is_some_and(|a| a.chars().all(|c| c.is_ascii_alphabetic())) {
                    i += 1;
                }
                if args.get(i).is_some_and(|a| a.parse::<u32>().is_ok()) {
                    i += 1;
                }
                args.get(i).and_then(is_host)
            }
        }?;
        if host.eq_ignore_ascii_case(&self.host) {
            return None;
        }
        let Some(addr) = self.hosts.get(&host).and_then(|h| h.cmd) else {
            return Some(Reply::Now(frame_err("HIST", &format!("no address for {host}"))));
        };
        let line = format!("HIST {}", args.join(" "));
        Some(Reply::Later(Deferred {
            verb: "HIST".into(),
            relay: true,
            parts: vec![(host, addr, line)],
        }))
    }
}

impl Server {
    /// UPGRADE's clients: the named hosts (all when none), in host order,
    /// with a command address; (targets, skipped with why). The server's
    /// own host is skipped: its re-exec would end the rollout answering.
    #[allow(clippy::type_complexity)]
    pub fn upgrade_targets(
        &self,
        names: &[String],
    ) -> Result<(Vec<(String, std::net::SocketAddr)>, Vec<(String, String)>), String> {
        let mut wanted = Vec::new();
        for n in names {
            wanted.push(self.resolve_host(n).ok_or_else(|| format!("unknown host {n}"))?);
        }
        let (mut targets, mut skipped) = (Vec::new(), Vec::new());
        for (name, h) in &self.hosts {
            if !wanted.is_empty() && !wanted.contains(name) {
                continue;
            }
            if name.eq_ignore_ascii_case(&self.host) {
                if !wanted.is_empty() {
                    skipped.push((name.clone(), "the server does not upgrade itself yet".into()));
                }
                continue;
            }
            match h.cmd {
                Some(a) => targets.push((name.clone(), a)),
                None => skipped.push((name.clone(), "no address".into())),
            }
        }
        Ok((targets, skipped))
    }
}
