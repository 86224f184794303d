//! `gatewayc keys`: makes, lists and revokes API keys in a consumer key store, a TOML file
//! or Redis.
//!
//! The gateway reads what this module writes (`gatewayc_runtime::keys`), but the two crates
//! never link to each other, so the format is written down once, in `docs/keys.md`, and the
//! tests of both read `specs/keys/sample-keys.toml`. A key is returned once, by [`create`],
//! and stored only as its SHA-256; nothing here prints or returns a hash in an error.
//!
//! Like `cli`, and unlike the compilation pipeline, this module writes files: the key file.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

/// Every key starts with this.
pub const KEY_PREFIX: &str = "gwk_";
/// Length of a key's id, in lower-case hex characters (6 random bytes).
pub const ID_LEN: usize = 12;
/// Longest consumer or plan name.
pub const MAX_NAME: usize = 128;
/// A key's entry in a Redis store is the hash at this prefix followed by its id.
pub const REDIS_PREFIX: &str = "gatewayc:key:";
/// The key file used when no store is named.
pub const DEFAULT_FILE: &str = "keys.toml";
/// The first line of every key file.
const HEADER: &str = "# Managed by `gatewayc keys`: SHA-256 hashes only; each key was shown \
                      once, when it was made.";
/// How long a Redis connection or command may take.
const REDIS_TIMEOUT: Duration = Duration::from_secs(5);

/// Where keys are kept.
#[derive(Clone)]
pub enum Store {
    /// A TOML file of `[[key]]` tables.
    File(PathBuf),
    /// A Redis server, by URL (`redis://[user:password@]host[:port][/db]`).
    Redis(String),
}

impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::File(path) => write!(f, "{}", path.display()),
            // The URL may hold a password.
            Store::Redis(_) => f.write_str("the Redis store"),
        }
    }
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Store::File(path) => f.debug_tuple("File").field(path).finish(),
            Store::Redis(_) => f.debug_tuple("Redis").field(&"..").finish(),
        }
    }
}

/// One key's entry, as stored: its hash, never the key (field order as written).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// The key's public id.
    pub id: String,
    /// SHA-256 of the whole key, lower-case hex.
    pub sha256: String,
    /// Whom the key belongs to.
    pub consumer: String,
    /// The consumer's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// When the key was made (RFC 3339, UTC).
    #[serde(deserialize_with = "timestamp")]
    pub created: String,
    /// When the key was revoked; `None` while it is active.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "optional_timestamp"
    )]
    pub revoked: Option<String>,
}

/// A key just made: the key itself, to be shown once, and its stored entry.
pub struct NewKey {
    /// The whole key, `gwk_<id>_<secret>`.
    pub key: String,
    /// What the store holds for it.
    pub entry: Entry,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("key", &"<shown once>")
            .field("entry", &self.entry)
            .finish()
    }
}

/// The outcome of [`revoke`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The entry as it now is (`revoked` set).
    pub entry: Entry,
    /// Whether the key was revoked before; its first revocation time is kept.
    pub already: bool,
}

/// What can go wrong; no variant holds a key or a hash.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    /// A consumer or plan name breaks the naming rule.
    #[error(
        "{what} {value:?} is not a valid name: use 1 to {MAX_NAME} visible ASCII characters, \
         without spaces"
    )]
    InvalidName {
        /// `consumer` or `plan`.
        what: &'static str,
        /// The name given.
        value: String,
    },
    /// `revoke` was given an id that the store does not hold.
    #[error("no key with id {id} in {store}")]
    UnknownId {
        /// The id given.
        id: String,
        /// Where it was looked for.
        store: String,
    },
    /// `revoke` was given something that is not a key id.
    #[error(
        "not a key id: ids are {ID_LEN} lower-case hex characters, as `gatewayc keys list` shows"
    )]
    NotAnId,
    /// The key file could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The key file.
        path: PathBuf,
        /// Why (the error's source).
        source: std::io::Error,
    },
    /// The key file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file being written.
        path: PathBuf,
        /// Why (the error's source).
        source: std::io::Error,
    },
    /// A stored entry breaks the format (docs/keys.md).
    #[error("{at}: {message}")]
    Invalid {
        /// The file and line, or the Redis key.
        at: String,
        /// What is wrong, without the value.
        message: String,
    },
    /// Redis could not be reached or refused a command.
    #[error("Redis: {0}")]
    Redis(String),
    /// The operating system's random number generator failed.
    #[error("cannot get random bytes from the operating system: {0}")]
    Random(String),
}

