fn main() {
    limit_malloc_arenas();
    std::process::exit(hbmon::cli::main());
}

/// glibc gives each thread that allocates its own malloc arena (up to 8 per
/// core), each keeping freed memory of its own: on a client whose helper
/// threads allocate briefly that is resident memory for nothing. Two arenas
/// (the loop's and one shared by the helpers) are plenty for this process.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable; it is called before any thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
