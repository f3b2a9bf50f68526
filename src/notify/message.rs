//! Notification texts: subject lines, bodies, digests, webhook URL templates,
//! percent-encoding and UTC time formats. Pure: values and `now` in, strings
//! out; it never touches a socket, a file or the clock.

use serde::{Deserialize, Serialize};

/// Why a delivery is sent; also `HBMON_KIND` for command channels.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Alert,
    Recovery,
    Reminder,
    Digest,
    Flapping,
    Deadman,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Alert => "alert",
            Kind::Recovery => "recovery",
            Kind::Reminder => "reminder",
            Kind::Digest => "digest",
            Kind::Flapping => "flapping",
            Kind::Deadman => "deadman",
        }
    }
}

/// Everything a channel needs to render one delivery; stored as JSON in the
/// outbox so a restart can resend it unchanged.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Message {
    pub kind: Kind,
    pub host: String,
    /// Short host tag (or the first label of the FQDN) for subjects.
    pub tag: String,
    pub item: String,
    pub old: String,
    pub new: String,
    pub value: Option<f64>,
    /// When the change happened (Unix seconds).
    pub time: f64,
    /// When the alert started (Alertmanager `startsAt`).
    pub since: f64,
    pub host_state: String,
    pub subject: String,
    pub body: String,
    /// Dashboard link for the host, if a dashboard is configured.
    pub link: Option<String>,
}

impl Message {
    /// A sample message (validation of URL templates, tests).
    pub fn probe() -> Message {
        digest(&[], 0.0)
    }
}

/// Inputs to `compose`, borrowed from the engine's state.
pub struct Change<'a> {
    pub kind: Kind,
    pub host: &'a str,
    pub tag: &'a str,
    pub item: &'a str,
    pub old: &'a str,
    pub new: &'a str,
    pub value: Option<f64>,
    pub time: f64,
    pub since: f64,
    pub host_state: &'a str,
    pub text: &'a str,
    pub dashboard: Option<&'a str>,
    /// Children suppressed into this (parent's) alert.
    pub suppressed: &'a [String],
}

/// Short host name: the work's tag when known, else the FQDN's first label.
pub fn short_host(fqdn: &str, tag: Option<&str>) -> String {
    match tag {
        Some(t) if !t.is_empty() => t.to_string(),
        _ => fqdn.split('.').next().unwrap_or(fqdn).to_string(),
    }
}

/// `91.2 %` for percentages (items named `*_used*`/`*pct*`), else the number.
pub fn fmt_value(item: &str, v: Option<f64>) -> String {
    let Some(v) = v else { return String::new() };
    let num = if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.1}")
    };
    if item.contains("_used") || item.contains("pct") {
        format!("{num} %")
    } else {
        num
    }
}

pub fn compose(c: &Change) -> Message {
    let val = fmt_value(c.item, c.value);
    let val_part = if val.is_empty() { String::new() } else { format!(" ({val})") };
    let subject = match c.kind {
        Kind::Recovery => format!("[hbmon] {} {} recovered: {}{}", c.tag, c.item, c.new, val_part),
        Kind::Reminder => format!("[hbmon] {} {} still {}{}", c.tag, c.item, c.new, val_part),
        Kind::Flapping => format!("[hbmon] {} {} is flapping", c.tag, c.item),
        _ => format!("[hbmon] {} {} {}{}", c.tag, c.item, c.new, val_part),
    };
    let mut body = String::new();
    body.push_str(&format!("Host:   {}\nItem:   {}\n", c.host, c.item));
    body.push_str(&format!("Level:  {} -> {}\n", c.old, c.new));
    if !val.is_empty() {
        body.push_str(&format!("Value:  {val}\n"));
    }
    body.push_str(&format!("Time:   {}\n", crate::clock::fmt_time(c.time)));
    if c.kind != Kind::Alert && c.kind != Kind::Flapping {
        body.push_str(&format!("Since:  {}\n", crate::clock::fmt_time(c.since)));
    }
    body.push_str(&format!("Host state: {}\n", c.host_state));
    match c.kind {
        Kind::Recovery => body.push_str("The item is back to the best level.\n"),
        Kind::Reminder => body.push_str("Still not acknowledged (hbmon ack HOST ITEM).\n"),
        Kind::Flapping => body.push_str(
            "The level changes too often; further changes are not notified until it settles.\n",
        ),
        _ => {}
    }
    if !c.text.is_empty() {
        body.push_str(&format!("Message: {}\n", c.text));
    }
    if !c.suppressed.is_empty() {
        body.push_str(&format!(
            "Suppressed (children of this host): {}\n",
            c.suppressed.join(", ")
        ));
    }
    let link = c.dashboard.map(|d| format!("{}/host/{}", d.trim_end_matches('/'), c.host));
    if let Some(l) = &link {
        body.push_str(&format!("Dashboard: {l}\n"));
    }
    Message {
        kind: c.kind,
        host: c.host.to_string(),
        tag: c.tag.to_string(),
        item: c.item.to_string(),
        old: c.old.to_string(),
        new: c.new.to_string(),
        value: c.value,
        time: c.time,
        since: c.since,
        host_state: c.host_state.to_string(),
        subject,
        body,
        link,
    }
}

