fn main() -> std::process::ExitCode {
    dfd_pipeline::cli::main()
}
