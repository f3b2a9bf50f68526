//! TEMP stub until the daemon helper's logger lands.
pub enum Target {
    Stderr,
    File { path: std::path::PathBuf, rotate_num: u32, rotate_ival_secs: f64 },
    Syslog,
}
struct L;
impl log::Log for L {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        eprintln!("[{}] {}", r.level(), r.args());
    }
    fn flush(&self) {}
}
pub fn init(_t: Target, level: log::LevelFilter) -> crate::error::Result<()> {
    let _ = log::set_logger(&L);
    log::set_max_level(level);
    Ok(())
}
pub fn set_level(level: log::LevelFilter) {
    log::set_max_level(level)
}
pub fn rotate_now() {}
