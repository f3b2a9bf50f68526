//! Datagrams built by Python's zlib (not by our encoder) fed to the server's
//! host table: valid HTB and PLG, truncated zlib, a zip bomb, bad UTF-8, a
//! near-64 KiB datagram, one over 64 KiB, `@` JSON containing `;`, a key
//! without value. Each is accepted or refused with the right reason, and
//! the table keeps working.

use hbmon::clock::Now;
use hbmon::server::hosts::{Accepted, HostTable, ItemVal, Refused, TableConf};
use hbmon::work::model::Intervals;
use std::process::Command;

const PY: &str = r#"
import zlib, random
def d(ident, text, space=False):
    return b"!" + ident + (b": " if space else b":") + zlib.compress(text)
random.seed(7)
big = "".join(random.choice("0123456789abcdef") for _ in range(110000))
cases = [
    ("htb", d(b"HTB", b"name=py.example;ts=1000000.0;seq=1;interval=10;rtt=0.5;acks=0;ver=hbc-5.3.9;boot=1")),
    ("plg", d(b"PLG", b'name=py.example;plugin=cpu_monitor;cpu_percent=45.2;load_1min=1.5;disks=@{"/":"ok;fine"}', True)),
    ("truncated", d(b"HTB", b"name=py.example;seq=2;interval=10")[:-6]),
    ("bomb", d(b"HTB", b"a=" + b"0" * (50 * 1024 * 1024))),
    ("badutf8", d(b"HTB", b"name=\xff\xfe\xfd")),
    ("big_ok", d(b"PLG", ("name=py.example;plugin=blob;x=" + big).encode())),
    ("too_big", b"!HTB:" + bytes(65536)),
    ("json_semicolon", d(b"PLG", b'name=py.example;plugin=j;v=@["a;b",{"c":";"}];w=2')),
    ("no_value", d(b"HTB", b"name;seq=3")),
    ("htb2", d(b"HTB", b"name=py.example;ts=1000010.0;seq=2;interval=10")),
]
for name, data in cases:
    print(name, len(data), data.hex())
"#;

fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn python_made_datagrams() {
    let out = Command::new("python3").arg("-c").arg(PY).output().expect("python3 runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let mut t = HostTable::new(TableConf { intervals: Intervals::default(), key: None }, &[]);
    let from = "127.0.0.9:5000".parse().unwrap();
    let (mut ack, mut ch) = (Vec::new(), Vec::new());
    let mut results = Vec::new();
    for line in text.lines() {
        let mut w = line.split(' ');
        let (name, len, hex) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
        let bytes = unhex(hex);
        assert_eq!(bytes.len().to_string(), len);
        let now = Now { mono: results.len() as f64, wall: 1_000_000.0 };
        let r = t.on_datagram(&bytes, from, now, &mut ack, &mut ch);
        results.push((name.to_string(), r, bytes.len()));
    }
    let get = |n: &str| results.iter().find(|r| r.0 == n).unwrap().1;
    assert_eq!(get("htb"), Ok(Accepted::Htb));
    assert_eq!(get("plg"), Ok(Accepted::Plg));
    assert_eq!(get("truncated"), Err(Refused("inflate")));
    assert_eq!(get("bomb"), Err(Refused("too_large")));
    assert_eq!(get("badutf8"), Err(Refused("not_utf8")));
    let big = results.iter().find(|r| r.0 == "big_ok").unwrap();
    assert!(big.2 > 50_000 && big.2 <= 65_536, "big datagram is {} bytes", big.2);
    assert_eq!(big.1, Ok(Accepted::Plg));
    assert_eq!(get("too_big"), Err(Refused("too_big")));
    assert_eq!(get("json_semicolon"), Ok(Accepted::Plg));
    assert_eq!(get("no_value"), Err(Refused("no_value")));
    assert_eq!(get("htb2"), Ok(Accepted::Htb));
    let h = t.host("py.example").unwrap();
    assert_eq!(&*h.version, "hbc-5.3.9");
    assert_eq!(h.seq, Some(2));
    assert_eq!(h.items.get("cpu_monitor.cpu_percent"), Some(&ItemVal::Num(45.2)));
    assert_eq!(h.items.get("cpu_monitor.disks"), Some(&ItemVal::Text(r#"{"/":"ok;fine"}"#.into())));
    assert_eq!(h.items.get("j.w"), Some(&ItemVal::Num(2.0)));
    assert_eq!(t.stats().refused, 5);
    let r = t.refusals();
    for reason in ["inflate", "too_large", "not_utf8", "too_big", "no_value"] {
        assert_eq!(r.get(reason), Some(&1), "{reason}");
    }
}
