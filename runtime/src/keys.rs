//! API keys: checks a key a client presents against the consumer key store that
//! `gatewayc keys` writes (a TOML file, or hashes in Redis).
//!
//! The key and store formats are documented once, in `docs/keys.md` of the repository, and
//! their facts (key syntax, field names and rules) live in `gatewayc_vocab::keys`; the
//! compiler implements the writing side, and neither crate links to the other. Only SHA-256
//! hashes are stored, compared in constant time. Nothing here logs or returns a key or a
//! hash: errors name files, lines, fields and key ids (which are public).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(feature = "redis")]
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "redis")]
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
#[cfg(feature = "redis")]
use std::time::Instant;

use arc_swap::ArcSwap;
use gatewayc_vocab::keys::{EntryError, Field, Fields, decode_sha256, is_id, key_id, line_column};
#[cfg(feature = "redis")]
use redis::aio::ConnectionManager;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::gateway::ConsumerStoreDef;

pub use gatewayc_vocab::keys::{ID_LEN, KEY_LEN, KEY_PREFIX, REDIS_PREFIX, SECRET_LEN};

/// How long one Redis look-up may take unless `GATEWAY_KEYS_TIMEOUT_MS` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
/// How long a Redis answer is reused unless `GATEWAY_KEYS_CACHE_MS` says otherwise: the
/// longest time a revoked key can still be accepted by a gateway that checked it recently.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);
/// Most ids a Redis store's cache holds; past this, expired answers are dropped, and if that
/// is not enough (a flood of made-up ids), all of them.
#[cfg(feature = "redis")]
const CACHE_CAP: usize = 100_000;

/// The consumer a valid key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consumer {
    /// The key's id (public; safe to log).
    pub id: Box<str>,
    /// The consumer's name.
    pub consumer: Box<str>,
    /// The consumer's plan, when the key has one.
    pub plan: Option<Box<str>>,
}

/// Why a key could not be checked (as opposed to being checked and refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyStoreError {
    /// The Redis store did not answer in time, or could not be reached; the request should
    /// get 503, since the key is neither known good nor known bad.
    #[error("the API key store is unavailable")]
    Unavailable,
}

/// The consumer key store, opened at start-up from the gateway's [`ConsumerStoreDef`].
///
/// A file store is held in memory and swapped whole on [`KeyStore::reload`]; a Redis store
/// asks Redis and caches each answer for a few seconds (`docs/keys.md`).
pub struct KeyStore {
    store: Store,
}

enum Store {
    File(FileStore),
    #[cfg(feature = "redis")]
    Redis(RedisStore),
}

struct FileStore {
    path: PathBuf,
    keys: ArcSwap<KeySet>,
}

#[cfg(feature = "redis")]
struct RedisStore {
    conn: ConnectionManager,
    timeout: Duration,
    ttl: Duration,
    cache: Mutex<HashMap<Box<str>, Cached>>,
    /// Whether the last look-up reached Redis, so that an outage is logged once when it
    /// starts and once when it ends, not once per request.
    reachable: AtomicBool,
}

/// An answer from Redis: the entry, or `None` when there is no (valid) entry for the id.
#[cfg(feature = "redis")]
struct Cached {
    at: Instant,
    entry: Option<Entry>,
}

/// Every entry of a file store, by id.
#[derive(Default)]
struct KeySet {
    by_id: HashMap<Box<str>, Entry>,
}

/// One stored key: its hash and whom it belongs to.
#[derive(Clone)]
struct Entry {
    sha256: [u8; 32],
    consumer: Arc<Consumer>,
    revoked: bool,
}

impl Entry {
    /// The consumer, when `hash` is this entry's hash and the key is not revoked.
    fn verify(&self, hash: &[u8; 32]) -> Option<Arc<Consumer>> {
        let same: bool = self.sha256.ct_eq(hash).into();
        (same && !self.revoked).then(|| Arc::clone(&self.consumer))
    }
}

