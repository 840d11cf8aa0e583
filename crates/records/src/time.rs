//! Times as GitLab writes them (`2015-12-24T15:51:21.802Z`) and durations as `.gitlab-ci.yml`
//! writes `expire_in` (`1 day`, `2h 30m`, `1 week`).

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, UTC. GitLab's API shows times to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time.
    pub fn now() -> Timestamp {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64);
        Timestamp(ms)
    }

    /// This time plus `d`, saturating.
    pub fn plus(self, d: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
    }

    /// Seconds from `earlier` to `self`, as GitLab's `duration` floats show them.
    pub fn seconds_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / 1000.0
    }

    /// The UTC day, `YYYY-MM-DD`.
    pub fn day(self) -> String {
        let (date, _) = self.utc();
        format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
    }

    /// The UTC date and the milliseconds into it, clamped to years -9999 to 9999 (a time
    /// past them, as a saturated expiry, reads as the last or first millisecond of them).
    fn utc(self) -> (time::Date, i64) {
        const DAY: i64 = 86_400_000;
        let days = self.0.div_euclid(DAY);
        let (first, last) = (i64::from(time::Date::MIN.to_julian_day()), i64::from(time::Date::MAX.to_julian_day()));
        let julian = days + i64::from(UNIX_EPOCH_JULIAN_DAY);
        if julian < first {
            return (time::Date::MIN, 0);
        }
        if julian > last {
            return (time::Date::MAX, DAY - 1);
        }
        let date = i32::try_from(julian).ok().and_then(|d| time::Date::from_julian_day(d).ok()).unwrap_or(EPOCH);
        (date, self.0.rem_euclid(DAY))
    }

    /// As a `SystemTime`, for HTTP dates.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 { UNIX_EPOCH + Duration::from_millis(self.0 as u64) } else { UNIX_EPOCH }
    }
}

/// 1970-01-01, and its Julian day number.
const EPOCH: time::Date = time::OffsetDateTime::UNIX_EPOCH.date();
const UNIX_EPOCH_JULIAN_DAY: i32 = EPOCH.to_julian_day();

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (date, ms) = self.utc();
        let (y, m, d) = (date.year(), u8::from(date.month()), date.day());
        let (secs, ms) = (ms / 1000, ms % 1000);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", secs / 3600, secs / 60 % 60, secs % 60)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `text` if it is a real calendar day written `YYYY-MM-DD` (years 1970 to 9999).
pub fn parse_day(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let shape = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape {
        return None;
    }
    let (y, m, d): (i32, u8, u8) = (text[..4].parse().ok()?, text[5..7].parse().ok()?, text[8..].parse().ok()?);
    let real = time::Month::try_from(m).and_then(|m| time::Date::from_calendar_date(y, m, d)).is_ok();
    (real && y >= 1970).then(|| text.to_owned())
}

/// Parses an `expire_in` duration: one or more `<number> <unit>` parts, units from seconds
/// to years in GitLab's spellings (`30m`, `2 hrs`, `1 day`, `3 weeks`, `1 mo`, `1 yr`).
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim().to_ascii_lowercase();
    let mut total: u64 = 0;
    let mut rest = text.as_str();
    let mut any = false;
    while !rest.trim_start().is_empty() {
        rest = rest.trim_start().trim_start_matches([',', ' ']).trim_start_matches("and ");
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = rest[digits..].trim_start();
        let unit_len = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let secs = match unit {
            "" | "s" | "sec" | "secs" | "second" | "seconds" => 1,
            "m" | "min" | "mins" | "minute" | "minutes" => 60,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3600,
            "d" | "day" | "days" => 86_400,
            "w" | "wk" | "wks" | "week" | "weeks" => 7 * 86_400,
            "mo" | "mos" | "month" | "months" => 30 * 86_400,
            "y" | "yr" | "yrs" | "year" | "years" => 365 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
        any = true;
    }
    any.then(|| Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_gitlab() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01T00:00:00.000Z");
        assert_eq!(Timestamp(1_450_972_281_802).to_string(), "2015-12-24T15:51:21.802Z");
        assert_eq!(Timestamp(951_782_400_000).to_string(), "2000-02-29T00:00:00.000Z");
        assert_eq!(Timestamp(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(Timestamp(253_402_300_799_999).to_string(), "9999-12-31T23:59:59.999Z");
        assert_eq!(Timestamp(i64::MAX).to_string(), "9999-12-31T23:59:59.999Z", "a saturated expiry: never 1970");
        assert_eq!(Timestamp(i64::MAX).day(), "9999-12-31");
    }

    #[test]
    fn days_are_real_calendar_days() {
        assert_eq!(parse_day("2026-12-04").as_deref(), Some("2026-12-04"));
        assert_eq!(parse_day("2024-02-29").as_deref(), Some("2024-02-29"));
        for bad in ["2025-02-29", "2026-13-01", "2026-00-10", "2026-1-01", "26-12-04", "2026/12/04", "1969-12-31", ""] {
            assert_eq!(parse_day(bad), None, "{bad}");
        }
        assert_eq!(Timestamp(0).day(), "1970-01-01");
        assert_eq!(Timestamp(1_764_806_400_000).day(), "2025-12-04");
    }

    #[test]
    fn parses_expire_in() {
        assert_eq!(parse_duration("1 day"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("2h 30m"), Some(Duration::from_secs(9000)));
        assert_eq!(parse_duration("1 week"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("45"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("never"), None);
        assert_eq!(parse_duration(""), None);
        assert_eq!(parse_duration("3 fortnights"), None);
    }
}
