//! Civil calendar arithmetic shared by the sources: days since the epoch, ISO-8601 output.
//! Proleptic Gregorian, like PostgreSQL, MySQL and `java.time`.

/// Microseconds in a day.
pub const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days since 1970-01-01 of a civil date (year may be ≤ 0: 0 is 1 BC).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = month as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Appends `HH:MM:SS[.fraction]` for microseconds within a day, trimming trailing zeros of
/// the fraction as `java.time`'s ISO formatters do.
pub fn push_time(out: &mut String, micros_of_day: i64) {
    let secs = micros_of_day.div_euclid(1_000_000);
    let frac = micros_of_day.rem_euclid(1_000_000);
    push_2(out, secs / 3600);
    out.push(':');
    push_2(out, (secs / 60) % 60);
    out.push(':');
    push_2(out, secs % 60);
    if frac != 0 {
        // Six digits without the trailing zeros.
        let mut digits = 6;
        let mut f = frac;
        while f % 10 == 0 {
            f /= 10;
            digits -= 1;
        }
        out.push('.');
        push_frac(out, frac, digits);
    }
}

/// Two digits, zero-padded (0..=99).
fn push_2(out: &mut String, v: i64) {
    let v = v.rem_euclid(100) as u8;
    out.push(char::from(b'0' + v / 10));
    out.push(char::from(b'0' + v % 10));
}

/// The first `digits` (0..=6) of a six-digit zero-padded fraction.
fn push_frac(out: &mut String, frac: i64, digits: u32) {
    let mut buf = [b'0'; 6];
    let mut f = frac.rem_euclid(1_000_000);
    for slot in buf.iter_mut().rev() {
        *slot = b'0' + (f % 10) as u8;
        f /= 10;
    }
    for &b in &buf[..digits.min(6) as usize] {
        out.push(char::from(b));
    }
}

/// `YYYY-MM-DDT` (a year outside 0..=9999 signed, at least four digits).
fn push_date_t(out: &mut String, days: i64) {
    let (y, m, d) = civil_from_days(days);
    if (0..=9999).contains(&y) {
        push_2(out, y / 100);
        push_2(out, y % 100);
    } else {
        out.push(if y < 0 { '-' } else { '+' });
        let a = y.unsigned_abs();
        if a < 10_000 {
            push_2(out, (a / 100) as i64);
            push_2(out, (a % 100) as i64);
        } else {
            out.push_str(&a.to_string());
        }
    }
    out.push('-');
    push_2(out, i64::from(m));
    out.push('-');
    push_2(out, i64::from(d));
    out.push('T');
}

/// ISO-8601 UTC timestamp with exactly `digits` fractional digits (0 to 6; Debezium's
/// `ZonedTimestamp` for a column of that precision: `2024-01-02T03:04:05.500000Z`).
pub fn iso_utc_padded(micros: i64, digits: u32) -> String {
    let digits = digits.min(6);
    let mut out = String::with_capacity(32);
    push_date_t(&mut out, micros.div_euclid(MICROS_PER_DAY));
    let of_day = micros.rem_euclid(MICROS_PER_DAY);
    push_time(&mut out, of_day.div_euclid(1_000_000) * 1_000_000);
    if digits > 0 {
        out.push('.');
        push_frac(&mut out, of_day, digits);
    }
    out.push('Z');
    out
}

/// ISO-8601 UTC timestamp (`2024-01-02T03:04:05.123456Z`) of microseconds since the epoch.
pub fn iso_utc(micros: i64) -> String {
    let mut out = String::with_capacity(32);
    push_iso_utc(&mut out, micros);
    out
}

/// [`iso_utc`] appended to `out`.
pub fn push_iso_utc(out: &mut String, micros: i64) {
    push_date_t(out, micros.div_euclid(MICROS_PER_DAY));
    push_time(out, micros.rem_euclid(MICROS_PER_DAY));
    out.push('Z');
}

/// Debezium's sentinel for PostgreSQL's `timestamp 'infinity'` (micro and milli timestamps
/// alike).
pub const POSITIVE_INFINITY_TS: i64 = 9_223_372_036_825_200_000;
/// Debezium's sentinel for `timestamp '-infinity'`.
pub const NEGATIVE_INFINITY_TS: i64 = -9_223_372_036_832_400_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_timestamps_keep_the_columns_precision() {
        let t = 1_704_157_445_500_000; // 2024-01-02T01:04:05.5Z
        assert_eq!(iso_utc_padded(t, 6), "2024-01-02T01:04:05.500000Z");
        assert_eq!(iso_utc_padded(t, 3), "2024-01-02T01:04:05.500Z");
        assert_eq!(iso_utc_padded(t, 0), "2024-01-02T01:04:05Z");
        assert_eq!(
            iso_utc_padded(t - 500_000, 6),
            "2024-01-02T01:04:05.000000Z"
        );
        assert_eq!(iso_utc_padded(-1, 6), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn timestamps_as_the_formatter_wrote_them() {
        // Compared with `format!` over a spread of instants, years and fractions.
        let reference = |micros: i64| {
            let days = micros.div_euclid(MICROS_PER_DAY);
            let (y, m, d) = civil_from_days(days);
            let of_day = micros.rem_euclid(MICROS_PER_DAY);
            let secs = of_day / 1_000_000;
            let frac = of_day % 1_000_000;
            let date = if (0..=9999).contains(&y) {
                format!("{y:04}-{m:02}-{d:02}")
            } else {
                format!("{y:+05}-{m:02}-{d:02}")
            };
            let mut time = format!(
                "{:02}:{:02}:{:02}",
                secs / 3600,
                (secs / 60) % 60,
                secs % 60
            );
            if frac != 0 {
                time.push_str(format!(".{frac:06}").trim_end_matches('0'));
            }
            format!("{date}T{time}Z")
        };
        let mut x: i64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros = x % 400_000_000_000_000_000; // about ±12,700 years
            assert_eq!(iso_utc(micros), reference(micros), "{micros}");
            let whole = micros - micros.rem_euclid(1_000_000);
            assert_eq!(
                iso_utc_padded(micros, 3),
                format!(
                    "{}.{:03}Z",
                    reference(whole).trim_end_matches('Z'),
                    micros.rem_euclid(1_000_000) / 1000
                ),
                "{micros}"
            );
        }
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_utc(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        assert_eq!(civil_from_days(19_724), (2024, 1, 2));
        for d in [-800_000, -1, 0, 59, 10_000, 2_932_896] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }

    #[test]
    fn iso_output() {
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso_utc(1_704_164_645_123_456),
            "2024-01-02T03:04:05.123456Z"
        );
        assert_eq!(iso_utc(1_704_164_645_500_000), "2024-01-02T03:04:05.5Z");
        assert_eq!(iso_utc(-1), "1969-12-31T23:59:59.999999Z");
    }
}
