//! No module of `src/` imports a module that imports it back (issue 14).
//!
//! The same reading as `/work/shared/tools/import-circles`, so CI and that
//! tool agree: every `crate::a::b` path (in `use` lines and in code, a
//! `use crate::a::{b, c}` group counting each member) and every `super::b`
//! path is mapped to the file of the deepest module that exists; a file
//! using one of its ancestors (`x/y.rs` using `x/mod.rs`) is ordinary
//! nesting and not counted. Test files (`tests.rs`, `*_tests.rs`) and a
//! trailing `#[cfg(test)] mod` are left out: tests may reach anywhere. Any
//! strongly connected group of two or more files fails the test, listed
//! with its edges, so the message says which `use` to move.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Module = Vec<String>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// `client/mod.rs` -> [client], `server/fleet.rs` -> [server, fleet], `lib.rs` -> [].
fn module_path(src: &Path, file: &Path) -> Module {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Module = rel.iter().map(|c| c.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib" || l == "main") {
        parts.pop();
    }
    parts
}

fn is_test_file(m: &Module) -> bool {
    m.last().is_some_and(|l| l == "test" || l == "tests" || l.ends_with("_tests"))
}

fn is_ident_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// The `a::b::c` path starting at `i` (identifiers joined by `::`).
fn path_at(t: &[u8], mut i: usize) -> Vec<String> {
    let mut parts = Vec::new();
    loop {
        if i >= t.len() || !is_ident_start(t[i]) {
            break;
        }
        let s = i;
        while i < t.len() && is_ident(t[i]) {
            i += 1;
        }
        parts.push(String::from_utf8_lossy(&t[s..i]).into_owned());
        if t[i..].starts_with(b"::") {
            i += 2;
        } else {
            break;
        }
    }
    parts
}

/// The text up to a trailing `#[cfg(test)] mod NAME {`, if there is one.
fn without_test_module(text: &str) -> &str {
    let mut from = 0;
    while let Some(k) = text[from..].find("#[cfg(test)]") {
        let at = from + k;
        let rest = text[at + "#[cfg(test)]".len()..].trim_start();
        if let Some(r) = rest.strip_prefix("mod") {
            let r = r.trim_start();
            let name_len = r.bytes().take_while(|c| is_ident(*c)).count();
            if name_len > 0 && r[name_len..].trim_start().starts_with('{') {
                return &text[..at];
            }
        }
        from = at + 1;
    }
    text
}

/// Every path the file names, as absolute module paths (not yet mapped to files).
fn references(m: &Module, text: &str) -> Vec<Vec<String>> {
    let t = text.as_bytes();
    let mut refs = Vec::new();
    for (k, _) in text.match_indices("crate::") {
        let p = path_at(t, k + "crate::".len());
        if !p.is_empty() {
            refs.push(p);
        }
        // `use crate::a::b::{x, y as z}`: each member counts.
        let line_start = text[..k].rfind('\n').map_or(0, |n| n + 1);
        let before = text[line_start..k].trim();
        if before == "use" || before.ends_with(" use") {
            let mut j = k + "crate::".len();
            let mut base = Vec::new();
            loop {
                let s = j;
                while j < t.len() && is_ident(t[j]) {
                    j += 1;
                }
                if j == s || !t[j..].starts_with(b"::") {
                    break;
                }
                base.push(text[s..j].to_string());
                j += 2;
            }
            if t.get(j) == Some(&b'{') {
                let end = text[j..].find('}').map_or(text.len(), |e| j + e);
                for item in text[j + 1..end].split(',') {
                    let name = item.split_whitespace().next().unwrap_or("");
                    if !name.is_empty() && name != "self" {
                        let mut p = base.clone();
                        p.extend(name.split("::").map(String::from));
                        refs.push(p);
                    }
                }
            }
        }
    }
    for (k, _) in text.match_indices("super::") {
        if k > 0 && is_ident(t[k - 1]) {
            continue;
        }
        let p = path_at(t, k + "super::".len());
        if !p.is_empty() {
            let mut abs: Vec<String> = m[..m.len().saturating_sub(1)].to_vec();
            abs.extend(p);
            refs.push(abs);
        }
    }
    refs
}

