//! The UDP heartbeat codec (DESIGN.md section 4): `!ID:` + zlib(`key=value;...`).
//!
//! Owns: header check, bounded inflate, the `key=value` split with `@`-JSON
//! values, encoding, and the fleet-key signature (`sig.rs`). Pure: bytes in,
//! a borrowed [`Message`] or a typed [`WireError`] out. It must never do I/O,
//! never allocate without bound on hostile input (a zip bomb is stopped while
//! inflating, not after) and never panic on any input.
//!
//! Decisions the design leaves open:
//! - A key without a value (`a;b=1`) is an error ([`WireError::NoValue`]): a
//!   datagram we cannot read as written is counted, not guessed at.
//! - Empty segments (`a=1;;b=2`, a trailing `;`) are skipped.
//! - A plain value may contain `=` (hbd-style senders do not escape it); only
//!   `;` ends it.
//! - Bytes after the end of the zlib stream are ignored.

mod sig;
#[cfg(test)]
mod tests;

pub use sig::{sign_payload, verify, Verified, MAX_SKEW};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use std::borrow::Cow;
use std::fmt;

/// Largest datagram accepted.
pub const MAX_DATAGRAM: usize = 64 * 1024;
/// Largest inflated payload accepted.
pub const MAX_INFLATED: usize = 256 * 1024;

/// Why a datagram was refused. `reason()` is the counter key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireError {
    /// Datagram longer than [`MAX_DATAGRAM`].
    TooBig,
    /// Does not start with `!`, three letters and `:`.
    NoHeader,
    /// The ID is not three upper-case ASCII letters.
    BadId,
    /// The zlib stream is corrupt or truncated.
    Inflate,
    /// Inflating would exceed [`MAX_INFLATED`] (zip bomb).
    TooLarge,
    /// The payload is not UTF-8.
    NotUtf8,
    /// A segment with an empty key (`=1`).
    BadPair { offset: usize },
    /// A key without `=value` (`a;b=1`).
    NoValue { offset: usize },
    /// An `@` value that is not one valid JSON value.
    BadJson { offset: usize },
    /// Something other than `;` after an `@` JSON value.
    Trailing { offset: usize },
}

impl WireError {
    /// A short stable name, used as a counter key in STATE/DUMP.
    pub fn reason(&self) -> &'static str {
        match self {
            WireError::TooBig => "too_big",
            WireError::NoHeader => "no_header",
            WireError::BadId => "bad_id",
            WireError::Inflate => "inflate",
            WireError::TooLarge => "too_large",
            WireError::NotUtf8 => "not_utf8",
            WireError::BadPair { .. } => "bad_pair",
            WireError::NoValue { .. } => "no_value",
            WireError::BadJson { .. } => "bad_json",
            WireError::Trailing { .. } => "trailing",
        }
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooBig => write!(f, "datagram over {MAX_DATAGRAM} bytes"),
            WireError::NoHeader => write!(f, "no '!ID:' header"),
            WireError::BadId => write!(f, "message ID is not three upper-case letters"),
            WireError::Inflate => write!(f, "corrupt or truncated zlib payload"),
            WireError::TooLarge => write!(f, "payload inflates past {MAX_INFLATED} bytes"),
            WireError::NotUtf8 => write!(f, "payload is not UTF-8"),
            WireError::BadPair { offset } => write!(f, "empty key at payload byte {offset}"),
            WireError::NoValue { offset } => {
                write!(f, "key without value at payload byte {offset}")
            }
            WireError::BadJson { offset } => write!(f, "bad @JSON value at payload byte {offset}"),
            WireError::Trailing { offset } => {
                write!(f, "expected ';' after @JSON value at payload byte {offset}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// An owned value to encode (or the owned form of a decoded one).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Int(i64),
    /// Written with 5 decimals.
    Float(f64),
    /// Written `1`/`0`.
    Bool(bool),
    Str(String),
    /// Lists and dicts (any JSON), written `@` + JSON.
    Json(serde_json::Value),
}

/// A borrowed value of a decoded message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Val<'a> {
    /// Written as is.
    Plain(&'a str),
    /// The JSON text after `@` (already validated).
    Json(&'a str),
}

impl<'a> Val<'a> {
    /// The value as text: plain values as written, a JSON string unescaped,
    /// other JSON as its text.
    pub fn text(&self) -> Cow<'a, str> {
        match *self {
            Val::Plain(s) => Cow::Borrowed(s),
            Val::Json(j) => match serde_json::from_str::<String>(j) {
                Ok(s) => Cow::Owned(s),
                Err(_) => Cow::Borrowed(j),
            },
        }
    }
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Val::Plain(s) => s.parse().ok(),
            Val::Json(_) => None,
        }
    }
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Val::Plain(s) => s.parse::<f64>().ok().filter(|v| v.is_finite()),
            Val::Json(_) => None,
        }
    }
    /// `1`/`0` (and hbd's `true`/`false`, `True`/`False`).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Plain("1" | "true" | "True") => Some(true),
            Val::Plain("0" | "false" | "False") => Some(false),
            _ => None,
        }
    }
    /// The owned value: integers, then floats, then text; `@` values parsed.
    pub fn to_value(&self) -> Value {
        match *self {
            Val::Plain(s) => {
                if let Ok(i) = s.parse::<i64>() {
                    Value::Int(i)
                } else if let Some(f) = self.as_f64().filter(|_| looks_numeric(s)) {
                    Value::Float(f)
                } else {
                    Value::Str(s.to_string())
                }
            }
            Val::Json(j) => match serde_json::from_str::<serde_json::Value>(j) {
                Ok(serde_json::Value::String(s)) => Value::Str(s),
                Ok(v) => Value::Json(v),
                Err(_) => Value::Str(j.to_string()),
            },
        }
    }
    /// The value as JSON (for the journal and DUMP).
    pub fn to_json(&self) -> serde_json::Value {
        match self.to_value() {
            Value::Int(i) => i.into(),
            Value::Float(f) => f.into(),
            Value::Bool(b) => b.into(),
            Value::Str(s) => s.into(),
            Value::Json(v) => v,
        }
    }
}

