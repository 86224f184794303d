//! Run tier: TLS on the public listener (`GATEWAY_TLS_*`), against a real gateway process,
//! with certificates made here (a test CA, a server certificate for `localhost` and
//! 127.0.0.1, client certificates) and clients nobody here wrote: curl (OpenSSL) and
//! Python's `ssl` module.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, SanType};
use sha2::Digest as _;

use crate::support::{Gateway, TempDir, Upstream};

/// A test CA and what it signed, as PEM files in a directory of their own.
struct Pki {
    dir: TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new())
            .unwrap_or_else(|e| panic!("CA params: {e}"));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "gatewayc test CA");
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("CA key: {e}"));
        let ca = CertifiedIssuer::self_signed(params, key).unwrap_or_else(|e| panic!("CA: {e}"));
        let pki = Pki {
            dir: TempDir::new(name),
            ca,
        };
        pki.write("ca.pem", &pki.ca.pem());
        pki
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.0.join(file)
    }

    fn write(&self, file: &str, text: &str) {
        std::fs::write(self.path(file), text).unwrap_or_else(|e| panic!("{file}: {e}"));
    }

    /// A certificate with common name `cn` and these names, signed by the CA, written to
    /// `<stem>.pem` and `<stem>.key`; returns its DER.
    fn issue(&self, stem: &str, cn: &str, sans: Vec<SanType>) -> Vec<u8> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).unwrap_or_else(|e| panic!("{e}"));
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        let key = KeyPair::generate().unwrap_or_else(|e| panic!("key: {e}"));
        let cert = params
            .signed_by(&key, &self.ca)
            .unwrap_or_else(|e| panic!("sign {cn}: {e}"));
        self.write(&format!("{stem}.pem"), &cert.pem());
        self.write(&format!("{stem}.key"), &key.serialize_pem());
        cert.der().to_vec()
    }

    /// The server certificate: `localhost` and 127.0.0.1.
    fn server(&self, stem: &str, cn: &str) {
        self.issue(
            stem,
            cn,
            vec![
                SanType::DnsName(
                    "localhost"
                        .try_into()
                        .unwrap_or_else(|e| panic!("dns: {e}")),
                ),
                SanType::IpAddress([127, 0, 0, 1].into()),
            ],
        );
    }
}

/// Environment for a gateway serving TLS with `<stem>.pem` and `<stem>.key`.
fn tls_env(pki: &Pki, stem: &str, up: &Upstream) -> Vec<(&'static str, String)> {
    vec![
        ("BACKEND_URL", up.url()),
        (
            "GATEWAY_TLS_CERT",
            pki.path(&format!("{stem}.pem")).display().to_string(),
        ),
        (
            "GATEWAY_TLS_KEY",
            pki.path(&format!("{stem}.key")).display().to_string(),
        ),
    ]
}

