//! The client's item table: every item's last value, level, message or
//! error and sample time, judged by its fitness function (`fitness.rs`) as
//! readings come in, and the fitness-change events that result. Pure: no
//! I/O, no clock (times are passed in), so the loop owns when things happen.
//!
//! Events: one per level change. An item's first level is an event only
//! when it is not the best level (a host starting up healthy is not news;
//! one starting with a full disk is), with `old_level: None`. Items that
//! appear from a family (`nagios:check_load.load1` perfdata, extra lines of
//! a `probe:` program) are tracked and stored in history; they are judged
//! and raise events like any item when a `fit` line names them (the work
//! carries those fits on the item they come from), and otherwise never
//! raise events: the work item they come from already carries the level.

use crate::client::fitness::{judge, level_index, JudgeState};
use crate::event::Event;
use crate::work::model::{Fitness, Level, NagiosMap, Work};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One probe result (the probes' `Sample`, same shape).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    pub item: String,
    pub value: Option<f64>,
    pub message: String,
    pub error: Option<String>,
}

/// Where an item comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Listed in the work.
    Work,
    /// Appeared in readings without being in the work (perfdata, probe lines).
    Family,
    /// Set by another part of the daemon (`heartbeat`, `rtt`, `server`).
    Set,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ItemState {
    pub value: Option<f64>,
    pub level: Option<usize>,
    pub message: String,
    pub error: Option<String>,
    /// Wall time of the last sample, Unix seconds.
    pub time: Option<f64>,
    pub judge: JudgeState,
    pub fit: Option<Fitness>,
    pub origin: Origin,
}

impl ItemState {
    fn new(fit: Option<Fitness>, origin: Origin) -> ItemState {
        ItemState {
            value: None,
            level: None,
            message: String::new(),
            error: None,
            time: None,
            judge: JudgeState::default(),
            fit,
            origin,
        }
    }
}

pub struct Items {
    levels: Vec<Level>,
    nmap: NagiosMap,
    items: BTreeMap<String, ItemState>,
    /// Fits for family items, by the name the fit was written for.
    family: BTreeMap<String, Fitness>,
}

/// Every work item's family fits, in one map.
fn family_of(work: &Work) -> BTreeMap<String, Fitness> {
    work.items.iter().flat_map(|i| i.family.iter().map(|(k, f)| (k.clone(), f.clone()))).collect()
}

/// The values of a round worth storing: `(item, value)` of readings that have one.
pub fn sample_values(readings: &[Reading]) -> Vec<(&str, f64)> {
    readings.iter().filter_map(|r| r.value.map(|v| (r.item.as_str(), v))).collect()
}

impl Items {
    pub fn new(work: &Work) -> Items {
        let items = work
            .items
            .iter()
            .map(|i| (i.name.clone(), ItemState::new(i.fit.clone(), Origin::Work)))
            .collect();
        Items {
            levels: work.levels.clone(),
            nmap: work.nagios_map.clone(),
            items,
            family: family_of(work),
        }
    }

    /// The fit of a family item: its exact name, then its generic name
    /// (`myprobe.disk:/var` -> `myprobe.disk`).
    fn family_fit(&self, item: &str) -> Option<Fitness> {
        let generic = item.split_once(':').map(|(base, _)| base);
        self.family.get(item).or_else(|| generic.and_then(|g| self.family.get(g))).cloned()
    }

