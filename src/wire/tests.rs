//! Codec tests: literals, limits, hostile input and round-trip properties
//! driven by a small deterministic generator (no extra crate).

use super::*;
use std::io::Write;

fn zlib(text: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text).unwrap();
    e.finish().unwrap()
}

fn dgram(id: &str, text: &[u8]) -> Vec<u8> {
    let mut d = format!("!{id}:").into_bytes();
    d.extend(zlib(text));
    d
}

#[test]
fn decodes_plain_pairs() {
    let mut dec = Decoder::new();
    let m = dec.decode(&dgram("HTB", b"name=www1;ts=1.50000;seq=7;boot=1")).unwrap();
    assert_eq!(m.id, "HTB");
    assert_eq!(m.len(), 4);
    assert_eq!(m.get("name"), Some(Val::Plain("www1")));
    assert_eq!(m.get("ts").unwrap().as_f64(), Some(1.5));
    assert_eq!(m.get("seq").unwrap().as_i64(), Some(7));
    assert_eq!(m.get("boot").unwrap().as_bool(), Some(true));
    assert_eq!(m.get("nope"), None);
}

#[test]
fn accepts_one_space_after_colon() {
    let mut d = b"!PLG: ".to_vec();
    d.extend(zlib(b"plugin=cpu;load=0.5"));
    let mut dec = Decoder::new();
    assert_eq!(dec.decode(&d).unwrap().get("plugin"), Some(Val::Plain("cpu")));
}

