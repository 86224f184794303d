//! The UTC calendar both crates count in: civil dates to and from days since 1970-01-01,
//! date-times from Unix seconds, and the calendar windows quotas are counted in.
//!
//! The compiler checks sunset dates, writes HTTP dates and stamps API keys with RFC 3339
//! times; the runtime finds the minute, hour, day or month that holds an instant. Months
//! have no fixed length, so all of them go through a civil date, with Howard Hinnant's
//! `days_from_civil` / `civil_from_days` (the proleptic Gregorian calendar, which is what
//! UTC timestamps use), instead of a date-time dependency.

use std::fmt;

/// Seconds in a UTC day (UTC as Unix time counts it: without leap seconds).
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 of the civil date `year-month-day` (`month` in 1..=12).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    // Both fit: the day is in 1..=31 and the month in 1..=12.
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, day)
}

/// Whether `year` has a 29 February.
pub fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// The number of days of `month` (1..=12) in `year`; 0 for a month that does not exist.
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// A UTC date-time, to the second.
///
/// Its `Display` is RFC 3339 in UTC (`2026-11-27T10:00:00Z`), the form of an API key's
/// `created` and `revoked` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateTime {
    /// The year (proleptic Gregorian).
    pub year: i64,
    /// The month, 1..=12.
    pub month: u32,
    /// The day of the month, 1..=31.
    pub day: u32,
    /// The hour, 0..=23.
    pub hour: u32,
    /// The minute, 0..=59.
    pub minute: u32,
    /// The second, 0..=59.
    pub second: u32,
    /// The day of the week, 0 for Monday to 6 for Sunday (ISO 8601 order).
    pub weekday: u32,
}

impl DateTime {
    /// The date-time `unix` seconds after 1970-01-01T00:00:00Z (before it, when negative).
    pub fn from_unix(unix: i64) -> DateTime {
        let days = unix.div_euclid(SECONDS_PER_DAY);
        // Below 86 400, so it fits.
        let secs = unix.rem_euclid(SECONDS_PER_DAY) as u32;
        let (year, month, day) = civil_from_days(days);
        DateTime {
            year,
            month,
            day,
            hour: secs / 3_600,
            minute: secs % 3_600 / 60,
            second: secs % 60,
            // 1970-01-01 was a Thursday (3, counting from Monday).
            weekday: (days + 3).rem_euclid(7) as u32,
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// A quota's calendar window, in UTC: the `minute`, `hour`, `day` or `month` that holds an
/// instant (not the last 60 seconds, or the last 30 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Window {
    /// A minute, from second 0.
    Minute,
    /// An hour, from minute 0.
    Hour,
    /// A day, from 00:00 UTC.
    Day,
    /// A calendar month, from 00:00 UTC on its first day.
    Month,
}

impl Window {
    /// Every window, shortest first.
    pub const ALL: [Window; 4] = [Window::Minute, Window::Hour, Window::Day, Window::Month];

    /// The window's name, as policy names and the documentation write it: `minute`,
    /// `hour`, `day`, `month`.
    pub fn name(self) -> &'static str {
        match self {
            Window::Minute => "minute",
            Window::Hour => "hour",
            Window::Day => "day",
            Window::Month => "month",
        }
    }

    /// The window of this kind that holds Unix second `now`.
    pub fn span(self, now: u64) -> Span {
        let fixed = |len: u64| {
            let start = now - now % len;
            Span {
                start,
                end: start + len,
            }
        };
        match self {
            Window::Minute => fixed(60),
            Window::Hour => fixed(3_600),
            Window::Day => fixed(86_400),
            Window::Month => {
                let days = i64::try_from(now / 86_400).unwrap_or(i64::MAX / 2);
                let (year, month, _) = civil_from_days(days);
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                let seconds = |days: i64| u64::try_from(days).unwrap_or(0).saturating_mul(86_400);
                Span {
                    start: seconds(days_from_civil(year, month, 1)),
                    end: seconds(days_from_civil(next_year, next_month, 1)),
                }
            }
        }
    }
}

/// The window that holds an instant, in Unix seconds: `start <= now < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Span {
    /// First second of the window.
    pub start: u64,
    /// First second after the window.
    pub end: u64,
}

impl Span {
    /// The window's length in seconds.
    pub fn seconds(self) -> u64 {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date-time, by a different road than the code under test:
    /// counting whole years and months from 1970.
    fn unix(year: i64, month: u32, day: u32, h: u64, m: u64, s: u64) -> u64 {
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut days = 0u64;
        for y in 1970..year {
            days += if leap(y) { 366 } else { 365 };
        }
        let lengths = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        days += lengths[..month as usize - 1].iter().sum::<u64>();
        days += u64::from(day) - 1;
        days * 86_400 + h * 3_600 + m * 60 + s
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        assert_eq!(
            civil_from_days(days_from_civil(2100, 3, 1) - 1),
            (2100, 2, 28)
        );
        for days in (-800_000..800_000).step_by(17) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
            assert!((1..=days_in_month(y, m)).contains(&d), "{y}-{m}-{d}");
        }
    }

