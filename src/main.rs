//! The `sluice` daemon binary.

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
