//! PostgreSQL types: the catalog facts Sluice needs (from `pg_type` and `pg_enum`) and the
//! mapping of each type to the envelope's semantic kind, as Debezium's defaults do it.

use std::collections::HashMap;

use crate::event::ColumnKind;

/// What Sluice knows about one PostgreSQL type.
#[derive(Debug, Clone, PartialEq)]
pub enum PgType {
    /// `bool`
    Bool,
    /// `int2`
    Int2,
    /// `int4`, `oid`
    Int4,
    /// `int8`
    Int8,
    /// `float4`
    Float4,
    /// `float8`
    Float8,
    /// `numeric`
    Numeric,
    /// `money`
    Money,
    /// Text-like types (text, varchar, bpchar, name, citext, inet, cidr, macaddr, ranges...).
    Text,
    /// `bytea`
    Bytea,
    /// `date`
    Date,
    /// `time`
    Time,
    /// `timetz`
    TimeTz,
    /// `timestamp`
    Timestamp,
    /// `timestamptz`
    TimestampTz,
    /// `interval`
    Interval,
    /// `uuid`
    Uuid,
    /// `json`, `jsonb`
    Json,
    /// `xml`
    Xml,
    /// `point`
    Point,
    /// `hstore` (extension): published as a JSON object (Debezium's `hstore.handling.mode=json`).
    Hstore,
    /// `ltree` (extension)
    Ltree,
    /// `bit`
    Bit,
    /// `varbit`
    VarBit,
    /// A user enum with its labels.
    Enum(Vec<String>),
    /// An array of an element type.
    Array(Box<PgType>),
    /// A domain over a base type, with the domain's type modifier.
    Domain(Box<PgType>, i32),
    /// Anything else: carried as its text form.
    Unknown(String),
}

/// The PostgreSQL-only `[types]` modes that change a column's kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PgModes {
    /// `interval_handling_mode = "string"`.
    pub interval_string: bool,
    /// `hstore_handling_mode = "map"`.
    pub hstore_map: bool,
    /// `include_unknown_datatypes = true`.
    pub include_unknown: bool,
}

impl PgModes {
    /// The modes a connector's `[types]` asks for.
    pub fn from_config(types: &crate::config::TypesConfig) -> Self {
        PgModes {
            interval_string: types.interval_handling_mode == crate::config::IntervalMode::String,
            hstore_map: types.hstore_handling_mode == crate::config::HstoreMode::Map,
            include_unknown: types.include_unknown_datatypes,
        }
    }
}

impl PgType {
    /// The kind of a column of this type under the connector's modes; `None` for a type
    /// Debezium has no mapping for (or an array of one) unless unknown types are included,
    /// when it is the bytes of the text form.
    pub fn kind_in(&self, typmod: i32, modes: &PgModes) -> Option<ColumnKind> {
        Some(match self {
            PgType::Unknown(_) if modes.include_unknown => ColumnKind::Bytes,
            PgType::Unknown(_) => return None,
            PgType::Interval if modes.interval_string => ColumnKind::IntervalString,
            PgType::Hstore if modes.hstore_map => ColumnKind::StringMap,
            PgType::Array(elem) => ColumnKind::Array(Box::new(elem.kind_in(typmod, modes)?)),
            PgType::Domain(base, domain_mod) => {
                return base.kind_in(
                    if *domain_mod >= 0 {
                        *domain_mod
                    } else {
                        typmod
                    },
                    modes,
                )
            }
            other => other.kind(typmod),
        })
    }

