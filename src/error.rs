//! The crate's error type: each variant names what failed and where, so a
//! message reaching the user is enough to fix the problem. The exit code is
//! decided once, in `cli::main`, from the variant.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// An operating-system call failed; `op` says which and on what.
    Io {
        op: String,
        source: std::io::Error,
    },
    /// A conf or work line is wrong.
    Conf {
        file: PathBuf,
        line: usize,
        msg: String,
    },
    /// Several conf/work errors at once (every one is reported).
    ConfMany(Vec<Error>),
    /// Bad command-line usage or a bad value given on it.
    Usage(String),
    Db {
        op: String,
        source: rusqlite::Error,
    },
    /// Anything else that went wrong at run time.
    Runtime(String),
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(op: impl Into<String>, source: std::io::Error) -> Error {
        Error::Io { op: op.into(), source }
    }
    pub fn conf(file: impl Into<PathBuf>, line: usize, msg: impl Into<String>) -> Error {
        Error::Conf { file: file.into(), line, msg: msg.into() }
    }
    pub fn db(op: impl Into<String>, source: rusqlite::Error) -> Error {
        Error::Db { op: op.into(), source }
    }
    /// 2 for bad usage or configuration, 1 for run-time failures.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Conf { .. } | Error::ConfMany(_) | Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, source } => write!(f, "{op}: {source}"),
            Error::Conf { file, line, msg } => write!(f, "{}:{line}: {msg}", file.display()),
            Error::ConfMany(errs) => {
                for (i, e) in errs.iter().enumerate() {
                    if i > 0 {
                        writeln!(f)?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Error::Usage(msg) => write!(f, "{msg}"),
            Error::Db { op, source } => write!(f, "database: {op}: {source}"),
            Error::Runtime(msg) => write!(f, "{msg}"),
        }
    }
}

impl std::error::Error for Error {}

/// Flattens and sorts conf errors by line: None when there are none, the
/// error itself when one, `ConfMany` otherwise.
pub fn many(errs: Vec<Error>) -> Option<Error> {
    let mut flat = Vec::new();
    for e in errs {
        match e {
            Error::ConfMany(v) => flat.extend(v),
            e => flat.push(e),
        }
    }
    // Stable: errors of one line keep the order they were found in.
    flat.sort_by_key(|e| if let Error::Conf { line, .. } = e { *line } else { 0 });
    match flat.len() {
        0 => None,
        1 => flat.pop(),
        _ => Some(Error::ConfMany(flat)),
    }
}