    /// A new work: items that still exist keep their state (their judge
    /// state too when their fitness is unchanged; a changed fitness restarts
    /// its counts from the current level). Levels are carried by name, so a
    /// reordered level list keeps meaning. Family items stay while the work
    /// item they hang off (`NAME.label` -> `NAME`) exists; set items stay.
    pub fn reload(&mut self, work: &Work) {
        let mut old = std::mem::take(&mut self.items);
        let old_levels = std::mem::replace(&mut self.levels, work.levels.clone());
        self.nmap = work.nagios_map.clone();
        self.family = family_of(work);
        let remap = |l: Option<usize>| -> Option<usize> {
            l.and_then(|i| old_levels.get(i)).and_then(|lv| level_index(&work.levels, &lv.name))
        };
        for i in &work.items {
            let st = match old.remove(&i.name) {
                Some(mut st) => {
                    st.level = remap(st.level);
                    if st.fit != i.fit || old_levels != work.levels {
                        st.judge = JudgeState { level: st.level, ..JudgeState::default() };
                        st.judge.last = st.value;
                    }
                    st.fit = i.fit.clone();
                    st.origin = Origin::Work;
                    st
                }
                None => ItemState::new(i.fit.clone(), Origin::Work),
            };
            self.items.insert(i.name.clone(), st);
        }
        for (name, mut st) in old {
            let keep = match st.origin {
                Origin::Set => true,
                // `check_load.load1` hangs off `nagios:check_load`,
                // `myprobe.temp` off `probe:myprobe`.
                Origin::Family => name.split_once('.').is_some_and(|(parent, _)| {
                    ["nagios:", "probe:", ""]
                        .iter()
                        .any(|k| self.items.contains_key(&format!("{k}{parent}")))
                }),
                Origin::Work => false,
            };
            if keep {
                st.level = remap(st.level);
                st.judge = JudgeState { level: st.level, ..JudgeState::default() };
                if st.origin == Origin::Family {
                    st.fit = self.family_fit(&name);
                }
                self.items.insert(name, st);
            }
        }
    }

    pub fn levels(&self) -> &[Level] {
        &self.levels
    }

    pub fn get(&self, name: &str) -> Option<&ItemState> {
        self.items.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &ItemState)> {
        self.items.iter()
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The name of a level index.
    pub fn level_name(&self, level: usize) -> &str {
        self.levels.get(level).map(|l| l.name.as_str()).unwrap_or("?")
    }

    /// Judges a round of readings; returns the events it raised.
    pub fn apply(
        &mut self,
        host: &str,
        readings: Vec<Reading>,
        now_wall: f64,
        ids: &mut impl FnMut() -> String,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        for mut r in readings {
            if r.value.is_some_and(|v| !v.is_finite()) {
                // NaN compares false with every threshold: it would pass as fine.
                r.value = None;
                r.error.get_or_insert_with(|| "value is not a finite number".into());
            }
            if !self.items.contains_key(&r.item) {
                let fit = self.family_fit(&r.item);
                self.items.insert(r.item.clone(), ItemState::new(fit, Origin::Family));
            }
            let Some(st) = self.items.get_mut(&r.item) else { continue };
            let (old_level, old_value) = (st.level, st.value);
            let level = judge(st.fit.as_ref(), &self.levels, &self.nmap, &mut st.judge, r.value);
            st.value = r.value;
            st.level = Some(level);
            st.message = r.message;
            st.error = r.error;
            st.time = Some(now_wall);
            // A family item is news only when a fit names it.
            let judged = st.origin != Origin::Family || st.fit.is_some();
            if judged && is_news(old_level, level) {
                let ev = make_event(&self.levels, host, &r.item, st, old_level, old_value, ids);
                events.push(ev);
            }
        }
        events
    }

    /// Sets an item from another part of the daemon (heartbeat path):
    /// the level is given by name. An unknown level name is the worst level.
    #[allow(clippy::too_many_arguments)]
    pub fn set(
        &mut self,
        host: &str,
        item: &str,
        value: Option<f64>,
        level_name: &str,
        message: &str,
        now_wall: f64,
        ids: &mut impl FnMut() -> String,
    ) -> Option<Event> {
        let worst = self.levels.len().saturating_sub(1);
        let level = level_index(&self.levels, level_name).unwrap_or(worst);
        let st =
            self.items.entry(item.to_string()).or_insert_with(|| ItemState::new(None, Origin::Set));
        let (old_level, old_value) = (st.level, st.value);
        st.value = value;
        st.level = Some(level);
        st.judge = JudgeState { level: Some(level), last: value, ..JudgeState::default() };
        st.message = message.to_string();
        st.error = None;
        st.time = Some(now_wall);
        is_news(old_level, level)
            .then(|| make_event(&self.levels, host, item, st, old_level, old_value, ids))
    }

    /// STATE lines, one per item, values with their units:
    /// `-- item cpu_load 0.42 fine age 12s`, `-- item disk_used:/ 41.2% fine age 3s`,
    /// `-- item http:https://x/ - dead error "timed out after 30s" age 3s`.
    pub fn state_lines(&self, out: &mut String, now_wall: f64) {
        for (name, st) in &self.items {
            let value = st
                .value
                .map(|v| crate::units::fmt_with_unit(name, v))
                .unwrap_or_else(|| "-".into());
            let level = st.level.map(|l| self.level_name(l)).unwrap_or("-");
            let _ = write!(out, "-- item {name} {value} {level}");
            if let Some(e) = &st.error {
                let _ = write!(out, " error {}", quote(e));
            } else if !st.message.is_empty() {
                let _ = write!(out, " msg {}", quote(&st.message));
            }
            match st.time {
                Some(t) => {
                    let _ = writeln!(out, " age {}s", (now_wall - t).max(0.0).round() as i64);
                }
                None => out.push_str(" age -\n"),
            }
        }
    }

    /// One item as REPORT shows it: value, level, message, error and time.
    fn item_json(&self, st: &ItemState) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("value".into(), json!(st.value.map(crate::units::round_json)));
        m.insert("level".into(), json!(st.level.map(|l| self.level_name(l))));
        // Clipped so an item stays within the server's REPORT limits.
        m.insert("message".into(), json!(clip(&st.message)));
        m.insert("error".into(), json!(st.error.as_deref().map(clip)));
        m.insert("time".into(), json!(st.time.map(crate::units::round_json)));
        m
    }

