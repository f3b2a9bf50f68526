//! An UPGRADE's work for a helper thread: a server's rollout (calls to each
//! client in waves) or a client's install (fetch, check, swap). The verb
//! (`verbs/upgrade.rs`) checks and builds the task on the loop; the loop
//! hands it to a helper and answers the waiting session with its `UpgradeDone`.

use super::install::Install;
use super::Rollout;

pub enum UpgradeJob {
    Rollout(Rollout),
    Install(Box<Install>),
}

/// A job and the session (token) waiting for its answer.
pub struct UpgradeTask {
    pub token: usize,
    pub job: UpgradeJob,
}

pub struct UpgradeDone {
    pub token: usize,
    pub answer: Result<String, String>,
    /// Answer, then re-exec (the swap is done).
    pub reexec: bool,
    /// This host's new last outcome (installs).
    pub last: Option<String>,
}

pub fn run(t: UpgradeTask) -> UpgradeDone {
    let (answer, reexec) = match t.job {
        UpgradeJob::Rollout(r) => {
            return UpgradeDone {
                token: t.token,
                answer: Ok(super::rollout(r)),
                reexec: false,
                last: None,
            }
        }
        UpgradeJob::Install(j) => {
            let res = super::install::install(&j).map_err(|e| format!("refused: {e}"));
            if let Err(e) = &res {
                log::error!("upgrade to {}: {e}", j.offer.version);
                let _ = super::watch::write_state(&j.vardir, &super::watch::State::Done(e.clone()));
            }
            // A refusal is an answer, not a command error: the server lists it.
            let reexec = res.is_ok();
            (Ok(res.unwrap_or_else(|e| e)), reexec)
        }
    };
    let last = answer.clone().ok();
    UpgradeDone { token: t.token, answer, reexec, last }
}
