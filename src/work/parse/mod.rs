//! The work-config language, first pass: text -> `Ast`, one statement per
//! entry, each with the line it came from. Only the shape of each line is
//! checked here (arity, numbers, intervals, conditions); names are checked
//! against each other in `validate.rs`. Pure: never touches the filesystem.
//!
//! Every line error is collected; `parse` fails with all of them at once.
//! The notification lines' words (`channel`, a `user`'s channels, URLs)
//! are read in `channels.rs`.

mod channels;

use crate::conf::split_entries;
use crate::error::{Error, Result};
use crate::ranges::{parse_ival, IVAL_KEYS};
use crate::work::logins::{self, LoginDecl};
use crate::work::model::{NagiosMap, Op, Rule};
use channels::{channel, user_channels};
pub use channels::{check_url, CHANNEL_OPTIONS};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Builtin item names that take no argument.
pub const BUILTIN_PLAIN: &[&str] =
    &["cpu_load", "cpu_pct", "mem_used", "swap_used", "uptime", "procs"];
/// Builtin item names that need `:ARG`.
pub const BUILTIN_ARG: &[&str] =
    &["disk_used", "disk_avail", "inode_used", "proc", "net_rx", "net_tx", "tcp", "http", "ping"];
/// Channel types a `channel` line or an inline user channel may name:
/// the notification engine's own list.
pub const CHANNEL_TYPES: &[&str] = &crate::notify::channels::KINDS;

#[derive(Debug, Clone, PartialEq)]
pub struct HostDecl {
    pub line: usize,
    pub fqdn: String,
    pub tag: String,
    pub address: Option<String>,
}

/// A named list: `group NAME MEMBER...`, `ugroup NAME USER...`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListDecl {
    pub line: usize,
    pub name: String,
    pub members: Vec<String>,
}

/// `get HOSTS ITEM...`
#[derive(Debug, Clone, PartialEq)]
pub struct GetDecl {
    pub line: usize,
    pub hosts: Vec<String>,
    pub items: Vec<String>,
}

/// `nagios HOSTS NAME COMMAND ARGS...` and `probe HOSTS NAME [ARGS...]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtDecl {
    pub line: usize,
    pub hosts: Vec<String>,
    pub name: String,
    pub argv: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FitDecl {
    pub line: usize,
    /// Hosts or groups before the `:` of `fit web:cpu_load`; empty = every host.
    pub scope: Vec<String>,
    pub item: String,
    pub rules: Vec<Rule>,
    pub count: u32,
    pub hyst: f64,
    pub nagios: bool,
}

impl FitDecl {
    /// The item as the line wrote it, scope included (`web:cpu_load`), for
    /// error texts.
    pub fn written(&self) -> String {
        if self.scope.is_empty() {
            self.item.clone()
        } else {
            format!("{}:{}", self.scope.join(","), self.item)
        }
    }
}

/// A user's channel: a declared channel's name or an inline `TYPE TARGET`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChanRef {
    Named(String),
    Inline { kind: String, target: String },
}

