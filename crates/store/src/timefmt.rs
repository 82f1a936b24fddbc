//! Timestamps: unix milliseconds inside, fixed-width ISO 8601 UTC with
//! millisecond precision (`2024-05-01T12:00:00.250Z`) in the store and on
//! the wire. Fixed width makes the text sort in time order.

use std::time::{SystemTime, UNIX_EPOCH};

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

use crate::SharedText;

/// Smallest and largest instants we render: years 1970 to 9999.
const MIN_MS: i64 = 0;
const MAX_MS: i64 = 253_402_300_799_999;

/// Milliseconds since the unix epoch, now.
pub fn now_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(MAX_MS),
        Err(_) => 0,
    }
}

/// `ms` as `YYYY-MM-DDTHH:MM:SS.mmmZ`, clamped to years 1970..=9999.
/// Written by hand (days to civil date, then digits into a fixed buffer):
/// the collector writes one for every distinct `age` of a batch (10 for
/// the golden batch). Digits into a byte buffer, one copy into the
/// `String`, not a push a character (docs/benchmarks.md, "the parse",
/// eleventh round, for the instructions); held to the `time` crate's text
/// by `formats_as_the_time_crate_does`.
pub fn iso_from_ms(ms: i64) -> String {
    iso_text(&iso_bytes(ms)).to_owned()
}

/// [`iso_from_ms`] as text the records of a batch share, copied once from
/// the digits' buffer (not from a `String` made first).
pub fn shared_iso_from_ms(ms: i64) -> SharedText {
    SharedText::from(iso_text(&iso_bytes(ms)))
}

/// ASCII digits and separators: always UTF-8.
fn iso_text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap_or_default()
}

/// [`iso_from_ms`]'s bytes.
fn iso_bytes(ms: i64) -> [u8; 24] {
    let ms = ms.clamp(MIN_MS, MAX_MS);
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    // (value, its first byte in the text, its width)
    let fields = [
        (year, 0, 4),
        (month, 5, 2),
        (day, 8, 2),
        (rem / 3_600_000, 11, 2),
        (rem / 60_000 % 60, 14, 2),
        (rem / 1000 % 60, 17, 2),
        (rem % 1000, 20, 3),
    ];
    let mut text = *b"0000-00-00T00:00:00.000Z";
    for (value, at, width) in fields {
        let mut v = value;
        for slot in text.iter_mut().skip(at).take(width).rev() {
            // `v % 10` is a digit: 0..=9.
            *slot = b'0' + u8::try_from(v % 10).unwrap_or(0);
            v /= 10;
        }
    }
    text
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian;
/// H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Parses a `since` filter: unix milliseconds (`1714564800000`), RFC 3339 /
/// ISO 8601 date-time with offset (`2024-05-01T12:00:00Z`,
/// `2024-05-01T14:00:00.5+02:00`), or a date (`2024-05-01`, midnight UTC).
/// A `+` that arrived as a space (an unencoded query string) is put back.
pub fn parse_instant(input: &str) -> Option<i64> {
    let s = input.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse::<i64>()
            .ok()
            .filter(|ms| (MIN_MS..=MAX_MS).contains(ms));
    }
    let fixed = s.replace(' ', "+");
    if let Ok(dt) = OffsetDateTime::parse(&fixed, &Rfc3339) {
        return to_ms(dt);
    }
    parse_date(s).and_then(|d| to_ms(PrimitiveDateTime::new(d, Time::MIDNIGHT).assume_utc()))
}

fn to_ms(dt: OffsetDateTime) -> Option<i64> {
    let ms = dt.unix_timestamp_nanos() / 1_000_000;
    i64::try_from(ms)
        .ok()
        .filter(|ms| (MIN_MS..=MAX_MS).contains(ms))
}

fn parse_date(s: &str) -> Option<Date> {
    let mut parts = s.split('-');
    let (y, m, d) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let all_digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if !(all_digits(y) && all_digits(m) && all_digits(d)) {
        return None;
    }
    let month = Month::try_from(m.parse::<u8>().ok()?).ok()?;
    Date::from_calendar_date(y.parse().ok()?, month, d.parse().ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis() {
        assert_eq!(iso_from_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_from_ms(1_714_564_800_250), "2024-05-01T12:00:00.250Z");
        assert_eq!(iso_from_ms(-5), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso_from_ms(i64::MAX), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn parses_instants() {
        assert_eq!(parse_instant("1714564800250"), Some(1_714_564_800_250));
        assert_eq!(
            parse_instant("2024-05-01T12:00:00Z"),
            Some(1_714_564_800_000)
        );
        assert_eq!(
            parse_instant("2024-05-01T12:00:00.250Z"),
            Some(1_714_564_800_250)
        );
        assert_eq!(
            parse_instant("2024-05-01T14:00:00+02:00"),
            Some(1_714_564_800_000)
        );
        assert_eq!(
            parse_instant("2024-05-01T14:00:00 02:00"),
            Some(1_714_564_800_000)
        );
        assert_eq!(parse_instant("2024-05-01"), Some(1_714_521_600_000));
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-05-01T12:00:00",
            "-5",
            "99999999999999999999",
            "2024-5-1",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
    }

    /// The hand-written formatter says what the `time` crate says.
    #[test]
    fn formats_as_the_time_crate_does() {
        let by_time = |ms: i64| {
            let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                dt.year(),
                u8::from(dt.month()),
                dt.day(),
                dt.hour(),
                dt.minute(),
                dt.second(),
                dt.millisecond()
            )
        };
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let ms = i64::try_from(x % (MAX_MS as u64 + 1)).unwrap_or(0);
            assert_eq!(iso_from_ms(ms), by_time(ms), "{ms}");
        }
        for ms in [0, 951_782_400_000, 4_107_542_399_999, MAX_MS] {
            assert_eq!(iso_from_ms(ms), by_time(ms), "{ms}");
            assert_eq!(shared_iso_from_ms(ms), by_time(ms), "{ms}");
        }
    }

    #[test]
    fn round_trips() {
        for ms in [0, 1, 999, 1_000, 1_714_564_800_250, MAX_MS] {
            assert_eq!(parse_instant(&iso_from_ms(ms)), Some(ms));
        }
    }
}
