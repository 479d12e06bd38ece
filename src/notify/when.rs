//! Times as a tenant's licensing admins read them: in the tenant's time zone (an IANA name,
//! resolved with jiff against the system's tz database or the copy built into the binary), in
//! a human format ("Sun 29 Nov 2026, 14:05 CET"), and the weekly summary's schedule in that
//! zone, across daylight-saving changes. Pure: the clock is a parameter.

use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};
use serde::{Deserialize, Serialize};

use crate::alloc::Millis;

/// The time zone named `name`, if it is one (`UTC` and IANA names such as `Europe/Berlin`).
pub fn zone(name: &str) -> Option<TimeZone> {
    if name.eq_ignore_ascii_case("utc") {
        return Some(TimeZone::UTC);
    }
    TimeZone::get(name).ok()
}

/// Checks a tenant's `time_zone` setting.
pub fn valid_zone(name: &str) -> Result<(), String> {
    match zone(name) {
        Some(_) => Ok(()),
        None => Err(format!(
            "time_zone {name:?} is not a known IANA time zone (e.g. \"Europe/Berlin\", \"America/New_York\", \"UTC\")"
        )),
    }
}

/// `at` (ms since the epoch) in `zone_name` (UTC when unknown): `Sun 29 Nov 2026, 14:05 CET`.
pub fn format_ms(at: Millis, zone_name: &str) -> String {
    let Ok(ts) = Timestamp::from_millisecond(at) else {
        return String::new();
    };
    let tz = zone(zone_name).unwrap_or(TimeZone::UTC);
    ts.to_zoned_datetime(tz)
        .strftime("%a %-d %b %Y, %H:%M %Z")
        .to_string()
}

/// As [`format_ms`], for an RFC 3339 time as stored in events; the text itself when it is not one.
pub fn format_rfc3339(at: &str, zone_name: &str) -> String {
    match at.parse::<Timestamp>() {
        Ok(ts) => format_ms(ts.as_millisecond(), zone_name),
        Err(_) => at.to_owned(),
    }
}

/// The instant a day (`YYYY-MM-DD`) starts in `zone_name` (UTC when unknown), in ms; `None`
/// for a text that is no date.
pub fn day_start(day: &str, zone_name: &str) -> Option<Millis> {
    let date: jiff::civil::Date = day.trim().parse().ok()?;
    let tz = zone(zone_name).unwrap_or(TimeZone::UTC);
    let zoned = date.at(0, 0, 0, 0).to_zoned_datetime(tz).ok()?;
    Some(zoned.timestamp().as_millisecond())
}

/// The date alone: `Mon 23 Nov 2026`.
pub fn format_day(at: Millis, zone_name: &str) -> String {
    let Ok(ts) = Timestamp::from_millisecond(at) else {
        return String::new();
    };
    let tz = zone(zone_name).unwrap_or(TimeZone::UTC);
    ts.to_zoned_datetime(tz)
        .strftime("%a %-d %b %Y")
        .to_string()
}

/// A duration in words, to the minute: `2 days 3 hours`, `5 hours 20 minutes`, `45 minutes`.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    let unit = |n: i64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    match (d, h, m) {
        (0, 0, 0) => "less than a minute".into(),
        (0, 0, m) => unit(m, "minute"),
        (0, h, 0) => unit(h, "hour"),
        (0, h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
        (d, 0, _) => unit(d, "day"),
        (d, h, _) => format!("{} {}", unit(d, "day"), unit(h, "hour")),
    }
}

/// When a tenant's weekly summary is sent: a day of the week and an hour, in its time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Weekly {
    /// `monday` ... `sunday`.
    pub day: Day,
    /// 0 to 23.
    pub hour: i8,
}

