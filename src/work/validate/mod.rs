//! The work-config language, second pass: names checked against each other
//! (hosts, groups, levels, users, channels, items) and the cross-references
//! resolved into an `Index` that `resolve.rs` turns into per-host works.
//! Every problem is collected with its line; one problem rejects the whole
//! work. Pure except for one injected question: does a sendmail exist?

use crate::error::{Error, Result};
use crate::work::check::{Ck, ALL};
use crate::work::model::{Channel, Level, NagiosMap, ProbeSpec, User, WebUser};
use crate::work::parse::{check_url, Ast, ExtDecl, FitDecl, BUILTIN_ARG, BUILTIN_PLAIN};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

/// Levels when the work declares none, best first.
pub const DEFAULT_LEVELS: &[&str] = &["fine", "soso", "sick", "crit", "dead"];

/// A fit line's scope, expanded: which hosts it names directly, which
/// through groups (host-scoped beats group-scoped).
#[derive(Debug, Default)]
pub struct FitScope {
    pub direct: HashSet<usize>,
    pub via_group: HashSet<usize>,
}

/// Everything the work says, cross-checked and indexed by host number
/// (hosts are numbered in file order).
#[derive(Debug)]
pub struct Index {
    pub by_name: HashMap<String, usize>,
    /// Group -> its hosts, transitively, sorted; includes `all`.
    pub groups: BTreeMap<String, Vec<usize>>,
    /// Host -> its groups (transitively), sorted; includes `all`.
    pub host_groups: Vec<Vec<String>>,
    pub levels: Vec<Level>,
    pub nagios_map: NagiosMap,
    pub server: usize,
    pub pmaker: Option<usize>,
    /// child -> parent
    pub parents: BTreeMap<usize, usize>,
    /// Host -> item -> probe to run.
    pub items: Vec<BTreeMap<String, ProbeSpec>>,
    /// Per `ast.fits` entry.
    pub fit_scopes: Vec<FitScope>,
    pub users: Vec<User>,
    pub ugroups: BTreeMap<String, Vec<String>>,
    pub channels: Vec<Channel>,
    /// Per `ast.alerts` entry: (host numbers, user names), both sorted.
    pub alerts: Vec<(Vec<usize>, Vec<String>)>,
    /// Dashboard logins (users with a password), sorted by name.
    pub web_users: Vec<WebUser>,
}

/// Checks `ast`; `sendmail_exists` answers for the sendmail of each mail
/// channel a user actually uses.
pub fn check(ast: &Ast, sendmail_exists: &dyn Fn(&Path) -> bool) -> Result<Index> {
    let mut ck = Ck { ast, errs: Vec::new(), by_name: HashMap::new(), groups: BTreeMap::new() };
    hosts(&mut ck);
    groups(&mut ck);
    let levels = levels(&mut ck);
    let level_ok: HashSet<String> = levels.iter().map(|l| l.name.clone()).collect();
    let nagios_map = nagios_map(&mut ck, &levels, &level_ok);
    let server = role(&mut ck, "server", &ast.server, true);
    let pmaker = role(&mut ck, "pmaker", &ast.pmaker, false);
    let parents = parents(&mut ck);
    let items = items(&mut ck);
    let fit_scopes = fits(&mut ck, &items, &level_ok);
    timeouts(&mut ck, &items);
    let (users, ugroups, channels) =
        crate::work::people::people(&mut ck, &level_ok, sendmail_exists);
    let alerts = crate::work::people::alerts(&mut ck, &level_ok, &users, &ugroups);
    let web_users = crate::work::people::web_users(&mut ck);

    if !ck.errs.is_empty() {
        let errs = ck.errs.into_iter().map(|(l, m)| Error::conf(&ast.file, l, m)).collect();
        return Err(crate::error::many(errs).unwrap_or_else(|| Error::Runtime("no error".into())));
    }
    let mut host_groups = vec![Vec::new(); ast.hosts.len()];
    for (g, hs) in &ck.groups {
        for &h in hs {
            host_groups[h].push(g.clone());
        }
    }
    Ok(Index {
        by_name: ck.by_name,
        groups: ck.groups,
        host_groups,
        levels,
        nagios_map,
        server: server.unwrap_or(0),
        pmaker,
        parents,
        items,
        fit_scopes,
        users,
        ugroups,
        channels,
        alerts,
        web_users,
    })
}

