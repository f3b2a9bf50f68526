//! hbmon: a distributed host monitor. One binary; the work-file decides
//! whether a host is client, server and/or pagemaker. See DESIGN.md.

pub mod answer;
pub mod bench_daemon;
pub mod bench_udp;
pub mod cli;
pub mod client;
pub mod clock;
pub mod command;
pub mod conf;
pub mod control;
pub mod daemon;
pub mod dbfile;
pub mod effects;
pub mod error;
pub mod event;
pub mod event_loop;
pub mod footprint;
pub mod hash;
pub mod hostname;
pub mod journal;
pub mod logger;
pub mod names;
pub mod notify;
pub mod pagemaker;
pub mod passwd;
pub mod pool;
pub mod probes;
pub mod ranges;
pub mod redact;
pub mod reexec;
pub mod run;
pub mod server;
pub mod session;
pub mod state;
pub mod store;
pub mod syslog3164;
pub mod systemd;
pub mod tables;
pub mod timers;
pub mod units;
pub mod upgrade;
pub mod vardir;
pub mod verbs;
pub mod wire;
pub mod work;

/// `hbmon-<version>`, as PING and STATE show it.
pub const VERSION: &str = concat!("hbmon-", env!("CARGO_PKG_VERSION"));
