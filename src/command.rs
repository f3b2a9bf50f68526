//! The command-port line protocol: parse one request line, frame answers.
//! Pure: bytes in, `Request` or a typed error out.

/// Longest request line for ordinary verbs.
pub const MAX_LINE: usize = 4096;
/// Longest request line for verbs that carry a JSON payload (REPORT, EVENTS).
pub const MAX_PAYLOAD_LINE: usize = 4 * 1024 * 1024;

/// One parsed request: the verb upper-cased, the rest split on whitespace,
/// and the raw remainder after the verb (JSON payloads keep their spaces).
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub verb: String,
    pub args: Vec<String>,
    pub rest: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ParseError {
    Empty,
    NotUtf8,
    TooLong { limit: usize },
    BadVerb,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Empty => write!(f, "empty command"),
            ParseError::NotUtf8 => write!(f, "command is not UTF-8"),
            ParseError::TooLong { limit } => write!(f, "too long (limit {limit} bytes)"),
            ParseError::BadVerb => write!(f, "bad verb"),
        }
    }
}

/// Verbs whose line may be up to `MAX_PAYLOAD_LINE`.
pub fn is_payload_verb(verb: &[u8]) -> bool {
    verb.eq_ignore_ascii_case(b"REPORT") || verb.eq_ignore_ascii_case(b"EVENTS")
}

/// Parses one request line (without or with its trailing newline).
pub fn parse_line(line: &[u8]) -> Result<Request, ParseError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| ParseError::NotUtf8)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let (verb, rest) = match text.find(char::is_whitespace) {
        Some(i) => (&text[..i], text[i..].trim_start()),
        None => (text, ""),
    };
    let limit = if is_payload_verb(verb.as_bytes()) { MAX_PAYLOAD_LINE } else { MAX_LINE };
    if line.len() > limit {
        return Err(ParseError::TooLong { limit });
    }
    if !verb.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') || verb.len() > 32 {
        return Err(ParseError::BadVerb);
    }
    Ok(Request {
        verb: verb.to_ascii_uppercase(),
        args: rest.split_whitespace().map(String::from).collect(),
        rest: rest.to_string(),
    })
}

/// Frames an answer: `COMMAND VERB`, the body lines, `COMMAND DONE`.
pub fn frame_ok(verb: &str, body: &str) -> String {
    let mut s = String::with_capacity(body.len() + verb.len() + 24);
    s.push_str("COMMAND ");
    s.push_str(verb);
    s.push('\n');
    if !body.is_empty() {
        s.push_str(body);
        if !body.ends_with('\n') {
            s.push('\n');
        }
    }
    s.push_str("COMMAND DONE\n");
    s
}

/// Frames an error: `COMMAND VERB`, then `COMMAND ERROR reason`.
pub fn frame_err(verb: &str, reason: &str) -> String {
    format!("COMMAND {verb}\nCOMMAND ERROR {reason}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_verbs_case_insensitively() {
        let r = parse_line(b"hist d 100 www1\r\n").unwrap();
        assert_eq!(r.verb, "HIST");
        assert_eq!(r.args, vec!["d", "100", "www1"]);
        assert_eq!(r.rest, "d 100 www1");
    }

    #[test]
    fn payload_keeps_spaces() {
        let r = parse_line(b"EVENTS {\"a\": [1, 2]}\n").unwrap();
        assert_eq!(r.rest, "{\"a\": [1, 2]}");
    }

    #[test]
    fn limits_and_errors() {
        assert_eq!(parse_line(b"\n"), Err(ParseError::Empty));
        assert_eq!(parse_line(b"PI\xffNG"), Err(ParseError::NotUtf8));
        assert_eq!(parse_line(b"P!NG"), Err(ParseError::BadVerb));
        let long = format!("PING {}", "x".repeat(MAX_LINE));
        assert_eq!(parse_line(long.as_bytes()), Err(ParseError::TooLong { limit: MAX_LINE }));
        let report = format!("REPORT {}", "x".repeat(MAX_LINE));
        assert!(parse_line(report.as_bytes()).is_ok());
    }

    #[test]
    fn framing() {
        assert_eq!(frame_ok("PING", "PONG x"), "COMMAND PING\nPONG x\nCOMMAND DONE\n");
        assert_eq!(
            frame_err("FOO", "unknown command FOO"),
            "COMMAND FOO\nCOMMAND ERROR unknown command FOO\n"
        );
    }
}

