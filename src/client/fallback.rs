//! The client's own alarm for when its server goes quiet: conf `fallback
//! TYPE TARGET [key=value ...]` names one channel (any notification type)
//! that this host uses by itself, so a dead server does not mean silence.
//!
//! `Fallback` keeps what is owed on that channel (in memory: it only
//! matters while this process sees the server dead): the `server dead`
//! alert, retried with backoff until it is delivered, and once it was, the
//! recovery when the server answers again. An alert that never got through
//! before the server came back is dropped with nothing sent. Pure: times
//! in, jobs out.

use crate::notify::message::{compose, Change, Kind};
use crate::notify::NotifyJob;
use crate::work::model::Channel;

/// Outbox id of fallback deliveries (they are not in any outbox).
pub const FALLBACK_ID: i64 = -2;

/// Retries: 2 s, doubling, at most a minute apart, for as long as it matters.
const RETRY_FIRST: f64 = 2.0;
const RETRY_CAP: f64 = 60.0;

pub struct Fallback {
    pub channel: Channel,
    /// The delivery owed, if any: (job, is it the `dead` alert).
    owed: Option<(NotifyJob, bool)>,
    /// What is in flight: Some(true) the dead alert, Some(false) a recovery.
    inflight: Option<bool>,
    /// The dead alert got through: a recovery is owed when the server is back.
    told_dead: bool,
    tries: u32,
    /// Monotonic time before which no retry starts.
    not_before: f64,
}

impl Fallback {
    pub fn new(channel: Channel) -> Fallback {
        Fallback {
            channel,
            owed: None,
            inflight: None,
            told_dead: false,
            tries: 0,
            not_before: 0.0,
        }
    }

    /// The server went quiet (`dead`) or answers again; `job` says so.
    pub fn on_server(&mut self, dead: bool, job: NotifyJob) {
        self.tries = 0;
        self.not_before = 0.0;
        self.owed = if dead || self.told_dead || self.inflight == Some(true) {
            Some((job, dead))
        } else {
            None // the dead alert never got through: nothing to resolve
        };
    }

    /// The job to start now, if one is owed, none is in flight and its
    /// retry time has come.
    pub fn due(&mut self, now_mono: f64) -> Option<NotifyJob> {
        if self.inflight.is_some() || now_mono < self.not_before {
            return None;
        }
        let (job, dead) = self.owed.as_ref()?;
        self.inflight = Some(*dead);
        let mut job = job.clone();
        job.channel = self.channel.clone();
        Some(job)
    }

    /// A delivery's outcome. Returns when to try again, if something is
    /// still owed and waits for a retry.
    pub fn on_done(&mut self, result: &Result<(), String>, now_mono: f64) -> Option<f64> {
        let sent = self.inflight.take();
        match result {
            Ok(()) => {
                self.told_dead = sent == Some(true);
                if self.owed.as_ref().map(|(_, d)| Some(*d)) == Some(sent) {
                    self.owed = None;
                }
                self.tries = 0;
                self.not_before = 0.0;
            }
            Err(_) => {
                if sent == Some(true)
                    && self.owed.as_ref().is_some_and(|(_, d)| !d)
                    && !self.told_dead
                {
                    self.owed = None; // the server is back and it never got through
                }
                self.tries += 1;
                let wait =
                    (RETRY_FIRST * f64::from(1u32 << (self.tries - 1).min(16))).min(RETRY_CAP);
                self.not_before = now_mono + wait;
            }
        }
        self.owed.as_ref().map(|_| self.not_before)
    }

    /// `delivered`, `retrying (N tries)` or `-`, for STATE.
    pub fn describe(&self) -> String {
        match (&self.owed, self.tries) {
            (None, _) => "-".into(),
            (Some((_, dead)), 0) => format!("{} owed", if *dead { "alert" } else { "recovery" }),
            (Some((_, dead)), n) => {
                format!("{} retrying ({n} failed tries)", if *dead { "alert" } else { "recovery" })
            }
        }
    }
}

