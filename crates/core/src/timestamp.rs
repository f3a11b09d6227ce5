//! RFC 3339 timestamps as unix milliseconds.
//!
//! Core code passes time around as `i64` unix milliseconds (the glue reads the clock once per
//! request). Records store RFC 3339 strings; [`Timestamp`] converts at the serde boundary, so a
//! record with a malformed date fails to decode instead of being half-trusted.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, unix milliseconds (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// Unix milliseconds.
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses an RFC 3339 date-time (`2026-05-26T12:00:00Z`, fractions and offsets allowed).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        parse_rfc3339(text).map(Timestamp)
    }

    /// Formats as `YYYY-MM-DDTHH:MM:SS.mmmZ`: always milliseconds, so every timestamp keygate
    /// writes has the same width (24 characters) and sorts as text.
    pub fn to_rfc3339(self) -> String {
        format_rfc3339(self.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse_rfc3339(&text).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

// Years 0000–9999 only; keeps arithmetic far from overflow.
const MIN_YEAR: i64 = 0;
const MAX_YEAR: i64 = 9999;

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub(crate) fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(bytes: &[u8], from: usize, count: usize) -> Option<i64> {
    let slice = bytes.get(from..from + count)?;
    slice.iter().try_fold(0i64, |acc, &b| b.is_ascii_digit().then(|| acc * 10 + i64::from(b - b'0')))
}

fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b.len() > 40 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    let hour = digits(b, 11, 2)?;
    let minute = digits(b, 14, 2)?;
    let second = digits(b, 17, 2)?;
    if b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !(MIN_YEAR..=MAX_YEAR).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while b.get(pos).is_some_and(u8::is_ascii_digit) {
            if pos - start < 3 {
                millis = millis * 10 + i64::from(b[pos] - b'0');
            }
            pos += 1;
        }
        let count = pos - start;
        if count == 0 {
            return None;
        }
        for _ in count..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(pos)? {
        b'Z' | b'z' if pos + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let hours = digits(b, pos + 1, 2)?;
            let minutes = digits(b, pos + 4, 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let total = hours * 60 + minutes;
            if *sign == b'-' {
                -total
            } else {
                total
            }
        }
        _ => return None,
    };
    // A leap second is folded into the next second, as most systems do.
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    // The instant itself must lie in years 0000–9999 (UTC), or it could not be written back:
    // `0000-01-01T00:00:00+01:00` is in year -1, `9999-12-31T23:59:59-01:00` in year 10000.
    let millis = seconds * 1000 + millis;
    let first = days_from_civil(MIN_YEAR, 1, 1) * 86_400_000;
    let last = days_from_civil(MAX_YEAR + 1, 1, 1) * 86_400_000 - 1;
    (first..=last).contains(&millis).then_some(millis)
}

fn format_rfc3339(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let ms = millis.rem_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let in_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (in_day / 3600, in_day % 3600 / 60, in_day % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_forms() {
        let rows: &[(&str, &str, i64)] = &[
            ("epoch", "1970-01-01T00:00:00Z", 0),
            ("seed example", "2026-05-26T12:00:00Z", 1_779_796_800_000),
            ("lowercase t and z", "2026-05-26t12:00:00z", 1_779_796_800_000),
            ("millis", "1970-01-01T00:00:01.250Z", 1_250),
            ("one fraction digit", "1970-01-01T00:00:01.5Z", 1_500),
            ("micros truncated", "1970-01-01T00:00:01.123456Z", 1_123),
            ("positive offset", "1970-01-01T01:00:00+01:00", 0),
            ("negative offset", "1969-12-31T19:00:00-05:00", 0),
            ("leap day", "2024-02-29T00:00:00Z", 1_709_164_800_000),
            ("before epoch", "1969-12-31T23:59:59Z", -1_000),
        ];
        for (what, text, millis) in rows {
            assert_eq!(Timestamp::parse_rfc3339(text), Some(Timestamp(*millis)), "{what}");
        }
    }

    #[test]
    fn rejects_invalid_forms() {
        let rows = [
            ("empty", ""),
            ("date only", "2026-05-26"),
            ("no zone", "2026-05-26T12:00:00"),
            ("space separator", "2026-05-26 12:00:00Z"),
            ("month 13", "2026-13-01T00:00:00Z"),
            ("feb 29 in non-leap year", "2025-02-29T00:00:00Z"),
            ("hour 24", "2026-05-26T24:00:00Z"),
            ("empty fraction", "2026-05-26T12:00:00.Z"),
            ("bad offset", "2026-05-26T12:00:00+1:00"),
            ("trailing junk", "2026-05-26T12:00:00Zjunk"),
            ("non-ascii", "2026-05-26T12:00:00Ž"),
            ("signs in digits", "+026-05-26T12:00:00Z"),
        ];
        for (what, text) in rows {
            assert_eq!(Timestamp::parse_rfc3339(text), None, "{what}");
        }
    }

    #[test]
    fn format_round_trips_over_a_wide_range() {
        let mut millis = -62_135_596_800_000i64; // 0001-01-01
        while millis < 253_402_300_799_000 {
            let text = Timestamp(millis).to_rfc3339();
            assert_eq!(Timestamp::parse_rfc3339(&text), Some(Timestamp(millis)), "{text}");
            millis += 86_400_000 * 97 + 3_600_007;
        }
        assert_eq!(Timestamp(1_779_796_800_000).to_rfc3339(), "2026-05-26T12:00:00.000Z", "milliseconds even when zero");
        assert_eq!(Timestamp(1_250).to_rfc3339(), "1970-01-01T00:00:01.250Z");
        assert_eq!(Timestamp(-62_135_596_800_000).to_rfc3339(), "0001-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(253_402_300_799_999).to_rfc3339().len(), 24, "one fixed width");
    }

    #[test]
    fn offsets_and_leap_seconds_cannot_leave_years_0000_to_9999() {
        // Found by fuzzing (fuzz/fuzz_targets/admin_bodies.rs): a PATCH with valid_from
        // `0000-01-01T00:00:59+01:00` was accepted, stored as `-001-12-31T23:00:59Z`, and the
        // record then failed to decode on every read (the key answered 503 from then on).
        for text in [
            "0000-01-01T00:00:00+01:00",
            "0000-01-01T00:00:00.999+00:01",
            "9999-12-31T23:59:59-00:01",
            "9999-12-31T23:59:59-23:59",
            "9999-12-31T23:59:60Z",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(text), None, "{text}");
        }
        for text in ["0000-01-01T00:00:00Z", "0000-01-01T01:00:00+01:00", "9999-12-31T23:59:59.999Z", "9999-12-31T22:59:59-01:00"] {
            let parsed = Timestamp::parse_rfc3339(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(Timestamp::parse_rfc3339(&parsed.to_rfc3339()), Some(parsed), "{text} round-trips");
        }
    }

    #[test]
    fn serde_uses_rfc3339_strings() {
        let json = serde_json::to_string(&Timestamp(0)).unwrap();
        assert_eq!(json, "\"1970-01-01T00:00:00.000Z\"");
        let back: Timestamp = serde_json::from_str(&json).unwrap();
        assert_eq!(back, Timestamp(0));
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
        assert!(serde_json::from_str::<Timestamp>("12").is_err());
    }
}
