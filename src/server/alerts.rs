//! What people do to alerts through the command port: ACK (no more
//! reminders) and SILENCE (a maintenance window). Checked here, recorded
//! by the store thread's notifier, answered once on disk (framed by
//! `verbs/server.rs`).

use super::{store, Server};
use crate::answer::Refused;
use crate::clock::Now;
use crate::effects::Ticket;

impl Server {
    /// `ACK <host> <item>`.
    pub fn ack(&mut self, args: &[String]) -> Result<Ticket, Refused> {
        let [name, item, ..] = args else {
            return Err(Refused::Usage("usage: ACK <host> <item>"));
        };
        let host = self.resolve_host(name).unwrap_or_else(|| name.clone());
        let ticket = crate::effects::new_ticket();
        self.store.send(store::Req::Ack { ticket, host, item: item.clone() });
        Ok(ticket)
    }

    /// `SILENCE <host> [item] <ival>`.
    pub fn silence(&mut self, args: &[String], now: Now) -> Result<Ticket, Refused> {
        const USAGE: &str = "usage: SILENCE <host> [item] <ival>";
        let (name, item, ival) = match args {
            [h, i] => (h, None, i),
            [h, it, i] => (h, Some(it.as_str()), i),
            _ => return Err(Refused::Usage(USAGE)),
        };
        let host = self.resolve_host(name).ok_or_else(|| Refused::UnknownHost(name.clone()))?;
        let secs =
            crate::ranges::silence_secs(ival).map_err(|e| Refused::Bad(format!("{e}; {USAGE}")))?;
        let until = now.wall + secs;
        let what = item.map(|i| format!("{host} {i}")).unwrap_or(host.clone());
        let ticket = crate::effects::new_ticket();
        let item = item.map(str::to_string);
        self.store.send(store::Req::Silence { ticket, host, item, until, secs, what });
        Ok(ticket)
    }
}