impl From<redis::RedisError> for KeysError {
    fn from(e: redis::RedisError) -> Self {
        KeysError::Redis(e.to_string())
    }
}

/// Makes a key for `consumer` (with `plan`) and stores its entry; the key is in the result
/// and nowhere else. A key file is created when missing and keeps every other entry.
pub fn create(store: &Store, consumer: &str, plan: Option<&str>) -> Result<NewKey, KeysError> {
    check_name("consumer", consumer)?;
    if let Some(plan) = plan {
        check_name("plan", plan)?;
    }
    let created = rfc3339(now());
    match store {
        Store::File(path) => {
            let _lock = lock(path)?;
            let mut entries = match fs::read_to_string(path) {
                Ok(text) => parse_file(path, &text)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(source) => return Err(read_error(path, source)),
            };
            let new = loop {
                let new = generate(consumer, plan, &created)?;
                if !entries.iter().any(|e| e.id == new.entry.id) {
                    break new;
                }
            };
            entries.push(new.entry.clone());
            write_file(path, &entries)?;
            Ok(new)
        }
        Store::Redis(url) => {
            let mut conn = connect(url)?;
            let new = loop {
                let new = generate(consumer, plan, &created)?;
                let exists: bool = redis::cmd("EXISTS")
                    .arg(redis_key(&new.entry.id))
                    .query(&mut conn)?;
                if !exists {
                    break new;
                }
            };
            let mut hset = redis::cmd("HSET");
            hset.arg(redis_key(&new.entry.id));
            for (field, value) in fields(&new.entry) {
                hset.arg(field).arg(value);
            }
            hset.exec(&mut conn)?;
            Ok(new)
        }
    }
}

/// Every entry: in file order for a file, by creation time then id for Redis.
pub fn list(store: &Store) -> Result<Vec<Entry>, KeysError> {
    match store {
        Store::File(path) => {
            let text = fs::read_to_string(path).map_err(|e| read_error(path, e))?;
            parse_file(path, &text)
        }
        Store::Redis(url) => {
            let mut conn = connect(url)?;
            let mut names: Vec<String> = Vec::new();
            let mut cursor = 0u64;
            loop {
                let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{REDIS_PREFIX}*"))
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut conn)?;
                names.extend(batch);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
            names.sort();
            names.dedup();
            let mut entries = Vec::with_capacity(names.len());
            for name in names {
                if let Some(entry) = redis_entry(&mut conn, &name)? {
                    entries.push(entry);
                }
            }
            entries.sort_by(|a, b| (&a.created, &a.id).cmp(&(&b.created, &b.id)));
            Ok(entries)
        }
    }
}

/// Revokes the key with this id. Revoking a revoked key succeeds and keeps the first
/// revocation time; an id the store does not hold is [`KeysError::UnknownId`].
pub fn revoke(store: &Store, id: &str) -> Result<Revocation, KeysError> {
    if !is_id(id) {
        return Err(KeysError::NotAnId);
    }
    let unknown = || KeysError::UnknownId {
        id: id.to_owned(),
        store: store.to_string(),
    };
    match store {
        Store::File(path) => {
            let _lock = lock(path)?;
            let text = fs::read_to_string(path).map_err(|e| read_error(path, e))?;
            let mut entries = parse_file(path, &text)?;
            let entry = entries
                .iter_mut()
                .find(|e| e.id == id)
                .ok_or_else(unknown)?;
            if entry.revoked.is_some() {
                return Ok(Revocation {
                    entry: entry.clone(),
                    already: true,
                });
            }
            entry.revoked = Some(rfc3339(now()));
            let entry = entry.clone();
            write_file(path, &entries)?;
            Ok(Revocation {
                entry,
                already: false,
            })
        }
        Store::Redis(url) => {
            let mut conn = connect(url)?;
            let mut entry = redis_entry(&mut conn, &redis_key(id))?.ok_or_else(unknown)?;
            if entry.revoked.is_some() {
                return Ok(Revocation {
                    entry,
                    already: true,
                });
            }
            let revoked = rfc3339(now());
            redis::cmd("HSET")
                .arg(redis_key(id))
                .arg("revoked")
                .arg(&revoked)
                .exec(&mut conn)?;
            entry.revoked = Some(revoked);
            Ok(Revocation {
                entry,
                already: false,
            })
        }
    }
}

