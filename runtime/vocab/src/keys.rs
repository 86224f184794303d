//! The API key format and the entries of a consumer key store (`docs/keys.md`).
//!
//! `gatewayc keys` makes keys and writes entries; the gateway checks presented keys against
//! them. The two never link to each other, so the facts they must agree on live here: the
//! key's syntax, the field names of an entry and what each may hold, the Redis key of an
//! entry, and what makes a key revoked. Each side keeps what only it does: the compiler
//! draws the random bytes and writes TOML, the runtime reads TOML and Redis answers.
//!
//! A key is `gwk_`, a 12-character lower-case hex id, `_`, and a secret of 32 random bytes
//! in base64url without padding: 60 characters. A store holds the SHA-256 of the whole key
//! (the 60 characters, as ASCII), written as 64 lower-case hex characters ([`hex`]), never
//! the key; the gateway hashes a presented key the same way and compares the two.

use std::fmt;

/// Every key starts with this, so that secret scanners and people can tell a gatewayc key.
pub const KEY_PREFIX: &str = "gwk_";
/// Random bytes in a key's id.
pub const ID_BYTES: usize = 6;
/// Length of a key's id: lower-case hex characters, two per byte.
pub const ID_LEN: usize = 2 * ID_BYTES;
/// Random bytes in a key's secret.
pub const SECRET_BYTES: usize = 32;
/// Length of a key's secret: base64url without padding, six bits per character.
pub const SECRET_LEN: usize = (SECRET_BYTES * 8).div_ceil(6);
/// Length of every well-formed key: prefix, id, `_`, secret.
pub const KEY_LEN: usize = KEY_PREFIX.len() + ID_LEN + 1 + SECRET_LEN;
/// Length of a stored hash: SHA-256 in lower-case hex.
pub const SHA256_LEN: usize = 64;
/// Longest consumer or plan name.
pub const MAX_NAME: usize = 128;
/// A key's entry in a Redis store is the hash at this prefix followed by its id.
pub const REDIS_PREFIX: &str = "gatewayc:key:";

/// The key with this id and secret (already base64url-encoded): `gwk_<id>_<secret>`.
pub fn key(id: &str, secret: &str) -> String {
    format!("{KEY_PREFIX}{id}_{secret}")
}

/// The id of a well-formed key; `None` for anything else, decided without a look-up.
pub fn key_id(presented: &str) -> Option<&str> {
    if presented.len() != KEY_LEN {
        return None;
    }
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_at_checked(ID_LEN)?;
    let secret = secret.strip_prefix('_')?;
    let base64url = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    (is_id(id) && secret.bytes().all(base64url)).then_some(id)
}

/// The Redis key of the entry of key `id`.
pub fn redis_key(id: &str) -> String {
    format!("{REDIS_PREFIX}{id}")
}

/// Whether `s` is a key id: [`ID_LEN`] lower-case hex characters.
pub fn is_id(s: &str) -> bool {
    is_lower_hex(s, ID_LEN)
}

/// Whether `s` can be a consumer or plan name: 1 to [`MAX_NAME`] visible ASCII characters,
/// so no spaces and no control characters (names travel in headers and logs).
pub fn is_name(s: &str) -> bool {
    (1..=MAX_NAME).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `s` is a stored hash: [`SHA256_LEN`] lower-case hex characters.
pub fn is_sha256(s: &str) -> bool {
    is_lower_hex(s, SHA256_LEN)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Bytes as lower-case hex: how a key's id and an entry's hash are written.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// A stored hash as the 32 bytes of a SHA-256; `None` unless [`is_sha256`].
pub fn decode_sha256(s: &str) -> Option<[u8; 32]> {
    if !is_sha256(s) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => c - b'0',
        _ => c - b'a' + 10,
    };
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.as_bytes().chunks_exact(2)) {
        *byte = (digit(pair[0]) << 4) | digit(pair[1]);
    }
    Some(out)
}