/// The message for the server going quiet (`dead`) or answering again.
pub fn job(ch: &Channel, host: &str, server: &str, dead: bool, text: &str, now: f64) -> NotifyJob {
    let tag = crate::notify::message::short_host(host, None);
    let (kind, old, new) =
        if dead { (Kind::Alert, "fine", "dead") } else { (Kind::Recovery, "dead", "fine") };
    let text = format!("{text} (server {server})");
    let msg = compose(&Change {
        kind,
        host,
        tag: &tag,
        item: crate::event::builtin::SERVER,
        old,
        new,
        value: None,
        time: now,
        since: now,
        host_state: "up",
        text: &text,
        dashboard: None,
        suppressed: &[],
    });
    NotifyJob { id: FALLBACK_ID, channel: ch.clone(), msg, now }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channels::parse_spec as parse;

    #[test]
    fn parses_and_checks() {
        let c = parse("webhook http://127.0.0.1:9/x?t={TEXT} method=POST").unwrap();
        assert_eq!(
            (c.kind.as_str(), c.target.as_str()),
            ("webhook", "http://127.0.0.1:9/x?t={TEXT}")
        );
        assert_eq!(c.options["method"], "POST");
        assert!(parse("syslog").is_ok());
        assert!(parse("pager 123").unwrap_err().contains("fallback"));
        assert!(parse("webhook not-a-url").is_err());
        assert!(parse("").is_err());
    }

    fn job_for(dead: bool) -> NotifyJob {
        let c = parse("syslog").unwrap();
        job(&c, "www1.example.org", "srv.example.org", dead, "x", 0.0)
    }

    #[test]
    fn dead_alert_retried_until_delivered_then_recovery_12_7() {
        let mut f = Fallback::new(parse("syslog").unwrap());
        f.on_server(true, job_for(true));
        let j = f.due(0.0).unwrap();
        assert_eq!(j.msg.new, "dead");
        assert!(f.due(0.0).is_none(), "one in flight");
        assert_eq!(f.on_done(&Err("refused".into()), 0.0), Some(2.0));
        assert!(f.due(1.9).is_none());
        assert!(f.due(2.0).is_some());
        assert_eq!(f.on_done(&Err("refused".into()), 2.0), Some(6.0));
        assert_eq!(f.describe(), "alert retrying (2 failed tries)");
        assert!(f.due(6.0).is_some());
        assert_eq!(f.on_done(&Ok(()), 6.0), None);
        assert!(f.due(100.0).is_none(), "delivered once");
        f.on_server(false, job_for(false));
        assert_eq!(f.due(100.0).map(|j| j.msg.new), Some("fine".to_string()));
        assert_eq!(f.on_done(&Ok(()), 100.0), None);
        assert_eq!(f.describe(), "-");
    }

    #[test]
    fn undelivered_dead_alert_is_dropped_when_the_server_is_back_12_7() {
        let mut f = Fallback::new(parse("syslog").unwrap());
        f.on_server(true, job_for(true));
        assert!(f.due(0.0).is_some());
        assert!(f.on_done(&Err("refused".into()), 0.0).is_some());
        f.on_server(false, job_for(false));
        assert!(f.due(10.0).is_none(), "nothing was told, nothing to resolve");
        // The server is back while the dead alert is in flight: if it got
        // through, the recovery follows; if not, nothing does.
        f.on_server(true, job_for(true));
        assert!(f.due(20.0).is_some());
        f.on_server(false, job_for(false));
        assert_eq!(f.on_done(&Ok(()), 20.5), Some(0.0));
        assert_eq!(f.due(20.5).map(|j| j.msg.new), Some("fine".to_string()));
        f.on_done(&Ok(()), 21.0);
        f.on_server(true, job_for(true));
        assert!(f.due(30.0).is_some());
        f.on_server(false, job_for(false));
        assert_eq!(f.on_done(&Err("refused".into()), 30.5), None);
        assert!(f.due(100.0).is_none());
    }

    #[test]
    fn messages_say_what_happened() {
        let c = parse("syslog").unwrap();
        let j = job(&c, "www1.example.org", "srv.example.org", true, "no ACK for 50s", 0.0);
        assert_eq!(j.id, FALLBACK_ID);
        assert!(
            j.msg.subject.contains("www1") && j.msg.subject.contains("server"),
            "{}",
            j.msg.subject
        );
        assert!(j.msg.body.contains("srv.example.org"), "{}", j.msg.body);
    }
}
