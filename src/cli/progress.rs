//! `sluice run` in a terminal: a progress line per running snapshot every few seconds
//! (rows, percent of the estimate, rows/s, time left), and one when a snapshot finishes.
//! Off when standard error is not a terminal (a service's log gets the periodic summary).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::runtime::Runtime;

/// How often progress lines are printed: calm enough to read.
const EVERY: Duration = Duration::from_secs(5);

/// Starts printing snapshot progress when standard error is a terminal.
pub fn start(runtime: Arc<Runtime>) {
    if !std::io::stderr().is_terminal() {
        return;
    }
    tokio::spawn(async move {
        // connector → (table, rows done, when)
        let mut last: HashMap<String, (String, u64, Instant)> = HashMap::new();
        let mut tick = tokio::time::interval(EVERY);
        loop {
            tick.tick().await;
            for s in runtime.statuses() {
                let Some(p) = s.snapshot else {
                    if let Some((table, rows, _)) = last.remove(&s.name) {
                        tracing::info!(connector = %s.name, "snapshot of {table} done: {rows} rows read, the connector is {}", serde_json::to_value(s.state).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default());
                    }
                    continue;
                };
                let now = Instant::now();
                let rate = match last.get(&s.name) {
                    Some((table, rows, at)) if *table == p.table && p.rows_done >= *rows => {
                        (p.rows_done - rows) as f64
                            / now.duration_since(*at).as_secs_f64().max(0.001)
                    }
                    _ => 0.0,
                };
                tracing::info!(connector = %s.name, "{}", line(&p, rate));
                last.insert(s.name.clone(), (p.table.clone(), p.rows_done, now));
            }
        }
    });
}

/// One progress line.
fn line(p: &crate::status::SnapshotProgress, rows_per_s: f64) -> String {
    let percent = if p.rows_estimated > 0 {
        format!(
            " ({:.0} %)",
            (100.0 * p.rows_done as f64 / p.rows_estimated as f64).min(100.0)
        )
    } else {
        String::new()
    };
    let of = if p.rows_estimated > 0 {
        format!(" of ~{}", p.rows_estimated)
    } else {
        String::new()
    };
    let eta = p
        .eta_ms
        .map(|ms| format!(", about {} s left", (ms + 999) / 1000))
        .unwrap_or_default();
    let chunks = p
        .chunks
        .map(|c| format!(", {c} chunks"))
        .unwrap_or_default();
    format!(
        "{} snapshot of {}: {} rows{of}{percent}, {:.0} rows/s{chunks}{eta}{}",
        p.kind,
        p.table,
        p.rows_done,
        rows_per_s,
        if p.paused { " (paused)" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_progress_line_says_rows_percent_rate_and_time_left() {
        let p = crate::status::SnapshotProgress {
            kind: "initial",
            table: "public.items".into(),
            rows_done: 250,
            rows_estimated: 1000,
            chunks: None,
            tables_left: None,
            paused: false,
            started_ms: 0,
            eta_ms: Some(4500),
        };
        assert_eq!(
            line(&p, 50.4),
            "initial snapshot of public.items: 250 rows of ~1000 (25 %), 50 rows/s, about 5 s left"
        );
    }
}
