//! The MySQL / MariaDB table with every listed type, one row of values, and the values a
//! Debezium consumer reads for it (shared by the JSON and Avro tests).

use base64::Engine;
use serde_json::{json, Value};

pub const TABLE: &str = "CREATE TABLE all_types (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, bo BOOLEAN,
  si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
  i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  f FLOAT, d DOUBLE, dec1 DECIMAL(10,3), dec2 DECIMAL(30,10),
  b1 BIT(1), b12 BIT(12),
  c CHAR(5), vc VARCHAR(50), t TEXT, lat VARCHAR(10) CHARACTER SET latin1,
  bin BINARY(4), vb VARBINARY(10), bl BLOB,
  j JSON,
  e ENUM('red','green','blue'), s SET('a','b','c'),
  y YEAR, dt DATE, tm TIME, tm6 TIME(6),
  dtm DATETIME, dtm3 DATETIME(3), dtm6 DATETIME(6), ts TIMESTAMP(6) NULL,
  g GEOMETRY, p POINT,
  n INT NULL
)";

/// The VALUES list after the id (same for the snapshot row and the streamed one).
pub const VALUES: &str = "-128, 255, TRUE, -32768, 65535, -8388608, 16777215,
  -2147483648, 4294967295, -9223372036854775808, 9223372036854775807,
  1.5, 12345.6789, -12345.678, 12345678901234567890.1234567890,
  b'1', b'101000000001',
  'ab', 'héllo wörld', 'a longer text', 'café',
  x'01020000', x'00ff10', x'deadbeef',
  '{\"k\": [1, 2]}',
  'green', 'a,c',
  2024, '2024-02-29', '-838:59:59', '12:34:56.789012',
  '2024-01-02 03:04:05', '2024-01-02 03:04:05.678', '2024-01-02 03:04:05.123456',
  '2024-01-02 05:04:05.123456',
  ST_GeomFromText('POINT(1 2)', 4326), POINT(3, 4),
  NULL";

fn b64(bytes: &[u8]) -> Value {
    json!(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Big-endian two's complement, minimal length (Kafka Connect's Decimal bytes).
fn dec(unscaled: i128) -> Value {
    let bytes = unscaled.to_be_bytes();
    let mut start = 0;
    while start < 15 {
        let (b, next) = (bytes[start], bytes[start + 1]);
        if (b == 0 && next & 0x80 == 0) || (b == 0xff && next & 0x80 != 0) {
            start += 1;
        } else {
            break;
        }
    }
    b64(&bytes[start..])
}

fn point_wkb(x: f64, y: f64) -> Vec<u8> {
    let mut w = vec![1u8, 1, 0, 0, 0];
    w.extend_from_slice(&x.to_le_bytes());
    w.extend_from_slice(&y.to_le_bytes());
    w
}

/// Debezium's Point struct of a MySQL POINT with SRID 0.
fn point(x: f64, y: f64) -> Value {
    json!({"x": x, "y": y, "wkb": b64(&point_wkb(x, y)), "srid": null})
}

pub fn expected(id: i64) -> Value {
    json!({
        "id": id,
        "ti": -128, "tiu": 255, "bo": 1,
        "si": -32768, "siu": 65535, "mi": -8388608, "miu": 16777215,
        "i": -2147483648i64, "iu": 4294967295i64, "bi": i64::MIN, "biu": i64::MAX,
        "f": 1.5, "d": 12345.6789,
        "dec1": dec(-12_345_678), "dec2": dec(123_456_789_012_345_678_901_234_567_890),
        "b1": true, "b12": b64(&[0x01, 0x0A]),
        "c": "ab", "vc": "héllo wörld", "t": "a longer text", "lat": "café",
        "bin": b64(&[1, 2, 0, 0]), "vb": b64(&[0, 0xff, 0x10]), "bl": b64(&[0xde, 0xad, 0xbe, 0xef]),
        "j": "{\"k\": [1, 2]}",
        "e": "green", "s": "a,c",
        "y": 2024, "dt": 19782, "tm": -3_020_399_000_000i64, "tm6": 45_296_789_012i64,
        "dtm": 1_704_164_645_000i64, "dtm3": 1_704_164_645_678i64, "dtm6": 1_704_164_645_123_456i64,
        "ts": "2024-01-02T03:04:05.123456Z",
        "g": {"wkb": b64(&point_wkb(1.0, 2.0)), "srid": 4326},
        "p": point(3.0, 4.0),
        "n": null
    })
}
