//! `nagios:NAME` items: run a Nagios-compatible plugin and turn its exit code,
//! first output line and performance data into samples (Nagios plugin API,
//! "Plugin Output" and "Performance data" sections).
//!
//! The item's value is the exit code (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN;
//! the fitness function maps it with `nagios_map`); any other exit, or death
//! by a signal, is UNKNOWN with an error. Each perfdata entry becomes a
//! sample `NAME.label` with the numeric value, its unit of measure stripped
//! (not converted: `10ms` is 10).

use super::exec::{self, ExecError};
use super::Sample;
use std::time::Duration;

/// One parsed perfdata entry: `'label'=value[UOM];warn;crit;min;max`.
#[derive(Clone, Debug, PartialEq)]
pub struct Perf {
    pub label: String,
    /// `None` for `U` (the plugin could not determine it) or an empty value.
    pub value: Option<f64>,
    pub uom: String,
    pub warn: Option<String>,
    pub crit: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// A perfdata entry that could not be parsed: `label` when there was one.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfError {
    pub label: Option<String>,
    pub msg: String,
}

/// Split a plugin's stdout into (first line of text, all perfdata text).
/// Perfdata follows the first `|` of line one, and, on later lines, follows
/// the first `|` seen there to the end of the output.
pub fn split_output(stdout: &str) -> (String, String) {
    let mut lines = stdout.lines();
    let first = lines.next().unwrap_or("");
    let (text, mut perf) = match first.split_once('|') {
        Some((t, p)) => (t.trim().to_string(), p.trim().to_string()),
        None => (first.trim().to_string(), String::new()),
    };
    let mut in_perf = false;
    for line in lines {
        let part = if in_perf {
            line
        } else if let Some((_, p)) = line.split_once('|') {
            in_perf = true;
            p
        } else {
            continue;
        };
        if !part.trim().is_empty() {
            perf.push(' ');
            perf.push_str(part.trim());
        }
    }
    (text, perf)
}

/// Parse perfdata text: entries separated by spaces; a label in single
/// quotes may contain spaces and `=`, and `''` inside it is one quote.
pub fn parse_perfdata(text: &str) -> Vec<Result<Perf, PerfError>> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].is_whitespace() {
            i += 1;
            continue;
        }
        // The label.
        let mut label = String::new();
        if chars[i] == '\'' {
            i += 1;
            let mut closed = false;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        label.push('\'');
                        i += 2;
                        continue;
                    }
                    closed = true;
                    i += 1;
                    break;
                }
                label.push(chars[i]);
                i += 1;
            }
            if !closed {
                out.push(Err(PerfError { label: Some(label), msg: "unterminated quote".into() }));
                break;
            }
        } else {
            while i < chars.len() && chars[i] != '=' && !chars[i].is_whitespace() {
                label.push(chars[i]);
                i += 1;
            }
        }
        // The rest of the entry, up to the next blank.
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        let rest: String = chars[start..i].iter().collect();
        out.push(parse_entry(label, &rest));
    }
    out
}

fn parse_entry(label: String, rest: &str) -> Result<Perf, PerfError> {
    let err = |label: &str, msg: String| {
        Err(PerfError { label: (!label.is_empty()).then(|| label.to_string()), msg })
    };
    let Some(data) = rest.strip_prefix('=') else {
        return err(&label, format!("no '=' in perfdata '{label}{rest}'"));
    };
    if label.is_empty() {
        return err(&label, format!("perfdata without a label '{rest}'"));
    }
    let mut fields = data.split(';');
    let value_uom = fields.next().unwrap_or("");
    // `U`: the plugin could not determine the value; empty: it gave none.
    let (value, uom) = if value_uom == "U" || value_uom.is_empty() {
        (None, String::new())
    } else {
        let split = number_prefix_len(value_uom);
        let num = &value_uom[..split];
        match num.replace(',', ".").parse::<f64>() {
            Ok(v) => (Some(v), value_uom[split..].to_string()),
            Err(_) => return err(&label, format!("bad perfdata value '{value_uom}'")),
        }
    };
    let opt = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    let num = |s: Option<&str>| s.and_then(|s| s.replace(',', ".").parse::<f64>().ok());
    let (warn, crit) = (fields.next(), fields.next());
    let (min, max) = (fields.next(), fields.next());
    Ok(Perf { label, value, uom, warn: opt(warn), crit: opt(crit), min: num(min), max: num(max) })
}

/// Length of the leading number of `s` (digits, sign, point, decimal comma
/// from a careless locale, and an exponent only when digits follow it).
fn number_prefix_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let exp_ok = (c == b'e' || c == b'E')
            && i > 0
            && match b.get(i + 1) {
                Some(d) if d.is_ascii_digit() => true,
                Some(b'+' | b'-') => b.get(i + 2).is_some_and(u8::is_ascii_digit),
                _ => false,
            };
        let sign_ok = (c == b'+' || c == b'-') && (i == 0 || matches!(b[i - 1], b'e' | b'E'));
        if c.is_ascii_digit() || c == b'.' || c == b',' || exp_ok || sign_ok {
            i += 1;
        } else {
            break;
        }
    }
    i
}

