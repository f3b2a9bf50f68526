//! The client's heartbeat side, glued to the rest: HTB datagrams to the
//! server (and conf `heartbeat_to`), ACKs giving the RTT and the server's
//! view of our work, and the `server` item (plus the fallback channel)
//! when the server stops answering. The datagrams themselves are built in
//! `heartbeat.rs`.

use super::{fallback, heartbeat, Client};
use crate::clock::Now;
use crate::effects::{Effects, Job};
use crate::event::builtin;
use std::net::SocketAddr;

impl Client {
    pub(super) fn set_targets(&mut self) {
        let Some(server) =
            self.names.sock(&self.work.server.address, self.work.server.ports.hb_port)
        else {
            log::error!("no heartbeat address for the server {}", self.work.server.host);
            return;
        };
        let (targets, bad) =
            heartbeat::targets(server, &self.extra_targets, self.work.server.ports.hb_port);
        for b in bad {
            log::error!("heartbeat_to {b}: not an address");
        }
        self.hb_targets = targets;
    }

    /// A new names table: a server named by name gets (or changes) its
    /// address; a client that had none fetches its work and sends what
    /// waited.
    pub fn set_names(&mut self, names: crate::names::Names, now: Now, fx: &mut Effects) {
        self.names = names;
        let had = self.server;
        self.server = self.names.sock(&self.work.server.address, self.work.server.ports.port);
        if self.server == had {
            return;
        }
        self.set_targets();
        self.arm_heartbeat(now.mono + 0.05, fx);
        if had.is_none() {
            if self.fetches_work {
                self.ask_work(super::sync::WorkAsk::Work, now, fx);
            }
            self.send_events(now, fx);
        }
    }

    pub(super) fn heartbeat(&mut self, now: Now, fx: &mut Effects) {
        // Our work's version rides along, so an `ack=0` heartbeat is still
        // answered when the server has a newer work for us.
        self.hb.work = self.fetches_work.then_some(self.work_lm);
        let d = self.hb.build(now, false);
        for t in &self.hb_targets {
            fx.datagrams.push((*t, d.clone()));
        }
        self.check_server(now, fx);
    }

    /// Raises or clears the `server` item when the server stops or starts answering.
    pub(super) fn check_server(&mut self, now: Now, fx: &mut Effects) {
        let dead = self.hb.server_dead(now.mono);
        if dead != self.server_dead {
            self.server_dead = dead;
            let best = self.items.level_name(0).to_string();
            let worst = self.items.level_name(self.work.levels.len().saturating_sub(1)).to_string();
            let msg = if dead {
                let msg =
                    format!("no ACK from the server for {}s", self.work.intervals.server_dead);
                log::error!("{msg}");
                self.set_item(builtin::SERVER, None, &worst, &msg, now, fx);
                msg
            } else {
                log::warn!("the server answers again");
                self.set_item(builtin::SERVER, Some(1.0), &best, "the server answers", now, fx);
                "the server answers again".to_string()
            };
            if let Some(fb) = &mut self.fallback {
                let j = fallback::job(
                    &fb.channel,
                    &self.host,
                    &self.work.server.host,
                    dead,
                    &msg,
                    now.wall,
                );
                fb.on_server(dead, j);
            }
            self.pump_fallback(now, fx);
        }
    }

    /// Conf `fallback` (at start and at every reload): a channel added
    /// while the server is dead is told so at once; one that changed keeps
    /// what is owed.
    pub(super) fn set_fallback(&mut self, conf: &crate::conf::Conf, now: Now, fx: &mut Effects) {
        let ch =
            conf.fallback.as_deref().and_then(|f| match crate::notify::channels::parse_spec(f) {
                Ok(ch) => Some(ch),
                Err(e) => {
                    log::error!("{e}");
                    None
                }
            });
        match (ch, &mut self.fallback) {
            (None, _) => self.fallback = None,
            (Some(ch), Some(fb)) => fb.channel = ch,
            (Some(ch), None) => {
                let mut fb = fallback::Fallback::new(ch);
                if self.server_dead {
                    let msg =
                        format!("no ACK from the server for {}s", self.work.intervals.server_dead);
                    let j = fallback::job(
                        &fb.channel,
                        &self.host,
                        &self.work.server.host,
                        true,
                        &msg,
                        now.wall,
                    );
                    fb.on_server(true, j);
                }
                self.fallback = Some(fb);
                self.pump_fallback(now, fx);
            }
        }
    }

    /// Starts the fallback delivery that is owed, if its time has come.
    pub(super) fn pump_fallback(&mut self, now: Now, fx: &mut Effects) {
        if let Some(j) = self.fallback.as_mut().and_then(|fb| fb.due(now.mono)) {
            fx.jobs.push(Job::Notify(Box::new(j)));
        }
    }

    /// A fallback delivery's outcome (from the helper thread).
    pub fn on_fallback_done(&mut self, result: Result<(), String>, now: Now, fx: &mut Effects) {
        match &result {
            Ok(()) => log::warn!("fallback notification delivered"),
            Err(e) => log::error!("fallback notification failed: {e}"),
        }
        let Some(fb) = self.fallback.as_mut() else { return };
        match fb.on_done(&result, now.mono) {
            Some(at) if at > now.mono => {
                log::warn!("fallback: retrying at +{:.0}s ({})", at - now.mono, fb.describe());
                self.schedule_fallback(at, fx);
            }
            Some(_) => self.pump_fallback(now, fx),
            None => {}
        }
    }

    /// An ACK on the heartbeat socket (`stamp`: kernel receive time).
    pub fn on_datagram(
        &mut self,
        d: &[u8],
        from: SocketAddr,
        stamp: Option<f64>,
        now: Now,
        fx: &mut Effects,
    ) {
        match self.hb.on_ack(d, stamp.unwrap_or(now.wall), now) {
            Ok(a) => {
                self.clock_item(a.clock_off, now, fx);
                if let Some(rtt) = a.rtt_ms {
                    let best = self.items.level_name(0).to_string();
                    self.set_item(builtin::RTT, Some(rtt), &best, "", now, fx);
                }
                if let Some(lm) = a.work_lm {
                    self.server_work_lm(lm, now, fx);
                }
                if self.server_dead {
                    self.check_server(now, fx);
                }
            }
            Err(e) => log::debug!("datagram from {from} ignored: {e:?}"),
        }
    }

    /// The `clock` item: an error while the server says our clock is off
    /// by more than its window (it drops our heartbeats then), cleared by
    /// the next normal ACK.
    fn clock_item(&mut self, off: Option<f64>, now: Now, fx: &mut Effects) {
        match off {
            Some(off) => {
                let worst =
                    self.items.level_name(self.work.levels.len().saturating_sub(1)).to_string();
                let msg = format!(
                    "clock off by {off:+.1}s from the server {} (allowed {}s): heartbeats are dropped; fix the time (NTP)",
                    self.work.server.host,
                    crate::wire::MAX_SKEW
                );
                if !self.clock_off {
                    log::error!("{msg}");
                }
                self.clock_off = true;
                self.set_item(builtin::CLOCK, None, &worst, &msg, now, fx);
            }
            None if self.clock_off => {
                self.clock_off = false;
                log::warn!("the clock agrees with the server again");
                let best = self.items.level_name(0).to_string();
                self.set_item(builtin::CLOCK, Some(0.0), &best, "", now, fx);
            }
            None => {}
        }
    }
}
