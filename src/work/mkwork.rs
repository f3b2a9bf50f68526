//! TEMP stub until the work helper lands.
use std::path::PathBuf;
pub struct MkworkOpts {
    pub workconf: PathBuf,
    pub out: PathBuf,
    pub force: bool,
    pub verbose: bool,
    pub dry_run: bool,
}
pub enum Change {
    New,
    Changed,
    Unchanged,
}
pub fn mkwork(_o: &MkworkOpts) -> crate::error::Result<Vec<(String, Change)>> {
    Err(crate::error::Error::Runtime("mkwork: not yet".into()))
}
pub fn report_text(_o: &MkworkOpts, _c: &[(String, Change)]) -> String {
    String::new()
}
