//! Versioning and deprecation: `x-gateway.version` on a document (one spec file per
//! version), OpenAPI's `deprecated: true`, and `x-gateway.sunset` dates.
//!
//! A version is chosen by a path prefix (`prefix: /v1`): the prefix is added to every
//! path template of its file for routing, and is not sent upstream (an explicit
//! `x-gateway.path` says otherwise). `gatewayc check` warns when a sunset is less than
//! [`SUNSET_WARNING_DAYS`] days away and fails once it has passed.

use serde_json::Value;

use super::reader::Obj;
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{Deprecation, PathTemplate, Segment};

/// How close a sunset must be for `check` to warn.
pub const SUNSET_WARNING_DAYS: i64 = 30;

/// A document's `x-gateway.version`.
#[derive(Debug, Clone)]
pub struct VersionDecl {
    /// The version's name (`name`, or `info.version`).
    pub name: String,
    /// The path prefix that selects it.
    pub prefix: String,
    /// Whether the whole version is deprecated.
    pub deprecated: bool,
    /// Where it is written.
    pub loc: Location,
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` → days since the epoch, for real dates only.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if s.len() != 10 || !(1..=12).contains(&m) || d < 1 {
        return None;
    }
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days_in_month = [
        31,
        if leap { 29 } else { 28 },
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
    let max = *days_in_month.get(usize::try_from(m - 1).ok()?)?;
    (d <= max).then(|| days_from_civil(y, m, d))
}

/// Today, in days since the epoch (UTC). `GATEWAYC_TODAY=YYYY-MM-DD` pins it, so that
/// checks of sunset dates are reproducible in tests.
fn today() -> i64 {
    if let Some(pinned) = std::env::var("GATEWAYC_TODAY")
        .ok()
        .as_deref()
        .and_then(parse_date)
    {
        return pinned;
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    i64::try_from(secs / 86_400).unwrap_or(0)
}

/// Reads a `sunset` member: a date, checked against today.
pub fn read_sunset(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<i64> {
    let loc = obj.loc("sunset");
    let v = obj.raw("sunset")?;
    let Some(day) = v.as_str().and_then(parse_date) else {
        d.push(
            Diagnostic::error(
                "E0701",
                Some(loc),
                format!("`sunset` must be a date, found {v}"),
            )
            .hint("write `sunset: 2027-06-30`"),
        );
        return None;
    };
    if let Some(diag) = sunset_finding(day, today(), v.as_str().unwrap_or_default(), loc) {
        d.push(diag);
    }
    Some(day)
}

/// What `check` says about a sunset on `day` when it is `today`.
fn sunset_finding(day: i64, today: i64, text: &str, loc: Location) -> Option<Diagnostic> {
    let left = day - today;
    if left < 0 {
        Some(
            Diagnostic::error(
                "E0702",
                Some(loc),
                format!("the sunset date {text} has passed"),
            )
            .hint("remove the operation or version, or move the date"),
        )
    } else if left < SUNSET_WARNING_DAYS {
        Some(Diagnostic::warning(
            "W0702",
            Some(loc),
            format!(
                "the sunset date {text} is {left} day{} away",
                if left == 1 { "" } else { "s" }
            ),
        ))
    } else {
        None
    }
}

/// Reads a document's `x-gateway.version`.
pub fn read_version(
    obj: &mut Obj<'_>,
    info_version: Option<&str>,
    d: &mut Diagnostics,
) -> Option<(VersionDecl, Option<i64>)> {
    let loc = obj.loc("version");
    let mut v = obj.object("version", "x-gateway.version", d)?;
    let name = v
        .string("name", d)
        .or_else(|| info_version.map(str::to_owned));
    let prefix_loc = v.loc("prefix");
    let prefix = v.string("prefix", d);
    let deprecated = match v.raw("deprecated") {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            d.push(super::reader::type_error(
                v.loc("deprecated"),
                "deprecated",
                "true or false",
                other,
            ));
            false
        }
    };
    let sunset = read_sunset(&mut v, d);
    v.unsupported(&["header", "media_type", "default"], d);
    v.finish(d);
    let Some(prefix) = prefix else {
        d.push(
            Diagnostic::error(
                "E0703",
                Some(loc),
                "`version` needs a `prefix` that selects it",
            )
            .hint("write `version: { prefix: /v1 }`"),
        );
        return None;
    };
    let valid = prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix[1..].split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        });
    if !valid {
        d.push(
            Diagnostic::error(
                "E0703",
                Some(prefix_loc),
                format!("`{prefix}` is not a path prefix"),
            )
            .hint("one or more literal segments, like `/v1` or `/api/v2`"),
        );
        return None;
    }
    Some((
        VersionDecl {
            name: name.unwrap_or_else(|| prefix[1..].to_owned()),
            prefix,
            deprecated,
            loc,
        },
        sunset,
    ))
}

/// Checks the versions of all spec files together: each prefix once.
pub fn check_versions(decls: &[VersionDecl], d: &mut Diagnostics) {
    for (i, a) in decls.iter().enumerate() {
        if let Some(b) = decls[..i].iter().find(|b| b.prefix == a.prefix) {
            d.push(
                Diagnostic::error(
                    "E0704",
                    Some(a.loc.clone()),
                    format!(
                        "versions `{}` and `{}` both use the prefix `{}`",
                        b.name, a.name, a.prefix
                    ),
                )
                .related(b.loc.clone(), "first used here"),
            );
        }
    }
}

/// Adds a version's prefix to a path template.
pub fn prefix_template(prefix: &str, path: &mut PathTemplate) {
    let extra: Vec<Segment> = prefix[1..]
        .split('/')
        .map(|s| Segment::Literal(s.to_owned()))
        .collect();
    if path.raw == "/" {
        path.raw = prefix.to_owned();
        path.segments = extra;
    } else {
        path.raw = format!("{prefix}{}", path.raw);
        path.segments.splice(0..0, extra);
    }
}

/// An operation's deprecation, from its own `deprecated` and `sunset` and its version's.
pub fn deprecation(
    op_deprecated: bool,
    version_deprecated: bool,
    sunset: Option<i64>,
    link: Option<String>,
) -> Option<Deprecation> {
    (op_deprecated || version_deprecated || sunset.is_some()).then(|| Deprecation {
        deprecated: op_deprecated || version_deprecated,
        sunset: sunset.map(|day| day * 86_400),
        link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_near_sunset_warns_and_a_past_one_fails() {
        let day = parse_date("2027-06-30").unwrap_or_default();
        let loc = || Location::value(0, "");
        let code = |today: &str| {
            sunset_finding(
                day,
                parse_date(today).unwrap_or_default(),
                "2027-06-30",
                loc(),
            )
            .map(|d| d.code)
        };
        assert_eq!(code("2027-01-01"), None);
        assert_eq!(code("2027-06-01"), Some("W0702"));
        assert_eq!(code("2027-06-30"), Some("W0702"));
        assert_eq!(code("2027-07-01"), Some("E0702"));
    }

    #[test]
    fn dates_are_real_calendar_dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2000-03-01"), Some(11_017));
        assert_eq!(
            parse_date("2024-02-29").map(|d| d - parse_date("2024-02-28").unwrap_or(0)),
            Some(1)
        );
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2027-13-01"), None);
        assert_eq!(parse_date("2027-6-30"), None);
        assert_eq!(parse_date("next year"), None);
    }
}