fn strongly_connected(edges: &BTreeMap<Module, BTreeSet<Module>>) -> Vec<Vec<Module>> {
    // Tarjan's algorithm, iterative so a deep crate cannot overflow the stack.
    let nodes: Vec<&Module> = edges.keys().collect();
    let id: BTreeMap<&Module, usize> = nodes.iter().enumerate().map(|(i, m)| (*m, i)).collect();
    let succ: Vec<Vec<usize>> = nodes
        .iter()
        .map(|m| edges[*m].iter().filter_map(|t| id.get(t).copied()).collect())
        .collect();
    let n = nodes.len();
    let (mut index, mut low, mut on) = (vec![usize::MAX; n], vec![0; n], vec![false; n]);
    let (mut stack, mut next, mut groups) = (Vec::new(), 0, Vec::new());
    for root in 0..n {
        if index[root] != usize::MAX {
            continue;
        }
        let mut work = vec![(root, 0usize)];
        index[root] = next;
        low[root] = next;
        next += 1;
        stack.push(root);
        on[root] = true;
        while let Some(&mut (v, ref mut i)) = work.last_mut() {
            if let Some(&w) = succ[v].get(*i) {
                *i += 1;
                if index[w] == usize::MAX {
                    index[w] = next;
                    low[w] = next;
                    next += 1;
                    stack.push(w);
                    on[w] = true;
                    work.push((w, 0));
                } else if on[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            work.pop();
            if let Some(&(parent, _)) = work.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut group = Vec::new();
                loop {
                    let w = stack.pop().unwrap();
                    on[w] = false;
                    group.push(nodes[w].clone());
                    if w == v {
                        break;
                    }
                }
                if group.len() > 1 {
                    group.sort();
                    groups.push(group);
                }
            }
        }
    }
    groups
}

/// The module graph of a crate's `src/`: file module -> modules it uses.
fn graph(src: &Path) -> (BTreeMap<Module, PathBuf>, BTreeMap<Module, BTreeSet<Module>>) {
    let mut paths = Vec::new();
    rust_files(src, &mut paths);
    let files: BTreeMap<Module, PathBuf> =
        paths.into_iter().map(|p| (module_path(src, &p), p)).collect();
    let module_of = |parts: &[String]| -> Option<Module> {
        (1..=parts.len()).rev().map(|k| parts[..k].to_vec()).find(|m| files.contains_key(m))
    };
    let mut edges: BTreeMap<Module, BTreeSet<Module>> = BTreeMap::new();
    for (m, p) in &files {
        let set = edges.entry(m.clone()).or_default();
        if is_test_file(m) {
            continue;
        }
        let text = std::fs::read_to_string(p).unwrap();
        for r in references(m, without_test_module(&text)) {
            let Some(t) = module_of(&r) else { continue };
            // A module using its own ancestor is ordinary nesting.
            let ancestor = t.len() < m.len() && m[..t.len()] == t[..];
            if &t != m && !ancestor {
                set.insert(t);
            }
        }
    }
    (files, edges)
}

fn circles_in(src: &Path) -> Vec<String> {
    let (files, edges) = graph(src);
    let name =
        |m: &Module| files[m].strip_prefix(src.parent().unwrap()).unwrap().display().to_string();
    strongly_connected(&edges)
        .into_iter()
        .map(|group| {
            let inside: BTreeSet<&Module> = group.iter().collect();
            let mut s = format!(
                "circle of {} files: {}",
                group.len(),
                group.iter().map(name).collect::<Vec<_>>().join(", ")
            );
            for m in &group {
                for t in edges[m].iter().filter(|t| inside.contains(t)) {
                    s.push_str(&format!("\n  {} -> {}", name(m), name(t)));
                }
            }
            s
        })
        .collect()
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let circles = circles_in(&src);
    assert!(
        circles.is_empty(),
        "{} import circle(s) in src/ (move the shared code down into a module both can use):\n{}",
        circles.len(),
        circles.join("\n")
    );
}

/// The check itself finds circles: a throwaway crate with one of three
/// files (one edge through a `use` group), a plain chain into it, children
/// using their parent (no circle) and a test module's use (not counted).
#[test]
fn the_check_finds_a_circle_and_only_that() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a")).unwrap();
    let write = |p: &str, t: &str| std::fs::write(src.join(p), t).unwrap();
    write("lib.rs", "pub mod a;\npub mod b;\npub mod c;\npub mod d;\n");
    write("a/mod.rs", "pub mod x;\npub fn y() {}\npub fn z() {}\n");
    write("a/x.rs", "fn k() { super::y(); crate::a::z(); crate::b::f() }\n");
    write("b.rs", "pub fn f() { crate::c::go() }\n");
    write("c.rs", "use crate::a::{x::k, self};\n#[cfg(test)]\nmod tests { use crate::d; }\n");
    write("d.rs", "use crate::b::{f, g as h};\n");
    let circles = circles_in(&src);
    assert_eq!(circles.len(), 1, "{circles:#?}");
    let c = &circles[0];
    assert!(c.starts_with("circle of 3 files: src/a/x.rs, src/b.rs, src/c.rs"), "{c}");
    assert!(c.contains("src/b.rs -> src/c.rs") && c.contains("src/c.rs -> src/a/x.rs"), "{c}");
    assert!(!c.contains("src/d.rs") && !c.contains("src/a/mod.rs"), "{c}");
}
