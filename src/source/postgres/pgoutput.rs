//! The pgoutput logical replication message format (protocol version 1), one struct per
//! message, parsed with checked reads: bytes from the network never cause a panic.
//!
//! Layouts follow PostgreSQL's "Logical Replication Message Formats" chapter.

use bytes::Bytes;

/// A malformed or unexpected pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message ended before a field.
    #[error(
        "pgoutput message '{tag}' is truncated: needed {needed} more bytes at offset {offset}"
    )]
    Truncated {
        /// Message tag.
        tag: char,
        /// Offset of the field.
        offset: usize,
        /// Bytes missing.
        needed: usize,
    },
    /// A string is not NUL-terminated.
    #[error("pgoutput message '{tag}' has an unterminated string at offset {offset}")]
    Unterminated {
        /// Message tag.
        tag: char,
        /// Offset of the string.
        offset: usize,
    },
    /// An unknown message tag.
    #[error("unknown pgoutput message tag {0:#04x}")]
    UnknownTag(u8),
    /// An unknown tuple column kind.
    #[error("pgoutput message '{tag}' has an unknown tuple column kind {kind:#04x}")]
    UnknownColumnKind {
        /// Message tag.
        tag: char,
        /// The kind byte.
        kind: u8,
    },
    /// An unexpected byte where a marker was expected.
    #[error("pgoutput message '{tag}' has unexpected marker {marker:#04x} at offset {offset}")]
    UnexpectedMarker {
        /// Message tag.
        tag: char,
        /// The byte found.
        marker: u8,
        /// Where.
        offset: usize,
    },
    /// The message is empty.
    #[error("empty pgoutput message")]
    Empty,
}

/// `B`: start of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Begin {
    /// LSN of the commit record.
    pub final_lsn: u64,
    /// Commit time, microseconds since 2000-01-01.
    pub commit_time: i64,
    /// Transaction id.
    pub xid: u32,
}

/// `C`: end of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// Flags (unused, 0).
    pub flags: u8,
    /// LSN of the commit record.
    pub commit_lsn: u64,
    /// End LSN of the transaction.
    pub end_lsn: u64,
    /// Commit time, microseconds since 2000-01-01.
    pub commit_time: i64,
}

/// `O`: origin of the following transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// Commit LSN on the origin server.
    pub commit_lsn: u64,
    /// Origin name.
    pub name: String,
}

/// One column of a `Relation` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationColumn {
    /// Flags: 1 marks a replica identity (key) column.
    pub flags: u8,
    /// Column name.
    pub name: String,
    /// Type OID.
    pub type_oid: u32,
    /// Type modifier (`atttypmod`), -1 when none.
    pub type_modifier: i32,
}

/// `R`: a table's shape, sent before its first change and after each change of shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    /// Relation OID.
    pub oid: u32,
    /// Schema (namespace) name.
    pub namespace: String,
    /// Table name.
    pub name: String,
    /// Replica identity: `d` default, `n` nothing, `f` full, `i` index.
    pub replica_identity: u8,
    /// Columns in table order.
    pub columns: Vec<RelationColumn>,
}

/// `Y`: a non-builtin type used by a following Relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeMessage {
    /// Type OID.
    pub oid: u32,
    /// Schema name.
    pub namespace: String,
    /// Type name.
    pub name: String,
}

/// One column value of a tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TupleValue {
    /// `n`: NULL.
    Null,
    /// `u`: unchanged TOASTed value, not sent.
    Unchanged,
    /// `t`: text representation.
    Text(Bytes),
    /// `b`: binary representation.
    Binary(Bytes),
}

/// `I`: a new row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insert {
    /// Relation OID.
    pub relation: u32,
    /// The row.
    pub new: Vec<TupleValue>,
}

/// Which old image an update or delete carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OldKind {
    /// `K`: key columns only (others NULL).
    Key,
    /// `O`: the whole old row (REPLICA IDENTITY FULL).
    Full,
}

