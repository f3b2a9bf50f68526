//! The command port's sessions on the loop: a readable or writable
//! connection, its request dispatched to `verbs/`, the reply carried out
//! (now, shared bytes, a pool job, a wait for a helper, calls to other
//! hosts), and the session re-registered or closed.

use super::{EventLoop, Pending, UPGRADE_SESSION_TIMEOUT};
use crate::clock::Now;
use crate::command;
use crate::effects::{CallOwner, Effects, Job, Tick};
use crate::session::{Next, Phase};
use crate::state::State;
use crate::verbs;
use crate::verbs::reply::Reply;
use mio::{Interest, Token};

impl EventLoop {
    /// An upgrade job's answer goes to its session; true: re-exec now (the
    /// answer is already in the socket, which closes at the exec).
    pub(super) fn upgrade_done(
        &mut self,
        u: crate::upgrade::task::UpgradeDone,
        st: &mut State,
    ) -> bool {
        st.upgrade.busy = false;
        if let Some(l) = &u.last {
            st.upgrade.last = l.clone();
        }
        let text = match &u.answer {
            Ok(body) => command::frame_ok("UPGRADE", body),
            Err(why) => command::frame_err("UPGRADE", why),
        };
        if let Some(s) = self.sessions.get_mut(&u.token) {
            let next = s.answer(text);
            self.settle(u.token, next);
        }
        u.reexec
    }

    pub(super) fn session_event(
        &mut self,
        t: usize,
        readable: bool,
        st: &mut State,
        now: Now,
        fx: &mut Effects,
    ) {
        let Some(s) = self.sessions.get_mut(&t) else { return };
        let mut next = s.on_writable();
        if readable && next == Next::Continue {
            next = s.on_readable();
            if let Some(r) = s.refusal.take() {
                st.counters.refuse(&r);
            }
        }
        if let Next::Request(line) = next {
            next = self.handle_request(t, &line, st, now, fx);
        }
        self.settle(t, next);
    }

    pub(super) fn handle_request(
        &mut self,
        t: usize,
        line: &[u8],
        st: &mut State,
        now: Now,
        fx: &mut Effects,
    ) -> Next {
        // STATE and DUMP show the pool and the turns as they are now.
        self.copy_stats(st);
        let Some(s) = self.sessions.get_mut(&t) else { return Next::Close };
        let peer = s.peer.ip();
        let reply = match command::parse_line(line) {
            Ok(req) => {
                s.verb = req.verb.clone();
                verbs::dispatch(st, &req, peer, now, fx)
            }
            Err(e) => {
                st.counters.refuse(&format!("bad command: {e}"));
                let verb = crate::session::verb_of(line);
                Reply::Now(command::frame_err(&verb, &e.to_string()))
            }
        };
        match reply {
            Reply::Now(text) => s.answer(text),
            Reply::Shared(data) => {
                let d = now.mono + UPGRADE_SESSION_TIMEOUT;
                s.deadline = d;
                let next = s.answer_shared(data);
                self.timers.at(d, Tick::ConnDeadline(t));
                next
            }
            Reply::Job(mut task) => {
                let d = now.mono + UPGRADE_SESSION_TIMEOUT;
                s.deadline = d;
                s.phase = Phase::Waiting;
                task.token = t;
                self.timers.at(d, Tick::ConnDeadline(t));
                self.pool.submit(Job::Upgrade(Box::new(task)));
                Next::Continue
            }
            Reply::Wait(ticket) => {
                s.phase = Phase::Waiting;
                self.waiting.insert(ticket, t);
                Next::Continue
            }
            Reply::Later(d) => {
                s.phase = Phase::Waiting;
                let n = d.parts.len();
                for (i, (_, addr, line)) in d.parts.iter().enumerate() {
                    fx.call(CallOwner::Session { token: t, index: i }, *addr, line.clone(), 10.0);
                }
                if n == 0 {
                    let text = crate::verbs::reply::finish(&d, Vec::new());
                    return s.answer(text);
                }
                self.pending.insert(t, Pending { deferred: d, results: vec![None; n], left: n });
                Next::Continue
            }
        }
    }

    /// Applies a session's `Next`: re-registers interest or closes it.
    pub(super) fn settle(&mut self, t: usize, next: Next) {
        let Some(s) = self.sessions.get_mut(&t) else { return };
        let close = matches!(next, Next::Close);
        if close {
            if let Some(mut s) = self.sessions.remove(&t) {
                let _ = self.poll.registry().deregister(&mut s.stream);
                self.forget_source(s.peer.ip());
            }
            self.pending.remove(&t);
            return;
        }
        if s.phase == Phase::Waiting {
            // Still registered for reading; re-arming now would report a
            // peer's half-close (`nc -N`) again at once, spinning the loop
            // until the answer (HIST on a stalled disk, a RELAY).
            return;
        }
        let interest = if s.wants_write() {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        let _ = self.poll.registry().reregister(&mut s.stream, Token(t), interest);
    }
}
