//! `gatewayc build --deploy DIR`: the files that put a gateway into a container and onto
//! Kubernetes (a Dockerfile and one manifest per object), from the [`Model`].
//!
//! Like [`crate::emit`], this is a pure function of the model: path → contents, the same
//! bytes for the same specs; only the command line writes the files. The files come from
//! `templates/deploy/`; every value that comes from a spec is written as a YAML
//! double-quoted string ([`yaml_string`]) and every comment is kept on its line
//! ([`comment`]), so that no spec can change the manifests' structure.
//!
//! The one decision made here is where each `${VAR}` of the spec gets its value
//! ([`variables`], [`Kind`]): a ConfigMap, a file mounted from a Secret, or a Secret. A
//! variable is treated as a secret unless what it holds is known to be no credential
//! (docs/deploy.md says why).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use gatewayc_vocab::env::{self, Piece};
use minijinja::syntax::SyntaxConfig;
use minijinja::{Environment, UndefinedBehavior, context};
use serde::Serialize;

use crate::model::{
    ConsumerStore, JsonValue, KeySource, LimitStore, MessageTransform, Model, SchemeKind, Template,
    TemplatePart, Upstream,
};

/// The public listener's port in the container (`GATEWAY_LISTEN`).
pub const PUBLIC_PORT: u16 = 8080;
/// The admin listener's port in the container (`GATEWAY_ADMIN_LISTEN`): `/metrics`,
/// `/healthz`, `/readyz`.
pub const ADMIN_PORT: u16 = 9901;
/// The Service's port for clients.
const SERVICE_PORT: u16 = 80;
/// distroless's `nonroot` user and group.
const UID: u32 = 65532;
/// `GATEWAY_SHUTDOWN_DELAY`: seconds a pod keeps serving, unready, after SIGTERM, while
/// endpoints stop sending to it (the runtime's default is 5 s; cluster-wide endpoint
/// propagation to kube-proxy and ingress controllers can take longer).
pub const SHUTDOWN_DELAY: u64 = 10;
/// `GATEWAY_SHUTDOWN_GRACE`: seconds requests in flight get after the delay (the
/// runtime's default).
pub const SHUTDOWN_GRACE: u64 = 30;
/// Seconds on top of delay and grace for the last log lines and spans and the exit.
const TERMINATION_MARGIN: u64 = 10;
/// Replicas at least (the Deployment's and the autoscaler's minimum): one can be lost.
const REPLICAS: u32 = 2;
/// Replicas at most, for the autoscaler.
const MAX_REPLICAS: u32 = 10;
/// The autoscaler's target: average CPU use, in percent of the request.
const CPU_TARGET: u32 = 60;
/// CPU request and limit of a pod: one core, so one worker thread
/// (`GATEWAY_WORKERS` defaults to the cores the process may use).
const CPU: &str = "1";
/// Memory request of a pod.
const MEMORY_REQUEST: &str = "256Mi";
/// Memory limit of a pod: the response cache (64 MiB by default), memory limit state and
/// connection buffers, with room to spare.
const MEMORY_LIMIT: &str = "512Mi";
/// Where the files that file variables name are mounted.
pub const FILES_DIR: &str = "/etc/gateway/files";

const DOCKERFILE: &str = include_str!("../../templates/deploy/Dockerfile.j2");
const DOCKERIGNORE: &str = include_str!("../../templates/deploy/Dockerfile.dockerignore.j2");
const CONFIGMAP: &str = include_str!("../../templates/deploy/configmap.yaml.j2");
const DEPLOYMENT: &str = include_str!("../../templates/deploy/deployment.yaml.j2");
const SERVICE: &str = include_str!("../../templates/deploy/service.yaml.j2");
const PDB: &str = include_str!("../../templates/deploy/poddisruptionbudget.yaml.j2");
const HPA: &str = include_str!("../../templates/deploy/horizontalpodautoscaler.yaml.j2");

