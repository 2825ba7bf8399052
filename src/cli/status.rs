//! `sluice status [--watch]`: the connectors of a running daemon as a table in the terminal
//! (read from its admin API), with progress bars for snapshots.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::Value;

use crate::api::probe::{self, ProbeOptions};
use crate::config::DaemonConfig;

/// How often `--watch` redraws.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// A bar of `width` cells for `done` of `total` (empty when the total is unknown).
fn bar(done: u64, total: i64, width: usize) -> String {
    if total <= 0 {
        return format!("[{}] {done} rows", " ".repeat(width));
    }
    let ratio = (done as f64 / total as f64).clamp(0.0, 1.0);
    let filled = (ratio * width as f64).round() as usize;
    format!(
        "[{}{}] {:>3}% {done}/{total}",
        "#".repeat(filled),
        "-".repeat(width - filled),
        (ratio * 100.0).round() as u64
    )
}

fn seconds(ms: i64) -> String {
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        ms if ms < 120_000 => format!("{:.1} s", ms as f64 / 1000.0),
        ms => format!("{} min", ms / 60_000),
    }
}

/// The table for the answer of `GET /sluice/connectors`.
pub fn render(answer: &Value) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "CONNECTOR".into(),
        "STATE".into(),
        "LAG".into(),
        "PUBLISHED".into(),
        "POSITION / PROGRESS".into(),
    ]];
    let mut details = Vec::new();
    for c in answer["connectors"].as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or("?").to_string();
        let mut state = c["state"].as_str().unwrap_or("?").to_string();
        if let Some(owner) = c["owner"].as_str() {
            if state == "unassigned" {
                state = format!("on {owner}");
            }
        }
        let lag = c["lag_ms"]
            .as_i64()
            .map(seconds)
            .unwrap_or_else(|| "-".into());
        let published = c["records_published"].as_u64().unwrap_or(0).to_string();
        let position = match &c["snapshot"] {
            Value::Object(s) => {
                let done = s.get("rows_done").and_then(Value::as_u64).unwrap_or(0);
                let total = s.get("rows_estimated").and_then(Value::as_i64).unwrap_or(0);
                let mut text = format!(
                    "{} snapshot {} {}",
                    s.get("kind").and_then(Value::as_str).unwrap_or("initial"),
                    s.get("table").and_then(Value::as_str).unwrap_or("?"),
                    bar(done, total, 20)
                );
                if let Some(eta) = s.get("eta_ms").and_then(Value::as_i64) {
                    text.push_str(&format!(" eta {}", seconds(eta)));
                }
                if let Some(left) = s.get("tables_left").and_then(Value::as_array) {
                    if !left.is_empty() {
                        text.push_str(&format!(" (+{} tables)", left.len()));
                    }
                }
                text
            }
            _ => c["committed_offset"].as_str().unwrap_or("-").to_string(),
        };
        if let Some(e) = c["error"].as_str() {
            details.push(format!("{name}: {e}"));
        }
        if let Some(r) = c["retry"].as_object() {
            details.push(format!(
                "{name}: retrying (attempt {}): {}",
                r.get("attempt").and_then(Value::as_u64).unwrap_or(0),
                r.get("last_error").and_then(Value::as_str).unwrap_or("")
            ));
        }
        rows.push([name, state, lag, published, position]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        for (i, w) in widths.iter().enumerate() {
            out.push_str(&format!("{:<w$}  ", r[i], w = *w));
        }
        out.push_str(&r[4]);
        out.push('\n');
    }
    for e in answer["file_errors"].as_array().into_iter().flatten() {
        details.push(format!(
            "{}: {}",
            e["file"].as_str().unwrap_or("?"),
            e["error"].as_str().unwrap_or("")
        ));
    }
    if !details.is_empty() {
        out.push('\n');
        for d in details {
            out.push_str(&d);
            out.push('\n');
        }
    }
    out
}

/// `sluice status`: the API's address and token from the daemon config unless given.
pub async fn status(
    config: &Path,
    url: Option<String>,
    token: Option<String>,
    watch: bool,
) -> ExitCode {
    let daemon = DaemonConfig::load(config).ok();
    let base = url.or_else(|| {
        let api = daemon.as_ref()?.api.as_ref()?;
        let scheme = if api.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        let listen = api
            .listen
            .replace("0.0.0.0", "127.0.0.1")
            .replace("[::]", "[::1]");
        Some(format!("{scheme}://{listen}"))
    });
    let Some(base) = base else {
        eprintln!(
            "error: no [api] in {} to ask; give --url http://host:port",
            config.display()
        );
        return ExitCode::from(2);
    };
    let options = ProbeOptions {
        token: token.or_else(|| {
            daemon
                .as_ref()?
                .api
                .as_ref()?
                .token
                .as_ref()
                .map(|t| t.expose().to_string())
        }),
        ..ProbeOptions::default()
    };
    let url = format!("{}/sluice/connectors", base.trim_end_matches('/'));
    loop {
        let shown = match probe::get(&url, &options).await {
            Ok((200, body)) => match serde_json::from_str::<Value>(&body) {
                Ok(v) => Ok(render(&v)),
                Err(e) => Err(format!("{url}: not JSON: {e}")),
            },
            Ok((status, body)) => Err(format!("{url}: HTTP {status} {body}")),
            Err(e) => Err(e),
        };
        if watch {
            // Clear the screen and draw again.
            print!("\x1b[2J\x1b[H");
        }
        match shown {
            Ok(text) => print!("{text}"),
            Err(e) if !watch => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
            Err(e) => println!("{e}"),
        }
        if !watch {
            return ExitCode::SUCCESS;
        }
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_table_shows_states_lag_and_snapshot_bars() {
        let answer = json!({"connectors": [
            {"name": "shop", "state": "streaming", "lag_ms": 350, "records_published": 12,
             "committed_offset": "postgres resume_lsn=0/1", "snapshot": null},
            {"name": "orders", "state": "streaming", "lag_ms": null, "records_published": 5,
             "snapshot": {"kind": "incremental", "table": "public.orders", "rows_done": 50,
                          "rows_estimated": 200, "eta_ms": 3000, "tables_left": ["public.x"]}},
            {"name": "far", "state": "unassigned", "owner": "node-2"},
            {"name": "bad", "state": "failed", "error": "cannot connect: fix the URL"}
        ], "file_errors": [{"file": "connectors/x.toml", "error": "line 2: unknown field"}]});
        let text = render(&answer);
        assert!(
            text.contains("shop       streaming  350 ms  12         postgres resume_lsn=0/1"),
            "{text}"
        );
        assert!(text.contains("incremental snapshot public.orders [#####---------------]  25% 50/200 eta 3.0 s (+1 tables)"), "{text}");
        assert!(text.contains("far        on node-2"), "{text}");
        assert!(text.contains("bad: cannot connect: fix the URL"), "{text}");
        assert!(
            text.contains("connectors/x.toml: line 2: unknown field"),
            "{text}"
        );
    }
}