/// `U`: an updated row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    /// Relation OID.
    pub relation: u32,
    /// Old image, when the replica identity provides one.
    pub old: Option<(OldKind, Vec<TupleValue>)>,
    /// New row.
    pub new: Vec<TupleValue>,
}

/// `D`: a deleted row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    /// Relation OID.
    pub relation: u32,
    /// Old image (key or full).
    pub old: (OldKind, Vec<TupleValue>),
}

/// `T`: truncated tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Truncate {
    /// Option bits: 1 CASCADE, 2 RESTART IDENTITY.
    pub options: u8,
    /// Relation OIDs.
    pub relations: Vec<u32>,
}

/// `M`: a logical decoding message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// 1 when transactional.
    pub flags: u8,
    /// LSN of the message.
    pub lsn: u64,
    /// Prefix.
    pub prefix: String,
    /// Content.
    pub content: Bytes,
}

/// Any pgoutput message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgOutputMessage {
    /// `B`
    Begin(Begin),
    /// `C`
    Commit(Commit),
    /// `O`
    Origin(Origin),
    /// `R`
    Relation(Relation),
    /// `Y`
    Type(TypeMessage),
    /// `I`
    Insert(Insert),
    /// `U`
    Update(Update),
    /// `D`
    Delete(Delete),
    /// `T`
    Truncate(Truncate),
    /// `M`
    Message(Message),
}

struct Reader {
    tag: char,
    buf: Bytes,
    pos: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        let Some(end) = end else {
            return Err(DecodeError::Truncated {
                tag: self.tag,
                offset: self.pos,
                needed: n.saturating_sub(self.buf.len().saturating_sub(self.pos)),
            });
        };
        let out = self.buf.slice(self.pos..end);
        self.pos = end;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i32(&mut self) -> Result<i32, DecodeError> {
        Ok(self.u32()? as i32)
    }
    fn u64(&mut self) -> Result<u64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(&b);
        Ok(u64::from_be_bytes(a))
    }
    fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(self.u64()? as i64)
    }
    fn cstr(&mut self) -> Result<String, DecodeError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default();
        let Some(nul) = rest.iter().position(|b| *b == 0) else {
            return Err(DecodeError::Unterminated {
                tag: self.tag,
                offset: self.pos,
            });
        };
        let s = String::from_utf8_lossy(&rest[..nul]).into_owned();
        self.pos += nul + 1;
        Ok(s)
    }
    fn tuple(&mut self) -> Result<Vec<TupleValue>, DecodeError> {
        let n = self.u16()? as usize;
        let mut values = Vec::with_capacity(n.min(1664));
        for _ in 0..n {
            let kind = self.u8()?;
            values.push(match kind {
                b'n' => TupleValue::Null,
                b'u' => TupleValue::Unchanged,
                b't' => {
                    let len = self.u32()? as usize;
                    TupleValue::Text(self.take(len)?)
                }
                b'b' => {
                    let len = self.u32()? as usize;
                    TupleValue::Binary(self.take(len)?)
                }
                other => {
                    return Err(DecodeError::UnknownColumnKind {
                        tag: self.tag,
                        kind: other,
                    })
                }
            });
        }
        Ok(values)
    }
    fn old_kind(&mut self) -> Result<OldKind, DecodeError> {
        let offset = self.pos;
        match self.u8()? {
            b'K' => Ok(OldKind::Key),
            b'O' => Ok(OldKind::Full),
            marker => Err(DecodeError::UnexpectedMarker {
                tag: self.tag,
                marker,
                offset,
            }),
        }
    }
}

