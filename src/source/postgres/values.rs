//! PostgreSQL text output → typed [`Value`]s.
//!
//! Both pgoutput (protocol 1 sends text) and the snapshot's `COPY ... TO STDOUT` carry each
//! value in its text form, so one set of parsers serves both. The sessions are opened with
//! `DateStyle=ISO`, `TimeZone=UTC`, `IntervalStyle=iso_8601`, `bytea_output=hex`,
//! `extra_float_digits=3` and `lc_monetary=C`, which fixes the shapes parsed here.

use crate::calendar::{days_from_civil, MICROS_PER_DAY};
use crate::event::{ColumnKind, Decimal, Value};

use super::types::PgType;

pub use crate::calendar::{NEGATIVE_INFINITY_TS, POSITIVE_INFINITY_TS};

/// A text value that does not parse as its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read {what} from PostgreSQL text output")]
pub struct ValueError {
    what: &'static str,
}

fn bad(what: &'static str) -> ValueError {
    ValueError { what }
}

/// Whether values of this type are published as their text unchanged.
pub fn is_plain_text(ty: &PgType, typmod: i32) -> bool {
    matches!(
        ty.resolve(typmod).0,
        PgType::Text | PgType::Uuid | PgType::Json | PgType::Xml | PgType::Enum(_) | PgType::Ltree
    )
}

/// A column default as Debezium declares it, from the catalog's expression: a literal
/// (`42`, `'V1'::mood`, `'x'::character varying`, `true`) converted to the column's kind, and 0
/// for a sequence (`nextval(...)`) of a numeric column; other expressions (functions such as
/// `now()`) and NULL give none.
pub fn parse_default(ty: &PgType, typmod: i32, kind: &ColumnKind, expr: &str) -> Option<Value> {
    let expr = expr.trim();
    if expr.starts_with("nextval(") {
        return match kind {
            ColumnKind::Int16 | ColumnKind::Int32 | ColumnKind::Int64 => Some(Value::Int(0)),
            ColumnKind::Decimal { .. } | ColumnKind::VariableDecimal => {
                parse(ty, typmod, kind, "0").ok()
            }
            _ => None,
        };
    }
    let literal = if let Some(rest) = expr.strip_prefix('\'') {
        // 'text' followed by casts: the closing quote is the last one not doubled.
        let mut out = String::new();
        let mut chars = rest.chars().peekable();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    out.push('\'');
                }
                '\'' => break,
                c => out.push(c),
            }
        }
        // Only casts may follow (`::text`, `::character varying`, `::mood[]`), not operators.
        let tail: String = chars.collect();
        let only_casts = tail.is_empty()
            || (tail.starts_with("::")
                && !tail.contains(['\'', '|', '+', '-', '*', '/', '(', ',']));
        if !only_casts {
            return None;
        }
        out
    } else {
        // A bare number or boolean, possibly parenthesized and cast: `(-1)`, `1.5::numeric`.
        let bare = expr.split("::").next().unwrap_or(expr);
        let bare = bare.trim_start_matches('(').trim_end_matches(')');
        let is_literal = bare.parse::<f64>().is_ok() || bare == "true" || bare == "false";
        if !is_literal {
            return None;
        }
        bare.to_string()
    };
    match parse(ty, typmod, kind, &literal).ok()? {
        Value::Null => None,
        v => Some(v),
    }
}

