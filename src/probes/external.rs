//! `probe:NAME` items: run `$vardir/probes/PROGRAM`, which prints one
//! `item value [message...]` line per value.
//!
//! Naming: a printed item becomes `NAME.item`, unless it already starts with
//! `NAME.` (so `mdraid` may print `mdraid.degraded 0` or `degraded 0`, both
//! giving `mdraid.degraded`). The prefix keeps a probe from overwriting
//! another item such as `cpu_load`. The `probe:NAME` item itself gets the
//! program's exit code as its value (0 = ran fine) and a summary message;
//! it has no value only when the program could not run or timed out.
//! A malformed line becomes an error sample for the item it names.

use super::exec::{self, ExecError};
use super::Sample;
use std::path::Path;
use std::time::Duration;

/// One line of probe output, parsed.
#[derive(Clone, Debug, PartialEq)]
pub enum Line {
    Value {
        item: String,
        value: f64,
        message: String,
    },
    /// The line names an item but its value is missing or not a number.
    Bad {
        item: String,
        msg: String,
    },
}

/// Parse probe output; blank lines and `#` comments are skipped.
pub fn parse_output(stdout: &str) -> Vec<Line> {
    let mut out = Vec::new();
    for (n, raw) in stdout.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut parts = line.splitn(2, char::is_whitespace);
        let item = parts.next().unwrap_or("").to_string();
        let rest = parts.next().unwrap_or("").trim_start();
        let mut parts = rest.splitn(2, char::is_whitespace);
        let value = parts.next().unwrap_or("");
        let message = parts.next().unwrap_or("").trim().to_string();
        let lineno = n + 1;
        out.push(if value.is_empty() {
            Line::Bad { item, msg: format!("line {lineno}: no value") }
        } else {
            match value.parse::<f64>() {
                Ok(v) if v.is_finite() => Line::Value { item, value: v, message },
                _ => Line::Bad { item, msg: format!("line {lineno}: bad value '{value}'") },
            }
        });
    }
    out
}

/// `NAME.item` unless the printed item already carries the prefix.
pub fn qualify(name: &str, printed: &str) -> String {
    match printed.strip_prefix(name).and_then(|r| r.strip_prefix('.')) {
        Some(rest) if !rest.is_empty() => printed.to_string(),
        _ => format!("{name}.{printed}"),
    }
}

/// Samples for one run's outcome: `probe:NAME` first, then one per line.
pub fn samples_from(item: &str, result: Result<exec::Output, ExecError>) -> Vec<Sample> {
    let name = item.strip_prefix("probe:").unwrap_or(item);
    let out = match result {
        Ok(o) => o,
        Err(e) => return vec![Sample::failed(item, e.to_string())],
    };
    let lines = parse_output(&out.stdout);
    let bad = lines.iter().filter(|l| matches!(l, Line::Bad { .. })).count();
    let mut samples = Vec::with_capacity(lines.len() + 1);
    let summary = match (out.code, bad) {
        (Some(0), 0) => format!("{} values", lines.len()),
        (Some(0), b) => format!("{} values, {b} malformed", lines.len()),
        _ => exec::first_line(&out.stderr).to_string(),
    };
    samples.push(match out.code {
        Some(c) => Sample::ok(item, c as f64, summary),
        None => Sample::failed(item, format!("killed by signal {}", out.signal.unwrap_or(0))),
    });
    for l in lines {
        samples.push(match l {
            Line::Value { item, value, message } => {
                Sample::ok(&qualify(name, &item), value, message)
            }
            Line::Bad { item, msg } => Sample::failed(&qualify(name, &item), msg),
        });
    }
    samples
}

/// Run `probes_dir/program`. The program name was checked by `classify`'s
/// caller; a name with a `/` is refused here too so nothing outside the
/// probes directory runs.
pub fn run(
    item: &str,
    program: &str,
    args: &[String],
    probes_dir: &Path,
    timeout: Duration,
) -> Vec<Sample> {
    if program.is_empty() || program.contains('/') || program.starts_with('.') {
        return vec![Sample::failed(item, format!("bad probe program name '{program}'"))];
    }
    let path = probes_dir.join(program);
    let mut argv = vec![path.to_string_lossy().into_owned()];
    argv.extend(args.iter().cloned());
    samples_from(item, exec::run_command(&argv, timeout, exec::DEFAULT_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lines() {
        let l = parse_output(
            "degraded 0\nmdraid.arrays 2 md0 md1 ok\n# comment\n\n  spaced   1.5   hello  world \n\
             bad x\nlonely\ninf inf\n",
        );
        assert_eq!(
            l,
            vec![
                Line::Value { item: "degraded".into(), value: 0.0, message: "".into() },
                Line::Value {
                    item: "mdraid.arrays".into(),
                    value: 2.0,
                    message: "md0 md1 ok".into()
                },
                Line::Value { item: "spaced".into(), value: 1.5, message: "hello  world".into() },
                Line::Bad { item: "bad".into(), msg: "line 6: bad value 'x'".into() },
                Line::Bad { item: "lonely".into(), msg: "line 7: no value".into() },
                Line::Bad { item: "inf".into(), msg: "line 8: bad value 'inf'".into() },
            ]
        );
    }

    #[test]
    fn qualified_names() {
        assert_eq!(qualify("mdraid", "degraded"), "mdraid.degraded");
        assert_eq!(qualify("mdraid", "mdraid.degraded"), "mdraid.degraded");
        assert_eq!(qualify("mdraid", "mdraid."), "mdraid.mdraid.");
        assert_eq!(qualify("md", "mdraid.x"), "md.mdraid.x");
        assert_eq!(qualify("smart", "cpu_load"), "smart.cpu_load");
    }

    fn output(code: Option<i32>, stdout: &str, stderr: &str) -> exec::Output {
        exec::Output {
            code,
            signal: None,
            stdout: stdout.into(),
            stderr: stderr.into(),
            truncated: false,
            elapsed: Duration::ZERO,
        }
    }

    #[test]
    fn samples() {
        let s = samples_from("probe:mdraid", Ok(output(Some(0), "degraded 1 md0\noops\n", "")));
        assert_eq!((s[0].item.as_str(), s[0].value), ("probe:mdraid", Some(0.0)));
        assert_eq!(s[0].message, "2 values, 1 malformed");
        assert_eq!(
            (s[1].item.as_str(), s[1].value, s[1].message.as_str()),
            ("mdraid.degraded", Some(1.0), "md0")
        );
        assert_eq!((s[2].item.as_str(), s[2].value), ("mdraid.oops", None));
        let s = samples_from("probe:x", Ok(output(Some(2), "", "no permission\n")));
        assert_eq!((s[0].value, s[0].message.as_str()), (Some(2.0), "no permission"));
        let s = samples_from("probe:x", Err(ExecError::TimedOut { after: Duration::from_secs(1) }));
        assert_eq!(
            (s.len(), s[0].value, s[0].error.as_deref()),
            (1, None, Some("timed out after 1s"))
        );
    }

    #[test]
    fn refuses_paths() {
        let d = Path::new("/tmp");
        for p in ["../x", "a/b", "", ".hidden"] {
            let s = run("probe:x", p, &[], d, Duration::from_secs(1));
            assert!(s[0].error.as_deref().unwrap().contains("bad probe program"), "{p}");
        }
    }
}