/// Runs a command off the test's runtime (the mock upstream runs on it) and returns its
/// exit status success, stdout and stderr.
async fn run(program: &str, args: Vec<String>) -> (bool, String, String) {
    let program = program.to_owned();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(&program)
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// `curl` on `https://localhost:PORT{path}` trusting the test CA; prints the status and
/// the HTTP version it used.
async fn curl(gw: &Gateway, pki: &Pki, path: &str, extra: &[&str]) -> (bool, String, String) {
    let port = gw.addr.port();
    let mut args: Vec<String> = vec![
        "-sS".into(),
        "-o".into(),
        "/dev/null".into(),
        "-w".into(),
        "%{http_code} %{http_version}".into(),
        "--cacert".into(),
        pki.path("ca.pem").display().to_string(),
        "--resolve".into(),
        format!("localhost:{port}:127.0.0.1"),
        format!("https://localhost:{port}{path}"),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    run("curl", args).await
}

/// A Python `ssl` client: connects to the gateway trusting the test CA, with TLS versions
/// between `min` and `max` (names of `ssl.TLSVersion`), sends GET `path` and prints the
/// negotiated version, the server certificate's common name and the status; or `ERROR`
/// and the exception.
async fn python(gw: &Gateway, ca: &Path, min: &str, max: &str, path: &str) -> String {
    let script = format!(
        r#"
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile={ca:?})
ctx.minimum_version = ssl.TLSVersion.{min}
ctx.maximum_version = ssl.TLSVersion.{max}
try:
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
except ssl.SSLError:
    pass
c = http.client.HTTPSConnection("localhost", {port}, context=ctx, timeout=5)
try:
    c.request("GET", {path:?})
    r = c.getresponse()
    r.read()
    cn = dict(x[0] for x in c.sock.getpeercert()["subject"])["commonName"]
    print(c.sock.version(), cn, r.status)
except Exception as e:
    print("ERROR", type(e).__name__, e)
"#,
        ca = ca.display().to_string(),
        port = gw.addr.port(),
    );
    let (_, out, err) = run("python3", vec!["-c".into(), script]).await;
    format!("{}{}", out.trim(), err.trim())
}

#[tokio::test]
async fn curl_and_python_are_served_over_tls_1_2_and_1_3_with_http1_and_http2() {
    let pki = Pki::new("tls-basic");
    pki.server("server", "gateway-one");
    let up = Upstream::start().await;
    let gw = Gateway::start("proxy", &tls_env(&pki, "server", &up));
    let announced = crate::support::poll(std::time::Duration::from_secs(2), || {
        gw.stderr_text()
            .contains("listening on https://")
            .then_some(())
    })
    .await;
    assert!(announced.is_some(), "{}", gw.stderr_text());

    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (ok, out, err) = curl(&gw, &pki, "/items/7", &[flag]).await;
        assert!(ok, "curl {flag}: {err}");
        assert_eq!(out, format!("200 {version}"), "curl {flag}");
    }
    let seen = up.last();
    assert_eq!(seen.path_and_query, "/v2/items/7");
    assert_eq!(
        seen.headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok()),
        Some("https")
    );

    let ca = pki.path("ca.pem");
    let tls13 = python(&gw, &ca, "TLSv1_3", "TLSv1_3", "/items/1").await;
    assert_eq!(tls13, "TLSv1.3 gateway-one 200");
    let tls12 = python(&gw, &ca, "TLSv1_2", "TLSv1_2", "/items/1").await;
    assert_eq!(tls12, "TLSv1.2 gateway-one 200");
    // Older versions are refused in the handshake.
    let tls11 = python(&gw, &ca, "TLSv1", "TLSv1_1", "/items/1").await;
    assert!(tls11.starts_with("ERROR SSLError"), "{tls11}");
    // Plain HTTP on the TLS port gets no answer.
    let (ok, _, _) = run(
        "curl",
        vec![
            "-sS".into(),
            "--max-time".into(),
            "3".into(),
            format!("http://127.0.0.1:{}/items/1", gw.addr.port()),
        ],
    )
    .await;
    assert!(!ok, "plain HTTP was answered on the TLS port");
}