impl KeyStore {
    /// Opens the store `def` names, resolving `${VAR}` references (and the
    /// `GATEWAY_KEYS_*` settings) with `lookup`, the process environment in production.
    ///
    /// A file store is read now: a missing or invalid file is an error naming the path. A
    /// Redis store is connected lazily: when Redis does not answer now, that is logged and
    /// the gateway starts anyway, answering 503 to keys it cannot check until Redis is back.
    /// A Redis store must be opened on a Tokio runtime (its connection task runs there).
    pub async fn open(
        def: &'static ConsumerStoreDef,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<KeyStore, String> {
        match def {
            ConsumerStoreDef::File(template) => {
                let path = PathBuf::from(resolve(template, lookup)?);
                let keys = load_file(&path)?;
                tracing::info!(path = %path.display(), keys = keys.by_id.len(), "API key store loaded");
                Ok(KeyStore {
                    store: Store::File(FileStore {
                        path,
                        keys: ArcSwap::from_pointee(keys),
                    }),
                })
            }
            #[cfg(not(feature = "redis"))]
            ConsumerStoreDef::Redis(_) => Err("the API key store is Redis, but this gateway was built without the `redis` feature of gatewayc-runtime".to_owned()),
            #[cfg(feature = "redis")]
            ConsumerStoreDef::Redis(template) => {
                let url = resolve(template, lookup)?;
                let timeout = millis(lookup, "GATEWAY_KEYS_TIMEOUT_MS", DEFAULT_TIMEOUT)?;
                if timeout.is_zero() {
                    return Err("GATEWAY_KEYS_TIMEOUT_MS must be above 0".to_owned());
                }
                let ttl = millis(lookup, "GATEWAY_KEYS_CACHE_MS", DEFAULT_CACHE_TTL)?;
                let conn = crate::redis_conn::connect(&url, timeout, "the API key store")?;
                let store = RedisStore {
                    conn,
                    timeout,
                    ttl,
                    cache: Mutex::new(HashMap::new()),
                    reachable: AtomicBool::new(true),
                };
                store.probe().await;
                Ok(KeyStore {
                    store: Store::Redis(store),
                })
            }
        }
    }

    /// Checks a presented key: the consumer when the key is valid, `None` when it is
    /// malformed, unknown, wrong or revoked.
    ///
    /// A malformed key is refused before any look-up. Its id finds the entry; the SHA-256
    /// of the whole key is compared with the stored one in constant time. With a Redis
    /// store, [`KeyStoreError::Unavailable`] means Redis could not answer within the timeout
    /// and no fresh answer for this id was cached.
    pub async fn check(&self, presented: &str) -> Result<Option<Arc<Consumer>>, KeyStoreError> {
        let Some(id) = key_id(presented) else {
            return Ok(None);
        };
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        match &self.store {
            Store::File(file) => Ok(file.keys.load().by_id.get(id).and_then(|e| e.verify(&hash))),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => {
                let entry = match redis.cached(id) {
                    Some(entry) => entry,
                    None => {
                        let entry = redis.fetch(id).await?;
                        redis.remember(id, entry.clone());
                        entry
                    }
                };
                Ok(entry.and_then(|e| e.verify(&hash)))
            }
        }
    }

    /// Whether the store can answer: a file store always can (its keys are in memory), a
    /// Redis store when Redis answers a PING (readiness).
    pub async fn ready(&self) -> Result<(), String> {
        match &self.store {
            Store::File(_) => Ok(()),
            #[cfg(feature = "redis")]
            Store::Redis(r) => r.ping().await,
        }
    }

    /// Reads a file store again and replaces the keys in one atomic swap, so that no check
    /// running meanwhile sees a partial set; returns the number of keys. When the file is
    /// missing or invalid, the keys in force stay, and the error says why.
    ///
    /// A Redis store holds no keys here: its cache is emptied, so that revocations take
    /// effect at once, and the result is 0.
    pub fn reload(&self) -> Result<usize, String> {
        match &self.store {
            Store::File(file) => {
                let keys = load_file(&file.path)?;
                let count = keys.by_id.len();
                file.keys.store(Arc::new(keys));
                Ok(count)
            }
            #[cfg(feature = "redis")]
            Store::Redis(redis) => {
                redis
                    .cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                Ok(0)
            }
        }
    }

