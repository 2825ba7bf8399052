//! The `sluice` daemon binary.

/// mimalloc: rows are allocated by the source task and freed by the sink task on another
/// thread; glibc's arenas serialize those frees (measured by `scripts/bench-mysql`: about
/// 20 % more events/s with mimalloc).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