/// `f64::from_str` also takes `inf`, `NaN`: only digits, sign, `.`, `e` count.
fn looks_numeric(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// Byte ranges of one pair inside the decoder's payload buffer.
#[derive(Debug, Clone, Copy)]
struct Span {
    key: (u32, u32),
    val: (u32, u32),
    json: bool,
}

/// A decoded datagram, borrowing the [`Decoder`]'s buffers.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub id: &'a str,
    /// The whole inflated payload (what a signature covers).
    pub payload: &'a str,
    spans: &'a [Span],
}

impl<'a> Message<'a> {
    pub fn len(&self) -> usize {
        self.spans.len()
    }
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
    /// The pairs in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, Val<'a>)> + 'a {
        let text = self.payload;
        self.spans.iter().map(move |s| {
            let k = &text[s.key.0 as usize..s.key.1 as usize];
            let v = &text[s.val.0 as usize..s.val.1 as usize];
            (k, if s.json { Val::Json(v) } else { Val::Plain(v) })
        })
    }
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<Val<'a>> {
        self.pairs().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
    /// Owned pairs.
    pub fn to_owned_pairs(&self) -> Vec<(String, Value)> {
        self.pairs().map(|(k, v)| (k.to_string(), v.to_value())).collect()
    }
    /// `{"ID": id, key: value, ...}`, hbd's journal `message` shape.
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::with_capacity(self.len() + 1);
        m.insert("ID".into(), self.id.into());
        for (k, v) in self.pairs() {
            m.insert(k.to_string(), v.to_json());
        }
        serde_json::Value::Object(m)
    }
}

