//! Security tier: the `secured` accepted spec served by a real gateway process, with a JWKS
//! server, a key store written by `gatewayc keys`, and a mock upstream, all on 127.0.0.1.
//!
//! The JWT cases are the fixtures' `tokens.json`, minted by an implementation independent
//! of this project; without the fixtures (`gatewayc_tests::material::jwt_fixtures`) these
//! tests say so and pass.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

use crate::support::{Gateway, Reply, TempDir, Upstream, gatewayc, new_key, send};
use gatewayc_tests::material::jwt_fixtures;

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A JWKS endpoint whose document (or failure) the test switches at will.
struct Jwks {
    url: String,
    body: Arc<Mutex<Option<String>>>,
    fetches: Arc<std::sync::atomic::AtomicUsize>,
}

impl Jwks {
    async fn start(body: String) -> Jwks {
        let (listener, addr) = crate::support::loopback().await;
        let current = Arc::new(Mutex::new(Some(body)));
        let fetches = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (serve, count) = (current.clone(), fetches.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (serve, count) = (serve.clone(), count.clone());
                tokio::spawn(async move {
                    let svc = service_fn(move |_req| {
                        count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let body = serve.lock().ok().and_then(|b| b.clone());
                        async move {
                            let resp = match body {
                                Some(b) => Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(b))),
                                None => Response::builder()
                                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                                    .body(Full::new(Bytes::from_static(b"down"))),
                            };
                            Ok::<_, std::convert::Infallible>(
                                resp.unwrap_or_else(|e| panic!("response: {e}")),
                            )
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Jwks {
            url: format!("http://{addr}/.well-known/jwks.json"),
            body: current,
            fetches,
        }
    }

    fn set(&self, body: Option<String>) {
        if let Ok(mut b) = self.body.lock() {
            *b = body;
        }
    }
}

struct Setup {
    /// The JWT fixtures' directory.
    fx: PathBuf,
    gw: Gateway,
    up: Upstream,
    jwks: Jwks,
    keys_file: PathBuf,
    _dir: TempDir,
}

/// The `security` gateway, its JWKS server (serving the fixtures' `jwks.json`), key store
/// and upstream; `None` without the JWT fixtures.
async fn setup(name: &str) -> Option<Setup> {
    setup_with(name, None).await
}

/// [`setup`], with `JWKS_URL` pointing at `jwks_url` instead of the JWKS server when given.
async fn setup_with(name: &str, jwks_url: Option<&str>) -> Option<Setup> {
    let fx = jwt_fixtures()?;
    let dir = TempDir::new(name);
    let keys_file = dir.0.join("keys.toml");
    new_key(&keys_file, "carol", "bronze");
    let up = Upstream::start().await;
    let jwks = Jwks::start(read(fx.join("jwks.json"))).await;
    let secret = read(fx.join("keys/hs256.secret"))
        .trim_end_matches('\n')
        .to_owned();
    let gw = Gateway::start(
        "security",
        &[
            ("BACKEND_URL", up.url()),
            (
                "JWKS_URL",
                jwks_url.map_or_else(|| jwks.url.clone(), str::to_owned),
            ),
            ("JWT_SECRET", secret),
            ("KEYS_FILE", keys_file.to_string_lossy().into_owned()),
        ],
    );
    Some(Setup {
        fx,
        gw,
        up,
        jwks,
        keys_file,
        _dir: dir,
    })
}

struct Case {
    name: String,
    token: String,
    expect: String,
}

/// The cases of the fixtures' `tokens.json`, in `fx`.
fn cases(fx: &std::path::Path) -> Vec<Case> {
    let v: serde_json::Value = serde_json::from_str(&read(fx.join("tokens.json")))
        .unwrap_or_else(|e| panic!("tokens.json: {e}"));
    v["cases"]
        .as_array()
        .unwrap_or_else(|| panic!("tokens.json has no cases"))
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap_or_default().to_owned(),
            token: c["token"].as_str().unwrap_or_default().to_owned(),
            expect: c["expect"].as_str().unwrap_or_default().to_owned(),
        })
        .collect()
}

async fn with_token(method: &str, gw: &Gateway, path: &str, token: &str) -> Reply {
    let auth = format!("Bearer {token}");
    send(method, &gw.url(path), &[("authorization", &auth)]).await
}

fn header<'r>(r: &'r Reply, name: &str) -> Vec<&'r str> {
    r.headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// Asserts a 401 problem with an RFC 6750 `invalid_token` challenge.
fn assert_invalid_token(r: &Reply, case: &str) {
    assert_eq!(r.status, 401, "{case}: {}", r.body);
    r.assert_problem(401);
    let challenges = header(r, "www-authenticate");
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("Bearer realm=\"secured\"")
                && c.contains("error=\"invalid_token\"")),
        "{case}: {challenges:?}"
    );
}

