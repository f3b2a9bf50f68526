//! The client's side of HIST and ZAP: the arguments checked here (a bad
//! one is refused before the store's queue), the query sent to the
//! history's store thread, and a ticket that its answer finishes
//! (`verbs/client.rs` frames it).

use super::Client;
use crate::answer::Refused;
use crate::clock::Now;
use crate::effects::Ticket;
use crate::store::Query;

impl Client {
    /// `HIST [ival] [pnts] [host] [item...]`: this host's history only.
    pub fn hist(&self, args: &[String], now: Now) -> Result<Ticket, Refused> {
        let mut args = args.iter().peekable();
        let mut ival = "H".to_string();
        if let Some(a) = args.peek() {
            // A bare word that is not an item names the interval (H D W M
            // Y, by first letter); the store refuses any other.
            if a.chars().all(|c| c.is_ascii_alphabetic()) && !self.items_has(a) && !self.is_me(a) {
                ival = a.to_string();
                args.next();
            }
        }
        let mut pnts = None;
        // A number here is pnts and must be a valid one (`-1`, `nan` and
        // `99999999999` are errors, not item names).
        if let Some(a) = args.peek().filter(|a| crate::ranges::looks_numeric(a)) {
            let n = crate::ranges::check_count("HIST pnts", a)
                .map_err(|e| Refused::Bad(format!("bad args: {e}")))?;
            pnts = Some(n as u32);
            args.next();
        }
        if args.peek().is_some_and(|a| self.is_me(a)) {
            args.next();
        }
        let items: Vec<String> = args.cloned().collect();
        // A bad interval is refused here, not after the store's queue.
        crate::store::parse_hist_ival(&ival, pnts).map_err(|e| Refused::Bad(e.to_string()))?;
        Ok(self.ask_store(Query::Hist { ival, pnts, items, now: now.wall }))
    }

    /// `ZAP`: downsample the history now.
    pub fn zap(&mut self, now: Now) -> Ticket {
        let keep = self.work.intervals.keep_history;
        self.ask_store(Query::Zap { now: now.wall, keep })
    }

    /// Does `name` name this host (its name or its tag)?
    fn is_me(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(&self.host) || name.eq_ignore_ascii_case(&self.work.tag)
    }

    fn items_has(&self, name: &str) -> bool {
        self.items.get(name).is_some()
    }

    /// The session waits for the store thread's answer, which comes back
    /// through `on_store_done` after the writes queued before it.
    fn ask_store(&self, q: Query) -> Ticket {
        let ticket = crate::effects::new_ticket();
        self.store.send(crate::store::StoreReq::Query { ticket, q });
        ticket
    }
}
