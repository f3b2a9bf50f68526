//! The server's UDP socket work: drain the heartbeat socket in `recvmmsg`
//! batches until `WouldBlock` or the turn's share ([`TURN`] datagrams), feed
//! each datagram to the [`HostTable`] and answer the ACKs that are due with
//! one `sendmmsg` per batch.
//!
//! Owns: the preallocated receive/ACK buffers and the two syscalls. Never
//! blocks (the socket is non-blocking; a full send buffer drops ACKs, which
//! the client counts as missed), never decodes (the table does).
//!
//! `unsafe` is confined to building the `mmsghdr` arrays for libc; each
//! block says why it is sound. Other Unixes fall back to `recv_from` /
//! `send_to` per datagram.

use super::hosts::{HostChange, HostTable};
use crate::clock::Now;
use std::io;
use std::net::SocketAddr;

/// Datagrams per `recvmmsg` call: at 100,000 datagrams/s a 2 ms drain
/// (the loop's coalescing pause) is one call, not four.
pub const BATCH: usize = 256;
/// Most datagrams one drain takes (one loop turn): under a flood the rest
/// wait in the socket for the next turn, so the command port and the
/// timers are served in between whatever arrives. One batch: a turn's
/// drain lasts about a millisecond (a PING needs two or three turns).
pub const TURN: usize = BATCH;
/// Receive buffer per datagram: one byte over the codec's limit, so an
/// oversize datagram is seen (and refused) rather than silently truncated.
pub const RECV_BUF: usize = crate::wire::MAX_DATAGRAM + 1;

/// Hands every accepted datagram to the journal (or anyone): bytes, source,
/// wall time.
pub type JournalHook = Box<dyn FnMut(&[u8], SocketAddr, f64) + Send>;

/// Counters of the socket side (the table counts decode results).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestStats {
    pub batches: u64,
    pub datagrams: u64,
    pub ack_errors: u64,
}

pub struct Ingest {
    bufs: Vec<Vec<u8>>,
    acks: Vec<Vec<u8>>,
    ack_to: Vec<SocketAddr>,
    changes: Vec<HostChange>,
    pub stats: IngestStats,
    pub journal: Option<JournalHook>,
}

impl Default for Ingest {
    fn default() -> Self {
        Ingest::new()
    }
}

impl Ingest {
    pub fn new() -> Ingest {
        Ingest {
            bufs: (0..BATCH).map(|_| vec![0u8; RECV_BUF]).collect(),
            acks: (0..BATCH).map(|_| Vec::with_capacity(128)).collect(),
            ack_to: Vec::with_capacity(BATCH),
            changes: Vec::new(),
            stats: IngestStats::default(),
            journal: None,
        }
    }

    /// Receives until `WouldBlock` or `max` datagrams, applies every
    /// datagram, sends the ACKs. Returns how many were read and whether
    /// the socket may hold more (the cap was reached: the caller must come
    /// back, as no new readiness edge will say so). `now` is taken once
    /// per call (a drain lasts at most a millisecond or two).
    pub fn drain(
        &mut self,
        sock: &mio::net::UdpSocket,
        table: &mut HostTable,
        now: Now,
        max: usize,
        mut on_change: impl FnMut(HostChange),
    ) -> io::Result<(u64, bool)> {
        let mut total = 0u64;
        let mut lens = [(0usize, None::<SocketAddr>); BATCH];
        loop {
            let room = max.saturating_sub(total as usize).min(BATCH);
            if room == 0 {
                return Ok((total, true));
            }
            let n = match recv_batch(sock, &mut self.bufs[..room], &mut lens) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.stats.batches += 1;
            self.stats.datagrams += n as u64;
            total += n as u64;
            self.ack_to.clear();
            let mut acks_used = 0;
            for (i, &(len, from)) in lens.iter().enumerate().take(n) {
                let Some(from) = from else { continue };
                let data = &self.bufs[i][..len];
                let ack = &mut self.acks[acks_used];
                let res = table.on_datagram(data, from, now, ack, &mut self.changes);
                if res.is_ok() {
                    if let Some(j) = self.journal.as_mut() {
                        j(data, from, now.wall);
                    }
                }
                if !ack.is_empty() {
                    self.ack_to.push(from);
                    acks_used += 1;
                }
                for c in self.changes.drain(..) {
                    on_change(c);
                }
            }
            let sent = send_batch(sock, &self.acks[..acks_used], &self.ack_to);
            table.count_acked(sent as u64);
            self.stats.ack_errors += (acks_used - sent) as u64;
            if n < room {
                // A short batch emptied the queue (recvmmsg with
                // MSG_DONTWAIT takes all that is there); a datagram arriving
                // after it raises a new edge on mio's edge-triggered poll, so
                // skipping the final WouldBlock call loses nothing.
                break;
            }
        }
        Ok((total, false))
    }
}

