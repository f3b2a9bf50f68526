//! Admission of command-port connections at accept (issue 13 item 6): a
//! peer that may not talk to this host is refused at once (before a byte is
//! read, so idle strangers hold no slot), a share of the slots is kept for
//! localhost and the server, and one address holds only so many at once.
//! [`admit`] is the pure decision; the loop counts and applies it.

use super::{EventLoop, MAX_SESSIONS, SESSION_TIMEOUT};
use crate::clock::Now;
use crate::command;
use crate::effects::Tick;
use crate::session::Session;
use crate::state::State;
use crate::work::addr::canonical_ip;
use mio::{Interest, Token};
use std::net::IpAddr;

/// Slots only localhost and the server may take.
pub const RESERVED_SESSIONS: usize = 64;
/// Sessions one address (other than localhost and the server) may hold.
pub const MAX_PER_SOURCE: u32 = 32;

/// What to do with a new connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    Yes,
    /// Not allowed here at all (`access denied`).
    Denied,
    /// All slots (or all unreserved ones) are taken (`busy`).
    Busy,
    /// This address holds its share already.
    SourceLimit,
}

/// `allowed`: may the peer use the port at all; `privileged`: localhost or
/// the server; `open`: sessions now; `from_peer`: sessions of this address.
pub fn admit(allowed: bool, privileged: bool, open: usize, from_peer: u32) -> Admit {
    if !allowed {
        Admit::Denied
    } else if open >= MAX_SESSIONS {
        Admit::Busy
    } else if privileged {
        Admit::Yes
    } else if from_peer >= MAX_PER_SOURCE {
        Admit::SourceLimit
    } else if open >= MAX_SESSIONS - RESERVED_SESSIONS {
        Admit::Busy
    } else {
        Admit::Yes
    }
}

impl EventLoop {
    /// Accepts up to `ACCEPTS_PER_TURN` connections; more wait for the
    /// next turn (a connect flood must not hold the loop).
    pub(super) fn accept(&mut self, st: &mut State, now: Now) {
        for i in 0.. {
            if i == super::ACCEPTS_PER_TURN {
                self.again.accept = true;
                return;
            }
            match self.listener.accept() {
                Ok((mut stream, peer)) => {
                    let ip = canonical_ip(peer.ip());
                    let privileged =
                        st.is_local(ip) || st.server_cmd_addr().is_some_and(|a| a.ip() == ip);
                    let from_peer = self.per_source.get(&ip).copied().unwrap_or(0);
                    let (reason, text) =
                        match admit(st.allowed(ip), privileged, self.sessions.len(), from_peer) {
                            Admit::Yes => ("", ""),
                            Admit::Denied => ("access denied at accept", "access denied"),
                            Admit::Busy => ("busy", "busy"),
                            Admit::SourceLimit => {
                                ("per-source limit", "busy: too many connections from your address")
                            }
                        };
                    if !reason.is_empty() {
                        use std::io::Write;
                        let _ = stream.write(command::frame_err("?", text).as_bytes());
                        st.counters.refuse(reason);
                        continue;
                    }
                    let t = self.token();
                    let interest = Interest::READABLE;
                    if self.poll.registry().register(&mut stream, Token(t), interest).is_err() {
                        continue;
                    }
                    let deadline = now.mono + SESSION_TIMEOUT;
                    self.sessions.insert(t, Session::new(stream, peer, deadline));
                    *self.per_source.entry(ip).or_insert(0) += 1;
                    self.timers.at(deadline, Tick::ConnDeadline(t));
                    self.fresh.push(t);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: log and let the next poll retry.
                    log::warn!("accept: {e}");
                    return;
                }
            }
        }
    }

    /// Reads the connections accepted this turn at once: a client sends
    /// its line right after connecting, so it is usually there already, and
    /// waiting for its readiness event would cost one more turn (one more
    /// heartbeat share under a flood) before the answer.
    pub(super) fn serve_fresh(
        &mut self,
        st: &mut State,
        now: Now,
        fx: &mut crate::effects::Effects,
    ) {
        for t in std::mem::take(&mut self.fresh) {
            self.session_event(t, true, st, now, fx);
        }
    }

    pub(super) fn forget_source(&mut self, ip: IpAddr) {
        let ip = canonical_ip(ip);
        if let Some(n) = self.per_source.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strangers_refused_reserve_kept_sources_limited() {
        assert_eq!(admit(false, false, 0, 0), Admit::Denied);
        assert_eq!(admit(true, false, 0, 0), Admit::Yes);
        let unreserved = MAX_SESSIONS - RESERVED_SESSIONS;
        assert_eq!(admit(true, false, unreserved, 0), Admit::Busy);
        assert_eq!(admit(true, true, unreserved, 100), Admit::Yes);
        assert_eq!(admit(true, true, MAX_SESSIONS, 0), Admit::Busy);
        assert_eq!(admit(true, false, 10, MAX_PER_SOURCE), Admit::SourceLimit);
        assert_eq!(admit(true, false, 10, MAX_PER_SOURCE - 1), Admit::Yes);
    }
}
