//! `gatewayc keys`: makes, lists and revokes API keys in a consumer key store, a TOML file
//! or Redis.
//!
//! The gateway reads what this module writes (`gatewayc_runtime::keys`), but the two crates
//! never link to each other: the format is described in `docs/keys.md`, its facts (the key
//! syntax, field names and rules) live in `gatewayc_vocab::keys`, which both use, and the
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
use gatewayc_vocab::calendar::DateTime;
use gatewayc_vocab::keys::{self, EntryError, Field, Fields, ID_BYTES, SECRET_BYTES};
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};

pub use gatewayc_vocab::keys::{ID_LEN, KEY_PREFIX, MAX_NAME, REDIS_PREFIX};

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

impl Entry {
    /// The entry's fields, as the shared format names and checks them.
    pub fn fields(&self) -> Fields<'_> {
        Fields {
            id: &self.id,
            sha256: &self.sha256,
            consumer: &self.consumer,
            plan: self.plan.as_deref(),
            created: &self.created,
            revoked: self.revoked.as_deref(),
        }
    }
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
    let created = now();
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
                    .arg(keys::redis_key(&new.entry.id))
                    .query(&mut conn)?;
                if !exists {
                    break new;
                }
            };
            let mut hset = redis::cmd("HSET");
            hset.arg(keys::redis_key(&new.entry.id));
            for (field, value) in new.entry.fields().pairs() {
                hset.arg(field.name()).arg(value);
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
    if !keys::is_id(id) {
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
            entry.revoked = Some(now());
            let entry = entry.clone();
            write_file(path, &entries)?;
            Ok(Revocation {
                entry,
                already: false,
            })
        }
        Store::Redis(url) => {
            let mut conn = connect(url)?;
            let mut entry = redis_entry(&mut conn, &keys::redis_key(id))?.ok_or_else(unknown)?;
            if entry.revoked.is_some() {
                return Ok(Revocation {
                    entry,
                    already: true,
                });
            }
            let revoked = now();
            redis::cmd("HSET")
                .arg(keys::redis_key(id))
                .arg(Field::Revoked.name())
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
            {
                let status = e.fields().status().name();
                match &e.revoked {
                    None => status.to_owned(),
                    Some(at) => format!("{status} {at}"),
                }
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

/// A new random key and its entry. The id's and the secret's bytes come from the operating
/// system's random number generator.
fn generate(consumer: &str, plan: Option<&str>, created: &str) -> Result<NewKey, KeysError> {
    let mut id = [0u8; ID_BYTES];
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut id)
        .and_then(|()| getrandom::fill(&mut secret))
        .map_err(|e| KeysError::Random(e.to_string()))?;
    let id = keys::hex(&id);
    let key = keys::key(&id, &URL_SAFE_NO_PAD.encode(secret));
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
    keys::hex(&Sha256::digest(key.as_bytes()))
}

fn check_name(what: &'static str, value: &str) -> Result<(), KeysError> {
    if keys::is_name(value) {
        Ok(())
    } else {
        Err(KeysError::InvalidName {
            what,
            value: value.to_owned(),
        })
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
                let (line, column) = keys::line_column(text, span.start);
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
        let problem = entry.fields().check().err().or_else(|| {
            file.key[..n]
                .iter()
                .any(|other| other.id == entry.id)
                .then_some(EntryError::DuplicateId)
        });
        if let Some(problem) = problem {
            let id = if keys::is_id(&entry.id) {
                format!(" (id {})", entry.id)
            } else {
                String::new()
            };
            return Err(KeysError::Invalid {
                at: format!("{}: key {}{id}", path.display(), n + 1),
                message: problem.to_string(),
            });
        }
    }
    Ok(file.key)
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
    let fields = Fields::parse(map.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| invalid(e.to_string()))?;
    if keys::redis_key(fields.id) != name {
        return Err(invalid("`id` is not the id in the key's name".to_owned()));
    }
    Ok(Some(Entry {
        id: fields.id.to_owned(),
        sha256: fields.sha256.to_owned(),
        consumer: fields.consumer.to_owned(),
        plan: fields.plan.map(str::to_owned),
        created: fields.created.to_owned(),
        revoked: fields.revoked.map(str::to_owned),
    }))
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

/// Now, as an entry's `created` or `revoked` time: RFC 3339 in UTC
/// (`2026-11-27T10:00:00Z`).
fn now() -> String {
    let secs = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DateTime::from_unix(i64::try_from(secs).unwrap_or(i64::MAX)).to_string()
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
        let id = keys::key_id(key)?;
        entries
            .iter()
            .find(|e| e.id == id)
            .filter(|e| e.sha256 == sha256_hex(key) && e.revoked.is_none())
    }

    fn check_key_shape(key: &str) {
        assert_eq!(key.len(), 60, "{key}");
        let rest = key.strip_prefix("gwk_").unwrap();
        let (id, secret) = rest.split_at(ID_LEN);
        assert!(keys::is_id(id), "{id}");
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
    fn entries_are_written_with_the_shared_field_names_in_order() {
        let entry = Entry {
            id: "0123456789ab".to_owned(),
            sha256: "0".repeat(64),
            consumer: "dave".to_owned(),
            plan: Some("gold".to_owned()),
            created: now(),
            revoked: Some(now()),
        };
        assert_eq!(entry.created.len(), 20, "{}", entry.created);
        let text = render_file(std::slice::from_ref(&entry)).unwrap();
        let written: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(name, _)| name)
            .collect();
        assert_eq!(written, Field::ALL.map(Field::name));
    }

    #[test]
    fn invalid_names_are_refused_before_anything_is_written() {
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