/// Every file written: (path in the deploy directory, template path for errors, template).
const FILES: [(&str, &str, &str); 7] = [
    ("Dockerfile", "templates/deploy/Dockerfile.j2", DOCKERFILE),
    (
        "Dockerfile.dockerignore",
        "templates/deploy/Dockerfile.dockerignore.j2",
        DOCKERIGNORE,
    ),
    (
        "configmap.yaml",
        "templates/deploy/configmap.yaml.j2",
        CONFIGMAP,
    ),
    (
        "deployment.yaml",
        "templates/deploy/deployment.yaml.j2",
        DEPLOYMENT,
    ),
    ("service.yaml", "templates/deploy/service.yaml.j2", SERVICE),
    (
        "poddisruptionbudget.yaml",
        "templates/deploy/poddisruptionbudget.yaml.j2",
        PDB,
    ),
    (
        "horizontalpodautoscaler.yaml",
        "templates/deploy/horizontalpodautoscaler.yaml.j2",
        HPA,
    ),
];

/// Where a variable's value comes from in Kubernetes. Ordered by caution: a variable used
/// in several places gets the greatest kind among its uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Known to hold no credential (an upstream URL, which cannot carry one; a JWKS or
    /// OpenID discovery URL, public by design): a ConfigMap entry.
    Config,
    /// The path of a file the gateway reads (a JWT public key, the API key file): the file
    /// is mounted from a Secret under [`FILES_DIR`] and the ConfigMap holds its path.
    File,
    /// Anything else: an HMAC secret, a Redis URL (it may carry a password), a value a
    /// transform sends (often an upstream's credential). An env entry from a Secret.
    Secret,
}

/// A `${VAR}` the specs use, and how the gateway's pods get its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// Where its value comes from.
    pub kind: Kind,
    /// The default the spec gives (`${VAR:-default}`), the first one when it gives several.
    pub default: Option<String>,
    /// Whether some use has no default: the gateway does not start without a value.
    pub required: bool,
    /// What uses it, for the manifests' comments (`upstream \`pets\``, ...), in model order.
    pub uses: Vec<String>,
}

/// The variables the model's templates use, sorted by name: upstream URLs, targets and
/// TLS files, JWT key sources, the key store, the limit store and transform values. Only
/// the names that can name an environment variable count (transforms' `${request.*}` are
/// the request's own values).
pub fn variables(model: &Model) -> Vec<Variable> {
    let mut found = Found::default();
    for up in model.upstreams.values() {
        let what = format!("upstream `{}`", up.name);
        if let Some(url) = &up.url {
            found.template(url, Kind::Config, &what);
        }
        for t in &up.targets {
            found.template(&t.url, Kind::Config, &what);
        }
        for (path, role) in upstream_tls_files(up) {
            found.template(path, Kind::File, &format!("{what}: {role}"));
        }
    }
    for scheme in &model.schemes {
        let SchemeKind::Jwt(jwt) = &scheme.kind else {
            continue;
        };
        let (template, kind, role) = match &jwt.keys {
            KeySource::JwksUrl(t) => (t, Kind::Config, "JWKS URL"),
            KeySource::Discovery(t) => (t, Kind::Config, "OpenID discovery URL"),
            KeySource::PemFile(t) => (t, Kind::File, "public key file"),
            KeySource::Secret(t) => (t, Kind::Secret, "HMAC secret"),
        };
        found.template(
            template,
            kind,
            &format!("JWT scheme `{}`: {role}", scheme.name),
        );
    }
    match &model.consumers {
        Some(ConsumerStore::File(path)) => found.template(path, Kind::File, "API key file"),
        Some(ConsumerStore::Redis(url)) => {
            found.template(url, Kind::Secret, "API key store (Redis URL)");
        }
        None => {}
    }
    if let Some(limits) = &model.limits
        && let LimitStore::Redis { url, .. } = &limits.store
    {
        found.template(url, Kind::Secret, "limit store (Redis URL)");
    }
    for op in &model.operations {
        if let Some(t) = &op.transform {
            let what = format!("transform of `{}`", op.id);
            for message in [&t.request, &t.response] {
                found.message(message, &what);
            }
        }
    }
    found.0.into_values().collect()
}

/// The files an upstream's `tls` names, each with what it holds.
pub fn upstream_tls_files(up: &Upstream) -> impl Iterator<Item = (&str, &'static str)> {
    let tls = up.tls.as_ref();
    [
        (tls.and_then(|t| t.ca.as_deref()), "TLS CA certificates"),
        (
            tls.and_then(|t| t.cert.as_deref()),
            "TLS client certificate",
        ),
        (tls.and_then(|t| t.key.as_deref()), "TLS client key"),
    ]
    .into_iter()
    .filter_map(|(path, role)| Some((path?, role)))
}

