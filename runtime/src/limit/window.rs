//! UTC calendar windows for quotas: where the minute, hour, day or month that holds an
//! instant starts and ends, and the text that names it in a Redis key.
//!
//! Months have no fixed length, so Unix seconds are turned into a civil date and back with
//! Howard Hinnant's `days_from_civil` / `civil_from_days` (proleptic Gregorian calendar,
//! which is what UTC timestamps use), instead of a date-time dependency.

use crate::gateway::Window;

/// The window that holds an instant, in Unix seconds: `start <= now < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    /// First second of the window.
    pub start: u64,
    /// First second after the window.
    pub end: u64,
}

impl Span {
    /// The window of kind `window` holding Unix second `now`.
    pub(crate) fn of(window: Window, now: u64) -> Span {
        let fixed = |len: u64| {
            let start = now - now % len;
            Span {
                start,
                end: start + len,
            }
        };
        match window {
            Window::Minute => fixed(60),
            Window::Hour => fixed(3_600),
            Window::Day => fixed(86_400),
            Window::Month => {
                let (year, month, _) = civil_from_days(days(now));
                let (next_year, next_month) = if month == 12 {
                    (year + 1, 1)
                } else {
                    (year, month + 1)
                };
                Span {
                    start: seconds(days_from_civil(year, month, 1)),
                    end: seconds(days_from_civil(next_year, next_month, 1)),
                }
            }
        }
    }

    /// The window's length in seconds.
    pub(crate) fn len(self) -> u64 {
        self.end - self.start
    }
}

/// The window's name in a Redis key: `2026-05` for a month, `2026-05-01` for a day,
/// `2026-05-01T10` for an hour, `2026-05-01T10:42` for a minute. Windows of different kinds
/// never share a name, even when they start at the same second.
#[cfg(feature = "redis")]
pub(crate) fn label(window: Window, start: u64) -> String {
    let (year, month, day) = civil_from_days(days(start));
    let hour = start % 86_400 / 3_600;
    let minute = start % 3_600 / 60;
    match window {
        Window::Month => format!("{year:04}-{month:02}"),
        Window::Day => format!("{year:04}-{month:02}-{day:02}"),
        Window::Hour => format!("{year:04}-{month:02}-{day:02}T{hour:02}"),
        Window::Minute => format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}"),
    }
}

/// The window kind as written in policy names: `minute`, `hour`, `day`, `month`.
pub(crate) fn name(window: Window) -> &'static str {
    match window {
        Window::Minute => "minute",
        Window::Hour => "hour",
        Window::Day => "day",
        Window::Month => "month",
    }
}

fn days(unix: u64) -> i64 {
    i64::try_from(unix / 86_400).unwrap_or(i64::MAX / 2)
}

fn seconds(days: i64) -> u64 {
    u64::try_from(days).unwrap_or(0).saturating_mul(86_400)
}

/// Days since 1970-01-01 of the civil date `year-month-day` (`month` in 1..=12).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (i64::from(month) + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The civil date (year, month 1..=12, day 1..=31) of a count of days since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400;
    (if month <= 2 { year + 1 } else { year }, month, day)
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
        for days in (-800_000..800_000).step_by(17) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
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
            assert_eq!(
                Span::of(Window::Month, now),
                Span { start, end },
                "at {now}"
            );
        }
        let days = |now| Span::of(Window::Month, now).len() / 86_400;
        assert_eq!(days(unix(2024, 2, 10, 0, 0, 0)), 29, "leap year");
        assert_eq!(days(unix(2023, 2, 10, 0, 0, 0)), 28);
        assert_eq!(days(unix(2000, 2, 10, 0, 0, 0)), 29, "divisible by 400");
        assert_eq!(days(unix(2100, 2, 10, 0, 0, 0)), 28, "divisible by 100");
        assert_eq!(days(unix(2026, 12, 10, 0, 0, 0)), 31);
    }

    #[test]
    fn fixed_windows_and_labels() {
        let now = unix(2026, 12, 31, 23, 59, 30);
        let day = Span::of(Window::Day, now);
        assert_eq!(
            day,
            Span {
                start: unix(2026, 12, 31, 0, 0, 0),
                end: unix(2027, 1, 1, 0, 0, 0)
            }
        );
        assert_eq!(
            Span::of(Window::Hour, now).start,
            unix(2026, 12, 31, 23, 0, 0)
        );
        assert_eq!(Span::of(Window::Minute, now).end, unix(2027, 1, 1, 0, 0, 0));
        let at = |w| label(w, Span::of(w, now).start);
        assert_eq!(at(Window::Month), "2026-12");
        assert_eq!(at(Window::Day), "2026-12-31");
        assert_eq!(at(Window::Hour), "2026-12-31T23");
        assert_eq!(at(Window::Minute), "2026-12-31T23:59");
        let feb29 = unix(2024, 2, 29, 7, 5, 0);
        assert_eq!(
            label(Window::Day, Span::of(Window::Day, feb29).start),
            "2024-02-29"
        );
        assert_eq!(
            label(Window::Month, Span::of(Window::Month, feb29).start),
            "2024-02"
        );
    }
}
