//! Any bytes into the command-line parser and then into the parsers of the
//! verb arguments (issue 13 item 8): never panics; a parsed verb is
//! upper-case alphanumeric; every number that gets through is finite and
//! within its documented range.
#![no_main]
use hbmon::ranges;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(r) = hbmon::command::parse_line(data) else { return };
    assert!(r.verb.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    match r.verb.as_str() {
        "SEND" => {
            if let Ok(s) = ranges::send_spread(&r.args) {
                assert!(s.is_finite() && (0.0..=ranges::SEND_SPREAD_MAX).contains(&s));
            }
        }
        "SILENCE" => {
            if let Some(Ok(s)) = r.args.last().map(|a| ranges::silence_secs(a)) {
                assert!(s.is_finite() && (1.0..=365.0 * 86400.0).contains(&s));
            }
        }
        "HIST" => {
            let args: Vec<&str> = r.args.iter().map(String::as_str).collect();
            if let Ok(h) = hbmon::store::parse_hist_args(&args, |a| a == "host") {
                assert!(h.pnts.is_none_or(|p| (1..=100_000).contains(&p)));
            }
            for a in &r.args {
                if let Ok(n) = ranges::check_count("HIST pnts", a) {
                    assert!((1..=100_000).contains(&n));
                }
            }
        }
        "CLIENTS" => {
            let now = 2_000_000_000.0;
            if let Ok((_, _, f)) = hbmon::server::fleet::parse_clients_args(&r.args, |_| None, now) {
                match f {
                    hbmon::server::fleet::EventsFilter::Last(n) => assert!((1..=100_000).contains(&n)),
                    hbmon::server::fleet::EventsFilter::Since(t) => {
                        assert!(t.is_finite() && t <= now && t >= now - ranges::MAX_IVAL)
                    }
                }
            }
        }
        "REPORT" => {
            if let Ok((_, body)) = hbmon::server::fleet::parse_report(&r.rest) {
                assert!(r.rest.len() <= hbmon::server::fleet::MAX_REPORT_BYTES);
                assert!(body.get("items").is_some());
            }
        }
        _ => {
            for a in &r.args {
                if let Ok(s) = hbmon::conf::parse_ival(a) {
                    assert!(s.is_finite() && (0.0..=ranges::MAX_IVAL).contains(&s));
                }
            }
        }
    }
});
