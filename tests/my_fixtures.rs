//! Acceptance 7: every real MySQL / MariaDB binlog file under `../shared/fixtures/mysql-binlogs`
//! is read to the end or refused with a typed error naming the event and position, none
//! panics (also when truncated or with flipped bytes), and the row events of the JSON,
//! enum/set, bit, invisible-column, compression and tagged-GTID files decode to the values
//! the files hold. The files are read in place; where the folder is absent the tests skip.

use std::path::PathBuf;

use sluice::testing::RowsKind;
use sluice::testing::Value;
use sluice::testing::{read_file, FileContents};

fn fixtures() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/mysql-binlogs");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "skipped: {} is absent (fixtures are not part of the repository)",
            dir.display()
        );
        None
    }
}

fn read(name: &str) -> Option<FileContents> {
    let dir = fixtures()?;
    let data = std::fs::read(dir.join(name)).unwrap();
    Some(read_file(name, &data).unwrap_or_else(|e| panic!("{name}: {e}")))
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

#[test]
fn every_file_is_read_or_refused_with_a_typed_error() {
    let Some(dir) = fixtures() else { return };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "expected the fixture set, found {} files",
        files.len()
    );
    let mut refused = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let data = std::fs::read(path).unwrap();
        match std::panic::catch_unwind(|| read_file(&name, &data)) {
            Err(_) => panic!("{name}: the decoder panicked"),
            Ok(Ok(c)) => assert!(c.events > 0, "{name}: no events"),
            Ok(Err(e)) => {
                // Typed: the event type and a position inside the file.
                assert!(
                    e.pos < data.len() as u64 + 1,
                    "{name}: position {} outside the file",
                    e.pos
                );
                assert!(
                    e.to_string().contains(&format!(":{}", e.pos)),
                    "{name}: {e}"
                );
                refused.push((name, e.name, e.reason));
            }
        }
    }
    // Exactly the damaged or unsupported files are refused.
    let names: Vec<&str> = refused.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "binlog_truncated_event.000001",
            "binlog_truncated_prev_gtid_event.000001",
            "corrupt-relay-bin.000624",
            "ver_5_1-wl2325_s.001"
        ],
        "refused: {refused:?}"
    );
    assert!(
        refused[3].2.contains("version 0 rows events"),
        "{refused:?}"
    );
}

#[test]
fn truncated_and_corrupted_files_never_panic() {
    let Some(dir) = fixtures() else { return };
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if data.len() > 20_000 {
            continue;
        }
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for cut in (0..data.len()).step_by(7) {
            let r = std::panic::catch_unwind(|| read_file(&name, &data[..cut]));
            assert!(r.is_ok(), "{name} cut at {cut}: panic");
        }
        // Flip bytes (checksums catch most; files without checksums reach the decoders).
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..300 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut copy = data.clone();
            let at = 4 + (seed as usize) % (data.len().max(5) - 4);
            copy[at] ^= (seed >> 32) as u8 | 1;
            let r = std::panic::catch_unwind(|| read_file(&name, &copy));
            assert!(r.is_ok(), "{name} byte {at} flipped: panic");
        }
        checked += 1;
    }
    assert!(checked > 30);
}

