//! ZAP (DESIGN.md §6): keeps the history bounded by replacing old rows by
//! bucket averages stored at the bucket start.
//!
//! Tiers by age: samples younger than an hour stay as taken (the newest
//! minute may still be filling); then 1-minute buckets up to 2 days, 10-minute
//! up to 2 weeks, 1-hour up to ~2 months (60 days), 4-hour up to a year,
//! 2-day after that; rows older than `keep_history` (when > 0) are deleted.
//! Each tier boundary is aligned on the coarser tier's width, and every width
//! divides the next, so no bucket straddles two tiers: running ZAP twice at
//! the same `now` changes nothing the second time, and only buckets holding
//! more than one row (or a row off the bucket start) are rewritten.

use super::History;
use crate::error::{Error, Result};
use rusqlite::params;

const DAY: i64 = 86400;
/// (minimum age in seconds, bucket width in seconds), by increasing age.
const TIERS: &[(i64, i64)] =
    &[(3600, 60), (2 * DAY, 600), (14 * DAY, 3600), (60 * DAY, 4 * 3600), (365 * DAY, 2 * DAY)];

/// Free pages worth giving back to the file system.
const VACUUM_MIN_FREE_PAGES: i64 = 256;

/// The `[lo, hi)` time range and bucket width of every tier at `now`.
pub(crate) fn tier_ranges(now: i64) -> Vec<(i64, i64, i64)> {
    let cuts: Vec<i64> = TIERS.iter().map(|(age, w)| (now - age).div_euclid(*w) * w).collect();
    TIERS
        .iter()
        .enumerate()
        .map(|(i, (_, w))| (cuts.get(i + 1).copied().unwrap_or(i64::MIN), cuts[i], *w))
        .collect()
}

/// The width of the stored rows at a given age once ZAP has run (samples
/// younger than the first tier are assumed about a minute apart).
pub(crate) fn stored_width(age: i64) -> i64 {
    TIERS.iter().rev().find(|(min_age, _)| age >= *min_age).map_or(TIERS[0].1, |(_, w)| *w)
}

impl History {
    /// Downsamples every row of the history, whatever earlier passes saw
    /// (the ZAP verb: asked for by a person, so thoroughness beats cost).
    pub fn zap_all(&mut self, now: f64, keep_history: f64) -> Result<(u64, u64)> {
        self.zap_cuts.clear();
        self.zap(now, keep_history)
    }

