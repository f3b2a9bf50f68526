//! `ping:HOST` items: value = average RTT in ms, message with the loss %.
//!
//! First choice is an unprivileged ICMP datagram socket (socket(AF_INET,
//! SOCK_DGRAM, IPPROTO_ICMP); allowed when the process's group is in
//! net.ipv4.ping_group_range). When the kernel refuses it, the `ping`
//! command is run (`ping -c 3 -W 1 HOST`) and its summary parsed; the parser
//! knows iputils and busybox output. Blocks up to the timeout: helper thread.

use super::exec;
use super::Sample;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Echo requests sent per sample.
const COUNT: u16 = 3;

/// What a ping run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct PingStats {
    pub transmitted: u32,
    pub received: u32,
    pub loss_pct: f64,
    /// Average RTT of the replies, if any came.
    pub avg_ms: Option<f64>,
}

impl PingStats {
    fn sample(&self, item: &str, how: &str) -> Sample {
        let msg = format!(
            "{}/{} received, {}% loss ({how})",
            self.received, self.transmitted, self.loss_pct
        );
        match self.avg_ms {
            Some(avg) if self.received > 0 => Sample::ok(item, avg, msg),
            _ => Sample::failed(item, msg),
        }
    }
}

/// Parse the summary of iputils or busybox `ping`.
pub fn parse_ping_output(text: &str) -> Result<PingStats, String> {
    let summary = text
        .lines()
        .find(|l| l.contains("packets transmitted"))
        .ok_or("no 'packets transmitted' line in ping output")?;
    let mut transmitted = None;
    let mut received = None;
    let mut loss = None;
    for part in summary.split(',') {
        let part = part.trim();
        let first = part.split_whitespace().next().unwrap_or("");
        if part.ends_with("transmitted") {
            transmitted = first.parse::<u32>().ok();
        } else if part.ends_with("received") {
            received = first.parse::<u32>().ok();
        } else if part.ends_with("packet loss") {
            loss = first.trim_end_matches('%').parse::<f64>().ok();
        }
    }
    let transmitted = transmitted.ok_or("no transmitted count in ping output")?;
    let received = received.ok_or("no received count in ping output")?;
    let loss_pct = match loss {
        Some(l) => l,
        None if transmitted > 0 => {
            100.0 * (transmitted - received.min(transmitted)) as f64 / transmitted as f64
        }
        None => 100.0,
    };
    // `rtt min/avg/max/mdev = a/b/c/d ms` (iputils) or
    // `round-trip min/avg/max = a/b/c ms` (busybox).
    let avg_ms = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("rtt ") || l.starts_with("round-trip"))
        .and_then(|l| l.split_once('='))
        .and_then(|(_, v)| v.trim().split('/').nth(1).map(str::to_string))
        .and_then(|v| v.trim().parse::<f64>().ok());
    Ok(PingStats { transmitted, received, loss_pct, avg_ms })
}

fn resolve(host: &str) -> Result<IpAddr, String> {
    let addrs: Vec<SocketAddr> =
        (host, 0).to_socket_addrs().map_err(|e| format!("cannot resolve {host}: {e}"))?.collect();
    // Prefer IPv4, as `ping` does.
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| a.ip())
        .ok_or_else(|| format!("no address for {host}"))
}

/// Ping HOST: ICMP socket, else the `ping` command.
pub fn ping(item: &str, host: &str, timeout: Duration) -> Sample {
    if host.is_empty() || host.starts_with('-') {
        return Sample::failed(item, format!("bad host '{host}'"));
    }
    let ip = match resolve(host) {
        Ok(ip) => ip,
        Err(e) => return Sample::failed(item, e),
    };
    match icmp_socket(ip) {
        Ok(sock) => match echo(&sock, ip, timeout) {
            Ok(stats) => stats.sample(item, "icmp socket"),
            Err(e) => Sample::failed(item, e),
        },
        // EACCES/EPERM: not in ping_group_range; fall back to the setuid tool.
        Err(_) => ping_command(item, &ip.to_string(), timeout),
    }
}

fn ping_command(item: &str, target: &str, timeout: Duration) -> Sample {
    let argv: Vec<String> =
        ["ping", "-c", "3", "-W", "1", target].iter().map(|s| s.to_string()).collect();
    match exec::run_command(&argv, timeout, exec::DEFAULT_CAP) {
        Ok(out) => match parse_ping_output(&out.stdout) {
            Ok(stats) => stats.sample(item, "ping command"),
            Err(e) => {
                let why = exec::first_line(&out.stderr);
                Sample::failed(item, if why.is_empty() { e } else { format!("ping: {why}") })
            }
        },
        Err(e) => Sample::failed(item, e.to_string()),
    }
}

fn icmp_socket(ip: IpAddr) -> std::io::Result<Socket> {
    match ip {
        IpAddr::V4(_) => Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::ICMPV4)),
        IpAddr::V6(_) => Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::ICMPV6)),
    }
}