/// Samples for one plugin run's outcome: `nagios:NAME` first, then one per
/// perfdata entry.
pub fn samples_from(item: &str, result: Result<exec::Output, ExecError>) -> Vec<Sample> {
    let name = item.strip_prefix("nagios:").unwrap_or(item);
    let out = match result {
        Ok(o) => o,
        Err(e) => return vec![Sample::failed(item, e.to_string())],
    };
    let (text, perf) = split_output(&out.stdout);
    let message =
        if text.is_empty() { exec::first_line(&out.stderr).to_string() } else { text.clone() };
    let main = match (out.code, out.signal) {
        (Some(c @ 0..=3), _) => Sample::ok(item, c as f64, message),
        (Some(c), _) => Sample {
            item: item.into(),
            value: Some(3.0),
            message,
            error: Some(format!("exit code {c} is not a Nagios state, taken as UNKNOWN")),
        },
        (None, sig) => Sample {
            item: item.into(),
            value: Some(3.0),
            message,
            error: Some(format!("killed by signal {}, taken as UNKNOWN", sig.unwrap_or(0))),
        },
    };
    let mut samples = vec![main];
    for p in parse_perfdata(&perf) {
        samples.push(match p {
            Ok(p) => {
                let item = format!("{name}.{}", p.label);
                let msg = perf_message(&p);
                match p.value {
                    Some(v) => Sample::ok(&item, v, msg),
                    None => Sample {
                        item,
                        value: None,
                        message: msg,
                        error: Some("no value (U)".into()),
                    },
                }
            }
            Err(e) => {
                let item = format!("{name}.{}", e.label.as_deref().unwrap_or("perfdata"));
                Sample::failed(&item, e.msg)
            }
        });
    }
    samples
}

fn perf_message(p: &Perf) -> String {
    let mut m = p.uom.clone();
    for (k, v) in [("warn", &p.warn), ("crit", &p.crit)] {
        if let Some(v) = v {
            if !m.is_empty() {
                m.push(' ');
            }
            m.push_str(&format!("{k}={v}"));
        }
    }
    m
}

/// Where distributions install Nagios plugins, searched (in order) for a
/// plugin named without a `/`, before PATH.
pub const PLUGIN_DIRS: &[&str] = &[
    "/usr/lib/nagios/plugins",
    "/usr/lib64/nagios/plugins",
    "/usr/lib/monitoring-plugins",
    "/usr/local/nagios/libexec",
];

/// The program to run for argv[0]: a path as given; a bare name from the
/// first of `dirs` that has it, else as given (PATH lookup).
pub fn resolve_plugin(name: &str, dirs: &[&str]) -> String {
    if name.contains('/') {
        return name.to_string();
    }
    dirs.iter()
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file())
        .map_or_else(|| name.to_string(), |p| p.to_string_lossy().into_owned())
}

