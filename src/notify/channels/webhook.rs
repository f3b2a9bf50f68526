//! `webhook` channel: the URL template expanded (values percent-encoded),
//! GET or POST (`method=`, default POST) with a JSON or form body (`body=`,
//! default json). 2xx = delivered.

use super::super::message::{expand_url, pct_encode, placeholders, Message};
use std::collections::BTreeMap;
use std::time::Duration;

pub fn agent(timeout: f64) -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs_f64(timeout.max(0.1))).build()
}

pub fn json_body(msg: &Message) -> serde_json::Value {
    let p = placeholders(msg);
    let mut o = serde_json::Map::new();
    for (k, v) in p {
        o.insert(k.trim_matches(['{', '}']).to_lowercase(), serde_json::Value::String(v));
    }
    o.insert("kind".into(), msg.kind.as_str().into());
    o.insert("body".into(), msg.body.clone().into());
    serde_json::Value::Object(o)
}

pub fn send(
    target: &str,
    options: &BTreeMap<String, String>,
    msg: &Message,
    timeout: f64,
) -> Result<(), String> {
    let url = expand_url(target, msg);
    let method = options.get("method").map(|m| m.to_uppercase()).unwrap_or_else(|| "POST".into());
    let req = agent(timeout).request(&method, &url);
    let res = if method == "GET" {
        req.call()
    } else if options.get("body").is_some_and(|b| b == "form") {
        let form: Vec<String> = json_body(msg)
            .as_object()
            .map(|o| {
                o.iter()
                    .map(|(k, v)| format!("{}={}", k, pct_encode(v.as_str().unwrap_or(""))))
                    .collect()
            })
            .unwrap_or_default();
        req.set("Content-Type", "application/x-www-form-urlencoded").send_string(&form.join("&"))
    } else {
        req.set("Content-Type", "application/json").send_string(&json_body(msg).to_string())
    };
    check(res, &url)
}

/// 2xx = Ok; anything else, with the status or transport error named.
pub fn check(res: Result<ureq::Response, ureq::Error>, url: &str) -> Result<(), String> {
    match res {
        Ok(r) if (200..300).contains(&r.status()) => Ok(()),
        Ok(r) => Err(format!("{url}: HTTP {}", r.status())),
        Err(ureq::Error::Status(code, _)) => Err(format!("{url}: HTTP {code}")),
        Err(e) => Err(format!("{url}: {e}")),
    }
}
