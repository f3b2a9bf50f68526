//! Issue 19: a fixed sleep in a test must say why no condition can be
//! awaited there. Every `thread::sleep` under tests/ carries a
//! `// sleep: <reason>` comment on the line before or on the same line
//! (a deadline loop's poll interval, a chaos test's random pause, a slow
//! peer on purpose...); a bare `use ...::sleep` import, which would hide
//! calls from this check, is refused. Runs with the suite, so CI fails on a
//! new uncommented sleep.

use std::path::{Path, PathBuf};

/// The call this check looks for (split so this file does not match itself).
const NEEDLE: &str = concat!("thread::", "sleep");
/// The comment tag that explains a sleep.
const TAG: &str = "// sleep: ";
/// A reason shorter than this says nothing.
const MIN_REASON: usize = 10;

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// True when `line` has a `// sleep: <reason>` comment of some length.
fn explains(line: &str) -> bool {
    line.find(TAG).is_some_and(|i| line[i + TAG.len()..].trim().len() >= MIN_REASON)
}

/// The 1-based numbers of the lines of `text` that break the rule, each with
/// what is wrong.
fn offences(text: &str) -> Vec<(usize, &'static str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        if code.starts_with("//") || !line.contains(NEEDLE) {
            continue;
        }
        if code.starts_with("use ") {
            out.push((i + 1, "call sleep by its full path, not through a `use` import"));
        } else if !(explains(line) || i > 0 && explains(lines[i - 1])) {
            out.push((i + 1, "a sleep without a `// sleep: <why no condition>` comment"));
        }
    }
    out
}

#[test]
fn every_sleep_in_tests_says_why_no_condition_can_be_awaited() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    assert!(files.len() > 5, "found only {files:?} under {}", root.display());
    let mut bad = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        for (n, why) in offences(&text) {
            bad.push(format!("{}:{n}: {why}", f.display()));
        }
    }
    assert!(bad.is_empty(), "await a condition (common::wait_for) or explain:\n{}", bad.join("\n"));
}

#[test]
fn the_check_itself_catches_what_it_should() {
    let call = format!("    std::{NEEDLE}(d);");
    let ok_before = format!("    {TAG}poll interval of a deadline loop\n{call}\n");
    let ok_same = format!("{call} {TAG}a slow receiver on purpose\n");
    assert!(offences(&ok_before).is_empty());
    assert!(offences(&ok_same).is_empty());
    // Bare, after an unrelated comment, or with an empty reason: refused.
    assert_eq!(offences(&format!("let a = 1;\n{call}\n")), vec![(2, offences(&call)[0].1)]);
    assert_eq!(offences(&format!("    // wait a bit\n{call}\n")).len(), 1);
    assert_eq!(offences(&format!("{call} {TAG}x\n")).len(), 1);
    // Two lines above does not count.
    assert_eq!(offences(&format!("{TAG}a reason long enough\nlet a = 1;\n{call}\n")).len(), 1);
    assert_eq!(offences(&format!("use std::{NEEDLE};\n")).len(), 1);
    // A commented-out call is not a call.
    assert!(offences(&format!("// {call}\n")).is_empty());
}
