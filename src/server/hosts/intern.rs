//! The version strings of the host records, shared: a fleet runs a
//! handful of versions, so 100,000 records point at a few strings instead
//! of holding a copy each (issue 18). Bounded, so a sender inventing
//! versions cannot grow the set.

use std::collections::HashSet;
use std::sync::Arc;

/// Most distinct version strings shared between records; past that (a
/// sender inventing versions) each record gets its own copy.
pub const MAX_VERSIONS: usize = 256;

/// The interned `ver` strings of the records (at most [`MAX_VERSIONS`]).
#[derive(Default)]
pub(crate) struct Versions(pub(super) HashSet<Arc<str>>);

impl Versions {
    /// The shared copy of `ver` (cut to 64 characters).
    pub(crate) fn intern(&mut self, ver: &str) -> Arc<str> {
        let cut: String = ver.chars().take(64).collect();
        if let Some(v) = self.0.get(cut.as_str()) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(cut);
        if self.0.len() < MAX_VERSIONS {
            self.0.insert(v.clone());
        }
        v
    }
}