#[tokio::test]
async fn client_certificates_are_verified_and_described_to_the_upstream() {
    let pki = Pki::new("tls-clients");
    pki.server("server", "gateway");
    let alice = pki.issue(
        "alice",
        "client-alice",
        vec![
            SanType::DnsName(
                "alice.example.test"
                    .try_into()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
            SanType::URI(
                "spiffe://example.test/alice"
                    .try_into()
                    .unwrap_or_else(|e| panic!("{e}")),
            ),
        ],
    );
    // A certificate from a CA the gateway does not trust.
    let stranger = Pki::new("tls-stranger");
    stranger.issue("mallory", "mallory", vec![]);

    let up = Upstream::start().await;
    let mut env = tls_env(&pki, "server", &up);
    env.push((
        "GATEWAY_TLS_CLIENT_CA",
        pki.path("ca.pem").display().to_string(),
    ));
    let gw = Gateway::start("proxy", &env);
    let cert_args = |p: &Pki, stem: &str| {
        vec![
            "--cert".to_owned(),
            p.path(&format!("{stem}.pem")).display().to_string(),
            "--key".to_owned(),
            p.path(&format!("{stem}.key")).display().to_string(),
        ]
    };

    // Required: without a certificate, or with one from another CA, no request gets in.
    let before = up.count();
    let (ok, out, _) = curl(&gw, &pki, "/items/1", &[]).await;
    assert!(!ok || out.starts_with("000"), "no certificate: {out}");
    let mallory = cert_args(&stranger, "mallory");
    let refs: Vec<&str> = mallory.iter().map(String::as_str).collect();
    let (ok, out, _) = curl(&gw, &pki, "/items/1", &refs).await;
    assert!(
        !ok || out.starts_with("000"),
        "untrusted certificate: {out}"
    );
    assert_eq!(up.count(), before, "a request reached the upstream");

    // With Alice's certificate: served, and the upstream is told who she is.
    let args = cert_args(&pki, "alice");
    let mut refs: Vec<&str> = args.iter().map(String::as_str).collect();
    refs.extend([
        "-H",
        "X-Forwarded-Client-Cert: Hash=forged;Subject=\"CN=admin\"",
    ]);
    let (ok, out, err) = curl(&gw, &pki, "/items/1", &refs).await;
    assert!(ok, "{err}");
    assert_eq!(out, "200 2");
    let seen = up.last();
    let xfcc: Vec<&str> = seen
        .headers
        .get_all("x-forwarded-client-cert")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let hash: String = sha2::Sha256::digest(&alice)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        xfcc,
        [format!(
            "Hash={hash};Subject=\"CN=client-alice\";DNS=alice.example.test;URI=spiffe://example.test/alice"
        )]
    );
}

#[tokio::test]
async fn a_forged_client_certificate_header_never_reaches_the_upstream() {
    let pki = Pki::new("tls-optional");
    pki.server("server", "gateway");
    let up = Upstream::start().await;
    let mut env = tls_env(&pki, "server", &up);
    env.push((
        "GATEWAY_TLS_CLIENT_CA",
        pki.path("ca.pem").display().to_string(),
    ));
    env.push(("GATEWAY_TLS_CLIENT_AUTH", "optional".to_owned()));
    let gw = Gateway::start("proxy", &env);
    // Optional: a client without a certificate is served, and what it claims is dropped.
    let (ok, out, err) = curl(
        &gw,
        &pki,
        "/items/1",
        &[
            "-H",
            "X-Forwarded-Client-Cert: Hash=forged;Subject=\"CN=admin\"",
        ],
    )
    .await;
    assert!(ok, "{err}");
    assert_eq!(out, "200 2");
    assert!(
        up.last().headers.get("x-forwarded-client-cert").is_none(),
        "{:?}",
        up.last().headers
    );
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let pki = Pki::new("tls-reload");
    pki.server("server", "first");
    let up = Upstream::start().await;
    let gw = Gateway::start("proxy", &tls_env(&pki, "server", &up));
    let ca = pki.path("ca.pem");
    assert_eq!(
        python(&gw, &ca, "TLSv1_2", "TLSv1_3", "/items/1").await,
        "TLSv1.3 first 200"
    );

    // A connection opened before the reload: one request before, one after.
    let script = format!(
        r#"
import http.client, ssl, sys, time
ctx = ssl.create_default_context(cafile={ca:?})
c = http.client.HTTPSConnection("localhost", {port}, context=ctx, timeout=5)
c.request("GET", "/items/1"); r = c.getresponse(); r.read(); print(r.status, flush=True)
sys.stdin.readline()
c.request("GET", "/items/2"); r = c.getresponse(); r.read(); print(r.status, flush=True)
"#,
        ca = ca.display().to_string(),
        port = gw.addr.port(),
    );
    let mut held = Command::new("python3")
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    // Lines the client prints, read on a thread of their own: the mock upstream runs on
    // this test's runtime, which must not block.
    let stdout = held.stdout.take().unwrap_or_else(|| panic!("stdout"));
    let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    assert_eq!(next_line(&mut lines).await, "200");

    // A broken key: the reload fails, is logged, and the old certificate stays.
    pki.write("server.key", "not a key");
    gw.signal(libc::SIGHUP);
    let failed = crate::support::poll(std::time::Duration::from_secs(5), || {
        gw.stderr_text().contains("TLS reload failed").then_some(())
    })
    .await;
    assert!(failed.is_some(), "{}", gw.stderr_text());
    assert_eq!(
        python(&gw, &ca, "TLSv1_2", "TLSv1_3", "/items/1").await,
        "TLSv1.3 first 200"
    );

    // A new certificate: new handshakes get it.
    pki.server("server", "second");
    gw.signal(libc::SIGHUP);
    let reloaded = crate::support::poll(std::time::Duration::from_secs(5), || {
        gw.stderr_text()
            .contains("TLS certificate and key reloaded")
            .then_some(())
    })
    .await;
    assert!(reloaded.is_some(), "{}", gw.stderr_text());
    assert_eq!(
        python(&gw, &ca, "TLSv1_2", "TLSv1_3", "/items/1").await,
        "TLSv1.3 second 200"
    );

    // The connection from before the reloads is still served.
    if let Some(stdin) = held.stdin.as_mut() {
        std::io::Write::write_all(stdin, b"\n").unwrap_or_else(|e| panic!("{e}"));
    }
    assert_eq!(next_line(&mut lines).await, "200");
    let _ = held.wait();
}

