//! `hbmon mkwork`: the work-config -> one `<fqdn>.json` per host in a
//! directory, written so that a reader never sees a half-written file and a
//! bad config writes nothing. New and changed files are written into a
//! staging dir beside the output dir, then renamed into place one by one;
//! unchanged files are not touched (they keep their mtime, so clients
//! polling `WORK_LM` see no change). Files of hosts no longer in the work
//! are removed.

use crate::error::{Error, Result};
use crate::work::model::Work;
use crate::work::resolve::load;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MkworkOpts {
    pub workconf: PathBuf,
    pub out: PathBuf,
    /// Rewrite every file, changed or not.
    pub force: bool,
    /// Report unchanged files too.
    pub verbose: bool,
    /// Write nothing; report what would change.
    pub dry_run: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Change {
    New,
    Changed,
    Unchanged,
    /// A `<fqdn>.json` whose host is no longer in the work.
    Removed,
}

impl Change {
    pub fn word(self) -> &'static str {
        match self {
            Change::New => "new",
            Change::Changed => "changed",
            Change::Unchanged => "unchanged",
            Change::Removed => "removed",
        }
    }
}

/// The bytes of a host's work-file: pretty JSON plus a newline.
pub fn to_json(w: &Work) -> Result<Vec<u8>> {
    let mut v = serde_json::to_vec_pretty(w)
        .map_err(|e| Error::Runtime(format!("encoding the work of {}: {e}", w.host)))?;
    v.push(b'\n');
    Ok(v)
}

/// Runs mkwork; returns `(file name, change)` sorted by file name.
pub fn mkwork(opts: &MkworkOpts) -> Result<Vec<(String, Change)>> {
    // Every check happens here, before anything is written.
    let works = load(&opts.workconf)?;
    for w in &works {
        if w.host.contains('/') || w.host.starts_with('.') {
            return Err(Error::Runtime(format!("host name '{}' cannot be a file name", w.host)));
        }
    }
    let existing = existing_files(&opts.out)?;
    let staging = if opts.dry_run { None } else { Some(Staging::new(&opts.out)?) };
    let r = stage_all(opts, &works, &existing, staging.as_ref());
    let r = match (r, &staging) {
        (Ok(changes), Some(st)) => st.commit(&opts.out, &changes, opts.force).map(|()| changes),
        (r, _) => r,
    };
    if let Some(st) = staging {
        // Empty on success; on failure it holds the leftovers.
        let _ = std::fs::remove_dir_all(&st.dir);
    }
    r
}

/// Serialises each work, compares it with the file in place and stages it
/// if it must be written; one file's bytes in memory at a time.
fn stage_all(
    opts: &MkworkOpts,
    works: &[Work],
    existing: &BTreeMap<String, u64>,
    staging: Option<&Staging>,
) -> Result<Vec<(String, Change)>> {
    let mut changes = Vec::with_capacity(works.len() + 1);
    let mut names = std::collections::HashSet::with_capacity(works.len());
    for w in works {
        let name = format!("{}.json", w.host);
        let bytes = to_json(w)?;
        let c = match existing.get(&name) {
            None => Change::New,
            Some(len) if *len != bytes.len() as u64 => Change::Changed,
            Some(_) => {
                let p = opts.out.join(&name);
                let old = std::fs::read(&p)
                    .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
                if old == bytes {
                    Change::Unchanged
                } else {
                    Change::Changed
                }
            }
        };
        if let Some(st) = staging {
            if c != Change::Unchanged || opts.force {
                let p = st.dir.join(&name);
                // Work-files carry channel URLs with tokens: 0600 whatever the umask.
                crate::vardir::write_private(&p, &bytes)
                    .map_err(|e| Error::io(format!("writing {}", p.display()), e))?;
            }
        }
        names.insert(name.clone());
        changes.push((name, c));
    }
    for name in existing.keys().filter(|n| !names.contains(*n)) {
        changes.push((name.clone(), Change::Removed));
    }
    changes.sort();
    Ok(changes)
}

/// `*.json` in `dir` with their sizes; a missing dir has none.
fn existing_files(dir: &Path) -> Result<BTreeMap<String, u64>> {
    let mut out = BTreeMap::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(format!("listing {}", dir.display()), e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(format!("listing {}", dir.display()), e))?;
        let name = ent.file_name().to_string_lossy().into_owned();
        let Ok(md) = ent.metadata() else { continue };
        if name.ends_with(".json") && md.is_file() {
            out.insert(name, md.len());
        }
    }
    Ok(out)
}

/// A staging dir beside the output dir (same filesystem, so renames are atomic).
struct Staging {
    dir: PathBuf,
}

impl Staging {
    fn new(out: &Path) -> Result<Staging> {
        let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let base = out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let dir = parent.join(format!(".{base}.staging.{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| Error::io(format!("clearing {}", dir.display()), e))?;
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        Ok(Staging { dir })
    }

    /// Everything was staged first, so a full disk failed before any
    /// rename; now each staged file replaces its old one atomically.
    fn commit(&self, out: &Path, changes: &[(String, Change)], force: bool) -> Result<()> {
        std::fs::create_dir_all(out)
            .map_err(|e| Error::io(format!("creating {}", out.display()), e))?;
        for (name, c) in changes {
            let to = out.join(name);
            if *c == Change::Removed {
                std::fs::remove_file(&to)
                    .map_err(|e| Error::io(format!("removing {}", to.display()), e))?;
                continue;
            }
            let from = self.dir.join(name);
            if *c == Change::Unchanged && !force {
                continue;
            }
            std::fs::rename(&from, &to).map_err(|e| {
                Error::io(format!("renaming {} to {}", from.display(), to.display()), e)
            })?;
        }
        Ok(())
    }
}

/// What the CLI prints: one line per file (unchanged ones only when
/// `verbose`), then a summary.
pub fn report_text(changes: &[(String, Change)], verbose: bool, dry_run: bool) -> String {
    let mut s = String::new();
    let mut n = [0usize; 4];
    for (name, c) in changes {
        n[*c as usize] += 1;
        if verbose || *c != Change::Unchanged {
            s.push_str(&format!("{:<9} {name}\n", c.word()));
        }
    }
    let would = if dry_run { " (dry run: nothing written)" } else { "" };
    s.push_str(&format!(
        "{} new, {} changed, {} unchanged, {} removed{would}\n",
        n[0], n[1], n[2], n[3]
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lists_changes_and_summary() {
        let ch =
            vec![("a.json".to_string(), Change::New), ("b.json".to_string(), Change::Unchanged)];
        let t = report_text(&ch, false, false);
        assert_eq!(t, "new       a.json\n1 new, 0 changed, 1 unchanged, 0 removed\n");
        let v = report_text(&ch, true, true);
        assert!(v.contains("unchanged b.json\n"), "{v}");
        assert!(v.ends_with("(dry run: nothing written)\n"), "{v}");
    }
}