    /// Downsamples the history; answers (rows before, rows after). Scans
    /// only what entered each tier since the last pass, unless rows may
    /// have been written below the cuts by someone else.
    pub fn zap(&mut self, now: f64, keep_history: f64) -> Result<(u64, u64)> {
        let version = self.data_version()?;
        if self.zap_data_version != Some(version) {
            self.zap_cuts.clear();
        }
        let before = self.sample_count()?;
        let now = now as i64;
        if keep_history > 0.0 {
            let oldest = now - keep_history as i64;
            self.conn
                .execute(
                    "DELETE FROM samples WHERE item IN (SELECT id FROM items) AND t < ?1",
                    [oldest],
                )
                .map_err(|e| Error::db("delete history past keep_history", e))?;
        }
        self.conn
            .execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS zap(item INTEGER NOT NULL, b INTEGER NOT NULL, \
                 v REAL NOT NULL, PRIMARY KEY(item, b)) WITHOUT ROWID",
            )
            .map_err(|e| Error::db("create zap scratch table", e))?;
        let ranges = tier_ranges(now);
        for (i, (lo, hi, w)) in ranges.iter().copied().enumerate() {
            let lo = self.zap_cuts.get(i).map_or(lo, |prev| lo.max(*prev));
            if lo < hi {
                self.zap_tier(lo, hi, w)?;
            }
        }
        self.zap_cuts = ranges.iter().map(|r| r.1).collect();
        self.vacuum_if_worthwhile()?;
        self.zap_data_version = Some(self.data_version()?);
        Ok((before, self.sample_count()?))
    }

    /// Changes when another connection commits to the database (never for
    /// this connection's own writes).
    fn data_version(&self) -> Result<i64> {
        self.conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))
            .map_err(|e| Error::db("read data_version", e))
    }

    /// One tier in one transaction: the averages of buckets needing it go
    /// to a scratch table, their rows are deleted, the averages inserted.
    fn zap_tier(&mut self, lo: i64, hi: i64, w: i64) -> Result<()> {
        let tx = self.conn.transaction().map_err(|e| Error::db("begin zap", e))?;
        tx.execute("DELETE FROM temp.zap", []).map_err(|e| Error::db("clear zap scratch", e))?;
        let n = tx
            .execute(
                "INSERT INTO temp.zap(item, b, v) \
                 SELECT item, t / ?3 * ?3, avg(v) FROM samples \
                 WHERE item IN (SELECT id FROM items) AND t >= ?1 AND t < ?2 \
                 GROUP BY item, t / ?3 HAVING count(*) > 1 OR min(t) % ?3 != 0",
                params![lo, hi, w],
            )
            .map_err(|e| Error::db(format!("average {w}s buckets"), e))?;
        if n > 0 {
            tx.execute(
                "DELETE FROM samples WHERE item IN (SELECT id FROM items) \
                 AND t >= ?1 AND t < ?2 AND (item, t / ?3 * ?3) IN (SELECT item, b FROM temp.zap)",
                params![lo, hi, w],
            )
            .map_err(|e| Error::db(format!("delete {w}s bucket rows"), e))?;
            tx.execute("INSERT INTO samples(item, t, v) SELECT item, b, v FROM temp.zap", [])
                .map_err(|e| Error::db(format!("insert {w}s averages"), e))?;
            tx.execute("DELETE FROM temp.zap", [])
                .map_err(|e| Error::db("clear zap scratch", e))?;
        }
        tx.commit().map_err(|e| Error::db("commit zap", e))
    }

    /// Gives free pages back when there are enough of them to matter.
    fn vacuum_if_worthwhile(&mut self) -> Result<()> {
        let (free, total): (i64, i64) = self
            .conn
            .query_row("SELECT * FROM pragma_freelist_count, pragma_page_count", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| Error::db("read freelist_count", e))?;
        if free >= VACUUM_MIN_FREE_PAGES || (total > 0 && free * 4 > total) {
            // Stepped to the end: one step frees only one page.
            let mut st = self
                .conn
                .prepare("PRAGMA incremental_vacuum")
                .map_err(|e| Error::db("prepare incremental_vacuum", e))?;
            let mut rows = st.query([]).map_err(|e| Error::db("incremental_vacuum", e))?;
            while rows.next().map_err(|e| Error::db("incremental_vacuum", e))?.is_some() {}
            if self.conn.path().is_some_and(|p| !p.is_empty()) {
                self.checkpoint()?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(h: &History) -> Vec<(i64, f64)> {
        let mut st = h.conn.prepare("SELECT t, v FROM samples ORDER BY item, t").unwrap();
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn tier_ranges_are_aligned_and_contiguous() {
        let now = 1_800_000_123;
        let r = tier_ranges(now);
        assert_eq!(r.len(), 5);
        for (i, (lo, hi, w)) in r.iter().enumerate() {
            assert_eq!(hi % w, 0);
            if i + 1 < r.len() {
                assert_eq!(*lo, r[i + 1].1, "tier {i} starts where the older one ends");
                assert_eq!(lo % w, 0);
            }
            assert!(lo < hi);
        }
        assert_eq!(r[0].1, (now - 3600) / 60 * 60);
        assert_eq!(r[4].0, i64::MIN);
    }

    #[test]
    fn each_tier_averages_into_its_bucket_width() {
        let now: i64 = 400 * DAY; // a multiple of every width
        let mut h = History::open_in_memory().unwrap();
        let mut s = vec![];
        // Two samples in each of: recent (raw), 1-min, 10-min, 1-h, 4-h, 2-day tiers.
        for age in [600, 3 * 3600, 3 * DAY, 20 * DAY, 100 * DAY, 380 * DAY] {
            let t = now - age;
            s.push((t + 1, 1.0));
            s.push((t + 20, 3.0));
        }
        h.insert_series("x", &s).unwrap();
        let (before, after) = h.zap(now as f64, 0.0).unwrap();
        assert_eq!((before, after), (12, 7));
        let got = rows(&h);
        let want_bucket = |age: i64, w: i64| (now - age + 1) / w * w;
        assert_eq!(
            got,
            vec![
                (want_bucket(380 * DAY, 2 * DAY), 2.0),
                (want_bucket(100 * DAY, 4 * 3600), 2.0),
                (want_bucket(20 * DAY, 3600), 2.0),
                (want_bucket(3 * DAY, 600), 2.0),
                (want_bucket(3 * 3600, 60), 2.0),
                (now - 600 + 1, 1.0),
                (now - 600 + 20, 3.0),
            ]
        );
    }

    #[test]
    fn zap_is_idempotent_and_keeps_recent_rows() {
        let now: i64 = 1_700_000_000;
        let mut h = History::open_in_memory().unwrap();
        let s: Vec<(i64, f64)> = (0..(20 * DAY / 30)).map(|i| (now - i * 30, i as f64)).collect();
        h.insert_series("a", &s).unwrap();
        h.insert_series("b", &s).unwrap();
        let (_, after) = h.zap(now as f64, 0.0).unwrap();
        let first = rows(&h);
        assert_eq!(h.zap(now as f64, 0.0).unwrap(), (after, after));
        assert_eq!(rows(&h), first);
        // The last hour (121 samples at 30 s, inclusive of now) is untouched.
        let recent = first.iter().filter(|(t, _)| *t > now - 3600).count();
        assert_eq!(recent, 2 * 120);
    }

    #[test]
    fn averages_survive_a_later_zap_into_a_coarser_tier() {
        let mut h = History::open_in_memory().unwrap();
        // One hour of 1-min samples 1..=60, 3 days before t0.
        let base = 100 * DAY - 3 * DAY;
        let s: Vec<(i64, f64)> = (0..60).map(|i| (base + i * 60, (i + 1) as f64)).collect();
        h.insert_series("x", &s).unwrap();
        h.zap((100 * DAY) as f64, 0.0).unwrap();
        assert_eq!(h.sample_count().unwrap(), 6); // 10-min buckets
        h.zap((120 * DAY) as f64, 0.0).unwrap(); // now 23 days old: 1-h tier
        assert_eq!(rows(&h), vec![(base, 30.5)]);
    }

    #[test]
    fn a_later_zap_scans_only_rows_new_to_a_tier_and_agrees_with_a_full_one() {
        let now: i64 = 1_700_000_000;
        let s: Vec<(i64, f64)> =
            (0..(30 * DAY / 60)).map(|i| (now - i * 60, (i % 7) as f64)).collect();
        let mut inc = History::open_in_memory().unwrap();
        inc.insert_series("x", &s).unwrap();
        inc.zap(now as f64, 0.0).unwrap();
        let later = now + 5 * 3600 + 17;
        let mut t = now;
        while t < later {
            t += 60;
            inc.insert_round(t as f64, &[("x", (t % 5) as f64)]).unwrap();
        }
        inc.zap(later as f64, 0.0).unwrap();
        assert_eq!(inc.zap_cuts.len(), TIERS.len());
        // The same data and ZAPs, the second one scanning every tier fully.
        let mut full = History::open_in_memory().unwrap();
        full.insert_series("x", &s).unwrap();
        full.zap(now as f64, 0.0).unwrap();
        let r: Vec<(i64, f64)> = (1..=(later - now + 59) / 60)
            .map(|k| now + k * 60)
            .map(|t| (t, (t % 5) as f64))
            .collect();
        full.insert_series("x", &r).unwrap();
        assert!(full.zap_cuts.is_empty());
        full.zap(later as f64, 0.0).unwrap();
        let (a, b) = (rows(&inc), rows(&full));
        let diff: Vec<_> = a.iter().zip(&b).filter(|(x, y)| x != y).take(3).collect();
        assert!(diff.is_empty() && a.len() == b.len(), "{} vs {}: {diff:?}", a.len(), b.len());
    }

    /// Rows written below the last pass's cuts by another connection (an
    /// import, sqlite3) are downsampled by the next ZAP, and by ZAP_all.
    #[test]
    fn rows_older_than_the_last_pass_are_downsampled_12_13() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.db");
        let now: i64 = 1_700_000_000 / 86400 * 86400;
        let mut h = History::open(&p).unwrap();
        h.insert_round((now - 10) as f64, &[("x", 1.0)]).unwrap();
        h.zap(now as f64, 0.0).unwrap();
        assert!(!h.zap_cuts.is_empty(), "the first pass set its cuts");
        // Ten rows inside one 1-minute bucket three hours ago, one 10-minute
        // bucket three days ago, from another connection.
        let other = rusqlite::Connection::open(&p).unwrap();
        for base in [now - 3 * 3600, now - 3 * DAY] {
            for i in 0..10 {
                other
                    .execute(
                        "INSERT INTO samples(item, t, v) SELECT id, ?1, ?2 FROM items WHERE name='x'",
                        params![base + i * 5, i as f64],
                    )
                    .unwrap();
            }
        }
        drop(other);
        let (before, after) = h.zap((now + 60) as f64, 0.0).unwrap();
        assert_eq!((before, after), (21, 3), "{:?}", rows(&h));
        assert!(rows(&h).contains(&(now - 3 * 3600, 4.5)), "{:?}", rows(&h));
        // The verb's full pass finds rows this connection wrote below the cuts.
        h.conn
            .execute(
                "INSERT INTO samples(item, t, v) SELECT id, ?1, 7 FROM items WHERE name='x'",
                params![now - 3 * 3600 + 30],
            )
            .unwrap();
        assert_eq!(h.zap_all((now + 60) as f64, 0.0).unwrap(), (4, 3));
    }

    #[test]
    fn keep_history_deletes_old_rows() {
        let mut h = History::open_in_memory().unwrap();
        h.insert_series("x", &[(0, 1.0), (50 * DAY, 2.0), (99 * DAY, 3.0)]).unwrap();
        let (before, after) = h.zap((100 * DAY) as f64, 30.0 * DAY as f64).unwrap();
        assert_eq!((before, after), (3, 1));
    }

    #[test]
    fn vacuum_gives_pages_back_on_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("history.db");
        let mut h = History::open(&p).unwrap();
        let s: Vec<(i64, f64)> = (0..200_000).map(|i| (i * 60, i as f64)).collect();
        h.insert_series("x", &s).unwrap();
        h.checkpoint().unwrap();
        let big = std::fs::metadata(&p).unwrap().len();
        h.zap((200_000 * 60) as f64, 0.0).unwrap();
        let small = std::fs::metadata(&p).unwrap().len();
        assert!(small * 4 < big, "{big} -> {small}");
    }
}