/// The 1-based line and column (in characters) of byte `offset` in a key file's `text`.
///
/// An error in a key file names its place with this and never quotes the line, which may
/// hold a hash.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A field of an entry, the same in both stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    /// `id`: the key's id (public).
    Id,
    /// `sha256`: the SHA-256 of the whole key, lower-case hex.
    Sha256,
    /// `consumer`: whom the key belongs to.
    Consumer,
    /// `plan`, optional: the consumer's plan.
    Plan,
    /// `created`: when the key was made, RFC 3339 in UTC.
    Created,
    /// `revoked`, optional: when the key was revoked; present means revoked.
    Revoked,
}

impl Field {
    /// Every field, in the order `gatewayc keys` writes them.
    pub const ALL: [Field; 6] = [
        Field::Id,
        Field::Sha256,
        Field::Consumer,
        Field::Plan,
        Field::Created,
        Field::Revoked,
    ];

    /// The field's name in a TOML table or a Redis hash.
    pub fn name(self) -> &'static str {
        match self {
            Field::Id => "id",
            Field::Sha256 => "sha256",
            Field::Consumer => "consumer",
            Field::Plan => "plan",
            Field::Created => "created",
            Field::Revoked => "revoked",
        }
    }

    /// The field named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether every entry has this field.
    pub fn required(self) -> bool {
        !matches!(self, Field::Plan | Field::Revoked)
    }

    /// What the field's value must be, completing "`<name>` must be ...".
    pub fn rule(self) -> &'static str {
        match self {
            Field::Id => "12 lower-case hex characters",
            Field::Sha256 => "64 lower-case hex characters",
            Field::Consumer | Field::Plan => "1 to 128 visible ASCII characters (no spaces)",
            Field::Created | Field::Revoked => {
                "an RFC 3339 date-time in UTC, such as \"2026-11-27T10:00:00Z\""
            }
        }
    }
}

/// Whether a key can be used: a status `gatewayc keys list` shows, decided by `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No `revoked` field: the gateway accepts the key.
    Active,
    /// A `revoked` field: the gateway refuses the key.
    Revoked,
}

impl Status {
    /// The status's name: `active` or `revoked`.
    pub fn name(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Revoked => "revoked",
        }
    }
}

/// What is wrong with an entry; never its values, which may hold a hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryError<'a> {
    /// A field this format does not have.
    UnknownField(&'a str),
    /// A required field is absent.
    Missing(Field),
    /// A field's value breaks its [`Field::rule`].
    Malformed(Field),
    /// Another entry of the store has the same id.
    DuplicateId,
}

impl fmt::Display for EntryError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryError::UnknownField(name) => write!(f, "unknown field {name:?}"),
            EntryError::Missing(field) => write!(f, "`{}` is missing", field.name()),
            EntryError::Malformed(field) => {
                write!(f, "`{}` must be {}", field.name(), field.rule())
            }
            EntryError::DuplicateId => f.write_str("another key has the same id"),
        }
    }
}

/// The fields of one entry, borrowed from wherever they were read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields<'a> {
    /// `id`.
    pub id: &'a str,
    /// `sha256`.
    pub sha256: &'a str,
    /// `consumer`.
    pub consumer: &'a str,
    /// `plan`, when the entry has one.
    pub plan: Option<&'a str>,
    /// `created`.
    pub created: &'a str,
    /// `revoked`, when the key is revoked.
    pub revoked: Option<&'a str>,
}

