//! The release link's code layout (build.rs, issue 18): bench/client-hot.ld
//! is a script the linker takes, and its globs do put the functions they
//! name in `.text.hot`, before the rest of the text. Checked with the real
//! compiler and linker on a small program whose functions carry the paths
//! of some of the script's hbmon functions (their hashes differ: the globs
//! must not care).

#![cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]

use std::path::Path;
use std::process::Command;

fn script() -> (std::path::PathBuf, String) {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/client-hot.ld");
    let text = std::fs::read_to_string(&p).expect("bench/client-hot.ld");
    (p, text)
}

/// The script's patterns: `*(.text.NAME)` lines.
fn patterns(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.trim().strip_prefix("*(.text.")?.strip_suffix(')')).collect()
}

/// The path of a legacy-mangled `_ZN5hbmon...17h*` glob whose parts are all
/// lower-case identifiers (modules and a free function), e.g.
/// `["hbmon", "footprint", "trim_code"]`.
fn plain_path(pat: &str) -> Option<Vec<String>> {
    let mut rest = pat.strip_prefix("_ZN")?.strip_suffix("17h*")?;
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let n: usize = rest[..digits].parse().ok()?;
        let ident = rest.get(digits..digits + n)?;
        let ok = ident.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && ident.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if !ok || ["fn", "mod", "self", "super", "crate", "type", "impl", "main"].contains(&ident) {
            return None;
        }
        parts.push(ident.to_string());
        rest = &rest[digits + n..];
    }
    (parts.len() >= 3 && parts[0] == "hbmon").then_some(parts)
}

fn u16at(b: &[u8], o: usize) -> usize {
    u16::from_le_bytes([b[o], b[o + 1]]) as usize
}
fn u32at(b: &[u8], o: usize) -> usize {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize
}
fn u64at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}
fn cstr(b: &[u8], o: usize) -> String {
    let end = b[o..].iter().position(|&c| c == 0).unwrap_or(0);
    String::from_utf8_lossy(&b[o..o + end]).into_owned()
}

/// An ELF64 file's sections (name, address, size) and function symbols
/// (name, address).
#[allow(clippy::type_complexity)]
fn elf(b: &[u8]) -> (Vec<(String, u64, u64)>, Vec<(String, u64)>) {
    assert_eq!(&b[..5], b"\x7fELF\x02", "an ELF64 file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u64at(b, 0x28) as usize, u16at(b, 0x3a), u16at(b, 0x3c), u16at(b, 0x3e));
    let sh = |i: usize| shoff + i * shentsize;
    let strs = u64at(b, sh(shstrndx) + 24) as usize;
    let mut secs = Vec::new();
    let mut syms = Vec::new();
    for i in 0..shnum {
        let h = sh(i);
        let name = cstr(b, strs + u32at(b, h));
        secs.push((name, u64at(b, h + 16), u64at(b, h + 32)));
        if u32at(b, h + 4) == 2 {
            // SHT_SYMTAB: 24-byte entries, names in its linked string table.
            let (off, size) = (u64at(b, h + 24) as usize, u64at(b, h + 32) as usize);
            let names = u64at(b, sh(u32at(b, h + 40)) + 24) as usize;
            for e in (off..off + size).step_by(24) {
                if b[e + 4] & 0xf == 2 {
                    syms.push((cstr(b, names + u32at(b, e)), u64at(b, e + 8)));
                }
            }
        }
    }
    (secs, syms)
}

#[test]
fn the_hot_script_is_well_formed() {
    let (_, text) = script();
    let pats = patterns(&text);
    assert!(pats.len() > 100, "only {} patterns", pats.len());
    assert!(text.contains("SECTIONS {") && text.contains("  .text.hot : {"));
    assert!(
        text.trim_end().ends_with("} INSERT BEFORE .text;"),
        "it must supplement the default layout"
    );
    // Unquoted globs: a quote, space or parenthesis in a name would end the
    // pattern early (and a quoted one would not be a glob).
    for p in &pats {
        assert!(
            p.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.$*".contains(&c)),
            "pattern {p:?} has a character the script cannot carry"
        );
    }
    let lines = text.lines().filter(|l| l.trim_start().starts_with('*')).count();
    assert_eq!(lines, pats.len(), "every pattern line is *(.text.NAME)");
}

#[test]
fn its_globs_put_the_named_functions_first() {
    let (path, text) = script();
    // One function per top module (two would need their modules merged).
    let mut paths: Vec<Vec<String>> = Vec::new();
    for p in patterns(&text).into_iter().filter_map(plain_path) {
        if paths.len() < 5 && !paths.iter().any(|q| q[1] == p[1]) {
            paths.push(p);
        }
    }
    assert!(paths.len() >= 3, "the script names few plain hbmon functions");
    // A crate named hbmon with those modules and functions, plus one cold
    // function no pattern names.
    let mut src = String::new();
    let mut calls = String::new();
    // Distinct bodies: identical ones could be merged into one symbol.
    for (i, p) in paths.iter().enumerate() {
        let mods = &p[1..p.len() - 1];
        let f = &p[p.len() - 1];
        for m in mods {
            src += &format!("pub mod {m} {{ ");
        }
        src += &format!(
            "#[inline(never)] pub fn {f}() -> u64 {{ std::hint::black_box({}) }}",
            i * 100 + p.len()
        );
        src += &" }".repeat(mods.len());
        src += "\n";
        calls += &format!("    n += {}::{f}();\n", mods.join("::"));
    }
    src +=
        "#[inline(never)] pub fn not_in_the_script_at_all() -> u64 { std::hint::black_box(1) }\n";
    src += &format!("fn main() {{\n    let mut n = not_in_the_script_at_all();\n{calls}    println!(\"{{n}}\");\n}}\n");
    let dir = tempfile::tempdir().unwrap();
    let (rs, exe) = (dir.path().join("hbmon.rs"), dir.path().join("hbmon"));
    std::fs::write(&rs, &src).unwrap();
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--edition", "2021", "--crate-name", "hbmon", "-O", "-C"])
        .arg(format!("link-arg=-Wl,-T,{}", path.display()))
        .arg("-o")
        .args([&exe, &rs])
        .output()
        .expect("run rustc");
    assert!(out.status.success(), "link failed: {}\n{src}", String::from_utf8_lossy(&out.stderr));
    let run = Command::new(&exe).output().expect("run the program");
    let want: usize = 1 + paths.iter().enumerate().map(|(i, p)| i * 100 + p.len()).sum::<usize>();
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), want.to_string());

    let bytes = std::fs::read(&exe).unwrap();
    let (secs, syms) = elf(&bytes);
    let sec = |n: &str| secs.iter().find(|s| s.0 == n).cloned().unwrap_or_else(|| panic!("no {n}"));
    let (hot, text) = (sec(".text.hot"), sec(".text"));
    assert!(hot.1 < text.1, ".text.hot comes before .text");
    let addr = |name: &str| {
        let needle = format!("{}{name}17h", name.len());
        syms.iter()
            .find(|s| s.0.contains(&needle))
            .map(|s| s.1)
            .unwrap_or_else(|| panic!("no symbol {name}"))
    };
    for p in &paths {
        let a = addr(&p[p.len() - 1]);
        assert!(hot.1 <= a && a < hot.1 + hot.2, "{p:?} at {a:#x} is not in .text.hot");
    }
    let cold = addr("not_in_the_script_at_all");
    assert!(text.1 <= cold && cold < text.1 + text.2, "the unnamed function stays in .text");
}