#[tokio::test]
async fn every_fixture_token_ends_as_its_case_says() {
    let Some(s) = setup("fixtures").await else {
        return;
    };
    let all = cases(&s.fx);
    assert_eq!(all.len(), 28, "tokens.json changed");
    let rotated = all
        .iter()
        .find(|c| c.name == "rs256-rotated-key")
        .unwrap_or_else(|| panic!("no rs256-rotated-key case"));
    let rejects: Vec<&Case> = all
        .iter()
        .filter(|c| c.expect.starts_with("reject"))
        .collect();

    for case in &all {
        let (name, token) = (case.name.as_str(), case.token.as_str());
        let get = with_token("GET", &s.gw, "/pets/1", token).await;
        match name {
            // jwks.json lists rsa-1 for RS256 only: the key's `alg` binds.
            "ps256-valid" => assert_invalid_token(&get, name),
            "rs256-rotated-key" => assert_invalid_token(&get, name),
            "rs256-no-scope" => {
                get.assert_problem(403);
                let me = with_token("GET", &s.gw, "/me", token).await;
                assert_eq!(me.status, 200, "{name} on /me: {}", me.body);
            }
            "rs256-read-only-scope" => {
                assert_eq!(get.status, 200, "{name}: {}", get.body);
                let del = with_token("DELETE", &s.gw, "/pets/1", token).await;
                del.assert_problem(403);
                let challenge = header(&del, "www-authenticate").join(" | ");
                assert!(
                    challenge.contains("error=\"insufficient_scope\"")
                        && challenge.contains("scope=\"pets:write\""),
                    "{challenge}"
                );
            }
            "oversized" => {
                assert!(
                    get.status == 401 || get.status == 431,
                    "{name}: {} {}",
                    get.status,
                    get.body
                );
            }
            _ if case.expect.starts_with("accept") => {
                assert_eq!(get.status, 200, "{name} ({}): {}", case.expect, get.body);
            }
            _ => {
                assert!(
                    case.expect.starts_with("reject"),
                    "unknown expectation {}",
                    case.expect
                );
                assert_invalid_token(&get, name);
            }
        }
        assert!(
            !get.body.contains(token) || token.is_empty(),
            "{name}: the token is echoed"
        );
    }

    // Rotation at the identity provider: rsa-1 is replaced by rsa-2. The gateway refetches
    // on the unknown kid (at most once a second) without a restart.
    s.jwks.set(Some(read(s.fx.join("jwks-rotated.json"))));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = with_token("GET", &s.gw, "/pets/1", &rotated.token).await;
    assert_eq!(
        r.status, 200,
        "rs256-rotated-key after rotation: {}",
        r.body
    );
    // The old key is gone, and tokens verified with it are no longer cached.
    let old = all
        .iter()
        .find(|c| c.name == "rs256-valid")
        .map(|c| c.token.as_str());
    let r = with_token("GET", &s.gw, "/pets/1", old.unwrap_or_default()).await;
    assert_invalid_token(&r, "rs256-valid after rotation");
    for case in &rejects {
        let r = with_token("GET", &s.gw, "/pets/1", &case.token).await;
        if case.name == "oversized" {
            assert!(r.status == 401 || r.status == 431, "{}", r.status);
        } else {
            assert_invalid_token(&r, &format!("{} after rotation", case.name));
        }
    }

    // The identity provider goes down: the keys already fetched keep working.
    s.jwks.set(None);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let unknown = all
        .iter()
        .find(|c| c.name == "unknown-kid")
        .map(|c| c.token.as_str());
    assert_invalid_token(
        &with_token("GET", &s.gw, "/pets/1", unknown.unwrap_or_default()).await,
        "unknown-kid while the IdP is down",
    );
    let r = with_token("GET", &s.gw, "/pets/1", &rotated.token).await;
    assert_eq!(r.status, 200, "stale keys must be kept: {}", r.body);

    // Unknown kids cannot make the gateway hammer the identity provider.
    let before = s.jwks.fetches.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..20 {
        with_token("GET", &s.gw, "/pets/1", unknown.unwrap_or_default()).await;
    }
    let after = s.jwks.fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        after - before <= 2,
        "{} JWKS fetches for 20 requests",
        after - before
    );

    // Nothing secret reaches the log.
    let log = s.gw.stderr.lock().map(|l| l.clone()).unwrap_or_default();
    for case in &all {
        let signature = case.token.rsplit('.').next().unwrap_or_default();
        assert!(
            signature.len() < 8 || !log.contains(signature),
            "{} appears in the log",
            case.name
        );
    }
    assert!(
        !log.contains("consumer-alice"),
        "a claim value appears in the log"
    );
}