    /// Reloads the store on every SIGHUP (Unix), from a task spawned on the current Tokio
    /// runtime, logging the outcome: the number of keys, or why the old keys stay. Does
    /// nothing (but log a warning) outside a Tokio runtime or where there is no SIGHUP.
    pub fn watch_sighup(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no Tokio runtime: the API key store will not be reloaded on SIGHUP");
            return;
        };
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let _entered = handle.enter();
            let mut hangup = match signal(SignalKind::hangup()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for SIGHUP: the API key store will not be reloaded");
                    return;
                }
            };
            let store = Arc::clone(self);
            handle.spawn(async move {
                while hangup.recv().await.is_some() {
                    let s = Arc::clone(&store);
                    match tokio::task::spawn_blocking(move || s.reload()).await {
                        Ok(Ok(keys)) => match &store.store {
                            Store::File(f) => tracing::info!(
                                path = %f.path.display(), keys, "SIGHUP: API key store reloaded"
                            ),
                            #[cfg(feature = "redis")]
                            Store::Redis(_) => {
                                tracing::info!("SIGHUP: API key cache emptied")
                            }
                        },
                        Ok(Err(e)) => tracing::warn!(
                            error = %e, "SIGHUP: API key store not reloaded; the previous keys stay in force"
                        ),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: API key store reload failed"),
                    }
                }
            });
        }
        #[cfg(not(unix))]
        drop(handle);
    }
}

impl fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the Redis URL (it may hold a password), never hashes.
        match &self.store {
            Store::File(file) => f
                .debug_struct("KeyStore")
                .field("file", &file.path)
                .field("keys", &file.keys.load().by_id.len())
                .finish(),
            #[cfg(feature = "redis")]
            Store::Redis(redis) => f
                .debug_struct("KeyStore")
                .field("store", &"redis")
                .field("timeout", &redis.timeout)
                .field("cache_ttl", &redis.ttl)
                .finish(),
        }
    }
}

#[cfg(feature = "redis")]
impl RedisStore {
    /// Whether Redis answers a PING within the timeout (readiness).
    async fn ping(&self) -> Result<(), String> {
        crate::redis_conn::ping(&self.conn, self.timeout).await
    }

    /// Logs whether Redis answers now; never fails.
    async fn probe(&self) {
        let mut conn = self.conn.clone();
        let ping = redis::cmd("PING");
        match tokio::time::timeout(self.timeout, ping.query_async::<String>(&mut conn)).await {
            Ok(Ok(_)) => tracing::info!("API key store: Redis answers"),
            Ok(Err(e)) => self.down(&e.to_string()),
            Err(_) => self.down("timed out"),
        }
    }

    /// A fresh cached answer for `id`: `Some(None)` is a cached "no such key".
    fn cached(&self, id: &str) -> Option<Option<Entry>> {
        if self.ttl.is_zero() {
            return None;
        }
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(id)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.entry.clone())
    }

    fn remember(&self, id: &str, entry: Option<Entry>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAP && !cache.contains_key(id) {
            cache.retain(|_, c| c.at.elapsed() < self.ttl);
            if cache.len() >= CACHE_CAP {
                cache.clear();
            }
        }
        cache.insert(
            id.into(),
            Cached {
                at: Instant::now(),
                entry,
            },
        );
    }

    /// Asks Redis for the entry of `id`, within the timeout.
    async fn fetch(&self, id: &str) -> Result<Option<Entry>, KeyStoreError> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(gatewayc_vocab::keys::redis_key(id));
        let reply = tokio::time::timeout(
            self.timeout,
            cmd.query_async::<HashMap<String, String>>(&mut conn),
        )
        .await;
        let fields = match reply {
            Ok(Ok(fields)) => fields,
            Ok(Err(e)) if e.kind() == redis::ErrorKind::UnexpectedReturnType => {
                self.up();
                tracing::warn!(
                    id,
                    "API key entry in Redis is not a hash of strings; key refused"
                );
                return Ok(None);
            }
            Ok(Err(e)) => {
                self.down(&e.to_string());
                return Err(KeyStoreError::Unavailable);
            }
            Err(_) => {
                self.down("timed out");
                return Err(KeyStoreError::Unavailable);
            }
        };
        self.up();
        if fields.is_empty() {
            return Ok(None);
        }
        match parse_entry(fields.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
            Ok((stored, entry)) if *stored == *id => Ok(Some(entry)),
            Ok(_) => {
                tracing::warn!(id, "API key entry in Redis has another id; key refused");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(id, error = %e, "invalid API key entry in Redis; key refused");
                Ok(None)
            }
        }
    }

    fn up(&self) {
        if !self.reachable.swap(true, Ordering::Relaxed) {
            tracing::info!("API key store: Redis answers again");
        }
    }

    fn down(&self, why: &str) {
        crate::observe::metrics::key_store_error("redis");
        if self.reachable.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                "API key store: Redis does not answer; keys that are not cached get 503"
            );
        } else {
            tracing::debug!(error = why, "API key store: Redis still does not answer");
        }
    }
}

