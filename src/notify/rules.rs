//! Routing: which (user, channel) pairs an event at a level reaches, from the
//! work's alert rules, users and per-channel `min_level`. Pure; never sends.

use crate::work::model::{Channel, ServerWork};
use std::collections::HashSet;

/// `*` (any run, also empty) and `?` (one character) glob, over chars.
pub fn glob(pat: &str, s: &str) -> bool {
    let p: Vec<char> = pat.chars().collect();
    let t: Vec<char> = s.chars().collect();
    // Greedy with one backtrack point: linear enough for item names.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        // The star first: a '*' in the text is an ordinary character, never
        // a literal match for the pattern's star.
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(sp) = star {
            pi = sp + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Level name -> index (0 = best). An unknown name counts as the worst level
/// so a misnamed level alerts rather than stays silent.
pub fn level_index(levels: &[String], name: &str) -> usize {
    levels.iter().position(|l| l == name).unwrap_or(levels.len().saturating_sub(1))
}

/// One route: a user and the channel it is reached through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub user: String,
    pub channel: String,
}

/// The hosts of each alert rule, indexed: exact names in a set, patterns
/// apart, so a rule for `all` of 10,000 hosts costs one lookup per event
/// instead of 10,000 globs (a mass outage routes 10,000 events).
#[derive(Debug, Default, Clone)]
pub struct RuleHosts(Vec<(HashSet<String>, Vec<String>)>);

impl RuleHosts {
    pub fn new(work: &ServerWork) -> RuleHosts {
        let index = |hosts: &[String]| {
            let (pats, names): (Vec<&String>, Vec<&String>) =
                hosts.iter().partition(|h| h.contains(['*', '?']));
            (names.into_iter().cloned().collect(), pats.into_iter().cloned().collect())
        };
        RuleHosts(work.alerts.iter().map(|r| index(&r.hosts)).collect())
    }

    /// Does rule `i` name `host`? None: no such rule in the index.
    fn matches(&self, i: usize, host: &str) -> Option<bool> {
        let (names, pats) = self.0.get(i)?;
        Some(names.contains(host) || pats.iter().any(|p| glob(p, host)))
    }
}

/// The channels (deduplicated, first user wins) an event for `host`/`item`
/// at `level` reaches.
pub fn route(
    work: &ServerWork,
    levels: &[String],
    host: &str,
    item: &str,
    level: usize,
) -> Vec<Route> {
    route_with(work, &RuleHosts::new(work), levels, host, item, level)
}

/// [`route`] with the rules' hosts indexed once (`hosts`, of this `work`).
pub fn route_with(
    work: &ServerWork,
    hosts: &RuleHosts,
    levels: &[String],
    host: &str,
    item: &str,
    level: usize,
) -> Vec<Route> {
    let mut out: Vec<Route> = Vec::new();
    for (i, rule) in work.alerts.iter().enumerate() {
        let named =
            || hosts.matches(i, host).unwrap_or_else(|| rule.hosts.iter().any(|h| glob(h, host)));
        if level < level_index(levels, &rule.level) || !glob(&rule.item, item) || !named() {
            continue;
        }
        for uname in &rule.users {
            let Some(user) = work.users.iter().find(|u| &u.name == uname) else { continue };
            for cname in &user.channels {
                let Some(ch) = channel(work, cname) else { continue };
                if level < min_level(ch, levels) || out.iter().any(|r| &r.channel == cname) {
                    continue;
                }
                out.push(Route { user: uname.clone(), channel: cname.clone() });
            }
        }
    }
    out
}

pub fn channel<'a>(work: &'a ServerWork, name: &str) -> Option<&'a Channel> {
    work.channels.iter().find(|c| c.name == name)
}

