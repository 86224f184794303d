//! What a gateway needs from where it runs, read from the [`Model`]: the environment
//! variables its `${VAR}` references name, the files it reads at start-up, and the
//! services it calls.
//!
//! A gateway reports every missing variable in one message, but it reads its files only
//! once its variables are set, so an operator who learns from failed starts learns in
//! rounds. `gatewayc check` prints this list instead ([`Needs::render_human`], and as data
//! in its JSON and SARIF output), so that all of it is known before the first start.
//!
//! Like [`crate::deploy`], this is a pure function of the model. Which variables there are
//! and what they hold is [`crate::deploy::variables`]'s decision, made once for both.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gatewayc_vocab::env::{self, Piece};
use serde::Serialize;

use crate::deploy::{self, Kind};
use crate::model::{ConsumerStore, KeySource, LimitStore, Model, SchemeKind};

/// Everything a gateway needs from its environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Needs {
    /// Environment variables, sorted by name.
    pub variables: Vec<Variable>,
    /// Files read at start-up, sorted by path: a missing or unreadable one stops the
    /// gateway.
    pub files: Vec<File>,
    /// Services called, sorted by URL.
    pub services: Vec<Service>,
}

/// An environment variable the gateway reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// `true` when some use has no default: it must be set (and not empty).
    pub required: bool,
    /// The default the spec gives (`${VAR:-default}`), the first one when it gives several.
    pub default: Option<String>,
    /// What it holds: `config` (plain configuration, a URL), `file` (the path of a file the
    /// gateway reads) or `secret` (a credential, or something that may carry one).
    pub kind: &'static str,
    /// What uses it (`upstream \`pets\``, ...), in model order.
    pub uses: Vec<String>,
}

/// A file the gateway reads at start-up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct File {
    /// Its path as the spec writes it, `${VAR}` references included; a relative path is
    /// relative to the gateway's working directory.
    pub path: String,
    /// What it is for.
    pub uses: Vec<String>,
}

/// A service the gateway calls besides its upstreams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Its URL as the spec writes it, `${VAR}` references included; a password written in
    /// it is shown as `***`.
    pub url: String,
    /// `start-up`: called before the gateway is ready (it starts without an answer, but
    /// `/readyz` fails until one comes); `first-use`: called when a request needs it.
    pub when: &'static str,
    /// What it is for.
    pub uses: Vec<String>,
}

/// The variables a gateway terminating TLS reads (docs/phases.md#settings), needed when an
/// operation accepts a client certificate (`mutualTLS`).
const TLS_VARIABLES: [(&str, &str); 3] = [
    ("GATEWAY_TLS_CERT", "the gateway's TLS certificate chain"),
    ("GATEWAY_TLS_KEY", "the gateway's TLS private key"),
    (
        "GATEWAY_TLS_CLIENT_CA",
        "the CA client certificates are verified against",
    ),
];