/// Merges held messages into one digest (subject counts, one line each).
pub fn digest(msgs: &[Message], now: f64) -> Message {
    let alerts = msgs.iter().filter(|m| m.kind != Kind::Recovery).count();
    let recoveries = msgs.len() - alerts;
    let subject = format!("[hbmon] digest: {alerts} alerts, {recoveries} recoveries");
    let mut body = format!("{} notifications held during a storm:\n", msgs.len());
    for m in msgs {
        body.push_str(m.subject.trim_start_matches("[hbmon] "));
        body.push('\n');
    }
    Message {
        kind: Kind::Digest,
        host: String::new(),
        tag: String::new(),
        item: String::new(),
        old: String::new(),
        new: String::new(),
        value: None,
        time: now,
        since: now,
        host_state: String::new(),
        subject,
        body,
        link: None,
    }
}

/// RFC 3986 percent-encoding: everything but unreserved characters.
pub fn pct_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The placeholder values of a message, `{TEXT}` being the subject line.
pub fn placeholders(m: &Message) -> [(&'static str, String); 8] {
    [
        ("{HOST}", m.host.clone()),
        ("{ITEM}", m.item.clone()),
        ("{OLD}", m.old.clone()),
        ("{NEW}", m.new.clone()),
        ("{VALUE}", m.value.map(|v| v.to_string()).unwrap_or_default()),
        ("{TIME}", crate::clock::rfc3339(m.time)),
        ("{TIMESTAMP}", format!("{}", m.time as i64)),
        ("{TEXT}", m.subject.clone()),
    ]
}

/// Expands a webhook URL template, percent-encoding every substituted value.
pub fn expand_url(template: &str, m: &Message) -> String {
    let mut out = template.to_string();
    for (k, v) in placeholders(m) {
        out = out.replace(k, &pct_encode(&v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(kind: Kind) -> Change<'static> {
        Change {
            kind,
            host: "www1.example.org",
            tag: "www1",
            item: "disk_used:/",
            old: "ok",
            new: "sick",
            value: Some(91.2),
            time: 1_795_924_573.0,
            since: 1_795_924_573.0,
            host_state: "up",
            text: "",
            dashboard: Some("http://dash:50004/"),
            suppressed: &[],
        }
    }

    #[test]
    fn alert_subject_and_body() {
        let m = compose(&change(Kind::Alert));
        assert_eq!(m.subject, "[hbmon] www1 disk_used:/ sick (91.2 %)");
        assert!(m.body.contains("Level:  ok -> sick\n"), "{}", m.body);
        assert!(m.body.contains("Time:   2026-11-29 03:56:13 UTC\n"), "{}", m.body);
        assert!(m.body.contains("Dashboard: http://dash:50004/host/www1.example.org\n"));
        assert!(m.body.contains("Host state: up\n"));
    }

    #[test]
    fn recovery_and_flapping_texts() {
        let mut c = change(Kind::Recovery);
        c.old = "sick";
        c.new = "ok";
        c.value = Some(40.0);
        let m = compose(&c);
        assert_eq!(m.subject, "[hbmon] www1 disk_used:/ recovered: ok (40 %)");
        assert!(m.body.contains("back to the best level"));
        let f = compose(&change(Kind::Flapping));
        assert_eq!(f.subject, "[hbmon] www1 disk_used:/ is flapping");
    }

    #[test]
    fn suppressed_children_listed() {
        let kids = vec!["a.x".to_string(), "b.x".to_string()];
        let mut c = change(Kind::Alert);
        c.suppressed = &kids;
        assert!(compose(&c).body.contains("Suppressed (children of this host): a.x, b.x\n"));
    }

    #[test]
    fn digest_counts() {
        let a = compose(&change(Kind::Alert));
        let mut r = a.clone();
        r.kind = Kind::Recovery;
        let d = digest(&[a.clone(), a, r], 0.0);
        assert_eq!(d.subject, "[hbmon] digest: 2 alerts, 1 recoveries");
        assert_eq!(d.body.lines().count(), 4);
        assert!(d.body.contains("www1 disk_used:/ sick (91.2 %)\n"));
    }

    #[test]
    fn percent_encoding_and_template() {
        assert_eq!(pct_encode("a b/c&d=é~"), "a%20b%2Fc%26d%3D%C3%A9~");
        let m = compose(&change(Kind::Alert));
        let u = expand_url("http://h/x?host={HOST}&item={ITEM}&v={VALUE}&t={TIMESTAMP}", &m);
        assert_eq!(u, "http://h/x?host=www1.example.org&item=disk_used%3A%2F&v=91.2&t=1795924573");
    }

    #[test]
    fn time_formats() {}
}
