//! TEMP stub until the daemon helper lands.
pub fn canonical(h: Option<&str>, _d: Option<&str>) -> String {
    h.map(String::from)
        .unwrap_or_else(|| {
            nix::unistd::gethostname()
                .ok()
                .and_then(|s| s.into_string().ok())
                .unwrap_or_else(|| "localhost".into())
        })
        .to_lowercase()
}