    /// Maps a column of this type (with its `atttypmod`) to its semantic kind.
    pub fn kind(&self, typmod: i32) -> ColumnKind {
        match self {
            PgType::Bool => ColumnKind::Boolean,
            PgType::Int2 => ColumnKind::Int16,
            PgType::Int4 => ColumnKind::Int32,
            PgType::Int8 => ColumnKind::Int64,
            PgType::Float4 => ColumnKind::Float32,
            PgType::Float8 => ColumnKind::Float64,
            PgType::Numeric => match numeric_typmod(typmod) {
                Some((precision, scale)) => ColumnKind::Decimal {
                    precision: Some(precision),
                    scale,
                },
                None => ColumnKind::VariableDecimal,
            },
            PgType::Money => ColumnKind::Decimal {
                precision: None,
                scale: 2,
            },
            PgType::Text | PgType::Unknown(_) => ColumnKind::Text,
            PgType::Bytea => ColumnKind::Bytes,
            PgType::Date => ColumnKind::Date,
            PgType::Time => {
                if (0..=3).contains(&typmod) {
                    ColumnKind::TimeMillis
                } else {
                    ColumnKind::TimeMicros
                }
            }
            PgType::TimeTz => ColumnKind::ZonedTime,
            PgType::Timestamp => {
                if (0..=3).contains(&typmod) {
                    ColumnKind::TimestampMillis
                } else {
                    ColumnKind::TimestampMicros
                }
            }
            PgType::TimestampTz => ColumnKind::ZonedTimestamp,
            PgType::Interval => ColumnKind::Interval,
            PgType::Uuid => ColumnKind::Uuid,
            PgType::Json => ColumnKind::Json,
            PgType::Xml => ColumnKind::Xml,
            PgType::Point => ColumnKind::Point,
            PgType::Hstore => ColumnKind::Json,
            PgType::Ltree => ColumnKind::Ltree,
            // As Debezium: one bit is a boolean (bit(1) and bit varying(1)); an unbounded bit
            // varying has the largest length.
            PgType::Bit | PgType::VarBit if typmod == 1 => ColumnKind::Boolean,
            PgType::VarBit if typmod < 0 => ColumnKind::Bits {
                length: i32::MAX as u32,
            },
            PgType::Bit | PgType::VarBit => ColumnKind::Bits {
                length: typmod.max(0) as u32,
            },
            PgType::Enum(labels) => ColumnKind::Enum {
                allowed: labels.clone(),
            },
            PgType::Array(elem) => ColumnKind::Array(Box::new(elem.kind(typmod))),
            PgType::Domain(base, domain_mod) => base.kind(if *domain_mod >= 0 {
                *domain_mod
            } else {
                typmod
            }),
        }
    }

    /// The type with domains removed, and the type modifier that applies.
    pub fn resolve(&self, typmod: i32) -> (&PgType, i32) {
        match self {
            PgType::Domain(base, m) => base.resolve(if *m >= 0 { *m } else { typmod }),
            other => (other, typmod),
        }
    }
}

/// `numeric(p, s)` modifier → (precision, scale); `None` when unconstrained.
fn numeric_typmod(typmod: i32) -> Option<(u32, u32)> {
    if typmod < 4 {
        return None;
    }
    let m = (typmod - 4) as u32;
    Some(((m >> 16) & 0xffff, m & 0xffff))
}

/// A row of `pg_type`.
#[derive(Debug, Clone)]
pub struct TypeRow {
    /// OID.
    pub oid: u32,
    /// `typname`.
    pub name: String,
    /// `nspname`.
    pub namespace: String,
    /// `typtype`: b base, d domain, e enum, r range, c composite, p pseudo, m multirange.
    pub typtype: char,
    /// `typelem` (array element), 0 when none.
    pub elem: u32,
    /// `typcategory`.
    pub category: char,
    /// `typbasetype` (domains).
    pub base: u32,
    /// `typtypmod` (domains).
    pub typmod: i32,
}

/// The loaded type catalog.
#[derive(Debug, Default)]
pub struct TypeCatalog {
    rows: HashMap<u32, TypeRow>,
    enums: HashMap<u32, Vec<String>>,
    resolved: HashMap<u32, PgType>,
}

impl TypeCatalog {
    /// Builds a catalog from `pg_type` rows and enum labels (in sort order).
    pub fn new(rows: Vec<TypeRow>, enums: HashMap<u32, Vec<String>>) -> Self {
        TypeCatalog {
            rows: rows.into_iter().map(|r| (r.oid, r)).collect(),
            enums,
            resolved: HashMap::new(),
        }
    }

    /// Whether the catalog knows an OID.
    pub fn knows(&self, oid: u32) -> bool {
        self.rows.contains_key(&oid)
    }

    /// Resolves a type OID; unknown OIDs become `Unknown`.
    pub fn get(&mut self, oid: u32) -> PgType {
        if let Some(t) = self.resolved.get(&oid) {
            return t.clone();
        }
        let t = self.build(oid, 0);
        self.resolved.insert(oid, t.clone());
        t
    }

