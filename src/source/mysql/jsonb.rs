//! MySQL's binary JSON (the `JSON` column type) rendered as JSON text, and the partial-update
//! diffs of `binlog_row_value_options = PARTIAL_JSON` applied to a previous value.
//!
//! ```text
//! value    type u8 | body
//! object   count | size | key entries (offset, u16 length) | value entries | keys | values
//! array    count | size | value entries | values
//!          (count, size, offsets: u16 in the small forms 0x00/0x02, u32 in the large 0x01/0x03)
//! entry    type u8 | offset, or the value itself when it fits (literals, int16, uint16;
//!          int32, uint32 in the large forms)
//! scalars  0x04 literal (0 null, 1 true, 2 false) | 0x05 int16 | 0x06 uint16 | 0x07 int32 |
//!          0x08 uint32 | 0x09 int64 | 0x0a uint64 | 0x0b double | 0x0c string (varlen length)
//!          | 0x0f opaque (column type u8, varlen length, bytes)
//! ```
//! Offsets count from the start of the enclosing object or array body.

use std::fmt::Write;

use base64::Engine;

use super::decimal::read_decimal;
use super::reader::{le_uint, Malformed, Reader, Res};
use super::table_map::col;

const MAX_DEPTH: usize = 100;

/// A document's text may be at most this many times its binary size (plus
/// [`EXPANSION_SLACK`]): far above what any document renders to (an escaped control
/// character, 1 byte to 6, is the worst), far below what value offsets pointing back at
/// shared containers can make a small hostile document expand to.
const MAX_EXPANSION: usize = 16;
const EXPANSION_SLACK: usize = 1 << 20;

/// Renders a binary JSON value as compact JSON text (an empty value is JSON `null`).
pub fn to_text(b: &[u8]) -> Res<String> {
    let mut out = String::with_capacity(b.len() + 16);
    if b.is_empty() {
        out.push_str("null");
        return Ok(out);
    }
    let limit = b.len().saturating_mul(MAX_EXPANSION) + EXPANSION_SLACK;
    write_value(&mut out, b[0], &b[1..], 0, limit)?;
    Ok(out)
}

fn need(b: &[u8], n: usize, what: &str) -> Res<()> {
    if b.len() < n {
        return Err(Malformed(format!(
            "JSON {what}: needs {n} bytes, {} left",
            b.len()
        )));
    }
    Ok(())
}

fn uint(b: &[u8], at: usize, n: usize, what: &str) -> Res<usize> {
    need(b, at + n, what)?;
    Ok(le_uint(&b[at..at + n]) as usize)
}

fn write_value(out: &mut String, t: u8, b: &[u8], depth: usize, limit: usize) -> Res<()> {
    if depth > MAX_DEPTH {
        return Err(Malformed("JSON nested too deeply".into()));
    }
    match t {
        0x00 | 0x01 => write_container(out, b, t == 0x01, true, depth, limit),
        0x02 | 0x03 => write_container(out, b, t == 0x03, false, depth, limit),
        0x04 => {
            need(b, 1, "literal")?;
            write_literal(out, b[0])
        }
        0x05 => {
            let v = uint(b, 0, 2, "int16")? as u16 as i16;
            out.push_str(itoa::Buffer::new().format(v));
            Ok(())
        }
        0x06 => {
            out.push_str(itoa::Buffer::new().format(uint(b, 0, 2, "uint16")?));
            Ok(())
        }
        0x07 => {
            out.push_str(itoa::Buffer::new().format(uint(b, 0, 4, "int32")? as u32 as i32));
            Ok(())
        }
        0x08 => {
            out.push_str(itoa::Buffer::new().format(uint(b, 0, 4, "uint32")? as u32));
            Ok(())
        }
        0x09 => {
            out.push_str(itoa::Buffer::new().format(uint(b, 0, 8, "int64")? as i64));
            Ok(())
        }
        0x0a => {
            out.push_str(itoa::Buffer::new().format(uint(b, 0, 8, "uint64")? as u64));
            Ok(())
        }
        0x0b => {
            need(b, 8, "double")?;
            let v = f64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
            write_double(out, v);
            Ok(())
        }
        0x0c => {
            let mut r = Reader::new(b);
            let len = varlen(&mut r)?;
            let s = r.take(len, "JSON string")?;
            write_json_str(out, &String::from_utf8_lossy(s));
            Ok(())
        }
        0x0f => {
            let mut r = Reader::new(b);
            let ty = r.u8("JSON opaque type")?;
            let len = varlen(&mut r)?;
            let data = r.take(len, "JSON opaque value")?;
            write_opaque(out, ty, data)
        }
        other => Err(Malformed(format!(
            "JSON value type 0x{other:02x} is unknown"
        ))),
    }
}

