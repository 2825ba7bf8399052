//! Kafka Connect's offset format, as Debezium's connectors store their positions.
//!
//! A Connect offsets topic holds, per connector, records keyed by
//! `["<connector name>",{"server":"<topic prefix>"}]` (JsonConverter without schemas) whose
//! values are the connector's offset map, on the partition the Java producer picks for the key
//! (murmur2 of the key bytes). Debezium's offset fields are written with Debezium's values
//! wherever Sluice's position says the same thing — at transaction boundaries, which is where
//! Sluice commits most positions — so a position written by Debezium can be read by Sluice and
//! the reverse. What Debezium has no field for is kept under a `sluice.` prefix, which
//! Debezium ignores.
//!
//! Reading Debezium's own mid-transaction offsets is safe but not exact: Sluice resumes at the
//! start of the transaction Debezium was in (its changes are published again, none is lost),
//! because Debezium counts events differently.

use serde_json::{json, Map, Value as Json};

use crate::position::{
    IncrementalProgress, MyPosition, PartialTx, PgPosition, SlotId, SnapshotState, SourcePosition,
};

/// The offset key of a connector: Connect's JsonConverter bytes of
/// `["<connector>",{"server":"<server>"}]` (the server is the connector's topic prefix).
pub fn key(connector: &str, server: &str) -> Vec<u8> {
    serde_json::to_vec(&json!([connector, { "server": server }])).unwrap_or_default()
}

/// The connector name and server of an offset key, if it has Connect's shape.
pub fn parse_key(key: &[u8]) -> Option<(String, String)> {
    let v: Json = serde_json::from_slice(key).ok()?;
    let parts = v.as_array()?;
    let name = parts.first()?.as_str()?.to_string();
    let server = parts.get(1)?.get("server")?.as_str()?.to_string();
    Some((name, server))
}

/// Kafka's murmur2 hash (the Java client's `Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = 0x9747_b28c ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        if rest.len() == 3 {
            h ^= u32::from(rest[2]) << 16;
        }
        if rest.len() >= 2 {
            h ^= u32::from(rest[1]) << 8;
        }
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition the Java producer's default partitioner picks for a key.
pub fn partition(key: &[u8], partitions: i32) -> i32 {
    (murmur2(key) & 0x7fff_ffff) % partitions.max(1)
}

/// A position as Debezium's offset map, plus Sluice's own fields under `sluice.`.
pub fn value(position: &SourcePosition) -> Json {
    let mut m = Map::new();
    match position {
        SourcePosition::Postgres(p) => {
            // At a transaction boundary Debezium's lsn, lsn_proc and lsn_commit are all the
            // commit's end LSN, which is Sluice's resume LSN.
            let lsn = p.resume_lsn as i64;
            m.insert("lsn".into(), json!(lsn));
            m.insert("lsn_proc".into(), json!(lsn));
            m.insert("lsn_commit".into(), json!(lsn));
            if let Some(tx) = p.last_tx {
                m.insert("txId".into(), json!(tx.tx_id));
                m.insert("ts_usec".into(), json!(tx.ts_us));
            } else {
                // Debezium's loader needs a time; it only feeds the next source block.
                m.insert("ts_usec".into(), json!(0));
            }
            if p.snapshot == SnapshotState::InProgress {
                m.insert("snapshot".into(), json!(true));
                m.insert("last_snapshot_record".into(), json!(false));
            }
            if let Some(partial) = p.partial {
                m.insert(
                    "sluice.partial_commit_lsn".into(),
                    json!(partial.commit_lsn as i64),
                );
                m.insert("sluice.partial_events".into(), json!(partial.events_done));
            }
            if let Some(slot) = p.slot {
                m.insert("sluice.slot_database_oid".into(), json!(slot.database_oid));
                m.insert(
                    "sluice.slot_created_lsn".into(),
                    json!(slot.created_lsn as i64),
                );
            }
        }
        SourcePosition::Mysql(p) => {
            m.insert("file".into(), json!(&*p.file));
            m.insert("pos".into(), json!(p.pos));
            if let Some(g) = &p.gtids {
                m.insert("gtids".into(), json!(&**g));
            }
            // Debezium counts every event of the transaction, Sluice its rows events: inside a
            // transaction Debezium is told to start it over (0), Sluice keeps its own counts.
            m.insert("event".into(), json!(0));
            m.insert("row".into(), json!(0));
            if p.events > 0 || p.rows > 0 {
                m.insert("sluice.events".into(), json!(p.events));
                m.insert("sluice.rows".into(), json!(p.rows));
            }
            if let Some(e) = p.last_event {
                m.insert("server_id".into(), json!(e.server_id));
                m.insert("ts_sec".into(), json!(e.ts_sec));
            }
            if p.snapshot == SnapshotState::InProgress {
                m.insert("snapshot".into(), json!(true));
            }
        }
    }
    // Snapshot progress (a signalled incremental snapshot, or the stamps of an interrupted
    // initial one): Debezium keeps its own under other names and ignores this one.
    if let Some(progress) = position.incremental() {
        if let Ok(v) = serde_json::to_value(progress) {
            m.insert(INCREMENTAL.into(), v);
        }
    }
    Json::Object(m)
}

