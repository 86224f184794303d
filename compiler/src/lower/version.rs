//! Versioning and deprecation: `x-gateway.version` on a document (one spec file per
//! version), OpenAPI's `deprecated: true`, and `x-gateway.sunset` dates.
//!
//! A version is chosen by a path prefix (`prefix: /v1`), by a request header
//! (`header: Api-Version`, `value: "1"`) or by a media type the client accepts
//! (`media_type: application/vnd.pets.v1+json`); all files of a gateway choose the same way.
//! A prefix is added to every path template of its file for routing and is not sent
//! upstream (an explicit `x-gateway.path` says otherwise). With a header or a media type,
//! the same template may exist in several versions, and exactly one version is the
//! `default` for requests that name none. `gatewayc check` warns when a sunset is less
//! than [`SUNSET_WARNING_DAYS`] days away and fails once it has passed.

use gatewayc_vocab::calendar;
use serde_json::Value;

use super::header;
use super::reader::Obj;
use crate::diagnostic::{Diagnostic, Diagnostics, Location};
use crate::model::{Deprecation, PathTemplate, Segment, Version, VersionSelector};

/// How close a sunset must be for `check` to warn.
pub const SUNSET_WARNING_DAYS: i64 = 30;

/// A document's `x-gateway.version`.
#[derive(Debug, Clone)]
pub struct VersionDecl {
    /// The version's name (`name`, or `info.version`).
    pub name: String,
    /// What selects it.
    pub selector: VersionSelector,
    /// Whether requests that name no version get it (header and media type only).
    pub default: bool,
    /// Its index among the gateway's versions, set once all files are read.
    pub index: usize,
    /// Whether the whole version is deprecated.
    pub deprecated: bool,
    /// Where it is written.
    pub loc: Location,
}

/// `YYYY-MM-DD` → days since the epoch, for real dates only.
pub fn parse_date(s: &str) -> Option<i64> {
    let mut parts = s.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: u32 = parts.next()?.parse().ok()?;
    let d: u32 = parts.next()?.parse().ok()?;
    // `days_in_month` is 0 for a month that does not exist.
    let real = s.len() == 10 && (1..=calendar::days_in_month(y, m)).contains(&d);
    real.then(|| calendar::days_from_civil(y, m, d))
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
    // `Sunset` means the start of that day (00:00 GMT): on the day itself it has passed.
    if left <= 0 {
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
    let header = v.string("header", d);
    let value = v.string("value", d);
    let media_type = v.string("media_type", d);
    let mut flag = |key: &'static str, d: &mut Diagnostics| match v.raw(key) {
        None => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            d.push(super::reader::type_error(
                v.loc(key),
                key,
                "true or false",
                other,
            ));
            false
        }
    };
    let deprecated = flag("deprecated", d);
    let default = flag("default", d);
    let sunset = read_sunset(&mut v, d);
    v.finish(d);
    let name = name.or_else(|| {
        prefix
            .as_ref()
            .map(|p| p.trim_start_matches('/').to_owned())
    });
    let selector = match (prefix, header, media_type) {
        (Some(prefix), None, None) => {
            if !valid_prefix(&prefix) {
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
            VersionSelector::Prefix(prefix)
        }
        (None, Some(header), None) => {
            let value = value.or_else(|| name.clone()).unwrap_or_default();
            if !header::is_token(&header) || !header::is_token(&value) {
                d.push(Diagnostic::error(
                    "E0703",
                    Some(loc),
                    format!("`{header}: {value}` is not a header name with a plain token value"),
                ));
                return None;
            }
            VersionSelector::Header {
                name: header.to_ascii_lowercase(),
                value,
            }
        }
        (None, None, Some(media)) => {
            let valid = media
                .split_once('/')
                .is_some_and(|(t, s)| header::is_token(t) && header::is_token(s));
            if !valid {
                d.push(Diagnostic::error(
                    "E0703",
                    Some(loc),
                    format!("`{media}` is not a media type like `application/vnd.pets.v2+json`"),
                ));
                return None;
            }
            VersionSelector::MediaType(media.to_ascii_lowercase())
        }
        (None, None, None) => {
            d.push(
                Diagnostic::error(
                    "E0703",
                    Some(loc),
                    "`version` needs a `prefix`, a `header` or a `media_type` that selects it",
                )
                .hint("write `version: { prefix: /v1 }`"),
            );
            return None;
        }
        _ => {
            d.push(Diagnostic::error(
                "E0703",
                Some(loc),
                "a version is chosen by one of `prefix`, `header` or `media_type`, not several",
            ));
            return None;
        }
    };
    Some((
        VersionDecl {
            name: name.unwrap_or_default(),
            selector,
            default,
            index: 0,
            deprecated,
            loc,
        },
        sunset,
    ))
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.starts_with('/')
        && prefix.len() > 1
        && !prefix.ends_with('/')
        && prefix[1..].split('/').all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
        })
}

