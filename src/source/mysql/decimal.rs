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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_above_the_precision_is_an_error_not_a_panic() {
        assert!(read_decimal(&mut Reader::new(&[0x80, 0, 0, 0]), 2, 5).is_err());
    }
}
