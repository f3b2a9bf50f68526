//! ARCHITECTURE.md stays true to the tree: every file or folder it names in
//! backticks (`client/mod.rs`, `verbs/`, `tests/import_circles.rs`, ...)
//! exists, under `src/` or the repo root, so a move that forgets the map
//! fails here. (Names are matched as path suffixes: the map names
//! `hosts.rs` inside the `server/` entry.)

use std::path::{Path, PathBuf};

fn all_paths(dir: &Path, out: &mut Vec<String>, root: &Path) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        if p.is_dir() {
            out.push(format!("{rel}/"));
            all_paths(&p, out, root);
        } else {
            out.push(rel);
        }
    }
}

/// Backticked words that look like a path of ours: `a/b.rs`, `x.rs`, `dir/`, `docs/x.md`.
fn named_paths(doc: &str) -> Vec<String> {
    doc.split('`')
        .skip(1)
        .step_by(2)
        .filter(|w| !w.starts_with('/') && !w.contains(' ') && !w.contains("::"))
        .filter(|w| w.ends_with(".rs") || w.ends_with(".md") || w.ends_with('/'))
        .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || "_-./".contains(c)))
        .map(String::from)
        .collect()
}

#[test]
fn architecture_md_names_only_paths_that_exist() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut paths = Vec::new();
    all_paths(&root, &mut paths, &root);
    let names = named_paths(&doc);
    assert!(names.len() > 50, "{names:?}");
    let missing: Vec<&String> = names
        .iter()
        .filter(|n| !paths.iter().any(|p| p == *n || p.ends_with(&format!("/{n}"))))
        .collect();
    assert!(missing.is_empty(), "ARCHITECTURE.md names paths that do not exist: {missing:?}");
}

#[test]
fn the_path_words_are_found() {
    let names = named_paths("a `src/x.rs` b `verbs/` c `Now` d `crate::x` e `docs/a.md` `a b.rs`");
    assert_eq!(names, ["src/x.rs", "verbs/", "docs/a.md"]);
}

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// One module style: a module with children is `x/mod.rs`, never `x.rs`
/// beside an `x/` folder; and one test placement: no `#[path]` (a long
/// module's tests are `x/tests.rs`).
#[test]
fn one_module_style_and_one_test_placement() {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    assert!(files.len() > 100, "{}", files.len());
    let mixed: Vec<_> = files.iter().filter(|f| f.with_extension("").is_dir()).collect();
    assert!(mixed.is_empty(), "a file beside a folder of the same name: {mixed:?}");
    let pathed: Vec<_> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .any(|l| l.trim_start().starts_with("#[path"))
        })
        .collect();
    assert!(pathed.is_empty(), "#[path] modules: {pathed:?}");
}

/// The lines of `text` that use the `verbs` module, past comments: a
/// `verbs::` path or a `verbs` member of a `use crate::{...}` group.
fn verbs_uses(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
        .filter(|l| {
            l.contains("verbs::")
                || (l.starts_with("use crate::{")
                    && l.split(|c: char| !c.is_alphanumeric() && c != '_').any(|w| w == "verbs"))
        })
        .map(str::to_string)
        .collect()
}

/// The answer framing lives only in `verbs/` (issue 14): the role parts
/// return values, typed refusals (`answer::Refused`) or tickets answered
/// with `answer::Answered`, so nothing under `server/` or `client/` may
/// import `verbs` (its table, its replies, its framing).
#[test]
fn the_parts_never_import_verbs() {
    assert_eq!(
        verbs_uses("use crate::verbs::reply::Reply;\n// verbs::x\n"),
        ["use crate::verbs::reply::Reply;"]
    );
    assert_eq!(verbs_uses("use crate::{clock, verbs};\nlet v = verbs_x;\n").len(), 1);
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src.join("server"), &mut files);
    rs_files(&src.join("client"), &mut files);
    assert!(files.len() > 20, "{}", files.len());
    let mut found = Vec::new();
    for f in &files {
        for l in verbs_uses(&std::fs::read_to_string(f).unwrap_or_default()) {
            found.push(format!("{}: {l}", f.strip_prefix(&src).unwrap_or(f).display()));
        }
    }
    assert!(
        found.is_empty(),
        "the parts import verbs (frame in verbs/ instead):\n{}",
        found.join("\n")
    );
}

/// The code of `text` before its test module (`#[cfg(test)]` then a
/// `mod`), past comments: what a release build runs.
fn non_test_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = (0..lines.len())
        .find(|&i| {
            lines[i].trim() == "#[cfg(test)]"
                && lines.get(i + 1).is_some_and(|l| l.trim_start().starts_with("mod "))
        })
        .unwrap_or(lines.len());
    (0..end).map(|i| (i + 1, lines[i])).filter(|(_, l)| !l.trim_start().starts_with("//")).collect()
}

/// No `unwrap()` or `expect(` in the code a release build runs: a value
/// from the network, a file or a user is matched, never unwrapped (a
/// panic there would stop the daemon). Test modules (`tests*.rs`, and
/// what follows `#[cfg(test)] mod`) may.
#[test]
fn no_unwrap_or_expect_outside_tests() {
    assert_eq!(
        non_test_lines("a.unwrap();\n// x.unwrap()\n#[cfg(test)]\nmod tests {\nb.unwrap();\n}"),
        [(1, "a.unwrap();")]
    );
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut found = Vec::new();
    for f in files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("tests") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for (n, l) in non_test_lines(&text) {
            if l.contains(".unwrap()") || l.contains(".expect(") {
                found.push(format!("{}:{n}: {}", f.display(), l.trim()));
            }
        }
    }
    assert!(found.is_empty(), "unwrap/expect outside tests:\n{}", found.join("\n"));
}
