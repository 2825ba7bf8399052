//! The `sluice` daemon binary.

/// mimalloc: rows are allocated by the source task and freed by the sink task on another
/// thread, which glibc's arenas serialize. Measured on the 500,000-row binlog of
/// `scripts/bench-mysql` (CPU seconds of the process, 4 runs each): payload-only JSON 1.32-1.46
/// with glibc, 0.96-1.14 with mimalloc; JSON with schema 1.36-1.61 with glibc, 1.51-1.84 with
/// mimalloc (each record copies a ~4 KiB schema string). Payload-only and Avro are what
/// throughput-minded deployments run.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sluice::cli::main()
}
