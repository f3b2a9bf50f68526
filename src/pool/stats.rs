//! What the worker pool shows in STATE and DUMP: plain numbers, copied out
//! of the pool under its lock, rendered as `-- workers ...` lines. Pure; it
//! imports nothing of the crate so `state.rs` can hold a copy without
//! importing the pool back.

use std::fmt::Write;

/// One kind of job (probe, notify, upgrade, lookup).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct KindStats {
    pub kind: &'static str,
    /// Jobs of this kind running now, and the most that may run at once.
    pub busy: usize,
    pub cap: usize,
    /// Waiting for a worker, and the most that may wait.
    pub queued: usize,
    pub queue_cap: usize,
    /// Finished since start.
    pub done: u64,
    /// Failed at once because this kind's queue was full.
    pub refused: u64,
}

/// The whole pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Most worker threads (`workers`).
    pub size: usize,
    /// Worker threads alive now (started on demand, ended when idle).
    pub threads: usize,
    pub busy: usize,
    pub queued: usize,
    pub refused: u64,
    pub kinds: Vec<KindStats>,
}

impl PoolStats {
    /// `-- workers size 16 threads 3 busy 2 queued 0 refused 0`, then one
    /// line per kind.
    pub fn state_lines(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "-- workers size {} threads {} busy {} queued {} refused {}",
            self.size, self.threads, self.busy, self.queued, self.refused
        );
        for k in &self.kinds {
            let _ = writeln!(
                out,
                "-- workers {} busy {}/{} queued {}/{} done {} refused {}",
                k.kind, k.busy, k.cap, k.queued, k.queue_cap, k.done, k.refused
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_name_every_kind() {
        let s = PoolStats {
            size: 4,
            threads: 2,
            busy: 1,
            queued: 3,
            refused: 5,
            kinds: vec![KindStats {
                kind: "probe",
                busy: 1,
                cap: 3,
                queued: 3,
                queue_cap: 8,
                done: 7,
                refused: 5,
            }],
        };
        let mut out = String::new();
        s.state_lines(&mut out);
        assert_eq!(
            out,
            "-- workers size 4 threads 2 busy 1 queued 3 refused 5\n\
             -- workers probe busy 1/3 queued 3/8 done 7 refused 5\n"
        );
    }
}
