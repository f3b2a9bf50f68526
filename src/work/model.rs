//! The resolved, per-host work-file: what `hbmon mkwork` writes as JSON and
//! what the daemon runs. This module owns only the data shape (serde); the
//! language that produces it lives in `parse.rs`/`resolve.rs`.
//!
//! Levels are named in the JSON (readable by a person); the daemon maps them
//! to indexes into `levels` (0 = best) when it loads a work.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when the JSON shape changes incompatibly.
pub const WORK_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Work {
    pub version: u32,
    /// This host's fully qualified name.
    pub host: String,
    pub tag: String,
    /// How others reach this host (an IP address or a resolvable name).
    pub address: String,
    pub roles: Roles,
    /// This host's own ports.
    pub ports: Ports,
    /// Where the server is.
    pub server: Endpoint,
    /// Where the pagemaker is, if the work names one.
    pub pmaker: Option<Endpoint>,
    pub intervals: Intervals,
    /// Fitness levels, best first.
    pub levels: Vec<Level>,
    pub nagios_map: NagiosMap,
    /// The items this host probes, sorted by name.
    pub items: Vec<Item>,
    /// Present only in the server's work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_part: Option<ServerWork>,
    /// Present only in the pagemaker's work.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pmaker_part: Option<PmakerWork>,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Roles {
    pub client: bool,
    pub server: bool,
    pub pmaker: bool,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ports {
    /// TCP command port.
    pub port: u16,
    /// UDP heartbeat port (the server listens on it).
    pub hb_port: u16,
    /// TCP dashboard port (the pagemaker listens on it).
    pub http_port: u16,
}

impl Default for Ports {
    fn default() -> Self {
        Ports { port: 50006, hb_port: 50003, http_port: 50004 }
    }
}

/// Another host of the fleet as this host needs to reach it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub host: String,
    pub tag: String,
    pub address: String,
    pub ports: Ports,
}

/// All in seconds, except `missed` (a count of heartbeat intervals).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Intervals {
    pub heartbeat: f64,
    pub make_state: f64,
    pub send_report: f64,
    pub check_work: f64,
    pub keep_events: f64,
    pub keep_history: f64,
    pub renotify: f64,
    pub grace: f64,
    pub missed: u32,
    pub server_dead: f64,
    pub deadman: f64,
    /// `detector phi THRESHOLD`: phi drives late/down when set.
    #[serde(default)]
    pub phi_threshold: Option<f64>,
    /// The loss-aware phi (`server/detector/tuned.rs`), the default; false
    /// with `detector fixed` or `detector phi T`. A work-file without the
    /// field predates it and meant the fixed rule (serde's false).
    #[serde(default)]
    pub detector_tuned: bool,
    /// Names not in the work given a full host record (hbd-style senders);
    /// more are kept in the bounded strangers table.
    #[serde(default = "default_hbd_senders", skip_serializing_if = "is_default_hbd_senders")]
    pub hbd_senders: u32,
    /// `ival_upgrade_check`: how long a re-exec'd client has to answer
    /// PING at the new version before the watchdog rolls it back.
    #[serde(default = "default_upgrade_check", skip_serializing_if = "is_default_upgrade_check")]
    pub upgrade_check: f64,
}

impl Intervals {
    /// Sets the interval (seconds) or count named `key`: a key of
    /// `ranges::IVAL_KEYS`, `missed` or `hbd_senders`. False for any other
    /// key. The one map from key names to fields, for the work and the conf.
    pub fn set(&mut self, key: &str, v: f64) -> bool {
        let slot = match key {
            "ival_heartbeat" => &mut self.heartbeat,
            "ival_make_state" => &mut self.make_state,
            "ival_send_report" => &mut self.send_report,
            "ival_check_work" => &mut self.check_work,
            "ival_keep_events" => &mut self.keep_events,
            "ival_keep_history" => &mut self.keep_history,
            "ival_renotify" => &mut self.renotify,
            "ival_server_dead" => &mut self.server_dead,
            "ival_deadman" => &mut self.deadman,
            "ival_upgrade_check" => &mut self.upgrade_check,
            "grace" => &mut self.grace,
            "missed" => {
                self.missed = v as u32;
                return true;
            }
            "hbd_senders" => {
                self.hbd_senders = v as u32;
                return true;
            }
            _ => return false,
        };
        *slot = v;
        true
    }
}

/// `ival_upgrade_check` when neither work nor conf sets it.
pub const UPGRADE_CHECK: f64 = 60.0;

fn default_upgrade_check() -> f64 {
    UPGRADE_CHECK
}

fn is_default_upgrade_check(v: &f64) -> bool {
    *v == UPGRADE_CHECK
}

/// `hbd_senders` when neither work nor conf sets it.
pub const HBD_SENDERS: u32 = 64;

fn default_hbd_senders() -> u32 {
    HBD_SENDERS
}

fn is_default_hbd_senders(n: &u32) -> bool {
    *n == HBD_SENDERS
}

