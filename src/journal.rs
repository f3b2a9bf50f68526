//! The JSONL message journal (DESIGN.md section 4, hbd's entry shape):
//! `{"timestamp","datetime","source_ip","source_port","message"}` per line,
//! size-based rotation to `NAME.YYYYMMDD-HHMMSS`, rotated files gzipped
//! (`.gz`), at most `max_backups` kept (oldest deleted first).
//!
//! Owns the writer thread and the files. The loop only calls
//! [`Journal::log`], which never blocks: entries go through a bounded
//! channel and are dropped (and counted) when it is full, so a slow disk
//! cannot stall heartbeats. Times are UTC.

use crate::error::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Entries waiting for the writer before new ones are dropped.
pub const QUEUE: usize = 65_536;

#[derive(Debug, Clone)]
pub struct JournalConf {
    /// `$journal_dir/$journal_file`.
    pub path: PathBuf,
    pub max_size: u64,
    pub max_backups: u32,
}

impl JournalConf {
    pub fn from_conf(c: &crate::conf::Conf) -> JournalConf {
        JournalConf {
            path: c.journal_path(),
            max_size: c.journal_max_size,
            max_backups: c.journal_max_backups,
        }
    }
}

/// One received message.
#[derive(Debug, Clone)]
pub struct Entry {
    pub wall: f64,
    pub from: SocketAddr,
    pub message: serde_json::Value,
}

impl Entry {
    /// The entry for a received datagram (decoded with the caller's reused
    /// decoder; the `Ingest` journal hook hands over raw bytes). None when
    /// the datagram does not decode.
    pub fn from_datagram(
        dec: &mut crate::wire::Decoder,
        bytes: &[u8],
        from: SocketAddr,
        wall: f64,
    ) -> Option<Entry> {
        let m = dec.decode(bytes).ok()?;
        Some(Entry { wall, from, message: m.to_json() })
    }
}

#[derive(Debug, Default)]
pub struct JournalStats {
    pub written: AtomicU64,
    pub dropped: AtomicU64,
    pub rotations: AtomicU64,
    pub errors: AtomicU64,
}

pub struct Journal {
    tx: Option<SyncSender<Entry>>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<JournalStats>,
}