    #[test]
    fn month_lengths_follow_the_gregorian_rules() {
        assert_eq!(days_in_month(2024, 2), 29, "divisible by 4");
        assert_eq!(days_in_month(2023, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29, "divisible by 400");
        assert_eq!(days_in_month(2100, 2), 28, "divisible by 100");
        assert_eq!(days_in_month(2026, 4), 30);
        assert_eq!(days_in_month(2026, 12), 31);
        assert_eq!(days_in_month(2026, 0), 0);
        assert_eq!(days_in_month(2026, 13), 0);
        let year: u32 = (1..=12).map(|m| days_in_month(2026, m)).sum();
        assert_eq!(year, 365);
    }

    #[test]
    fn date_times_are_rfc3339_utc_with_their_weekday() {
        let at = |unix: i64| DateTime::from_unix(unix).to_string();
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_000_000_000), "2001-09-09T01:46:40Z");
        assert_eq!(at(1_795_775_999), "2026-11-27T10:39:59Z");
        assert_eq!(at(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(at(-1), "1969-12-31T23:59:59Z");
        // 1970-01-01 was a Thursday, 2000-02-29 a Tuesday, 2027-06-30 a Wednesday.
        assert_eq!(DateTime::from_unix(0).weekday, 3);
        assert_eq!(DateTime::from_unix(951_782_400).weekday, 1);
        let sunset = days_from_civil(2027, 6, 30) * SECONDS_PER_DAY;
        assert_eq!(DateTime::from_unix(sunset).weekday, 2);
        assert_eq!(DateTime::from_unix(-1).weekday, 2);
    }

    #[test]
    fn month_windows_follow_the_calendar() {
        let cases = [
            // (instant, window start, window end)
            (
                unix(2024, 2, 29, 23, 59, 59),
                unix(2024, 2, 1, 0, 0, 0),
                unix(2024, 3, 1, 0, 0, 0),
            ),
            (
                unix(2023, 2, 28, 12, 0, 0),
                unix(2023, 2, 1, 0, 0, 0),
                unix(2023, 3, 1, 0, 0, 0),
            ),
            (
                unix(2000, 2, 15, 0, 0, 0),
                unix(2000, 2, 1, 0, 0, 0),
                unix(2000, 3, 1, 0, 0, 0),
            ),
            (
                unix(2100, 2, 15, 0, 0, 0),
                unix(2100, 2, 1, 0, 0, 0),
                unix(2100, 3, 1, 0, 0, 0),
            ),
            (
                unix(2026, 12, 31, 23, 59, 59),
                unix(2026, 12, 1, 0, 0, 0),
                unix(2027, 1, 1, 0, 0, 0),
            ),
            (
                unix(2027, 1, 1, 0, 0, 0),
                unix(2027, 1, 1, 0, 0, 0),
                unix(2027, 2, 1, 0, 0, 0),
            ),
            (
                unix(2026, 4, 30, 10, 0, 0),
                unix(2026, 4, 1, 0, 0, 0),
                unix(2026, 5, 1, 0, 0, 0),
            ),
            (0, 0, unix(1970, 2, 1, 0, 0, 0)),
        ];
        for (now, start, end) in cases {
            assert_eq!(Window::Month.span(now), Span { start, end }, "at {now}");
        }
        let days = |now| Window::Month.span(now).seconds() / 86_400;
        assert_eq!(days(unix(2024, 2, 10, 0, 0, 0)), 29, "leap year");
        assert_eq!(days(unix(2023, 2, 10, 0, 0, 0)), 28);
        assert_eq!(days(unix(2000, 2, 10, 0, 0, 0)), 29, "divisible by 400");
        assert_eq!(days(unix(2100, 2, 10, 0, 0, 0)), 28, "divisible by 100");
        assert_eq!(days(unix(2026, 12, 10, 0, 0, 0)), 31);
    }

    #[test]
    fn fixed_windows_start_on_the_boundary() {
        let now = unix(2026, 12, 31, 23, 59, 30);
        assert_eq!(
            Window::Day.span(now),
            Span {
                start: unix(2026, 12, 31, 0, 0, 0),
                end: unix(2027, 1, 1, 0, 0, 0)
            }
        );
        assert_eq!(Window::Hour.span(now).start, unix(2026, 12, 31, 23, 0, 0));
        assert_eq!(Window::Minute.span(now).end, unix(2027, 1, 1, 0, 0, 0));
        for w in Window::ALL {
            let span = w.span(now);
            assert!(span.start <= now && now < span.end, "{}", w.name());
            assert_eq!(w.span(span.start), span, "{}", w.name());
            assert_eq!(w.span(span.end).start, span.end, "{}", w.name());
        }
        let names: Vec<_> = Window::ALL.iter().map(|w| w.name()).collect();
        assert_eq!(names, ["minute", "hour", "day", "month"]);
    }
}
