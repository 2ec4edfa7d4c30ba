//! `lunora`: parse the command line and dispatch. Everything else lives in the library crates.

fn main() -> std::process::ExitCode {
    lunora::cli::run()
}
