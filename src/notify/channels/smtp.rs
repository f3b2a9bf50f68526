//! `mail` channel without a local MTA: the message (rendered by `mail.rs`)
//! handed straight to an SMTP server with lettre, on the notifier's helper
//! thread, bounded by the channel's timeout. Options (all on the `channel`
//! line, as hbd's email channel has them):
//!
//! - `smtp_server=HOST` turns this on (else `sendmail` is used);
//! - `tls=starttls` (default; STARTTLS required), `tls=tls` (implicit TLS,
//!   "SMTPS") or `tls=none` (plain, for a trusted local relay);
//! - `port=N` (default 587, 465 with `tls=tls`, 25 with `tls=none`);
//! - `user=` and `password=` for AUTH (PLAIN or LOGIN; only over TLS unless
//!   `tls=none` says otherwise);
//! - `tls_ca=FILE`: a PEM certificate to trust besides the public roots
//!   (a private CA or a self-signed server).

use lettre::address::{Address, Envelope};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{SmtpTransport, Transport};
use std::collections::BTreeMap;
use std::time::Duration;

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    StartTls,
    Implicit,
    Plain,
}

/// The SMTP settings of a channel, checked (for mkwork/`hbmon test` too).
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub server: String,
    pub port: u16,
    pub security: Security,
    pub credentials: Option<(String, String)>,
    pub tls_ca: Option<String>,
}

/// Whether a channel's options ask for direct SMTP.
pub fn wanted(options: &BTreeMap<String, String>) -> bool {
    options.contains_key("smtp_server")
}

/// Reads and checks the options; None when the channel uses sendmail.
pub fn settings(options: &BTreeMap<String, String>) -> Result<Option<Settings>, String> {
    let Some(server) = options.get("smtp_server") else {
        for k in ["tls", "port", "user", "password", "tls_ca"] {
            if options.contains_key(k) {
                return Err(format!(
                    "{k}= needs smtp_server= (mail goes through sendmail otherwise)"
                ));
            }
        }
        return Ok(None);
    };
    if server.is_empty() || server.contains(['/', ' ']) {
        return Err(format!("smtp_server={server:?} is not a host name or address"));
    }
    let security = match options.get("tls").map(String::as_str) {
        None | Some("starttls") => Security::StartTls,
        Some("tls") => Security::Implicit,
        Some("none") => Security::Plain,
        Some(t) => return Err(format!("tls={t}: expected starttls, tls or none")),
    };
    let port = match options.get("port") {
        Some(p) => {
            p.parse::<u16>().ok().filter(|p| *p > 0).ok_or(format!("port={p}: not a port"))?
        }
        None => match security {
            Security::StartTls => 587,
            Security::Implicit => 465,
            Security::Plain => 25,
        },
    };
    let credentials = match (options.get("user"), options.get("password")) {
        (Some(u), Some(p)) => Some((u.clone(), p.clone())),
        (None, None) => None,
        _ => return Err("user= and password= go together".into()),
    };
    let tls_ca = options.get("tls_ca").cloned();
    if let Some(f) = &tls_ca {
        let pem = std::fs::read(f).map_err(|e| format!("tls_ca={f}: {e}"))?;
        Certificate::from_pem(&pem)
            .map_err(|e| format!("tls_ca={f}: not a PEM certificate ({e})"))?;
    }
    Ok(Some(Settings { server: server.clone(), port, security, credentials, tls_ca }))
}

/// Sends one rendered message to `to` (comma-separated addresses).
pub fn send(
    s: &Settings,
    from: &str,
    to: &str,
    message: &[u8],
    timeout: f64,
) -> Result<(), String> {
    let addr = |a: &str| a.trim().parse::<Address>().map_err(|e| format!("address {a:?}: {e}"));
    let rcpts =
        to.split(',').filter(|a| !a.trim().is_empty()).map(addr).collect::<Result<_, _>>()?;
    let envelope = Envelope::new(Some(addr(from)?), rcpts).map_err(|e| format!("envelope: {e}"))?;
    let tls = || -> Result<TlsParameters, String> {
        let mut b = TlsParameters::builder(s.server.clone());
        if let Some(f) = &s.tls_ca {
            let pem = std::fs::read(f).map_err(|e| format!("tls_ca={f}: {e}"))?;
            b = b.add_root_certificate(Certificate::from_pem(&pem).map_err(|e| e.to_string())?);
        }
        b.build_rustls().map_err(|e| format!("TLS setup: {e}"))
    };
    let mut b = SmtpTransport::builder_dangerous(s.server.clone())
        .port(s.port)
        .timeout(Some(Duration::from_secs_f64(timeout.max(0.1))));
    b = match s.security {
        Security::StartTls => b.tls(Tls::Required(tls()?)),
        Security::Implicit => b.tls(Tls::Wrapper(tls()?)),
        Security::Plain => b.tls(Tls::None),
    };
    if let Some((u, p)) = &s.credentials {
        b = b
            .credentials(Credentials::new(u.clone(), p.clone()))
            .authentication(vec![Mechanism::Plain, Mechanism::Login]);
    }
    let what = format!("smtp {}:{}", s.server, s.port);
    b.build().send_raw(&envelope, message).map(|_| ()).map_err(|e| format!("{what}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn settings_defaults_and_errors() {
        assert_eq!(settings(&opts(&[])), Ok(None));
        let s = settings(&opts(&[("smtp_server", "mx.example.org")])).unwrap().unwrap();
        assert_eq!((s.port, s.security, s.credentials), (587, Security::StartTls, None));
        let s = settings(&opts(&[("smtp_server", "h"), ("tls", "tls")])).unwrap().unwrap();
        assert_eq!((s.port, s.security), (465, Security::Implicit));
        let s = settings(&opts(&[("smtp_server", "h"), ("tls", "none"), ("port", "2525")]));
        assert_eq!(s.unwrap().unwrap().port, 2525);
        let err = |kv: &[(&str, &str)]| settings(&opts(kv)).unwrap_err();
        assert!(err(&[("smtp_server", "h"), ("tls", "ssl")]).contains("starttls, tls or none"));
        assert!(err(&[("smtp_server", "h"), ("port", "0")]).contains("not a port"));
        assert!(err(&[("smtp_server", "h"), ("user", "u")]).contains("go together"));
        assert!(err(&[("port", "25")]).contains("needs smtp_server"));
        assert!(err(&[("smtp_server", "h"), ("tls_ca", "/nonexistent.pem")]).contains("tls_ca"));
    }
}
