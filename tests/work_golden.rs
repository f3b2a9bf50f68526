//! `work/fleet.work` -> the exact set of JSON files in `tests/golden/fleet/`,
//! and mkwork's file behaviour (mtimes kept, -n, errors write nothing).
//! Regenerate the golden files with `UPDATE_GOLDEN=1 cargo test --test work_golden`.

use hbmon::work::mkwork::{mkwork, Change, MkworkOpts};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn opts(workconf: &Path, out: &Path) -> MkworkOpts {
    MkworkOpts {
        workconf: workconf.to_path_buf(),
        out: out.to_path_buf(),
        force: false,
        verbose: false,
        dry_run: false,
    }
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read_to_string(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn fleet_work_matches_golden_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("works");
    let changes = mkwork(&opts(&root().join("work/fleet.work"), &out)).unwrap();
    assert_eq!(changes.len(), 12);
    assert!(changes.iter().all(|(_, c)| *c == Change::New));
    let golden = root().join("tests/golden/fleet");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&golden);
        std::fs::create_dir_all(&golden).unwrap();
        for (name, text) in read_dir(&out) {
            std::fs::write(golden.join(name), text).unwrap();
        }
    }
    let (got, want) = (read_dir(&out), read_dir(&golden));
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (name, text) in &want {
        assert!(
            got[name] == *text,
            "{name} differs from tests/golden/fleet/{name}; \
             if intended, run UPDATE_GOLDEN=1 cargo test --test work_golden"
        );
    }
}

fn mtimes(dir: &Path) -> BTreeMap<String, std::time::SystemTime> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().modified().unwrap(),
            )
        })
        .collect()
}

const SMALL: &str = "host a.example.org a 127.0.0.2\nhost b.example.org b 127.0.0.3\n\
server a\nget all cpu_load\n";

#[test]
fn unchanged_files_keep_their_mtime_and_changes_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (conf, out) = (tmp.path().join("work"), tmp.path().join("works"));
    std::fs::write(&conf, SMALL).unwrap();
    mkwork(&opts(&conf, &out)).unwrap();
    // Back-date the files so a rewrite would be visible in the mtime.
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for name in ["a.example.org.json", "b.example.org.json"] {
        std::fs::File::options()
            .write(true)
            .open(out.join(name))
            .unwrap()
            .set_modified(old)
            .unwrap();
    }
    // b gets a new item; a is untouched.
    std::fs::write(&conf, format!("{SMALL}get b uptime\n")).unwrap();
    let ch = mkwork(&opts(&conf, &out)).unwrap();
    assert_eq!(
        ch,
        vec![
            ("a.example.org.json".into(), Change::Unchanged),
            ("b.example.org.json".into(), Change::Changed)
        ]
    );
    let m = mtimes(&out);
    assert_eq!(m["a.example.org.json"], old);
    assert_ne!(m["b.example.org.json"], old);
    assert!(std::fs::read_to_string(out.join("b.example.org.json"))
        .unwrap()
        .contains("\"uptime\""));
    // -f rewrites everything.
    let mut o = opts(&conf, &out);
    o.force = true;
    mkwork(&o).unwrap();
    assert_ne!(mtimes(&out)["a.example.org.json"], old);
    // A host leaving the work loses its file.
    std::fs::write(&conf, "host a.example.org a 127.0.0.2\nserver a\nget all cpu_load\n").unwrap();
    let ch = mkwork(&opts(&conf, &out)).unwrap();
    assert_eq!(ch[1], ("b.example.org.json".into(), Change::Removed));
    assert_eq!(read_dir(&out).len(), 1);
    // No staging dir is left behind.
    let left: Vec<_> =
        std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 2, "{left:?}");
}

#[test]
fn dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (conf, out) = (tmp.path().join("work"), tmp.path().join("works"));
    std::fs::write(&conf, SMALL).unwrap();
    let mut o = opts(&conf, &out);
    o.dry_run = true;
    let ch = mkwork(&o).unwrap();
    assert_eq!(ch.len(), 2);
    assert!(ch.iter().all(|(_, c)| *c == Change::New));
    assert!(!out.exists());
    mkwork(&opts(&conf, &out)).unwrap();
    std::fs::write(&conf, format!("{SMALL}get a uptime\n")).unwrap();
    let before = read_dir(&out);
    let ch = mkwork(&o).unwrap();
    assert_eq!(ch[0], ("a.example.org.json".into(), Change::Changed));
    assert_eq!(read_dir(&out), before);
}

#[test]
fn an_error_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (conf, out) = (tmp.path().join("work"), tmp.path().join("works"));
    std::fs::write(&conf, SMALL).unwrap();
    mkwork(&opts(&conf, &out)).unwrap();
    let before = read_dir(&out);
    std::fs::write(
        &conf,
        format!("{SMALL}get b uptime\nget nobody cpu_load\nfit cpu_load bad >1\n"),
    )
    .unwrap();
    let e = mkwork(&opts(&conf, &out)).unwrap_err().to_string();
    assert!(e.contains(":6: get: unknown host or group 'nobody'"), "{e}");
    assert!(e.contains(":7: fit cpu_load: undeclared level 'bad'"), "{e}");
    assert_eq!(read_dir(&out), before);
    let fresh = tmp.path().join("fresh");
    assert!(mkwork(&opts(&conf, &fresh)).is_err());
    assert!(!fresh.exists());
}