impl Journal {
    /// Opens (creating the directory) and starts the writer thread.
    pub fn spawn(conf: JournalConf, queue: usize) -> Result<Journal> {
        if let Some(dir) = conf.path.parent() {
            fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("create journal dir {}", dir.display()), e))?;
        }
        let w = Writer::open(conf)?;
        let (tx, rx) = sync_channel(queue.max(1));
        let stats = Arc::new(JournalStats::default());
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || writer_loop(w, rx, st))
            .map_err(|e| Error::io("spawn journal thread", e))?;
        Ok(Journal { tx: Some(tx), thread: Some(thread), stats })
    }

    /// Queues an entry; never blocks. Returns false when it was dropped.
    pub fn log(&self, e: Entry) -> bool {
        let Some(tx) = &self.tx else { return false };
        match tx.try_send(e) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// STATE line: `-- journal written N dropped N rotations N errors N`.
    pub fn state_line(&self) -> String {
        stats_line(&self.stats)
    }

    /// Flushes what is queued and stops the writer.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn writer_loop(mut w: Writer, rx: Receiver<Entry>, stats: Arc<JournalStats>) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut line = String::with_capacity(512);
    loop {
        // Buffered writes; flushed after a short idle pause so a reader sees
        // whole lines soon without a syscall per entry under load.
        let e = match rx.recv_timeout(std::time::Duration::from_millis(200)) {
            Ok(e) => e,
            Err(RecvTimeoutError::Timeout) => {
                let _ = w.out.flush();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        line.clear();
        format_entry(&e, &mut line);
        match w.write_line(&line) {
            Ok(rotated) => {
                stats.written.fetch_add(1, Ordering::Relaxed);
                if rotated {
                    stats.rotations.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(err) => {
                stats.errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("journal {}: {err}", w.conf.path.display());
            }
        }
    }
    let _ = w.out.flush();
}

/// One JSON line (with the newline).
/// `-- journal written N dropped N rotations N errors N`.
pub fn stats_line(s: &JournalStats) -> String {
    format!(
        "-- journal written {} dropped {} rotations {} errors {}",
        s.written.load(Ordering::Relaxed),
        s.dropped.load(Ordering::Relaxed),
        s.rotations.load(Ordering::Relaxed),
        s.errors.load(Ordering::Relaxed)
    )
}

pub fn format_entry(e: &Entry, out: &mut String) {
    let v = serde_json::json!({
        "timestamp": (e.wall * 1000.0).round() / 1000.0,
        "datetime": crate::clock::iso_plain(e.wall),
        "source_ip": e.from.ip().to_string(),
        "source_port": e.from.port(),
        "message": e.message,
    });
    out.push_str(&v.to_string());
    out.push('\n');
}

struct Writer {
    conf: JournalConf,
    out: BufWriter<File>,
    size: u64,
}

impl Writer {
    fn open(conf: JournalConf) -> Result<Writer> {
        let f = open_append(&conf.path)
            .map_err(|e| Error::io(format!("open journal {}", conf.path.display()), e))?;
        let size = f.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(Writer { conf, out: BufWriter::new(f), size })
    }

    /// Writes a line, rotating first when it would pass `max_size`.
    fn write_line(&mut self, line: &str) -> io::Result<bool> {
        let mut rotated = false;
        if self.conf.max_size > 0
            && self.size > 0
            && self.size + line.len() as u64 > self.conf.max_size
        {
            self.rotate()?;
            rotated = true;
        }
        self.out.write_all(line.as_bytes())?;
        self.size += line.len() as u64;
        Ok(rotated)
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let now = crate::clock::Now::wall_now();
        let base = self.conf.path.clone();
        let mut target = with_suffix(&base, &crate::clock::file_stamp(now));
        let mut n = 1;
        // Two rotations within one second: keep both.
        while target.exists() || gz_of(&target).exists() {
            target = with_suffix(&base, &format!("{}-{n}", crate::clock::file_stamp(now)));
            n += 1;
        }
        fs::rename(&base, &target)?;
        self.out = BufWriter::new(open_append(&base)?);
        self.size = 0;
        gzip_file(&target)?;
        prune(&base, self.conf.max_backups as usize)
    }
}

fn open_append(p: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(p)
}

fn with_suffix(base: &Path, suffix: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".");
    s.push(suffix);
    PathBuf::from(s)
}

fn gz_of(p: &Path) -> PathBuf {
    with_suffix(p, "gz")
}

/// `p` -> `p.gz`, then removes `p`.
fn gzip_file(p: &Path) -> io::Result<()> {
    let mut input = File::open(p)?;
    let out = File::create(gz_of(p))?;
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::default());
    io::copy(&mut input, &mut enc)?;
    enc.finish()?.sync_all()?;
    fs::remove_file(p)
}

/// The rotated files of `base`, oldest first (the stamp sorts by time).
pub fn backups(base: &Path) -> io::Result<Vec<PathBuf>> {
    let dir = base.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let prefix = match base.file_name() {
        Some(n) => format!("{}.", n.to_string_lossy()),
        None => return Ok(Vec::new()),
    };
    let mut v: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect();
    v.sort();
    Ok(v)
}

fn prune(base: &Path, keep: usize) -> io::Result<()> {
    let b = backups(base)?;
    if b.len() > keep {
        for p in &b[..b.len() - keep] {
            fs::remove_file(p)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn entry(i: u64) -> Entry {
        Entry {
            wall: 1_711_629_296.123,
            from: "192.168.1.100:50003".parse().unwrap(),
            message: serde_json::json!({"ID": "HTB", "name": "webserver01", "seq": i}),
        }
    }

    #[test]
    fn entry_shape_matches_hbd() {
        let mut s = String::new();
        format_entry(&entry(1), &mut s);
        let v: serde_json::Value = serde_json::from_str(s.trim_end()).unwrap();
        assert_eq!(v["timestamp"], 1_711_629_296.123);
        assert_eq!(v["datetime"], "2024-03-28T12:34:56");
        assert_eq!(v["source_ip"], "192.168.1.100");
        assert_eq!(v["source_port"], 50003);
        assert_eq!(v["message"]["name"], "webserver01");
        assert!(s.ends_with('\n'));
    }

    #[test]
    fn entry_from_datagram() {
        let d = crate::wire::encode("HTB", &[("name", crate::wire::Value::Str("w".into()))]);
        let mut dec = crate::wire::Decoder::new();
        let from = "127.0.0.1:5".parse().unwrap();
        let e = Entry::from_datagram(&mut dec, &d, from, 1.0).unwrap();
        assert_eq!(e.message, serde_json::json!({"ID": "HTB", "name": "w"}));
        assert!(Entry::from_datagram(&mut dec, b"junk", from, 1.0).is_none());
    }

    #[test]
    fn rotates_gzips_and_keeps_max_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.journal");
        let conf = JournalConf { path: path.clone(), max_size: 1000, max_backups: 2 };
        let j = Journal::spawn(conf, 10_000).unwrap();
        for i in 0..200 {
            assert!(j.log(entry(i)));
        }
        let stats = j.stats.clone();
        j.close();
        assert_eq!(stats.written.load(Ordering::Relaxed), 200);
        assert!(stats.rotations.load(Ordering::Relaxed) >= 10);
        let b = backups(&path).unwrap();
        assert_eq!(b.len(), 2, "{b:?}");
        let name = b[0].file_name().unwrap().to_string_lossy().to_string();
        assert!(name.starts_with("messages.journal.2") && name.ends_with(".gz"), "{name}");
        let mut text = String::new();
        flate2::read::GzDecoder::new(File::open(&b[1]).unwrap()).read_to_string(&mut text).unwrap();
        assert!(text.lines().count() >= 3);
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
        // The newest entries are in the live file, and it is under the limit.
        let live = fs::read_to_string(&path).unwrap();
        assert!(live.len() <= 1000);
        assert!(live.contains("\"seq\":199"));
    }

    #[test]
    fn full_queue_drops_and_counts() {
        let dir = tempfile::tempdir().unwrap();
        let conf = JournalConf { path: dir.path().join("j"), max_size: 0, max_backups: 1 };
        let j = Journal::spawn(conf, 1).unwrap();
        let mut dropped = 0;
        for i in 0..10_000 {
            if !j.log(entry(i)) {
                dropped += 1;
            }
        }
        // A queue of one cannot take 10,000 entries as fast as they come.
        assert!(dropped > 0);
        assert_eq!(j.stats.dropped.load(Ordering::Relaxed), dropped);
        let stats = j.stats.clone();
        j.close();
        assert_eq!(stats.written.load(Ordering::Relaxed) + dropped, 10_000);
        assert!(Journal::spawn(
            JournalConf { path: dir.path().join("j"), max_size: 0, max_backups: 1 },
            1
        )
        .unwrap()
        .state_line()
        .starts_with("-- journal written 0 dropped 0"));
    }
}
