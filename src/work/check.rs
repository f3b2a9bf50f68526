//! The checking context of the work's validate pass, shared by
//! `validate.rs`, `people.rs` and their checks: the Ast being checked, the
//! problems found so far (each with its line) and the names already known.
//! Below those modules, so they need not import each other back.

use crate::work::parse::Ast;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Where mail goes when a mail channel names no `sendmail=PATH`.
pub const DEFAULT_SENDMAIL: &str = "/usr/sbin/sendmail";
/// The group every host is in.
pub const ALL: &str = "all";

pub(crate) struct Ck<'a> {
    pub(crate) ast: &'a Ast,
    pub(crate) errs: Vec<(usize, String)>,
    pub(crate) by_name: HashMap<String, usize>,
    pub(crate) groups: BTreeMap<String, Vec<usize>>,
}

impl Ck<'_> {
    pub(crate) fn err(&mut self, line: usize, msg: impl Into<String>) {
        self.errs.push((line, msg.into()));
    }

    /// HOSTS words -> sorted host numbers; unknown names are reported.
    pub(crate) fn hosts_of(&mut self, line: usize, what: &str, names: &[String]) -> Vec<usize> {
        let mut set = BTreeSet::new();
        for n in names {
            if let Some(&h) = self.by_name.get(n) {
                set.insert(h);
            } else if let Some(g) = self.groups.get(n) {
                set.extend(g.iter().copied());
            } else {
                self.err(line, format!("{what}: unknown host or group '{n}'"));
            }
        }
        set.into_iter().collect()
    }
}
