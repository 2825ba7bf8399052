//! The `sluice` daemon binary.

/// mimalloc: events are allocated on the source's task and freed on the pipeline's, which
/// glibc's allocator handles slowly (measured on the MySQL streaming path).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
