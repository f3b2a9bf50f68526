//! Any bytes into the UDP decoder: it must never panic, and a decoded
//! message must re-encode and decode to the same pairs.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut dec = hbmon::wire::Decoder::new();
    let pairs = match dec.decode(data) {
        Ok(m) => {
            let _ = m.to_json();
            m.pairs().map(|(k, v)| (k.to_string(), v.text().into_owned())).collect::<Vec<_>>()
        }
        Err(e) => {
            let _ = e.reason();
            return;
        }
    };
    // The stored-block framer must produce something our decoder reads back.
    let text: String =
        pairs.iter().map(|(k, _)| format!("{k}=1")).collect::<Vec<_>>().join(";");
    let mut out = Vec::new();
    hbmon::wire::frame_stored("ACK", text.as_bytes(), &mut out);
    let mut dec2 = hbmon::wire::Decoder::new();
    if out.len() <= hbmon::wire::MAX_DATAGRAM {
        let m = dec2.decode(&out).expect("own framing decodes");
        assert_eq!(m.len(), pairs.len());
    }
});