impl<'a> Fields<'a> {
    /// An entry from its (name, value) pairs, checked: the first error in field order
    /// after any unknown field. A field given twice keeps its last value.
    pub fn parse(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Fields<'a>, EntryError<'a>> {
        let mut values: [Option<&'a str>; 6] = [None; 6];
        for (name, value) in pairs {
            let field = Field::from_name(name).ok_or(EntryError::UnknownField(name))?;
            values[field as usize] = Some(value);
        }
        for field in Field::ALL {
            if field.required() && values[field as usize].is_none() {
                return Err(EntryError::Missing(field));
            }
            // Checked in field order, so that a missing `created` comes after a bad `plan`.
            if let Some(value) = values[field as usize]
                && !Fields::fits(field, value)
            {
                return Err(EntryError::Malformed(field));
            }
        }
        let [id, sha256, consumer, plan, created, revoked] = values;
        let required = |v: Option<&'a str>, field| v.ok_or(EntryError::Missing(field));
        Ok(Fields {
            id: required(id, Field::Id)?,
            sha256: required(sha256, Field::Sha256)?,
            consumer: required(consumer, Field::Consumer)?,
            plan,
            created: required(created, Field::Created)?,
            revoked,
        })
    }

    /// Checks the values of an entry read some other way (a TOML table read with serde):
    /// the first field, in field order, that breaks its rule.
    pub fn check(&self) -> Result<(), EntryError<'static>> {
        match self
            .pairs()
            .find(|(field, value)| !Fields::fits(*field, value))
        {
            Some((field, _)) => Err(EntryError::Malformed(field)),
            None => Ok(()),
        }
    }

    /// The fields present, in the order `gatewayc keys` writes them.
    pub fn pairs(&self) -> impl Iterator<Item = (Field, &'a str)> + use<'a> {
        let values = [
            Some(self.id),
            Some(self.sha256),
            Some(self.consumer),
            self.plan,
            Some(self.created),
            self.revoked,
        ];
        Field::ALL
            .into_iter()
            .zip(values)
            .filter_map(|(field, value)| Some((field, value?)))
    }

    /// Whether the key is active or revoked.
    pub fn status(&self) -> Status {
        match self.revoked {
            None => Status::Active,
            Some(_) => Status::Revoked,
        }
    }

    /// Whether `value` keeps `field`'s rule. Times are not checked beyond being there: the
    /// gateway only asks whether `revoked` is present.
    fn fits(field: Field, value: &str) -> bool {
        match field {
            Field::Id => is_id(value),
            Field::Sha256 => is_sha256(value),
            Field::Consumer | Field::Plan => is_name(value),
            Field::Created | Field::Revoked => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sample key file both crates' tests read (docs/keys.md).
    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../specs/keys/sample-keys.toml"
    );

    /// The plaintext of a sample key, from the sample file's `# test key NAME: KEY` comments.
    fn sample_key(name: &str) -> String {
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        let prefix = format!("# test key {name}: ");
        let key = text.lines().find_map(|l| l.strip_prefix(&prefix));
        key.unwrap_or_else(|| panic!("no test key {name} in the sample"))
            .to_owned()
    }

    #[test]
    fn sample_keys_have_the_documented_shape() {
        assert_eq!((ID_LEN, SECRET_LEN, KEY_LEN), (12, 43, 60));
        for (name, id) in [
            ("alice", "3cad7a63124f"),
            ("bob", "d618b8c22667"),
            ("carol", "6416182bef03"),
        ] {
            let key = sample_key(name);
            assert_eq!(key_id(&key), Some(id), "{name}");
            assert_eq!(super::key(id, &key[KEY_LEN - SECRET_LEN..]), key);
        }
        assert_eq!(redis_key("3cad7a63124f"), "gatewayc:key:3cad7a63124f");
    }

    #[test]
    fn malformed_keys_are_refused_before_any_lookup() {
        let alice = sample_key("alice");
        let secret = &alice[17..];
        let malformed = [
            String::new(),
            "gwk_".to_owned(),
            alice[..59].to_owned(),
            format!("{alice}A"),
            "x".repeat(100_000),
            alice.replace("gwk_", "gwx_"),
            alice.to_uppercase(),
            format!("gwk_3cad7a63124F_{secret}"),
            format!("gwk_3cad7a63124g_{secret}"),
            format!("gwk_3cad7a63124f-{secret}"),
            format!("gwk_3cad7a63124f_{}+", &secret[..42]),
            format!("gwk_3cad7a63124f_{}=", &secret[..42]),
            // Same byte length, but with a multi-byte character across the id's end.
            format!("gwk_3cad7a63124é{}", &secret[..42]),
            format!("gwk_3cad7a63124f_{}\n", &secret[..42]),
        ];
        for key in malformed {
            assert_eq!(key_id(&key), None, "{key:?}");
        }
    }

    #[test]
    fn names_are_visible_ascii() {
        for good in ["alice", "team-42", "a.b@c", &"x".repeat(128)] {
            assert!(is_name(good), "{good:?}");
        }
        for bad in [
            "",
            "al ice",
            "tab\there",
            "new\nline",
            "bell\u{7}",
            "José",
            &"x".repeat(129),
        ] {
            assert!(!is_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn hashes_are_lower_case_hex_both_ways() {
        let hash = "bdd2f1dd3ae97b04de7de225370beb213c867fa62e0dcc385ec22422b0f6588e";
        let bytes = decode_sha256(hash).unwrap();
        assert_eq!(hex(&bytes), hash);
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(decode_sha256(&hash.to_uppercase()), None);
        assert_eq!(decode_sha256(&hash[1..]), None);
        assert_eq!(decode_sha256(&format!("{}g", &hash[1..])), None);
    }

    const HASH: &str = "bdd2f1dd3ae97b04de7de225370beb213c867fa62e0dcc385ec22422b0f6588e";

    fn alice() -> Vec<(&'static str, &'static str)> {
        vec![
            ("id", "3cad7a63124f"),
            ("sha256", HASH),
            ("consumer", "alice"),
            ("plan", "gold"),
            ("created", "2026-11-27T10:00:00Z"),
        ]
    }

    #[test]
    fn entries_are_read_from_their_fields_and_checked_in_field_order() {
        let fields = Fields::parse(alice()).unwrap();
        assert_eq!(fields.plan, Some("gold"));
        assert_eq!(fields.status(), Status::Active);
        assert_eq!(fields.check(), Ok(()));
        let written: Vec<_> = fields.pairs().map(|(f, v)| (f.name(), v)).collect();
        assert_eq!(written, alice());

        let with = |name: &'static str, value: Option<&'static str>| {
            let mut pairs: Vec<_> = alice().into_iter().filter(|(n, _)| *n != name).collect();
            if let Some(value) = value {
                pairs.push((name, value));
            }
            Fields::parse(pairs).map_err(|e| e.to_string())
        };
        let revoked = with("revoked", Some("2026-11-28T09:00:00Z")).unwrap();
        assert_eq!(revoked.status(), Status::Revoked);
        assert_eq!(revoked.status().name(), "revoked");
        assert_eq!(with("plan", None).unwrap().plan, None);
        let cases = [
            (with("colour", Some("blue")), "unknown field \"colour\""),
            (with("id", None), "`id` is missing"),
            (
                with("id", Some("3CAD7A63124F")),
                "`id` must be 12 lower-case hex characters",
            ),
            (
                with("sha256", Some(&HASH[1..])),
                "`sha256` must be 64 lower-case hex characters",
            ),
            (with("consumer", None), "`consumer` is missing"),
            (
                with("consumer", Some("c d")),
                "`consumer` must be 1 to 128 visible ASCII characters (no spaces)",
            ),
            (
                with("plan", Some("")),
                "`plan` must be 1 to 128 visible ASCII characters (no spaces)",
            ),
            (with("created", None), "`created` is missing"),
        ];
        for (got, expected) in cases {
            assert_eq!(got.map(|_| ()), Err(expected.to_owned()));
        }
        let bad_plan = Fields {
            plan: Some("g old"),
            ..fields
        };
        assert_eq!(bad_plan.check(), Err(EntryError::Malformed(Field::Plan)));
    }

    #[test]
    fn places_in_a_key_file_count_lines_and_characters_from_one() {
        let text = "a = 1\nsha256 = \"é\"x\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // After `sha256 = "é"`: the `é` is two bytes but one character.
        assert_eq!(line_column(text, 19), (2, 13));
        assert_eq!(line_column(text, text.len()), (3, 1));
        // An offset inside a character, or past the end, counts the whole text.
        assert_eq!(line_column(text, 17), (3, 1));
        assert_eq!(line_column(text, 99), (3, 1));
    }

    #[test]
    fn field_names_and_rules_match_the_constants() {
        for field in Field::ALL {
            assert_eq!(Field::from_name(field.name()), Some(field));
        }
        assert_eq!(Field::from_name("sha-256"), None);
        assert!(Field::Id.rule().starts_with(&ID_LEN.to_string()));
        assert!(Field::Sha256.rule().starts_with(&SHA256_LEN.to_string()));
        assert!(Field::Consumer.rule().contains(&MAX_NAME.to_string()));
    }
}