#[cfg(target_os = "linux")]
pub fn recv_batch(
    sock: &mio::net::UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut [(usize, Option<SocketAddr>); BATCH],
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let n = bufs.len().min(BATCH);
    // SAFETY: all-zero is a valid value for these plain C structs.
    let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
    let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
    let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
    for i in 0..n {
        iovs[i] = libc::iovec { iov_base: bufs[i].as_mut_ptr().cast(), iov_len: bufs[i].len() };
        hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
        hdrs[i].msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as _;
        hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
        hdrs[i].msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every header points at a live buffer/address of the stated
    // size, all outliving the call; the kernel writes at most those sizes.
    let got = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            hdrs.as_mut_ptr(),
            n as _,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut(),
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    let got = got as usize;
    for i in 0..got {
        out[i] = (hdrs[i].msg_len as usize, sockaddr_to_std(&addrs[i]));
    }
    Ok(got)
}

#[cfg(target_os = "linux")]
fn sockaddr_to_std(a: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match a.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let s: &libc::sockaddr_in = unsafe { &*(a as *const _ as *const libc::sockaddr_in) };
            let ip = Ipv4Addr::from(u32::from_be(s.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(s.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let s: &libc::sockaddr_in6 = unsafe { &*(a as *const _ as *const libc::sockaddr_in6) };
            let ip = Ipv6Addr::from(s.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(s.sin6_port),
                s.sin6_flowinfo,
                s.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// Sends `bufs[i]` to `to[i]` with as few syscalls as the OS allows; returns
/// how many were sent (a full socket buffer stops early: the rest are lost).
#[cfg(target_os = "linux")]
pub fn send_batch<B: AsRef<[u8]>>(
    sock: &impl std::os::fd::AsRawFd,
    bufs: &[B],
    to: &[SocketAddr],
) -> usize {
    let n = bufs.len().min(to.len());
    let mut done = 0;
    while done < n {
        let chunk = (n - done).min(BATCH);
        // SAFETY: plain C structs; zero is valid.
        let mut addrs: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        let mut iovs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..chunk {
            let b = bufs[done + i].as_ref();
            let len = std_to_sockaddr(&to[done + i], &mut addrs[i]);
            iovs[i] = libc::iovec { iov_base: b.as_ptr() as *mut _, iov_len: b.len() };
            hdrs[i].msg_hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdrs[i].msg_hdr.msg_namelen = len;
            hdrs[i].msg_hdr.msg_iov = &mut iovs[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: the headers point at live buffers and addresses of the
        // stated lengths; the kernel only reads them.
        let r = unsafe {
            libc::sendmmsg(sock.as_raw_fd(), hdrs.as_mut_ptr(), chunk as _, libc::MSG_DONTWAIT)
        };
        if r <= 0 {
            if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        done += r as usize;
    }
    done
}

#[cfg(target_os = "linux")]
fn std_to_sockaddr(a: &SocketAddr, out: &mut libc::sockaddr_storage) -> libc::socklen_t {
    match a {
        SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_storage is large and aligned enough for sockaddr_in.
            let s: &mut libc::sockaddr_in =
                unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in) };
            s.sin_family = libc::AF_INET as _;
            s.sin_port = v4.port().to_be();
            s.sin_addr = libc::in_addr { s_addr: u32::from(*v4.ip()).to_be() };
            std::mem::size_of::<libc::sockaddr_in>() as _
        }
        SocketAddr::V6(v6) => {
            // SAFETY: as above, for sockaddr_in6.
            let s: &mut libc::sockaddr_in6 =
                unsafe { &mut *(out as *mut _ as *mut libc::sockaddr_in6) };
            s.sin6_family = libc::AF_INET6 as _;
            s.sin6_port = v6.port().to_be();
            s.sin6_addr = libc::in6_addr { s6_addr: v6.ip().octets() };
            s.sin6_flowinfo = v6.flowinfo();
            s.sin6_scope_id = v6.scope_id();
            std::mem::size_of::<libc::sockaddr_in6>() as _
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn recv_batch(
    sock: &mio::net::UdpSocket,
    bufs: &mut [Vec<u8>],
    out: &mut [(usize, Option<SocketAddr>); BATCH],
) -> io::Result<usize> {
    let mut n = 0;
    while n < bufs.len().min(BATCH) {
        match sock.recv_from(&mut bufs[n]) {
            Ok((len, from)) => {
                out[n] = (len, Some(from));
                n += 1;
            }
            Err(e) if n > 0 && e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(not(target_os = "linux"))]
pub fn send_batch<B: AsRef<[u8]>>(
    sock: &mio::net::UdpSocket,
    bufs: &[B],
    to: &[SocketAddr],
) -> usize {
    bufs.iter().zip(to).take_while(|(b, a)| sock.send_to(b.as_ref(), **a).is_ok()).count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::hosts::TableConf;
    use crate::wire::{encode, Decoder, Value};
    use crate::work::model::Intervals;

    #[test]
    fn drains_batches_and_acks_over_loopback() {
        let server = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        // 150 hbd-style names: all admitted as senders.
        let intervals = Intervals { hbd_senders: 1000, ..Intervals::default() };
        let mut table = HostTable::new(TableConf { intervals, key: None }, &[]);
        let n = 150;
        for i in 0..n {
            let d = encode(
                "HTB",
                &[("name", Value::Str(format!("h{i}.example"))), ("seq", Value::Int(i))],
            );
            client.send_to(&d, to).unwrap();
        }
        client.send_to(b"garbage", to).unwrap();
        let mut ingest = Ingest::new();
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let s2 = seen.clone();
        ingest.journal = Some(Box::new(move |_, _, _| {
            s2.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }));
        let mut changes = 0;
        let now = Now { mono: 1.0, wall: 1000.0 };
        // Loopback delivery is immediate, but allow a few drains.
        let mut got = 0;
        for _ in 0..100 {
            got += ingest.drain(&server, &mut table, now, TURN, |_| changes += 1).unwrap().0;
            if got == n as u64 + 1 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(got, n as u64 + 1);
        assert_eq!(table.stats().accepted, n as u64);
        assert_eq!(table.stats().refused, 1);
        assert_eq!(table.stats().acked, n as u64);
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), n as u64);
        // new->up for each; "new host" for the first 10 only (rate-limited).
        assert_eq!(changes, n + 10);
        assert!(ingest.stats.batches >= 1);
        client.set_read_timeout(Some(std::time::Duration::from_secs(2))).unwrap();
        let mut buf = [0u8; 2048];
        let (len, _) = client.recv_from(&mut buf).unwrap();
        let mut dec = Decoder::new();
        assert_eq!(dec.decode(&buf[..len]).unwrap().id, "ACK");
    }

    /// Issue 18: a drain takes at most its share and says when it left
    /// datagrams in the socket (no new edge would tell the loop).
    #[test]
    fn a_drain_stops_at_its_share_and_says_so_18() {
        let server = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = server.local_addr().unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut table =
            HostTable::new(TableConf { intervals: Intervals::default(), key: None }, &[]);
        // 200 small datagrams fit the default receive buffer.
        for _ in 0..200 {
            client.send_to(b"garbage", to).unwrap();
        }
        let mut ingest = Ingest::new();
        let now = Now { mono: 1.0, wall: 1000.0 };
        // Loopback delivery is immediate; wait until a first one is there.
        let mut first = (0, false);
        for _ in 0..200 {
            first = ingest.drain(&server, &mut table, now, 100, |_| {}).unwrap();
            if first.0 > 0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(first, (100, true), "a full share: maybe more");
        let second = ingest.drain(&server, &mut table, now, 100, |_| {}).unwrap();
        assert_eq!(second, (100, true));
        let third = ingest.drain(&server, &mut table, now, 100, |_| {}).unwrap();
        assert_eq!(third, (0, false), "empty: nothing left");
        assert_eq!(table.stats().refused, 200);
    }
}
