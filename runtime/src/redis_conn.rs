//! The one way the runtime connects to Redis (API key store, limit store): a lazily
//! connecting `ConnectionManager` that reconnects by itself, with every connect and
//! command bounded by the store's timeout.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A connection manager for `url`; `what` names the store in errors (`the limit store`).
/// Nothing connects yet, so a Redis that is down at start-up is not an error here. Errors
/// never quote the URL, which may hold a password.
pub(crate) fn connect(
    url: &str,
    timeout: Duration,
    what: &str,
) -> Result<ConnectionManager, String> {
    let client =
        redis::Client::open(url).map_err(|e| format!("{what}'s Redis URL is not valid: {e}"))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1));
    ConnectionManager::new_lazy_with_config(client, config)
        .map_err(|e| format!("cannot set up {what}'s Redis client: {e}"))
}

/// Whether Redis answers a PING within `timeout` (readiness); the error says why not.
pub(crate) async fn ping(conn: &ConnectionManager, timeout: Duration) -> Result<(), String> {
    let mut conn = conn.clone();
    let ping = redis::cmd("PING");
    match tokio::time::timeout(timeout, ping.query_async::<String>(&mut conn)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("Redis: {e}")),
        Err(_) => Err("Redis did not answer in time".to_owned()),
    }
}