fn write_literal(out: &mut String, v: u8) -> Res<()> {
    out.push_str(match v {
        0 => "null",
        1 => "true",
        2 => "false",
        other => return Err(Malformed(format!("JSON literal {other} is unknown"))),
    });
    Ok(())
}

fn write_double(out: &mut String, v: f64) {
    if v.is_finite() {
        if v == v.trunc() && v.abs() < 1e15 {
            let _ = write!(out, "{v:.1}");
        } else {
            let _ = write!(out, "{v}");
        }
    } else {
        out.push_str("null");
    }
}

/// The string-length prefix: 7 bits per byte, low groups first, high bit = more.
fn varlen(r: &mut Reader<'_>) -> Res<usize> {
    let mut v: u64 = 0;
    for i in 0..5 {
        let b = r.u8("JSON length")?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(v as usize);
        }
    }
    Err(Malformed("JSON length prefix longer than 5 bytes".into()))
}

fn write_container(
    out: &mut String,
    b: &[u8],
    large: bool,
    object: bool,
    depth: usize,
    limit: usize,
) -> Res<()> {
    let w = if large { 4 } else { 2 };
    let count = uint(b, 0, w, "element count")?;
    let size = uint(b, w, w, "container size")?;
    if size > b.len() {
        return Err(Malformed(format!(
            "JSON container of {size} bytes in a {}-byte value",
            b.len()
        )));
    }
    let b = &b[..size];
    let header = 2 * w;
    let key_entry = w + 2;
    let value_entry = 1 + w;
    let keys_len = if object { count * key_entry } else { 0 };
    need(
        b,
        header + keys_len + count * value_entry,
        "container entries",
    )?;
    out.push(if object { '{' } else { '[' });
    for i in 0..count {
        if i > 0 {
            out.push(',');
        }
        if object {
            let e = header + i * key_entry;
            let off = uint(b, e, w, "key offset")?;
            let len = uint(b, e + w, 2, "key length")?;
            need(b, off + len, "key")?;
            write_json_str(out, &String::from_utf8_lossy(&b[off..off + len]));
            out.push(':');
        }
        let e = header + keys_len + i * value_entry;
        let t = b[e];
        let inline = matches!(t, 0x04..=0x06) || (large && matches!(t, 0x07 | 0x08));
        if inline {
            write_value(out, t, &b[e + 1..e + 1 + w], depth + 1, limit)?;
        } else {
            let off = uint(b, e + 1, w, "value offset")?;
            if off >= b.len() {
                return Err(Malformed(format!(
                    "JSON value offset {off} outside its container"
                )));
            }
            write_value(out, t, &b[off..], depth + 1, limit)?;
        }
        if out.len() > limit {
            return Err(Malformed(format!(
                "JSON document renders to more than {limit} bytes ({MAX_EXPANSION} times its binary size): its value offsets point back at shared containers"
            )));
        }
    }
    out.push(if object { '}' } else { ']' });
    Ok(())
}

