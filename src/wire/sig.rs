//! The fleet key: HMAC-SHA256 over the payload text before `;sig=`, in hex,
//! and a `ts` within ±5 minutes so a captured datagram cannot be replayed
//! later. Pure; time passed in.

use super::Message;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Largest accepted difference between a message's `ts` and our clock.
pub const MAX_SKEW: f64 = 300.0;

/// Outcome of [`verify`]. Only `Ok` is accepted when a key is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    Ok,
    Unsigned,
    BadSig,
    /// `ts` missing, unreadable or off by more than [`MAX_SKEW`].
    Stale,
}

impl Verified {
    /// Counter key.
    pub fn reason(self) -> &'static str {
        match self {
            Verified::Ok => "ok",
            Verified::Unsigned => "unsigned",
            Verified::BadSig => "bad_sig",
            Verified::Stale => "stale",
        }
    }
}

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; new_from_slice cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts any key length"),
    }
}

/// Appends `;sig=<hex>` to a payload (`sig=<hex>` if it is empty).
pub fn sign_payload(payload: &mut String, key: &[u8]) {
    let mut m = mac(key);
    m.update(payload.as_bytes());
    let tag = m.finalize().into_bytes();
    if !payload.is_empty() {
        payload.push(';');
    }
    payload.push_str("sig=");
    for b in tag {
        payload.push(char::from(HEX[(b >> 4) as usize]));
        payload.push(char::from(HEX[(b & 15) as usize]));
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn unhex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
        out[i] = d(pair[0])? << 4 | d(pair[1])?;
    }
    Some(out)
}

/// Checks a decoded message's signature (which must be its last pair) and
/// its `ts` against `now_wall`.
pub fn verify(msg: &Message<'_>, key: &[u8], now_wall: f64) -> Verified {
    let p = msg.payload;
    let (signed, hex) = match p.rfind(";sig=") {
        Some(i) => (&p[..i], &p[i + 5..]),
        None => match p.strip_prefix("sig=") {
            Some(h) => ("", h),
            None => return Verified::Unsigned,
        },
    };
    let Some(tag) = unhex(hex.trim_end_matches(';')) else {
        return Verified::BadSig;
    };
    let mut m = mac(key);
    m.update(signed.as_bytes());
    if m.verify_slice(&tag).is_err() {
        return Verified::BadSig;
    }
    match msg.get("ts").and_then(|v| v.as_f64()) {
        Some(ts) if (ts - now_wall).abs() <= MAX_SKEW => Verified::Ok,
        _ => Verified::Stale,
    }
}
