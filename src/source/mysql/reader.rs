//! Checked reads over event bytes and the typed decoding error.
//!
//! Every read names what it reads, so a short or malformed event gives a [`Malformed`] that
//! says which field did not fit; [`Malformed::at`] adds the event type and position.

use super::event_type::type_name;

/// A binlog event the decoder cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot decode binlog {name} (type {code}) at {file}:{pos}: {reason}")]
pub struct BinlogError {
    /// Event type code.
    pub code: u8,
    /// Event type name.
    pub name: &'static str,
    /// Binlog file (may be empty when unknown).
    pub file: String,
    /// Position of the event in the file.
    pub pos: u64,
    /// What was wrong.
    pub reason: String,
}

/// A decoding failure before the event and position are attached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed(pub String);

impl Malformed {
    /// Attaches the event's identity.
    pub fn at(self, code: u8, file: &str, pos: u64) -> BinlogError {
        BinlogError {
            code,
            name: type_name(code),
            file: file.to_string(),
            pos,
            reason: self.0,
        }
    }
}

/// Shorthand for a decoding result.
pub type Res<T> = Result<T, Malformed>;

/// A checked little-endian reader over a byte slice.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Whether everything was read.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize, what: &str) -> Res<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Malformed(format!(
                "{what}: needs {n} bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes everything left.
    pub fn take_rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// One byte.
    pub fn u8(&mut self, what: &str) -> Res<u8> {
        Ok(self.take(1, what)?[0])
    }

    /// A little-endian unsigned integer of `n` (≤ 8) bytes.
    pub fn uint(&mut self, n: usize, what: &str) -> Res<u64> {
        let b = self.take(n, what)?;
        Ok(le_uint(b))
    }

    /// u16.
    pub fn u16(&mut self, what: &str) -> Res<u16> {
        Ok(self.uint(2, what)? as u16)
    }

    /// u32.
    pub fn u32(&mut self, what: &str) -> Res<u32> {
        Ok(self.uint(4, what)? as u32)
    }

    /// u64.
    pub fn u64(&mut self, what: &str) -> Res<u64> {
        self.uint(8, what)
    }

    /// A length-encoded integer (the client protocol's `lenenc`).
    pub fn lenenc(&mut self, what: &str) -> Res<u64> {
        match self.u8(what)? {
            v @ 0..=0xfa => Ok(v as u64),
            0xfc => self.uint(2, what),
            0xfd => self.uint(3, what),
            0xfe => self.uint(8, what),
            other => Err(Malformed(format!(
                "{what}: 0x{other:02x} does not start a length-encoded integer"
            ))),
        }
    }

    /// A length-encoded integer used as a length, checked against what is left.
    pub fn lenenc_len(&mut self, what: &str) -> Res<usize> {
        let n = self.lenenc(what)?;
        if n > self.buf.len() as u64 {
            return Err(Malformed(format!(
                "{what}: length {n} exceeds the {} bytes left",
                self.buf.len()
            )));
        }
        Ok(n as usize)
    }

    /// A length-encoded byte string.
    pub fn lenenc_bytes(&mut self, what: &str) -> Res<&'a [u8]> {
        let n = self.lenenc_len(what)?;
        self.take(n, what)
    }

    /// A variable-length unsigned integer of MySQL's serialization library: the number of
    /// trailing one bits of the first byte plus one is the byte count; the value follows the
    /// marker bits (0xff: eight raw bytes follow).
    pub fn varlen(&mut self, what: &str) -> Res<u64> {
        let first = self.u8(what)?;
        let ones = first.trailing_ones() as usize;
        if ones == 8 {
            return self.u64(what);
        }
        let n = ones + 1;
        let mut raw = [0u8; 8];
        raw[0] = first;
        raw[1..n].copy_from_slice(self.take(n - 1, what)?);
        Ok(u64::from_le_bytes(raw) >> n)
    }

    /// A zig-zag signed variable-length integer of the serialization library.
    pub fn varlen_signed(&mut self, what: &str) -> Res<i64> {
        let u = self.varlen(what)?;
        let magnitude = (u >> 1) as i64;
        Ok(if u & 1 == 1 {
            -magnitude - 1
        } else {
            magnitude
        })
    }
}

/// Little-endian unsigned integer of up to 8 bytes.
pub fn le_uint(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// Big-endian unsigned integer of up to 8 bytes.
pub fn be_uint(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

/// CRC-32 (IEEE), as binlog checksums use.
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varlen_integers() {
        // One byte: value << 1.
        assert_eq!(Reader::new(&[0x04]).varlen("x"), Ok(2));
        // Two bytes: marker 0b01, value << 2.
        let v = 300u64 << 2 | 0b01;
        assert_eq!(Reader::new(&v.to_le_bytes()[..2]).varlen("x"), Ok(300));
        let mut nine = vec![0xff];
        nine.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(Reader::new(&nine).varlen("x"), Ok(u64::MAX));
        assert_eq!(Reader::new(&[0x06]).varlen_signed("x"), Ok(-2));
        assert!(Reader::new(&[0x01]).varlen("x").is_err());
    }

    #[test]
    fn lenenc_and_bounds() {
        assert_eq!(Reader::new(&[0xfc, 0x10, 0x01]).lenenc("x"), Ok(0x110));
        assert!(Reader::new(&[0xfb]).lenenc("x").is_err());
        assert!(Reader::new(&[0x05, 1, 2]).lenenc_bytes("x").is_err());
    }

    #[test]
    fn crc_matches_known_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
