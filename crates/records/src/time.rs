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
        let (y, m, d) = civil_from_days(self.0.div_euclid(86_400_000));
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// As a `SystemTime`, for HTTP dates.
    pub fn to_system_time(self) -> SystemTime {
        if self.0 >= 0 { UNIX_EPOCH + Duration::from_millis(self.0 as u64) } else { UNIX_EPOCH }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.rem_euclid(1000);
        let secs = self.0.div_euclid(1000);
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        write!(f, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z", rem / 3600, rem / 60 % 60, rem % 60)
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
    let (y, m, d): (i64, u32, u32) = (text[..4].parse().ok()?, text[5..7].parse().ok()?, text[8..].parse().ok()?);
    // The day is real if it survives a trip through the calendar.
    let days = days_from_civil(y, m, d)?;
    (y >= 1970 && civil_from_days(days) == (y, m, d)).then(|| text.to_owned())
}

/// Howard Hinnant's civil-to-days algorithm; `None` for a month or day out of range.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
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
