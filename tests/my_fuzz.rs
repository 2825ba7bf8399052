//! Mutation fuzzing of the binlog file decoder (event framing, event bodies, table maps, rows,
//! binary JSON) over the real binlog fixtures: one event's body is mutated and its CRC fixed,
//! so the mutation reaches the decoders instead of failing the checksum. Decoding may fail
//! with an error; it must never panic. `SLUICE_FUZZ_ITERATIONS` sets the run's length
//! (`scripts/fuzz` runs long).

use std::path::PathBuf;

use rand::{Rng, SeedableRng};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/mysql-binlogs");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no fixtures at {}: nothing to fuzz", dir.display());
        return Vec::new();
    };
    let mut files: Vec<(String, Vec<u8>)> = entries
        .flatten()
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .filter(|(n, d)| !n.ends_with(".md") && d.len() > 4)
        .collect();
    files.sort();
    files
}

/// (start, size) of each event of a binlog file.
fn events(d: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 4;
    while off + 19 <= d.len() {
        let size = u32::from_le_bytes(d[off + 9..off + 13].try_into().unwrap()) as usize;
        if size < 19 || off + size > d.len() {
            break;
        }
        out.push((off, size));
        off += size;
    }
    out
}

#[test]
fn mutated_binlog_events_never_panic() {
    let files = fixtures();
    if files.is_empty() {
        return;
    }
    let iterations = std::env::var("SLUICE_FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000usize);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xb1);
    let mut panics = Vec::new();
    for i in 0..iterations {
        let (name, data) = &files[i % files.len()];
        let mut d = data.clone();
        let evs = events(&d);
        if evs.is_empty() {
            continue;
        }
        let (start, size) = evs[rng.random_range(0..evs.len())];
        let crc_at = start + size - 4;
        let has_crc = size >= 23
            && crc32fast::hash(&d[start..crc_at])
                == u32::from_le_bytes(d[crc_at..start + size].try_into().unwrap());
        let body_end = if has_crc { crc_at } else { start + size };
        if body_end <= start + 19 {
            continue;
        }
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(start + 19..body_end);
            match rng.random_range(0..3) {
                0 => d[at] ^= 1 << rng.random_range(0..8),
                1 => d[at] = rng.random(),
                _ => d[at] = [0u8, 1, 0x7f, 0x80, 0xff][rng.random_range(0..5)],
            }
        }
        if has_crc {
            let c = crc32fast::hash(&d[start..crc_at]);
            d[crc_at..start + size].copy_from_slice(&c.to_le_bytes());
        }
        if std::panic::catch_unwind(|| {
            let _ = sluice::testing::read_file(name, &d);
        })
        .is_err()
        {
            panics.push(format!("{name}, iteration {i}, event at {start}"));
        }
    }
    assert!(panics.is_empty(), "decoder panics: {panics:?}");
}