/// The channel's `min_level` option as an index; 1 (the first bad level)
/// when not set.
pub fn min_level(ch: &Channel, levels: &[String]) -> usize {
    ch.options.get("min_level").map(|l| level_index(levels, l)).unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::model::{AlertRule, User};
    use std::collections::BTreeMap;

    #[test]
    fn glob_matches() {
        assert!(glob("disk_used:*", "disk_used:/var"));
        assert!(glob("*", ""));
        assert!(glob("cpu_?oad", "cpu_load"));
        assert!(glob("*:/v*r", "disk_used:/var"));
        assert!(!glob("disk_used:*", "disk_free:/"));
        assert!(!glob("cpu_?oad", "cpu_lload"));
        assert!(glob("a*b*c", "aXbYbZc"));
        assert!(!glob("a*b*c", "aXbYbZ"));
        assert!(glob("exact", "exact"));
    }

    #[test]
    fn glob_needs_the_whole_text_and_the_whole_pattern() {
        assert!(!glob("ab", "abc"), "text left over");
        assert!(!glob("abc", "ab"), "pattern left over");
        assert!(!glob("a?", "a"));
        assert!(glob("ab**", "ab") && glob("**", "") && !glob("*x", ""));
        assert!(!glob("", "a") && glob("", ""));
        assert!(!glob("x*", "ax"), "a star inside does not float the pattern");
        // Backtracking: the star first swallows too little, then the rest.
        assert!(glob("*ab", "aab") && glob("*a*b", "xxaxxb") && !glob("*ab", "aba"));
        assert!(glob("a*?c", "abbc") && !glob("a*?c", "ac"));
        // A '*' in the text is an ordinary character to the star before it.
        assert!(glob("*?", "a*") && glob("h*?", "hx*"));
        // ... also where the text's '*' stands right under the pattern's star.
        assert!(glob("*b", "*ab") && glob("x*y", "x*zy") && glob("*", "*"));
        assert!(!glob("*b", "*a") && glob("a*", "a*"));
    }

    fn work() -> ServerWork {
        let ch = |n: &str, min: Option<&str>| Channel {
            name: n.into(),
            kind: "webhook".into(),
            target: "http://127.0.0.1/".into(),
            options: min
                .map(|m| BTreeMap::from([("min_level".into(), m.into())]))
                .unwrap_or_default(),
        };
        ServerWork {
            users: vec![
                User { name: "ann".into(), channels: vec!["hook".into(), "pager".into()] },
                User { name: "bob".into(), channels: vec!["hook".into()] },
            ],
            channels: vec![ch("hook", None), ch("pager", Some("crit"))],
            alerts: vec![AlertRule {
                hosts: vec!["www1.x".into()],
                item: "disk_used:*".into(),
                level: "sick".into(),
                users: vec!["ann".into(), "bob".into()],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn routes_by_level_host_item_and_min_level() {
        let levels: Vec<String> = ["ok", "sick", "crit"].iter().map(|s| s.to_string()).collect();
        let w = work();
        assert!(route(&w, &levels, "www1.x", "disk_used:/", 0).is_empty());
        assert!(route(&w, &levels, "www2.x", "disk_used:/", 2).is_empty());
        assert!(route(&w, &levels, "www1.x", "cpu_load", 2).is_empty());
        let sick = route(&w, &levels, "www1.x", "disk_used:/", 1);
        assert_eq!(sick, vec![Route { user: "ann".into(), channel: "hook".into() }]);
        let crit = route(&w, &levels, "www1.x", "disk_used:/", 2);
        let names: Vec<&str> = crit.iter().map(|r| r.channel.as_str()).collect();
        assert_eq!(names, vec!["hook", "pager"]);
        // Each channel is reached through the user that has it (ann has
        // the pager, bob only the hook, which ann already reached).
        let users: Vec<&str> = crit.iter().map(|r| r.user.as_str()).collect();
        assert_eq!(users, vec!["ann", "ann"]);
    }

    #[test]
    fn unknown_levels_count_as_the_worst_and_min_level_defaults_to_the_first_bad() {
        let levels: Vec<String> = ["ok", "sick", "crit"].iter().map(|s| s.to_string()).collect();
        assert_eq!(level_index(&levels, "ok"), 0);
        assert_eq!(level_index(&levels, "crit"), 2);
        assert_eq!(level_index(&levels, "typo"), 2);
        assert_eq!(level_index(&[], "any"), 0);
        let w = work();
        assert_eq!(min_level(channel(&w, "hook").unwrap(), &levels), 1);
        assert_eq!(min_level(channel(&w, "pager").unwrap(), &levels), 2);
        assert!(channel(&w, "fax").is_none());
        assert_eq!(channel(&w, "pager").map(|c| c.name.as_str()), Some("pager"));
    }
}
