//! The Avro binary encoding of Sluice's envelopes, written straight from the row values.
//!
//! `apache-avro` builds a `Value` tree (a `String` per field name) and validates it against
//! the schema for every record; `scripts/bench-pg` measured that at half the speed of JSON.
//! Since Sluice generates the schemas itself, it writes the binary form directly here, in
//! exactly the field order of `avro::envelope_schema` / `avro::key_schema`. Unit tests
//! decode the output with `apache-avro` and the integration tests with fastavro.

use crate::event::{ColumnKind, Value};

pub(super) use super::avro_schema::Union;
use super::json_value::UNAVAILABLE_VALUE;

/// A value that the column's Avro type cannot hold (a NULL in a NOT NULL column).
#[derive(Debug, thiserror::Error)]
#[error("column {column} is declared NOT NULL but the change carries no value for it")]
pub struct MissingValue {
    /// The column.
    pub column: String,
}

/// Appends Avro's zig-zag varint `long` (also used for `int`).
pub fn long(out: &mut Vec<u8>, n: i64) {
    let mut z = ((n << 1) ^ (n >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

/// Appends `bytes` or `string`.
pub fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    long(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// Appends a union branch index.
pub fn branch(out: &mut Vec<u8>, index: i64) {
    long(out, index);
}

/// Appends `["null", "long"]` holding `v`.
pub fn opt_long(out: &mut Vec<u8>, v: Option<i64>) {
    match v {
        Some(v) => {
            branch(out, 1);
            long(out, v);
        }
        None => branch(out, 0),
    }
}

/// Appends `["null", "string"]` holding `v`.
pub fn opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(v) => {
            branch(out, 1);
            bytes(out, v.as_bytes());
        }
        None => branch(out, 0),
    }
}

/// A geometry's well-known binary and its `["null", "int"]` SRID.
fn wkb_srid(out: &mut Vec<u8>, wkb: &[u8], srid: Option<i32>) {
    bytes(out, wkb);
    opt_long(out, srid.map(i64::from));
}

/// Array items: optional (`["null", T]`) except enum labels, as Debezium declares them.
fn item_union(elem: &ColumnKind) -> Union {
    if matches!(elem, ColumnKind::Enum { .. }) {
        Union::Required
    } else {
        Union::NullFirst
    }
}

/// Whether a value is written as null for its kind.
fn is_null(kind: &ColumnKind, v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Unavailable => !matches!(
            kind,
            ColumnKind::Bytes
                | ColumnKind::Array(_)
                | ColumnKind::Text
                | ColumnKind::Json
                | ColumnKind::Xml
                | ColumnKind::Ltree
                | ColumnKind::Enum { .. }
                | ColumnKind::Uuid
        ),
        _ => false,
    }
}

/// Appends one column value; optional columns are `["null", T]` unions, or `[T, "null"]`
/// ones when they have a default.
pub fn value(
    out: &mut Vec<u8>,
    name: &str,
    kind: &ColumnKind,
    v: &Value,
    union: Union,
) -> Result<(), MissingValue> {
    if is_null(kind, v) {
        match union {
            Union::NullFirst => branch(out, 0),
            Union::NullLast => branch(out, 1),
            Union::Required => {
                return Err(MissingValue {
                    column: name.to_string(),
                })
            }
        }
        return Ok(());
    }
    match union {
        Union::NullFirst => branch(out, 1),
        Union::NullLast => branch(out, 0),
        Union::Required => {}
    }
    match (v, kind) {
        (Value::Unavailable, ColumnKind::Array(elem)) => {
            long(out, 1);
            value(out, name, elem, &Value::Unavailable, item_union(elem))?;
            long(out, 0);
        }
        (Value::Unavailable, _) => bytes(out, UNAVAILABLE_VALUE.as_bytes()),
        (Value::Bool(b), _) => out.push(u8::from(*b)),
        (Value::Int(i), _) => long(out, *i),
        (Value::Float(f), ColumnKind::Float32) => out.extend_from_slice(&(*f as f32).to_le_bytes()),
        (Value::Float(f), _) => out.extend_from_slice(&f.to_le_bytes()),
        (Value::Decimal(d), ColumnKind::VariableDecimal) => {
            long(out, d.scale as i64);
            bytes(out, &d.unscaled);
        }
        (Value::Decimal(d), _) => bytes(out, &d.unscaled),
        (Value::Text(s), _) => bytes(out, s.as_bytes()),
        (Value::Bytes(b), _) => bytes(out, b),
        (Value::Array(items), kind) => {
            let elem = match kind {
                ColumnKind::Array(e) => e.as_ref(),
                other => other,
            };
            if !items.is_empty() {
                long(out, items.len() as i64);
                let union = item_union(elem);
                for item in items {
                    value(out, name, elem, item, union)?;
                }
            }
            long(out, 0);
        }
        (Value::Geometry { wkb, srid }, ColumnKind::Point) => {
            let (x, y) = super::json_value::point_xy(wkb).unwrap_or((f64::NAN, f64::NAN));
            out.extend_from_slice(&x.to_le_bytes());
            out.extend_from_slice(&y.to_le_bytes());
            // The Point record's wkb is optional: ["null", "bytes"].
            branch(out, 1);
            wkb_srid(out, wkb, *srid);
        }
        (Value::Geometry { wkb, srid }, _) => wkb_srid(out, wkb, *srid),
        (Value::Map(pairs), _) => {
            // A map block of string keys and ["null", "string"] values, then the end block.
            if !pairs.is_empty() {
                long(out, pairs.len() as i64);
                for (k, v) in pairs {
                    bytes(out, k.as_bytes());
                    opt_str(out, v.as_deref());
                }
            }
            long(out, 0);
        }
        (Value::Null, _) => unreachable!("handled above"),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_spec() {
        let enc = |n| {
            let mut v = Vec::new();
            long(&mut v, n);
            v
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(-1), [0x01]);
        assert_eq!(enc(1), [0x02]);
        assert_eq!(enc(-64), [0x7f]);
        assert_eq!(enc(64), [0x80, 0x01]);
        assert_eq!(
            enc(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn null_in_required_column_is_an_error() {
        let mut v = Vec::new();
        assert!(value(
            &mut v,
            "id",
            &ColumnKind::Int32,
            &Value::Null,
            Union::Required
        )
        .is_err());
        assert!(value(
            &mut v,
            "n",
            &ColumnKind::Int32,
            &Value::Null,
            Union::NullFirst
        )
        .is_ok());
        assert!(value(
            &mut v,
            "n",
            &ColumnKind::Int32,
            &Value::Null,
            Union::NullLast
        )
        .is_ok());
        assert!(value(
            &mut v,
            "n",
            &ColumnKind::Int32,
            &Value::Int(-1),
            Union::NullLast
        )
        .is_ok());
        assert_eq!(v, [0, 2, 0, 1]);
    }
}
