//! The heartbeat sockets of the loop: installing them, draining the
//! server's (with coalescing under load, a bounded share per turn) and the
//! client's (with kernel receive timestamps, bounded too), and flushing
//! queued datagrams at a stop. The server's socket is drained in
//! `recvmmsg` batches (`mmsg.rs`) handed to the server part, which queues
//! the ACKs sent after each batch.

use super::{mmsg, EventLoop, UDP_CLIENT, UDP_COALESCE, UDP_SERVER};
use crate::clock::Now;
use crate::effects::{Effects, Tick};
use crate::state::State;
use mio::net::UdpSocket;
use mio::Interest;

impl EventLoop {
    /// Installs (or removes) the heartbeat sockets, e.g. after a reload
    /// changed the roles.
    pub fn set_udp(
        &mut self,
        server: Option<std::net::UdpSocket>,
        client: Option<std::net::UdpSocket>,
    ) -> crate::error::Result<()> {
        let io = |op: &str, e: std::io::Error| crate::error::Error::io(op, e);
        if let Some(mut old) = self.udp_server.take() {
            if !self.udp_parked {
                let _ = self.poll.registry().deregister(&mut old);
            }
            self.udp_parked = false;
        }
        if let Some(mut old) = self.udp_client.take() {
            let _ = self.poll.registry().deregister(&mut old);
        }
        for (sock, tok, slot) in [(server, UDP_SERVER, 0), (client, UDP_CLIENT, 1)] {
            if let Some(s) = sock {
                s.set_nonblocking(true).map_err(|e| io("udp nonblocking", e))?;
                let mut u = UdpSocket::from_std(s);
                self.poll
                    .registry()
                    .register(&mut u, tok, Interest::READABLE)
                    .map_err(|e| io("register udp", e))?;
                if slot == 0 {
                    self.udp_bufs.get_or_insert_with(Default::default);
                    self.udp_server = Some(u);
                } else {
                    self.udp_client = Some(u);
                }
            }
        }
        Ok(())
    }

    /// Sends what the last handlers queued (the shutdown heartbeat) before
    /// the process ends.
    pub fn flush(&mut self, fx: &mut Effects) {
        if let Some(u) = &self.udp_client {
            for (to, d) in fx.datagrams.drain(..) {
                let _ = u.send_to(&d, to);
            }
        }
    }

    pub fn has_udp_server(&self) -> bool {
        self.udp_server.is_some()
    }

    /// Drains the heartbeat socket. Under load (drains closer than
    /// `UDP_COALESCE` apart, or one that found [`BUSY_BATCH`] or more
    /// datagrams queued) the socket is parked for that long, so the next
    /// drain takes a batch instead of waking the loop per datagram: at
    /// 10,000 datagrams/s that is ~20 per recvmmsg instead of ~2, and one
    /// wake-up per pause (the drain at the re-arm finds a batch and parks
    /// again at once, instead of waiting for the next datagram's wake-up to
    /// see that drains are close). A quiet fleet is never parked, so its
    /// ACKs (and RTTs) are immediate.
    ///
    /// A drain takes at most `server::udp::TURN` datagrams; when that left
    /// some in the socket the socket is parked for [`FLOOD_PAUSE`] and the
    /// re-arm takes the next share (the other sources are served meanwhile).
    pub(super) fn read_udp_server(&mut self, st: &mut State, now: Now, fx: &mut Effects) {
        let Some(sock) = self.udp_server.as_mut() else { return };
        // A loop waiting for cores takes smaller shares (see `park_for`).
        let share = if self.udp_contended { CONTENDED_SHARE } else { crate::server::udp::TURN };
        let (t0, cpu0) = (std::time::Instant::now(), thread_cpu());
        let bufs = self.udp_bufs.get_or_insert_with(Default::default);
        let (got, more) = match st.server.as_mut() {
            Some(server) => {
                let (rx, tx) = &mut **bufs;
                let (d, err) =
                    mmsg::drain(sock, rx, tx, share, |rx, tx| server.on_datagrams(rx, tx, now));
                server.udp_drained(&d, err, now, fx);
                (d.datagrams as usize, d.more)
            }
            None => drain_udp(sock, &mut self.udp_buf, share),
        };
        // Each recvmmsg fills the slots from the first: a drain wrote the
        // first min(got, BATCH) of them.
        self.udp_touched = self.udp_touched.max(got.min(mmsg::BATCH));
        if self.udp_touched > RELEASE_SLOTS && !self.udp_release_armed {
            self.udp_release_armed = true;
            self.timers.at(now.mono + RELEASE_AFTER, Tick::UdpRelease);
        }
        let busy = now.mono - self.udp_last_drain < UDP_COALESCE || got >= BUSY_BATCH;
        self.udp_last_drain = now.mono;
        // Whether a full share waited for a core (its wall time over
        // CONTENDED_WALL times its CPU time): the loop shares one with the
        // flood's senders.
        let contended = more && t0.elapsed().as_secs_f64() > CONTENDED_WALL * (thread_cpu() - cpu0);
        self.udp_contended = contended;
        if let Some(pause) = park_for(busy, more, contended) {
            if !self.udp_parked && self.poll.registry().deregister(sock).is_ok() {
                self.udp_parked = true;
                self.timers.at(now.mono + pause, Tick::UdpRearm);
            }
        }
        if more && !self.udp_parked {
            self.again.udp_server = true;
        }
    }

