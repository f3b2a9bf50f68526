//! Inline probes against the literal fixture tree in `tests/fixtures/proc`
//! (and copies of it in temp dirs where a counter must move).

use super::*;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/proc")
}

fn probes() -> Inline {
    Inline::with_roots(fixture().join("proc"), fixture().join("sys"))
}

fn value(s: &Sample) -> f64 {
    assert_eq!(s.error, None, "{s:?}");
    s.value.unwrap_or(f64::NAN)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

#[test]
fn load_mem_swap_uptime() {
    let mut p = probes();
    assert_eq!(value(&p.sample("cpu_load", 0.0)), 1.25);
    // 8 GB total, 2 GB available + 1 GB of ARC above c_min -> 5 of 8 used.
    let mem = p.sample("mem_used", 0.0);
    assert!(close(value(&mem), 62.5), "{mem:?}");
    assert!(mem.message.contains("ZFS"));
    assert!(close(value(&p.sample("swap_used", 0.0)), 25.0));
    assert_eq!(value(&p.sample("uptime", 0.0)), 86400.5);
}

#[test]
fn cpu_pct_first_sample_is_since_boot_then_deltas() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join("proc/stat"), dir.path().join("stat")).unwrap();
    let mut p = Inline::with_roots(dir.path(), fixture().join("sys"));
    let first = p.sample("cpu_pct", 0.0);
    assert!(close(value(&first), 40.0), "{first:?}");
    assert_eq!(first.message, "average since boot");
    // +100 busy, +300 idle jiffies -> 25 %.
    std::fs::write(dir.path().join("stat"), "cpu  3075 0 1025 5300 1000 0 0 0 0 0\n").unwrap();
    let second = p.sample("cpu_pct", 60.0);
    assert!(close(value(&second), 25.0), "{second:?}");
    assert_eq!(second.message, "");
}

#[test]
fn process_counts() {
    let mut p = probes();
    assert_eq!(value(&p.sample("procs", 0.0)), 4.0);
    // pid 43 has no comm file (pre-2.6.33 kernel): its stat names it.
    assert_eq!(value(&p.sample("proc:sshd", 0.0)), 2.0);
    assert_eq!(value(&p.sample("proc:systemd", 0.0)), 1.0);
    assert_eq!(value(&p.sample("proc:my (odd) prog", 0.0)), 1.0);
    assert_eq!(value(&p.sample("proc:nginx", 0.0)), 0.0);
}

#[test]
fn net_rates_from_sys_then_proc_fallback() {
    let mut p = probes();
    // sysfs wins when present (its counter differs from /proc/net/dev on purpose).
    assert!(close(value(&p.sample("net_rx:eth0", 100.0)), 4_320_000.0 / 86400.5));
    assert!(close(value(&p.sample("net_tx:eth0", 100.0)), 2_160_000.0 / 86400.5));
    // eth1 has no sysfs entry: /proc/net/dev.
    assert!(close(value(&p.sample("net_rx:eth1", 100.0)), 17_280_000.0 / 86400.5));
    // Same counters 10 s later: nothing moved.
    assert_eq!(value(&p.sample("net_rx:eth0", 110.0)), 0.0);
    let missing = p.sample("net_rx:wlan9", 100.0);
    assert_eq!(missing.value, None);
    assert!(missing.error.unwrap().contains("wlan9"));
}

#[test]
fn net_rate_delta_and_counter_reset() {
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("sys/class/net/eth0/statistics");
    std::fs::create_dir_all(&stats).unwrap();
    std::fs::create_dir_all(dir.path().join("proc")).unwrap();
    std::fs::copy(fixture().join("proc/uptime"), dir.path().join("proc/uptime")).unwrap();
    let mut p = Inline::with_roots(dir.path().join("proc"), dir.path().join("sys"));
    std::fs::write(stats.join("rx_bytes"), "1000000\n").unwrap();
    p.sample("net_rx:eth0", 10.0);
    std::fs::write(stats.join("rx_bytes"), "1500000\n").unwrap();
    assert!(close(value(&p.sample("net_rx:eth0", 15.0)), 100_000.0));
    // The counter went back (driver reload): count from zero.
    std::fs::write(stats.join("rx_bytes"), "2000\n").unwrap();
    assert!(close(value(&p.sample("net_rx:eth0", 17.0)), 1000.0));
}

#[test]
fn failures_are_samples_not_panics() {
    let mut p = Inline::with_roots("/nonexistent/hbmon/proc", "/nonexistent/hbmon/sys");
    for item in ["cpu_load", "cpu_pct", "mem_used", "swap_used", "uptime", "procs", "net_tx:eth0"] {
        let s = p.sample(item, 0.0);
        assert_eq!(s.item, item);
        assert_eq!(s.value, None, "{item}");
        assert!(s.error.is_some(), "{item}");
    }
    let s = probes().sample("tcp:x:1", 0.0);
    assert!(s.error.unwrap().contains("not an inline probe"));
    assert!(probes().sample("net_rx:../x", 0.0).error.is_some());
}

#[test]
fn disk_items() {
    let mut p = probes();
    let used = value(&p.sample("disk_used:/", 0.0));
    assert!((0.0..=100.0).contains(&used));
    assert!(value(&p.sample("disk_avail:/", 0.0)) >= 0.0);
    // Not a mount point: reports the filesystem it lives on.
    assert!(value(&p.sample("inode_used:/tmp", 0.0)) >= 0.0);
    assert!(p.sample("disk_used:/no/such/dir", 0.0).error.is_some());
}

#[test]
fn one_proc_scan_per_round() {
    let dir = tempfile::tempdir().unwrap();
    let add = |pid: u32, comm: &str| {
        let d = dir.path().join(pid.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("comm"), format!("{comm}\n")).unwrap();
    };
    add(10, "nginx");
    add(11, "nginx");
    let mut p = Inline::with_roots(dir.path(), dir.path());
    assert_eq!(value(&p.sample("proc:nginx", 1.0)), 2.0);
    add(12, "nginx");
    add(13, "redis-server");
    // Same round: the scan is reused.
    assert_eq!(value(&p.sample("proc:nginx", 1.0)), 2.0);
    assert_eq!(value(&p.sample("proc:redis-server", 1.0)), 0.0);
    // Next round: scanned again.
    assert_eq!(value(&p.sample("proc:nginx", 2.0)), 3.0);
    assert_eq!(value(&p.sample("proc:redis-server", 2.0)), 1.0);
    assert_eq!(value(&p.sample("procs", 2.0)), 4.0);
}

#[test]
fn disk_arithmetic() {
    let d = DiskStat { blocks: 1000, bfree: 300, bavail: 250, frsize: 4096, files: 100, ffree: 25 };
    // 700 used of 950 usable.
    assert!((d.used_pct() - 700.0 / 950.0 * 100.0).abs() < 1e-9);
    assert!((d.avail_gib() - 250.0 * 4096.0 / 1073741824.0).abs() < 1e-12);
    assert_eq!(d.inode_pct(), Some(75.0));
    let empty = DiskStat { blocks: 0, bfree: 0, bavail: 0, frsize: 4096, files: 0, ffree: 0 };
    assert_eq!(empty.used_pct(), 0.0);
    assert_eq!(empty.inode_pct(), None);
}

#[test]
fn disk_real_root_and_missing_path() {
    let (v, _) = disk("/", DiskWhat::UsedPct).unwrap();
    assert!((0.0..=100.0).contains(&v));
    assert!(disk("/no/such/mount/hbmon", DiskWhat::UsedPct).unwrap_err().contains("statvfs"));
    assert!(disk("relative", DiskWhat::AvailGib).is_err());
}
