//! Validation of the notification side of a work-config: channels, users
//! (with their inline channels), ugroups and alert rules. Part of
//! `validate.rs`'s pass, split off by concern; same rules: collect every
//! problem with its line, never stop at the first.

use crate::work::check::{Ck, ALL, DEFAULT_SENDMAIL};
use crate::work::model::WebUser;
use crate::work::model::{Channel, User};
use crate::work::parse::{check_url, ChanRef};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

type People = (Vec<User>, BTreeMap<String, Vec<String>>, Vec<Channel>);

pub(super) fn people(
    ck: &mut Ck,
    levels: &HashSet<String>,
    sendmail_exists: &dyn Fn(&Path) -> bool,
) -> People {
    let ast = ck.ast;
    let mut chans: BTreeMap<String, (usize, Channel)> = BTreeMap::new();
    for c in &ast.channels {
        if let Some((l, _)) = chans.get(&c.name) {
            ck.err(c.line, format!("channel '{}' already defined at line {l}", c.name));
            continue;
        }
        if let Some(m) = c.options.get("min_level").filter(|m| !levels.contains(*m)) {
            ck.err(c.line, format!("channel {}: min_level: unknown level '{m}'", c.name));
        }
        let ch = Channel {
            name: c.name.clone(),
            kind: c.kind.clone(),
            target: c.target.clone(),
            options: c.options.clone(),
        };
        chans.insert(c.name.clone(), (c.line, ch));
    }
    for c in &ast.channels {
        if let Some(fb) = c.options.get("fallback").filter(|f| !chans.contains_key(*f)) {
            ck.err(c.line, format!("channel {}: fallback: unknown channel '{fb}'", c.name));
        }
    }
    let mut users: Vec<User> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut used: BTreeSet<String> = BTreeSet::new();
    for u in &ast.users {
        if let Some(l) = seen.get(u.name.as_str()) {
            ck.err(u.line, format!("user '{}' already defined at line {l}", u.name));
            continue;
        }
        seen.insert(&u.name, u.line);
        let mut names = Vec::new();
        for c in &u.channels {
            match c {
                ChanRef::Named(n) if chans.contains_key(n) => names.push(n.clone()),
                ChanRef::Named(n) => {
                    ck.err(u.line, format!("user {}: unknown channel '{n}'", u.name))
                }
                ChanRef::Inline { kind, target } => {
                    let mut name = format!("{}.{kind}", u.name);
                    let mut k = 2;
                    while chans.contains_key(&name) {
                        name = format!("{}.{kind}{k}", u.name);
                        k += 1;
                    }
                    if kind == "webhook" || kind == "alertmanager" {
                        if let Err(m) = check_url(&format!("user {}", u.name), target) {
                            ck.err(u.line, m);
                        }
                    }
                    if kind == "mail" && !target.contains('@') {
                        ck.err(
                            u.line,
                            format!("user {}: '{target}' is not a mail address", u.name),
                        );
                    }
                    let ch = Channel {
                        name: name.clone(),
                        kind: kind.clone(),
                        target: target.clone(),
                        options: BTreeMap::new(),
                    };
                    chans.insert(name.clone(), (u.line, ch));
                    names.push(name);
                }
            }
        }
        used.extend(names.iter().cloned());
        users.push(User { name: u.name.clone(), channels: names });
    }
    // A mail channel nobody uses does not need an MTA on this machine.
    for name in &used {
        let Some((line, c)) = chans.get(name) else { continue };
        if c.kind != "mail" {
            continue;
        }
        // Direct SMTP: its options are checked instead of a sendmail.
        match crate::notify::channels::smtp::settings(&c.options) {
            Ok(Some(_)) => continue,
            Ok(None) => {}
            Err(e) => {
                ck.err(*line, format!("channel {name}: {e}"));
                continue;
            }
        }
        let sm = c.options.get("sendmail").map(String::as_str).unwrap_or(DEFAULT_SENDMAIL);
        if !sendmail_exists(Path::new(sm)) {
            ck.err(*line, format!("channel {name}: sendmail '{sm}' does not exist (install an MTA or set sendmail=PATH on a 'channel' line)"));
        }
    }
    let mut ugroups = BTreeMap::new();
    for g in &ast.ugroups {
        if seen.contains_key(g.name.as_str()) {
            ck.err(g.line, format!("ugroup '{}': a user has that name", g.name));
        } else if ugroups.contains_key(&g.name) {
            ck.err(g.line, format!("ugroup '{}' already defined", g.name));
        }
        let mut members = BTreeSet::new();
        for m in &g.members {
            if seen.contains_key(m.as_str()) {
                members.insert(m.clone());
            } else {
                ck.err(g.line, format!("ugroup {}: unknown user '{m}'", g.name));
            }
        }
        ugroups.insert(g.name.clone(), members.into_iter().collect());
    }
    users.sort_by(|a, b| a.name.cmp(&b.name));
    (users, ugroups, chans.into_values().map(|(_, c)| c).collect())
}