/// Checks the versions of all spec files together: one way of choosing, each selector
/// once, and one default when a header or media type chooses. Returns the versions a
/// header or media type chooses (the model's `versions`), empty for prefixes.
pub fn check_versions(decls: &[VersionDecl], d: &mut Diagnostics) -> Vec<Version> {
    let Some(first) = decls.first() else {
        return Vec::new();
    };
    let kind = |s: &VersionSelector| match s {
        VersionSelector::Prefix(_) => "a path prefix",
        VersionSelector::Header { .. } => "a header",
        VersionSelector::MediaType(_) => "a media type",
    };
    let mut ok = true;
    for (i, a) in decls.iter().enumerate() {
        if kind(&a.selector) != kind(&first.selector) {
            ok = false;
            d.push(
                Diagnostic::error(
                    "E0705",
                    Some(a.loc.clone()),
                    format!(
                        "version `{}` is chosen by {}, but version `{}` by {}; all versions of a gateway are chosen the same way",
                        a.name,
                        kind(&a.selector),
                        first.name,
                        kind(&first.selector)
                    ),
                )
                .related(first.loc.clone(), "the first version"),
            );
            continue;
        }
        if let VersionSelector::Header { name, .. } = &a.selector
            && let VersionSelector::Header {
                name: first_name, ..
            } = &first.selector
            && name != first_name
        {
            ok = false;
            d.push(
                Diagnostic::error(
                    "E0705",
                    Some(a.loc.clone()),
                    format!("versions are chosen by `{first_name}`, not `{name}`"),
                )
                .related(first.loc.clone(), "the first version"),
            );
        }
        if let Some(b) = decls[..i].iter().find(|b| b.selector == a.selector) {
            ok = false;
            d.push(
                Diagnostic::error(
                    "E0704",
                    Some(a.loc.clone()),
                    format!(
                        "versions `{}` and `{}` are chosen the same way",
                        b.name, a.name
                    ),
                )
                .related(b.loc.clone(), "first used here"),
            );
        }
    }
    if matches!(first.selector, VersionSelector::Prefix(_)) {
        for a in decls.iter().filter(|a| a.default) {
            d.push(Diagnostic::error(
                "E0706",
                Some(a.loc.clone()),
                "`default` applies to versions chosen by a header or a media type; a prefix always names its version",
            ));
        }
        return Vec::new();
    }
    let defaults: Vec<&VersionDecl> = decls.iter().filter(|a| a.default).collect();
    match defaults.as_slice() {
        [_] => {}
        [] => {
            ok = false;
            d.push(
                Diagnostic::error(
                    "E0706",
                    Some(first.loc.clone()),
                    "no version is the `default` for requests that name none",
                )
                .hint("add `default: true` to one version"),
            );
        }
        [a, b, ..] => {
            ok = false;
            d.push(
                Diagnostic::error(
                    "E0706",
                    Some(b.loc.clone()),
                    format!(
                        "versions `{}` and `{}` are both the `default`",
                        a.name, b.name
                    ),
                )
                .related(a.loc.clone(), "the other default"),
            );
        }
    }
    if !ok {
        return Vec::new();
    }
    decls
        .iter()
        .map(|a| Version {
            name: a.name.clone(),
            selector: a.selector.clone(),
            default: a.default,
        })
        .collect()
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
    since: Option<i64>,
    sunset: Option<i64>,
    link: Option<String>,
) -> Option<Deprecation> {
    let deprecated = op_deprecated || version_deprecated || since.is_some();
    (deprecated || sunset.is_some()).then(|| Deprecation {
        deprecated,
        since: since.map(|day| day * 86_400),
        sunset: sunset.map(|day| day * 86_400),
        link,
    })
}

/// Reads a `deprecation` member: the date the operation is (or will be) deprecated, sent
/// as RFC 9745's `Deprecation: @<seconds>`; it makes the operation deprecated.
pub fn read_deprecation_date(obj: &mut Obj<'_>, d: &mut Diagnostics) -> Option<i64> {
    let loc = obj.loc("deprecation");
    let v = obj.raw("deprecation")?;
    let day = v.as_str().and_then(parse_date);
    if day.is_none() {
        d.push(
            Diagnostic::error(
                "E0701",
                Some(loc),
                format!("`deprecation` must be a date, found {v}"),
            )
            .hint("write `deprecation: 2026-06-30`"),
        );
    }
    day
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
        assert_eq!(code("2027-06-29"), Some("W0702"));
        assert_eq!(code("2027-06-30"), Some("E0702"));
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
