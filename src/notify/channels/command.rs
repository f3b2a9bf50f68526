//! `command` channel: runs `sh -c TARGET` with the event in `HBMON_*`
//! environment variables; exit 0 = delivered.

use super::super::message::{placeholders, Message};
use super::run_child;

pub fn send(target: &str, msg: &Message, timeout: f64) -> Result<(), String> {
    let p = placeholders(msg);
    let get = |k: &str| p.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let env = [
        ("HBMON_HOST", msg.host.clone()),
        ("HBMON_ITEM", msg.item.clone()),
        ("HBMON_OLD", msg.old.clone()),
        ("HBMON_NEW", msg.new.clone()),
        ("HBMON_VALUE", get("{VALUE}")),
        ("HBMON_TIME", get("{TIME}")),
        ("HBMON_TEXT", msg.body.clone()),
        ("HBMON_SUBJECT", msg.subject.clone()),
        ("HBMON_KIND", msg.kind.as_str().to_string()),
    ];
    let argv = ["/bin/sh".to_string(), "-c".to_string(), target.to_string()];
    run_child(&argv, &env, None, timeout)
}