/// The variables found so far, by name.
#[derive(Default)]
struct Found(BTreeMap<String, Variable>);

impl Found {
    /// Every variable in a `${VAR}` template. A file variable must be the whole path (so
    /// that its value can be the mounted file's); one with text around it is plain
    /// configuration.
    fn template(&mut self, template: &str, kind: Kind, what: &str) {
        let whole = {
            let mut pieces = env::pieces(template);
            matches!(
                (pieces.next(), pieces.next()),
                (Some(Piece::Ref { .. }), None)
            )
        };
        let kind = if kind == Kind::File && !whole {
            Kind::Config
        } else {
            kind
        };
        for piece in env::pieces(template) {
            if let Piece::Ref { name, default, .. } = piece
                && env::is_var_name(name)
            {
                self.add(name, default, kind, what);
            }
        }
    }

    /// The environment values of a transform's header, query and body edits: secrets.
    fn message(&mut self, m: &MessageTransform, what: &str) {
        for (_, t) in m.headers.set.iter().chain(&m.query.set) {
            self.parts(t, what);
        }
        if let Some(body) = &m.body {
            for (_, v) in &body.set {
                self.json(v, what);
            }
        }
    }

    fn json(&mut self, v: &JsonValue, what: &str) {
        match v {
            JsonValue::Str(t) => self.parts(t, what),
            JsonValue::Array(items) => {
                for item in items {
                    self.json(item, what);
                }
            }
            JsonValue::Object(members) => {
                for (_, item) in members {
                    self.json(item, what);
                }
            }
            JsonValue::Null
            | JsonValue::Bool(_)
            | JsonValue::Int(_)
            | JsonValue::UInt(_)
            | JsonValue::Float(_) => {}
        }
    }

    fn parts(&mut self, t: &Template, what: &str) {
        for part in &t.0 {
            if let TemplatePart::Env { name, default } = part {
                self.add(name, default.as_deref(), Kind::Secret, what);
            }
        }
    }

    fn add(&mut self, name: &str, default: Option<&str>, kind: Kind, what: &str) {
        let v = self.0.entry(name.to_owned()).or_insert_with(|| Variable {
            name: name.to_owned(),
            kind,
            default: None,
            required: false,
            uses: Vec::new(),
        });
        v.kind = v.kind.max(kind);
        match default {
            Some(d) => {
                if v.default.is_none() {
                    v.default = Some(d.to_owned());
                }
            }
            None => v.required = true,
        }
        if !v.uses.iter().any(|u| u == what) {
            v.uses.push(what.to_owned());
        }
    }
}

/// A template failed to render; a bug in gatewayc (a template and the context it is given
/// disagree), reported rather than written.
#[derive(Debug, thiserror::Error)]
#[error("internal error rendering {template}: {source}")]
pub struct DeployError {
    template: &'static str,
    source: minijinja::Error,
}

/// A ConfigMap entry.
#[derive(Serialize)]
struct Entry {
    name: String,
    value: String,
    uses: String,
    file: bool,
    required: bool,
    has_default: bool,
}

/// A runtime setting in the ConfigMap.
#[derive(Serialize)]
struct Setting {
    name: &'static str,
    value: String,
    note: String,
}

/// A variable from a Secret.
#[derive(Serialize)]
struct SecretRef {
    name: String,
    uses: String,
    optional: bool,
}

/// The Kubernetes name of the gateway's objects: the package name (`<name>-gateway`), cut
/// to the 63 characters a Service name may have.
pub fn app_name(model: &Model) -> String {
    let package = crate::emit::package_name(model);
    let cut: String = package.chars().take(63).collect();
    cut.trim_end_matches('-').to_owned()
}

/// The image the manifests name: the package name, tagged with the first 12 hex digits of
/// the spec digest, so that a changed spec is a new tag (a change to gatewayc alone is not:
/// tag such builds yourself, docs/deploy.md).
pub fn image(model: &Model) -> String {
    let digest: String = model.spec_digest.chars().take(12).collect();
    format!("{}:{digest}", crate::emit::package_name(model))
}

