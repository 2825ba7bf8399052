//! MySQL's binary DECIMAL: groups of nine decimal digits in four big-endian bytes, a
//! shorter group for the leftover digits, the sign folded into the first bit. Used by rows
//! events and by opaque decimals inside binary JSON.

use crate::event::Decimal;

use super::reader::{be_uint, Malformed, Reader, Res};

/// Bytes of a binary-decimal group of `digits` digits.
const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// Reads MySQL's binary DECIMAL (`precision`, `scale`) into a [`Decimal`].
pub fn read_decimal(r: &mut Reader<'_>, precision: u8, scale: u8) -> Res<Decimal> {
    let Some(intg) = precision.checked_sub(scale).map(usize::from) else {
        return Err(Malformed(format!(
            "decimal scale {scale} above its precision {precision}"
        )));
    };
    let frac = usize::from(scale);
    let (full_i, part_i) = (intg / 9, intg % 9);
    let (full_f, part_f) = (frac / 9, frac % 9);
    let size = full_i * 4 + DIG2BYTES[part_i] + full_f * 4 + DIG2BYTES[part_f];
    let raw = r.take(size, "decimal")?;
    if raw.is_empty() {
        return Ok(Decimal::from_digits(b"0", false, u32::from(scale)));
    }
    if precision <= 38 {
        return Ok(small(raw, [part_i, full_i, full_f, part_f], scale));
    }
    let mut b = raw.to_vec();
    let negative = b[0] & 0x80 == 0;
    b[0] ^= 0x80;
    if negative {
        for x in b.iter_mut() {
            *x = !*x;
        }
    }
    let mut digits: Vec<u8> = Vec::with_capacity(usize::from(precision));
    let mut off = 0;
    let mut group = |len: usize, width: usize, digits: &mut Vec<u8>| {
        let mut v = be_uint(&b[off..off + len]);
        off += len;
        // `width` decimal digits, most significant first (a corrupt group keeps its low
        // digits).
        let start = digits.len();
        digits.resize(start + width, b'0');
        for d in digits[start..].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    if part_i > 0 {
        group(DIG2BYTES[part_i], part_i, &mut digits);
    }
    for _ in 0..full_i {
        group(4, 9, &mut digits);
    }
    for _ in 0..full_f {
        group(4, 9, &mut digits);
    }
    if part_f > 0 {
        group(DIG2BYTES[part_f], part_f, &mut digits);
    }
    Ok(Decimal::from_digits(&digits, negative, u32::from(scale)))
}

/// A decimal of at most 38 digits (it fits an `i128`): the groups accumulated as one
/// integer, without going through decimal digits. `groups`: digits of the leading partial
/// group, full integer groups, full fraction groups, digits of the trailing partial group.
fn small(raw: &[u8], groups: [usize; 4], scale: u8) -> Decimal {
    let [part_i, full_i, full_f, part_f] = groups;
    let negative = raw[0] & 0x80 == 0;
    // The sign bit flipped back; a negative number's bytes are inverted.
    let mask = if negative { 0xff } else { 0x00 };
    let byte = |i: usize| (if i == 0 { raw[0] ^ 0x80 } else { raw[i] }) ^ mask;
    let mut off = 0;
    let mut value: u128 = 0;
    let mut group = |width: usize, len: usize| {
        let mut v: u64 = 0;
        for i in off..off + len {
            v = (v << 8) | u64::from(byte(i));
        }
        off += len;
        // A corrupt group keeps its low digits, as the digit path does.
        let base = 10u64.pow(width as u32);
        value = value * u128::from(base) + u128::from(v % base);
    };
    if part_i > 0 {
        group(part_i, DIG2BYTES[part_i]);
    }
    for _ in 0..full_i + full_f {
        group(9, 4);
    }
    if part_f > 0 {
        group(part_f, DIG2BYTES[part_f]);
    }
    let signed = if negative {
        -(value as i128)
    } else {
        value as i128
    };
    Decimal::from_i128(signed, u32::from(scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MySQL's binary form of a decimal given as text, built independently of the reader.
    fn encode(text: &str, precision: u8, scale: u8) -> Vec<u8> {
        let negative = text.starts_with('-');
        let text = text.trim_start_matches('-');
        let (int, frac) = text.split_once('.').unwrap_or((text, ""));
        let intg = usize::from(precision - scale);
        let int = format!("{int:0>intg$}");
        let frac = format!("{frac:0<width$}", width = usize::from(scale));
        let mut out = Vec::new();
        let mut push = |digits: &str| {
            let len = DIG2BYTES[digits.len()];
            let v: u64 = digits.parse().unwrap_or(0);
            out.extend_from_slice(&v.to_be_bytes()[8 - len..]);
        };
        let lead = intg % 9;
        if lead > 0 {
            push(&int[..lead]);
        }
        for c in int.as_bytes()[lead..].chunks(9) {
            push(std::str::from_utf8(c).unwrap());
        }
        let fr = frac.as_bytes();
        for c in fr[..fr.len() / 9 * 9].chunks(9) {
            push(std::str::from_utf8(c).unwrap());
        }
        if fr.len() % 9 > 0 {
            push(std::str::from_utf8(&fr[fr.len() / 9 * 9..]).unwrap());
        }
        out[0] ^= 0x80;
        if negative {
            for b in out.iter_mut() {
                *b = !*b;
            }
        }
        out
    }

    #[test]
    fn the_i128_path_equals_the_digit_path() {
        let mut x: u64 = 0xD1B5_4A32_D192_ED03;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let precision = (next() % 38 + 1) as u8;
            let scale = (next() % (u64::from(precision) + 1)) as u8;
            let digits: String = (0..precision)
                .map(|_| char::from(b'0' + (next() % 10) as u8))
                .collect();
            let (i, f) = digits.split_at(usize::from(precision - scale));
            let sign = if next() % 2 == 0 { "-" } else { "" };
            let text = format!("{sign}{i}.{f}");
            let raw = encode(&text, precision, scale);
            let fast = read_decimal(&mut Reader::new(&raw), precision, scale).unwrap();
            // The same bytes through the general (digit) path.
            let negative = raw[0] & 0x80 == 0;
            let mut all: Vec<u8> = i.bytes().chain(f.bytes()).collect();
            if all.is_empty() {
                all.push(b'0');
            }
            let slow = Decimal::from_digits(&all, negative, u32::from(scale));
            assert_eq!(fast, slow, "{text} ({precision},{scale})");
        }
    }

    #[test]
    fn a_scale_above_the_precision_is_an_error_not_a_panic() {
        assert!(read_decimal(&mut Reader::new(&[0x80, 0, 0, 0]), 2, 5).is_err());
    }
}
