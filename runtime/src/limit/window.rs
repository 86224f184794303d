//! UTC calendar windows for quotas, as the runtime uses them: the span that holds an
//! instant, the window's name in policy names, and the text that names it in a Redis key.
//!
//! The calendar itself (where a minute, hour, day or month starts and ends) is
//! `gatewayc_vocab::calendar`'s, which the compiler uses too.

use gatewayc_vocab::calendar;

use crate::gateway::Window;

pub(crate) use gatewayc_vocab::calendar::Span;

/// The calendar's window for the gateway's window kind.
fn kind(window: Window) -> calendar::Window {
    match window {
        Window::Minute => calendar::Window::Minute,
        Window::Hour => calendar::Window::Hour,
        Window::Day => calendar::Window::Day,
        Window::Month => calendar::Window::Month,
    }
}

/// The window of kind `window` holding Unix second `now`.
pub(crate) fn span(window: Window, now: u64) -> Span {
    kind(window).span(now)
}

/// The window's name in a Redis key: `2026-05` for a month, `2026-05-01` for a day,
/// `2026-05-01T10` for an hour, `2026-05-01T10:42` for a minute. Windows of different kinds
/// never share a name, even when they start at the same second.
#[cfg(feature = "redis")]
pub(crate) fn label(window: Window, start: u64) -> String {
    let t = calendar::DateTime::from_unix(i64::try_from(start).unwrap_or(i64::MAX));
    let (year, month, day, hour, minute) = (t.year, t.month, t.day, t.hour, t.minute);
    match window {
        Window::Month => format!("{year:04}-{month:02}"),
        Window::Day => format!("{year:04}-{month:02}-{day:02}"),
        Window::Hour => format!("{year:04}-{month:02}-{day:02}T{hour:02}"),
        Window::Minute => format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}"),
    }
}

/// The window kind as written in policy names: `minute`, `hour`, `day`, `month`.
pub(crate) fn name(window: Window) -> &'static str {
    kind(window).name()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a UTC date-time.
    fn unix(year: i64, month: u32, day: u32, h: u64, m: u64, s: u64) -> u64 {
        let days = u64::try_from(calendar::days_from_civil(year, month, day)).unwrap();
        days * 86_400 + h * 3_600 + m * 60 + s
    }

    #[test]
    fn every_window_kind_maps_to_the_calendar_window_of_its_name() {
        for (window, expected) in [
            (Window::Minute, "minute"),
            (Window::Hour, "hour"),
            (Window::Day, "day"),
            (Window::Month, "month"),
        ] {
            assert_eq!(name(window), expected);
        }
        let now = unix(2024, 2, 29, 23, 59, 59);
        assert_eq!(span(Window::Month, now).start, unix(2024, 2, 1, 0, 0, 0));
        assert_eq!(span(Window::Month, now).end, unix(2024, 3, 1, 0, 0, 0));
        assert_eq!(span(Window::Day, now).seconds(), 86_400);
    }

    #[cfg(feature = "redis")]
    #[test]
    fn labels_name_each_window_once() {
        let now = unix(2026, 12, 31, 23, 59, 30);
        let at = |w| label(w, span(w, now).start);
        assert_eq!(at(Window::Month), "2026-12");
        assert_eq!(at(Window::Day), "2026-12-31");
        assert_eq!(at(Window::Hour), "2026-12-31T23");
        assert_eq!(at(Window::Minute), "2026-12-31T23:59");
        let feb29 = unix(2024, 2, 29, 7, 5, 0);
        assert_eq!(
            label(Window::Day, span(Window::Day, feb29).start),
            "2024-02-29"
        );
        assert_eq!(
            label(Window::Month, span(Window::Month, feb29).start),
            "2024-02"
        );
    }
}