/// Parses one value of `ty` (with modifier `typmod`) whose semantic kind is `kind`.
pub fn parse(ty: &PgType, typmod: i32, kind: &ColumnKind, text: &str) -> Result<Value, ValueError> {
    let (ty, typmod) = ty.resolve(typmod);
    Ok(match ty {
        PgType::Bool => Value::Bool(parse_bool(text)?),
        PgType::Int2 | PgType::Int4 | PgType::Int8 => {
            Value::Int(text.parse().map_err(|_| bad("an integer"))?)
        }
        PgType::Float4 | PgType::Float8 => Value::Float(parse_float(text)?),
        PgType::Numeric => match kind {
            ColumnKind::Decimal { scale, .. } => match parse_decimal(text, Some(*scale))? {
                Some(d) => Value::Decimal(d),
                None => Value::Null,
            },
            _ => match parse_decimal(text, None)? {
                Some(d) => Value::Decimal(d),
                None => Value::Null,
            },
        },
        PgType::Money => {
            let negative = text.contains('-') || text.starts_with('(');
            let digits: String = text
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let signed = if negative {
                format!("-{digits}")
            } else {
                digits
            };
            match parse_decimal(&signed, Some(2))? {
                Some(d) => Value::Decimal(d),
                None => Value::Null,
            }
        }
        PgType::Bytea => Value::Bytes(parse_bytea(text)?),
        PgType::Date => match text {
            "infinity" | "-infinity" => Value::Null,
            _ => Value::Int(parse_date(text)?),
        },
        PgType::Time => {
            let micros = parse_time(text)?;
            match kind {
                ColumnKind::TimeMillis => Value::Int(micros / 1000),
                _ => Value::Int(micros),
            }
        }
        PgType::TimeTz => Value::text(parse_timetz(text)?),
        PgType::Timestamp => {
            let micros = match text {
                "infinity" => return Ok(Value::Int(POSITIVE_INFINITY_TS)),
                "-infinity" => return Ok(Value::Int(NEGATIVE_INFINITY_TS)),
                _ => match parse_timestamp(text)?.0 {
                    i64::MAX => return Ok(Value::Int(POSITIVE_INFINITY_TS)),
                    i64::MIN => return Ok(Value::Int(NEGATIVE_INFINITY_TS)),
                    micros => micros,
                },
            };
            match kind {
                ColumnKind::TimestampMillis => Value::Int(micros.div_euclid(1000)),
                _ => Value::Int(micros),
            }
        }
        PgType::TimestampTz => match text {
            "infinity" | "-infinity" => Value::text(text.to_string()),
            _ => {
                let (local, offset) = parse_timestamp(text)?;
                if local == i64::MAX || local == i64::MIN {
                    // Past what an instant can count: as PostgreSQL's own infinities.
                    let sign = if local == i64::MIN { "-" } else { "" };
                    return Ok(Value::text(format!("{sign}infinity")));
                }
                // Padded to the column's precision (6 when unconstrained), as Debezium.
                let digits = if (0..=6).contains(&typmod) {
                    typmod as u32
                } else {
                    6
                };
                Value::text(crate::calendar::iso_utc_padded(local - offset, digits))
            }
        },
        PgType::Interval => match kind {
            ColumnKind::IntervalString => Value::text(iso_interval(text)?),
            _ => Value::Int(parse_interval(text)?),
        },
        PgType::Bit | PgType::VarBit if typmod == 1 => Value::Bool(text == "1"),
        PgType::Bit | PgType::VarBit => Value::Bytes(parse_bits(text, typmod)?),
        PgType::Array(elem) => {
            let ColumnKind::Array(elem_kind) = kind else {
                return Err(bad("an array"));
            };
            let mut values = Vec::new();
            for item in split_array(text)? {
                values.push(match item {
                    None => Value::Null,
                    Some(s) => parse(elem, typmod, elem_kind, &s)?,
                });
            }
            Value::Array(values)
        }
        PgType::Point => parse_point(text)?,
        PgType::Hstore => match kind {
            ColumnKind::StringMap => Value::Map(
                hstore_pairs(text)?
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.map(Into::into)))
                    .collect(),
            ),
            _ => Value::text(hstore_json(text)?),
        },
        // Included unknown types are the bytes of their text form (Debezium's
        // `include.unknown.datatypes`).
        PgType::Unknown(_) if *kind == ColumnKind::Bytes => Value::Bytes(text.as_bytes().to_vec()),
        PgType::Text
        | PgType::Uuid
        | PgType::Json
        | PgType::Xml
        | PgType::Ltree
        | PgType::Enum(_)
        | PgType::Unknown(_)
        | PgType::Domain(..) => Value::text(text.to_string()),
    })
}

