pub mod addr;
pub mod mkwork;
pub mod model;
pub mod parse;
pub mod resolve;

use crate::work::model::{Level, NagiosMap, Work};

/// TEMP until the work helper lands: the default levels.
pub fn default_levels() -> Vec<Level> {
    ["fine", "soso", "sick", "crit", "dead"]
        .iter()
        .map(|n| Level { name: n.to_string(), long: n.to_string() })
        .collect()
}

pub fn default_nagios_map() -> NagiosMap {
    NagiosMap {
        ok: "fine".into(),
        warning: "sick".into(),
        critical: "crit".into(),
        unknown: "soso".into(),
    }
}

/// TEMP: the embedded solo work.
pub fn solo(host: &str) -> crate::error::Result<Work> {
    use crate::work::model::*;
    let ports = Ports::default();
    Ok(Work {
        version: WORK_VERSION,
        host: host.into(),
        tag: "solo".into(),
        address: "127.0.0.1".into(),
        roles: Roles { client: true, server: true, pmaker: true },
        ports,
        server: Endpoint {
            host: host.into(),
            tag: "solo".into(),
            address: "127.0.0.1".into(),
            ports,
        },
        pmaker: None,
        intervals: Default::default(),
        levels: default_levels(),
        nagios_map: default_nagios_map(),
        items: vec![],
        server_part: Some(Default::default()),
        pmaker_part: None,
    })
}
