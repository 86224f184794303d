//! Identifiers for generated code, from names in the spec.
//!
//! One sanitiser serves every identifier, so that whatever a spec calls things (`get-pet`,
//! `3dModels`, `type`), generated code always compiles.

/// Splits a name into lower-case words at non-alphanumerics and case changes.
fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_ascii_alphanumeric() {
            if !cur.is_empty() {
                words.push(std::mem::take(&mut cur));
            }
            continue;
        }
        let prev = i.checked_sub(1).map(|j| chars[j]);
        let next = chars.get(i + 1).copied();
        let boundary = c.is_ascii_uppercase()
            && !cur.is_empty()
            && (prev.is_some_and(|p| p.is_ascii_lowercase() || p.is_ascii_digit())
                || (prev.is_some_and(|p| p.is_ascii_uppercase())
                    && next.is_some_and(|n| n.is_ascii_lowercase())));
        if boundary {
            words.push(std::mem::take(&mut cur));
        }
        cur.push(c.to_ascii_lowercase());
    }
    if !cur.is_empty() {
        words.push(cur);
    }
    words
}

/// `snake_case` identifier that is valid Rust (keywords get a trailing `_`).
pub fn snake(name: &str) -> String {
    let mut s = words(name).join("_");
    if s.is_empty() {
        s.push_str("param");
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert_str(0, "p_");
    }
    fix_keyword(s)
}

/// `PascalCase` identifier that is valid Rust.
pub fn pascal(name: &str) -> String {
    let mut s: String = words(name)
        .iter()
        .map(|w| {
            let mut cs = w.chars();
            match cs.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + cs.as_str(),
                None => String::new(),
            }
        })
        .collect();
    if s.is_empty() {
        s.push_str("Operation");
    }
    if s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, 'N');
    }
    fix_keyword(s)
}

/// A lower-case, dash-separated name (`Swagger Petstore` → `swagger-petstore`).
pub fn kebab(name: &str) -> String {
    words(name).join("-")
}

fn fix_keyword(s: String) -> String {
    if syn::parse_str::<syn::Ident>(&s).is_ok() {
        s
    } else {
        s + "_"
    }
}

/// Makes `candidate` unique among `taken` by appending `_2`, `_3`, ... (or `2`, `3` for
/// PascalCase) and records it.
pub fn unique(
    candidate: String,
    taken: &mut std::collections::HashSet<String>,
    sep: &str,
) -> String {
    if taken.insert(candidate.clone()) {
        return candidate;
    }
    (2..)
        .map(|n| format!("{candidate}{sep}{n}"))
        .find(|c| taken.insert(c.clone()))
        .unwrap_or(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert_eq!(snake("petId"), "pet_id");
        assert_eq!(snake("HTTPServerID"), "http_server_id");
        assert_eq!(snake("type"), "type_");
        assert_eq!(snake("3d"), "p_3d");
        assert_eq!(pascal("get-pet_by.id"), "GetPetById");
        assert_eq!(pascal("self"), "Self_");
        assert_eq!(kebab("Swagger Petstore"), "swagger-petstore");
    }
}