#[test]
fn json_rows_decode_including_partial_updates() {
    let Some(c) = read("json.binlog.000001") else {
        return;
    };
    assert_eq!(c.server_version, "8.0.22");
    let rows: Vec<_> = c.rows.iter().filter(|r| r.table.name == "t").collect();
    assert_eq!(rows.len(), 18);
    assert_eq!(rows[0].kind, RowsKind::Write);
    assert_eq!(
        rows[0].after.as_ref().unwrap(),
        &vec![
            Value::Int(1),
            text(r#"{"age":24,"data":"xxxxxxxxxx","name":"Joe"}"#),
            text("Joe"),
            Value::Int(24)
        ]
    );
    assert_eq!(
        rows[2].after.as_ref().unwrap()[1],
        text(r#"{"age":40,"data":"zzzzzzzzzz","name":"Pete"}"#)
    );
    // UPDATE ... json_set(age + 1): full before and after documents.
    let u = rows[6];
    assert_eq!(u.kind, RowsKind::Update);
    assert_eq!(
        u.before.as_ref().unwrap()[1],
        text(r#"{"age":24,"data":"xxxxxxxxxx","name":"Joe"}"#)
    );
    assert_eq!(
        u.after.as_ref().unwrap()[1],
        text(r#"{"age":25,"data":"xxxxxxxxxx","name":"Joe"}"#)
    );
    // The partial update (binlog_row_image = MINIMAL): the document is not in the log, the
    // generated columns are.
    let p = rows[12];
    assert_eq!(p.before.as_ref().unwrap()[0], Value::Int(1));
    assert_eq!(p.after.as_ref().unwrap()[1], Value::Unavailable);
    assert_eq!(
        p.after.as_ref().unwrap()[2..],
        [text("Joe"), Value::Int(26)]
    );

    let Some(o) = read("json-opaque.binlog") else {
        return;
    };
    let docs: Vec<&Value> = o
        .rows
        .iter()
        .map(|r| &r.after.as_ref().unwrap()[0])
        .collect();
    assert_eq!(
        docs,
        vec![
            &text(r#"{"a":"base64:type15:VQ=="}"#),
            &text(r#"{"b":"2012-03-18"}"#),
            &text(r#"{"c":"2012-03-18 11:30:45"}"#),
            &text(r#"{"c":"87:31:46.654321"}"#),
            &text(r#"{"d":123.456}"#),
            &text(r#"{"e":9.00}"#),
            &text(r#"{"e":[0,1,true,false]}"#),
            &text(r#"{"e":null}"#),
        ]
    );
}

#[test]
fn enum_set_and_bit_rows() {
    let Some(c) = read("mysql-enum-string-set.000001") else {
        return;
    };
    assert_eq!(c.rows.len(), 3);
    let ins = c.rows[0].after.as_ref().unwrap();
    assert_eq!(c.rows[0].columns, vec!["f1", "f2", "f3", "f4", "f5"]);
    assert_eq!(ins[2], text("var1"));
    assert_eq!(ins[3], text("one,three"));
    assert_eq!(ins[4], text("0123456789"));
    let upd = c.rows[1].after.as_ref().unwrap();
    assert_eq!(upd[0], text("field1"));
    assert_eq!(upd[2], text("variant2"));
    assert_eq!(upd[3], text("two,four"));
    assert_eq!(c.rows[2].kind, RowsKind::Delete);
    assert_eq!(c.rows[2].before.as_ref().unwrap()[3], text("two,four"));

    let Some(b) = read("mysql_type_bit.000001") else {
        return;
    };
    // a BIT(3) = b'100', b = 'foo', c BIT(8) = b'00100000': Bits are little-endian bytes.
    assert_eq!(
        b.rows[0].after.as_ref().unwrap(),
        &vec![Value::Bytes(vec![4]), text("foo"), Value::Bytes(vec![32])]
    );
}

#[test]
fn invisible_columns_compression_and_tagged_gtids() {
    let Some(c) = read("binlog-invisible-columns.000001") else {
        return;
    };
    assert_eq!(c.rows.len(), 3);
    assert_eq!(c.rows[0].columns, vec!["f1", "f2", "f3", "f4", "f5", "f6"]);
    assert_eq!(
        c.rows[0].after.as_ref().unwrap(),
        &vec![
            Value::Int(1),
            Value::Int(2),
            Value::Int(-3),
            text("4"),
            Value::Bytes(vec![5]),
            Value::Int(6_000_000_000)
        ]
    );
    assert_eq!(
        c.rows[2].after.as_ref().unwrap()[..3],
        [Value::Int(111), Value::Int(222), Value::Int(-333)]
    );

    let Some(z) = read("transaction_compression.000001") else {
        return;
    };
    assert_eq!(z.rows.len(), 1, "the row inside the zstd payload");
    assert_eq!(z.rows[0].table.to_string(), "test.tb1");
    assert_eq!(z.rows[0].after.as_ref().unwrap(), &vec![Value::Int(1)]);

    let Some(t) = read("binlog_transaction_with_GTID_TAG.000001") else {
        return;
    };
    assert_eq!(
        t.gtids,
        vec!["55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3"]
    );
    let row = &t.rows[0];
    assert_eq!(
        row.gtid.as_deref(),
        Some("55778904-0299-11f1-b1b8-4ef0c4956feb:mytag:3")
    );
    assert_eq!(
        row.after.as_ref().unwrap()[..2],
        [Value::Int(3), Value::Int(100)]
    );
    match &row.after.as_ref().unwrap()[2] {
        Value::Decimal(d) => assert_eq!((d.unscaled.as_slice(), d.scale), (&[0x61u8, 0xa8][..], 2)),
        other => panic!("{other:?}"),
    }

    let Some(m) = read("mariadb-bin.000001") else {
        return;
    };
    assert_eq!(m.gtids, vec!["0-1-1", "0-1-2"]);
    assert_eq!(m.rows[1].after.as_ref().unwrap()[0], Value::Int(63));
    assert_eq!(
        m.rows[1].after.as_ref().unwrap()[4],
        text("2022-04-20T22:19:55Z")
    );
}

#[test]
fn negative_times_and_minimal_metadata() {
    let Some(t) = read("time_issue.000001") else {
        return;
    };
    // '-507:48:27'
    assert_eq!(
        t.rows[0].after.as_ref().unwrap(),
        &vec![Value::Int(-1_828_107_000_000)]
    );
    let Some(m) = read("minimal_row_metadata.000001") else {
        return;
    };
    // No names with MINIMAL metadata: positional names.
    assert_eq!(m.rows[0].columns, vec!["_1", "_2", "_3", "_4", "_5"]);
}