/// Reusable decoding state: one `Decompress` reset between datagrams and
/// buffers that keep their capacity, so decoding allocates nothing per
/// packet once warm.
pub struct Decoder {
    z: Decompress,
    buf: Vec<u8>,
    spans: Vec<Span>,
    id: [u8; 3],
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder {
            z: Decompress::new(true),
            // One byte over the limit: filling it means the payload is too large.
            buf: Vec::with_capacity(MAX_INFLATED + 1),
            spans: Vec::with_capacity(32),
            id: [0; 3],
        }
    }

    /// Decodes one datagram.
    pub fn decode<'a>(&'a mut self, dgram: &[u8]) -> Result<Message<'a>, WireError> {
        if dgram.len() > MAX_DATAGRAM {
            return Err(WireError::TooBig);
        }
        let (id, body) = split_header(dgram)?;
        self.id.copy_from_slice(id);
        self.inflate(body)?;
        let payload = std::str::from_utf8(&self.buf).map_err(|_| WireError::NotUtf8)?;
        self.spans.clear();
        split_pairs(payload, &mut self.spans)?;
        // The header was checked to be ASCII letters.
        let id = std::str::from_utf8(&self.id).map_err(|_| WireError::BadId)?;
        Ok(Message { id, payload, spans: &self.spans })
    }

    /// Inflates into `self.buf`, never past `MAX_INFLATED + 1` bytes.
    fn inflate(&mut self, body: &[u8]) -> Result<(), WireError> {
        self.z.reset(true);
        self.buf.clear();
        let cap = MAX_INFLATED + 1;
        if self.buf.capacity() < cap {
            self.buf.reserve_exact(cap);
        }
        loop {
            let before_in = self.z.total_in() as usize;
            let before_out = self.buf.len();
            let input = body.get(before_in..).unwrap_or(&[]);
            let status = self
                .z
                .decompress_vec(input, &mut self.buf, FlushDecompress::Finish)
                .map_err(|_| WireError::Inflate)?;
            if status == Status::StreamEnd {
                break;
            }
            if self.buf.len() >= cap {
                return Err(WireError::TooLarge);
            }
            let progressed =
                self.z.total_in() as usize != before_in || self.buf.len() != before_out;
            if !progressed {
                // Input used up before the end of the stream: truncated.
                return Err(WireError::Inflate);
            }
        }
        if self.buf.len() > MAX_INFLATED {
            return Err(WireError::TooLarge);
        }
        Ok(())
    }
}

/// `!ID:` (or `!ID: `) -> (ID, zlib body).
fn split_header(d: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    if d.len() < 5 || d[0] != b'!' || d[4] != b':' {
        return Err(WireError::NoHeader);
    }
    let id = &d[1..4];
    if !id.iter().all(u8::is_ascii_uppercase) {
        return Err(WireError::BadId);
    }
    let body = &d[5..];
    // A zlib stream never starts with a space (its first byte is 0x?8), so
    // skipping one is unambiguous.
    let body = body.strip_prefix(b" ").unwrap_or(body);
    Ok((id, body))
}

fn split_pairs(text: &str, spans: &mut Vec<Span>) -> Result<(), WireError> {
    let b = text.as_bytes();
    let mut pos = 0;
    while pos < b.len() {
        if b[pos] == b';' {
            pos += 1;
            continue;
        }
        let key_start = pos;
        while pos < b.len() && b[pos] != b'=' && b[pos] != b';' {
            pos += 1;
        }
        if pos == b.len() || b[pos] == b';' {
            return Err(WireError::NoValue { offset: key_start });
        }
        if pos == key_start {
            return Err(WireError::BadPair { offset: key_start });
        }
        let key = (key_start as u32, pos as u32);
        pos += 1; // '='
        if b.get(pos) == Some(&b'@') {
            let start = pos + 1;
            let len = json_len(&text[start..]).ok_or(WireError::BadJson { offset: start })?;
            let end = start + len;
            if end < b.len() && b[end] != b';' {
                return Err(WireError::Trailing { offset: end });
            }
            spans.push(Span { key, val: (start as u32, end as u32), json: true });
            pos = end;
        } else {
            let start = pos;
            while pos < b.len() && b[pos] != b';' {
                pos += 1;
            }
            spans.push(Span { key, val: (start as u32, pos as u32), json: false });
        }
    }
    Ok(())
}

/// Length of the one JSON value at the start of `s` (it may contain `;`).
fn json_len(s: &str) -> Option<usize> {
    use serde::de::IgnoredAny;
    match s.as_bytes().first()? {
        // Self-delimiting values: the streaming deserializer says where they end.
        b'{' | b'[' | b'"' => {
            let mut it = serde_json::Deserializer::from_str(s).into_iter::<IgnoredAny>();
            match it.next() {
                Some(Ok(_)) => Some(it.byte_offset()),
                _ => None,
            }
        }
        // Numbers and literals end at the next ';' (the streaming
        // deserializer would refuse a ';' right after them).
        _ => {
            let end = s.find(';').unwrap_or(s.len());
            serde_json::from_str::<IgnoredAny>(&s[..end]).ok().map(|_| end)
        }
    }
}

