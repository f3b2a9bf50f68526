//! Work distribution on the server: each host's work-file and its version
//! (`work::version`), the WORK and WORK_LM verbs, the versions ACKs carry,
//! and the `ival_check_work` poll that notices mkwork's (or an editor's)
//! new files: the server's own means a reload in place, another host's a
//! new version in that host's ACKs.

use super::Server;
use crate::clock::Now;

use crate::effects::ServerTick;
use crate::effects::{Effects, Tick};
use crate::work::version::{self, Version};
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;

impl Server {
    /// A host's generated work-file.
    pub(super) fn work_path(&self, host: &str) -> PathBuf {
        self.works_dir.join(format!("{host}.json"))
    }

    /// A host's work version (0 when it has no work-file), as WORK,
    /// WORK_LM, REPORT answers and ACKs tell it.
    pub(super) fn work_lm(&self, host: &str) -> Version {
        version::of_file(&self.work_path(host)).unwrap_or(0)
    }

    /// Every host's work version, for the `work` field of ACKs.
    pub(super) fn set_work_lms(&mut self) {
        // The dir first: a file renamed in after this is seen by the next poll.
        self.dir_lm = version::of_file(&self.works_dir).unwrap_or(0);
        let names: Vec<String> = self.hosts.keys().cloned().collect();
        for h in names {
            let lm = self.work_lm(&h);
            self.table.set_work_lm(&h, lm);
        }
    }

    pub(super) fn schedule_check_work(&mut self, now: Now, fx: &mut Effects) {
        let g = self.chains.check_work.arm();
        let at = now.mono + self.work.intervals.check_work.max(0.5);
        fx.timer(at, Tick::Server(ServerTick::CheckWork(g)));
    }

    /// The poll of the work-files: the server's own changed (mkwork, an
    /// edit) -> a reload in place; another host's -> its ACKs say so.
    pub(super) fn check_work(&mut self, now: Now, fx: &mut Effects) {
        let own = self.work_lm(&self.host);
        if own != 0 && own != self.own_lm {
            log::info!("the work-file of {} changed (lm {own}): reloading", self.host);
            // Once per change, even if the reload then refuses the file.
            self.own_lm = own;
            fx.reload = true;
        } else if version::of_file(&self.works_dir).unwrap_or(0) != self.dir_lm {
            self.set_work_lms();
        }
        self.schedule_check_work(now, fx);
    }

    /// WORK / WORK_LM for `name` asked by `peer`: the host's work (Null
    /// when `with_work` is false or the file is unreadable) and its version.
    /// Only the host itself (or localhost) may ask.
    pub fn work_for(
        &self,
        name: &str,
        peer: IpAddr,
        local: bool,
        with_work: bool,
    ) -> Result<(Value, Version), &'static str> {
        let Some(host) = self.resolve_host(name) else { return Err("access denied") };
        if !self.speaks_for(&host, peer, local) {
            return Err("access denied");
        }
        let path = self.work_path(&host);
        // Read before the file: if mkwork replaces it in between, the client
        // sees an older version with the newer text and asks again.
        let lm = self.work_lm(&host);
        let data = match with_work {
            true => std::fs::read_to_string(&path)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .unwrap_or(Value::Null),
            false => Value::Null,
        };
        Ok((data, lm))
    }
}