/// One entry from its fields (the same in both stores); the error names the field, never
/// its value.
fn parse_entry<'a>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<(Box<str>, Entry), String> {
    let fields = Fields::parse(fields).map_err(|e| e.to_string())?;
    let sha256 = decode_sha256(fields.sha256)
        .ok_or_else(|| EntryError::Malformed(Field::Sha256).to_string())?;
    let entry = Entry {
        sha256,
        consumer: Arc::new(Consumer {
            id: fields.id.into(),
            consumer: fields.consumer.into(),
            plan: fields.plan.map(Into::into),
        }),
        revoked: fields.revoked.is_some(),
    };
    Ok((fields.id.into(), entry))
}

fn load_file(path: &Path) -> Result<KeySet, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read API key file {}: {e}", path.display()))?;
    parse_file(&text).map_err(|e| format!("API key file {}: {e}", path.display()))
}

/// A key file's text as a key set; the error locates the problem without quoting the file.
fn parse_file(text: &str) -> Result<KeySet, String> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        // The error's `Display` quotes the offending line, which may hold a hash.
        let (line, column) = e.span().map_or((1, 1), |s| line_column(text, s.start));
        format!("line {line}, column {column}: {}", e.message().trim_end())
    })?;
    if let Some(other) = table.keys().find(|k| *k != "key") {
        return Err(format!(
            "unknown top-level key {other:?}: a key file holds only [[key]] tables"
        ));
    }
    let mut set = KeySet::default();
    let Some(list) = table.get("key") else {
        return Ok(set);
    };
    let toml::Value::Array(list) = list else {
        return Err("`key` must be an array of tables ([[key]])".to_owned());
    };
    for (n, item) in list.iter().enumerate() {
        let at = n + 1;
        let toml::Value::Table(fields) = item else {
            return Err(format!("key {at} is not a table"));
        };
        let named = match fields.get(Field::Id.name()) {
            Some(toml::Value::String(id)) if is_id(id) => format!("key {at} (id {id})"),
            _ => format!("key {at}"),
        };
        let mut pairs = Vec::with_capacity(fields.len());
        for (name, value) in fields {
            let value = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Datetime(d)
                    if [Field::Created.name(), Field::Revoked.name()].contains(&name.as_str()) =>
                {
                    d.to_string()
                }
                _ => return Err(format!("{named}: `{name}` must be a string")),
            };
            pairs.push((name.as_str(), value));
        }
        let (id, entry) = parse_entry(pairs.iter().map(|(k, v)| (*k, v.as_str())))
            .map_err(|e| format!("{named}: {e}"))?;
        if set.by_id.insert(id, entry).is_some() {
            return Err(format!("{named}: {}", EntryError::DuplicateId));
        }
    }
    Ok(set)
}

fn resolve(template: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    crate::env::resolve_with(template, lookup).map_err(|missing| {
        let names: Vec<_> = missing.into_iter().collect();
        format!(
            "API key store: missing environment variables: {}",
            names.join(", ")
        )
    })
}

/// A duration in milliseconds from the variable `name`, or `default` when it is unset.
#[cfg(feature = "redis")]
fn millis(
    lookup: &dyn Fn(&str) -> Option<String>,
    name: &str,
    default: Duration,
) -> Result<Duration, String> {
    match lookup(name).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| format!("{name}=`{v}` is not a number of milliseconds")),
    }
}

#[cfg(test)]
#[cfg(feature = "redis")]
mod tests {
    use std::net::TcpListener;
    use std::process::Command;

    use super::*;
    use crate::test_redis::RedisServer;

