//! Noise control bookkeeping: flap detection per host-item and storm
//! detection per user. In memory only (a restart forgets recent history,
//! which at worst lets one extra notice through). Pure: times in, verdicts out.
//!
//! Defaults (`Noise` in the work): flapping = more than 5 level changes in
//! 600 s; settles after a full window without a change. Storm = more than 10
//! events for one user within 5 s; the first 10 go out at once, the rest are
//! held until the storm window passes quietly and then merged into one digest
//! per user and channel.

use std::collections::{BTreeMap, VecDeque};

#[derive(Default, Debug)]
pub struct Flaps {
    changes: BTreeMap<(String, String), VecDeque<f64>>,
}

impl Flaps {
    /// Records a level change; true if the item now has more than `max`
    /// changes within `window`.
    pub fn change(&mut self, key: (String, String), now: f64, max: u32, window: f64) -> bool {
        let q = self.changes.entry(key).or_default();
        q.push_back(now);
        while q.front().is_some_and(|&t| t <= now - window) {
            q.pop_front();
        }
        q.len() > max as usize
    }

    /// True when the item has had no change within `window` before `now`.
    pub fn settled(&self, key: &(String, String), now: f64, window: f64) -> bool {
        self.changes.get(key).and_then(|q| q.back()).is_none_or(|&t| t <= now - window)
    }

    /// When the item will count as settled.
    pub fn settles_at(&self, key: &(String, String), window: f64) -> Option<f64> {
        self.changes.get(key).and_then(|q| q.back()).map(|t| t + window)
    }

    pub fn forget(&mut self, key: &(String, String)) {
        self.changes.remove(key);
    }
}

#[derive(Default, Debug)]
pub struct Storms {
    events: BTreeMap<String, VecDeque<f64>>,
    /// User -> when its storm ends (extended by every held event).
    pub until: BTreeMap<String, f64>,
}

impl Storms {
    /// Records one event for `user`; true if it must be held for a digest.
    pub fn hold(&mut self, user: &str, now: f64, max: u32, window: f64) -> bool {
        let q = self.events.entry(user.to_string()).or_default();
        q.push_back(now);
        while q.front().is_some_and(|&t| t <= now - window) {
            q.pop_front();
        }
        if q.len() > max as usize || self.until.get(user).is_some_and(|&u| u > now) {
            self.until.insert(user.to_string(), now + window);
            true
        } else {
            false
        }
    }

    /// Users whose storm is over at `now` (removed from `until`).
    pub fn ended(&mut self, now: f64) -> Vec<String> {
        let done: Vec<String> =
            self.until.iter().filter(|(_, &u)| u <= now).map(|(k, _)| k.clone()).collect();
        for u in &done {
            self.until.remove(u);
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flapping_after_more_than_n_changes_in_window() {
        let mut f = Flaps::default();
        let k = ("h".to_string(), "i".to_string());
        let v: Vec<bool> = (0..6).map(|i| f.change(k.clone(), 100.0 + i as f64, 5, 60.0)).collect();
        assert_eq!(v, vec![false, false, false, false, false, true]);
        assert!(!f.settled(&k, 150.0, 60.0));
        assert!(f.settled(&k, 165.0, 60.0));
        // Changes spread wider than the window never flap.
        let k2 = ("h".to_string(), "j".to_string());
        assert!((0..20).all(|i| !f.change(k2.clone(), i as f64 * 20.0, 5, 60.0)));
    }

    #[test]
    fn storm_holds_after_n_and_ends_after_quiet_window() {
        let mut s = Storms::default();
        let held: Vec<bool> =
            (0..5).map(|i| s.hold("ann", 10.0 + i as f64 * 0.1, 3, 5.0)).collect();
        assert_eq!(held, vec![false, false, false, true, true]);
        assert!(s.ended(12.0).is_empty());
        assert_eq!(s.ended(15.5), vec!["ann".to_string()]);
        assert!(!s.hold("ann", 30.0, 3, 5.0));
    }

    #[test]
    fn flapping_lasts_while_changes_keep_coming_and_forget_clears_it() {
        let mut f = Flaps::default();
        let k = ("h".to_string(), "i".to_string());
        let v: Vec<bool> = (0..9).map(|i| f.change(k.clone(), 10.0 + i as f64, 2, 60.0)).collect();
        assert_eq!(v, [false, false, true, true, true, true, true, true, true]);
        // A change exactly one window after an old one no longer counts it.
        assert!(f.change(k.clone(), 70.0, 2, 60.0), "changes at 11..18 and 70 are in the window");
        assert_eq!(f.settles_at(&k, 60.0), Some(130.0), "a window after the last change");
        assert!(!f.settled(&k, 129.5, 60.0) && f.settled(&k, 130.0, 60.0));
        assert_eq!(f.settles_at(&("h".into(), "other".into()), 60.0), None);
        assert!(f.settled(&("h".into(), "other".into()), 0.0, 60.0), "never changed");
        f.forget(&k);
        assert_eq!(f.settles_at(&k, 60.0), None);
        assert!(!f.change(k.clone(), 71.0, 2, 60.0), "forgotten changes do not count");
    }

    #[test]
    fn the_window_edge_drops_old_changes_and_events() {
        let mut f = Flaps::default();
        let k = ("h".to_string(), "i".to_string());
        assert!(!f.change(k.clone(), 0.0, 1, 10.0));
        assert!(!f.change(k.clone(), 10.0, 1, 10.0), "the change at 0 left the window at 10");
        assert!(f.change(k.clone(), 19.5, 1, 10.0));
        let mut s = Storms::default();
        assert!(!s.hold("bo", 0.0, 1, 10.0));
        assert!(!s.hold("bo", 10.0, 1, 10.0), "the event at 0 left the window at 10");
        assert!(s.hold("bo", 12.0, 1, 10.0));
        assert_eq!(s.until.get("bo"), Some(&22.0), "held: the storm lasts a window more");
        assert!(s.hold("bo", 21.9, 5, 10.0), "held while the storm lasts, whatever the count");
        assert_eq!(s.until.get("bo"), Some(&31.9));
        assert!(!s.hold("bo", 31.9, 5, 10.0), "the storm is over at its end");
        assert!(s.ended(31.9).contains(&"bo".to_string()));
        assert!(!s.hold("cy", 31.9, 5, 10.0), "another user is not in bo's storm");
    }
}
