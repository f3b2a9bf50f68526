//! mkwork on a generated 10,000-host work-config: median wall time of a few
//! runs (fresh output dir, then an unchanged re-run) and peak RSS.
//! Run: `cargo run --release --example bench_mkwork [HOSTS] [RUNS]`.

use hbmon::work::mkwork::{mkwork, Change, MkworkOpts};
use std::fmt::Write as _;
use std::time::Instant;

fn config(hosts: usize) -> String {
    let mut s = String::with_capacity(hosts * 64);
    s.push_str("fit_level fine\nfit_level soso\nfit_level sick\nfit_level crit\nfit_level dead\n");
    for i in 0..hosts {
        let (a, b) = ((i / 250) % 250 + 1, i % 250 + 1);
        let _ = writeln!(s, "host h{i}.example.org h{i} 127.0.{a}.{b}");
    }
    // 20 groups of 500 hosts, two supergroups, a few hundred parents.
    for g in 0..20 {
        let _ = write!(s, "group g{g}");
        for i in (g * hosts / 20)..((g + 1) * hosts / 20) {
            let _ = write!(s, " h{i}");
        }
        s.push('\n');
    }
    s.push_str("group even g0 g2 g4 g6 g8 g10 g12 g14 g16 g18\ngroup odd g1 g3 g5 g7 g9 g11 g13 g15 g17 g19\n");
    for i in 1..hosts.min(500) {
        let _ = writeln!(s, "parent h{i} h0");
    }
    s.push_str("server h0\npmaker h1\n");
    s.push_str(
        "get all cpu_load cpu_pct mem_used swap_used disk_used:/ inode_used:/ uptime procs\n",
    );
    s.push_str("get even disk_used:/var proc:sshd\nget odd http:http://127.0.0.1/health\n");
    s.push_str("nagios g3 check_load /usr/lib/nagios/plugins/check_load -w 5 -c 10\n");
    s.push_str("probe g4 mdraid\n");
    s.push_str("fit cpu_load soso >2 sick >4 crit >8\nfit even:cpu_load soso >4 sick >8\n");
    s.push_str("fit h7:cpu_load soso >8\nfit disk_used soso >80 sick >90 crit >95 hyst 2%\n");
    s.push_str("fit mem_used soso >80 sick >90 count 3\n");
    s.push_str("user alice syslog\nuser bob webhook https://hooks.example.org/x?t={TEXT}\n");
    s.push_str("ugroup ops alice bob\nalert all * sick ops\nalert odd http:* crit bob\n");
    s
}

fn peak_rss_kib() -> i64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage only writes into the struct we own.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return -1;
    }
    ru.ru_maxrss
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let hosts: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(10_000);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(3).max(1);
    let dir = tempfile::tempdir()?;
    let conf = dir.path().join("work");
    let text = config(hosts);
    std::fs::write(&conf, &text)?;
    println!("bench_mkwork: {hosts} hosts, {} KiB work-config, {runs} runs", text.len() / 1024);
    let (mut fresh, mut again, mut parse) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs {
        let out = dir.path().join(format!("works{r}"));
        let opts = MkworkOpts {
            workconf: conf.clone(),
            out,
            force: false,
            verbose: false,
            dry_run: false,
        };
        let t = Instant::now();
        let works = hbmon::work::load(&conf)?;
        parse.push(t.elapsed().as_secs_f64());
        drop(works);
        let t = Instant::now();
        let ch = mkwork(&opts)?;
        fresh.push(t.elapsed().as_secs_f64());
        assert_eq!(ch.iter().filter(|c| c.1 == Change::New).count(), hosts);
        let t = Instant::now();
        let ch = mkwork(&opts)?;
        again.push(t.elapsed().as_secs_f64());
        assert_eq!(ch.iter().filter(|c| c.1 == Change::Unchanged).count(), hosts);
    }
    let bytes: u64 = std::fs::read_dir(dir.path().join("works0"))?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("  output: {} files, {} KiB", hosts, bytes / 1024);
    println!("  parse+check+resolve only : median {:.3} s", median(parse));
    println!("  mkwork into an empty dir : median {:.3} s", median(fresh));
    println!("  mkwork, nothing changed  : median {:.3} s", median(again));
    println!("  peak RSS                 : {} MiB", peak_rss_kib() / 1024);
    Ok(())
}