/// What `model`'s gateway needs from its environment.
pub fn needs(model: &Model) -> Needs {
    let mut variables: Vec<Variable> = deploy::variables(model)
        .into_iter()
        .map(|v| Variable {
            name: v.name,
            required: v.required,
            default: v.default,
            kind: kind_name(v.kind),
            uses: v.uses,
        })
        .collect();
    let mut files = Uses::default();
    let mut services = BTreeMap::<String, Service>::new();
    let mut service = |url: &str, when: &'static str, what: String| {
        let s = services
            .entry(redact(url))
            .or_insert_with_key(|url| Service {
                url: url.clone(),
                when,
                uses: Vec::new(),
            });
        // A service one use calls at start-up is called at start-up.
        if when == "start-up" {
            s.when = when;
        }
        if !s.uses.contains(&what) {
            s.uses.push(what);
        }
    };

    for up in model.upstreams.values() {
        for (path, role) in deploy::upstream_tls_files(up) {
            files.add(path, format!("upstream `{}`: {role}", up.name));
        }
    }
    let mut mutual_tls = Vec::new();
    for scheme in &model.schemes {
        match &scheme.kind {
            SchemeKind::Jwt(jwt) => {
                let what = |role: &str| format!("JWT scheme `{}`: {role}", scheme.name);
                match &jwt.keys {
                    KeySource::PemFile(path) => files.add(path, what("public key file")),
                    KeySource::JwksUrl(url) => service(url, "start-up", what("JWKS")),
                    KeySource::Discovery(url) => {
                        service(url, "start-up", what("OpenID discovery document"));
                    }
                    KeySource::Secret(_) => {}
                }
            }
            SchemeKind::MutualTls => mutual_tls.push(scheme.name.as_str()),
            SchemeKind::ApiKey { .. } => {}
        }
    }
    match &model.consumers {
        Some(ConsumerStore::File(path)) => files.add(path, "API key file".to_owned()),
        Some(ConsumerStore::Redis(url)) => {
            service(url, "first-use", "API key store (Redis)".to_owned());
        }
        None => {}
    }
    if let Some(limits) = &model.limits
        && let LimitStore::Redis { url, .. } = &limits.store
    {
        service(url, "first-use", "limit store (Redis)".to_owned());
    }
    if !mutual_tls.is_empty() {
        let schemes = mutual_tls
            .iter()
            .map(|s| format!("`{s}`"))
            .collect::<Vec<_>>()
            .join(", ");
        for (name, role) in TLS_VARIABLES {
            let what = format!("mutualTLS scheme {schemes}: {role}");
            files.add(&format!("${{{name}}}"), what.clone());
            match variables.iter_mut().find(|v| v.name == name) {
                Some(v) => {
                    v.required = true;
                    v.kind = kind_name(Kind::File.max(kind_of(v.kind)));
                    v.uses.push(what);
                }
                None => variables.push(Variable {
                    name: name.to_owned(),
                    required: true,
                    default: None,
                    kind: kind_name(Kind::File),
                    uses: vec![what],
                }),
            }
        }
        variables.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Needs {
        variables,
        files: files
            .0
            .into_iter()
            .map(|(path, uses)| File { path, uses })
            .collect(),
        services: services.into_values().collect(),
    }
}

/// Uses by path, in the order found.
#[derive(Default)]
struct Uses(BTreeMap<String, Vec<String>>);

impl Uses {
    fn add(&mut self, path: &str, what: String) {
        let uses = self.0.entry(path.to_owned()).or_default();
        if !uses.contains(&what) {
            uses.push(what);
        }
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Config => "config",
        Kind::File => "file",
        Kind::Secret => "secret",
    }
}

fn kind_of(name: &str) -> Kind {
    match name {
        "file" => Kind::File,
        "secret" => Kind::Secret,
        _ => Kind::Config,
    }
}

/// `url` with any password written in it replaced by `***`: what a check prints may end
/// up in a CI log. User information made only of `${VAR}` references is kept (it names
/// variables, not values).
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let (userinfo, host) = authority.split_at(at);
    let only_references = env::pieces(userinfo).all(|p| match p {
        Piece::Ref { .. } => true,
        Piece::Text(t) => t == ":",
        Piece::Unclosed(_) => false,
    });
    if only_references {
        return url.to_owned();
    }
    let shown = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:***"),
        None => "***".to_owned(),
    };
    format!("{scheme}://{shown}{host}{tail}")
}

impl Needs {
    /// Whether the gateway needs nothing at all from its environment.
    pub fn is_empty(&self) -> bool {
        self.variables.is_empty() && self.files.is_empty() && self.services.is_empty()
    }

