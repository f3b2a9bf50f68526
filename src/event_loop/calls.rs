//! Outgoing calls on the loop (confirmation probes, RELAY parts, work and
//! event pushes): started from a queue with a bounded number in flight and
//! a bounded number of connects per turn, driven as non-blocking
//! connections, each result delivered to whoever asked.

use super::{EventLoop, MAX_ANSWER};
use crate::clock::Now;
use crate::effects::{CallOwner, CallReq, Effects, Tick};
use crate::session::Call;
use crate::state::State;
use mio::net::TcpStream;
use mio::{Interest, Token};
use std::net::SocketAddr;

impl EventLoop {
    pub(super) fn start_call(&mut self, req: CallReq, now: Now) {
        let deadline = now.mono + req.timeout;
        let started = connect_from(self.bind_ip, req.addr)
            .and_then(|stream| Call::start_with(stream, req.addr, &req.line, deadline, MAX_ANSWER));
        match started {
            Ok(mut call) => {
                let t = self.token();
                let interest = Interest::READABLE | Interest::WRITABLE;
                if let Err(e) = self.poll.registry().register(&mut call.stream, Token(t), interest)
                {
                    self.call_failed(req.owner, format!("register: {e}"));
                    return;
                }
                self.timers.at(deadline, Tick::CallDeadline(t));
                self.calls.insert(t, (call, req.owner));
            }
            Err(e) => self.call_failed(req.owner, format!("connect: {e}")),
        }
    }

    /// Results of calls that could not even start are delivered on the next
    /// turn through a zero-delay path: remember them as finished calls.
    pub(super) fn call_failed(&mut self, owner: CallOwner, why: String) {
        self.early_results.push((owner, Err(why)));
    }

    pub(super) fn call_event(&mut self, t: usize, st: &mut State, now: Now, fx: &mut Effects) {
        let Some((call, _)) = self.calls.get_mut(&t) else { return };
        let Some(res) = call.on_event() else {
            let interest = if call.wants_write() {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self.poll.registry().reregister(&mut call.stream, Token(t), interest);
            return;
        };
        if let Some((mut call, owner)) = self.calls.remove(&t) {
            let _ = self.poll.registry().deregister(&mut call.stream);
            self.deliver(owner, res, st, now, fx);
        }
    }

    pub(super) fn deliver(
        &mut self,
        owner: CallOwner,
        res: crate::session::CallResult,
        st: &mut State,
        now: Now,
        fx: &mut Effects,
    ) {
        match owner {
            CallOwner::Session { token, index } => {
                let Some(p) = self.pending.get_mut(&token) else { return };
                if p.results[index].is_none() {
                    p.results[index] = Some(res);
                    p.left -= 1;
                }
                if p.left == 0 {
                    if let Some(p) = self.pending.remove(&token) {
                        let results = p
                            .results
                            .into_iter()
                            .map(|r| r.unwrap_or(Err("lost".into())))
                            .collect();
                        let text = crate::verbs::reply::finish(&p.deferred, results);
                        if let Some(s) = self.sessions.get_mut(&token) {
                            let next = s.answer(text);
                            self.settle(token, next);
                        }
                    }
                }
            }
            owner => st.handle_call_result(owner, res, now, fx),
        }
    }
}

/// A non-blocking connect from the host's own address, so the peer sees
/// which host is calling.
pub fn connect_from(bind: Option<std::net::IpAddr>, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(
        Domain::for_address(to),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    if let Some(ip) = bind.filter(|ip| !ip.is_unspecified() && ip.is_ipv4() == to.is_ipv4()) {
        sock.bind(&SocketAddr::new(ip, 0).into())?;
    }
    match sock.connect(&to.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(sock.into()))
}
