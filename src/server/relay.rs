//! Where the server's fan-out verbs go: ALLPING and ALLSEND (every
//! client), RELAY (one client), and HIST naming another host, which is that
//! host's history. Targets only: `verbs/` builds the deferred answers and
//! the loop runs the calls.

use super::Server;
use std::net::SocketAddr;

impl Server {
    /// ALLPING / ALLSEND: the command line for every client with a command
    /// address, in host order.
    pub fn fleet_commands(&self, verb: &str) -> Vec<(String, SocketAddr, String)> {
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
        parts
    }

    /// RELAY's target: the host named (name or tag) and its command address.
    pub fn relay_target(&self, name: &str) -> Result<(String, SocketAddr), String> {
        let host = self.resolve_host(name).ok_or_else(|| format!("unknown host {name}"))?;
        match self.hosts.get(&host).and_then(|h| h.cmd) {
            Some(addr) => Ok((host, addr)),
            None => Err(format!("no address for {host}")),
        }
    }

    /// `HIST [ival] [pnts] [host] [item...]` naming another host of the
    /// fleet: its history lives there, so the answer is that client's (as
    /// `RELAY <host> HIST ...`): its name and address. None: this host's own
    /// history.
    pub fn history_elsewhere(
        &self,
        args: &[String],
    ) -> Option<Result<(String, SocketAddr), String>> {
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
        Some(match self.hosts.get(&host).and_then(|h| h.cmd) {
            Some(addr) => Ok((host, addr)),
            None => Err(format!("no address for {host}")),
        })
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