#[derive(Debug, Clone, PartialEq)]
pub struct UserDecl {
    pub line: usize,
    pub name: String,
    pub channels: Vec<ChanRef>,
    /// `password HASH`, `admin`, `groups=`, `owns=` (see `logins.rs`).
    pub login: LoginDecl,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChannelDecl {
    pub line: usize,
    pub name: String,
    pub kind: String,
    pub target: String,
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertDecl {
    pub line: usize,
    pub hosts: Vec<String>,
    pub item: String,
    pub level: String,
    pub who: Vec<String>,
}

/// A parsed work-config: statements in file order, with their lines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Ast {
    pub file: PathBuf,
    /// `fit_level NAME [LONG]`: (line, name, long).
    pub levels: Vec<(usize, String, Option<String>)>,
    pub hosts: Vec<HostDecl>,
    pub groups: Vec<ListDecl>,
    /// (line, host tag or fqdn)
    pub server: Vec<(usize, String)>,
    pub pmaker: Vec<(usize, String)>,
    /// `port`, `hb_port`, `http_port`: key -> (line, value).
    pub ports: BTreeMap<String, (usize, u16)>,
    /// `ival_*`, `grace` in seconds; `missed` as a count.
    pub intervals: BTreeMap<String, f64>,
    pub phi_threshold: Option<f64>,
    /// `detector fixed`: the plain timeout rule instead of the default
    /// (`detector tuned`, see `server/detector/mod.rs`).
    pub detector_fixed: bool,
    pub gets: Vec<GetDecl>,
    pub nagios: Vec<ExtDecl>,
    pub probes: Vec<ExtDecl>,
    /// `timeout ITEM IVAL`: (line, item, seconds).
    pub timeouts: Vec<(usize, String, f64)>,
    pub fits: Vec<FitDecl>,
    pub nagios_map: Option<(usize, NagiosMap)>,
    /// (line, child, parent)
    pub parents: Vec<(usize, String, String)>,
    pub users: Vec<UserDecl>,
    pub ugroups: Vec<ListDecl>,
    pub channels: Vec<ChannelDecl>,
    pub alerts: Vec<AlertDecl>,
    /// `flap N IVAL`
    pub flap: Option<(u32, f64)>,
    /// `storm N IVAL`
    pub storm: Option<(u32, f64)>,
    pub deadman: Option<(usize, String)>,
    pub dashboard: Option<(usize, String)>,
    /// `upgrade_bin PATH`: the binary UPGRADE offers (absolute).
    pub upgrade_bin: Option<(usize, PathBuf)>,
    pub title: Option<String>,
    /// `login everywhere|changes`: (line, every page needs a login).
    pub login: Option<(usize, bool)>,
    /// `cookies secure|plain`: (line, Secure cookies).
    pub cookies: Option<(usize, bool)>,
}

type Msg = std::result::Result<(), String>;

/// Parses a work-config's text. `file` is only used in error messages.
pub fn parse(file: &Path, text: &str) -> Result<Ast> {
    let p = parse_partial(file, text)?;
    match crate::error::many(p.errors) {
        None => Ok(p.ast),
        Some(e) => Err(e),
    }
}

/// What `parse_partial` gives: the statements that parsed, the line errors,
/// and whether a line that defines names failed (then checking names
/// against each other would only report follow-on errors).
#[derive(Debug)]
pub struct Partial {
    pub ast: Ast,
    pub errors: Vec<Error>,
    pub definition_failed: bool,
}

/// Keys whose lines define names other lines refer to.
const DEFINING: &[&str] =
    &["fit_level", "host", "group", "ugroup", "user", "channel", "nagios", "probe", "server"];

/// Parses what it can: every line error is collected, the rest is kept.
pub fn parse_partial(file: &Path, text: &str) -> Result<Partial> {
    let mut ast = Ast { file: file.to_path_buf(), ..Ast::default() };
    let (mut errors, mut definition_failed) = (Vec::new(), false);
    for e in split_entries(file, text)? {
        let words: Vec<&str> = e.value.split_whitespace().collect();
        if let Err(msg) = statement(&mut ast, &e.key, &e.value, &words, e.line) {
            errors.push(Error::conf(file, e.line, msg));
            definition_failed |= DEFINING.contains(&e.key.as_str());
        }
    }
    Ok(Partial { ast, errors, definition_failed })
}

/// Splits a HOSTS word: `web,db` -> [web, db].
fn host_list(w: &str) -> Vec<String> {
    w.split(',').filter(|s| !s.is_empty()).map(String::from).collect()
}

/// An interval, checked against the key's documented range.
fn ival(key: &str, w: &str) -> std::result::Result<f64, String> {
    let s = parse_ival(w).map_err(|m| format!("{key}: {m}"))?;
    crate::ranges::check_ival(key, s)
}

fn arity(key: &str, words: &[&str], min: usize, max: usize, usage: &str) -> Msg {
    if words.len() < min || words.len() > max {
        return Err(format!("{key}: expected '{key} {usage}'"));
    }
    Ok(())
}

fn statement(ast: &mut Ast, key: &str, value: &str, w: &[&str], line: usize) -> Msg {
    const MANY: usize = usize::MAX;
    match key {
        "fit_level" => {
            arity(key, w, 1, 2, "NAME [LONG]")?;
            // These words are options of a `fit` line, so no level may take them.
            if ["count", "hyst", "nagios"].contains(&w[0]) {
                return Err(format!("fit_level: '{}' is reserved (a fit option)", w[0]));
            }
            ast.levels.push((line, w[0].into(), w.get(1).map(|s| s.to_string())));
        }
        "host" => {
            arity(key, w, 2, 3, "FQDN TAG [ADDRESS]")?;
            let address = w.get(2).map(|s| s.to_string());
            ast.hosts.push(HostDecl { line, fqdn: w[0].into(), tag: w[1].into(), address });
        }
        "group" | "ugroup" => {
            arity(key, w, 2, MANY, "NAME MEMBER...")?;
            let members = w[1..].iter().flat_map(|m| host_list(m)).collect();
            let d = ListDecl { line, name: w[0].into(), members };
            if key == "group" {
                ast.groups.push(d)
            } else {
                ast.ugroups.push(d)
            }
        }
        "server" | "pmaker" => {
            arity(key, w, 1, 1, "HOST")?;
            let v = if key == "server" { &mut ast.server } else { &mut ast.pmaker };
            v.push((line, w[0].into()));
        }
        "port" | "hb_port" | "http_port" => {
            arity(key, w, 1, 1, "N")?;
            let p = w[0]
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("{key}: '{}' is not a port (1 to 65535)", w[0]))?;
            ast.ports.insert(key.into(), (line, p));
        }
        "missed" | "hbd_senders" => {
            arity(key, w, 1, 1, "N")?;
            ast.intervals.insert(key.into(), crate::ranges::check_count(key, w[0])? as f64);
        }
        k if IVAL_KEYS.contains(&k) => {
            arity(key, w, 1, 1, "IVAL")?;
            ast.intervals.insert(key.into(), ival(key, w[0])?);
        }
        "detector" => match w {
            ["fixed"] => {
                ast.detector_fixed = true;
                ast.phi_threshold = None;
            }
            ["tuned"] => {
                ast.detector_fixed = false;
                ast.phi_threshold = None;
            }
            ["phi", t] => {
                // phi is capped at 300 (the normal tail underflows near 1e-300,
                // see server::detector::phi): a higher threshold would never fire.
                let t = t.parse::<f64>().ok().filter(|t| *t > 0.0 && *t <= 300.0);
                ast.phi_threshold =
                    Some(t.ok_or_else(|| format!("detector: '{}' is not a threshold", w[1]))?);
                ast.detector_fixed = false;
            }
            _ => return Err("detector: expected 'detector tuned|fixed|phi THRESHOLD'".into()),
        },
        "get" => {
            arity(key, w, 2, MANY, "HOSTS ITEM...")?;
            let items = w[1..].iter().map(|s| s.to_string()).collect();
            ast.gets.push(GetDecl { line, hosts: host_list(w[0]), items });
        }
        "nagios" | "probe" => {
            let min = if key == "nagios" { 3 } else { 2 };
            let usage =
                if key == "nagios" { "HOSTS NAME COMMAND ARGS..." } else { "HOSTS NAME [ARGS...]" };
            arity(key, w, min, MANY, usage)?;
            if w[1].contains(':') || w[1].contains('/') {
                return Err(format!("{key}: name '{}' may not contain ':' or '/'", w[1]));
            }
            let argv = w[2..].iter().map(|s| s.to_string()).collect();
            let d = ExtDecl { line, hosts: host_list(w[0]), name: w[1].into(), argv };
            if key == "nagios" {
                ast.nagios.push(d)
            } else {
                ast.probes.push(d)
            }
        }
        "timeout" => {
            arity(key, w, 2, 2, "ITEM IVAL")?;
            ast.timeouts.push((line, w[0].into(), ival(key, w[1])?));
        }
        "fit" => ast.fits.push(fit(w, line).map_err(|e| fit_error(w, e))?),
        "nagios_map" => {
            arity(key, w, 4, 4, "OK WARNING CRITICAL UNKNOWN")?;
            let m = NagiosMap {
                ok: w[0].into(),
                warning: w[1].into(),
                critical: w[2].into(),
                unknown: w[3].into(),
            };
            ast.nagios_map = Some((line, m));
        }
        "parent" => {
            arity(key, w, 2, 2, "CHILD PARENT")?;
            ast.parents.push((line, w[0].into(), w[1].into()));
        }
        "user" => {
            let usage = "NAME [CHANNEL...] [password HASH] [admin] [groups=G,...] [owns=H,...]";
            arity(key, w, 2, MANY, usage)?;
            let (chans, login) = logins::split(w[0], &w[1..])?;
            let channels = user_channels(&chans)?;
            ast.users.push(UserDecl { line, name: w[0].into(), channels, login });
        }
        "login" => ast.login = Some((line, logins::login_key(w)?)),
        "cookies" => ast.cookies = Some((line, logins::cookies_key(w)?)),
        "channel" => ast.channels.push(channel(w, line)?),
        "alert" => {
            arity(key, w, 4, MANY, "HOSTS ITEM_GLOB LEVEL WHO...")?;
            let who = w[3..].iter().flat_map(|s| host_list(s)).collect();
            let (item, level) = (w[1].into(), w[2].into());
            ast.alerts.push(AlertDecl { line, hosts: host_list(w[0]), item, level, who });
        }
        "flap" | "storm" => {
            arity(key, w, 2, 2, "N IVAL")?;
            let n = crate::ranges::check_count(key, w[0])? as u32;
            let v = Some((n, ival(key, w[1])?));
            if key == "flap" {
                ast.flap = v
            } else {
                ast.storm = v
            }
        }
        "deadman" | "dashboard" => {
            arity(key, w, 1, 1, "URL")?;
            check_url(key, w[0])?;
            let v = Some((line, w[0].to_string()));
            if key == "deadman" {
                ast.deadman = v
            } else {
                ast.dashboard = v
            }
        }
        "upgrade_bin" => {
            arity(key, w, 1, 1, "PATH")?;
            if !w[0].starts_with('/') {
                return Err(format!("upgrade_bin: '{}' is not an absolute path", w[0]));
            }
            ast.upgrade_bin = Some((line, PathBuf::from(w[0])));
        }
        "title" => {
            if value.is_empty() {
                return Err("title: expected 'title TEXT'".into());
            }
            ast.title = Some(value.into());
        }
        k => return Err(format!("unknown key '{k}'")),
    }
    Ok(())
}

