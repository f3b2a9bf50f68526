//! The heartbeat path warning (issue 15): a host that answers the server's
//! probe while its heartbeats are missing is alive, so the fault is on the
//! way its heartbeats take (UDP blocked or lossy). One warning change when
//! it starts, one when [`PATH_CLEAR`] heartbeats have arrived since the last
//! answered probe; the host's `path_warned` counts them meanwhile.

use super::{ChangeKind, Host, HostChange};
use crate::clock::Now;

/// Heartbeats after the last answered probe that clear the path warning.
pub const PATH_CLEAR: u32 = 100;

/// The host answered a probe (call before `last_seen` moves to now).
pub(super) fn answered(h: &mut Host, now: Now) -> Option<HostChange> {
    let silent = h.last_seen.map(|l| now.mono - l).unwrap_or(0.0);
    if h.path_warned.replace(0).is_some() {
        return None;
    }
    Some(HostChange {
        host: h.name.to_string(),
        kind: ChangeKind::HeartbeatPath(true),
        time: now.wall,
        message: format!(
            "no heartbeat for {silent:.1}s but it answers the server: heartbeats lost \
             ({} so far), the heartbeat path (UDP) is blocked or lossy",
            h.seq_gaps
        ),
    })
}

/// A heartbeat arrived.
pub(super) fn heartbeat(h: &mut Host, now: Now) -> Option<HostChange> {
    let n = h.path_warned.as_mut()?;
    *n += 1;
    if *n < PATH_CLEAR {
        return None;
    }
    h.path_warned = None;
    Some(HostChange {
        host: h.name.to_string(),
        kind: ChangeKind::HeartbeatPath(false),
        time: now.wall,
        message: format!("{PATH_CLEAR} heartbeats since the last probe it answered"),
    })
}
