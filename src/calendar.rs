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
    use std::fmt::Write;
    let secs = micros_of_day.div_euclid(1_000_000);
    let frac = micros_of_day.rem_euclid(1_000_000);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    );
    if frac != 0 {
        let mut digits = format!("{frac:06}");
        while digits.ends_with('0') {
            digits.pop();
        }
        out.push('.');
        out.push_str(&digits);
    }
}

/// ISO-8601 UTC timestamp with exactly `digits` fractional digits (0 to 6; Debezium's
/// `ZonedTimestamp` for a column of that precision: `2024-01-02T03:04:05.500000Z`).
pub fn iso_utc_padded(micros: i64, digits: u32) -> String {
    let digits = digits.min(6);
    let whole = iso_utc(micros.div_euclid(1_000_000) * 1_000_000);
    if digits == 0 {
        return whole;
    }
    let frac = format!("{:06}", micros.rem_euclid(1_000_000));
    let mut out = whole;
    out.pop(); // the 'Z'
    out.push('.');
    out.push_str(&frac[..digits as usize]);
    out.push('Z');
    out
}

/// ISO-8601 UTC timestamp (`2024-01-02T03:04:05.123456Z`) of microseconds since the epoch.
pub fn iso_utc(micros: i64) -> String {
    use std::fmt::Write;
    let days = micros.div_euclid(MICROS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    let mut out = String::with_capacity(32);
    if (0..=9999).contains(&y) {
        let _ = write!(out, "{y:04}-{m:02}-{d:02}T");
    } else {
        let _ = write!(out, "{y:+05}-{m:02}-{d:02}T");
    }
    push_time(&mut out, micros.rem_euclid(MICROS_PER_DAY));
    out.push('Z');
    out
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