/// The next line a client printed, or nothing after 10 s.
async fn next_line(lines: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(10), lines.recv())
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

#[tokio::test]
async fn tls_settings_that_cannot_work_stop_the_gateway_with_the_file_named() {
    let pki = Pki::new("tls-bad");
    pki.server("server", "gateway");
    pki.server("other", "other");
    /// What is wrong, the environment, and what stderr must say.
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    // A variable naming one of the test's files.
    let file = |name, stem: &str| (name, pki.path(stem).display().to_string());
    let cases: [Case<'_>; 3] = [
        (
            "a missing key file",
            vec![
                file("GATEWAY_TLS_CERT", "server.pem"),
                file("GATEWAY_TLS_KEY", "nope.key"),
            ],
            "nope.key",
        ),
        (
            "a key of another certificate",
            vec![
                file("GATEWAY_TLS_CERT", "server.pem"),
                file("GATEWAY_TLS_KEY", "other.key"),
            ],
            "server.pem",
        ),
        (
            "a certificate without its key",
            vec![file("GATEWAY_TLS_CERT", "server.pem")],
            "GATEWAY_TLS_KEY is not",
        ),
    ];
    for (what, env, expect) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_test-gateway"))
            .arg("proxy")
            .env("GATEWAY_LISTEN", "127.0.0.1:0")
            .env("BACKEND_URL", "http://127.0.0.1:9")
            .envs(env)
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains(expect), "{what}: {stderr}");
        assert!(!stderr.contains("listening on"), "{what}: {stderr}");
    }
}

