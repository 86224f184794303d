//! Which media types are JSON.
//!
//! The compiler checks a transform's body edits against the operation's JSON schemas, and
//! the gateway applies them only to bodies whose `Content-Type` is JSON. Both ask
//! [`is_json`], so a body the compiler checked as JSON is one the gateway edits.

/// Whether a media type (a `Content-Type` value or an OpenAPI `content` key) is JSON:
/// `application/json` or any `+json` type (`application/problem+json`), in any case, with
/// parameters (`; charset=utf-8`) ignored.
pub fn is_json(media_type: &str) -> bool {
    let essence = media_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence
            .len()
            .checked_sub(5)
            .and_then(|at| essence.get(at..))
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_application_json_or_a_json_suffix() {
        for (media_type, json) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            (" application/json ;charset=utf-8", true),
            ("application/problem+json", true),
            ("application/vnd.pets.v1+JSON", true),
            ("application/json5", false),
            ("text/json5", false),
            ("text/plain", false),
            ("json", false),
            ("", false),
            ("application/x+jsoné", false),
        ] {
            assert_eq!(is_json(media_type), json, "{media_type}");
        }
    }
}