/// `(x,y)` → a Point geometry: 2D well-known binary (little-endian), no SRID.
fn parse_point(text: &str) -> Result<Value, ValueError> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or(bad("a point"))?;
    let (x, y) = inner.split_once(',').ok_or(bad("a point"))?;
    let x = parse_float(x.trim())?;
    let y = parse_float(y.trim())?;
    let mut wkb = Vec::with_capacity(21);
    wkb.push(1);
    wkb.extend_from_slice(&1u32.to_le_bytes());
    wkb.extend_from_slice(&x.to_le_bytes());
    wkb.extend_from_slice(&y.to_le_bytes());
    Ok(Value::Geometry { wkb, srid: None })
}

/// hstore text (`"a"=>"1", "b"=>NULL`) → a JSON object (`{"a":"1","b":null}`), pairs in the
/// order PostgreSQL prints them.
fn hstore_json(text: &str) -> Result<String, ValueError> {
    let map: serde_json::Map<String, serde_json::Value> = hstore_pairs(text)?
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                v.map_or(serde_json::Value::Null, serde_json::Value::String),
            )
        })
        .collect();
    Ok(serde_json::Value::Object(map).to_string())
}

/// hstore text → its pairs in PostgreSQL's order (`NULL` values as `None`).
fn hstore_pairs(text: &str) -> Result<Vec<(String, Option<String>)>, ValueError> {
    fn quoted(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, ValueError> {
        if chars.next() != Some('"') {
            return Err(bad("an hstore"));
        }
        let mut out = String::new();
        loop {
            match chars.next().ok_or(bad("an hstore"))? {
                '\\' => out.push(chars.next().ok_or(bad("an hstore"))?),
                '"' => return Ok(out),
                c => out.push(c),
            }
        }
    }
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let key = quoted(&mut chars)?;
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || chars.next() != Some('>') {
            return Err(bad("an hstore"));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let value = if chars.peek() == Some(&'"') {
            Some(quoted(&mut chars)?)
        } else {
            let word: String =
                std::iter::from_fn(|| chars.next_if(|c| c.is_alphabetic())).collect();
            if word != "NULL" {
                return Err(bad("an hstore"));
            }
            None
        };
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// An `iso_8601` interval (`P1Y2M3DT4H5M6.78S`, zero fields left out, signs per field) in
/// Debezium's `interval.handling.mode=string` form: every field present, seconds without
/// trailing zeros (`P1Y2M3DT4H5M6.78S`, `P0Y0M0DT0H0M0S`).
fn iso_interval(text: &str) -> Result<String, ValueError> {
    let (mut years, mut months, mut days, mut hours, mut minutes) = (0i64, 0i64, 0i64, 0i64, 0i64);
    let mut seconds = String::from("0");
    for (field, number) in interval_fields(text)? {
        let whole = || number.parse::<i64>().map_err(|_| bad("an interval"));
        match field {
            IntervalField::Years => years = whole()?,
            IntervalField::Months => months = whole()?,
            IntervalField::Weeks => days += 7 * whole()?,
            IntervalField::Days => days += whole()?,
            IntervalField::Hours => hours = whole()?,
            IntervalField::Minutes => minutes = whole()?,
            IntervalField::Seconds => {
                number.parse::<f64>().map_err(|_| bad("an interval"))?;
                let mut s = number.trim_start_matches('+').to_string();
                if s.contains('.') {
                    while s.ends_with('0') {
                        s.pop();
                    }
                    if s.ends_with('.') {
                        s.pop();
                    }
                }
                if s == "-0" || s.is_empty() {
                    s = "0".into();
                }
                seconds = s;
            }
        }
    }
    Ok(format!(
        "P{years}Y{months}M{days}DT{hours}H{minutes}M{seconds}S"
    ))
}

/// The fields of an `iso_8601` interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum IntervalField {
    Years,
    Months,
    Weeks,
    Days,
    Hours,
    Minutes,
    Seconds,
}

/// Splits an `iso_8601` interval (`P1Y2M3DT4H5M6.78S`, signs per field) into its fields and
/// their numbers as written.
fn interval_fields(text: &str) -> Result<Vec<(IntervalField, String)>, ValueError> {
    let body = text.strip_prefix('P').ok_or(bad("an interval"))?;
    let mut out = Vec::new();
    let mut in_time = false;
    let mut number = String::new();
    for c in body.chars() {
        match c {
            'T' => in_time = true,
            '0'..='9' | '.' | '-' | '+' => number.push(c),
            unit => {
                let field = match (unit, in_time) {
                    ('Y', false) => IntervalField::Years,
                    ('M', false) => IntervalField::Months,
                    ('W', false) => IntervalField::Weeks,
                    ('D', false) => IntervalField::Days,
                    ('H', true) => IntervalField::Hours,
                    ('M', true) => IntervalField::Minutes,
                    ('S', true) => IntervalField::Seconds,
                    _ => return Err(bad("an interval")),
                };
                out.push((field, std::mem::take(&mut number)));
            }
        }
    }
    if !number.is_empty() {
        return Err(bad("an interval"));
    }
    Ok(out)
}

fn parse_bool(text: &str) -> Result<bool, ValueError> {
    match text {
        "t" | "true" => Ok(true),
        "f" | "false" => Ok(false),
        _ => Err(bad("a boolean")),
    }
}

fn parse_float(text: &str) -> Result<f64, ValueError> {
    match text {
        "NaN" => Ok(f64::NAN),
        "Infinity" => Ok(f64::INFINITY),
        "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => text.parse().map_err(|_| bad("a float")),
    }
}

/// Parses a decimal text; `scale` rescales to a fixed scale. `NaN` and infinities are
/// not decimals: `None`.
pub fn parse_decimal(text: &str, scale: Option<u32>) -> Result<Option<Decimal>, ValueError> {
    if matches!(text, "NaN" | "Infinity" | "-Infinity") {
        return Ok(None);
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = body.split_once('.').unwrap_or((body, ""));
    if int_part.is_empty() && frac_part.is_empty()
        || !int_part.bytes().all(|b| b.is_ascii_digit())
        || !frac_part.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(bad("a decimal"));
    }
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let mut actual_scale = frac_part.len() as u32;
    if let Some(target) = scale {
        while actual_scale < target {
            digits.push(b'0');
            actual_scale += 1;
        }
        while actual_scale > target {
            digits.pop();
            actual_scale -= 1;
        }
    }
    Ok(Some(Decimal::from_digits(&digits, negative, actual_scale)))
}

fn parse_bytea(text: &str) -> Result<Vec<u8>, ValueError> {
    let hex = text.strip_prefix("\\x").ok_or(bad("bytea (hex)"))?;
    if hex.len() % 2 != 0 {
        return Err(bad("bytea (hex)"));
    }
    let nibble = |c: u8| -> Result<u8, ValueError> {
        (c as char)
            .to_digit(16)
            .map(|d| d as u8)
            .ok_or(bad("bytea (hex)"))
    };
    hex.as_bytes()
        .chunks_exact(2)
        .map(|p| Ok(nibble(p[0])? << 4 | nibble(p[1])?))
        .collect()
}

fn num<T: std::str::FromStr>(s: Option<&str>, what: &'static str) -> Result<T, ValueError> {
    s.and_then(|s| s.parse().ok()).ok_or(bad(what))
}

/// `YYYY-MM-DD[ BC]` → days since the epoch.
fn parse_date(text: &str) -> Result<i64, ValueError> {
    let (body, bc) = match text.strip_suffix(" BC") {
        Some(b) => (b, true),
        None => (text, false),
    };
    let mut parts = body.splitn(3, '-');
    let year: i64 = num(parts.next(), "a date")?;
    let month: u32 = num(parts.next(), "a date")?;
    let day: u32 = num(parts.next(), "a date")?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(bad("a date"));
    }
    let year = if bc { 1 - year } else { year };
    Ok(days_from_civil(year, month, day))
}

/// `HH:MM:SS[.ffffff]` → microseconds of the day.
fn parse_time(text: &str) -> Result<i64, ValueError> {
    let mut parts = text.splitn(3, ':');
    let h: i64 = num(parts.next(), "a time")?;
    let m: i64 = num(parts.next(), "a time")?;
    let sec = parts.next().ok_or(bad("a time"))?;
    let (s, frac) = sec.split_once('.').unwrap_or((sec, ""));
    let s: i64 = num(Some(s), "a time")?;
    if frac.len() > 6 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("a time"));
    }
    let mut micros_frac: i64 = if frac.is_empty() {
        0
    } else {
        num(Some(frac), "a time")?
    };
    for _ in frac.len()..6 {
        micros_frac *= 10;
    }
    Ok(((h * 60 + m) * 60 + s) * 1_000_000 + micros_frac)
}