/// The field of Sluice's snapshot progress in an offset map.
const INCREMENTAL: &str = "sluice.incremental";

/// The snapshot progress stored in an offset map; an unreadable one is an error (resuming
/// without it would silently abandon the snapshot).
fn incremental_of(
    m: &Map<String, Json>,
) -> Result<Option<std::sync::Arc<IncrementalProgress>>, String> {
    match m.get(INCREMENTAL) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => serde_json::from_value::<IncrementalProgress>(v.clone())
            .map(|p| Some(std::sync::Arc::new(p)))
            .map_err(|e| {
                format!("\"{INCREMENTAL}\" is not snapshot progress Sluice can read: {e}")
            }),
    }
}

/// Reads a position from an offset map written by Sluice or by Debezium.
pub fn position(value: &Json) -> Result<SourcePosition, String> {
    let m = value
        .as_object()
        .ok_or("an offset value must be a JSON object")?;
    let int = |k: &str| m.get(k).and_then(Json::as_i64);
    let snapshot = if m.get("snapshot").and_then(Json::as_bool) == Some(true)
        && m.get("last_snapshot_record").and_then(Json::as_bool) != Some(true)
    {
        SnapshotState::InProgress
    } else {
        SnapshotState::Done
    };
    if let Some(file) = m.get("file").and_then(Json::as_str) {
        let pos = int("pos").ok_or("a MySQL offset needs \"pos\"")?;
        let events = int("sluice.events").unwrap_or(0);
        let rows = int("sluice.rows").unwrap_or(0);
        return Ok(SourcePosition::Mysql(MyPosition {
            incremental: incremental_of(m)?,
            file: file.into(),
            pos: u64::try_from(pos).map_err(|_| "\"pos\" is negative")?,
            gtids: m
                .get("gtids")
                .and_then(Json::as_str)
                .filter(|g| !g.is_empty())
                .map(Into::into),
            events: events.max(0) as u64,
            rows: rows.max(0) as u64,
            snapshot,
            last_event: match (int("server_id"), int("ts_sec")) {
                (Some(server_id), Some(ts_sec)) => Some(crate::position::LastEvent {
                    server_id: server_id as u32,
                    ts_sec,
                }),
                _ => None,
            },
        }));
    }
    // The earliest of Debezium's LSNs: a transaction committed after it is sent again in
    // full, so nothing is lost whichever of them Debezium advanced last.
    let lsn = ["lsn", "lsn_proc", "lsn_commit"]
        .iter()
        .filter_map(|k| int(k))
        .min()
        .ok_or("an offset value needs \"lsn\" (PostgreSQL) or \"file\" and \"pos\" (MySQL)")?;
    let partial = match (
        int("sluice.partial_commit_lsn"),
        int("sluice.partial_events"),
    ) {
        (Some(commit), Some(events)) => Some(PartialTx {
            commit_lsn: commit as u64,
            events_done: events.max(0) as u64,
        }),
        _ => None,
    };
    let slot = match (
        int("sluice.slot_database_oid"),
        int("sluice.slot_created_lsn"),
    ) {
        (Some(oid), Some(created)) => Some(SlotId {
            database_oid: oid as u32,
            created_lsn: created as u64,
        }),
        _ => None,
    };
    let last_tx = match (int("txId"), int("ts_usec")) {
        (Some(tx_id), Some(ts_us)) => Some(crate::position::LastTx { tx_id, ts_us }),
        _ => None,
    };
    Ok(SourcePosition::Postgres(PgPosition {
        incremental: incremental_of(m)?,
        resume_lsn: lsn as u64,
        partial,
        snapshot,
        slot,
        last_tx,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::LastTx;

    #[test]
    fn keys_are_connects_json_converter_bytes() {
        assert_eq!(
            key("inventory-connector", "dbserver1"),
            br#"["inventory-connector",{"server":"dbserver1"}]"#
        );
        assert_eq!(
            parse_key(br#"["shop",{"server":"shop"}]"#),
            Some(("shop".into(), "shop".into()))
        );
        assert_eq!(parse_key(b"{}"), None);
    }

    /// Vectors computed independently with kafka-python's murmur2 (a port of the Java
    /// client's), as unsigned 32-bit values, and its partition for 25 partitions.
    #[test]
    fn murmur2_and_partitions_match_the_java_client() {
        let vectors: [(&[u8], u32, i32); 8] = [
            (b"", 275_646_681, 6),
            (b"a", 2_731_586_172, 24),
            (b"ab", 316_155_434, 9),
            (b"abc", 479_470_107, 7),
            (b"abcd", 2_971_317_748, 0),
            (b"hello world", 1_221_641_059, 9),
            (
                br#"["inventory-connector",{"server":"dbserver1"}]"#,
                2_372_382_934,
                11,
            ),
            (br#"["shop",{"server":"shop"}]"#, 3_692_009_423, 0),
        ];
        for (data, hash, part) in vectors {
            assert_eq!(
                murmur2(data) as u32,
                hash,
                "{:?}",
                String::from_utf8_lossy(data)
            );
            assert_eq!(partition(data, 25), part);
        }
    }

    #[test]
    fn snapshot_progress_survives_the_kafka_store_format() {
        let progress = std::sync::Arc::new(IncrementalProgress {
            tables: vec!["public.a".into(), "public.b".into()],
            conditions: Default::default(),
            last_key: Some(vec![Some("42".into()), None]),
            chunks: 7,
            paused: true,
        });
        let pg = SourcePosition::Postgres(PgPosition {
            incremental: Some(progress.clone()),
            snapshot: SnapshotState::InProgress,
            slot: Some(SlotId {
                database_oid: 5,
                created_lsn: 90,
            }),
            ..PgPosition::at(100)
        });
        let v = value(&pg);
        assert_eq!(v["sluice.incremental"]["chunks"], 7);
        assert_eq!(position(&v).unwrap(), pg);
        let my = SourcePosition::Mysql(MyPosition {
            incremental: Some(progress),
            file: "mysql-bin.000003".into(),
            pos: 4,
            gtids: None,
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
            last_event: None,
        });
        assert_eq!(position(&value(&my)).unwrap(), my);
        // Unreadable progress is an error, not a snapshot silently dropped.
        let mut bad = value(&my);
        bad["sluice.incremental"] = json!({"tables": 3});
        assert!(position(&bad).unwrap_err().contains("sluice.incremental"));
    }

    #[test]
    fn postgres_positions_as_debezium_offsets_and_back() {
        let p = SourcePosition::Postgres(PgPosition {
            incremental: None,
            resume_lsn: 0x16_B374_D848,
            partial: None,
            snapshot: SnapshotState::Done,
            slot: None,
            last_tx: Some(LastTx {
                tx_id: 771,
                ts_us: 1_700_000_000_123_456,
            }),
        });
        let v = value(&p);
        // Debezium's offset after the commit of transaction 771 at end LSN 16/B374D848.
        assert_eq!(
            v,
            json!({"lsn": 97_500_059_720i64, "lsn_proc": 97_500_059_720i64,
                   "lsn_commit": 97_500_059_720i64, "txId": 771,
                   "ts_usec": 1_700_000_000_123_456i64})
        );
        assert_eq!(position(&v).unwrap(), p);
        // In a snapshot, and with Sluice's own fields.
        let p = SourcePosition::Postgres(PgPosition {
            incremental: None,
            resume_lsn: 100,
            partial: Some(PartialTx {
                commit_lsn: 200,
                events_done: 3,
            }),
            snapshot: SnapshotState::InProgress,
            slot: Some(SlotId {
                database_oid: 5,
                created_lsn: 90,
            }),
            last_tx: None,
        });
        let v = value(&p);
        assert_eq!(v["snapshot"], true);
        assert_eq!(v["last_snapshot_record"], false);
        assert_eq!(v["sluice.partial_events"], 3);
        assert_eq!(position(&v).unwrap(), p);
        // Debezium inside a transaction: the earliest LSN, so the transaction comes again.
        let dbz = json!({"lsn": 300, "lsn_proc": 290, "lsn_commit": 250, "txId": 9, "ts_usec": 1});
        let SourcePosition::Postgres(p) = position(&dbz).unwrap() else {
            panic!()
        };
        assert_eq!((p.resume_lsn, p.partial), (250, None));
    }

    #[test]
    fn mysql_positions_as_debezium_offsets_and_back() {
        let p = SourcePosition::Mysql(MyPosition {
            incremental: None,
            file: "mysql-bin.000003".into(),
            pos: 154,
            gtids: Some("0-1-100".into()),
            events: 0,
            rows: 0,
            snapshot: SnapshotState::Done,
            last_event: None,
        });
        let v = value(&p);
        assert_eq!(
            v,
            json!({"file": "mysql-bin.000003", "pos": 154, "gtids": "0-1-100", "event": 0, "row": 0})
        );
        assert_eq!(position(&v).unwrap(), p);
        // Mid-transaction: Debezium restarts the transaction, Sluice keeps its counts.
        let p = SourcePosition::Mysql(MyPosition {
            events: 2,
            rows: 1,
            snapshot: SnapshotState::InProgress,
            ..match p {
                SourcePosition::Mysql(m) => m,
                _ => unreachable!(),
            }
        });
        let v = value(&p);
        assert_eq!(
            (v["event"].as_i64(), v["sluice.events"].as_i64()),
            (Some(0), Some(2))
        );
        assert_eq!(v["snapshot"], true);
        assert_eq!(position(&v).unwrap(), p);
        // Debezium's own counts are not Sluice's: the transaction starts over.
        let dbz = json!({"file": "b.000001", "pos": 4, "event": 5, "row": 1, "server_id": 1, "ts_sec": 2});
        let SourcePosition::Mysql(m) = position(&dbz).unwrap() else {
            panic!()
        };
        assert_eq!((m.events, m.rows), (0, 0));
        // Debezium's server_id and ts_sec come and go with the position.
        assert_eq!(
            m.last_event,
            Some(crate::position::LastEvent {
                server_id: 1,
                ts_sec: 2
            })
        );
        let back = value(&SourcePosition::Mysql(m));
        assert_eq!(
            (back["server_id"].as_i64(), back["ts_sec"].as_i64()),
            (Some(1), Some(2))
        );
        assert!(position(&json!({"nothing": 1})).is_err());
    }
}
