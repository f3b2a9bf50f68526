//! Talking to systemd when it runs us as `Type=notify`: `READY=1` once the
//! sockets are bound and the work is loaded, `WATCHDOG=1` from a timer of the
//! event loop (so the pings stop when the loop stops turning and systemd
//! restarts a stuck monitor), `STOPPING=1` on the way out.
//!
//! The datagrams are sent by one helper thread: a `send` to a notify socket
//! whose reader is slow could block, and the loop never blocks. The loop
//! hands messages over a small bounded channel and drops them when it is
//! full (a watchdog ping that cannot be sent now is worth nothing later).
//! Without `$NOTIFY_SOCKET` everything here is a no-op.

use sd_notify::NotifyState;
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};

/// What the loop can tell systemd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Ready,
    Watchdog,
    Stopping,
}

/// The loop's handle; cheap to keep when systemd is absent.
pub struct Notifier {
    tx: Option<SyncSender<Note>>,
    /// Seconds between watchdog pings (half of `WATCHDOG_USEC`), if asked for.
    watchdog_every: Option<f64>,
}

impl Notifier {
    /// Reads `$NOTIFY_SOCKET`, `$WATCHDOG_USEC` and `$WATCHDOG_PID` (left set,
    /// so a SIGUSR1 re-exec, which keeps the pid, can notify again).
    pub fn from_env() -> Notifier {
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            return Notifier { tx: None, watchdog_every: None };
        }
        let mut usec = 0u64;
        let watchdog_every = if sd_notify::watchdog_enabled(false, &mut usec) && usec > 0 {
            Some(usec as f64 / 2e6)
        } else {
            None
        };
        let (tx, rx) = sync_channel::<Note>(8);
        let spawned = std::thread::Builder::new().name("sd-notify".into()).spawn(move || {
            for note in rx {
                let state = match note {
                    Note::Ready => NotifyState::Ready,
                    Note::Watchdog => NotifyState::Watchdog,
                    Note::Stopping => NotifyState::Stopping,
                };
                if let Err(e) = sd_notify::notify(false, &[state]) {
                    log::debug!("sd_notify {note:?}: {e}");
                }
            }
        });
        match spawned {
            Ok(_) => Notifier { tx: Some(tx), watchdog_every },
            Err(e) => {
                log::error!("cannot start the systemd notify thread: {e}");
                Notifier { tx: None, watchdog_every: None }
            }
        }
    }

    /// A notifier that does nothing (tests, no systemd).
    pub fn none() -> Notifier {
        Notifier { tx: None, watchdog_every: None }
    }

    pub fn watchdog_every(&self) -> Option<f64> {
        self.watchdog_every
    }

    /// Queues a note; never waits. `Stopping` is sent at once from the
    /// caller's thread: the loop is over then and the process is about to go.
    pub fn send(&self, note: Note) {
        if note == Note::Stopping && self.tx.is_some() {
            let _ = sd_notify::notify(false, &[NotifyState::Stopping]);
            return;
        }
        if let Some(tx) = &self.tx {
            match tx.try_send(note) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => log::debug!("sd_notify queue full: {note:?} dropped"),
                Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }
}