fn hosts(ck: &mut Ck) {
    let mut first: HashMap<&str, usize> = HashMap::new();
    for (i, h) in ck.ast.hosts.iter().enumerate() {
        for name in [&h.fqdn, &h.tag] {
            if let Some(l) = first.get(name.as_str()) {
                if !(name == &h.tag && h.tag == h.fqdn) {
                    ck.errs.push((h.line, format!("host: '{name}' already defined at line {l}")));
                }
                continue;
            }
            if name == ALL {
                ck.errs.push((h.line, format!("host: '{ALL}' is reserved for the built-in group")));
            }
            first.insert(name, h.line);
            ck.by_name.insert(name.clone(), i);
        }
    }
}

/// Expands groups transitively; reports unknown members and cycles.
fn groups(ck: &mut Ck) {
    let ast = ck.ast;
    let mut decl: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, g) in ast.groups.iter().enumerate() {
        if g.name == ALL {
            ck.err(g.line, format!("group: '{ALL}' is built in and cannot be redefined"));
        } else if ck.by_name.contains_key(&g.name) {
            ck.err(g.line, format!("group '{}': a host has that name", g.name));
        } else if let Some(&j) = decl.get(g.name.as_str()) {
            let l = ast.groups[j].line;
            ck.err(g.line, format!("group '{}' already defined at line {l}", g.name));
        } else {
            decl.insert(&g.name, i);
        }
    }
    // 0 = not yet, 1 = being expanded (seeing it again is a cycle), 2 = done.
    let mut state: HashMap<&str, u8> = HashMap::new();
    let mut done: HashMap<&str, Vec<usize>> = HashMap::new();
    let names: Vec<&str> = decl.keys().copied().collect();
    for name in names {
        let mut path = Vec::new();
        expand(ck, &decl, name, &mut state, &mut done, &mut path);
    }
    for (name, hs) in done {
        ck.groups.insert(name.to_string(), hs);
    }
    ck.groups.insert(ALL.into(), (0..ast.hosts.len()).collect());
}

fn expand<'a>(
    ck: &mut Ck<'a>,
    decl: &BTreeMap<&'a str, usize>,
    name: &'a str,
    state: &mut HashMap<&'a str, u8>,
    done: &mut HashMap<&'a str, Vec<usize>>,
    path: &mut Vec<&'a str>,
) {
    let ast = ck.ast;
    let g = &ast.groups[decl[name]];
    state.insert(name, 1);
    path.push(name);
    let mut set = BTreeSet::new();
    for m in &g.members {
        if let Some(&h) = ck.by_name.get(m) {
            set.insert(h);
        } else if m == ALL {
            set.extend(0..ast.hosts.len());
        } else if decl.contains_key(m.as_str()) {
            let m: &'a str = ast.groups[decl[m.as_str()]].name.as_str();
            match state.get(m).copied().unwrap_or(0) {
                0 => expand(ck, decl, m, state, done, path),
                1 => {
                    let at = path.iter().position(|p| *p == m).unwrap_or(0);
                    let cycle = path[at..].join(" -> ");
                    ck.err(g.line, format!("group '{name}': cycle {cycle} -> {m}"));
                    continue;
                }
                _ => {}
            }
            set.extend(done.get(m).into_iter().flatten().copied());
        } else {
            ck.err(g.line, format!("group '{name}': unknown host or group '{m}'"));
        }
    }
    path.pop();
    state.insert(name, 2);
    done.insert(name, set.into_iter().collect());
}

fn levels(ck: &mut Ck) -> Vec<Level> {
    if ck.ast.levels.is_empty() {
        return DEFAULT_LEVELS
            .iter()
            .map(|n| Level { name: n.to_string(), long: n.to_string() })
            .collect();
    }
    let mut out: Vec<Level> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (line, name, long) in &ck.ast.levels {
        if let Some(l) = seen.get(name.as_str()) {
            ck.errs.push((*line, format!("fit_level '{name}' already declared at line {l}")));
            continue;
        }
        seen.insert(name, *line);
        out.push(Level { name: name.clone(), long: long.clone().unwrap_or_else(|| name.clone()) });
    }
    out
}

