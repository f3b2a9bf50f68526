//! TEMP stub until the wire helper lands.
pub struct UdpBenchOpts {
    pub to: std::net::SocketAddr,
    pub cmd: Option<std::net::SocketAddr>,
    pub hosts: u32,
    pub rate: u64,
    pub secs: f64,
    pub procs: u32,
}
pub fn run(_o: &UdpBenchOpts) -> crate::error::Result<String> {
    Err(crate::error::Error::Runtime("bench udp: not yet".into()))
}
