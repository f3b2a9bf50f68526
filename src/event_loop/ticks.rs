//! What the loop does when a timer fires or a signal or a helper's result
//! arrives: each tick to its owner (sessions' and calls' deadlines here,
//! the client's and the server's to them), HUP/USR1/TERM, and results of
//! the pool's jobs and the store threads to the part that asked.

use super::{names, EventLoop, Exit};
use crate::clock::Now;
use crate::command;
use crate::effects::{Done, Effects, Tick};
use crate::session::{Next, Phase};
use crate::state::State;
use nix::sys::signal::Signal;

impl EventLoop {
    pub(super) fn on_tick(&mut self, t: Tick, st: &mut State, now: Now, fx: &mut Effects) {
        match t {
            Tick::ConnDeadline(tok) => {
                let Some(s) = self.sessions.get_mut(&tok) else { return };
                if s.deadline > now.mono {
                    return;
                }
                let next = if s.phase == Phase::Reading || s.phase == Phase::Waiting {
                    st.counters.refuse("timeout");
                    s.deadline = now.mono + 2.0;
                    self.timers.at(now.mono + 2.0, Tick::ConnDeadline(tok));
                    self.pending.remove(&tok);
                    let verb = if s.verb.is_empty() { "?".to_string() } else { s.verb.clone() };
                    s.answer(command::frame_err(&verb, "timeout"))
                } else {
                    Next::Close
                };
                self.settle(tok, next);
            }
            Tick::CallDeadline(tok) => {
                if let Some((call, _)) = self.calls.get(&tok) {
                    if call.deadline <= now.mono {
                        if let Some((mut call, owner)) = self.calls.remove(&tok) {
                            let _ = self.poll.registry().deregister(&mut call.stream);
                            self.deliver(owner, Err("timeout".into()), st, now, fx);
                        }
                    }
                }
            }
            Tick::Client(ct) => {
                if let Some(c) = st.client.as_mut() {
                    c.on_tick(ct, now, fx);
                }
            }
            Tick::Server(stt) => {
                if let Some(s) = st.server.as_mut() {
                    s.on_tick(stt, now, fx);
                }
            }
            Tick::RotateLog => crate::logger::rotate_now(),
            Tick::UdpRearm => self.rearm_udp(st, now, fx),
            Tick::UdpRelease => self.release_udp(now),
            Tick::Names(gen) => names::on_tick(gen, st, now, fx),
            Tick::Watchdog => {
                if let Some(every) = self.notifier.watchdog_every() {
                    self.notifier.send(crate::systemd::Note::Watchdog);
                    self.timers.at(now.mono + every, Tick::Watchdog);
                }
            }
        }
    }

    pub(super) fn read_signals(&mut self, st: &mut State) -> Option<Exit> {
        loop {
            match self.sigfd.read_signal() {
                Ok(Some(info)) => match Signal::try_from(info.ssi_signo as i32) {
                    Ok(Signal::SIGHUP) => {
                        log::info!("SIGHUP: reloading conf and work");
                        st.reload = true;
                    }
                    Ok(Signal::SIGUSR1) => {
                        let ready =
                            st.reexec.as_ref().map_err(Clone::clone).and_then(|p| p.check());
                        match ready {
                            Ok(()) => {
                                log::info!("SIGUSR1: re-executing");
                                return Some(Exit::Reexec);
                            }
                            // Nothing is stopped for an exec that cannot work.
                            Err(e) => log::error!("SIGUSR1: cannot re-execute ({e}); running on"),
                        }
                    }
                    Ok(Signal::SIGTERM) | Ok(Signal::SIGINT) => {
                        log::info!("signal {}: stopping", info.ssi_signo);
                        st.stop = true;
                        return Some(Exit::Stop);
                    }
                    _ => {}
                },
                Ok(None) => return None,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return None,
            }
        }
    }
}

/// Results from helper threads go to the part that asked.
pub(super) fn on_done(st: &mut State, d: Done, now: Now, fx: &mut Effects) {
    match d {
        Done::Probe(p) => {
            if let Some(c) = st.client.as_mut() {
                c.on_probe_done(p, now, fx);
            }
        }
        Done::Notify(n) if n.id == crate::client::fallback::FALLBACK_ID => {
            if let Some(c) = st.client.as_mut() {
                c.on_fallback_done(n.result, now, fx);
            }
        }
        Done::Notify(n) => {
            if let Some(s) = st.server.as_mut() {
                s.on_notify_done(n, now, fx);
            }
        }
        Done::Names(r) => names::on_resolved(r, st, now, fx),
        Done::History(d) => {
            if let Some(c) = st.client.as_mut() {
                c.on_store_done(d, now, fx);
            }
        }
        Done::Store(a) => {
            if let Some(s) = st.server.as_mut() {
                s.on_store(a, now, fx);
            }
        }
        // Answered by the loop itself (it owns the sessions).
        Done::Upgrade(_) => {}
    }
    // A store that failed a request after its verb returned (`Reply::Wait`).
    for (reason, n) in fx.refused.drain(..) {
        st.counters.refuse_n(&reason, n);
    }
}