/// The deployment files for `model`: path in the deploy directory → contents, in sorted
/// order. Fails only on a bug in gatewayc's templates.
pub fn render(model: &Model) -> Result<BTreeMap<String, String>, DeployError> {
    let package = crate::emit::package_name(model);
    let app = app_name(model);
    let vars = variables(model);
    let config: Vec<Entry> = vars
        .iter()
        .filter(|v| v.kind != Kind::Secret)
        .map(|v| Entry {
            name: v.name.clone(),
            value: match v.kind {
                Kind::File => format!("{FILES_DIR}/{}", v.name),
                _ if v.required => String::new(),
                _ => v.default.clone().unwrap_or_default(),
            },
            uses: v.uses.join("; "),
            file: v.kind == Kind::File,
            required: v.required,
            has_default: v.default.is_some(),
        })
        .collect();
    let secrets: Vec<SecretRef> = vars
        .iter()
        .filter(|v| v.kind == Kind::Secret)
        .map(|v| SecretRef {
            name: v.name.clone(),
            uses: v.uses.join("; "),
            optional: !v.required,
        })
        .collect();
    let files: Vec<&Entry> = config.iter().filter(|e| e.file).collect();
    let termination_grace = SHUTDOWN_DELAY + SHUTDOWN_GRACE + TERMINATION_MARGIN;
    let settings: Vec<Setting> = [
        (
            "GATEWAY_LOG",
            "warn".to_owned(),
            "diagnostics on stderr: error, warn, info or debug".to_owned(),
        ),
        (
            "GATEWAY_LOG_FORMAT",
            "json".to_owned(),
            "every diagnostic line a JSON object, for log collectors".to_owned(),
        ),
        (
            "GATEWAY_ACCESS_LOG",
            "on".to_owned(),
            "one JSON line per request on stdout".to_owned(),
        ),
        (
            "GATEWAY_SHUTDOWN_DELAY",
            SHUTDOWN_DELAY.to_string(),
            format!(
                "seconds /readyz answers 503 after SIGTERM while the gateway still serves; \
                 terminationGracePeriodSeconds ({termination_grace}, deployment.yaml) must stay \
                 above this plus GATEWAY_SHUTDOWN_GRACE"
            ),
        ),
        (
            "GATEWAY_SHUTDOWN_GRACE",
            SHUTDOWN_GRACE.to_string(),
            "seconds requests in flight may take after that".to_owned(),
        ),
    ]
    .into_iter()
    // A spec variable of the same name is the spec's to set.
    .filter(|(name, _, _)| !config.iter().any(|e| e.name == *name))
    .map(|(name, value, note)| Setting { name, value, note })
    .collect();
    let ctx = context! {
        name => &model.name,
        sources => model.sources.join(", "),
        digest => &model.spec_digest,
        package => &package,
        app => &app,
        image => image(model),
        secret_name => format!("{app}-secrets"),
        files_name => format!("{app}-files"),
        files_dir => FILES_DIR,
        rust_version => env!("CARGO_PKG_RUST_VERSION"),
        uid => UID,
        public_port => PUBLIC_PORT,
        admin_port => ADMIN_PORT,
        service_port => SERVICE_PORT,
        replicas => REPLICAS,
        max_replicas => MAX_REPLICAS,
        cpu_target => CPU_TARGET,
        cpu => CPU,
        memory_request => MEMORY_REQUEST,
        memory_limit => MEMORY_LIMIT,
        shutdown_delay => SHUTDOWN_DELAY,
        shutdown_grace => SHUTDOWN_GRACE,
        termination_grace => termination_grace,
        settings => minijinja::value::Value::from(minijinja::value::Serde(&settings)),
        config => minijinja::value::Value::from(minijinja::value::Serde(&config)),
        secrets => minijinja::value::Value::from(minijinja::value::Serde(&secrets)),
        files => minijinja::value::Value::from(minijinja::value::Serde(&files)),
    };
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.add_filter("q", yaml_string);
    env.add_filter("comment", comment);
    let syntax = SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .build()
        .map_err(|source| DeployError {
            template: "templates/deploy/",
            source,
        })?;
    env.set_syntax(syntax);
    let mut out = BTreeMap::new();
    for (path, template_path, template) in FILES {
        let mut text = env
            .render_str(template, &ctx)
            .map_err(|source| DeployError {
                template: template_path,
                source,
            })?;
        text.truncate(text.trim_end().len());
        text.push('\n');
        out.insert(path.to_owned(), text);
    }
    Ok(out)
}