/// Is `name` (before any `:`) an item family builtin or defined by lines?
fn is_item_family(name: &str) -> bool {
    BUILTIN_PLAIN.contains(&name)
        || BUILTIN_ARG.contains(&name)
        || name == "nagios"
        || name == "probe"
}

/// `fit [HOSTS:]ITEM LEVEL OP VALUE ... [count N] [hyst P%] [nagios]`.
/// The scope is told from an item argument by the word before the first
/// `:`: an item family (`disk_used:/var`) is an item, anything else a scope.
fn fit(w: &[&str], line: usize) -> std::result::Result<FitDecl, String> {
    if w.len() < 2 {
        return Err(
            "fit: expected 'fit [HOSTS:]ITEM LEVEL OPVALUE ... [count N] [hyst P%] [nagios]'"
                .into(),
        );
    }
    let (scope, item) = match w[0].split_once(':') {
        Some((s, rest)) if !is_item_family(s) && !rest.is_empty() => (host_list(s), rest.into()),
        _ => (Vec::new(), w[0].to_string()),
    };
    let mut f =
        FitDecl { line, scope, item, rules: Vec::new(), count: 1, hyst: 0.0, nagios: false };
    let mut i = 1;
    while i < w.len() {
        match w[i] {
            "nagios" => f.nagios = true,
            "count" => {
                let n = w.get(i + 1).ok_or("fit: 'count' needs a number")?;
                f.count = crate::ranges::check_count("count", n)? as u32;
                i += 1;
            }
            "hyst" => {
                let p = w.get(i + 1).ok_or("fit: 'hyst' needs a percentage like 5%")?;
                let n = p.strip_suffix('%').unwrap_or(p);
                f.hyst = n
                    .parse::<f64>()
                    .ok()
                    .filter(|h| (0.0..100.0).contains(h))
                    .ok_or_else(|| format!("fit: hyst '{p}' is not a percentage like 5%"))?;
                i += 1;
            }
            level => {
                let cond =
                    w.get(i + 1).ok_or_else(|| format!("fit: level '{level}' has no condition"))?;
                // `soso >2` and `soso > 2` are both accepted.
                let (text, used) = match (Op::parse_prefix(cond), w.get(i + 2)) {
                    (Some((_, "")), Some(v)) => (format!("{cond}{v}"), 2),
                    _ => (cond.to_string(), 1),
                };
                let (op, value) = condition(&text)?;
                f.rules.push(Rule { level: level.into(), op, value });
                i += used;
            }
        }
        i += 1;
    }
    if f.rules.is_empty() && !f.nagios {
        return Err(format!("fit {}: needs at least one 'LEVEL OPVALUE' or 'nagios'", w[0]));
    }
    Ok(f)
}

/// A fit line's error names the item as written, scope and all
/// (`fit web:cpu_load: ...`), so the line is found at once.
fn fit_error(w: &[&str], e: String) -> String {
    let Some(written) = w.first().filter(|_| w.len() >= 2) else { return e };
    if e.starts_with(&format!("fit {written}:")) {
        return e;
    }
    format!("fit {written}: {}", e.strip_prefix("fit: ").unwrap_or(&e))
}

/// `>2`, `>=2.5`, `==0`, `!=-1`.
pub fn condition(text: &str) -> std::result::Result<(Op, f64), String> {
    let (op, rest) = Op::parse_prefix(text)
        .ok_or_else(|| format!("condition '{text}': expected > >= < <= == or !="))?;
    let v = rest
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("condition '{text}': '{rest}' is not a number"))?;
    Ok((op, v))
}

impl Op {
    /// Splits a leading operator off `text`.
    pub fn parse_prefix(text: &str) -> Option<(Op, &str)> {
        const OPS: &[(&str, Op)] = &[
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
        ];
        OPS.iter().find_map(|(s, op)| text.strip_prefix(s).map(|r| (*op, r)))
    }
}

#[cfg(test)]
mod tests;