impl Default for Weekly {
    /// Monday, 08:00.
    fn default() -> Self {
        Weekly {
            day: Day::Monday,
            hour: 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Day {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Day {
    fn weekday(self) -> Weekday {
        match self {
            Day::Monday => Weekday::Monday,
            Day::Tuesday => Weekday::Tuesday,
            Day::Wednesday => Weekday::Wednesday,
            Day::Thursday => Weekday::Thursday,
            Day::Friday => Weekday::Friday,
            Day::Saturday => Weekday::Saturday,
            Day::Sunday => Weekday::Sunday,
        }
    }
}

impl Weekly {
    pub fn validate(&self) -> Result<(), String> {
        if (0..24).contains(&self.hour) {
            Ok(())
        } else {
            Err(format!(
                "weekly_summary.hour must be between 0 and 23, not {}",
                self.hour
            ))
        }
    }

    /// The latest scheduled time at or before `now` (ms), in `zone_name`. An hour that a
    /// daylight-saving change skips is taken as the first instant after the gap; an hour that
    /// occurs twice, as its first occurrence.
    pub fn last_slot(&self, now: Millis, zone_name: &str) -> Option<Millis> {
        let tz = zone(zone_name).unwrap_or(TimeZone::UTC);
        let now_z = Timestamp::from_millisecond(now)
            .ok()?
            .to_zoned_datetime(tz.clone());
        let today = now_z.date();
        let back = (today.weekday().to_monday_zero_offset()
            - self.day.weekday().to_monday_zero_offset())
        .rem_euclid(7);
        let mut day = today.checked_sub((back as i64).days()).ok()?;
        loop {
            let slot = day
                .at(self.hour, 0, 0, 0)
                .to_zoned_datetime(tz.clone())
                .ok()?;
            let ms = slot.timestamp().as_millisecond();
            if ms <= now {
                return Some(ms);
            }
            day = day.checked_sub(7.days()).ok()?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(rfc3339: &str) -> Millis {
        rfc3339.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn a_day_starts_at_midnight_in_the_tenants_zone() {
        assert_eq!(
            day_start("2026-10-25", "Europe/Berlin"),
            Some(ms("2026-10-24T22:00:00Z"))
        );
        assert_eq!(
            day_start("2026-10-26", "UTC"),
            Some(ms("2026-10-26T00:00:00Z"))
        );
        assert_eq!(day_start("yesterday", "UTC"), None);
    }

    #[test]
    fn times_read_in_the_tenants_zone_across_daylight_saving() {
        // Berlin leaves summer time on Sunday 25 October 2026 at 03:00 CEST.
        assert_eq!(
            format_ms(ms("2026-10-24T12:00:00Z"), "Europe/Berlin"),
            "Sat 24 Oct 2026, 14:00 CEST"
        );
        assert_eq!(
            format_ms(ms("2026-10-26T12:00:00Z"), "Europe/Berlin"),
            "Mon 26 Oct 2026, 13:00 CET"
        );
        assert_eq!(
            format_ms(ms("2026-11-29T14:05:00Z"), "UTC"),
            "Sun 29 Nov 2026, 14:05 UTC"
        );
        // An unknown zone (never stored: the setting is checked) falls back to UTC.
        assert_eq!(
            format_ms(ms("2026-11-29T14:05:00Z"), "Mars/Olympus"),
            "Sun 29 Nov 2026, 14:05 UTC"
        );
        assert_eq!(
            format_rfc3339("2026-03-08T12:30:00.000Z", "America/New_York"),
            "Sun 8 Mar 2026, 08:30 EDT"
        );
        assert!(valid_zone("America/New_York").is_ok());
        assert!(valid_zone("utc").is_ok());
        assert!(valid_zone("Europe/Nowhere").is_err());
    }

    #[test]
    fn the_weekly_slot_keeps_its_local_hour_across_daylight_saving() {
        let w = Weekly {
            day: Day::Monday,
            hour: 8,
        };
        // Before the change: Monday 19 Oct 2026 08:00 CEST = 06:00 UTC.
        assert_eq!(
            w.last_slot(ms("2026-10-24T00:00:00Z"), "Europe/Berlin"),
            Some(ms("2026-10-19T06:00:00Z"))
        );
        // After it: Monday 26 Oct 2026 08:00 CET = 07:00 UTC.
        assert_eq!(
            w.last_slot(ms("2026-10-26T07:00:00Z"), "Europe/Berlin"),
            Some(ms("2026-10-26T07:00:00Z"))
        );
        // A minute before the slot, the previous week's.
        assert_eq!(
            w.last_slot(ms("2026-10-26T06:59:00Z"), "Europe/Berlin"),
            Some(ms("2026-10-19T06:00:00Z"))
        );
        // An hour the spring change skips (02:30 on Sunday 29 March 2026 in Berlin) is taken
        // right after the gap.
        let gap = Weekly {
            day: Day::Sunday,
            hour: 2,
        };
        assert_eq!(
            gap.last_slot(ms("2026-03-29T12:00:00Z"), "Europe/Berlin"),
            Some(ms("2026-03-29T01:00:00Z"))
        );
        assert!(Weekly {
            day: Day::Friday,
            hour: 24
        }
        .validate()
        .is_err());
    }

    #[test]
    fn durations_read_as_words() {
        assert_eq!(duration(30), "less than a minute");
        assert_eq!(duration(60), "1 minute");
        assert_eq!(duration(7200 + 300), "2 hours 5 minutes");
        assert_eq!(duration(3 * 86_400 + 3600), "3 days 1 hour");
        assert_eq!(duration(86_400), "1 day");
    }
}