fn write_opaque(out: &mut String, ty: u8, data: &[u8]) -> Res<()> {
    match ty {
        col::NEWDECIMAL => {
            let mut r = Reader::new(data);
            let precision = r.u8("JSON decimal precision")?;
            let scale = r.u8("JSON decimal scale")?;
            if precision == 0 || scale > precision || precision > 65 {
                return Err(Malformed(format!(
                    "JSON decimal({precision},{scale}) is invalid"
                )));
            }
            let d = read_decimal(&mut r, precision, scale)?;
            out.push_str(&decimal_text(&d));
        }
        col::DATE | col::DATETIME | col::TIMESTAMP | col::TIME => {
            need(data, 8, "packed temporal")?;
            let packed = i64::from_le_bytes(data[..8].try_into().expect("8 bytes"));
            out.push('"');
            push_packed_temporal(out, ty, packed);
            out.push('"');
        }
        _ => {
            // Other opaque values print as MySQL does: base64 with their type.
            let _ = write!(
                out,
                "\"base64:type{ty}:{}\"",
                base64::engine::general_purpose::STANDARD.encode(data)
            );
        }
    }
    Ok(())
}

fn decimal_text(d: &crate::event::Decimal) -> String {
    // Unscaled two's complement → digits.
    let negative = d.unscaled.first().is_some_and(|b| b & 0x80 != 0);
    let mut mag: Vec<u8> = d.unscaled.clone();
    if negative {
        let mut carry = 1u16;
        for b in mag.iter_mut().rev() {
            let v = u16::from(!*b) + carry;
            *b = v as u8;
            carry = v >> 8;
        }
    }
    // Base 256 big-endian → decimal digits.
    let mut digits: Vec<u8> = vec![0];
    for byte in mag {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            let v = u32::from(*d) * 256 + carry;
            *d = (v % 10) as u8;
            carry = v / 10;
        }
        while carry > 0 {
            digits.push((carry % 10) as u8);
            carry /= 10;
        }
    }
    let scale = d.scale as usize;
    while digits.len() <= scale {
        digits.push(0);
    }
    let mut s = String::new();
    if negative {
        s.push('-');
    }
    for (i, dg) in digits.iter().rev().enumerate() {
        if i == digits.len() - scale {
            s.push('.');
        }
        s.push(char::from(b'0' + dg));
    }
    s
}

fn push_packed_temporal(out: &mut String, ty: u8, packed: i64) {
    let negative = packed < 0;
    // `unsigned_abs`: the packed value comes from the document, and i64::MIN has no i64
    // absolute value.
    let a = packed.unsigned_abs();
    let int = a >> 24;
    let frac = a % (1 << 24);
    if ty == col::TIME {
        let (h, m, s) = ((int >> 12) % (1 << 10), (int >> 6) % 64, int % 64);
        let _ = write!(
            out,
            "{}{h:02}:{m:02}:{s:02}",
            if negative { "-" } else { "" }
        );
    } else {
        let ymd = int >> 17;
        let ym = ymd >> 5;
        let hms = int % (1 << 17);
        let _ = write!(out, "{:04}-{:02}-{:02}", ym / 13, ym % 13, ymd % 32);
        if ty != col::DATE {
            let _ = write!(
                out,
                " {:02}:{:02}:{:02}",
                hms >> 12,
                (hms >> 6) % 64,
                hms % 64
            );
        }
    }
    if frac != 0 && ty != col::DATE {
        let _ = write!(out, ".{frac:06}");
    }
}

fn write_json_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

/// Applies a partial-update diff vector (`op u8 | path lenenc | [value lenenc-bytes]`)*
/// to the JSON text of the before image; op 0 replace, 1 insert, 2 remove.
pub fn apply_diffs(base: &str, diffs: &[u8]) -> Res<String> {
    let mut doc: serde_json::Value = serde_json::from_str(base)
        .map_err(|e| Malformed(format!("JSON before image does not parse: {e}")))?;
    let mut r = Reader::new(diffs);
    while !r.is_empty() {
        let op = r.u8("JSON diff operation")?;
        let path = String::from_utf8_lossy(r.lenenc_bytes("JSON diff path")?).into_owned();
        let value = if op == 2 {
            None
        } else {
            let b = r.lenenc_bytes("JSON diff value")?;
            let text = to_text(b)?;
            Some(
                serde_json::from_str::<serde_json::Value>(&text)
                    .map_err(|e| Malformed(format!("JSON diff value: {e}")))?,
            )
        };
        let steps = parse_path(&path)?;
        apply_one(&mut doc, &steps, op, value)
            .map_err(|e| Malformed(format!("JSON diff at {path}: {}", e.0)))?;
    }
    Ok(doc.to_string())
}

