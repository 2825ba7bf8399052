//! A small mutation fuzzer for the decoders of bytes from the network (test builds only).
//!
//! Each target mutates seed inputs (real or hand-built messages) and asserts that decoding
//! never panics. The suite runs a bounded number of iterations per target;
//! `SLUICE_FUZZ_ITERATIONS` raises it for a longer run by hand (`scripts/fuzz`).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Iterations per target: `SLUICE_FUZZ_ITERATIONS`, else `default`.
pub fn iterations(default: usize) -> usize {
    std::env::var("SLUICE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A deterministic generator (the seed is printed by a failing assertion's message).
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A mutated copy of `input`: bit flips, interesting bytes, truncation, duplication of a
/// slice, insertion and removal — a few at a time.
pub fn mutate(rng: &mut StdRng, input: &[u8]) -> Vec<u8> {
    let mut d = input.to_vec();
    for _ in 0..rng.random_range(1..5) {
        if d.is_empty() {
            d.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..d.len());
        match rng.random_range(0..7) {
            0 => d[at] ^= 1 << rng.random_range(0..8),
            1 => d[at] = rng.random(),
            2 => d[at] = [0u8, 1, 0x7f, 0x80, 0xfe, 0xff][rng.random_range(0..6)],
            3 => d.truncate(at),
            4 => {
                let end = rng.random_range(at..=d.len().min(at + 16));
                let slice = d[at..end].to_vec();
                d.splice(at..at, slice);
            }
            5 => d.insert(at, rng.random()),
            _ => {
                d.remove(at);
            }
        }
    }
    d
}
