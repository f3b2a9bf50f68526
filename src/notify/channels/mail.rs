//! `mail` channel: an RFC 5322 message piped to `sendmail -t -oi` (the
//! program and its leading arguments from the `sendmail=` option, default
//! /usr/sbin/sendmail), killed at the timeout; or, with `smtp_server=`,
//! handed to an SMTP server directly (`smtp.rs`).

use super::super::message::Message;
use super::run_child;
use crate::clock::rfc5322;
use std::collections::BTreeMap;

pub fn sendmail_argv(options: &BTreeMap<String, String>) -> Vec<String> {
    let s = options.get("sendmail").map(String::as_str).unwrap_or("/usr/sbin/sendmail");
    s.split_whitespace().map(str::to_string).collect()
}

/// Header values must not carry line breaks (header injection).
fn header(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

pub fn render(to: &str, from: &str, msg: &Message, now: f64, id: i64) -> String {
    let host = from.rsplit('@').next().unwrap_or("localhost");
    let mut out = String::new();
    out.push_str(&format!("From: {}\r\n", header(from)));
    out.push_str(&format!("To: {}\r\n", header(to)));
    out.push_str(&format!("Subject: {}\r\n", header(&msg.subject)));
    out.push_str(&format!("Date: {}\r\n", rfc5322(now)));
    out.push_str(&format!(
        "Message-ID: <hbmon.{}.{}.{}@{}>\r\n",
        now as i64,
        id,
        std::process::id(),
        header(host)
    ));
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    out.push_str("Content-Transfer-Encoding: 8bit\r\n");
    out.push_str("Auto-Submitted: auto-generated\r\n\r\n");
    for line in msg.body.lines() {
        out.push_str(line);
        out.push_str("\r\n");
    }
    out
}

pub fn send(
    to: &str,
    options: &BTreeMap<String, String>,
    msg: &Message,
    now: f64,
    id: i64,
    timeout: f64,
) -> Result<(), String> {
    let from = options.get("from").cloned().unwrap_or_else(|| "hbmon@localhost".to_string());
    let text = render(to, &from, msg, now, id);
    if let Some(smtp) = super::smtp::settings(options)? {
        return super::smtp::send(&smtp, &from, to, text.as_bytes(), timeout);
    }
    let mut argv = sendmail_argv(options);
    argv.push("-t".into());
    argv.push("-oi".into());
    run_child(&argv, &[], Some(text.as_bytes()), timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rfc5322_headers() {
        let mut m = Message::probe();
        m.subject = "[hbmon] www1 load sick\r\nBcc: evil@x".into();
        m.body = "line1\nline2\n".into();
        let t = render("ops@x.org", "hbmon@mon.x.org", &m, 0.0, 7);
        assert!(t.starts_with("From: hbmon@mon.x.org\r\nTo: ops@x.org\r\n"));
        assert!(t.contains("Subject: [hbmon] www1 load sick  Bcc: evil@x\r\n"));
        assert!(t.contains("Date: Thu, 01 Jan 1970 00:00:00 +0000\r\n"));
        assert!(t.contains("@mon.x.org>\r\nMIME-Version: 1.0\r\n"));
        assert!(t.contains("Content-Type: text/plain; charset=utf-8\r\n"));
        assert!(t.ends_with("\r\n\r\nline1\r\nline2\r\n"));
    }
}