#[test]
fn json_value_may_contain_semicolons() {
    let mut dec = Decoder::new();
    let m =
        dec.decode(&dgram("PLG", br#"a=@{"x":"1;2","y":[1,2]};b=@"s=t";c=@3;d=@true"#)).unwrap();
    assert_eq!(m.get("a"), Some(Val::Json(r#"{"x":"1;2","y":[1,2]}"#)));
    assert_eq!(m.get("b").unwrap().text(), "s=t");
    assert_eq!(m.get("c").unwrap().to_value(), Value::Json(serde_json::json!(3)));
    assert_eq!(m.get("d").unwrap().to_value(), Value::Json(serde_json::json!(true)));
    assert_eq!(m.len(), 4);
}

#[test]
fn typed_errors() {
    let mut dec = Decoder::new();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"HTB:xx".to_vec(), "no_header"),
        (b"!HT".to_vec(), "no_header"),
        (dgram("htb", b"a=1"), "bad_id"),
        (b"!HTB:not zlib at all".to_vec(), "inflate"),
        (dgram("HTB", b"a;b=1"), "no_value"),
        (dgram("HTB", b"a=1;b"), "no_value"),
        (dgram("HTB", b"=1"), "bad_pair"),
        (dgram("HTB", b"a=@{\"x\":1"), "bad_json"),
        (dgram("HTB", b"a=@[1]x;b=2"), "trailing"),
        (dgram("HTB", b"a=@nul;b=2"), "bad_json"),
        (dgram("HTB", b"a=\xff\xfe"), "not_utf8"),
        (vec![b'!'; MAX_DATAGRAM + 1], "too_big"),
    ];
    for (d, want) in cases {
        let got = dec.decode(&d).err().map(|e| e.reason());
        assert_eq!(got, Some(want), "input {:?}", String::from_utf8_lossy(&d));
    }
}

#[test]
fn truncated_zlib_is_inflate_error() {
    let d = dgram("HTB", b"name=www1;ts=1.00000;seq=1;interval=10");
    let mut dec = Decoder::new();
    for cut in 6..d.len() - 1 {
        let r = dec.decode(&d[..cut]);
        assert!(r.is_err(), "cut at {cut} decoded");
    }
}

#[test]
fn zip_bomb_stopped_at_limit() {
    let bomb = vec![b'a'; 10 * MAX_INFLATED];
    let d = dgram("HTB", &bomb);
    assert!(d.len() < MAX_DATAGRAM);
    let mut dec = Decoder::new();
    assert_eq!(dec.decode(&d).err(), Some(WireError::TooLarge));
    // The buffer never grew past the limit (stopped while inflating).
    assert!(dec.buf.capacity() <= MAX_INFLATED + 64);
    // Exactly at the limit is fine.
    let mut ok = b"a=".to_vec();
    ok.resize(MAX_INFLATED, b'x');
    let m = dec.decode(&dgram("HTB", &ok)).unwrap();
    assert_eq!(m.get("a").unwrap().text().len(), MAX_INFLATED - 2);
}

#[test]
fn decoder_reuse_after_errors() {
    let mut dec = Decoder::new();
    assert!(dec.decode(b"!HTB:garbage").is_err());
    assert!(dec.decode(&dgram("HTB", &vec![b'a'; 2 * MAX_INFLATED])).is_err());
    assert_eq!(dec.decode(&dgram("HTB", b"k=v")).unwrap().get("k"), Some(Val::Plain("v")));
}

#[test]
fn encode_value_rules() {
    let p = payload(&[
        ("i", Value::Int(-3)),
        ("f", Value::Float(0.1)),
        ("b", Value::Bool(true)),
        ("s", Value::Str("plain".into())),
        ("e", Value::Str("a;b".into())),
        ("a", Value::Str("@x".into())),
        ("l", Value::Json(serde_json::json!([1, "x;y"]))),
        ("n", Value::Float(f64::NAN)),
    ]);
    assert_eq!(p, r#"i=-3;f=0.10000;b=1;s=plain;e=@"a;b";a=@"@x";l=@[1,"x;y"];n=@null"#);
    let mut dec = Decoder::new();
    let d = encode("HTB", &[("name", Value::Str("a=b".into()))]);
    assert_eq!(dec.decode(&d).unwrap().get("name").unwrap().text(), "a=b");
}

#[test]
fn to_json_is_journal_shape() {
    let mut dec = Decoder::new();
    let m = dec.decode(&dgram("HTB", b"name=w;interval=10;ts=1.25000;l=@[1]")).unwrap();
    assert_eq!(
        m.to_json(),
        serde_json::json!({"ID": "HTB", "name": "w", "interval": 10, "ts": 1.25, "l": [1]})
    );
}

/// xorshift64*: deterministic, enough to explore the value space.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn string(&mut self) -> String {
        const ALPH: &[char] = &['a', 'Z', '0', ';', '=', '@', ' ', '"', '\\', 'é', '{', '}', '\n'];
        (0..self.below(12)).map(|_| ALPH[self.below(ALPH.len() as u64) as usize]).collect()
    }
    fn value(&mut self) -> Value {
        match self.below(5) {
            0 => Value::Int(self.next() as i64),
            1 => Value::Float((self.next() % 2_000_000) as f64 / 1000.0 - 1000.0),
            2 => Value::Bool(self.below(2) == 1),
            3 => Value::Str(self.string()),
            _ => {
                let s = self.string();
                Value::Json(serde_json::json!({"k": s, "l": [1, 2.5, null, true]}))
            }
        }
    }
}

#[test]
fn round_trip_property() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut dec = Decoder::new();
    for _ in 0..2000 {
        let n = rng.below(8) as usize;
        let keys: Vec<String> = (0..n).map(|i| format!("k{i}")).collect();
        let vals: Vec<Value> = (0..n).map(|_| rng.value()).collect();
        let pairs: Vec<(&str, Value)> =
            keys.iter().map(String::as_str).zip(vals.iter().cloned()).collect();
        let d = encode("PLG", &pairs);
        let m = dec.decode(&d).unwrap_or_else(|e| panic!("{e} for {pairs:?}"));
        assert_eq!(m.len(), n);
        for ((k, v), (dk, dv)) in pairs.iter().zip(m.pairs()) {
            assert_eq!(*k, dk);
            match v {
                Value::Int(i) => assert_eq!(dv.as_i64(), Some(*i)),
                Value::Float(f) => assert!((dv.as_f64().unwrap() - f).abs() < 1e-5),
                Value::Bool(b) => assert_eq!(dv.as_bool(), Some(*b)),
                Value::Str(s) => assert_eq!(dv.text(), s.as_str()),
                Value::Json(j) => assert_eq!(&dv.to_json(), j),
            }
        }
        // Encoding is a fixed point: decode then re-encode gives the same payload.
        let again: Vec<(String, Value)> = m.to_owned_pairs();
        let again: Vec<(&str, Value)> =
            again.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let p1 = payload(&pairs);
        let p2 = payload(&again);
        let mut dec2 = Decoder::new();
        let m2 = dec2.decode(&frame("PLG", p2.as_bytes())).unwrap();
        assert_eq!(m2.len(), n, "{p1} vs {p2}");
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(42);
    let mut dec = Decoder::new();
    let base = dgram("HTB", br#"name=w;a=@{"x":[1,2]};b=2"#);
    for _ in 0..5000 {
        let mut d = base.clone();
        for _ in 0..=rng.below(4) {
            let i = rng.below(d.len() as u64) as usize;
            d[i] = rng.next() as u8;
        }
        let _ = dec.decode(&d);
    }
    // Still decodes correctly afterwards.
    assert_eq!(dec.decode(&base).unwrap().len(), 3);
}

#[test]
fn sign_and_verify() {
    let key = b"fleet secret";
    let pairs = [("name", Value::Str("w".into())), ("ts", Value::Float(1000.0))];
    let mut dec = Decoder::new();
    let d = encode_signed("HTB", &pairs, Some(key));
    let m = dec.decode(&d).unwrap();
    assert_eq!(verify(&m, key, 1000.0), Verified::Ok);
    assert_eq!(verify(&m, key, 1299.0), Verified::Ok);
    assert_eq!(verify(&m, key, 1301.0), Verified::Stale);
    assert_eq!(verify(&m, b"other key", 1000.0), Verified::BadSig);
    let d = encode("HTB", &pairs);
    assert_eq!(verify(&dec.decode(&d).unwrap(), key, 1000.0), Verified::Unsigned);
    // A forged payload with the original signature.
    let mut p = payload(&pairs);
    sign_payload(&mut p, key);
    let forged = p.replace("name=w", "name=x");
    assert_eq!(
        verify(&dec.decode(&frame("HTB", forged.as_bytes())).unwrap(), key, 1000.0),
        Verified::BadSig
    );
    let bad_hex = "name=w;ts=1000.0;sig=zz";
    assert_eq!(
        verify(&dec.decode(&frame("HTB", bad_hex.as_bytes())).unwrap(), key, 1000.0),
        Verified::BadSig
    );
}

#[test]
fn stored_frame_inflates_everywhere() {
    let mut out = Vec::new();
    let mut dec = Decoder::new();
    for len in [0usize, 1, 60, 0xFFFF, 0x1_0000 + 7, 200_000] {
        let text = if len < 2 { String::new() } else { format!("k={}", "a".repeat(len - 2)) };
        frame_stored("ACK", text.as_bytes(), &mut out);
        // flate2's own decoder agrees (not only ours).
        let mut z = flate2::read::ZlibDecoder::new(&out[5..]);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut z, &mut back).unwrap();
        assert_eq!(back, text.as_bytes(), "len {len}");
        if out.len() <= MAX_DATAGRAM {
            assert!(dec.decode(&out).is_ok(), "len {len}");
        }
    }
    assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
}

#[test]
fn the_documented_limits_hold_at_their_edges() {
    // 64 KiB datagrams, 256 KiB payloads (DESIGN.md section 4), as numbers
    // here so a changed constant shows.
    let mut dec = Decoder::new();
    let reason = |dec: &mut Decoder, d: &[u8]| dec.decode(d).err().map(|e| e.reason());
    assert_eq!(reason(&mut dec, &vec![b'!'; 65_536]), Some("no_header"), "not too big");
    assert_eq!(reason(&mut dec, &vec![b'!'; 65_537]), Some("too_big"));
    let mut text = b"a=".to_vec();
    text.resize(262_144, b'x');
    assert_eq!(dec.decode(&dgram("HTB", &text)).unwrap().len(), 1);
    text.push(b'x');
    assert_eq!(reason(&mut dec, &dgram("HTB", &text)), Some("too_large"));
}

#[test]
fn a_stream_cut_after_all_its_output_is_truncated_not_too_large() {
    // Everything inflated (exactly the limit) but the checksum is missing.
    let mut text = b"a=".to_vec();
    text.resize(MAX_INFLATED, b'x');
    let d = dgram("HTB", &text);
    let mut dec = Decoder::new();
    assert_eq!(dec.decode(&d[..d.len() - 4]).err(), Some(WireError::Inflate));
    assert_eq!(dec.decode(&d).unwrap().len(), 1);
}

#[test]
fn header_needs_the_bang_the_colon_and_a_body() {
    let mut dec = Decoder::new();
    let body = zlib(b"a=1");
    for head in [&b"xHTB:"[..], b"!HTB;", b"!HTB"] {
        let mut d = head.to_vec();
        d.extend(&body);
        assert_eq!(dec.decode(&d).err(), Some(WireError::NoHeader), "{head:?}");
    }
    assert_eq!(dec.decode(b"!HTB:").err(), Some(WireError::Inflate), "a header and no body");
    assert_eq!(dec.decode(b"!HTB").err(), Some(WireError::NoHeader));
    assert_eq!(dec.decode(&dgram("HtB", b"a=1")).err(), Some(WireError::BadId));
}

#[test]
fn an_empty_payload_has_no_pairs() {
    let mut dec = Decoder::new();
    let m = dec.decode(&dgram("HTB", b"")).unwrap();
    assert_eq!((m.len(), m.is_empty()), (0, true));
    assert!(m.get("a").is_none());
    let m = dec.decode(&dgram("HTB", b";;a=1;")).unwrap();
    assert!(!m.is_empty() && m.len() == 1, "empty segments are skipped");
    assert_eq!(m.to_owned_pairs(), vec![("a".to_string(), Value::Int(1))]);
}

#[test]
fn values_read_as_booleans_numbers_and_text() {
    let mut dec = Decoder::new();
    let m = dec
        .decode(&dgram("HTB", b"t=true;T=True;f=false;F=False;z=0;y=yes;n=inf;e=-2.5e3;j=@[1,2]"))
        .unwrap();
    let b: Vec<Option<bool>> =
        ["t", "T", "f", "F", "z", "y", "j"].iter().map(|k| m.get(k).unwrap().as_bool()).collect();
    assert_eq!(b, [Some(true), Some(true), Some(false), Some(false), Some(false), None, None]);
    assert_eq!(m.get("n").unwrap().as_f64(), None, "inf is not a reading");
    assert_eq!(m.get("n").unwrap().to_value(), Value::Str("inf".into()));
    assert_eq!(m.get("e").unwrap().to_value(), Value::Float(-2500.0));
    assert_eq!(m.get("e").unwrap().as_i64(), None);
    assert_eq!(m.get("z").unwrap().as_i64(), Some(0));
    assert_eq!(m.get("j").unwrap().as_i64(), None);
    assert_eq!(m.get("j").unwrap().as_f64(), None);
    assert_eq!(m.get("j").unwrap().text(), "[1,2]", "JSON other than a string is its text");
    assert_eq!(m.get("y").unwrap().to_json(), serde_json::json!("yes"));
}

#[test]
fn errors_say_what_and_where() {
    let mut dec = Decoder::new();
    let msg = |dec: &mut Decoder, text: &[u8]| dec.decode(&dgram("HTB", text)).unwrap_err();
    assert_eq!(msg(&mut dec, b"a=1;;=2").to_string(), "empty key at payload byte 5");
    assert_eq!(msg(&mut dec, b"a=1;b").to_string(), "key without value at payload byte 4");
    assert_eq!(msg(&mut dec, b"a=@{").to_string(), "bad @JSON value at payload byte 3");
    assert_eq!(
        msg(&mut dec, b"a=@[1]x").to_string(),
        "expected ';' after @JSON value at payload byte 6"
    );
    assert_eq!(WireError::TooBig.to_string(), "datagram over 65536 bytes");
    assert_eq!(WireError::TooLarge.to_string(), "payload inflates past 262144 bytes");
    for e in [WireError::NoHeader, WireError::BadId, WireError::Inflate, WireError::NotUtf8] {
        assert!(!e.to_string().is_empty() && e.to_string() != e.reason(), "{e:?}");
    }
}