#[derive(Debug)]
enum PathStep {
    Key(String),
    Index(usize),
}

fn parse_path(path: &str) -> Res<Vec<PathStep>> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| Malformed(format!("JSON path {path:?} does not start with $")))?;
    let b = rest.as_bytes();
    let mut i = 0;
    let mut steps = Vec::new();
    while i < b.len() {
        match b[i] {
            b'.' => {
                i += 1;
                if b.get(i) == Some(&b'"') {
                    let start = i;
                    i += 1;
                    while i < b.len() && b[i] != b'"' {
                        if b[i] == b'\\' {
                            i += 1;
                        }
                        i += 1;
                    }
                    let quoted = &rest[start..=i.min(b.len() - 1)];
                    let key: String = serde_json::from_str(quoted).map_err(|_| {
                        Malformed(format!("JSON path key {quoted} is not a string"))
                    })?;
                    steps.push(PathStep::Key(key));
                    i += 1;
                } else {
                    let start = i;
                    while i < b.len() && b[i] != b'.' && b[i] != b'[' {
                        i += 1;
                    }
                    steps.push(PathStep::Key(rest[start..i].to_string()));
                }
            }
            b'[' => {
                let end = rest[i..]
                    .find(']')
                    .ok_or_else(|| Malformed(format!("JSON path {path:?} lacks ]")))?;
                let n = rest[i + 1..i + end]
                    .trim()
                    .parse()
                    .map_err(|_| Malformed(format!("JSON path {path:?} has a bad index")))?;
                steps.push(PathStep::Index(n));
                i += end + 1;
            }
            _ => return Err(Malformed(format!("JSON path {path:?} is not understood"))),
        }
    }
    Ok(steps)
}

