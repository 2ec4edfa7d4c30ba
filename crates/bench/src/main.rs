fn main() -> std::process::ExitCode {
    lunora_bench::cli::main()
}
