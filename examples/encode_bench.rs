//! Benchmark (not a test): how fast the encoder turns change events into JSON records, as
//! envelopes and with the row-shaping features (`[unwrap]` with added fields, `[[route]]`,
//! `[changed_fields]` with dropped fields). Prints events/s per configuration.
//!
//! `cargo run --release --example encode_bench [EVENTS]` (default 1,000,000)

use std::sync::Arc;
use std::time::Instant;

use sluice::config::{ChangedFieldsConfig, RouteConfig, UnwrapConfig};
use sluice::encode::{ChangedFields, Encoder, Flatten, Router};
use sluice::event::{
    ChangeEvent, Column, ColumnKind, Op, SnapshotMarker, SourceDetail, SourceMeta, TableId,
    TableSchema, Value,
};
use sluice::position::{PgPosition, SourcePosition};

fn table() -> Arc<TableSchema> {
    let col = |name: &str, kind: ColumnKind, nullable| Column {
        name: name.into(),
        kind,
        nullable,
        default: None,
        length: None,
    };
    Arc::new(TableSchema {
        id: TableId {
            schema: "public".into(),
            name: "orders_1".into(),
        },
        columns: vec![
            col("id", ColumnKind::Int64, false),
            col("customer", ColumnKind::Text, true),
            col("qty", ColumnKind::Int32, true),
            col("note", ColumnKind::Text, true),
        ],
        key: vec![0],
    })
}

fn event(table: &Arc<TableSchema>, i: i64) -> ChangeEvent {
    let row = |qty: i64| {
        vec![
            Value::Int(i),
            Value::Text(format!("customer-{i}").into()),
            Value::Int(qty),
            Value::Text("x".repeat(60).into()),
        ]
    };
    ChangeEvent {
        op: Op::Update,
        table: Some(table.clone()),
        before: Some(row(1)),
        after: Some(row(2)),
        source: SourceMeta {
            ts_us: 1_704_164_645_123_456 + i,
            snapshot: SnapshotMarker::False,
            db: Arc::from("shop"),
            detail: SourceDetail::Postgres {
                tx_id: Some(77),
                lsn: Some(500 + i as u64),
                last_commit_lsn: Some(400),
                origin: None,
                origin_lsn: None,
            },
        },
        message: None,
        transaction: None,
        position: SourcePosition::Postgres(PgPosition::at(0)),
    }
}

fn run(name: &str, mut enc: Encoder, events: &[ChangeEvent]) {
    enc.set_batch_time();
    let started = Instant::now();
    let mut bytes = 0usize;
    for e in events {
        for r in enc.encode_now(e).expect("encodes") {
            bytes += r.value.map_or(0, |v| v.len()) + r.key.map_or(0, |k| k.len());
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "  {name:<48} {:>10.0} events/s  {:>6.1} bytes/event",
        events.len() as f64 / secs,
        bytes as f64 / events.len() as f64
    );
}

fn main() {
    let n: i64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let t = table();
    let events: Vec<ChangeEvent> = (0..n).map(|i| event(&t, i)).collect();
    let unwrap: UnwrapConfig = toml::from_str(
        "enabled = true\nadd_fields = [\"op\", \"table\", \"lsn\", \"source.ts_ms\"]",
    )
    .unwrap();
    let plain_unwrap: UnwrapConfig = toml::from_str("enabled = true").unwrap();
    let drop: UnwrapConfig =
        toml::from_str("enabled = true\ndrop_fields_header_name = \"Unchanged\"").unwrap();
    let changed: ChangedFieldsConfig =
        toml::from_str("header_unchanged_name = \"Unchanged\"").unwrap();
    let route: Vec<RouteConfig> = vec![toml::from_str(
        "regex = 'inv\\.public\\.orders_\\d+'\nreplacement = 'inv.public.orders'",
    )
    .unwrap()];
    println!("encoding {n} updates of a 4-column row (JSON):");
    for schemas in [true, false] {
        let tag = if schemas {
            "with schema"
        } else {
            "payload only"
        };
        run(
            &format!("envelope, {tag}"),
            Encoder::json("inv", schemas, true),
            &events,
        );
        run(
            &format!("[unwrap], {tag}"),
            Encoder::json("inv", schemas, true).with_flatten(Flatten::from_config(&plain_unwrap)),
            &events,
        );
        run(
            &format!("[unwrap] + 4 add_fields, {tag}"),
            Encoder::json("inv", schemas, true).with_flatten(Flatten::from_config(&unwrap)),
            &events,
        );
        run(
            &format!("[[route]] with key field, {tag}"),
            Encoder::json("inv", schemas, true).with_router(Router::from_config(&route)),
            &events,
        );
        run(
            &format!("[unwrap] dropping unchanged fields, {tag}"),
            Encoder::json("inv", schemas, true)
                .with_flatten(Flatten::from_config(&drop))
                .with_changed_fields(ChangedFields::from_config(&changed)),
            &events,
        );
    }
}
