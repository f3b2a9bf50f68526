//! The work-config language and the per-host works it resolves to:
//! `parse` (text -> Ast), `validate` (names cross-checked, all errors with
//! `file:line`), `resolve` (Ast -> one `model::Work` per host), `mkwork`
//! (writing the JSON files atomically) and the embedded solo work. Nothing
//! here opens sockets; only `mkwork` and `resolve::load` touch files.

pub mod addr;
pub mod check;
pub mod load;
pub mod logins;
pub mod mkwork;
pub mod model;
pub mod parse;
mod people;
pub mod resolve;
pub mod validate;
pub mod version;

pub use resolve::{for_host, load, resolve_all};

use crate::error::{Error, Result};
use model::Work;
use std::path::Path;

/// `work/solo.work`, embedded: the work of a host with no conf.
pub const SOLO_WORK: &str = include_str!("../../work/solo.work");
/// Replaced by the host's canonical name in `SOLO_WORK` before parsing.
pub const HOST_PLACEHOLDER: &str = "@HOST@";

/// The solo work for `hostname`: client, server and pagemaker at once.
pub fn solo(hostname: &str) -> Result<Work> {
    if hostname.is_empty() || hostname.contains(char::is_whitespace) {
        return Err(Error::Runtime(format!("solo work: bad host name '{hostname}'")));
    }
    let text = SOLO_WORK.replace(HOST_PLACEHOLDER, hostname);
    let ast = parse::parse(Path::new("<embedded solo.work>"), &text)?;
    // The solo work uses syslog only, so no MTA question arises.
    let works = resolve::resolve_with(&ast, &|_| true)?;
    works.into_iter().next().ok_or_else(|| Error::Runtime("solo work has no host".into()))
}

/// The levels of a work that declares none (`fine soso sick crit dead`).
pub fn default_levels() -> Vec<model::Level> {
    validate::DEFAULT_LEVELS
        .iter()
        .map(|n| model::Level { name: n.to_string(), long: n.to_string() })
        .collect()
}

/// The default Nagios map: OK=fine WARNING=sick CRITICAL=crit UNKNOWN=soso.
pub fn default_nagios_map() -> model::NagiosMap {
    model::NagiosMap {
        ok: "fine".into(),
        warning: "sick".into(),
        critical: "crit".into(),
        unknown: "soso".into(),
    }
}