/// Splits a framed answer into its body, or the `COMMAND ERROR` reason.
pub fn parse_answer(text: &str) -> Result<String, String> {
    let mut lines: Vec<&str> = text.lines().collect();
    while lines.last().is_some_and(|l| l.trim().is_empty()) {
        lines.pop();
    }
    if lines.first().is_none_or(|l| !l.starts_with("COMMAND ")) {
        return Err("no answer frame".into());
    }
    match lines.last() {
        Some(l) if *l == "COMMAND DONE" && lines.len() >= 2 => {
            Ok(lines[1..lines.len() - 1].join("\n"))
        }
        Some(l) if l.starts_with("COMMAND ERROR") && lines.len() >= 2 => {
            Err(l.trim_start_matches("COMMAND ERROR").trim().to_string())
        }
        _ => Err("answer cut short".into()),
    }
}

#[cfg(test)]
mod answer_tests {
    use super::*;

    #[test]
    fn answers_round_trip() {
        assert_eq!(parse_answer(&frame_ok("PING", "PONG a\nb")), Ok("PONG a\nb".into()));
        assert_eq!(parse_answer(&frame_ok("ZAP", "")), Ok(String::new()));
        assert_eq!(parse_answer(&frame_err("X", "busy")), Err("busy".into()));
        assert_eq!(parse_answer("COMMAND PING\nPONG"), Err("answer cut short".into()));
        assert_eq!(parse_answer("garbage"), Err("no answer frame".into()));
    }
}

/// Boundaries and texts the tests above leave open (found by `make mutants`).
#[cfg(test)]
mod limit_tests {
    use super::*;

    #[test]
    fn line_limits_are_inclusive() {
        let at = format!("PING {}", "x".repeat(MAX_LINE - 5));
        assert_eq!(at.len(), MAX_LINE);
        assert!(parse_line(at.as_bytes()).is_ok());
        assert_eq!(
            parse_line(format!("{at}x").as_bytes()),
            Err(ParseError::TooLong { limit: MAX_LINE })
        );
        assert_eq!(MAX_PAYLOAD_LINE, 4 << 20);
        let at = format!("EVENTS {}", "x".repeat(MAX_PAYLOAD_LINE - 7));
        assert!(parse_line(at.as_bytes()).is_ok());
        assert_eq!(
            parse_line(format!("{at}x").as_bytes()),
            Err(ParseError::TooLong { limit: MAX_PAYLOAD_LINE })
        );
    }

    #[test]
    fn verbs_up_to_32_of_letters_digits_underscore() {
        assert_eq!(parse_line("A_1".as_bytes()).unwrap().verb, "A_1");
        assert!(parse_line("V".repeat(32).as_bytes()).is_ok());
        assert_eq!(parse_line("V".repeat(33).as_bytes()), Err(ParseError::BadVerb));
        assert_eq!(parse_line(b"A-B"), Err(ParseError::BadVerb));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(ParseError::Empty.to_string(), "empty command");
        assert_eq!(ParseError::NotUtf8.to_string(), "command is not UTF-8");
        assert_eq!(ParseError::TooLong { limit: 9 }.to_string(), "too long (limit 9 bytes)");
        assert_eq!(ParseError::BadVerb.to_string(), "bad verb");
    }

    #[test]
    fn framing_adds_a_newline_only_when_missing() {
        assert_eq!(frame_ok("ZAP", ""), "COMMAND ZAP\nCOMMAND DONE\n");
        assert_eq!(frame_ok("X", "a\n"), "COMMAND X\na\nCOMMAND DONE\n");
        assert_eq!(parse_answer("COMMAND ERROR x"), Err("answer cut short".into()));
        assert_eq!(parse_answer("COMMAND DONE"), Err("answer cut short".into()));
    }
}