/// `s` as a YAML double-quoted scalar, which holds any string: `"` and `\` escaped, and
/// every character YAML would read as a line break or refuses as unprintable written as
/// `\uXXXX`.
pub fn yaml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for a `#` comment: whatever would end the line, or is unprintable, becomes a space.
pub fn comment(s: &str) -> String {
    s.chars()
        .map(|c| if needs_escape(c) { ' ' } else { c })
        .collect()
}

/// Control characters (C0, DEL, C1, NEL among them), the Unicode line and paragraph
/// separators, the byte-order mark and the noncharacters YAML does not print. All are in
/// the Basic Multilingual Plane, so `\uXXXX` writes each.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// A variable of every kind: upstream URLs and targets (with and without defaults),
    /// each JWT key source, a file key store, a Redis limit store, and transform values;
    /// `API_URL` is an upstream URL and also a transform value.
    const SPEC: &str = r#"
openapi: 3.1.0
info: { title: Shop, version: "1" }
x-gateway:
  name: shop
  upstreams:
    api: { url: "${API_URL}" }
    pool: { targets: ["${POOL_A_URL:-http://127.0.0.1:9}", "http://${POOL_HOST}:8080"] }
  defaults: { upstream: api }
  consumers: { store: file, path: "${KEYS_FILE}" }
  plans:
    free: { rate: 10/s }
  limits:
    store: redis
    url: "${REDIS_URL}"
    on_error: deny
    default_plan: free
    anonymous_plan: free
security:
  - hmac: []
  - pem: []
  - idp: []
  - apiKey: []
paths:
  /orders:
    get:
      operationId: listOrders
      x-gateway:
        upstream: pool
        transform:
          request:
            headers:
              set: { X-Upstream-Key: "key ${API_TOKEN}", X-Id: "${request.id}" }
            query:
              add: { region: "${REGION:-eu}" }
          response:
            headers:
              set: { X-Origin: "${API_URL}" }
      responses: { "200": { description: ok } }
components:
  securitySchemes:
    hmac:
      type: http
      scheme: bearer
      x-gateway: { jwt: { secret: "${JWT_SECRET}" } }
    pem:
      type: http
      scheme: bearer
      x-gateway: { jwt: { pem_file: "${JWT_PUBLIC_KEY}" } }
    idp:
      type: http
      scheme: bearer
      x-gateway: { jwt: { jwks_url: "${JWKS_URL:-https://id.example.test/jwks}" } }
    apiKey: { type: apiKey, in: header, name: X-API-Key }
"#;

    /// A Redis key store with a default URL, and a key file path with text around its
    /// variable.
    const REDIS_KEYS: &str = r#"
openapi: 3.1.0
info: { title: Keys, version: "1" }
x-gateway:
  name: keys
  upstreams: { api: { url: "http://127.0.0.1:9" } }
  defaults: { upstream: api }
  consumers: { store: redis, url: "${KEYS_REDIS:-redis://127.0.0.1:6379}" }
security:
  - apiKey: []
  - pem: []
paths:
  /orders:
    get:
      operationId: listOrders
      responses: { "200": { description: ok } }
components:
  securitySchemes:
    apiKey: { type: apiKey, in: header, name: X-API-Key }
    pem:
      type: http
      scheme: bearer
      x-gateway: { jwt: { pem_file: "${CERT_DIR}/jwt.pem" } }