/// Run the plugin and make its samples.
pub fn run(item: &str, argv: &[String], timeout: Duration) -> Vec<Sample> {
    let mut argv = argv.to_vec();
    if let Some(first) = argv.first_mut() {
        *first = resolve_plugin(first, PLUGIN_DIRS);
    }
    samples_from(item, exec::run_command(&argv, timeout, exec::DEFAULT_CAP))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<Perf> {
        parse_perfdata(text).into_iter().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn simple_entries_and_uoms() {
        let p = ok("time=0.045s;1;2;0;10 size=1024B;;;0 load1=0.52;5;10;0");
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].label, "time");
        assert_eq!(p[0].value, Some(0.045));
        assert_eq!(p[0].uom, "s");
        assert_eq!(p[0].warn.as_deref(), Some("1"));
        assert_eq!(p[0].crit.as_deref(), Some("2"));
        assert_eq!((p[0].min, p[0].max), (Some(0.0), Some(10.0)));
        assert_eq!((p[1].uom.as_str(), p[1].warn.clone(), p[1].min), ("B", None, Some(0.0)));
        assert_eq!((p[2].value, p[2].uom.as_str(), p[2].max), (Some(0.52), "", None));
        for (t, v, u) in [
            ("a=5ms", 5.0, "ms"),
            ("a=7us", 7.0, "us"),
            ("a=99%", 99.0, "%"),
            ("a=3KB", 3.0, "KB"),
            ("a=4MB", 4.0, "MB"),
            ("a=2TB", 2.0, "TB"),
            ("a=12345c", 12345.0, "c"),
            ("a=-1.5", -1.5, ""),
            ("a=1e3B", 1000.0, "B"),
            ("a=2,5s", 2.5, "s"),
        ] {
            let p = ok(t);
            assert_eq!((p[0].value, p[0].uom.as_str()), (Some(v), u), "{t}");
        }
    }

    #[test]
    fn quoted_labels() {
        let p = ok("'free space /var'=123MB;;;0;1000 'it''s'=1 'a=b'=2");
        assert_eq!(p[0].label, "free space /var");
        assert_eq!(p[0].value, Some(123.0));
        assert_eq!(p[1].label, "it's");
        assert_eq!(p[2].label, "a=b");
        assert_eq!(p[2].value, Some(2.0));
    }

    #[test]
    fn unknown_and_missing_fields() {
        let p = ok("a=U;1;2 b=;;; c=5");
        assert_eq!(p[0].value, None);
        assert_eq!(p[0].warn.as_deref(), Some("1"));
        assert_eq!(p[1].value, None);
        assert_eq!(p[1].warn, None);
        assert_eq!(p[2].value, Some(5.0));
        // Thresholds may be ranges; they are kept as text.
        assert_eq!(ok("x=1;@10:20;~:5")[0].crit.as_deref(), Some("~:5"));
    }

    #[test]
    fn malformed_entries_are_errors_not_panics() {
        let r = parse_perfdata("good=1 noequals =3 bad=abc 'open=1");
        assert_eq!(r.len(), 5);
        assert!(r[0].is_ok());
        assert_eq!(r[1].as_ref().unwrap_err().label.as_deref(), Some("noequals"));
        assert_eq!(r[2].as_ref().unwrap_err().label, None);
        assert!(r[3].as_ref().unwrap_err().msg.contains("abc"));
        assert_eq!(r[4].as_ref().unwrap_err().msg, "unterminated quote");
        assert!(parse_perfdata("   ").is_empty());
    }

    #[test]
    fn split_multiline_output() {
        let out = "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n\
            / 15272 MB (77%);\n/boot 68 MB (69%);\n/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n\
            /home=69357MB;253404;253409;0;253414\n/var/log=818MB;970;975;0;980\n";
        let (text, perf) = split_output(out);
        assert_eq!(text, "DISK OK - free space: / 3326 MB (56%);");
        let labels: Vec<String> = ok(&perf).into_iter().map(|p| p.label).collect();
        assert_eq!(labels, ["/", "/boot", "/home", "/var/log"]);
        assert_eq!(split_output("OK\n"), ("OK".into(), "".into()));
        assert_eq!(split_output(""), ("".into(), "".into()));
    }

    fn output(code: Option<i32>, stdout: &str) -> exec::Output {
        exec::Output {
            code,
            signal: if code.is_none() { Some(9) } else { None },
            stdout: stdout.into(),
            stderr: "".into(),
            truncated: false,
            elapsed: Duration::from_millis(5),
        }
    }

    #[test]
    fn samples_from_a_run() {
        let s = samples_from(
            "nagios:check_load",
            Ok(output(Some(1), "LOAD WARNING - load average: 5.1|load1=5.1;5;10;0 load5=U\n")),
        );
        assert_eq!(s[0].item, "nagios:check_load");
        assert_eq!(s[0].value, Some(1.0));
        assert_eq!(s[0].message, "LOAD WARNING - load average: 5.1");
        assert_eq!(s[0].error, None);
        assert_eq!(s[1].item, "check_load.load1");
        assert_eq!(s[1].value, Some(5.1));
        assert_eq!(s[1].message, "warn=5 crit=10");
        assert_eq!((s[2].item.as_str(), s[2].value), ("check_load.load5", None));
        assert!(s[2].error.is_some());
    }

    #[test]
    fn plugin_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        std::fs::write(dir.path().join("check_x"), "").unwrap();
        assert_eq!(resolve_plugin("check_x", &["/nonexistent", d]), format!("{d}/check_x"));
        assert_eq!(resolve_plugin("check_y", &[d]), "check_y");
        assert_eq!(resolve_plugin("./check_x", &[d]), "./check_x");
    }

    #[test]
    fn odd_exits_are_unknown_with_an_error() {
        let s = samples_from("nagios:x", Ok(output(Some(127), "sh: not found")));
        assert_eq!(s[0].value, Some(3.0));
        assert!(s[0].error.as_deref().unwrap().contains("127"));
        let s = samples_from("nagios:x", Ok(output(None, "")));
        assert_eq!(s[0].value, Some(3.0));
        assert!(s[0].error.as_deref().unwrap().contains("signal 9"));
        let s =
            samples_from("nagios:x", Err(ExecError::TimedOut { after: Duration::from_secs(30) }));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].value, None);
        assert_eq!(s[0].error.as_deref(), Some("timed out after 30s"));
    }
}