    pub(super) fn rearm_udp(&mut self, st: &mut State, now: Now, fx: &mut Effects) {
        if !self.udp_parked {
            return;
        }
        self.udp_parked = false;
        if let Some(sock) = self.udp_server.as_mut() {
            if let Err(e) = self.poll.registry().register(sock, UDP_SERVER, Interest::READABLE) {
                log::error!("re-arming the heartbeat socket: {e}");
            }
        }
        // What queued while parked is read now (the edge may have passed).
        self.read_udp_server(st, now, fx);
    }

    /// The UdpRelease tick: once the heartbeat socket has had no drain for
    /// [`RELEASE_AFTER`], the receive slots a burst wrote go back to the
    /// kernel (a flood's 256 slots are 1 MiB of pages touched, kept for
    /// nothing while the fleet's batches fit in a few). A socket still busy
    /// is looked at again [`RELEASE_AFTER`] after its last drain.
    pub(super) fn release_udp(&mut self, now: Now) {
        self.udp_release_armed = false;
        let rested = now.mono - self.udp_last_drain;
        if rested < RELEASE_AFTER {
            self.udp_release_armed = true;
            self.timers.at(self.udp_last_drain + RELEASE_AFTER, Tick::UdpRelease);
            return;
        }
        if let Some(b) = self.udp_bufs.as_mut() {
            b.0.release();
        }
        self.udp_touched = 0;
    }