"#;

    use crate::lower::test_model as model;

    fn files(yaml: &str) -> BTreeMap<String, String> {
        render(&model(yaml)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A manifest, parsed with the compiler's own YAML 1.2 reader.
    fn manifest(files: &BTreeMap<String, String>, name: &str) -> Value {
        let text = files
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", files.keys()));
        crate::spec::yaml::parse(text).unwrap_or_else(|e| panic!("{name}: {e:?}\n{text}"))
    }

    fn container(deployment: &Value) -> &Value {
        &deployment["spec"]["template"]["spec"]["containers"][0]
    }

    #[test]
    fn variables_are_classified_by_what_they_hold() {
        let vars = variables(&model(SPEC));
        let got: Vec<(&str, Kind, bool, Option<&str>)> = vars
            .iter()
            .map(|v| (v.name.as_str(), v.kind, v.required, v.default.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                // An upstream URL that a transform also sends: the secret use wins.
                ("API_TOKEN", Kind::Secret, true, None),
                ("API_URL", Kind::Secret, true, None),
                (
                    "JWKS_URL",
                    Kind::Config,
                    false,
                    Some("https://id.example.test/jwks")
                ),
                ("JWT_PUBLIC_KEY", Kind::File, true, None),
                ("JWT_SECRET", Kind::Secret, true, None),
                ("KEYS_FILE", Kind::File, true, None),
                (
                    "POOL_A_URL",
                    Kind::Config,
                    false,
                    Some("http://127.0.0.1:9")
                ),
                ("POOL_HOST", Kind::Config, true, None),
                ("REDIS_URL", Kind::Secret, true, None),
                ("REGION", Kind::Secret, false, Some("eu")),
            ]
        );
        let api = vars.iter().find(|v| v.name == "API_URL");
        assert_eq!(
            api.map(|v| v.uses.clone()).unwrap_or_default(),
            ["upstream `api`", "transform of `listOrders`"]
        );

        let vars = variables(&model(REDIS_KEYS));
        let got: Vec<(&str, Kind, bool)> = vars
            .iter()
            .map(|v| (v.name.as_str(), v.kind, v.required))
            .collect();
        assert_eq!(
            got,
            [
                // Text around the variable: a directory, not the file itself.
                ("CERT_DIR", Kind::Config, true),
                ("KEYS_REDIS", Kind::Secret, false),
            ]
        );
    }

    #[test]
    fn an_upstream_s_tls_files_are_file_variables() {
        let vars = variables(&model(
            r#"
openapi: 3.1.0
info: { title: Pay, version: "1" }
x-gateway:
  name: pay
  upstreams:
    pay:
      url: "https://pay.internal"
      tls: { ca: "${PAY_CA}", cert: "${PAY_CERT}", key: "${CERT_DIR}/client.key" }
  defaults: { upstream: pay }
security: []
paths:
  /charges:
    get: { operationId: listCharges, responses: { "200": { description: ok } } }
"#,
        ));
        let got: Vec<(&str, Kind, Vec<&str>)> = vars
            .iter()
            .map(|v| {
                (
                    v.name.as_str(),
                    v.kind,
                    v.uses.iter().map(String::as_str).collect(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                // Text around the variable: a directory, not the file itself.
                (
                    "CERT_DIR",
                    Kind::Config,
                    vec!["upstream `pay`: TLS client key"]
                ),
                (
                    "PAY_CA",
                    Kind::File,
                    vec!["upstream `pay`: TLS CA certificates"]
                ),
                (
                    "PAY_CERT",
                    Kind::File,
                    vec!["upstream `pay`: TLS client certificate"]
                ),
            ]
        );
    }

    #[test]
    fn secrets_are_referenced_from_a_secret_and_never_written() {
        let files = files(SPEC);
        let deployment = manifest(&files, "deployment.yaml");
        let env = container(&deployment)["env"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let refs: Vec<(String, String, String, bool)> = env
            .iter()
            .map(|e| {
                let r = &e["valueFrom"]["secretKeyRef"];
                (
                    e["name"].as_str().unwrap_or_default().to_owned(),
                    r["name"].as_str().unwrap_or_default().to_owned(),
                    r["key"].as_str().unwrap_or_default().to_owned(),
                    r["optional"].as_bool().unwrap_or_default(),
                )
            })
            .collect();
        let secret = |name: &str, optional| {
            (
                name.to_owned(),
                "shop-gateway-secrets".to_owned(),
                name.to_owned(),
                optional,
            )
        };
        assert_eq!(
            refs,
            [
                secret("API_TOKEN", false),
                secret("API_URL", false),
                secret("JWT_SECRET", false),
                secret("REDIS_URL", false),
                secret("REGION", true),
            ]
        );
        assert!(
            env.iter().all(|e| e.get("value").is_none()),
            "no value inline: {env:?}"
        );
        assert_eq!(
            container(&deployment)["envFrom"][0]["configMapRef"]["name"],
            "shop-gateway"
        );

        let configmap = manifest(&files, "configmap.yaml");
        let data = configmap["data"].as_object().cloned().unwrap_or_default();
        for secret in ["API_TOKEN", "API_URL", "JWT_SECRET", "REDIS_URL", "REGION"] {
            assert!(!data.contains_key(secret), "{secret} in the ConfigMap");
        }
        let value = |k: &str| data.get(k).and_then(Value::as_str).map(str::to_owned);
        assert_eq!(
            value("JWKS_URL").as_deref(),
            Some("https://id.example.test/jwks")
        );
        assert_eq!(value("POOL_A_URL").as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(value("POOL_HOST").as_deref(), Some(""), "required, unset");
        assert_eq!(
            value("KEYS_FILE").as_deref(),
            Some("/etc/gateway/files/KEYS_FILE")
        );
        assert_eq!(
            value("JWT_PUBLIC_KEY").as_deref(),
            Some("/etc/gateway/files/JWT_PUBLIC_KEY")
        );
        assert_eq!(value("GATEWAY_SHUTDOWN_DELAY").as_deref(), Some("10"));
        assert_eq!(value("GATEWAY_SHUTDOWN_GRACE").as_deref(), Some("30"));
        assert!(
            data.values().all(Value::is_string),
            "ConfigMap values are strings: {data:?}"
        );

        // The files are mounted, read-only, from a Secret of their own.
        let pod = &deployment["spec"]["template"]["spec"];
        assert_eq!(
            pod["volumes"][0]["secret"]["secretName"],
            "shop-gateway-files"
        );
        let mount = &container(&deployment)["volumeMounts"][0];
        assert_eq!(mount["mountPath"], FILES_DIR);
        assert_eq!(mount["readOnly"], true);
    }

    #[test]
    fn a_gateway_without_secrets_or_files_has_no_env_or_volumes() {
        let m = model(
            r#"
openapi: 3.1.0
info: { title: Plain, version: "1" }
x-gateway:
  upstreams: { api: { url: "${API_URL:-}" } }
  defaults: { upstream: api }
paths:
  /a: { get: { operationId: a, responses: { "200": { description: ok } } } }
"#,
        );
        let files = render(&m).unwrap_or_else(|e| panic!("{e}"));
        let deployment = manifest(&files, "deployment.yaml");
        assert!(container(&deployment).get("env").is_none());
        assert!(container(&deployment).get("volumeMounts").is_none());
        assert!(
            deployment["spec"]["template"]["spec"]
                .get("volumes")
                .is_none()
        );
        let configmap = manifest(&files, "configmap.yaml");
        assert_eq!(configmap["data"]["API_URL"], "", "the spec's default");
    }

    #[test]
    fn the_pods_are_probed_drained_and_locked_down() {
        let files = files(SPEC);
        let deployment = manifest(&files, "deployment.yaml");
        assert_eq!(deployment["apiVersion"], "apps/v1");
        assert_eq!(deployment["kind"], "Deployment");
        assert!(deployment["spec"]["replicas"].as_u64() >= Some(2));
        let pod = &deployment["spec"]["template"]["spec"];
        let c = container(&deployment);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert_eq!(c["readinessProbe"]["httpGet"]["port"], "metrics");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["ports"][1]["name"], "metrics");
        assert_eq!(c["ports"][1]["containerPort"], u64::from(ADMIN_PORT));
        assert_eq!(c["ports"][0]["containerPort"], u64::from(PUBLIC_PORT));
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory"] {
                assert!(
                    c["resources"][kind][resource].is_string(),
                    "{kind}.{resource}"
                );
            }
        }
        let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap_or(0);
        assert!(grace > SHUTDOWN_DELAY + SHUTDOWN_GRACE, "{grace}");
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(c["securityContext"]["capabilities"]["drop"][0], "ALL");

        let service = manifest(&files, "service.yaml");
        assert_eq!(service["metadata"]["name"], "shop-gateway");
        assert_eq!(
            service["metadata"]["annotations"]["prometheus.io/scrape"],
            "true"
        );
        assert_eq!(
            service["metadata"]["annotations"]["prometheus.io/port"],
            ADMIN_PORT.to_string()
        );
        assert_eq!(service["spec"]["ports"][1]["name"], "metrics");
        assert_eq!(service["spec"]["ports"][1]["targetPort"], "metrics");
        let selector = &service["spec"]["selector"];
        assert_eq!(
            &deployment["spec"]["selector"]["matchLabels"], selector,
            "the Service selects the Deployment's pods"
        );

        let pdb = manifest(&files, "poddisruptionbudget.yaml");
        assert_eq!(pdb["apiVersion"], "policy/v1");
        assert_eq!(&pdb["spec"]["selector"]["matchLabels"], selector);
        let hpa = manifest(&files, "horizontalpodautoscaler.yaml");
        assert_eq!(hpa["apiVersion"], "autoscaling/v2");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "shop-gateway");
        assert_eq!(hpa["spec"]["metrics"][0]["resource"]["name"], "cpu");
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            u64::from(CPU_TARGET)
        );
    }

    #[test]
    fn the_dockerfile_builds_in_one_stage_and_runs_in_a_distroless_one() {
        let files = files(SPEC);
        let text = files.get("Dockerfile").cloned().unwrap_or_default();
        let froms: Vec<&str> = text.lines().filter(|l| l.starts_with("FROM ")).collect();
        assert_eq!(
            froms,
            [
                "FROM rust:${RUST_VERSION}-bookworm AS build",
                "FROM gcr.io/distroless/cc-debian12:nonroot"
            ]
        );
        assert!(text.contains("RUN cargo build --release --bin shop-gateway"));
        let last = text.rsplit("\nFROM ").next().unwrap_or_default();
        assert!(!last.contains("\nRUN "), "nothing runs in the final stage");
        assert!(last.contains("\nUSER 65532:65532\n"));
        assert!(last.contains("\nENV GATEWAY_LISTEN=0.0.0.0:8080\n"));
        assert!(last.contains("\nENV GATEWAY_ADMIN_LISTEN=0.0.0.0:9901\n"));
        assert!(last.contains("\nEXPOSE 8080 9901\n"));
        assert!(last.ends_with("ENTRYPOINT [\"/usr/local/bin/shop-gateway\"]\n"));
        assert!(text.starts_with("# syntax=docker/dockerfile:1\n"));
    }

    #[test]
    fn output_is_deterministic() {
        let a = files(SPEC);
        assert_eq!(a, files(SPEC));
        assert_eq!(
            a.keys().map(String::as_str).collect::<Vec<_>>(),
            [
                "Dockerfile",
                "Dockerfile.dockerignore",
                "configmap.yaml",
                "deployment.yaml",
                "horizontalpodautoscaler.yaml",
                "poddisruptionbudget.yaml",
                "service.yaml",
            ]
        );
        for (name, text) in &a {
            assert!(
                !text.contains("{{") && !text.contains("{%"),
                "{name}:\n{text}"
            );
            assert!(!text.contains("\n\n\n"), "{name}:\n{text}");
        }
    }

    #[test]
    fn spec_text_cannot_change_the_yaml_structure() {
        assert_eq!(yaml_string("plain"), "\"plain\"");
        assert_eq!(
            yaml_string("a\"b\\c\nd\u{85}e\u{2028}f: g # h"),
            "\"a\\\"b\\\\c\\u000Ad\\u0085e\\u2028f: g # h\""
        );
        assert_eq!(comment("one\ntwo\u{2029}three\rfour"), "one two three four");
        let parsed =
            crate::spec::yaml::parse(&format!("k: {}", yaml_string("x\n  injected: true\u{7f}")))
                .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(parsed["k"], "x\n  injected: true\u{7f}");
        assert!(parsed.get("injected").is_none());
    }

    #[test]
    fn long_gateway_names_are_cut_to_a_service_name() {
        let mut m = model(SPEC);
        m.name = format!("a{}", "-b".repeat(40));
        let app = app_name(&m);
        assert!(app.len() <= 63, "{app}");
        assert!(!app.ends_with('-'), "{app}");
        let files = render(&m).unwrap_or_else(|e| panic!("{e}"));
        let service = manifest(&files, "service.yaml");
        assert_eq!(service["metadata"]["name"], app.as_str());
    }
}