impl PgOutputMessage {
    /// Parses one message (the body of an XLogData record).
    pub fn parse(buf: Bytes) -> Result<Self, DecodeError> {
        let Some(&tag) = buf.first() else {
            return Err(DecodeError::Empty);
        };
        let mut r = Reader {
            tag: tag as char,
            buf,
            pos: 1,
        };
        Ok(match tag {
            b'B' => PgOutputMessage::Begin(Begin {
                final_lsn: r.u64()?,
                commit_time: r.i64()?,
                xid: r.u32()?,
            }),
            b'C' => PgOutputMessage::Commit(Commit {
                flags: r.u8()?,
                commit_lsn: r.u64()?,
                end_lsn: r.u64()?,
                commit_time: r.i64()?,
            }),
            b'O' => PgOutputMessage::Origin(Origin {
                commit_lsn: r.u64()?,
                name: r.cstr()?,
            }),
            b'R' => PgOutputMessage::Relation(Relation::read(&mut r)?),
            b'Y' => PgOutputMessage::Type(TypeMessage {
                oid: r.u32()?,
                namespace: r.cstr()?,
                name: r.cstr()?,
            }),
            b'I' => {
                let relation = r.u32()?;
                let offset = r.pos;
                let marker = r.u8()?;
                if marker != b'N' {
                    return Err(DecodeError::UnexpectedMarker {
                        tag: 'I',
                        marker,
                        offset,
                    });
                }
                PgOutputMessage::Insert(Insert {
                    relation,
                    new: r.tuple()?,
                })
            }
            b'U' => PgOutputMessage::Update(Update::read(&mut r)?),
            b'D' => {
                let relation = r.u32()?;
                let kind = r.old_kind()?;
                PgOutputMessage::Delete(Delete {
                    relation,
                    old: (kind, r.tuple()?),
                })
            }
            b'T' => {
                let n = r.u32()? as usize;
                let options = r.u8()?;
                let mut relations = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    relations.push(r.u32()?);
                }
                PgOutputMessage::Truncate(Truncate { options, relations })
            }
            b'M' => {
                let flags = r.u8()?;
                let lsn = r.u64()?;
                let prefix = r.cstr()?;
                let len = r.u32()? as usize;
                PgOutputMessage::Message(Message {
                    flags,
                    lsn,
                    prefix,
                    content: r.take(len)?,
                })
            }
            other => return Err(DecodeError::UnknownTag(other)),
        })
    }
}

impl Relation {
    /// Reads the body of an `R` message.
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let oid = r.u32()?;
        let namespace = r.cstr()?;
        let name = r.cstr()?;
        let replica_identity = r.u8()?;
        let n = r.u16()? as usize;
        let mut columns = Vec::with_capacity(n.min(1664));
        for _ in 0..n {
            columns.push(RelationColumn {
                flags: r.u8()?,
                name: r.cstr()?,
                type_oid: r.u32()?,
                type_modifier: r.i32()?,
            });
        }
        Ok(Relation {
            oid,
            namespace,
            name,
            replica_identity,
            columns,
        })
    }
}

