fn main() {
    std::process::exit(hbmon::cli::main());
}