/// Splits a trailing UTC offset (`+05`, `-03:30`, `+05:30:15`) off a time text; returns the
/// rest and the offset in microseconds.
fn split_offset(text: &str) -> Result<(&str, i64), ValueError> {
    let Some(idx) = text.rfind(['+', '-']).filter(|i| *i >= 8) else {
        return Ok((text, 0));
    };
    let (rest, off) = text.split_at(idx);
    let sign = if off.starts_with('-') { -1 } else { 1 };
    let mut secs = 0i64;
    for (i, part) in off[1..].split(':').enumerate() {
        let v: i64 = num(Some(part), "a time zone offset")?;
        secs += v * [3600, 60, 1]
            .get(i)
            .copied()
            .ok_or(bad("a time zone offset"))?;
    }
    Ok((rest, sign * secs * 1_000_000))
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff][+TZ][ BC]` → (local microseconds since the epoch, offset).
fn parse_timestamp(text: &str) -> Result<(i64, i64), ValueError> {
    let (body, bc) = match text.strip_suffix(" BC") {
        Some(b) => (b, true),
        None => (text, false),
    };
    let (date, time) = body.split_once(' ').ok_or(bad("a timestamp"))?;
    let (time, offset) = split_offset(time)?;
    let days = parse_date(&if bc {
        format!("{date} BC")
    } else {
        date.to_string()
    })?;
    let time = parse_time(time)?;
    // PostgreSQL accepts years up to 294276, past the last microsecond an i64 counts
    // (294247-01-10): such an instant saturates (as infinity) instead of wrapping around.
    let micros = days
        .checked_mul(MICROS_PER_DAY)
        .and_then(|d| d.checked_add(time))
        .and_then(|l| l.checked_sub(offset).map(|_| l))
        .unwrap_or(if days < 0 { i64::MIN } else { i64::MAX });
    Ok((micros, offset))
}

/// `HH:MM:SS[.ffffff]+TZ` → `HH:MM:SS[.ffffff]Z` in UTC.
fn parse_timetz(text: &str) -> Result<String, ValueError> {
    let (time, offset) = split_offset(text)?;
    let utc = parse_time(time)? - offset;
    // The end of the day stays the end of the day (as Debezium writes it), not midnight.
    if utc == MICROS_PER_DAY {
        return Ok("24:00:00Z".into());
    }
    let utc = utc.rem_euclid(MICROS_PER_DAY);
    let mut out = String::with_capacity(20);
    crate::calendar::push_time(&mut out, utc);
    out.push('Z');
    Ok(out)
}

/// ISO-8601 interval (`P1Y2M3DT4H5M6.5S`) → microseconds, a month counting 30.4375 days
/// (365.25 / 12) as Debezium's `MicroDuration` does.
fn parse_interval(text: &str) -> Result<i64, ValueError> {
    const MICROS_PER_MONTH: i64 = 2_629_800_000_000;
    let mut total: i64 = 0;
    for (field, number) in interval_fields(text)? {
        let value: f64 = number.parse().map_err(|_| bad("an interval"))?;
        // Checked: the count comes from the server's text and may be huge.
        let per_unit = match field {
            IntervalField::Years => 12 * MICROS_PER_MONTH,
            IntervalField::Months => MICROS_PER_MONTH,
            IntervalField::Weeks => 7 * MICROS_PER_DAY,
            IntervalField::Days => MICROS_PER_DAY,
            IntervalField::Hours => 3_600_000_000,
            IntervalField::Minutes => 60_000_000,
            IntervalField::Seconds => 1,
        };
        let micros = if per_unit == 1 {
            let us = (value * 1_000_000.0).round();
            if !us.is_finite() || us.abs() >= i64::MAX as f64 {
                return Err(bad("an interval"));
            }
            us as i64
        } else {
            (value as i64)
                .checked_mul(per_unit)
                .ok_or(bad("an interval"))?
        };
        total = total.checked_add(micros).ok_or(bad("an interval"))?;
    }
    Ok(total)
}

/// A bit string (`10110`) → bytes, little-endian as Debezium's `Bits` (bit 0 is the last
/// character), padded to the declared length.
fn parse_bits(text: &str, typmod: i32) -> Result<Vec<u8>, ValueError> {
    let n = text.len().max(typmod.max(0) as usize);
    let mut out = vec![0u8; n.div_ceil(8)];
    for (i, c) in text.bytes().rev().enumerate() {
        match c {
            b'1' => out[i / 8] |= 1 << (i % 8),
            b'0' => {}
            _ => return Err(bad("a bit string")),
        }
    }
    Ok(out)
}

/// Splits a one-dimensional array literal (`{a,"b c",NULL}`) into its elements.
fn split_array(text: &str) -> Result<Vec<Option<String>>, ValueError> {
    let inner = text
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or(bad("an array"))?;
    let mut items = Vec::new();
    if inner.is_empty() {
        return Ok(items);
    }
    let mut chars = inner.chars().peekable();
    loop {
        let mut item = String::new();
        let mut quoted = false;
        if chars.peek() == Some(&'"') {
            quoted = true;
            chars.next();
            loop {
                match chars.next() {
                    Some('\\') => item.push(chars.next().ok_or(bad("an array"))?),
                    Some('"') => break,
                    Some(c) => item.push(c),
                    None => return Err(bad("an array")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' {
                    break;
                }
                if c == '{' {
                    return Err(bad("a one-dimensional array"));
                }
                item.push(c);
                chars.next();
            }
        }
        items.push(if !quoted && item == "NULL" {
            None
        } else {
            Some(item)
        });
        match chars.next() {
            Some(',') => continue,
            None => break,
            Some(_) => return Err(bad("an array")),
        }
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_in_debezium_string_form() {
        assert_eq!(
            iso_interval("P1Y2M3DT4H5M6.78S").unwrap(),
            "P1Y2M3DT4H5M6.78S"
        );
        assert_eq!(iso_interval("PT0S").unwrap(), "P0Y0M0DT0H0M0S");
        assert_eq!(
            iso_interval("P-1Y-2M3DT-4H-5M-6.5S").unwrap(),
            "P-1Y-2M3DT-4H-5M-6.5S"
        );
        assert_eq!(iso_interval("P10D").unwrap(), "P0Y0M10DT0H0M0S");
        assert_eq!(
            iso_interval("PT1.000001S").unwrap(),
            "P0Y0M0DT0H0M1.000001S"
        );
        assert_eq!(iso_interval("PT25H").unwrap(), "P0Y0M0DT25H0M0S");
        assert!(iso_interval("1 day").is_err());
    }

    #[test]
    fn hstore_pairs_keep_order_and_nulls() {
        assert_eq!(
            hstore_pairs(r#""b"=>"1", "a"=>NULL, "q\"x"=>"y""#).unwrap(),
            vec![
                ("b".to_string(), Some("1".to_string())),
                ("a".to_string(), None),
                ("q\"x".to_string(), Some("y".to_string()))
            ]
        );
    }

    fn dec(text: &str, scale: Option<u32>) -> (Vec<u8>, u32) {
        let d = parse_decimal(text, scale).unwrap().unwrap();
        (d.unscaled, d.scale)
    }

    #[test]
    fn defaults_from_catalog_expressions() {
        let d = |ty: &PgType, kind: &ColumnKind, e: &str| parse_default(ty, -1, kind, e);
        let int = ColumnKind::Int32;
        assert_eq!(
            d(&PgType::Int4, &int, "nextval('t_id_seq'::regclass)"),
            Some(Value::Int(0))
        );
        assert_eq!(d(&PgType::Int4, &int, "(-1)"), Some(Value::Int(-1)));
        assert_eq!(d(&PgType::Int4, &int, "42"), Some(Value::Int(42)));
        assert_eq!(
            d(&PgType::Text, &ColumnKind::Text, "'it''s'::text"),
            Some(Value::text("it's"))
        );
        assert_eq!(
            d(&PgType::Text, &ColumnKind::Text, "'a'::character varying"),
            Some(Value::text("a"))
        );
        assert_eq!(
            d(&PgType::Bool, &ColumnKind::Boolean, "true"),
            Some(Value::Bool(true))
        );
        assert_eq!(
            d(&PgType::TimestampTz, &ColumnKind::ZonedTimestamp, "now()"),
            None
        );
        assert_eq!(d(&PgType::Text, &ColumnKind::Text, "NULL::text"), None);
        assert_eq!(
            d(&PgType::Text, &ColumnKind::Text, "'a'::text || 'b'::text"),
            None
        );
    }

    #[test]
    fn hstore_as_json() {
        assert_eq!(
            hstore_json(r#""a"=>"1", "b"=>NULL, "q\"x"=>"y\\z""#).unwrap(),
            r#"{"a":"1","b":null,"q\"x":"y\\z"}"#
        );
        assert_eq!(hstore_json("").unwrap(), "{}");
        assert!(hstore_json("garbage").is_err());
    }

    #[test]
    fn decimals_match_java_bigdecimal() {
        assert_eq!(dec("12.34", Some(2)), (vec![0x04, 0xD2], 2));
        assert_eq!(dec("-12.34", Some(2)), (vec![0xFB, 0x2E], 2));
        assert_eq!(dec("1.5", Some(3)), (vec![0x05, 0xDC], 3));
        assert_eq!(dec("128", None), (vec![0x00, 0x80], 0));
        assert_eq!(dec("-128", None), (vec![0x80], 0));
        assert_eq!(dec("-129", None), (vec![0xFF, 0x7F], 0));
        assert_eq!(dec("0.000", None), (vec![0x00], 3));
        assert_eq!(dec("-1", None), (vec![0xFF], 0));
        assert_eq!(parse_decimal("NaN", None).unwrap(), None);
        assert!(parse_decimal("1e5", None).is_err());
    }

    #[test]
    fn timestamps_past_the_microsecond_range_saturate() {
        // PostgreSQL accepts them; 294247-01-10 is the last day an i64 of microseconds counts.
        let ts = parse(
            &PgType::Timestamp,
            -1,
            &ColumnKind::TimestampMicros,
            "294270-01-01 00:00:00",
        )
        .unwrap();
        assert_eq!(ts, Value::Int(POSITIVE_INFINITY_TS));
        let tz = parse(
            &PgType::TimestampTz,
            -1,
            &ColumnKind::ZonedTimestamp,
            "294270-01-01 00:00:00+00",
        )
        .unwrap();
        assert_eq!(tz, Value::text("infinity".to_string()));
        // The last representable years still count exactly.
        let near = parse(
            &PgType::Timestamp,
            -1,
            &ColumnKind::TimestampMicros,
            "294246-12-31 00:00:00",
        )
        .unwrap();
        assert!(matches!(near, Value::Int(v) if v > 9_223_000_000_000_000_000));
    }

    #[test]
    fn temporal_values() {
        assert_eq!(parse_date("2024-01-02").unwrap(), 19_724);
        assert_eq!(
            parse_date("0001-01-01 BC").unwrap(),
            days_from_civil(0, 1, 1)
        );
        assert_eq!(parse_time("01:02:03.5").unwrap(), 3_723_500_000);
        assert_eq!(parse_timetz("10:15:30+02").unwrap(), "08:15:30Z");
        assert_eq!(parse_timetz("00:30:00.25+01:00").unwrap(), "23:30:00.25Z");
        assert_eq!(parse_timetz("24:00:00+00").unwrap(), "24:00:00Z");
        assert_eq!(parse_timetz("24:00:00+02").unwrap(), "22:00:00Z");
        let (local, off) = parse_timestamp("2024-01-02 03:04:05.123456+00").unwrap();
        assert_eq!((local, off), (1_704_164_645_123_456, 0));
        assert_eq!(
            parse_timestamp("2024-01-02 05:34:05-02:30").unwrap().1,
            -9_000_000_000
        );
        assert_eq!(
            parse_interval("P1Y2M3DT4H5M6.5S").unwrap(),
            14 * 2_629_800_000_000 + 3 * MICROS_PER_DAY + 14_706_500_000
        );
        assert_eq!(parse_interval("PT0S").unwrap(), 0);
        assert_eq!(parse_interval("P-1D").unwrap(), -MICROS_PER_DAY);
        // Counts whose microseconds do not fit an i64 are errors, not wrapped values.
        assert!(parse_interval("P178000000Y").is_err());
        assert!(parse_interval("P-178000000Y").is_err());
        assert!(parse_interval("PT9999999999999999S").is_err());
        assert!(parse_interval("1 day").is_err());
    }

    #[test]
    fn bits_arrays_bytea() {
        assert_eq!(parse_bits("101", 3).unwrap(), vec![0b101]);
        assert_eq!(parse_bits("1000000001", 10).unwrap(), vec![0x01, 0x02]);
        assert_eq!(
            parse_bytea("\\xdeadBEEF").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_bytea("\\xabc").is_err());
        assert_eq!(
            split_array(r#"{a,"b,c",NULL,"NULL","q\"x"}"#).unwrap(),
            vec![
                Some("a".into()),
                Some("b,c".into()),
                None,
                Some("NULL".into()),
                Some("q\"x".into())
            ]
        );
        assert_eq!(split_array("{}").unwrap(), vec![]);
        assert!(split_array("{{1,2},{3,4}}").is_err());
    }

    #[test]
    fn typed_parse() {
        let v = parse(
            &PgType::Money,
            -1,
            &ColumnKind::Decimal {
                precision: None,
                scale: 2,
            },
            "-$1,234.50",
        )
        .unwrap();
        assert_eq!(
            v,
            Value::Decimal(parse_decimal("-1234.50", Some(2)).unwrap().unwrap())
        );
        let arr = parse(
            &PgType::Array(Box::new(PgType::Int4)),
            -1,
            &ColumnKind::Array(Box::new(ColumnKind::Int32)),
            "{1,NULL,3}",
        )
        .unwrap();
        assert_eq!(
            arr,
            Value::Array(vec![Value::Int(1), Value::Null, Value::Int(3)])
        );
        assert_eq!(
            parse(
                &PgType::Timestamp,
                -1,
                &ColumnKind::TimestampMicros,
                "infinity"
            )
            .unwrap(),
            Value::Int(POSITIVE_INFINITY_TS)
        );
        assert!(parse(&PgType::Int4, -1, &ColumnKind::Int32, "x").is_err());
    }
}
