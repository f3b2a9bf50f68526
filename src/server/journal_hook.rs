//! The message journal's hook into heartbeat ingest: with conf
//! `journal_enabled`, every datagram the server takes is decoded and
//! handed to the journal's own writer thread (`journal.rs`), which never
//! blocks the loop (a full queue drops and counts).

use super::udp::Ingest;
use crate::conf::Conf;
use crate::journal::{Entry, Journal, JournalConf, JournalStats};
use std::sync::Arc;

/// Starts the journal writer and hooks it into `ingest`; its counters (for
/// STATE), or None when the conf keeps no journal.
pub(super) fn install(
    conf: &Conf,
    ingest: &mut Ingest,
) -> crate::error::Result<Option<Arc<JournalStats>>> {
    if !conf.journal_enabled {
        return Ok(None);
    }
    let j = Journal::spawn(JournalConf::from_conf(conf), crate::journal::QUEUE)?;
    let stats = j.stats.clone();
    let mut dec = crate::wire::Decoder::new();
    ingest.journal = Some(Box::new(move |data: &[u8], from, wall| {
        let message = match dec.decode(data) {
            Ok(m) => m.to_json(),
            Err(_) => serde_json::Value::Null,
        };
        j.log(Entry { wall, from, message });
    }));
    Ok(Some(stats))
}