/// An ICMP echo request; on a ping socket the kernel fills in the
/// identifier and checksum.
fn echo_request(v6: bool, seq: u16) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[0] = if v6 { 128 } else { 8 };
    p[6..8].copy_from_slice(&seq.to_be_bytes());
    p[8..16].copy_from_slice(b"hbmon-pi");
    p
}

fn echo(sock: &Socket, ip: IpAddr, timeout: Duration) -> Result<PingStats, String> {
    let v6 = ip.is_ipv6();
    let reply_type = if v6 { 129 } else { 0 };
    let dest = SockAddr::from(SocketAddr::new(ip, 0));
    let started = Instant::now();
    // Each request gets an equal share of the time, at most a second.
    let per = (timeout / u32::from(COUNT)).min(Duration::from_secs(1));
    let mut rtts = Vec::new();
    for seq in 1..=COUNT {
        let t0 = Instant::now();
        sock.send_to(&echo_request(v6, seq), &dest).map_err(|e| format!("send to {ip}: {e}"))?;
        let until = t0 + per;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || started.elapsed() >= timeout {
                break;
            }
            sock.set_read_timeout(Some(left)).map_err(|e| format!("socket timeout: {e}"))?;
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); 512];
            match sock.recv(&mut buf) {
                Ok(n) if n >= 8 => {
                    // SAFETY: recv initialised the first n bytes.
                    let b: Vec<u8> = buf[..n].iter().map(|x| unsafe { x.assume_init() }).collect();
                    if b[0] == reply_type && u16::from_be_bytes([b[6], b[7]]) == seq {
                        rtts.push(t0.elapsed().as_secs_f64() * 1000.0);
                        break;
                    }
                }
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }
    let received = rtts.len() as u32;
    let transmitted = u32::from(COUNT);
    Ok(PingStats {
        transmitted,
        received,
        loss_pct: (100.0 * (transmitted - received) as f64 / transmitted as f64).round(),
        avg_ms: (received > 0).then(|| rtts.iter().sum::<f64>() / received as f64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iputils() {
        let t = "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.\n\
            64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.045 ms\n\
            64 bytes from 127.0.0.1: icmp_seq=2 ttl=64 time=0.049 ms\n\
            64 bytes from 127.0.0.1: icmp_seq=3 ttl=64 time=0.036 ms\n\n\
            --- 127.0.0.1 ping statistics ---\n\
            3 packets transmitted, 3 received, 0% packet loss, time 2030ms\n\
            rtt min/avg/max/mdev = 0.036/0.043/0.049/0.005 ms\n";
        let s = parse_ping_output(t).unwrap();
        assert_eq!(
            s,
            PingStats { transmitted: 3, received: 3, loss_pct: 0.0, avg_ms: Some(0.043) }
        );
        let smp = s.sample("ping:x", "ping command");
        assert_eq!(smp.value, Some(0.043));
        assert!(smp.message.contains("0% loss"));
    }

    #[test]
    fn iputils_all_lost_with_errors() {
        let t = "PING 10.9.9.9 (10.9.9.9) 56(84) bytes of data.\n\
            From 10.0.0.1 icmp_seq=1 Destination Host Unreachable\n\n\
            --- 10.9.9.9 ping statistics ---\n\
            3 packets transmitted, 0 received, +3 errors, 100% packet loss, time 2003ms\n";
        let s = parse_ping_output(t).unwrap();
        assert_eq!(s, PingStats { transmitted: 3, received: 0, loss_pct: 100.0, avg_ms: None });
        let smp = s.sample("ping:x", "ping command");
        assert_eq!(smp.value, None);
        assert!(smp.error.unwrap().contains("100% loss"));
    }

    #[test]
    fn busybox_partial_loss() {
        let t = "PING 192.168.1.1 (192.168.1.1): 56 data bytes\n\
            64 bytes from 192.168.1.1: seq=0 ttl=64 time=0.512 ms\n\
            64 bytes from 192.168.1.1: seq=2 ttl=64 time=0.620 ms\n\n\
            --- 192.168.1.1 ping statistics ---\n\
            3 packets transmitted, 2 packets received, 33% packet loss\n\
            round-trip min/avg/max = 0.512/0.566/0.620 ms\n";
        let s = parse_ping_output(t).unwrap();
        assert_eq!(
            s,
            PingStats { transmitted: 3, received: 2, loss_pct: 33.0, avg_ms: Some(0.566) }
        );
    }

    #[test]
    fn garbage() {
        assert!(parse_ping_output("ping: unknown host nope\n").is_err());
        assert!(parse_ping_output("x packets transmitted, 1 received\n").is_err());
    }

    #[test]
    fn request_layout() {
        let p = echo_request(false, 0x0102);
        assert_eq!((p[0], p[1], p[6], p[7]), (8, 0, 1, 2));
        assert_eq!(echo_request(true, 1)[0], 128);
    }
}