    /// DESIGN §5 REPORT: every item's value, level, message, error and time.
    pub fn report_json(&self) -> Value {
        let m = self.items.iter().map(|(n, st)| (n.clone(), Value::Object(self.item_json(st))));
        Value::Object(m.collect())
    }

    /// Everything, for DUMP: the report plus fitness source, origin and the
    /// judge's pending count.
    pub fn dump(&self) -> Value {
        let mut m = Map::new();
        for (name, st) in &self.items {
            let mut e = self.item_json(st);
            e.insert("fit".into(), json!(st.fit.as_ref().map(|f| f.source.as_str())));
            e.insert("origin".into(), json!(format!("{:?}", st.origin).to_lowercase()));
            let pending = st.judge.pending().map(|(l, n)| json!([self.level_name(l), n]));
            e.insert("pending".into(), json!(pending));
            m.insert(name.clone(), Value::Object(e));
        }
        Value::Object(m)
    }
}

/// At most 1000 characters of a message.
fn clip(s: &str) -> &str {
    match s.char_indices().nth(1000) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// A change, or a first level that is not the best.
fn is_news(old: Option<usize>, new: usize) -> bool {
    match old {
        Some(o) => o != new,
        None => new != 0,
    }
}

fn make_event(
    levels: &[Level],
    host: &str,
    item: &str,
    st: &ItemState,
    old_level: Option<usize>,
    old_value: Option<f64>,
    ids: &mut impl FnMut() -> String,
) -> Event {
    let name = |l: usize| levels.get(l).map(|l| l.name.clone()).unwrap_or_else(|| "?".into());
    Event {
        id: ids(),
        host: host.to_string(),
        item: item.to_string(),
        old_level: old_level.map(name),
        new_level: st.level.map(name).unwrap_or_default(),
        // Rounded as JSON shows them (CLIENTS, EVENTS): 5 decimals.
        old_value: old_value.map(crate::units::round_json),
        new_value: st.value.map(crate::units::round_json),
        time: crate::units::round_json(st.time.unwrap_or_default()),
        message: st.error.clone().unwrap_or_else(|| st.message.clone()),
    }
}

/// Up to 6 significant digits, no trailing zeros: `0.42`, `1234.57`, `3`.
fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

#[cfg(test)]
mod tests;