fn nagios_map(ck: &mut Ck, levels: &[Level], ok: &HashSet<String>) -> NagiosMap {
    let Some((line, m)) = &ck.ast.nagios_map else {
        // The default names when declared, else by position in the levels.
        let n = levels.len();
        let pick = |name: &str, at: usize| -> String {
            if ok.contains(name) {
                name.to_string()
            } else {
                levels.get(at.min(n.saturating_sub(1))).map(|l| l.name.clone()).unwrap_or_default()
            }
        };
        return NagiosMap {
            ok: pick("fine", 0),
            warning: pick("sick", n.saturating_sub(3)),
            critical: pick("crit", n.saturating_sub(2)),
            unknown: pick("soso", 1),
        };
    };
    for n in [&m.ok, &m.warning, &m.critical, &m.unknown] {
        if !ok.contains(n) {
            ck.err(*line, format!("nagios_map: unknown level '{n}'"));
        }
    }
    m.clone()
}

fn role(ck: &mut Ck, key: &str, lines: &[(usize, String)], needed: bool) -> Option<usize> {
    match lines {
        [] => {
            if needed {
                ck.err(0, format!("no '{key}' line: one host must be the {key}"));
            }
            None
        }
        [(line, name), rest @ ..] => {
            for (l, _) in rest {
                ck.err(*l, format!("{key} given twice (first at line {line})"));
            }
            let h = ck.by_name.get(name).copied();
            if h.is_none() {
                ck.err(*line, format!("{key}: unknown host '{name}'"));
            }
            h
        }
    }
}

fn parents(ck: &mut Ck) -> BTreeMap<usize, usize> {
    let mut out: BTreeMap<usize, usize> = BTreeMap::new();
    let mut at: HashMap<usize, usize> = HashMap::new();
    for (line, child, parent) in &ck.ast.parents {
        let (c, p) = (ck.by_name.get(child).copied(), ck.by_name.get(parent).copied());
        for (n, h) in [(child, c), (parent, p)] {
            if h.is_none() {
                ck.err(*line, format!("parent: unknown host '{n}'"));
            }
        }
        let (Some(c), Some(p)) = (c, p) else { continue };
        if let Some(l) = at.get(&c) {
            ck.err(*line, format!("parent: '{child}' already has a parent (line {l})"));
            continue;
        }
        // Walk up from the new parent: reaching the child means a cycle.
        let mut up = Some(p);
        let mut steps = 0;
        while let Some(u) = up {
            if u == c || steps > out.len() {
                break;
            }
            up = out.get(&u).copied();
            steps += 1;
        }
        if up == Some(c) {
            ck.err(*line, format!("parent: cycle ('{parent}' is already below '{child}')"));
            continue;
        }
        out.insert(c, p);
        at.insert(c, *line);
    }
    out
}

/// Which probe provides `item`, or why none does.
fn probe_for(
    item: &str,
    nagios: &HashMap<&str, usize>,
    probes: &HashMap<&str, usize>,
    ast: &Ast,
) -> std::result::Result<ProbeSpec, String> {
    let (base, arg) = match item.split_once(':') {
        Some((b, a)) => (b, Some(a)),
        None => (item, None),
    };
    match (base, arg) {
        ("nagios", Some(n)) => match nagios.get(n) {
            Some(&i) => Ok(ProbeSpec::Nagios { argv: ast.nagios[i].argv.clone() }),
            None => Err(format!("item '{item}': no 'nagios' line defines '{n}'")),
        },
        ("probe", Some(n)) => match probes.get(n) {
            Some(&i) => {
                Ok(ProbeSpec::External { program: n.to_string(), args: ast.probes[i].argv.clone() })
            }
            None => Err(format!("item '{item}': no 'probe' line defines '{n}'")),
        },
        (b, None) if BUILTIN_PLAIN.contains(&b) => Ok(ProbeSpec::Builtin),
        (b, Some(a)) if BUILTIN_ARG.contains(&b) && !a.is_empty() => {
            if b == "tcp" {
                let port = a.rsplit_once(':').map(|(h, p)| (h, p.parse::<u16>()));
                if !matches!(port, Some((h, Ok(_))) if !h.is_empty()) {
                    return Err(format!("item '{item}': expected tcp:HOST:PORT"));
                }
            }
            if b == "http" {
                check_url(&format!("item '{item}'"), a)?;
            }
            Ok(ProbeSpec::Builtin)
        }
        (b, None) if BUILTIN_ARG.contains(&b) => {
            Err(format!("item '{item}' needs an argument ({b}:...)"))
        }
        _ => Err(format!("no probe provides item '{item}'")),
    }
}

