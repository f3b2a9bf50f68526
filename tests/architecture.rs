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
