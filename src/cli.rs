//! The command line (clap derive) and `main`'s dispatch. The exit code is
//! decided here, once: 0 ok, 1 run-time failure, 2 bad usage or config.

use crate::conf::{Conf, LogLevel};
use crate::error::{Error, Result};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// The heading of the flags every command takes, so a command's own flags
/// stand apart from them in its --help.
const GLOBAL: &str = "Log level and conf (every command)";

/// The tail of `hbmon --help` and of hbmon(8): the command-port verbs,
/// files, exit codes and signals.
const AFTER_HELP: &str = "\
Command-port verbs (TCP 50006 on every host; one line in, a framed answer out; \
`hbmon cmd HOST VERB ...` or `echo VERB | nc -N HOST 50006`):

Every host: PING, STATE, DUMP, HIST [ival] [pnts] [host] [item...], SEND [spread], ZAP, \
WORK_RELOAD, STOP <secret>.

The server also: CLIENTS [host] [item] [n|ival], EVENTS <json>, REPORT <json>, WORK <host>, \
WORK_LM <host>, ALLPING, ALLSEND, RELAY <host> <verb...>, ACK <host> <item>, \
SILENCE <host> [item] <ival>.

HIST intervals: H hour (1-min rows), D day (10 min), W week (1 h), M month (4 h), Y year (2 d).

Files: /etc/hbmon/conf (hbmon.conf(5)), /etc/hbmon/work (hbmon-work(5)), /var/lib/hbmon \
(history.db, server.db, works/), /var/log/hbmon/hbmon.log, /run/hbmon/hbmon.{pid,lck,stp}; \
root with no conf uses these, other users ~/.local/state/hbmon.

Exit status: 0 ok, 1 run-time failure, 2 bad usage or configuration (file:line).

Signals: HUP reload, USR1 re-exec, TERM/INT clean stop.";