    /// Reads ACKs, at most [`CLIENT_TURN`] a turn (a flood of forged ones
    /// must not hold the loop): the rest are read next turn.
    pub(super) fn read_udp_client(&mut self, st: &mut State, now: Now, fx: &mut Effects) {
        let Some(sock) = self.udp_client.as_ref() else { return };
        for _ in 0..CLIENT_TURN {
            // Kernel receive timestamps (SO_TIMESTAMP) make the RTT honest
            // even when the loop was busy when the ACK arrived.
            match mmsg::recv_timestamped(sock, &mut self.udp_buf) {
                Ok((n, from, stamp)) => {
                    if let Some(c) = st.client.as_mut() {
                        c.on_datagram(&self.udp_buf[..n], from, stamp, now, fx);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return,
            }
        }
        self.again.udp_client = true;
    }
}

/// Receive slots a burst may leave written before their pages are given
/// back (a quiet fleet's drains use a few: nothing to give back).
pub const RELEASE_SLOTS: usize = 16;

/// Seconds without a heartbeat drain after which the slots a burst wrote
/// are given back (a drain every 10 ms of a busy fleet never waits that
/// long, so its pages are not faulted in again and again).
pub const RELEASE_AFTER: f64 = 1.0;

/// Datagrams the client's socket is read for in one turn.
pub const CLIENT_TURN: usize = 256;

/// The share of a drain after one that waited for a core (a flood on
/// shared cores): a PING arriving during it waits a quarter of a batch
/// (PING p99 during `bench_flood_ping` 6.4-6.7 ms against 9.1-9.7 ms with
/// whole batches, in the same minutes).
pub const CONTENDED_SHARE: usize = crate::event_loop::mmsg::BATCH / 4;

/// A full share whose wall time was over this many times its CPU time
/// waited for a core (see [`park_for`]). Not 2: a loop on a core shared
/// with two flooding senders runs about 55 % of the time it is runnable
/// (`/proc/PID/task/TID/schedstat`, `bench_flood_ping`), a ratio of 1.8,
/// and was taken as uncontended: it drained share after share, never
/// slept, and a PING waited behind it for a core (p99 10-40 ms).
pub const CONTENDED_WALL: f64 = 1.25;

/// The pause after a drain that used up its whole share (a flood), in
/// seconds: shorter than [`UDP_COALESCE`], as a batch is full already.
pub const FLOOD_PAUSE: f64 = 0.001;

/// How long the heartbeat socket rests after a drain: `busy` (drains close
/// together, or a batch found queued) waits [`UDP_COALESCE`] for the next
/// batch; a quiet socket not at all (its ACKs go out at once).
///
/// A drain that used up its share (`more`: a flood) is followed by the
/// next share at once when the loop has a core to itself (a pause would
/// only cap the rate; a PING waits at most a share). When that share
/// waited for a core (`contended`: the flood's senders share the loop's
/// cores) it rests [`FLOOD_PAUSE`] instead, and the next share is
/// [`CONTENDED_SHARE`] (issue 18): a loop that drains
/// share after share never sleeps, so a PING arriving finds it queued
/// behind the senders for a core (median 16 ms, p99 50 ms at load 8);
/// one that sleeps in `poll` between shares is woken by the connection
/// at once (median 2-4 ms in the same minutes), and took as many
/// heartbeats in those runs, as its core was the limit, not the pause.
pub fn park_for(busy: bool, more: bool, contended: bool) -> Option<f64> {
    match (busy, more, contended) {
        (_, true, true) => Some(FLOOD_PAUSE),
        (_, true, false) => None,
        (true, false, _) => Some(UDP_COALESCE),
        (false, false, _) => None,
    }
}

/// This thread's CPU time in seconds (0 if the clock cannot be read).
fn thread_cpu() -> f64 {
    use nix::time::{clock_gettime, ClockId};
    clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)
        .map_or(0.0, |t| t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// Datagrams one drain found queued that say the socket is busy (they
/// arrived within one turn): the next drain waits for a batch.
pub const BUSY_BATCH: usize = 4;

/// Empties (up to `max` datagrams) a heartbeat socket nobody reads: how
/// many were read, and true when some may be left.
fn drain_udp(sock: &UdpSocket, buf: &mut [u8], max: usize) -> (usize, bool) {
    for n in 0..max {
        if sock.recv_from(buf).is_err() {
            return (n, false);
        }
    }
    (max, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 18: a flood (a drain that used up its share) parks the socket
    /// when the loop waited for a core, shorter than a busy fleet's
    /// coalescing pause; with a core of its own the next share follows at
    /// once; a quiet socket is never parked.
    #[test]
    fn a_contended_full_share_parks_the_socket_briefly_18() {
        assert_eq!(park_for(false, false, false), None);
        assert_eq!(park_for(true, false, false), Some(UDP_COALESCE));
        assert_eq!(park_for(true, true, true), Some(FLOOD_PAUSE));
        assert_eq!(park_for(false, true, true), Some(FLOOD_PAUSE));
        assert_eq!(park_for(true, true, false), None, "own core: no pause");
        assert_eq!(park_for(false, true, false), None);
        const { assert!(FLOOD_PAUSE > 0.0 && FLOOD_PAUSE < UDP_COALESCE) };
        // A loop with a core to itself (wall = CPU) is not contended; one
        // that runs just over half the time it is runnable is.
        const { assert!(CONTENDED_WALL > 1.0 && CONTENDED_WALL < 1.8) };
        const { assert!(CONTENDED_SHARE > 0 && CONTENDED_SHARE < crate::server::udp::TURN) };
    }

    /// The thread clock the contention test reads moves with this
    /// thread's work only.
    #[test]
    fn thread_cpu_counts_this_threads_work() {
        let c0 = thread_cpu();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < std::time::Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(thread_cpu() > c0, "{x}");
    }
}