impl Default for Intervals {
    fn default() -> Self {
        Intervals {
            heartbeat: 10.0,
            make_state: 60.0,
            send_report: 300.0,
            check_work: 600.0,
            keep_events: 4.0 * 7.0 * 86400.0,
            keep_history: 0.0,
            renotify: 3600.0,
            grace: 5.0,
            missed: 3,
            server_dead: 50.0,
            deadman: 60.0,
            phi_threshold: None,
            detector_tuned: true,
            hbd_senders: HBD_SENDERS,
            upgrade_check: UPGRADE_CHECK,
        }
    }
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Level {
    pub name: String,
    /// The long name (`fit_level crit critical`); equals `name` when not given.
    pub long: String,
}

/// Nagios exit code -> level name.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct NagiosMap {
    pub ok: String,
    pub warning: String,
    pub critical: String,
    pub unknown: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Item {
    /// The item name, e.g. `disk_used:/var`, `nagios:check_load`, `probe:mdraid`.
    pub name: String,
    pub probe: ProbeSpec,
    /// The fitness function that applies (most specific wins), if any.
    pub fit: Option<Fitness>,
    /// Seconds before an external probe is killed.
    pub timeout: f64,
    /// Fits for the items this one's program makes (`NAME.label` perfdata
    /// of `nagios:NAME`, `NAME.item` lines of `probe:NAME`), by the item
    /// name the fit line was written for (additive: absent in older works).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub family: BTreeMap<String, Fitness>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ProbeSpec {
    /// Computed in-process; the item name says what (`cpu_load`, `disk_used:/`).
    Builtin,
    /// A Nagios-compatible plugin: argv[0] and its arguments.
    Nagios { argv: Vec<String> },
    /// An executable in `$vardir/probes/` printing `item value [message]` lines.
    External {
        program: String,
        /// Arguments from the `probe` line (additive: absent in older works).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = "==")]
    Eq,
    #[serde(rename = "!=")]
    Ne,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Rule {
    /// The level this condition gives when it holds.
    pub level: String,
    pub op: Op,
    pub value: f64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Fitness {
    /// Which `fit` line this came from, e.g. `web:cpu_load` or `disk_used`.
    pub source: String,
    pub rules: Vec<Rule>,
    /// Consecutive samples needed before moving to a worse level (1 = at once).
    pub count: u32,
    /// Percent back inside a threshold needed to recover (0 = none).
    pub hyst: f64,
    /// Value is a Nagios exit code mapped by `nagios_map`.
    pub nagios: bool,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ServerWork {
    /// Every host of the fleet, sorted by FQDN.
    pub hosts: Vec<HostEntry>,
    /// child FQDN -> parent FQDN.
    pub parents: BTreeMap<String, String>,
    pub users: Vec<User>,
    pub ugroups: BTreeMap<String, Vec<String>>,
    pub channels: Vec<Channel>,
    pub alerts: Vec<AlertRule>,
    pub noise: Noise,
    /// Dead-man's-switch URL pinged every `intervals.deadman`.
    pub deadman_url: Option<String>,
    /// Base URL of the dashboard, for links in messages.
    pub dashboard_url: Option<String>,
    /// `upgrade_bin`: the binary UPGRADE offers instead of `$bindir/hbmon`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_bin: Option<std::path::PathBuf>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HostEntry {
    pub host: String,
    pub tag: String,
    pub address: String,
    pub ports: Ports,
    /// Groups this host is in (transitively), sorted; `all` included.
    pub groups: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct User {
    pub name: String,
    /// Names of channels in `ServerWork::channels`.
    pub channels: Vec<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Channel {
    pub name: String,
    /// `mail`, `webhook`, `command`, `syslog` or `alertmanager`.
    pub kind: String,
    /// Address, URL template or command line, by kind.
    pub target: String,
    /// `key=value` options: `min_level`, `method`, `body`, `timeout`, ...
    pub options: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct AlertRule {
    /// FQDNs the rule applies to (groups expanded).
    pub hosts: Vec<String>,
    /// Glob over item names.
    pub item: String,
    /// Alert when the new level is this or worse.
    pub level: String,
    /// User names (ugroups expanded).
    pub users: Vec<String>,
}

/// Noise control thresholds (work keys `flap N IVAL`, `storm N IVAL`).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Noise {
    pub flap_changes: u32,
    pub flap_window: f64,
    pub storm_events: u32,
    pub storm_window: f64,
}

impl Default for Noise {
    fn default() -> Self {
        Noise { flap_changes: 5, flap_window: 600.0, storm_events: 10, storm_window: 5.0 }
    }
}

/// What the pagemaker needs beyond the common part: the fleet's hosts (with
/// their groups, for per-user visibility), the dashboard's users and how
/// logins work. New fields default so older work-files still load.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct PmakerWork {
    pub title: String,
    /// Every host of the fleet, sorted by FQDN (as in `ServerWork::hosts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<HostEntry>,
    /// Dashboard users (those with a password hash in the work).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<WebUser>,
    /// Every page needs a login (otherwise read-only pages are open).
    #[serde(default)]
    pub login_required: bool,
    /// The dashboard sits behind an https proxy: cookies get `Secure`.
    #[serde(default)]
    pub secure_cookies: bool,
    /// Public base URL of the dashboard (behind a proxy), for links.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dashboard_url: Option<String>,
    /// The fitness thresholds of every host's items, for the graphs' bands.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fits: Vec<ItemFits>,
}

/// One item's thresholds on some hosts: `hosts` empty means every host
/// that has the item and is not listed in another entry for it (the
/// common case, so the pagemaker's work stays small for a big fleet).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ItemFits {
    pub item: String,
    pub rules: Vec<Rule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}

/// A dashboard login.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct WebUser {
    pub name: String,
    /// Password hash as printed by `hbmon passwd` (a PHC string).
    pub hash: String,
    /// Sees every host and may change state everywhere.
    #[serde(default)]
    pub admin: bool,
    /// Host groups this user sees (non-admins).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Hosts this user owns (sees, whatever the groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
}
