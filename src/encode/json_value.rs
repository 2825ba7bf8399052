//! Column values written as JSON text (Debezium's JsonConverter representation of each
//! type), shared by the JSON envelopes, schema defaults, the outbox router and Avro's point
//! decoding.

use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::event::{ColumnKind, Value};

/// Debezium's placeholder for a value the database did not send (unchanged TOAST).
pub(crate) const UNAVAILABLE_VALUE: &str = "__debezium_unavailable_value";

pub(super) fn push_int(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

pub(super) fn write_float(out: &mut String, v: f64, single: bool) {
    if v.is_nan() {
        out.push_str("\"NaN\"");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        });
    } else if single {
        let _ = write!(out, "{:?}", v as f32);
    } else {
        let _ = write!(out, "{v:?}");
    }
}

/// One value as its kind prescribes, as a JSON tree (schema defaults).
pub(super) fn value_json(kind: &ColumnKind, value: &Value) -> serde_json::Value {
    let mut out = String::new();
    write_value(&mut out, kind, value);
    serde_json::from_str(&out).unwrap_or(serde_json::Value::Null)
}

/// The coordinates of a 2D point's well-known binary (either byte order).
pub(super) fn point_xy(wkb: &[u8]) -> Option<(f64, f64)> {
    if wkb.len() != 21 {
        return None;
    }
    let little = wkb[0] == 1;
    let num = |b: &[u8]| -> [u8; 8] { b.try_into().expect("8 bytes") };
    let (ty, x, y) = if little {
        (
            u32::from_le_bytes(wkb[1..5].try_into().expect("4 bytes")),
            f64::from_le_bytes(num(&wkb[5..13])),
            f64::from_le_bytes(num(&wkb[13..21])),
        )
    } else {
        (
            u32::from_be_bytes(wkb[1..5].try_into().expect("4 bytes")),
            f64::from_be_bytes(num(&wkb[5..13])),
            f64::from_be_bytes(num(&wkb[13..21])),
        )
    };
    (ty == 1).then_some((x, y))
}

/// Writes one value as its kind prescribes.
pub(super) fn write_value(out: &mut String, kind: &ColumnKind, value: &Value) {
    match (value, kind) {
        (Value::Null, _) => out.push_str("null"),
        (Value::Unavailable, ColumnKind::Bytes) => {
            out.push('"');
            out.push_str(&BASE64.encode(UNAVAILABLE_VALUE));
            out.push('"');
        }
        (Value::Unavailable, ColumnKind::Array(elem)) => {
            out.push('[');
            write_value(out, elem, &Value::Unavailable);
            out.push(']');
        }
        (
            Value::Unavailable,
            ColumnKind::Text
            | ColumnKind::Json
            | ColumnKind::Xml
            | ColumnKind::Ltree
            | ColumnKind::Enum { .. }
            | ColumnKind::Uuid,
        ) => write_str(out, UNAVAILABLE_VALUE),
        (Value::Unavailable, _) => out.push_str("null"),
        (Value::Bool(b), _) => out.push_str(if *b { "true" } else { "false" }),
        (Value::Int(i), _) => push_int(out, *i),
        (Value::Float(f), ColumnKind::Float32) => write_float(out, *f, true),
        (Value::Float(f), _) => write_float(out, *f, false),
        (Value::Decimal(d), ColumnKind::VariableDecimal) => {
            let _ = write!(out, "{{\"scale\":{},\"value\":\"", d.scale);
            BASE64.encode_string(&d.unscaled, out);
            out.push_str("\"}");
        }
        (Value::Decimal(d), _) => {
            out.push('"');
            BASE64.encode_string(&d.unscaled, out);
            out.push('"');
        }
        (Value::Text(s), _) => write_str(out, s),
        (Value::Geometry { wkb, srid }, ColumnKind::Point) => {
            let (x, y) = point_xy(wkb).unwrap_or((f64::NAN, f64::NAN));
            out.push_str("{\"x\":");
            write_float(out, x, false);
            out.push_str(",\"y\":");
            write_float(out, y, false);
            out.push(',');
            write_wkb_srid(out, wkb, *srid);
        }
        (Value::Geometry { wkb, srid }, _) => {
            out.push('{');
            write_wkb_srid(out, wkb, *srid);
        }
        (Value::Bytes(b), _) => {
            out.push('"');
            BASE64.encode_string(b, out);
            out.push('"');
        }
        (Value::Map(pairs), _) => {
            out.push('{');
            for (i, (k, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                match v {
                    Some(v) => write_str(out, v),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
        (Value::Array(items), ColumnKind::Array(elem)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, elem, item);
            }
            out.push(']');
        }
        (Value::Array(items), other) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, other, item);
            }
            out.push(']');
        }
    }
}

/// The `"wkb":"<base64>","srid":<id or null>}` tail of a geometry struct.
pub(super) fn write_wkb_srid(out: &mut String, wkb: &[u8], srid: Option<i32>) {
    out.push_str("\"wkb\":\"");
    BASE64.encode_string(wkb, out);
    out.push_str("\",\"srid\":");
    match srid {
        Some(id) => push_int(out, i64::from(id)),
        None => out.push_str("null"),
    }
    out.push('}');
}

/// Whether any byte needs escaping in a JSON string (a control character, `"` or `\`),
/// eight bytes at a time: `(x - n·0x01…) & !x & 0x80…` is non-zero exactly when some byte
/// of `x` is below `n` (n ≤ 0x80); `"` and `\` are found as zero bytes of `x ^ their
/// pattern`.
pub(super) fn needs_escape(s: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |x: u64, n: u8| x.wrapping_sub(ONES * u64::from(n)) & !x & HIGH;
    let mut chunks = s.chunks_exact(8);
    for c in &mut chunks {
        let x = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let found = below(x, 0x20)
            | below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1);
        if found != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

/// Writes a JSON string literal.
pub(super) fn write_str(out: &mut String, s: &str) {
    if !needs_escape(s.as_bytes()) {
        out.push('"');
        out.push_str(s);
        out.push('"');
        return;
    }
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: Option<&str> = match b {
            b'"' => Some("\\\""),
            b'\\' => Some("\\\\"),
            b'\n' => Some("\\n"),
            b'\r' => Some("\\r"),
            b'\t' => Some("\\t"),
            0..=0x1f => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}
