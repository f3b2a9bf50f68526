//! Probe rounds: every `ival_make_state` the inline items are read on the
//! loop and the rest start off it: blocking probes on helper threads, a
//! `tcp:` to an address as a non-blocking connect, and the items that read
//! a mount point (statvfs can hang on a dead NFS server) on helper threads
//! with a loop-side deadline, since the thread cannot time itself out.

use super::Client;
use crate::client::items::Reading;
use crate::clock::Now;
use crate::effects::{CallOwner, ClientCall, ClientTick, Effects, Job, Tick};
use crate::probes::{ProbeDone, ProbeJob, ProbeKind};
use std::net::SocketAddr;

impl Client {
    /// One round: inline items now, blocking ones (and those that read a
    /// mount point, which can hang) on helper threads.
    pub(super) fn round(&mut self, now: Now, fx: &mut Effects) {
        let mut readings = Vec::new();
        let items: Vec<(String, crate::work::model::ProbeSpec, f64)> =
            self.work.items.iter().map(|i| (i.name.clone(), i.probe.clone(), i.timeout)).collect();
        for (name, spec, timeout) in items {
            match crate::probes::classify(&name) {
                Ok(ProbeKind::Inline) if crate::probes::reads_mount(&name) => {
                    self.start_job(name, spec, timeout, now, fx, true)
                }
                Ok(ProbeKind::Inline) => {
                    readings.push(reading(self.inline.sample(&name, now.mono)))
                }
                Ok(ProbeKind::Blocking) if tcp_target(&name).is_some() => {
                    // An address needs no lookup: connect from the loop.
                    if let Some(addr) =
                        tcp_target(&name).filter(|_| !self.running.contains_key(&name))
                    {
                        self.running.insert(name.clone(), now.mono);
                        let call = ClientCall::Tcp { item: name, started: now.mono };
                        fx.call(CallOwner::Client(call), addr, String::new(), timeout.max(0.1));
                    }
                }
                Ok(ProbeKind::Blocking) => self.start_job(name, spec, timeout, now, fx, false),
                Ok(_) => {}
                Err(e) => readings.push(Reading {
                    item: name,
                    value: None,
                    message: String::new(),
                    error: Some(e),
                }),
            }
        }
        self.take_readings(readings, now, fx);
    }

    /// A probe on a helper thread, unless one of that item still runs.
    /// `deadline`: the thread cannot enforce the timeout itself (a statvfs
    /// on a hung mount never returns), so a timer gives the item its error.
    fn start_job(
        &mut self,
        item: String,
        spec: crate::work::model::ProbeSpec,
        timeout: f64,
        now: Now,
        fx: &mut Effects,
        deadline: bool,
    ) {
        if self.running.contains_key(&item) {
            return;
        }
        self.running.insert(item.clone(), now.mono);
        if deadline {
            let t = ClientTick::ProbeDeadline { item: item.clone(), started: now.mono };
            fx.timer(now.mono + timeout.max(0.1), Tick::Client(t));
        }
        let job = ProbeJob { item, spec, probes_dir: self.probes_dir.clone(), timeout };
        fx.jobs.push(Job::Probe(job));
    }

    /// A mount probe's timeout came: if that run is still going, the item
    /// gets an error now. Its thread stays in `running` (no second one on
    /// the same hung mount) and its late answer, if any, is still taken.
    pub(super) fn probe_deadline(
        &mut self,
        item: String,
        started: f64,
        now: Now,
        fx: &mut Effects,
    ) {
        if self.running.get(&item) != Some(&started) {
            return;
        }
        let error = format!("no answer within {:.0}s (hung mount?)", now.mono - started);
        let r = Reading { item, value: None, message: String::new(), error: Some(error) };
        self.take_readings(vec![r], now, fx);
    }

    pub fn on_probe_done(&mut self, p: ProbeDone, now: Now, fx: &mut Effects) {
        self.running.remove(&p.item);
        let readings = p.samples.into_iter().map(reading).collect();
        self.take_readings(readings, now, fx);
    }
}

/// `tcp:ADDRESS:PORT` with an IP address: probed by a connect from the
/// loop. A name needs a (blocking) lookup, so it goes to a helper thread.
fn tcp_target(item: &str) -> Option<SocketAddr> {
    let arg = item.strip_prefix("tcp:")?;
    let (host, port) = crate::probes::net::split_host_port(arg).ok()?;
    let ip = host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().ok()?;
    Some(SocketAddr::new(ip, port))
}

fn reading(s: crate::probes::Sample) -> Reading {
    Reading { item: s.item, value: s.value, message: s.message, error: s.error }
}