fn items(ck: &mut Ck) -> Vec<BTreeMap<String, ProbeSpec>> {
    let ast = ck.ast;
    let mut out = vec![BTreeMap::new(); ast.hosts.len()];
    let mut defs: [HashMap<&str, usize>; 2] = [HashMap::new(), HashMap::new()];
    let lists: [(&str, &[ExtDecl]); 2] = [("nagios", &ast.nagios), ("probe", &ast.probes)];
    for (k, (key, list)) in lists.into_iter().enumerate() {
        for (i, d) in list.iter().enumerate() {
            if let Some(&j) = defs[k].get(d.name.as_str()) {
                let l = list[j].line;
                ck.err(d.line, format!("{key} '{}' already defined at line {l}", d.name));
            } else {
                defs[k].insert(d.name.as_str(), i);
            }
        }
    }
    let [nagios, probes] = defs;
    let mut add = |ck: &mut Ck, line: usize, hosts: &[String], what: &str, names: &[String]| {
        let hs = ck.hosts_of(line, what, hosts);
        for name in names {
            match probe_for(name, &nagios, &probes, ast) {
                Ok(spec) => {
                    for &h in &hs {
                        out[h].insert(name.clone(), spec.clone());
                    }
                }
                Err(m) => ck.err(line, m),
            }
        }
    };
    for g in &ast.gets {
        add(ck, g.line, &g.hosts, "get", &g.items);
    }
    for d in &ast.nagios {
        add(ck, d.line, &d.hosts, "nagios", &[format!("nagios:{}", d.name)]);
    }
    for d in &ast.probes {
        add(ck, d.line, &d.hosts, "probe", &[format!("probe:{}", d.name)]);
    }
    out
}

/// Every item some host gets, plus the names a fit may use for them
/// (generic `disk_used`, bare nagios `NAME`).
fn fit_names(items: &[BTreeMap<String, ProbeSpec>]) -> HashSet<String> {
    let mut all = HashSet::new();
    for m in items {
        for name in m.keys() {
            if all.contains(name) {
                continue;
            }
            all.insert(name.clone());
            if let Some((base, arg)) = name.split_once(':') {
                all.insert(base.to_string());
                if base == "nagios" {
                    all.insert(arg.to_string());
                }
            }
        }
    }
    all
}

/// Is `item` one a Nagios check or an external probe makes: `NAME.label`
/// where some host gets `nagios:NAME` or `probe:NAME`?
pub(super) fn is_family_item(names: &HashSet<String>, item: &str) -> bool {
    match item.split_once('.') {
        Some((name, label)) if !name.is_empty() && !label.is_empty() => {
            names.contains(&format!("nagios:{name}")) || names.contains(&format!("probe:{name}"))
        }
        _ => false,
    }
}

fn fits(
    ck: &mut Ck,
    items: &[BTreeMap<String, ProbeSpec>],
    levels: &HashSet<String>,
) -> Vec<FitScope> {
    let names = fit_names(items);
    let fits: &[FitDecl] = &ck.ast.fits;
    let mut out = Vec::with_capacity(fits.len());
    for f in fits {
        let mut sc = FitScope::default();
        for s in &f.scope {
            if let Some(&h) = ck.by_name.get(s) {
                sc.direct.insert(h);
            } else if let Some(g) = ck.groups.get(s) {
                sc.via_group.extend(g.iter().copied());
            } else {
                ck.err(f.line, format!("fit {}: unknown host or group '{s}'", f.written()));
            }
        }
        for r in &f.rules {
            if !levels.contains(&r.level) {
                ck.err(f.line, format!("fit {}: undeclared level '{}'", f.written(), r.level));
            }
        }
        if !names.contains(&f.item) && !is_family_item(&names, &f.item) {
            ck.err(f.line, format!("fit {}: no host gets this item", f.written()));
        }
        out.push(sc);
    }
    out
}

fn timeouts(ck: &mut Ck, items: &[BTreeMap<String, ProbeSpec>]) {
    let names = fit_names(items);
    for (line, item, _) in &ck.ast.timeouts {
        if !names.contains(item) {
            ck.errs.push((*line, format!("timeout: no host gets item '{item}'")));
        }
    }
}

#[cfg(test)]
mod tests;