#[derive(Parser, Debug)]
#[command(
    name = "hbmon",
    // The same literal as crate::VERSION, so `--version` is what PING says
    // (an upgrade compares them).
    version = &crate::VERSION["hbmon-".len()..],
    about = "A distributed host monitor: client, server and pagemaker in one binary",
    long_about = "hbmon runs on every host. Its work-file decides its roles: every host is a client \
(probes items, keeps a local history, sends heartbeats and events), one is also the server, one the \
pagemaker. With no conf (no -c and no /etc/hbmon/conf) it runs a built-in solo work on \
127.0.0.1. Talk to any host with `echo STATE | nc HOST 50006` or `hbmon cmd HOST STATE`.",
    after_help = "Command-port verbs, files, exit status and signals: hbmon --help.",
    after_long_help = AFTER_HELP,
    max_term_width = 100
)]
pub struct Cli {
    /// Log nothing.
    #[arg(short = 's', long, global = true, group = "verbosity", help_heading = GLOBAL)]
    pub silent: bool,
    /// Log errors only.
    #[arg(short = 'q', long, global = true, group = "verbosity", help_heading = GLOBAL)]
    pub quiet: bool,
    /// Log what happens (info).
    #[arg(short = 'v', long, global = true, group = "verbosity", help_heading = GLOBAL)]
    pub verbose: bool,
    /// Log debugging detail.
    #[arg(short = 'd', long, global = true, group = "verbosity", help_heading = GLOBAL)]
    pub debug: bool,
    /// Log everything (trace).
    #[arg(short = 'T', long, global = true, group = "verbosity", help_heading = GLOBAL)]
    pub trace: bool,
    /// Host conf file (default /etc/hbmon/conf, else the embedded default).
    #[arg(short = 'c', long = "conf", global = true, value_name = "FILE", help_heading = GLOBAL)]
    pub conf: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the daemon (in the background unless -i).
    Start {
        /// Stay in the foreground, logging to stderr.
        #[arg(short = 'i', long)]
        interactive: bool,
    },
    /// Stop the running daemon (STOP with the secret, else SIGTERM) and wait until it is gone.
    Stop,
    /// Make the running daemon re-read its conf and work (SIGHUP).
    Reload,
    /// Stop, then start in the background.
    Restart,
    /// Print the running daemon's STATE.
    State,
    /// Check the conf and the work this host would run; print the name, roles, paths and items.
    Test,
    /// Validate the work-config and write one JSON work-file per host.
    Mkwork(MkworkArgs),
    /// On the server: clients fetch, test and swap in the server's binary, one line per client.
    Upgrade {
        /// Upgrade even a client already at the offered version.
        #[arg(short = 'f', long)]
        force: bool,
        /// Upgrade N clients first; the rest only if those come back.
        #[arg(long, value_name = "N")]
        canary: Option<usize>,
        /// The clients (default: all).
        hosts: Vec<String>,
    },
    /// (internal) Watch a just-upgraded daemon; roll it back if it does not come up.
    #[command(hide = true)]
    UpgradeWatch {
        #[arg(num_args = 5..=6)]
        args: Vec<String>,
    },
    /// Send one command to a host's command port and print the answer.
    Cmd {
        /// HOST, HOST:PORT or [V6]:PORT (default port: this host's command port).
        host: String,
        /// The command and its arguments, e.g. STATE or HIST D.
        #[arg(required = true, num_args = 1.., trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// The fleet as a table: every host's reachability, RTT, uptime, last
    /// report and worst level (server); with HOST also its items.
    Clients {
        /// One host (tag or FQDN): its row and its items with units.
        host: Option<String>,
    },
    /// A host's history as a table (server, or the host itself).
    Hist {
        /// The host, by tag or FQDN.
        host: String,
        /// [ITEM] [IVAL]: one item (default: all), and the span H (hour,
        /// default), D (day), W (week), M (month) or Y (year).
        #[arg(num_args = 0..=2)]
        rest: Vec<String>,
    },
    /// Recent events as a table (server): [HOST] [ITEM] [N or IVAL], as CLIENTS takes them.
    Events {
        /// Any of: a host, an item, a count (last N, default 100) or an interval (1h).
        #[arg(num_args = 0..=3)]
        filter: Vec<String>,
    },
    /// Acknowledge an alert on the server (no more reminders until it recovers).
    Ack {
        /// The host, by tag or FQDN, as the work names it.
        host: String,
        /// The alerting item, e.g. disk_used:/ or heartbeat.
        item: String,
    },
    /// Silence a host (or one item of it) for an interval, e.g. `hbmon silence www1 2h`.
    Silence {
        /// The host, by tag or FQDN, as the work names it.
        host: String,
        /// ITEM IVAL, or just IVAL for the whole host; IVAL is an interval
        /// spec such as 30m, 2h or 1d+12h.
        #[arg(required = true, num_args = 1..=2)]
        rest: Vec<String>,
    },
    /// Print the work-config line giving USER a dashboard login: reads the password from the
    /// terminal (no echo, asked twice) or one line of stdin, hashes it with argon2id.
    Passwd {
        /// The user's name, as on their `user` line.
        user: String,
    },
    /// Load generators for benchmarks.
    #[command(subcommand)]
    Bench(BenchCmd),
}

#[derive(Args, Debug)]
pub struct MkworkArgs {
    /// The work-config (default: conf `workconf`, /etc/hbmon/work).
    #[arg(short = 'w', long = "work", value_name = "FILE")]
    pub work: Option<PathBuf>,
    /// Output directory (default $vardir/works).
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Rewrite every file, changed or not.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// Dry run: print what would change, write nothing.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
}

#[derive(Subcommand, Debug)]
pub enum BenchCmd {
    /// Send real HTB heartbeats as N distinct hosts at a rate; report loss and server CPU.
    Udp {
        /// The server's heartbeat address (ADDR:PORT).
        #[arg(long)]
        to: String,
        /// The server's command port (ADDR:PORT) to ask what it received (default: ADDR and port 50006).
        #[arg(long)]
        cmd: Option<String>,
        #[arg(long, default_value_t = 1000)]
        hosts: u32,
        /// Datagrams per second in all.
        #[arg(long, default_value_t = 10000)]
        rate: u64,
        #[arg(long, default_value_t = 5.0)]
        secs: f64,
        /// Sender threads.
        #[arg(long, default_value_t = 1)]
        procs: u32,
        /// `hbd`: HTBs without the `ack` field (each one ACKed); `hbmon`: one
        /// in 4 per host asks for an ACK, as an hbmon client's do.
        #[arg(long, default_value = "hbd")]
        style: crate::bench_udp::AckStyle,
    },
}

impl Cli {
    /// The log level the flags ask for, if any.
    pub fn log_level(&self) -> Option<LogLevel> {
        Some(if self.silent {
            LogLevel::Silent
        } else if self.quiet {
            LogLevel::Quiet
        } else if self.verbose {
            LogLevel::Verbose
        } else if self.debug {
            LogLevel::Debug
        } else if self.trace {
            LogLevel::Trace
        } else {
            return None;
        })
    }

