//! The reference and the install: every example of docs/command-port.md run
//! with real netcat against a solo daemon, the Python sender of docs/wire.md
//! run against it, `make install-files` into a DESTDIR (stripped binary, man
//! pages that `man -l` renders, a conf.example that parses when uncommented,
//! an existing conf left alone, a unit that `systemd-analyze verify` accepts
//! with the installed binary), and `make uninstall`.

mod common;

use common::{spawn_fresh, Fleet, BIN};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn show(what: &str, o: &Output) -> String {
    format!(
        "{what}: {}\n--- stdout\n{}--- stderr\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One documented exchange: the command line and the answer shown.
struct Example {
    verb_line: String,
    answer: Vec<String>,
}

/// The ```text blocks of a doc that start with `$ echo ... | nc`.
fn examples(doc: &str) -> Vec<Example> {
    let mut out = Vec::new();
    let mut lines = doc.lines();
    while let Some(l) = lines.next() {
        if l.trim() != "```text" {
            continue;
        }
        let block: Vec<String> =
            lines.by_ref().take_while(|l| l.trim() != "```").map(str::to_string).collect();
        let Some(cmd) = block.first().and_then(|c| c.strip_prefix("$ echo ")) else { continue };
        let (arg, _) = cmd.split_once(" | nc").expect("example pipes into nc");
        out.push(Example {
            verb_line: arg.trim_matches('\'').to_string(),
            answer: block[1..].to_vec(),
        });
    }
    out
}

/// Top-level keys of a JSON object line, in order.
fn json_keys(line: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(v.as_object()?.keys().cloned().collect())
}

#[test]
fn command_port_examples_hold_against_a_solo_daemon() {
    let mut f = Fleet::solo("");
    f.hosts[0].start();
    let h = &f.hosts[0];
    // Let the first probe round and report land so STATE has its items.
    h.wait_state(60.0, "items and a host line", |s| {
        s.contains("-- item cpu_load ") && s.contains("-- host ")
    });
    let doc = std::fs::read_to_string(root().join("docs/command-port.md")).unwrap();
    let exs = examples(&doc);
    assert!(exs.len() >= 15, "only {} examples found", exs.len());
    for ex in &exs {
        let line = ex.verb_line.replace("solo.example.org", &h.name);
        let got = h.nc(format!("{line}\n").as_bytes());
        let got: Vec<&str> = got.lines().collect();
        let answer: Vec<String> =
            ex.answer.iter().map(|l| l.replace("solo.example.org", &h.name)).collect();
        let ctx =
            format!("example {line:?}\ndoc:\n{}\ngot:\n{}", answer.join("\n"), got.join("\n"));
        assert_eq!(got.first().copied(), answer.first().map(String::as_str), "{ctx}");
        let want_last = answer.last().expect("answer").as_str();
        if want_last.starts_with("COMMAND ERROR") {
            assert_eq!(got.last().copied(), Some(want_last), "{ctx}");
        } else {
            assert_eq!(got.last().copied(), Some("COMMAND DONE"), "{ctx}");
        }
        // Every documented body line has a counterpart: the same JSON keys,
        // or the same leading words of a `-- key ...` / plain line.
        for want in &answer[1..answer.len() - 1] {
            let ok = if let Some(keys) = json_keys(want) {
                got.iter().any(|g| json_keys(g).as_ref() == Some(&keys))
            } else {
                let words: Vec<&str> = want.split_whitespace().take(2).collect();
                got.iter().any(|g| g.split_whitespace().take(2).eq(words.iter().copied()))
            };
            assert!(ok, "no line like {want:?}\n{ctx}");
        }
    }
}

#[test]
fn wire_doc_python_sender_gets_an_ack() {
    let mut f = Fleet::solo("");
    f.hosts[0].start();
    let h = &f.hosts[0];
    let doc = std::fs::read_to_string(root().join("docs/wire.md")).unwrap();
    let start = doc.find("```python\n").expect("python example") + 10;
    let code = &doc[start..start + doc[start..].find("```").unwrap()];
    // The doc's sender, aimed at this daemon and sent from the host's address.
    let code = code
        .replace("www1.example.org", &h.name)
        .replace("(\"127.0.0.1\", 50003)", &format!("(\"{}\", {})", h.ip, h.port))
        .replace("s.settimeout(2)", &format!("s.settimeout(10); s.bind((\"{}\", 0))", h.ip));
    let o = Command::new("python3").arg("-c").arg(&code).output().expect("python3");
    assert!(o.status.success(), "{}\n{code}", show("python3 wire example", &o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("seq=0;ts=") && out.contains(";srv_ts="), "{out}");
}

/// The mangen example binary (built by `cargo build --examples`, which the
/// test runner does first; built here when missing).
fn mangen() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let p = dir.join("examples/mangen");
    if !p.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let o = Command::new(cargo)
            .args(["build", "--example", "mangen"])
            .current_dir(root())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", show("cargo build --example mangen", &o));
    }
    p
}

fn make(dest: &Path, target: &str, man_out: &Path) -> Output {
    Command::new("make")
        .arg("-s")
        .arg(target)
        .arg(format!("DESTDIR={}", dest.display()))
        .arg(format!("BIN={BIN}"))
        .arg(format!("MANGEN={}", mangen().display()))
        .arg(format!("MANOUT={}", man_out.display()))
        .current_dir(root())
        .output()
        .expect("make")
}

fn man_l(page: &Path) -> String {
    let o = Command::new("man")
        .arg("-l")
        .arg(page)
        .env("MANWIDTH", "100")
        .output()
        .expect("man (package man-db)");
    assert!(o.status.success(), "{}", show(&format!("man -l {}", page.display()), &o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!err.contains("warning"), "{}", show("man -l", &o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn make_install_and_uninstall_into_destdir() {
    let d = tempfile::tempdir().unwrap();
    let dest = d.path().join("root");
    let man_out = d.path().join("man");
    // An admin's conf is there already: install must leave it as it is.
    let conf = dest.join("etc/hbmon/conf");
    std::fs::create_dir_all(conf.parent().unwrap()).unwrap();
    std::fs::write(&conf, "server mine.example.org\n").unwrap();

    let o = make(&dest, "install-files", &man_out);
    assert!(o.status.success(), "{}", show("make install-files", &o));
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "server mine.example.org\n");

    let bin = dest.join("usr/local/sbin/hbmon");
    let o = Command::new("readelf").arg("-S").arg(&bin).output().expect("readelf");
    let sections = String::from_utf8_lossy(&o.stdout);
    assert!(sections.contains(".text") && !sections.contains(".symtab"), "not stripped");
    let mut cmd = Command::new(&bin);
    cmd.arg("--version").stdout(Stdio::piped()).stderr(Stdio::piped());
    let v = spawn_fresh(&mut cmd).wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&v.stdout).starts_with("hbmon 0.1"),
        "{}",
        show("--version", &v)
    );

    // Man pages: hbmon(8) lists every command and the command-port verbs;
    // mkwork's own page shows its flags apart from the log flags.
    let man8 = dest.join("usr/local/share/man/man8");
    let top = man_l(&man8.join("hbmon.8"));
    for want in ["hbmon-start(8)", "hbmon-mkwork(8)", "COMMAND PORT", "CLIENTS", "hbmon.conf(5)"] {
        assert!(top.contains(want), "hbmon.8 lacks {want}:\n{top}");
    }
    let mk = man_l(&man8.join("hbmon-mkwork.8"));
    let (own, global) = mk.split_once("LOG LEVEL AND CONF").expect("global heading");
    let own = own.split_once("\nOPTIONS").expect("OPTIONS").1;
    assert!(own.contains("--dry-run") && !own.contains("--silent"), "{mk}");
    assert!(global.contains("--silent"), "{mk}");
    let man5 = dest.join("usr/local/share/man/man5");
    let conf5 = man_l(&man5.join("hbmon.conf.5"));
    for key in hbmon_conf_keys() {
        assert!(conf5.contains(&key), "hbmon.conf(5) does not document {key}");
    }
    let work5 = man_l(&man5.join("hbmon-work.5"));
    for key in ["fit_level", "host", "group", "get", "nagios", "fit", "channel", "alert"] {
        assert!(work5.contains(key), "hbmon-work(5) lacks {key}");
    }

    // conf.example: all comments as shipped; every commented key, once
    // uncommented, is one hbmon accepts.
    let example = std::fs::read_to_string(dest.join("etc/hbmon/conf.example")).unwrap();
    assert!(example.lines().all(|l| l.is_empty() || l.starts_with('#')), "{example}");
    let uncommented: String = example
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(uncommented.lines().count() >= 25, "{uncommented}");
    let all = d.path().join("all.conf");
    std::fs::write(&all, &uncommented).unwrap();
    let o = Command::new(BIN).arg("-c").arg(&all).arg("test").output().unwrap();
    assert!(o.status.success(), "{}\n{uncommented}", show("hbmon test on conf.example", &o));

    // The installed unit, pointed at the installed binary, verifies.
    let unit = std::fs::read_to_string(dest.join("lib/systemd/system/hbmon.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/sbin/hbmon start -i"), "{unit}");
    let unit = unit.replace("/usr/local/sbin/hbmon", &bin.display().to_string());
    let copy = d.path().join("hbmon.service");
    std::fs::write(&copy, unit).unwrap();
    let o = Command::new("systemd-analyze").arg("verify").arg(&copy).output().unwrap();
    let all_out =
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success() && !all_out.contains("hbmon.service"), "{}", show("verify", &o));

    let o = make(&dest, "uninstall", &man_out);
    assert!(o.status.success(), "{}", show("make uninstall", &o));
    assert!(!bin.exists() && !man8.join("hbmon.8").exists() && !man5.join("hbmon.conf.5").exists());
    assert!(!dest.join("lib/systemd/system/hbmon.service").exists());
    assert!(!dest.join("etc/hbmon/conf.example").exists());
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "server mine.example.org\n");
}

/// The conf keys the parser knows, read from src/conf.rs's match arms.
fn hbmon_conf_keys() -> Vec<String> {
    let src = std::fs::read_to_string(root().join("src/conf.rs")).unwrap();
    let start = src.find("match e.key.as_str() {").expect("the conf's key match");
    let end = start + src[start..].find("k if IVAL_KEYS").expect("its end");
    let mut keys: Vec<String> = src[start..end]
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"'))
        .filter_map(|l| l.split_once("\" =>").map(|(k, _)| k.to_string()))
        .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    keys.extend(["ival_heartbeat", "grace"].map(String::from));
    assert!(keys.len() > 20, "{keys:?}");
    keys
}