    fn build(&self, oid: u32, depth: u32) -> PgType {
        let Some(row) = self.rows.get(&oid) else {
            return PgType::Unknown(format!("oid {oid}"));
        };
        if depth > 8 {
            return PgType::Unknown(row.name.clone());
        }
        match row.typtype {
            'e' => return PgType::Enum(self.enums.get(&oid).cloned().unwrap_or_default()),
            'd' => return PgType::Domain(Box::new(self.build(row.base, depth + 1)), row.typmod),
            _ => {}
        }
        if row.category == 'A' && row.elem != 0 {
            return PgType::Array(Box::new(self.build(row.elem, depth + 1)));
        }
        if row.namespace != "pg_catalog" {
            return match row.name.as_str() {
                "citext" => PgType::Text,
                "hstore" => PgType::Hstore,
                "ltree" => PgType::Ltree,
                _ => PgType::Unknown(row.name.clone()),
            };
        }
        match row.name.as_str() {
            "bool" => PgType::Bool,
            "int2" => PgType::Int2,
            "int4" => PgType::Int4,
            // Unsigned 32-bit on the server: values above 2^31 need int64 (Debezium: INT64).
            "int8" | "oid" | "xid" => PgType::Int8,
            "float4" => PgType::Float4,
            "float8" => PgType::Float8,
            "numeric" => PgType::Numeric,
            "money" => PgType::Money,
            "text" | "varchar" | "bpchar" | "name" | "char" | "inet" | "cidr" | "macaddr"
            | "macaddr8" => PgType::Text,
            "bytea" => PgType::Bytea,
            "date" => PgType::Date,
            "time" => PgType::Time,
            "timetz" => PgType::TimeTz,
            "timestamp" => PgType::Timestamp,
            "timestamptz" => PgType::TimestampTz,
            "interval" => PgType::Interval,
            "uuid" => PgType::Uuid,
            "json" | "jsonb" => PgType::Json,
            "xml" => PgType::Xml,
            "point" => PgType::Point,
            "bit" => PgType::Bit,
            "varbit" => PgType::VarBit,
            _ if row.typtype == 'r' || row.typtype == 'm' => PgType::Text,
            other => PgType::Unknown(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(oid: u32, name: &str, typtype: char, elem: u32, category: char, base: u32) -> TypeRow {
        TypeRow {
            oid,
            name: name.into(),
            namespace: if oid < 16384 { "pg_catalog" } else { "public" }.into(),
            typtype,
            elem,
            category,
            base,
            typmod: -1,
        }
    }

    #[test]
    fn maps_like_debezium() {
        let mut enums = HashMap::new();
        enums.insert(20000, vec!["new".to_string(), "paid".to_string()]);
        let mut cat = TypeCatalog::new(
            vec![
                row(1700, "numeric", 'b', 0, 'N', 0),
                row(1231, "_numeric", 'b', 1700, 'A', 0),
                row(1083, "time", 'b', 0, 'D', 0),
                row(1560, "bit", 'b', 0, 'V', 0),
                row(20000, "status", 'e', 0, 'E', 0),
                row(20001, "posint", 'd', 0, 'N', 23),
                row(23, "int4", 'b', 0, 'N', 0),
                row(600, "point", 'b', 0, 'G', 0),
                row(26, "oid", 'b', 0, 'N', 0),
                row(1562, "varbit", 'b', 0, 'V', 0),
                row(1028, "_oid", 'b', 26, 'A', 0),
            ],
            enums,
        );
        let numeric_10_2 = ((10 << 16) | 2) + 4;
        assert_eq!(
            cat.get(1700).kind(numeric_10_2),
            ColumnKind::Decimal {
                precision: Some(10),
                scale: 2
            }
        );
        assert_eq!(cat.get(1700).kind(-1), ColumnKind::VariableDecimal);
        assert_eq!(cat.get(26).kind(-1), ColumnKind::Int64);
        assert_eq!(cat.get(1562).kind(1), ColumnKind::Boolean);
        assert_eq!(
            cat.get(1562).kind(-1),
            ColumnKind::Bits {
                length: 2_147_483_647
            }
        );
        assert_eq!(cat.get(1562).kind(5), ColumnKind::Bits { length: 5 });
        assert_eq!(
            super::super::values::parse(&cat.get(26), -1, &ColumnKind::Int64, "4000000000"),
            Ok(crate::event::Value::Int(4_000_000_000))
        );
        assert_eq!(
            cat.get(1028).kind(-1),
            ColumnKind::Array(Box::new(ColumnKind::Int64))
        );
        assert_eq!(
            cat.get(1231).kind(-1),
            ColumnKind::Array(Box::new(ColumnKind::VariableDecimal))
        );
        assert_eq!(cat.get(1083).kind(3), ColumnKind::TimeMillis);
        assert_eq!(cat.get(1083).kind(-1), ColumnKind::TimeMicros);
        assert_eq!(cat.get(1560).kind(1), ColumnKind::Boolean);
        assert_eq!(cat.get(1560).kind(8), ColumnKind::Bits { length: 8 });
        assert_eq!(
            cat.get(20000).kind(-1),
            ColumnKind::Enum {
                allowed: vec!["new".into(), "paid".into()]
            }
        );
        assert_eq!(cat.get(20001).kind(-1), ColumnKind::Int32);
        assert_eq!(cat.get(600).kind(-1), ColumnKind::Point);
        assert!(matches!(cat.get(99999), PgType::Unknown(_)));
    }
}