pub(super) fn alerts(
    ck: &mut Ck,
    levels: &HashSet<String>,
    users: &[User],
    ugroups: &BTreeMap<String, Vec<String>>,
) -> Vec<(Vec<usize>, Vec<String>)> {
    let known: HashSet<&str> = users.iter().map(|u| u.name.as_str()).collect();
    let mut out = Vec::new();
    for a in &ck.ast.alerts {
        let hs = ck.hosts_of(a.line, "alert", &a.hosts);
        if !levels.contains(&a.level) {
            ck.err(a.line, format!("alert: unknown level '{}'", a.level));
        }
        let mut who = BTreeSet::new();
        for w in &a.who {
            if known.contains(w.as_str()) {
                who.insert(w.clone());
            } else if let Some(g) = ugroups.get(w) {
                who.extend(g.iter().cloned());
            } else {
                ck.err(a.line, format!("alert: unknown user or ugroup '{w}'"));
            }
        }
        out.push((hs, who.into_iter().collect()));
    }
    out
}

/// The dashboard users (those with a password), names checked: groups
/// must be host groups, owned hosts must be hosts (stored by FQDN).
pub(super) fn web_users(ck: &mut Ck) -> Vec<WebUser> {
    let ast = ck.ast;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for u in &ast.users {
        // A second line for a name is reported by the notification pass.
        if !seen.insert(u.name.as_str()) {
            continue;
        }
        let Some(hash) = &u.login.hash else { continue };
        for g in &u.login.groups {
            if ck.groups.contains_key(g) {
                continue;
            }
            let msg = if ck.by_name.contains_key(g) {
                format!("user {}: '{g}' is a host, not a group (use owns={g})", u.name)
            } else {
                format!("user {}: groups=: unknown group '{g}'", u.name)
            };
            ck.err(u.line, msg);
        }
        let mut hosts = Vec::new();
        for h in &u.login.owns {
            match ck.by_name.get(h) {
                Some(&i) => hosts.push(ast.hosts[i].fqdn.clone()),
                None if ck.groups.contains_key(h) || h == ALL => ck.err(
                    u.line,
                    format!("user {}: '{h}' is a group, not a host (use groups={h})", u.name),
                ),
                None => ck.err(u.line, format!("user {}: owns=: unknown host '{h}'", u.name)),
            }
        }
        hosts.sort();
        hosts.dedup();
        let mut groups = u.login.groups.clone();
        groups.sort();
        groups.dedup();
        out.push(WebUser {
            name: u.name.clone(),
            hash: hash.clone(),
            admin: u.login.admin,
            groups,
            hosts,
        });
    }
    if let Some((line, true)) = ast.login {
        if out.is_empty() {
            ck.err(line, "login everywhere: no user has a password, so nobody could log in");
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
