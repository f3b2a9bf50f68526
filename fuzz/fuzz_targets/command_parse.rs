//! Any bytes into the command-line parser: never panics; a parsed verb is
//! upper-case alphanumeric.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = hbmon::command::parse_line(data) {
        assert!(r.verb.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    }
});