#[tokio::test]
async fn challenges_follow_rfc_6750_and_problem_json() {
    let Some(s) = setup("challenges").await else {
        return;
    };
    let r = send("GET", &s.gw.url("/pets/1"), &[]).await;
    r.assert_problem(401);
    let challenges = header(&r, "www-authenticate");
    // One challenge per way in, none with an error code (no credential was sent).
    assert!(
        challenges.contains(&"Bearer realm=\"secured\""),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .any(|c| c.starts_with("ApiKey realm=\"secured\"") && c.contains("name=\"x-api-key\"")),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().all(|c| !c.contains("error=")),
        "{challenges:?}"
    );

    let r = send(
        "GET",
        &s.gw.url("/pets/1"),
        &[("authorization", "Basic YWxpY2U6c2VjcmV0")],
    )
    .await;
    r.assert_problem(401);
    let r = send(
        "GET",
        &s.gw.url("/pets/1"),
        &[("authorization", "Bearer not-a-jwt")],
    )
    .await;
    assert_invalid_token(&r, "garbage token");
    assert!(!r.body.contains("not-a-jwt"));
    // Both bearer schemes (RS256 from the JWKS, HS256) were tried with the token: each
    // one's challenge says what went wrong with it; the API key's has no error.
    let challenges = header(&r, "www-authenticate");
    let bearer: Vec<&&str> = challenges
        .iter()
        .filter(|c| c.starts_with("Bearer "))
        .collect();
    assert_eq!(bearer.len(), 2, "{challenges:?}");
    assert!(
        bearer.iter().all(|c| c.contains("error=\"invalid_token\"")),
        "{challenges:?}"
    );
    assert!(
        challenges
            .iter()
            .filter(|c| c.starts_with("ApiKey "))
            .all(|c| !c.contains("error=")),
        "{challenges:?}"
    );
    // Public operations need nothing; the upstream saw none of the rejected requests.
    assert_eq!(s.up.count(), 0);
    assert_eq!(send("GET", &s.gw.url("/pets"), &[]).await.status, 200);
    assert_eq!(s.up.count(), 1);
}