fn apply_one(
    doc: &mut serde_json::Value,
    steps: &[PathStep],
    op: u8,
    value: Option<serde_json::Value>,
) -> Result<(), Malformed> {
    let Some((last, parents)) = steps.split_last() else {
        if let Some(v) = value {
            *doc = v;
        }
        return Ok(());
    };
    let mut cur = doc;
    for s in parents {
        cur = match (s, cur) {
            (PathStep::Key(k), serde_json::Value::Object(m)) => m
                .get_mut(k)
                .ok_or_else(|| Malformed(format!("no member {k}")))?,
            (PathStep::Index(i), serde_json::Value::Array(a)) => a
                .get_mut(*i)
                .ok_or_else(|| Malformed(format!("no element {i}")))?,
            _ => return Err(Malformed("path does not match the document".into())),
        };
    }
    match (last, cur, op, value) {
        (PathStep::Key(k), serde_json::Value::Object(m), 2, _) => {
            m.shift_remove(k);
        }
        (PathStep::Key(k), serde_json::Value::Object(m), _, Some(v)) => {
            m.insert(k.clone(), v);
        }
        (PathStep::Index(i), serde_json::Value::Array(a), 2, _) if *i < a.len() => {
            a.remove(*i);
        }
        (PathStep::Index(i), serde_json::Value::Array(a), 1, Some(v)) => {
            let at = (*i).min(a.len());
            a.insert(at, v);
        }
        (PathStep::Index(i), serde_json::Value::Array(a), 0, Some(v)) if *i < a.len() => {
            a[*i] = v;
        }
        _ => return Err(Malformed("operation does not fit the document".into())),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_packed_temporal_is_rendered_not_a_panic() {
        let mut out = String::new();
        push_packed_temporal(&mut out, col::DATETIME, i64::MIN);
        assert!(!out.is_empty(), "{out}");
        let mut out = String::new();
        push_packed_temporal(&mut out, col::TIME, i64::MIN);
        assert!(out.starts_with('-'), "{out}");
    }

    #[test]
    fn mutated_documents_and_diffs_never_panic() {
        let seeds: [&[u8]; 4] = [
            &[
                0x02, 0x02, 0x00, 0x0c, 0x00, 0x05, 0x01, 0x00, 0x0c, 0x0a, 0x00, 0x01, b'a',
            ],
            &[
                0x00, 0x01, 0x00, 0x0c, 0x00, 0x0b, 0x00, 0x01, 0x00, 0x04, 0x01, 0x00, b'k',
            ],
            &[0x0c, 0x02, b'h', b'i'],
            &[0x05, 0xff, 0xff],
        ];
        let mut rng = crate::fuzzing::rng(0x15);
        for i in 0..crate::fuzzing::iterations(30_000) {
            let input = crate::fuzzing::mutate(&mut rng, seeds[i % seeds.len()]);
            let _ = to_text(&input);
            let _ = apply_diffs("{\"k\": [1, 2, {\"a\": \"b\"}]}", &input);
        }
    }

    #[test]
    fn a_small_document_whose_offsets_share_containers_cannot_expand_without_bound() {
        // Thirty nested arrays of four entries, all pointing at one shared child: 480 bytes
        // that would render to 4^30 elements.
        fn level(n: usize) -> Vec<u8> {
            if n == 0 {
                return vec![0, 0, 4, 0];
            }
            let child = level(n - 1);
            let off = 4 + 3 * 4;
            let size = off + child.len();
            let mut b = vec![4, 0, size as u8, (size >> 8) as u8];
            for _ in 0..4 {
                b.extend_from_slice(&[0x02, off as u8, 0]);
            }
            b.extend(child);
            b
        }
        let mut doc = vec![0x02];
        doc.extend(level(30));
        assert!(doc.len() < 600);
        let err = to_text(&doc).unwrap_err();
        assert!(
            err.0.contains("point back at shared containers"),
            "{}",
            err.0
        );
        // A few levels render normally.
        let mut small = vec![0x02];
        small.extend(level(2));
        assert_eq!(
            to_text(&small).unwrap(),
            "[[[],[],[],[]],[[],[],[],[]],[[],[],[],[]],[[],[],[],[]]]"
        );
    }

    #[test]
    fn scalars_and_containers() {
        assert_eq!(to_text(&[]).unwrap(), "null");
        assert_eq!(to_text(&[0x04, 0x01]).unwrap(), "true");
        assert_eq!(to_text(&[0x05, 0xff, 0xff]).unwrap(), "-1");
        assert_eq!(to_text(&[0x0c, 0x02, b'h', b'i']).unwrap(), "\"hi\"");
        // Small array [1, "a"]: count 2, size, entries (type, inline/offset), then the string.
        let arr = [
            0x02, 0x02, 0x00, 0x0c, 0x00, 0x05, 0x01, 0x00, 0x0c, 0x0a, 0x00, 0x01, b'a',
        ];
        assert_eq!(to_text(&arr).unwrap(), "[1,\"a\"]");
        // Small object {"k": true}.
        let obj = [
            0x00, 0x01, 0x00, 0x0c, 0x00, 0x0b, 0x00, 0x01, 0x00, 0x04, 0x01, 0x00, b'k',
        ];
        assert_eq!(to_text(&obj).unwrap(), "{\"k\":true}");
        for cut in 1..arr.len() {
            assert!(to_text(&arr[..cut]).is_err(), "cut {cut}");
        }
    }

    #[test]
    fn diffs_apply() {
        // replace $.a with 2, insert $.b[1] = 5, remove $.c
        let mut d = vec![0u8, 3];
        d.extend_from_slice(b"$.a");
        d.extend_from_slice(&[3, 0x05, 2, 0]);
        d.push(1);
        d.push(6);
        d.extend_from_slice(b"$.b[1]");
        d.extend_from_slice(&[3, 0x05, 5, 0]);
        d.push(2);
        d.push(3);
        d.extend_from_slice(b"$.c");
        let out = apply_diffs(r#"{"a":1,"b":[4,6],"c":0}"#, &d).unwrap();
        assert_eq!(out, r#"{"a":2,"b":[4,5,6]}"#);
    }
}
