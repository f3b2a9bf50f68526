//! The work-config language, last pass: a checked `Ast` + `Index` -> one
//! `model::Work` per host. Pure and deterministic (sorted lists, BTreeMaps),
//! so the same config always gives byte-identical JSON.
//!
//! Fitness choice, most specific first: the item's exact name, then (for
//! `nagios:NAME`) the bare `NAME`, then the generic name with the argument
//! stripped (`disk_used:/var` -> `disk_used`); for each name, a fit scoped
//! to the host itself beats one scoped to a group of the host, which beats
//! an unscoped one; among equals the later line wins.

use crate::error::many;
use crate::error::{Error, Result};
use crate::work::model::{
    AlertRule, Endpoint, Fitness, HostEntry, Intervals, Item, ItemFits, Noise, PmakerWork, Ports,
    ProbeSpec, Roles, Rule, ServerWork, Work, WORK_VERSION,
};
use crate::work::parse::{parse_partial, Ast, FitDecl};
use crate::work::validate::{check, Index};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// Seconds before a builtin probe (tcp, http, ping, ...) gives up.
pub const BUILTIN_TIMEOUT: f64 = 10.0;
/// Seconds before a Nagios plugin or an external probe is killed.
pub const EXTERNAL_TIMEOUT: f64 = 30.0;

/// Checks and resolves a parsed work-config into every host's work, in
/// host order of the file. Mail channels in use need an existing sendmail.
pub fn resolve_all(ast: &Ast) -> Result<Vec<Work>> {
    resolve_with(ast, &|p: &Path| p.exists())
}

/// `resolve_all` with the sendmail check injected (tests, `hbmon test`).
pub fn resolve_with(ast: &Ast, sendmail_exists: &dyn Fn(&Path) -> bool) -> Result<Vec<Work>> {
    let ix = check(ast, sendmail_exists)?;
    Ok(build(ast, &ix))
}

/// Reads, parses, checks and resolves a work-config file.
pub fn load(file: &Path) -> Result<Vec<Work>> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| Error::io(format!("reading work-config {}", file.display()), e))?;
    resolve_text(file, &text, &|p: &Path| p.exists())
}

/// Parses, checks and resolves a work-config's text, reporting line errors
/// and name errors together, sorted by line. Names are not cross-checked
/// when a defining line (`host`, `group`, `user`, ...) failed to parse: that
/// would only add errors that follow from it.
pub fn resolve_text(
    file: &Path,
    text: &str,
    sendmail_exists: &dyn Fn(&Path) -> bool,
) -> Result<Vec<Work>> {
    let p = parse_partial(file, text)?;
    let mut errors = p.errors;
    if p.definition_failed {
        return Err(fail(errors));
    }
    match check(&p.ast, sendmail_exists) {
        Ok(ix) if errors.is_empty() => Ok(build(&p.ast, &ix)),
        Ok(_) => Err(fail(errors)),
        Err(e) => {
            errors.push(e);
            Err(fail(errors))
        }
    }
}

/// The errors as one error (they are never empty where this is called).
fn fail(errors: Vec<Error>) -> Error {
    many(errors).unwrap_or_else(|| Error::Runtime("work-config rejected".into()))
}

/// The work of the host called `fqdn` (or by its tag).
pub fn for_host(works: &[Work], fqdn: &str) -> Option<Work> {
    works.iter().find(|w| w.host == fqdn).or_else(|| works.iter().find(|w| w.tag == fqdn)).cloned()
}

