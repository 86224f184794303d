//! `pattern` and `patternProperties` are ECMA-262 regular expressions; the gateway runs
//! them with the `regex` crate (linear time, no backtracking). This module rewrites the
//! places where the two syntaxes read the same text differently, and checks that the result
//! compiles, so that a pattern the gateway cannot run is reported when the spec is
//! compiled, never at request time.
//!
//! Rewritten: `\d`, `\w`, `\s` and their negations get ECMA-262's meaning (ASCII digits
//! and word characters; ECMA-262's own white-space set), `.` stops at every ECMA-262 line
//! terminator, `\cX` becomes the control character, `\uXXXX` (and a surrogate pair of
//! them) becomes the code point, and `[`, `&`, `~` inside a class are escaped (the regex
//! crate reads them as nested classes and set operations). What the regex crate cannot do
//! at all, look-around and back-references, fails to compile and is reported.

/// ECMA-262 `WhiteSpace` and `LineTerminator`, as the inside of a class.
const SPACE: &str = r"\t\n\x0B\x0C\r \x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}\x{FEFF}";
const DIGIT: &str = "0-9";
const WORD: &str = "0-9A-Za-z_";

/// The pattern in the regex crate's syntax, or why it cannot be run.
pub(crate) fn translate(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut in_class = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' => {
                let Some(&e) = chars.get(i + 1) else {
                    return Err("the pattern ends with a lone `\\`".to_owned());
                };
                i += 2;
                match e {
                    'd' | 'w' | 's' | 'D' | 'W' | 'S' => {
                        let set = match e.to_ascii_lowercase() {
                            'd' => DIGIT,
                            'w' => WORD,
                            _ => SPACE,
                        };
                        let negated = e.is_ascii_uppercase();
                        match (in_class, negated) {
                            (true, false) => out.push_str(set),
                            (_, true) => {
                                out.push_str("[^");
                                out.push_str(set);
                                out.push(']');
                            }
                            (false, false) => {
                                out.push('[');
                                out.push_str(set);
                                out.push(']');
                            }
                        }
                    }
                    'c' => match chars.get(i) {
                        Some(l) if l.is_ascii_alphabetic() => {
                            out.push_str(&format!("\\x{:02X}", (*l as u32) % 32));
                            i += 1;
                        }
                        _ => return Err("`\\c` must be followed by a letter".to_owned()),
                    },
                    'u' if chars.get(i) != Some(&'{') => {
                        let Some(unit) = hex4(&chars, i) else {
                            return Err(
                                "`\\u` must be followed by four hexadecimal digits".to_owned()
                            );
                        };
                        i += 4;
                        let mut code = unit;
                        if (0xD800..0xDC00).contains(&unit)
                            && chars.get(i) == Some(&'\\')
                            && chars.get(i + 1) == Some(&'u')
                            && let Some(low) = hex4(&chars, i + 2)
                            && (0xDC00..0xE000).contains(&low)
                        {
                            code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                            i += 6;
                        }
                        if (0xD800..0xE000).contains(&code) {
                            return Err("a lone UTF-16 surrogate cannot be matched".to_owned());
                        }
                        out.push_str(&format!("\\x{{{code:X}}}"));
                    }
                    '/' => out.push('/'),
                    '-' if !in_class => out.push('-'),
                    other => {
                        out.push('\\');
                        out.push(other);
                    }
                }
                continue;
            }
            '[' if in_class => out.push_str("\\["),
            '&' | '~' if in_class => {
                out.push('\\');
                out.push(c);
            }
            '[' => {
                in_class = true;
                out.push('[');
                // A `]` first in a class is a literal in the regex crate and nothing in
                // ECMA-262 (`[]` matches nothing, `[^]` anything).
                if chars.get(i + 1) == Some(&'^') {
                    out.push('^');
                    i += 1;
                }
                if chars.get(i + 1) == Some(&']') {
                    let negated = out.ends_with('^');
                    out.truncate(out.len() - if negated { 2 } else { 1 });
                    out.push_str(if negated { r"[\s\S]" } else { r"[^\s\S]" });
                    in_class = false;
                    i += 2;
                    continue;
                }
            }
            ']' if in_class => {
                in_class = false;
                out.push(']');
            }
            '.' if !in_class => out.push_str(r"[^\n\r\x{2028}\x{2029}]"),
            c => out.push(c),
        }
        i += 1;
    }
    regex::Regex::new(&out).map_err(|e| match e {
        regex::Error::Syntax(s) => format!(
            "`{pattern}` is not a regular expression the gateway can run (no look-around, no back-references): {}",
            s.lines().last().unwrap_or_default().trim()
        ),
        other => format!("`{pattern}` cannot be compiled: {other}"),
    })?;
    Ok(out)
}

fn hex4(chars: &[char], at: usize) -> Option<u32> {
    let digits: String = chars.get(at..at + 4)?.iter().collect();
    if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(&digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn matches(pattern: &str, text: &str) -> bool {
        let re = regex::Regex::new(&translate(pattern).expect("translates")).expect("compiles");
        re.is_match(text)
    }

    #[test]
    fn perl_classes_are_ascii_as_in_ecma_262() {
        assert!(matches(r"^\d$", "7") && !matches(r"^\d$", "\u{9ea}"));
        assert!(matches(r"^\w$", "_") && !matches(r"^\w$", "é"));
        assert!(matches(r"^\D$", "\u{9ea}") && matches(r"^[\d-]+$", "1-2"));
        assert!(matches(r"^\s$", "\u{feff}") && !matches(r"^\S$", "\u{2003}"));
        assert!(matches(r"^[^\W]$", "a") && !matches(r"^[^\W]$", "!"));
    }

    #[test]
    fn escapes_and_classes() {
        assert!(matches(r"^\cC$", "\u{3}"));
        assert!(matches(r"^\ud83d\udc32$", "🐲"));
        assert!(matches("^[a&&b]$", "&") && matches("^[[]$", "["));
        assert!(!matches("^[]$", "") && matches("^[^]$", "\n"));
        assert!(!matches("^.$", "\u{2028}") && matches(r"^\p{Letter}+$", "héllo"));
    }

    #[test]
    fn what_cannot_run_is_an_error() {
        assert!(translate(r"(?=a)b").is_err());
        assert!(translate(r"(a)\1").is_err());
        assert!(translate("\\").is_err());
        assert!(translate(r"\ud800").is_err());
    }
}