    /// The conf with the command-line overrides applied.
    pub fn conf(&self) -> Result<Conf> {
        let mut c = crate::conf::load(self.conf.as_deref())?;
        if let Some(l) = self.log_level() {
            c.loglvl = l;
        }
        Ok(c)
    }
}

pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hbmon: {e}");
            e.exit_code()
        }
    }
}

fn run(cli: &Cli) -> Result<i32> {
    use crate::control;
    match &cli.command {
        Command::Start { interactive } => crate::run::start(cli.conf()?, *interactive).map(|_| 0),
        Command::Stop => control::stop(&cli.conf()?),
        Command::Reload => control::reload(&cli.conf()?),
        Command::Restart => {
            let conf = cli.conf()?;
            control::stop(&conf)?;
            crate::run::start(conf, false).map(|_| 0)
        }
        Command::State => control::local_command(&cli.conf()?, "STATE"),
        Command::Test => {
            control::test(&cli.conf()?, cli.log_level().is_some_and(|l| l >= LogLevel::Verbose))
        }
        Command::Mkwork(a) => {
            let conf = cli.conf()?;
            let opts = crate::work::mkwork::MkworkOpts {
                workconf: a.work.clone().unwrap_or_else(|| conf.workconf.clone()),
                out: a.out.clone().unwrap_or_else(|| conf.works_dir()),
                force: a.force,
                verbose: cli.verbose,
                dry_run: a.dry_run,
            };
            control::mkwork(&conf, &opts)
        }
        Command::Upgrade { force, canary, hosts } => {
            let mut line = String::from("UPGRADE");
            if *force {
                line.push_str(" -f");
            }
            if let Some(n) = canary {
                line.push_str(&format!(" --canary {n}"));
            }
            for h in hosts {
                line.push(' ');
                line.push_str(h);
            }
            control::long_command(&cli.conf()?, &line)
        }
        Command::UpgradeWatch { args } => {
            Ok(crate::upgrade::watch::watch(cli.conf.as_deref(), args))
        }
        Command::Cmd { host, command } => control::cmd(&cli.conf()?, host, &command.join(" ")),
        Command::Clients { host } => control::clients_table(&cli.conf()?, host.as_deref()),
        Command::Hist { host, rest } => control::hist_table(&cli.conf()?, host, rest),
        Command::Events { filter } => control::events_table(&cli.conf()?, filter),
        Command::Ack { host, item } => {
            control::local_command(&cli.conf()?, &format!("ACK {host} {item}"))
        }
        Command::Silence { host, rest } => {
            control::local_command(&cli.conf()?, &format!("SILENCE {host} {}", rest.join(" ")))
        }
        Command::Passwd { user } => crate::passwd::run(user),
        Command::Bench(BenchCmd::Udp { to, cmd, hosts, rate, secs, procs, style }) => {
            let to = crate::work::addr::parse_host_port(to, 50003)
                .ok_or_else(|| Error::Usage(format!("--to {to}: not an address")))?;
            let cmd = match cmd {
                Some(c) => crate::work::addr::parse_host_port(c, 50006)
                    .ok_or_else(|| Error::Usage(format!("--cmd {c}: not an address")))?,
                None => std::net::SocketAddr::new(to.ip(), 50006),
            };
            let opts = crate::bench_udp::UdpBenchOpts {
                to,
                cmd: Some(cmd),
                hosts: *hosts,
                rate: *rate,
                secs: *secs,
                procs: *procs,
                style: *style,
            };
            println!("{}", crate::bench_udp::run(opts)?);
            Ok(0)
        }
    }
}