    /// The section `gatewayc check` prints after its summary; empty when nothing is
    /// needed.
    pub fn render_human(&self) -> String {
        let mut out = String::new();
        if self.is_empty() {
            return out;
        }
        out.push_str("the gateway will need:\n");
        let (required, optional): (Vec<&Variable>, Vec<&Variable>) =
            self.variables.iter().partition(|v| v.required);
        let describe = |v: &Variable| {
            let mut text = v.uses.join("; ");
            match v.kind {
                "file" => text.push_str(" (a file path)"),
                "secret" => text.push_str(" (a secret)"),
                _ => {}
            }
            if let Some(d) = &v.default {
                if d.is_empty() {
                    text.push_str(" [default: \"\"]");
                } else {
                    let _ = write!(text, " [default: {d}]");
                }
            }
            text
        };
        table(
            &mut out,
            "environment variables that must be set",
            required.iter().map(|v| (v.name.clone(), describe(v))),
        );
        table(
            &mut out,
            "environment variables with a default",
            optional.iter().map(|v| (v.name.clone(), describe(v))),
        );
        table(
            &mut out,
            "files, read at start-up (a missing one stops the gateway)",
            self.files
                .iter()
                .map(|f| (f.path.clone(), f.uses.join("; "))),
        );
        table(
            &mut out,
            "services",
            self.services.iter().map(|s| {
                let when = if s.when == "start-up" {
                    "called at start-up (ready once it answers)"
                } else {
                    "called when a request needs it"
                };
                (s.url.clone(), format!("{}, {when}", s.uses.join("; ")))
            }),
        );
        out
    }
}

