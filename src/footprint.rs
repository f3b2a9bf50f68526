//! The daemon's resident code (issue 18): start-up (argument, conf and
//! work parsing, migrations) touches much of the binary once, and the
//! kernel's fault-around maps neighbouring pages too, so a plain client
//! kept nearly the whole binary resident. Once the daemon has settled,
//! [`trim_code`] drops our executable's code pages from this process's
//! page tables (they stay in the page cache) and marks the mapping
//! random-access, so only the pages the steady state runs come back, one
//! at a time.
//!
//! Only the executable's `r-xp` mappings are touched: text is never written
//! (no text relocations), so dropping and re-faulting it from the file is
//! exact. Data, relro (relocated, so private) and libraries are left alone.

/// Seconds after the start at which the loop trims (start-up is over: the
/// first round and heartbeats have run).
pub const TRIM_AFTER: f64 = 30.0;

/// Drops the executable's code pages from the working set; returns the
/// bytes of mapping advised (0 where unsupported).
pub fn trim_code() -> usize {
    #[cfg(target_os = "linux")]
    {
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else { return 0 };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else { return 0 };
        let mut done = 0;
        for (start, end) in code_ranges(&maps, &exe.to_string_lossy()) {
            let len = end - start;
            // SAFETY: the range is a whole mapping of our own executable's
            // text, read from /proc/self/maps; MADV_DONTNEED on a private
            // file mapping that was never written only drops page-table
            // entries (the next access faults the same bytes back in).
            unsafe {
                let p = start as *mut libc::c_void;
                if libc::madvise(p, len, libc::MADV_RANDOM) == 0
                    && libc::madvise(p, len, libc::MADV_DONTNEED) == 0
                {
                    done += len;
                }
            }
        }
        done
    }
    #[cfg(not(target_os = "linux"))]
    0
}

/// The `r-xp` mappings of `exe` in a /proc/PID/maps text.
fn code_ranges(maps: &str, exe: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let range = f.next()?;
            let perms = f.next()?;
            let path = f.nth(3)?;
            if perms != "r-xp" || path != exe {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            let (a, b) = (usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?);
            (b > a).then_some((a, b))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_executables_text_is_picked() {
        let maps = "\
5600000000-5600100000 r--p 00000000 08:01 42 /usr/sbin/hbmon
5600100000-5600500000 r-xp 00100000 08:01 42 /usr/sbin/hbmon
5600500000-5600600000 r--p 00500000 08:01 42 /usr/sbin/hbmon
5600600000-5600610000 rw-p 00600000 08:01 42 /usr/sbin/hbmon
7f00000000-7f00100000 r-xp 00000000 08:01 7 /usr/lib/libc.so.6
7f00200000-7f00300000 r-xp 00000000 00:00 0
";
        assert_eq!(code_ranges(maps, "/usr/sbin/hbmon"), vec![(0x5600100000, 0x5600500000)]);
        assert!(code_ranges(maps, "/other").is_empty());
        assert!(code_ranges("garbage\n\nx-y r-xp", "/usr/sbin/hbmon").is_empty());
    }

    /// The real thing on this process: the test binary's text is trimmed
    /// and the code keeps running (it faults back in).
    #[test]
    fn trimming_our_own_text_keeps_us_running() {
        assert!(trim_code() > 0);
        let v: Vec<u64> = (0..1000).map(|i| i * i).collect();
        assert_eq!(v.iter().sum::<u64>(), 332_833_500);
        assert!(trim_code() > 0, "again, after running trimmed code");
    }
}