    /// The sample key file both crates' tests read (docs/keys.md).
    const SAMPLE: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../specs/keys/sample-keys.toml"
    );

    /// The plaintext of a sample key, from the sample file's `# test key NAME: KEY` comments.
    fn sample_key(name: &str) -> String {
        let text = std::fs::read_to_string(SAMPLE).unwrap();
        let prefix = format!("# test key {name}: ");
        let key = text.lines().find_map(|l| l.strip_prefix(&prefix));
        key.unwrap_or_else(|| panic!("no test key {name} in the sample"))
            .to_owned()
    }

    fn sha256_hex(key: &str) -> String {
        gatewayc_vocab::keys::hex(&Sha256::digest(key.as_bytes()))
    }

    static FILE_DEF: ConsumerStoreDef = ConsumerStoreDef::File("${KEYS_FILE}");
    static REDIS_DEF: ConsumerStoreDef = ConsumerStoreDef::Redis("${REDIS_URL}");

    /// A lookup that knows only the given variables.
    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    async fn open_file(path: &Path) -> KeyStore {
        let lookup = vars(&[("KEYS_FILE", &path.to_string_lossy())]);
        KeyStore::open(&FILE_DEF, &lookup).await.unwrap()
    }

    /// `key` with its last secret character replaced (still well-formed).
    fn wrong_secret(key: &str) -> String {
        let last = if key.ends_with('A') { "B" } else { "A" };
        format!("{}{last}", &key[..key.len() - 1])
    }

    #[test]
    fn sample_file_parses() {
        let set = parse_file(&std::fs::read_to_string(SAMPLE).unwrap()).unwrap();
        assert_eq!(set.by_id.len(), 3);
        let alice = &set.by_id["3cad7a63124f"];
        assert_eq!(&*alice.consumer.consumer, "alice");
        assert_eq!(alice.consumer.plan.as_deref(), Some("gold"));
        assert!(!alice.revoked);
        assert!(set.by_id["d618b8c22667"].revoked);
        assert_eq!(set.by_id["6416182bef03"].consumer.plan, None);
        // The comments hold the keys whose hashes the entries hold.
        for name in ["alice", "bob", "carol"] {
            let key = sample_key(name);
            let entry = &set.by_id[key_id(&key).unwrap()];
            assert_eq!(
                entry.sha256.to_vec(),
                Sha256::digest(key.as_bytes()).to_vec()
            );
        }
    }

    #[tokio::test]
    async fn file_store_accepts_only_valid_unrevoked_keys() {
        let store = open_file(Path::new(SAMPLE)).await;
        let alice = store.check(&sample_key("alice")).await.unwrap().unwrap();
        assert_eq!(
            *alice,
            Consumer {
                id: "3cad7a63124f".into(),
                consumer: "alice".into(),
                plan: Some("gold".into()),
            }
        );
        let carol = store.check(&sample_key("carol")).await.unwrap().unwrap();
        assert_eq!((&*carol.consumer, carol.plan.as_deref()), ("carol", None));

        let refused = [
            ("revoked", sample_key("bob")),
            ("wrong secret", wrong_secret(&sample_key("alice"))),
            (
                "unknown id",
                sample_key("alice").replace("3cad7a63124f", "3cad7a63124e"),
            ),
            ("malformed", format!("{} ", sample_key("alice"))),
        ];
        for (why, key) in refused {
            assert_eq!(store.check(&key).await, Ok(None), "{why}");
        }
    }

    #[test]
    fn invalid_files_are_refused_without_quoting_them() {
        let sample = std::fs::read_to_string(SAMPLE).unwrap();
        let hash = "bdd2f1dd3ae97b04de7de225370beb213c867fa62e0dcc385ec22422b0f6588e";
        let cases = [
            (
                sample.replace("consumer = \"alice\"\n", ""),
                "key 1 (id 3cad7a63124f): `consumer` is missing",
            ),
            (
                sample.replace("plan = \"gold\"", "plan = \"g old\""),
                "key 1 (id 3cad7a63124f): `plan` must be",
            ),
            (
                sample.replace("consumer = \"carol\"", "consumer = \"\""),
                "key 3 (id 6416182bef03): `consumer` must be",
            ),
            (
                sample.replace("plan = \"gold\"", "plna = \"gold\""),
                "key 1 (id 3cad7a63124f): unknown field \"plna\"",
            ),
            (
                sample.replace(hash, &hash[1..]),
                "key 1 (id 3cad7a63124f): `sha256` must be 64",
            ),
            (
                sample.replace(hash, &hash.to_uppercase()),
                "`sha256` must be 64",
            ),
            (
                sample.replace("id = \"3cad7a63124f\"", "id = \"3CAD7A63124F\""),
                "key 1: `id` must be 12",
            ),
            (
                sample.replace("id = \"6416182bef03\"", "id = \"3cad7a63124f\""),
                "key 3 (id 3cad7a63124f): another key has the same id",
            ),
            (
                sample.replace("created = \"2026-11-27T10:00:00Z\"", "created = 1"),
                "key 1 (id 3cad7a63124f): `created` must be a string",
            ),
            (
                sample.replace("created = \"2026-11-27T10:00:00Z\"\n", ""),
                "`created` is missing",
            ),
            (
                format!("version = 1\n{sample}"),
                "unknown top-level key \"version\"",
            ),
            ("key = \"x\"".to_owned(), "`key` must be an array of tables"),
            (
                sample.replace(
                    &format!("sha256 = \"{hash}\""),
                    &format!("sha256 = \"{hash}"),
                ),
                "line 11, column 75: invalid basic string",
            ),
            (
                format!("{sample}\nsha256 = \"{hash}\"\n"),
                "line 30, column 1: duplicate key",
            ),
        ];
        for (text, expected) in cases {
            let err = match parse_file(&text) {
                Ok(_) => panic!("accepted, expected {expected:?}"),
                Err(e) => e,
            };
            assert!(
                err.contains(expected),
                "{err:?} does not contain {expected:?}"
            );
            assert!(!err.contains(&hash[..16]), "{err:?} quotes a hash");
        }
        // An empty file, or one with only comments, holds no keys.
        assert_eq!(parse_file("# nothing yet\n").unwrap().by_id.len(), 0);
        // Hand-written TOML date-times are fine for `created` and `revoked`.
        let dates = sample.replace("\"2026-11-28T09:00:00Z\"", "2026-11-28T09:00:00Z");
        assert!(parse_file(&dates).unwrap().by_id["d618b8c22667"].revoked);
    }

    #[tokio::test]
    async fn open_names_the_missing_file_and_variables() {
        let lookup = vars(&[("KEYS_FILE", "/nonexistent/keys.toml")]);
        let err = KeyStore::open(&FILE_DEF, &lookup).await.unwrap_err();
        assert!(
            err.contains("cannot read API key file /nonexistent/keys.toml"),
            "{err}"
        );

        let err = KeyStore::open(&FILE_DEF, &vars(&[])).await.unwrap_err();
        assert_eq!(
            err,
            "API key store: missing environment variables: KEYS_FILE"
        );
        let err = KeyStore::open(&REDIS_DEF, &vars(&[])).await.unwrap_err();
        assert_eq!(
            err,
            "API key store: missing environment variables: REDIS_URL"
        );

        let lookup = vars(&[
            ("REDIS_URL", "redis://127.0.0.1:1/"),
            ("GATEWAY_KEYS_TIMEOUT_MS", "soon"),
        ]);
        let err = KeyStore::open(&REDIS_DEF, &lookup).await.unwrap_err();
        assert_eq!(
            err,
            "GATEWAY_KEYS_TIMEOUT_MS=`soon` is not a number of milliseconds"
        );
        let lookup = vars(&[("REDIS_URL", "http://127.0.0.1:1/")]);
        let err = KeyStore::open(&REDIS_DEF, &lookup).await.unwrap_err();
        assert!(
            err.starts_with("the API key store's Redis URL is not valid"),
            "{err}"
        );
    }

    /// A key in the documented format with its entry, for tests that add keys.
    fn new_entry(id: &str, consumer: &str) -> (String, String) {
        let key = format!("gwk_{id}_{}", "k".repeat(SECRET_LEN));
        let entry = format!(
            "\n[[key]]\nid = \"{id}\"\nsha256 = \"{}\"\nconsumer = \"{consumer}\"\ncreated = \"2026-11-29T00:00:00Z\"\n",
            sha256_hex(&key)
        );
        (key, entry)
    }

    #[tokio::test]
    async fn reload_applies_revocations_and_new_keys_and_keeps_the_old_set_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let sample = std::fs::read_to_string(SAMPLE).unwrap();
        std::fs::write(&path, &sample).unwrap();
        let store = open_file(&path).await;
        let alice = sample_key("alice");
        assert!(store.check(&alice).await.unwrap().is_some());

        let (dave, dave_entry) = new_entry("0123456789ab", "dave");
        assert_eq!(store.check(&dave).await, Ok(None));
        let revoked = sample.replace(
            "created = \"2026-11-27T10:00:00Z\"\n",
            "created = \"2026-11-27T10:00:00Z\"\nrevoked = \"2026-11-29T00:00:00Z\"\n",
        );
        std::fs::write(&path, format!("{revoked}{dave_entry}")).unwrap();
        assert_eq!(store.reload(), Ok(4));
        assert_eq!(store.check(&alice).await, Ok(None));
        assert_eq!(
            &*store.check(&dave).await.unwrap().unwrap().consumer,
            "dave"
        );

        // A broken file, then no file: the keys in force stay.
        std::fs::write(&path, "[[key]]\nid = \"0123456789ab\n").unwrap();
        let err = store.reload().unwrap_err();
        assert!(
            err.contains(&format!("API key file {}: line 2", path.display())),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        let err = store.reload().unwrap_err();
        assert!(err.contains("cannot read API key file"), "{err}");
        assert!(store.check(&dave).await.unwrap().is_some());
        assert_eq!(store.check(&alice).await, Ok(None));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reloading_during_traffic_refuses_no_request() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let sample = std::fs::read_to_string(SAMPLE).unwrap();
        let other = sample.replace("plan = \"gold\"", "plan = \"platinum\"");
        std::fs::write(&path, &sample).unwrap();
        let store = Arc::new(open_file(&path).await);
        let alice = sample_key("alice");
        let checkers: Vec<_> = (0..4)
            .map(|_| {
                let store = Arc::clone(&store);
                let alice = alice.clone();
                tokio::spawn(async move {
                    let mut refused = 0;
                    for _ in 0..5_000 {
                        if store.check(&alice).await.unwrap().is_none() {
                            refused += 1;
                        }
                        tokio::task::yield_now().await;
                    }
                    refused
                })
            })
            .collect();
        for i in 0..200 {
            std::fs::write(&path, if i % 2 == 0 { &other } else { &sample }).unwrap();
            assert_eq!(store.reload(), Ok(3));
            tokio::task::yield_now().await;
        }
        for checker in checkers {
            assert_eq!(checker.await.unwrap(), 0);
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn sighup_reloads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.toml");
        let sample = std::fs::read_to_string(SAMPLE).unwrap();
        std::fs::write(&path, &sample).unwrap();
        let store = Arc::new(open_file(&path).await);
        store.watch_sighup();
        let (erin, erin_entry) = new_entry("ba9876543210", "erin");
        std::fs::write(&path, format!("{sample}{erin_entry}")).unwrap();
        let status = Command::new("kill")
            .args(["-HUP", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.check(&erin).await.unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "SIGHUP did not reload the key file"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Writes every entry of the sample file into Redis as docs/keys.md describes.
    fn load_sample_into(conn: &mut redis::Connection) {
        let table: toml::Table = std::fs::read_to_string(SAMPLE).unwrap().parse().unwrap();
        for entry in table["key"].as_array().unwrap() {
            let entry = entry.as_table().unwrap();
            let mut hset = redis::cmd("HSET");
            hset.arg(format!("gatewayc:key:{}", entry["id"].as_str().unwrap()));
            for (field, value) in entry {
                hset.arg(field).arg(value.as_str().unwrap());
            }
            hset.exec(conn).unwrap();
        }
    }

    fn timed<T>(started: Instant, value: T) -> (T, Duration) {
        (value, started.elapsed())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_store_checks_caches_and_reports_an_outage() {
        let mut server = RedisServer::start();
        let mut conn = server.connection();
        load_sample_into(&mut conn);
        let url = server.url();
        let uncached = KeyStore::open(
            &REDIS_DEF,
            &vars(&[("REDIS_URL", &url), ("GATEWAY_KEYS_CACHE_MS", "0")]),
        )
        .await
        .unwrap();
        let cached = KeyStore::open(
            &REDIS_DEF,
            &vars(&[("REDIS_URL", &url), ("GATEWAY_KEYS_CACHE_MS", "60000")]),
        )
        .await
        .unwrap();
        let (alice, bob, carol) = (sample_key("alice"), sample_key("bob"), sample_key("carol"));

        for store in [&uncached, &cached] {
            let found = store.check(&alice).await.unwrap().unwrap();
            assert_eq!(
                (&*found.consumer, found.plan.as_deref()),
                ("alice", Some("gold"))
            );
            assert_eq!(store.check(&bob).await, Ok(None), "revoked");
            assert_eq!(store.check(&wrong_secret(&alice)).await, Ok(None));
            assert_eq!(store.check(&wrong_secret(&carol)).await, Ok(None));
            let unknown = alice.replace("3cad7a63124f", "000000000000");
            assert_eq!(store.check(&unknown).await, Ok(None));
        }

        // An entry that breaks the format is refused, not an outage.
        let (odd, _) = new_entry("0123456789ab", "odd");
        redis::cmd("HSET")
            .arg("gatewayc:key:0123456789ab")
            .arg(&[
                "id",
                "0123456789ab",
                "sha256",
                &sha256_hex(&odd),
                "consumer",
                "odd",
            ])
            .arg(&["created", "2026-11-29T00:00:00Z", "colour", "blue"])
            .exec(&mut conn)
            .unwrap();
        assert_eq!(uncached.check(&odd).await, Ok(None));
        redis::cmd("HDEL")
            .arg("gatewayc:key:0123456789ab")
            .arg("colour")
            .exec(&mut conn)
            .unwrap();
        assert!(uncached.check(&odd).await.unwrap().is_some());

        // Revocation: at once without a cache; after the cache time (here, a reload) with one.
        redis::cmd("HSET")
            .arg("gatewayc:key:3cad7a63124f")
            .arg(&["revoked", "2026-11-29T00:00:00Z"])
            .exec(&mut conn)
            .unwrap();
        assert_eq!(uncached.check(&alice).await, Ok(None));
        assert!(
            cached.check(&alice).await.unwrap().is_some(),
            "cached answer"
        );
        assert_eq!(cached.reload(), Ok(0));
        assert_eq!(cached.check(&alice).await, Ok(None));
        // Un-revoked by hand: the cached "revoked" stands until the cache is emptied.
        redis::cmd("HDEL")
            .arg("gatewayc:key:3cad7a63124f")
            .arg("revoked")
            .exec(&mut conn)
            .unwrap();
        assert_eq!(cached.check(&alice).await, Ok(None));
        cached.reload().unwrap();
        assert!(cached.check(&alice).await.unwrap().is_some());

        // Redis goes away: fresh cached answers still count, nothing else waits past the
        // timeout (200 ms by default).
        drop(conn);
        server.kill();
        let limit = Duration::from_secs(1);
        let (r, took) = timed(Instant::now(), cached.check(&alice).await);
        assert!(r.unwrap().is_some() && took < limit, "cached: {took:?}");
        for store in [&uncached, &cached] {
            for _ in 0..3 {
                let (r, took) = timed(Instant::now(), store.check(&carol).await);
                assert_eq!(r, Err(KeyStoreError::Unavailable));
                assert!(took < limit, "took {took:?}");
            }
        }
        // A malformed key is refused without asking Redis.
        assert_eq!(uncached.check("gwk_nope").await, Ok(None));
    }

    #[tokio::test]
    async fn redis_that_never_answers_is_unavailable_within_the_timeout() {
        // Connections to this listener complete, but nothing ever answers them.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("redis://{}/", silent.local_addr().unwrap());
        let lookup = vars(&[("REDIS_URL", &url), ("GATEWAY_KEYS_TIMEOUT_MS", "100")]);
        let started = Instant::now();
        let store = KeyStore::open(&REDIS_DEF, &lookup).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "open waited for Redis"
        );
        for _ in 0..3 {
            let (r, took) = timed(Instant::now(), store.check(&sample_key("alice")).await);
            assert_eq!(r, Err(KeyStoreError::Unavailable));
            assert!(took < Duration::from_secs(1), "{took:?}");
        }
    }

    #[tokio::test]
    async fn redis_down_at_start_up_is_not_fatal() {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let url = format!("redis://127.0.0.1:{port}/");
        let store = KeyStore::open(&REDIS_DEF, &vars(&[("REDIS_URL", &url)]))
            .await
            .unwrap();
        let (r, took) = timed(Instant::now(), store.check(&sample_key("alice")).await);
        assert_eq!(r, Err(KeyStoreError::Unavailable));
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(!format!("{store:?}").contains(&url), "Debug shows the URL");
    }
}