/// The table `gatewayc keys list` prints: id, consumer, plan, created, status.
pub fn render_list(entries: &[Entry]) -> String {
    let mut rows = vec![["ID", "CONSUMER", "PLAN", "CREATED", "STATUS"].map(str::to_owned)];
    for e in entries {
        rows.push([
            e.id.clone(),
            e.consumer.clone(),
            e.plan.clone().unwrap_or_else(|| "-".to_owned()),
            e.created.clone(),
            match &e.revoked {
                None => "active".to_owned(),
                Some(at) => format!("revoked {at}"),
            },
        ]);
    }
    let mut widths = [0usize; 5];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// A new random key and its entry. The id is 6 bytes and the secret 32 bytes from the
/// operating system's random number generator.
fn generate(consumer: &str, plan: Option<&str>, created: &str) -> Result<NewKey, KeysError> {
    let mut id = [0u8; ID_LEN / 2];
    let mut secret = [0u8; 32];
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| KeysError::Random(e.to_string()))?;
    let id = hex(&id);
    let key = format!("{KEY_PREFIX}{id}_{}", URL_SAFE_NO_PAD.encode(secret));
    let entry = Entry {
        sha256: sha256_hex(&key),
        id,
        consumer: consumer.to_owned(),
        plan: plan.map(str::to_owned),
        created: created.to_owned(),
        revoked: None,
    };
    Ok(NewKey { key, entry })
}

