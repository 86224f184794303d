//! JWT verification on any token text, with an HS256 scheme: accepted or a `JwtError`,
//! never a panic (header, payload and signature parsing, claim checks).
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use gatewayc_runtime::auth::jwt::JwtVerifier;
use gatewayc_runtime::{JwtDef, KeySource};

static DEF: JwtDef = JwtDef {
    keys: KeySource::Secret("${FUZZ_SECRET}"),
    algorithms: &["HS256"],
    issuer: Some("https://id.example.test/"),
    audience: &["fuzz"],
    require_exp: true,
    leeway: Duration::from_secs(30),
    consumer_claim: "sub",
    plan_claim: Some("plan"),
    forward_claims: &[("sub", "x-consumer-id")],
};

fn verifier() -> &'static (JwtVerifier, tokio::runtime::Runtime) {
    static V: OnceLock<(JwtVerifier, tokio::runtime::Runtime)> = OnceLock::new();
    V.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let lookup = |name: &str| (name == "FUZZ_SECRET").then(|| "a secret for fuzzing only".to_owned());
        let v = rt
            .block_on(async { JwtVerifier::new("fuzz", &DEF, &lookup) })
            .unwrap_or_else(|e| panic!("{e}"));
        (v, rt)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let (v, rt) = verifier();
    let _ = rt.block_on(v.verify(token));
});
