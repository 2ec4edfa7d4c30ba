//! `lunora`: parse the command line and dispatch. Everything else lives in the library crates.

/// The media path allocates a buffer per message and frees it a few milliseconds later, from
/// hundreds of connections at once; glibc's allocator spent a fifth of the server's CPU on that
/// with 300 publishers (BENCHMARKS.md, "Relay"). mimalloc's per-thread free lists do it for a
/// fraction.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lunora::cli::run()
}