#[tokio::test]
async fn api_keys_come_from_the_key_store_and_reload_on_sighup() {
    let Some(s) = setup("keys").await else {
        return;
    };
    let key = new_key(&s.keys_file, "dave", "gold");
    // The store was read at start-up, before this key existed.
    let r = send("GET", &s.gw.url("/pets/1"), &[("x-api-key", &key)]).await;
    r.assert_problem(401);

    // SIGHUP reloads the file while requests keep flowing; none of them fails.
    let url = s.gw.url("/pets");
    let traffic = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..200 {
            statuses.push(send("GET", &url, &[]).await.status.as_u16());
        }
        statuses
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    s.gw.signal(libc::SIGHUP);
    let statuses = traffic.await.unwrap_or_else(|e| panic!("traffic: {e}"));
    assert!(statuses.iter().all(|&c| c == 200), "{statuses:?}");
    let mut accepted = false;
    for _ in 0..50 {
        let r = send("GET", &s.gw.url("/pets/1"), &[("x-api-key", &key)]).await;
        if r.status == 200 {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(accepted, "the key was not accepted after SIGHUP");

    // In the query, for schemes that say so; a wrong secret with a real id is refused.
    let r = send("GET", &s.gw.url(&format!("/by-query?api_key={key}")), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let forged = format!("{}x", &key[..key.len() - 1]);
    let r = send("GET", &s.gw.url("/pets/1"), &[("x-api-key", &forged)]).await;
    r.assert_problem(401);

    // AND: /both needs a token and a key.
    let fx = cases(&s.fx);
    let token = fx
        .iter()
        .find(|c| c.name == "rs256-valid")
        .map(|c| c.token.clone())
        .unwrap_or_default();
    let bearer = format!("Bearer {token}");
    let only_token = send("GET", &s.gw.url("/both"), &[("authorization", &bearer)]).await;
    only_token.assert_problem(401);
    let only_key = send("GET", &s.gw.url("/both"), &[("x-api-key", &key)]).await;
    only_key.assert_problem(401);
    let both = send(
        "GET",
        &s.gw.url("/both"),
        &[("authorization", &bearer), ("x-api-key", &key)],
    )
    .await;
    assert_eq!(both.status, 200, "{}", both.body);

    // Revoked with the CLI, and gone after the next SIGHUP.
    let id = key.split('_').nth(1).unwrap_or_default().to_owned();
    let f = s.keys_file.to_string_lossy().into_owned();
    let out = gatewayc(&["keys", "revoke", &id, "--file", &f]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = gatewayc(&["keys", "list", "--file", &f]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains(&id) && listed.contains("revoked"),
        "{listed}"
    );
    assert!(!listed.contains(&key), "keys list shows a key");
    s.gw.signal(libc::SIGHUP);
    let mut refused = false;
    for _ in 0..50 {
        let r = send("GET", &s.gw.url("/pets/1"), &[("x-api-key", &key)]).await;
        if r.status == 401 {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "a revoked key was still accepted after SIGHUP");
    let stored = std::fs::read_to_string(&s.keys_file).unwrap_or_default();
    assert!(!stored.contains(&key), "the key store holds a key in clear");
}

#[tokio::test]
async fn forwarded_claims_replace_what_the_client_sent() {
    let Some(s) = setup("claims").await else {
        return;
    };
    let token = cases(&s.fx)
        .into_iter()
        .find(|c| c.name == "rs256-valid")
        .map(|c| c.token)
        .unwrap_or_default();
    let bearer = format!("Bearer {token}");
    let r = send(
        "GET",
        &s.gw.url("/me"),
        &[
            ("authorization", &bearer),
            ("x-user-id", "mallory"),
            ("x-tenant", "evil"),
            // `Connection` naming them must not remove what the gateway sets.
            ("connection", "keep-alive, x-user-id, x-tenant"),
        ],
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let seen = s.up.last();
    let values = |n: &str| -> Vec<String> {
        seen.headers
            .get_all(n)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    };
    assert_eq!(values("x-user-id"), ["consumer-alice"]);
    assert_eq!(values("x-tenant"), ["acme"]);
    // On a public operation the client's copies are removed all the same.
    send("GET", &s.gw.url("/pets"), &[("x-user-id", "mallory")]).await;
    assert!(s.up.last().headers.get("x-user-id").is_none());
}

#[tokio::test]
async fn cors_preflight_is_answered_by_the_gateway() {
    let Some(s) = setup("cors").await else {
        return;
    };
    let origin = "https://app.example.test";
    let pre = send(
        "OPTIONS",
        &s.gw.url("/pets/1"),
        &[
            ("origin", origin),
            ("access-control-request-method", "DELETE"),
            (
                "access-control-request-headers",
                "Authorization, Content-Type",
            ),
        ],
    )
    .await;
    assert_eq!(pre.status, 204, "{}", pre.body);
    let h = |r: &Reply, n: &str| header(r, n).join(", ");
    assert_eq!(h(&pre, "access-control-allow-origin"), origin);
    assert_eq!(h(&pre, "access-control-allow-credentials"), "true");
    assert_eq!(h(&pre, "access-control-allow-methods"), "DELETE");
    assert_eq!(
        h(&pre, "access-control-allow-headers"),
        "authorization, content-type"
    );
    assert_eq!(h(&pre, "access-control-max-age"), "600");
    assert_eq!(s.up.count(), 0, "a preflight reached the upstream");

    // Another origin, a method the path does not have, a header not allowed.
    let other = send(
        "OPTIONS",
        &s.gw.url("/pets/1"),
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    other.assert_problem(403);
    assert!(other.headers.get("access-control-allow-origin").is_none());
    let put = send(
        "OPTIONS",
        &s.gw.url("/pets/1"),
        &[("origin", origin), ("access-control-request-method", "PUT")],
    )
    .await;
    put.assert_problem(403);
    let hdr = send(
        "OPTIONS",
        &s.gw.url("/pets/1"),
        &[
            ("origin", origin),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-secret-admin"),
        ],
    )
    .await;
    hdr.assert_problem(403);

    // Actual requests: allowed origins get the headers, errors included.
    let ok = send("GET", &s.gw.url("/pets"), &[("origin", origin)]).await;
    assert_eq!(h(&ok, "access-control-allow-origin"), origin);
    assert_eq!(h(&ok, "access-control-expose-headers"), "x-request-id");
    let denied = send("GET", &s.gw.url("/pets/1"), &[("origin", origin)]).await;
    denied.assert_problem(401);
    assert_eq!(h(&denied, "access-control-allow-origin"), origin);
    let foreign = send(
        "GET",
        &s.gw.url("/pets"),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert!(foreign.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_token_is_a_503_not_a_401_while_the_identity_provider_never_answered() {
    // Nothing listens there: the JWKS was never loaded.
    let Some(s) = setup_with("security-idp-down", Some("http://127.0.0.1:9/jwks.json")).await
    else {
        return;
    };
    let (gw, up) = (&s.gw, &s.up);
    let token = cases(&s.fx)
        .into_iter()
        .find(|c| c.name == "rs256-valid")
        .map(|c| c.token)
        .unwrap_or_default();
    let auth = format!("Bearer {token}");
    let r = send(
        "GET",
        &gw.url("/pets/1"),
        &[("authorization", &auth), ("x-request-id", "idp-down-1")],
    )
    .await;
    r.assert_problem(503);
    assert_eq!(header(&r, "retry-after"), ["1"]);
    assert_eq!(up.count(), 0, "the request reached the upstream");
    let line = gw.access_line("idp-down-1").await;
    assert_eq!(line["error.type"], "keys_unavailable", "{line}");
    // A request without any credential is still the client's 401.
    send("GET", &gw.url("/pets/1"), &[])
        .await
        .assert_problem(401);
}