/// Fits indexed by the item name they are written for.
type FitsByItem<'a> = HashMap<&'a str, Vec<(usize, &'a FitDecl)>>;

fn build(ast: &Ast, ix: &Index) -> Vec<Work> {
    let mut ports = Ports::default();
    for (k, (_, v)) in &ast.ports {
        match k.as_str() {
            "port" => ports.port = *v,
            "hb_port" => ports.hb_port = *v,
            _ => ports.http_port = *v,
        }
    }
    let intervals = intervals(ast);
    let endpoint = |h: usize| {
        let d = &ast.hosts[h];
        Endpoint { host: d.fqdn.clone(), tag: d.tag.clone(), address: address(ast, h), ports }
    };
    let server = endpoint(ix.server);
    let pmaker = ix.pmaker.map(endpoint);
    let mut fits: FitsByItem = HashMap::new();
    for (i, f) in ast.fits.iter().enumerate() {
        fits.entry(f.item.as_str()).or_default().push((i, f));
    }
    let server_part = server_part(ast, ix, ports);
    let mut works: Vec<Work> = (0..ast.hosts.len())
        .map(|h| {
            let d = &ast.hosts[h];
            let is_server = h == ix.server;
            let is_pmaker = ix.pmaker == Some(h);
            Work {
                version: WORK_VERSION,
                host: d.fqdn.clone(),
                tag: d.tag.clone(),
                address: address(ast, h),
                roles: Roles { client: true, server: is_server, pmaker: is_pmaker },
                ports,
                server: server.clone(),
                pmaker: pmaker.clone(),
                intervals: intervals.clone(),
                levels: ix.levels.clone(),
                nagios_map: ix.nagios_map.clone(),
                items: items(ast, ix, &fits, h),
                server_part: is_server.then(|| server_part.clone()),
                pmaker_part: is_pmaker.then(|| PmakerWork {
                    title: ast.title.clone().unwrap_or_else(|| "hbmon".into()),
                    hosts: server_part.hosts.clone(),
                    dashboard_url: server_part.dashboard_url.clone(),
                    users: ix.web_users.clone(),
                    login_required: ast.login.is_some_and(|l| l.1),
                    secure_cookies: secure_cookies(ast),
                    fits: Vec::new(),
                }),
            }
        })
        .collect();
    if let Some(p) = ix.pmaker.filter(|&p| p < works.len()) {
        let fits = item_fits(&works);
        if let Some(pm) = works[p].pmaker_part.as_mut() {
            pm.fits = fits;
        }
    }
    works
}

/// Some rules and the hosts that have them.
type RulesHosts = (Vec<Rule>, Vec<String>);

/// Every item's thresholds, grouped: per item, the rules most hosts have
/// apply to all (no host list); other rules list their hosts.
fn item_fits(works: &[Work]) -> Vec<ItemFits> {
    let mut by: BTreeMap<(&str, String), RulesHosts> = BTreeMap::new();
    for w in works {
        for it in &w.items {
            let Some(f) = it.fit.as_ref().filter(|f| !f.rules.is_empty() && !f.nagios) else {
                continue;
            };
            let key = (it.name.as_str(), serde_json::to_string(&f.rules).unwrap_or_default());
            by.entry(key).or_insert_with(|| (f.rules.clone(), Vec::new())).1.push(w.host.clone());
        }
    }
    let mut out: Vec<ItemFits> = Vec::new();
    let mut items: BTreeMap<&str, Vec<RulesHosts>> = BTreeMap::new();
    for ((item, _), v) in by {
        items.entry(item).or_default().push(v);
    }
    for (item, mut vs) in items {
        vs.sort_by_key(|v| std::cmp::Reverse(v.1.len()));
        for (i, (rules, hosts)) in vs.into_iter().enumerate() {
            let hosts = if i == 0 { Vec::new() } else { hosts };
            out.push(ItemFits { item: item.to_string(), rules, hosts });
        }
    }
    out
}

/// `cookies secure|plain`, else `Secure` when the dashboard's public URL
/// is https (a proxy in front terminates TLS).
fn secure_cookies(ast: &Ast) -> bool {
    match ast.cookies {
        Some((_, s)) => s,
        None => ast.dashboard.as_ref().is_some_and(|d| d.1.starts_with("https://")),
    }
}

fn address(ast: &Ast, h: usize) -> String {
    let d = &ast.hosts[h];
    d.address.clone().unwrap_or_else(|| d.fqdn.clone())
}

fn intervals(ast: &Ast) -> Intervals {
    let mut iv = Intervals::default();
    for (k, v) in &ast.intervals {
        // Its default depends on the heartbeat: set below.
        if k != "ival_server_dead" {
            iv.set(k, *v);
        }
    }
    iv.server_dead = ast.intervals.get("ival_server_dead").copied().unwrap_or(5.0 * iv.heartbeat);
    iv.phi_threshold = ast.phi_threshold;
    // The default is the tuned detector; `detector fixed|phi T` opt out.
    iv.detector_tuned = ast.phi_threshold.is_none() && !ast.detector_fixed;
    iv
}

fn items(ast: &Ast, ix: &Index, fits: &FitsByItem, h: usize) -> Vec<Item> {
    ix.items[h]
        .iter()
        .map(|(name, spec)| {
            let external = !matches!(spec, ProbeSpec::Builtin);
            let fit = choose_fit(ix, fits, h, name).or_else(|| {
                // A Nagios check with no fit line still maps its exit code.
                matches!(spec, ProbeSpec::Nagios { .. }).then(|| Fitness {
                    source: "nagios_map".into(),
                    rules: Vec::new(),
                    count: 1,
                    hyst: 0.0,
                    nagios: true,
                })
            });
            Item {
                name: name.clone(),
                family: family_fits(ix, fits, h, name, spec),
                probe: spec.clone(),
                fit,
                timeout: timeout(ast, name).unwrap_or(if external {
                    EXTERNAL_TIMEOUT
                } else {
                    BUILTIN_TIMEOUT
                }),
            }
        })
        .collect()
}

/// The names a fit may be written for, most specific first.
fn fit_keys(item: &str) -> Vec<&str> {
    let mut keys = vec![item];
    if let Some((base, arg)) = item.split_once(':') {
        if base == "nagios" {
            keys.push(arg);
        }
        keys.push(base);
    }
    keys
}

/// The fits for host `h` of the items a Nagios check (`NAME.label`
/// perfdata) or an external probe (`NAME.item` lines) makes: every fit line
/// written for a `NAME.` item, chosen for this host as any item's fit is.
/// The client looks these up by the item's name (then its generic name).
fn family_fits(
    ix: &Index,
    fits: &FitsByItem,
    h: usize,
    item: &str,
    spec: &ProbeSpec,
) -> std::collections::BTreeMap<String, Fitness> {
    let name = match (spec, item.split_once(':')) {
        (ProbeSpec::Nagios { .. }, Some(("nagios", n))) => n,
        (ProbeSpec::External { .. }, Some(("probe", n))) => n,
        _ => return Default::default(),
    };
    let prefix = format!("{name}.");
    let mut keys: Vec<&str> =
        fits.keys().copied().filter(|k| k.len() > prefix.len() && k.starts_with(&prefix)).collect();
    keys.sort_unstable();
    keys.into_iter()
        .filter_map(|k| choose_fit_for(ix, fits, h, k).map(|f| (k.to_string(), f)))
        .collect()
}

fn choose_fit(ix: &Index, fits: &FitsByItem, h: usize, item: &str) -> Option<Fitness> {
    fit_keys(item).into_iter().find_map(|key| choose_fit_for(ix, fits, h, key))
}

/// The fit written for exactly `key` that applies to host `h`, if any.
fn choose_fit_for(ix: &Index, fits: &FitsByItem, h: usize, key: &str) -> Option<Fitness> {
    let cands = fits.get(key)?;
    // 2 = host-scoped, 1 = group-scoped, 0 = unscoped; later line wins ties.
    let rank = |(i, f): &(usize, &FitDecl)| -> Option<u8> {
        let sc = &ix.fit_scopes[*i];
        if f.scope.is_empty() {
            Some(0)
        } else if sc.direct.contains(&h) {
            Some(2)
        } else if sc.via_group.contains(&h) {
            Some(1)
        } else {
            None
        }
    };
    let best =
        cands.iter().filter_map(|c| rank(c).map(|r| (r, c.0, c.1))).max_by_key(|c| (c.0, c.1));
    let (_, _, f) = best?;
    Some(Fitness {
        source: f.written(),
        rules: f.rules.clone(),
        count: f.count,
        hyst: f.hyst,
        nagios: f.nagios,
    })
}

/// `timeout ITEM IVAL`: the exact item first, then the generic name; the
/// later line wins.
fn timeout(ast: &Ast, item: &str) -> Option<f64> {
    fit_keys(item)
        .into_iter()
        .find_map(|k| ast.timeouts.iter().rev().find(|(_, i, _)| i == k).map(|t| t.2))
}

fn server_part(ast: &Ast, ix: &Index, ports: Ports) -> ServerWork {
    let fqdn = |h: usize| ast.hosts[h].fqdn.clone();
    let mut hosts: Vec<HostEntry> = (0..ast.hosts.len())
        .map(|h| HostEntry {
            host: fqdn(h),
            tag: ast.hosts[h].tag.clone(),
            address: address(ast, h),
            ports,
            groups: ix.host_groups[h].clone(),
        })
        .collect();
    hosts.sort_by(|a, b| a.host.cmp(&b.host));
    let alerts = ast
        .alerts
        .iter()
        .zip(&ix.alerts)
        .map(|(a, (hs, users))| {
            let mut hosts: Vec<String> = hs.iter().map(|&h| fqdn(h)).collect();
            hosts.sort();
            AlertRule { hosts, item: a.item.clone(), level: a.level.clone(), users: users.clone() }
        })
        .collect();
    let mut noise = Noise::default();
    if let Some((n, w)) = ast.flap {
        (noise.flap_changes, noise.flap_window) = (n, w);
    }
    if let Some((n, w)) = ast.storm {
        (noise.storm_events, noise.storm_window) = (n, w);
    }
    ServerWork {
        hosts,
        parents: ix.parents.iter().map(|(&c, &p)| (fqdn(c), fqdn(p))).collect(),
        users: ix.users.clone(),
        ugroups: ix.ugroups.clone(),
        channels: ix.channels.clone(),
        alerts,
        noise,
        deadman_url: ast.deadman.as_ref().map(|d| d.1.clone()),
        dashboard_url: ast.dashboard.as_ref().map(|d| d.1.clone()),
        upgrade_bin: ast.upgrade_bin.as_ref().map(|u| u.1.clone()),
    }
}

#[cfg(test)]
mod tests;