/// `title:` and one aligned line per row; nothing when there are no rows.
fn table(out: &mut String, title: &str, rows: impl Iterator<Item = (String, String)>) {
    let rows: Vec<(String, String)> = rows.collect();
    if rows.is_empty() {
        return;
    }
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let _ = writeln!(out, "  {title}:");
    for (key, text) in rows {
        let _ = writeln!(out, "    {key:<width$}  {text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::lower::test_model as model;

    /// Something of every kind: a variable upstream URL, an upstream with TLS files, a PEM
    /// key file and a JWKS URL, a key file, a Redis limit store with a password, a
    /// transform value with a default, and a `mutualTLS` scheme.
    const SPEC: &str = r#"
openapi: 3.1.0
info: { title: Shop, version: "1" }
x-gateway:
  name: shop
  upstreams:
    api: { url: "${API_URL}" }
    pay:
      url: "https://pay.internal"
      tls: { ca: "${PAY_CA}", cert: /etc/gw/client.pem, key: /etc/gw/client.key }
  defaults: { upstream: api }
  consumers: { store: file, path: keys.toml }
  plans:
    free: { rate: 10/s }
  limits:
    store: redis
    url: "redis://:hunter2@redis.internal:6379/0"
    on_error: deny
    default_plan: free
    anonymous_plan: free
security:
  - pem: []
  - idp: []
  - apiKey: []
  - client: []
paths:
  /orders:
    get:
      operationId: listOrders
      x-gateway:
        upstream: pay
        transform:
          request:
            query:
              add: { region: "${REGION:-eu}" }
      responses: { "200": { description: ok } }
components:
  securitySchemes:
    pem:
      type: http
      scheme: bearer
      x-gateway: { jwt: { pem_file: "${JWT_PUBLIC_KEY}" } }
    idp:
      type: http
      scheme: bearer
      x-gateway: { jwt: { jwks_url: "https://id.example.test/jwks" } }
    apiKey: { type: apiKey, in: header, name: X-API-Key }
    client: { type: mutualTLS }
"#;

    #[test]
    fn every_variable_file_and_service_is_listed_once() {
        let needs = needs(&model(SPEC));
        let vars: Vec<(&str, bool, Option<&str>, &str)> = needs
            .variables
            .iter()
            .map(|v| (v.name.as_str(), v.required, v.default.as_deref(), v.kind))
            .collect();
        assert_eq!(
            vars,
            [
                ("API_URL", true, None, "config"),
                ("GATEWAY_TLS_CERT", true, None, "file"),
                ("GATEWAY_TLS_CLIENT_CA", true, None, "file"),
                ("GATEWAY_TLS_KEY", true, None, "file"),
                ("JWT_PUBLIC_KEY", true, None, "file"),
                ("PAY_CA", true, None, "file"),
                ("REGION", false, Some("eu"), "secret"),
            ]
        );
        let files: Vec<(&str, Vec<&str>)> = needs
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.uses.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(
            files,
            [
                (
                    "${GATEWAY_TLS_CERT}",
                    vec!["mutualTLS scheme `client`: the gateway's TLS certificate chain"]
                ),
                (
                    "${GATEWAY_TLS_CLIENT_CA}",
                    vec![
                        "mutualTLS scheme `client`: the CA client certificates are verified against"
                    ]
                ),
                (
                    "${GATEWAY_TLS_KEY}",
                    vec!["mutualTLS scheme `client`: the gateway's TLS private key"]
                ),
                (
                    "${JWT_PUBLIC_KEY}",
                    vec!["JWT scheme `pem`: public key file"]
                ),
                ("${PAY_CA}", vec!["upstream `pay`: TLS CA certificates"]),
                ("/etc/gw/client.key", vec!["upstream `pay`: TLS client key"]),
                (
                    "/etc/gw/client.pem",
                    vec!["upstream `pay`: TLS client certificate"]
                ),
                ("keys.toml", vec!["API key file"]),
            ]
        );
        let services: Vec<(&str, &str)> = needs
            .services
            .iter()
            .map(|s| (s.url.as_str(), s.when))
            .collect();
        assert_eq!(
            services,
            [
                ("https://id.example.test/jwks", "start-up"),
                ("redis://:***@redis.internal:6379/0", "first-use"),
            ]
        );
    }

    #[test]
    fn check_prints_them_grouped_and_aligned() {
        assert_eq!(
            needs(&model(SPEC)).render_human(),
            "the gateway will need:
  environment variables that must be set:
    API_URL                upstream `api`
    GATEWAY_TLS_CERT       mutualTLS scheme `client`: the gateway's TLS certificate chain (a file path)
    GATEWAY_TLS_CLIENT_CA  mutualTLS scheme `client`: the CA client certificates are verified against (a file path)
    GATEWAY_TLS_KEY        mutualTLS scheme `client`: the gateway's TLS private key (a file path)
    JWT_PUBLIC_KEY         JWT scheme `pem`: public key file (a file path)
    PAY_CA                 upstream `pay`: TLS CA certificates (a file path)
  environment variables with a default:
    REGION  transform of `listOrders` (a secret) [default: eu]
  files, read at start-up (a missing one stops the gateway):
    ${GATEWAY_TLS_CERT}       mutualTLS scheme `client`: the gateway's TLS certificate chain
    ${GATEWAY_TLS_CLIENT_CA}  mutualTLS scheme `client`: the CA client certificates are verified against
    ${GATEWAY_TLS_KEY}        mutualTLS scheme `client`: the gateway's TLS private key
    ${JWT_PUBLIC_KEY}         JWT scheme `pem`: public key file
    ${PAY_CA}                 upstream `pay`: TLS CA certificates
    /etc/gw/client.key        upstream `pay`: TLS client key
    /etc/gw/client.pem        upstream `pay`: TLS client certificate
    keys.toml                 API key file
  services:
    https://id.example.test/jwks        JWT scheme `idp`: JWKS, called at start-up (ready once it answers)
    redis://:***@redis.internal:6379/0  limit store (Redis), called when a request needs it
"
        );
    }

    #[test]
    fn a_gateway_with_literal_urls_needs_nothing() {
        let needs = needs(&model(
            r#"
openapi: 3.0.3
info: { title: t, version: "1" }
security: []
x-gateway:
  upstreams: { api: "http://127.0.0.1:9" }
  defaults: { upstream: api }
paths:
  /a:
    get: { operationId: a, responses: { "200": { description: ok } } }
"#,
        ));
        assert!(needs.is_empty(), "{needs:?}");
        assert_eq!(needs.render_human(), "");
    }

    #[test]
    fn passwords_in_urls_are_hidden_but_references_are_kept() {
        assert_eq!(
            redact("redis://user:secret@h:6379"),
            "redis://user:***@h:6379"
        );
        assert_eq!(redact("https://token@h/x@y"), "https://***@h/x@y");
        assert_eq!(
            redact("redis://${USER}:${PASS}@h"),
            "redis://${USER}:${PASS}@h"
        );
        assert_eq!(redact("${REDIS_URL}"), "${REDIS_URL}");
        assert_eq!(redact("https://h/jwks"), "https://h/jwks");
    }
}