/// Appends one value in wire form.
pub fn write_value(out: &mut String, v: &Value) {
    use std::fmt::Write;
    match v {
        Value::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Float(f) if f.is_finite() => {
            let _ = write!(out, "{f:.5}");
        }
        // NaN/inf have no plain form that reads back as a number; JSON null.
        Value::Float(_) => out.push_str("@null"),
        Value::Bool(b) => out.push(if *b { '1' } else { '0' }),
        Value::Str(s) => {
            if s.contains([';', '=']) || s.starts_with('@') {
                out.push('@');
                out.push_str(&serde_json::Value::String(s.clone()).to_string());
            } else {
                out.push_str(s);
            }
        }
        Value::Json(j) => {
            out.push('@');
            out.push_str(&j.to_string());
        }
    }
}

/// `key=value;key=value` (no trailing `;`).
pub fn payload(pairs: &[(&str, Value)]) -> String {
    let mut out = String::with_capacity(16 * pairs.len());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(k);
        out.push('=');
        write_value(&mut out, v);
    }
    out
}

/// `!ID:` + zlib(payload text).
pub fn frame(id: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 32);
    frame_into(&mut Compress::new(Compression::fast(), true), id, payload, &mut out);
    out
}

/// Like [`frame`] but reusing a compressor and an output buffer (the server's
/// ACK path). `out` is cleared first.
pub fn frame_into(z: &mut Compress, id: &str, payload: &[u8], out: &mut Vec<u8>) {
    z.reset();
    out.clear();
    out.push(b'!');
    out.extend_from_slice(id.as_bytes());
    out.push(b':');
    // zlib's worst case is a few bytes per 16 KiB over the input.
    out.reserve(payload.len() + payload.len() / 1000 + 64);
    loop {
        let in_at = z.total_in() as usize;
        let input = payload.get(in_at..).unwrap_or(&[]);
        match z.compress_vec(input, out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => break,
            // Out of room: grow and continue.
            Ok(_) => out.reserve(out.capacity().max(64)),
            // Compressing an in-memory slice cannot fail; stop rather than loop.
            Err(_) => break,
        }
    }
}

/// `!ID:` + a zlib stream of stored (uncompressed) blocks: valid for every
/// inflater, and several times cheaper than running deflate on a 60-byte
/// ACK that would not shrink anyway. `out` is cleared first.
pub fn frame_stored(id: &str, payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(b'!');
    out.extend_from_slice(id.as_bytes());
    out.push(b':');
    // CMF 0x78 (deflate, 32K window), FLG 0x01 (check bits, level "fastest").
    out.extend_from_slice(&[0x78, 0x01]);
    let mut chunks = payload.chunks(0xFFFF).peekable();
    if payload.is_empty() {
        out.extend_from_slice(&[0x01, 0x00, 0x00, 0xFF, 0xFF]);
    }
    while let Some(c) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = c.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend_from_slice(&adler32(payload).to_be_bytes());
}

fn adler32(data: &[u8]) -> u32 {
    const MOD: u32 = 65_521;
    let (mut a, mut b) = (1u32, 0u32);
    // 5552 is the longest run before b can overflow u32 (zlib's NMAX).
    for chunk in data.chunks(5552) {
        for &x in chunk {
            a += x as u32;
            b += a;
        }
        a %= MOD;
        b %= MOD;
    }
    (b << 16) | a
}

/// Encodes a message (unsigned).
pub fn encode(id: &str, pairs: &[(&str, Value)]) -> Vec<u8> {
    frame(id, payload(pairs).as_bytes())
}

/// Encodes and signs (`;sig=` appended to the payload before compression).
pub fn encode_signed(id: &str, pairs: &[(&str, Value)], key: Option<&[u8]>) -> Vec<u8> {
    let mut p = payload(pairs);
    if let Some(k) = key {
        sign_payload(&mut p, k);
    }
    frame(id, p.as_bytes())
}
