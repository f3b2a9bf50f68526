//! Writes hbmon(8) and one page per subcommand (hbmon-start(8), ...) from the
//! clap definitions into the directory given (default `target/man`), so the
//! man pages say exactly what `--help` says. `make install` runs it; it is an
//! example so clap_mangen never reaches the release binary.
//!
//! Usage: `cargo run --release --example mangen -- DIR`

use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Appended to hbmon(8): where the rest of the reference lives.
const SEE_ALSO: &str = ".SH \"SEE ALSO\"\n\\fBhbmon.conf\\fR(5), \\fBhbmon\\-work\\fR(5), \
\\fBsystemd.service\\fR(5), \\fBnc\\fR(1)\n";

fn page(cmd: &clap::Command, dir: &Path, top: bool) -> std::io::Result<()> {
    let man = clap_mangen::Man::new(cmd.clone()).section("8").manual("hbmon manual");
    let path = dir.join(man.get_filename());
    let mut buf = Vec::new();
    man.render(&mut buf)?;
    // clap_mangen calls the after-help section EXTRA; say what it holds.
    let text = String::from_utf8_lossy(&buf)
        .replace(".SH EXTRA", ".SH \"COMMAND PORT, FILES, EXIT STATUS, SIGNALS\"");
    let mut f = std::fs::File::create(&path)?;
    f.write_all(text.as_bytes())?;
    if top {
        f.write_all(SEE_ALSO.as_bytes())?;
    } else {
        f.write_all(b".SH \"SEE ALSO\"\n\\fBhbmon\\fR(8)\n")?;
    }
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub, dir, false)?;
    }
    Ok(())
}

fn main() {
    let dir = std::env::args_os().nth(1).unwrap_or_else(|| "target/man".into());
    let dir = std::path::PathBuf::from(dir);
    let mut cmd = hbmon::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    if let Err(e) = std::fs::create_dir_all(&dir).and_then(|_| page(&cmd, &dir, true)) {
        eprintln!("mangen: write pages to {}: {e}", dir.display());
        std::process::exit(1);
    }
    println!("mangen: pages in {}", dir.display());
}