/// SHA-256 of a whole key, as stored.
pub fn sha256_hex(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn check_name(what: &'static str, value: &str) -> Result<(), KeysError> {
    if is_name(value) {
        Ok(())
    } else {
        Err(KeysError::InvalidName {
            what,
            value: value.to_owned(),
        })
    }
}

/// Consumer and plan names: 1 to 128 visible ASCII characters (they travel in headers).
fn is_name(s: &str) -> bool {
    (1..=MAX_NAME).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_id(s: &str) -> bool {
    is_hex(s, ID_LEN)
}

/// What is wrong with an entry's values, if anything (never quoting them).
fn entry_problem(e: &Entry) -> Option<String> {
    if !is_id(&e.id) {
        Some(format!("`id` must be {ID_LEN} lower-case hex characters"))
    } else if !is_hex(&e.sha256, 64) {
        Some("`sha256` must be 64 lower-case hex characters".to_owned())
    } else if !is_name(&e.consumer) {
        Some(format!(
            "`consumer` must be 1 to {MAX_NAME} visible ASCII characters (no spaces)"
        ))
    } else if e.plan.as_deref().is_some_and(|p| !is_name(p)) {
        Some(format!(
            "`plan` must be 1 to {MAX_NAME} visible ASCII characters (no spaces)"
        ))
    } else {
        None
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    key: Vec<Entry>,
}

#[derive(Serialize)]
struct KeyFileOut<'a> {
    key: &'a [Entry],
}

/// A key file's entries, checked; errors give the line without quoting it.
fn parse_file(path: &Path, text: &str) -> Result<Vec<Entry>, KeysError> {
    let file: KeyFile = toml::from_str(text).map_err(|e| {
        let at = match e.span() {
            Some(span) => {
                let (line, column) = position(text, span.start);
                format!("{}:{line}:{column}", path.display())
            }
            None => path.display().to_string(),
        };
        // `Display` would quote the line, which may hold a hash.
        KeysError::Invalid {
            at,
            message: e.message().trim_end().to_owned(),
        }
    })?;
    for (n, entry) in file.key.iter().enumerate() {
        let problem = entry_problem(entry).or_else(|| {
            file.key[..n]
                .iter()
                .any(|other| other.id == entry.id)
                .then(|| "another key has the same id".to_owned())
        });
        if let Some(message) = problem {
            let id = if is_id(&entry.id) {
                format!(" (id {})", entry.id)
            } else {
                String::new()
            };
            return Err(KeysError::Invalid {
                at: format!("{}: key {}{id}", path.display(), n + 1),
                message,
            });
        }
    }
    Ok(file.key)
}

/// 1-based line and column (in characters) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn render_file(entries: &[Entry]) -> Result<String, KeysError> {
    let body = toml::to_string(&KeyFileOut { key: entries }).map_err(|e| KeysError::Invalid {
        at: "key file".to_owned(),
        message: e.to_string(),
    })?;
    Ok(format!("{HEADER}\n\n{body}"))
}

/// Replaces `path` with `entries`: a temporary file in the same directory, flushed to disk,
/// then renamed over it, so that a reader (the gateway, on SIGHUP) sees the old file or the
/// new one, never a part. The old file's permissions are kept.
fn write_file(path: &Path, entries: &[Entry]) -> Result<(), KeysError> {
    let text = render_file(entries)?;
    let dir = parent(path);
    let name = path
        .file_name()
        .map_or_else(|| DEFAULT_FILE.into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(source) = written {
        let _ = fs::remove_file(&tmp);
        return Err(KeysError::Write {
            path: path.to_owned(),
            source,
        });
    }
    // Make the rename itself durable; not every platform can open a directory.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Holds `<file>.lock` exclusively until dropped, so that two `gatewayc keys` runs on one
/// file cannot lose each other's changes.
fn lock(path: &Path) -> Result<File, KeysError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let write_error = |source| KeysError::Write {
        path: lock_path.clone(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(write_error)?;
    file.lock().map_err(write_error)?;
    Ok(file)
}

fn read_error(path: &Path, source: std::io::Error) -> KeysError {
    KeysError::Read {
        path: path.to_owned(),
        source,
    }
}

fn connect(url: &str) -> Result<redis::Connection, KeysError> {
    let client = redis::Client::open(url)
        .map_err(|e| KeysError::Redis(format!("the URL is not valid: {e}")))?;
    let conn = client
        .get_connection_with_timeout(REDIS_TIMEOUT)
        .map_err(|e| KeysError::Redis(format!("cannot connect: {e}")))?;
    conn.set_read_timeout(Some(REDIS_TIMEOUT))?;
    conn.set_write_timeout(Some(REDIS_TIMEOUT))?;
    Ok(conn)
}

fn redis_key(id: &str) -> String {
    format!("{REDIS_PREFIX}{id}")
}

/// An entry's fields as stored in Redis (absent optional fields left out).
fn fields(e: &Entry) -> Vec<(&'static str, &str)> {
    let mut out = vec![
        ("id", e.id.as_str()),
        ("sha256", e.sha256.as_str()),
        ("consumer", e.consumer.as_str()),
    ];
    if let Some(plan) = &e.plan {
        out.push(("plan", plan));
    }
    out.push(("created", &e.created));
    if let Some(revoked) = &e.revoked {
        out.push(("revoked", revoked));
    }
    out
}

/// The entry at a Redis key, `None` when there is none; errors name the Redis key.
fn redis_entry(conn: &mut redis::Connection, name: &str) -> Result<Option<Entry>, KeysError> {
    let map: std::collections::BTreeMap<String, String> =
        redis::cmd("HGETALL").arg(name).query(conn)?;
    if map.is_empty() {
        return Ok(None);
    }
    let invalid = |message: String| KeysError::Invalid {
        at: name.to_owned(),
        message,
    };
    let mut entry = Entry {
        id: String::new(),
        sha256: String::new(),
        consumer: String::new(),
        plan: None,
        created: String::new(),
        revoked: None,
    };
    let mut seen = Vec::new();
    for (field, value) in map {
        let slot = match field.as_str() {
            "id" => &mut entry.id,
            "sha256" => &mut entry.sha256,
            "consumer" => &mut entry.consumer,
            "created" => &mut entry.created,
            "plan" => entry.plan.insert(String::new()),
            "revoked" => entry.revoked.insert(String::new()),
            _ => return Err(invalid(format!("unknown field {field:?}"))),
        };
        *slot = value;
        seen.push(field);
    }
    for required in ["id", "sha256", "consumer", "created"] {
        if !seen.iter().any(|f| f == required) {
            return Err(invalid(format!("`{required}` is missing")));
        }
    }
    if let Some(message) = entry_problem(&entry) {
        return Err(invalid(message));
    }
    if redis_key(&entry.id) != name {
        return Err(invalid("`id` is not the id in the key's name".to_owned()));
    }
    Ok(Some(entry))
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match toml::Value::deserialize(d)? {
        toml::Value::String(s) => Ok(s),
        toml::Value::Datetime(t) => Ok(t.to_string()),
        _ => Err(serde::de::Error::custom(
            "expected an RFC 3339 date-time such as \"2026-11-27T10:00:00Z\"",
        )),
    }
}

fn optional_timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    timestamp(d).map(Some)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Seconds since 1970 as RFC 3339 in UTC (`2026-11-27T10:00:00Z`).
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (hour, minute, second) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let (year, month, day) = crate::calendar::civil_from_days(days);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::process::{Child, Command, Stdio};
    use std::time::Instant;

    use super::*;

    /// The sample key file both crates' tests read (docs/keys.md).
    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/keys/sample-keys.toml"
    );

    /// The plaintext of a sample key, from the sample file's `# test key NAME: KEY` comments.
    fn sample_key(name: &str) -> String {
        let text = fs::read_to_string(SAMPLE).unwrap();
        let prefix = format!("# test key {name}: ");
        let key = text.lines().find_map(|l| l.strip_prefix(&prefix));
        key.unwrap_or_else(|| panic!("no test key {name} in the sample"))
            .to_owned()
    }

    /// What the gateway does with a presented key, per docs/keys.md: find the entry by the
    /// id inside the key, compare hashes, refuse revoked keys.
    fn accepts<'a>(entries: &'a [Entry], key: &str) -> Option<&'a Entry> {
        let id = key.strip_prefix(KEY_PREFIX)?.get(..ID_LEN)?;
        entries
            .iter()
            .find(|e| e.id == id)
            .filter(|e| e.sha256 == sha256_hex(key) && e.revoked.is_none())
    }

    fn check_key_shape(key: &str) {
        assert_eq!(key.len(), 60, "{key}");
        let rest = key.strip_prefix("gwk_").unwrap();
        let (id, secret) = rest.split_at(ID_LEN);
        assert!(is_id(id), "{id}");
        let secret = secret.strip_prefix('_').unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 32);
    }

    #[test]
    fn sample_file_parses_and_its_keys_match_their_hashes() {
        let entries = list(&Store::File(SAMPLE.into())).unwrap();
        let ids: Vec<_> = entries.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["3cad7a63124f", "d618b8c22667", "6416182bef03"]);
        for name in ["alice", "carol"] {
            let key = sample_key(name);
            check_key_shape(&key);
            assert_eq!(accepts(&entries, &key).unwrap().consumer, name);
        }
        let bob = sample_key("bob");
        assert_eq!(entries[1].sha256, sha256_hex(&bob));
        assert_eq!(accepts(&entries, &bob), None, "revoked");
        assert_eq!(entries[1].revoked.as_deref(), Some("2026-11-28T09:00:00Z"));
        assert_eq!(entries[2].plan, None);
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_000_000_000), "2001-09-09T01:46:40Z");
        assert_eq!(rfc3339(1_795_775_999), "2026-11-27T10:39:59Z");
        assert_eq!(rfc3339(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(rfc3339(now()).len(), 20);
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
        let dir = tempfile::tempdir().unwrap();
        let store = Store::File(dir.path().join("keys.toml"));
        let err = create(&store, "al ice", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "consumer \"al ice\" is not a valid name: use 1 to 128 visible ASCII characters, without spaces"
        );
        let err = create(&store, "alice", Some("")).unwrap_err();
        assert!(
            err.to_string().starts_with("plan \"\" is not a valid name"),
            "{err}"
        );
        assert!(!dir.path().join("keys.toml").exists(), "nothing written");
    }

    #[test]
    fn new_list_revoke_round_trip_in_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let store = Store::File(path.clone());

        let alice = create(&store, "alice", Some("gold")).unwrap();
        let bob = create(&store, "bob", None).unwrap();
        check_key_shape(&alice.key);
        assert_ne!(alice.key, bob.key);
        assert!(alice.key.starts_with(&format!("gwk_{}_", alice.entry.id)));

        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(HEADER), "{text}");
        assert!(!text.contains(&alice.key[17..]), "the secret was written");
        let entries = list(&store).unwrap();
        assert_eq!(entries, [alice.entry.clone(), bob.entry.clone()]);
        assert_eq!(accepts(&entries, &alice.key), Some(&alice.entry));
        assert_eq!(accepts(&entries, &bob.key), Some(&bob.entry));
        assert_eq!(
            accepts(&entries, &alice.key.replace(&alice.entry.id, &bob.entry.id)),
            None
        );

        let table = render_list(&entries);
        assert!(
            table.starts_with("ID            CONSUMER  PLAN  CREATED               STATUS\n"),
            "{table}"
        );
        assert!(
            table.contains(&format!("{}  alice     gold  ", alice.entry.id)),
            "{table}"
        );
        assert!(
            table.contains(&format!("{}  bob       -     ", bob.entry.id)),
            "{table}"
        );
        assert!(!table.contains(&alice.entry.sha256) && !table.contains(&alice.key));

        let revoked = revoke(&store, &bob.entry.id).unwrap();
        assert!(!revoked.already);
        let at = revoked.entry.revoked.clone().unwrap();
        let entries = list(&store).unwrap();
        assert_eq!(accepts(&entries, &bob.key), None);
        assert!(accepts(&entries, &alice.key).is_some());
        assert!(render_list(&entries).contains(&format!("revoked {at}")));

        let again = revoke(&store, &bob.entry.id).unwrap();
        assert!(again.already);
        assert_eq!(again.entry.revoked.as_deref(), Some(at.as_str()));

        let err = revoke(&store, "0123456789ab").unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("no key with id 0123456789ab in {}", path.display())
        );
        assert!(matches!(
            revoke(&store, &alice.key),
            Err(KeysError::NotAnId)
        ));
        // No temporary file is left behind; the lock file is.
        let mut names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["keys.toml", "keys.toml.lock"]);
    }

    #[test]
    fn new_keeps_other_entries_and_the_file_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        fs::copy(SAMPLE, &path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        }
        let before = list(&Store::File(path.clone())).unwrap();
        let dave = create(&Store::File(path.clone()), "dave", None).unwrap();
        let after = list(&Store::File(path.clone())).unwrap();
        assert_eq!(after[..3], before[..]);
        assert_eq!(after[3], dave.entry);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o640);
        }
        // What gatewayc writes reads back the same: the runtime's tests read the sample,
        // whose layout this checks.
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.contains(&format!(
                "[[key]]\nid = \"{}\"\nsha256 = \"{}\"\nconsumer = \"dave\"\ncreated = \"{}\"\n",
                dave.entry.id, dave.entry.sha256, dave.entry.created
            )),
            "{text}"
        );
    }

    #[test]
    fn invalid_files_are_refused_without_quoting_them() {
        let sample = fs::read_to_string(SAMPLE).unwrap();
        let hash = "bdd2f1dd3ae97b04de7de225370beb213c867fa62e0dcc385ec22422b0f6588e";
        let cases = [
            (
                sample.replace("plan = \"gold\"", "plna = \"gold\""),
                "keys.toml:13:1: unknown field `plna`",
            ),
            (
                sample.replace("consumer = \"alice\"\n", ""),
                "keys.toml:9:1: missing field `consumer`",
            ),
            (
                sample.replace(hash, &hash[1..]),
                "keys.toml: key 1 (id 3cad7a63124f): `sha256` must be 64",
            ),
            (
                sample.replace("consumer = \"carol\"", "consumer = \"c d\""),
                "key 3 (id 6416182bef03): `consumer` must be",
            ),
            (
                sample.replace("id = \"6416182bef03\"", "id = \"3cad7a63124f\""),
                "key 3 (id 3cad7a63124f): another key has the same id",
            ),
            (
                sample.replace("id = \"3cad7a63124f\"", "id = \"nope\""),
                "keys.toml: key 1: `id` must be 12",
            ),
            (
                sample.replace("created = \"2026-11-27T10:00:00Z\"", "created = 1"),
                "keys.toml:14:11: expected an RFC 3339 date-time",
            ),
            (
                format!("version = 1\n{sample}"),
                "keys.toml:1:1: unknown field `version`",
            ),
            (
                sample.replace(
                    &format!("sha256 = \"{hash}\""),
                    &format!("sha256 = \"{hash}"),
                ),
                "keys.toml:11:75: invalid basic string",
            ),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        for (text, expected) in cases {
            fs::write(&path, &text).unwrap();
            let err = list(&Store::File(path.clone())).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{err:?} does not contain {expected:?}"
            );
            assert!(!err.contains(&hash[..16]), "{err:?} quotes a hash");
            // Nothing is written over a file that does not parse.
            assert!(create(&Store::File(path.clone()), "eve", None).is_err());
            assert_eq!(fs::read_to_string(&path).unwrap(), text);
        }
        // Hand-written TOML date-times are read as RFC 3339 strings.
        fs::write(
            &path,
            sample.replace("\"2026-11-28T09:00:00Z\"", "2026-11-28T09:00:00Z"),
        )
        .unwrap();
        let entries = list(&Store::File(path.clone())).unwrap();
        assert_eq!(entries[1].revoked.as_deref(), Some("2026-11-28T09:00:00Z"));
        // A missing file is created by `new` only.
        let missing = Store::File(dir.path().join("none.toml"));
        assert!(
            list(&missing)
                .unwrap_err()
                .to_string()
                .starts_with("cannot read ")
        );
        assert!(matches!(
            revoke(&missing, "0123456789ab"),
            Err(KeysError::Read { .. })
        ));
    }

    /// A `redis-server` child on a free port of 127.0.0.1, killed on drop.
    struct RedisServer {
        child: Child,
        port: u16,
    }

    impl RedisServer {
        fn start() -> RedisServer {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let child = match child {
                Ok(child) => child,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                    "redis-server is not installed: this test needs it and does not skip \
                     (Debian: apt-get install redis-server)"
                ),
                Err(e) => panic!("cannot start redis-server: {e}"),
            };
            let mut server = RedisServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(10);
            while connect(&server.url()).is_err() {
                if let Ok(Some(status)) = server.child.try_wait() {
                    panic!("redis-server exited at start-up ({status}) on port {port}");
                }
                assert!(
                    Instant::now() < deadline,
                    "redis-server did not answer in 10 s"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
            server
        }

        fn url(&self) -> String {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    impl Drop for RedisServer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[test]
    fn new_list_revoke_round_trip_in_redis() {
        let server = RedisServer::start();
        let store = Store::Redis(server.url());
        assert_eq!(list(&store).unwrap(), []);
        let alice = create(&store, "alice", Some("gold")).unwrap();
        let bob = create(&store, "bob", None).unwrap();
        check_key_shape(&alice.key);

        // The hash holds exactly the documented fields (docs/keys.md), which the runtime's
        // Redis test writes the same way.
        let mut conn = connect(&server.url()).unwrap();
        let stored: std::collections::BTreeMap<String, String> = redis::cmd("HGETALL")
            .arg(format!("gatewayc:key:{}", alice.entry.id))
            .query(&mut conn)
            .unwrap();
        let expected: std::collections::BTreeMap<String, String> = [
            ("id", alice.entry.id.as_str()),
            ("sha256", &sha256_hex(&alice.key)),
            ("consumer", "alice"),
            ("plan", "gold"),
            ("created", &alice.entry.created),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        assert_eq!(stored, expected);

        let entries = list(&store).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(accepts(&entries, &alice.key).is_some() && accepts(&entries, &bob.key).is_some());

        let revoked = revoke(&store, &alice.entry.id).unwrap();
        assert!(!revoked.already);
        let again = revoke(&store, &alice.entry.id).unwrap();
        assert!(again.already && again.entry.revoked == revoked.entry.revoked);
        let entries = list(&store).unwrap();
        assert_eq!(accepts(&entries, &alice.key), None);
        assert!(accepts(&entries, &bob.key).is_some());
        let err = revoke(&store, "0123456789ab").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no key with id 0123456789ab in the Redis store"
        );

        // A hand-broken entry is named, its values are not.
        redis::cmd("HSET")
            .arg(format!("gatewayc:key:{}", bob.entry.id))
            .arg("colour")
            .arg("blue")
            .exec(&mut conn)
            .unwrap();
        let err = list(&store).unwrap_err().to_string();
        assert_eq!(
            err,
            format!("gatewayc:key:{}: unknown field \"colour\"", bob.entry.id)
        );
    }

    #[test]
    fn unreachable_redis_is_a_clear_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("redis://:secret@127.0.0.1:{port}/");
        let err = create(&Store::Redis(url), "alice", None)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("Redis: cannot connect"), "{err}");
        assert!(!err.contains("secret"), "{err}");
    }
}