/// An HTTPS upstream on 127.0.0.1 with the certificate `<stem>.pem` of `pki`, requiring a
/// client certificate from `pki`'s CA; every answer says whether a client certificate
/// was shown: `{"client_cert": true}`.
async fn mutual_tls_upstream(pki: &Pki, stem: &str) -> std::net::SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(pki.path(&format!("{stem}.pem")))
            .unwrap_or_else(|e| panic!("{e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
    let key = PrivateKeyDer::from_pem_file(pki.path(&format!("{stem}.key")))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(pki.path("ca.pem")).unwrap_or_else(|e| panic!("{e}")) {
        roots
            .add(ca.unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider.clone())
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|e| panic!("{e}"))
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap_or_else(|e| panic!("{e}"));
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let (listener, addr) = crate::support::loopback().await;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let shown = tls.get_ref().1.peer_certificates().is_some();
                let svc = hyper::service::service_fn(move |_req| async move {
                    let body = format!("{{\"client_cert\": {shown}}}");
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from(body)),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_https_upstream_is_verified_against_its_ca_and_given_the_client_certificate() {
    let pki = Pki::new("tls-upstream");
    pki.server("upstream", "upstream");
    pki.issue("gateway", "gateway-client", vec![]);
    let stranger = Pki::new("tls-upstream-stranger");
    stranger.issue("gateway", "not-trusted", vec![]);
    let addr = mutual_tls_upstream(&pki, "upstream").await;
    let env = |ca: &Pki, client: &Pki| {
        vec![
            (
                "SECURE_UPSTREAM_URL",
                format!("https://localhost:{}", addr.port()),
            ),
            ("UPSTREAM_CA", ca.path("ca.pem").display().to_string()),
            (
                "GATEWAY_CLIENT_CERT",
                client.path("gateway.pem").display().to_string(),
            ),
            (
                "GATEWAY_CLIENT_KEY",
                client.path("gateway.key").display().to_string(),
            ),
        ]
    };

    let gw = Gateway::start("upstream-tls", &env(&pki, &pki));
    let r = crate::support::get(&gw.url("/whoami")).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.body);
    assert_eq!(r.json()["client_cert"], true);

    // A client certificate the upstream does not trust: the handshake fails, 502.
    let gw = Gateway::start("upstream-tls", &env(&pki, &stranger));
    crate::support::get(&gw.url("/whoami"))
        .await
        .assert_problem(502);

    // The upstream's certificate checked against another CA: 502, nothing sent.
    let gw = Gateway::start("upstream-tls", &env(&stranger, &pki));
    crate::support::get(&gw.url("/whoami"))
        .await
        .assert_problem(502);

    // A missing file stops the gateway at start, naming the upstream and the file.
    let mut missing = env(&pki, &pki);
    missing[1].1 = pki.path("nope.pem").display().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_test-gateway"))
        .arg("upstream-tls")
        .env("GATEWAY_LISTEN", "127.0.0.1:0")
        .envs(missing)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("upstream `backend` tls") && stderr.contains("nope.pem"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_mutual_tls_scheme_admits_a_verified_certificate_and_names_its_consumer() {
    let pki = Pki::new("tls-mtls-scheme");
    pki.server("server", "gateway");
    pki.issue("robot", "build-robot", vec![]);
    let up = Upstream::start().await;
    let mut env = tls_env(&pki, "server", &up);
    env.push((
        "GATEWAY_TLS_CLIENT_CA",
        pki.path("ca.pem").display().to_string(),
    ));
    env.push(("GATEWAY_TLS_CLIENT_AUTH", "optional".to_owned()));
    let keys = pki.path("keys.toml");
    let key = crate::support::new_key(&keys, "partner", "basic");
    env.push(("CLIENT_KEYS", keys.display().to_string()));
    let gw = Gateway::start("client-certs", &env);
    let robot = [
        "--cert".to_owned(),
        pki.path("robot.pem").display().to_string(),
        "--key".to_owned(),
        pki.path("robot.key").display().to_string(),
    ];
    let robot: Vec<&str> = robot.iter().map(String::as_str).collect();
    let id = ["-H", "X-Request-Id: mtls-robot-1"];

    // Without a certificate: the public operation answers, the others say 401.
    let (ok, out, err) = curl(&gw, &pki, "/public", &[]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("200"), "{out}");
    for path in ["/machines", "/either"] {
        let (ok, out, err) = curl(&gw, &pki, path, &[]).await;
        assert!(ok, "{err}");
        assert!(out.starts_with("401"), "{path}: {out}");
    }
    // With the robot's certificate: served, counted as the consumer it names.
    let before = up.count();
    let mut args = robot.clone();
    args.extend(id);
    for path in ["/machines", "/either"] {
        let (ok, out, err) = curl(&gw, &pki, path, &args).await;
        assert!(ok, "{err}");
        assert!(out.starts_with("200"), "{path}: {out}");
    }
    assert_eq!(up.count(), before + 2);
    let line = gw.access_line("mtls-robot-1").await;
    assert_eq!(line["gateway.consumer"], "build-robot", "{line}");
    // The other alternative still works without a certificate.
    let header = format!("X-API-Key: {key}");
    let (ok, out, err) = curl(&gw, &pki, "/either", &["-H", &header]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("200"), "{out}");
    let (ok, out, err) = curl(&gw, &pki, "/machines", &["-H", &header]).await;
    assert!(ok, "{err}");
    assert!(out.starts_with("401"), "{out}");
}