impl Update {
    /// Reads the body of a `U` message: the optional old tuple (`K` key or `O` full old
    /// row), then `N` and the new tuple.
    fn read(r: &mut Reader) -> Result<Self, DecodeError> {
        let relation = r.u32()?;
        let offset = r.pos;
        let marker = r.u8()?;
        let old = match marker {
            b'K' | b'O' => {
                r.pos = offset;
                let kind = r.old_kind()?;
                let tuple = r.tuple()?;
                let offset = r.pos;
                let n = r.u8()?;
                if n != b'N' {
                    return Err(DecodeError::UnexpectedMarker {
                        tag: 'U',
                        marker: n,
                        offset,
                    });
                }
                Some((kind, tuple))
            }
            b'N' => None,
            marker => {
                return Err(DecodeError::UnexpectedMarker {
                    tag: 'U',
                    marker,
                    offset,
                })
            }
        };
        Ok(Update {
            relation,
            old,
            new: r.tuple()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relation_bytes() -> Vec<u8> {
        let mut b = vec![b'R'];
        b.extend(16384u32.to_be_bytes());
        b.extend(b"public\0items\0");
        b.push(b'd');
        b.extend(2u16.to_be_bytes());
        b.push(1);
        b.extend(b"id\0");
        b.extend(23u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b.push(0);
        b.extend(b"name\0");
        b.extend(25u32.to_be_bytes());
        b.extend((-1i32).to_be_bytes());
        b
    }

    #[test]
    fn parses_relation_and_update() {
        let msg = PgOutputMessage::parse(Bytes::from(relation_bytes())).unwrap();
        let PgOutputMessage::Relation(rel) = msg else {
            panic!("not a relation")
        };
        assert_eq!(rel.namespace, "public");
        assert_eq!(rel.name, "items");
        assert_eq!(rel.columns.len(), 2);
        assert_eq!(rel.columns[0].flags, 1);
        assert_eq!(rel.columns[1].type_oid, 25);

        let mut u = vec![b'U'];
        u.extend(16384u32.to_be_bytes());
        u.push(b'O');
        u.extend(2u16.to_be_bytes());
        u.push(b't');
        u.extend(1u32.to_be_bytes());
        u.push(b'1');
        u.push(b'u');
        u.push(b'N');
        u.extend(2u16.to_be_bytes());
        u.push(b'n');
        u.push(b't');
        u.extend(2u32.to_be_bytes());
        u.extend(b"hi");
        let PgOutputMessage::Update(up) = PgOutputMessage::parse(Bytes::from(u)).unwrap() else {
            panic!("not an update")
        };
        let (kind, old) = up.old.unwrap();
        assert_eq!(kind, OldKind::Full);
        assert_eq!(old[1], TupleValue::Unchanged);
        assert_eq!(up.new[1], TupleValue::Text(Bytes::from_static(b"hi")));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let full = relation_bytes();
        for len in 0..full.len() {
            let res = PgOutputMessage::parse(Bytes::copy_from_slice(&full[..len]));
            assert!(res.is_err(), "prefix of {len} bytes parsed");
        }
    }

    #[test]
    fn mutated_messages_never_panic() {
        let mut insert = vec![b'I'];
        insert.extend(16384u32.to_be_bytes());
        insert.push(b'N');
        insert.extend(3u16.to_be_bytes());
        insert.push(b'n');
        insert.push(b'u');
        insert.push(b't');
        insert.extend(3u32.to_be_bytes());
        insert.extend(b"abc");
        let mut begin = vec![b'B'];
        begin.extend(5u64.to_be_bytes());
        begin.extend(7i64.to_be_bytes());
        begin.extend(9u32.to_be_bytes());
        let mut truncate = vec![b'T'];
        truncate.extend(2u32.to_be_bytes());
        truncate.push(0);
        truncate.extend(1u32.to_be_bytes());
        truncate.extend(2u32.to_be_bytes());
        let mut message = vec![b'M', 1];
        message.extend(5u64.to_be_bytes());
        message.extend(b"prefix\0");
        message.extend(3u32.to_be_bytes());
        message.extend(b"xyz");
        let seeds = [relation_bytes(), insert, begin, truncate, message];
        let mut rng = crate::fuzzing::rng(0x9e37);
        for i in 0..crate::fuzzing::iterations(30_000) {
            let input = crate::fuzzing::mutate(&mut rng, &seeds[i % seeds.len()]);
            let _ = PgOutputMessage::parse(Bytes::from(input));
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 64) as usize;
            let tags = b"BCORYIUDTMX";
            let mut buf = vec![tags[(seed >> 8) as usize % tags.len()]];
            let mut s = seed;
            for _ in 0..len {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
                buf.push((s >> 33) as u8);
            }
            let _ = PgOutputMessage::parse(Bytes::from(buf));
        }
    }

    #[test]
    fn unknown_kinds_are_typed_errors() {
        assert_eq!(
            PgOutputMessage::parse(Bytes::from_static(b"Z")),
            Err(DecodeError::UnknownTag(b'Z'))
        );
        let mut i = vec![b'I'];
        i.extend(1u32.to_be_bytes());
        i.push(b'N');
        i.extend(1u16.to_be_bytes());
        i.push(b'q');
        assert!(matches!(
            PgOutputMessage::parse(Bytes::from(i)),
            Err(DecodeError::UnknownColumnKind { kind: b'q', .. })
        ));
    }
}
