//! The validated intermediate representation: what the gateway does, with every check
//! already made.
//!
//! A [`Model`] exists only when lowering found no error; code generation reads it and
//! cannot fail. Collections are ordered (`BTreeMap`, sorted `Vec`s) so that the same specs
//! always give byte-identical code.
//!
//! Later capabilities attach where they belong: authentication schemes and plans on the
//! [`Model`], per-operation security, limits, transforms and aggregation on [`Operation`]
//! (see ARCHITECTURE.md).

use std::collections::BTreeMap;
use std::time::Duration;

use gatewayc_vocab::calendar::DateTime;

/// A whole gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// `x-gateway.name`, or a name derived from `info.title`; lower-case with dashes.
    pub name: String,
    /// The spec files the gateway came from, as shown to users.
    pub sources: Vec<String>,
    /// SHA-256 (hex) of the names and contents of every file read.
    pub spec_digest: String,
    /// Upstream services by name.
    pub upstreams: BTreeMap<String, Upstream>,
    /// Every operation, sorted by path template then method.
    pub operations: Vec<Operation>,
    /// The security schemes the gateway verifies, in the order operations index them.
    pub schemes: Vec<Scheme>,
    /// Where API keys are looked up (`x-gateway.consumers`).
    pub consumers: Option<ConsumerStore>,
    /// Cross-origin settings (`x-gateway.cors`).
    pub cors: Option<Cors>,
    /// Plans (`x-gateway.plans`), sorted by name.
    pub plans: Vec<Plan>,
    /// Limit settings (`x-gateway.limits`); present when anything is limited.
    pub limits: Option<Limits>,
    /// Versions chosen by a header or a media type, in spec-file order; empty otherwise.
    pub versions: Vec<Version>,
    /// The generated crate's `src/validate.rs`: every validator function operations
    /// name; empty when no operation validates anything.
    pub validators: String,
}

/// A version chosen by a header or a media type (prefix versions need no run-time choice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// Its name.
    pub name: String,
    /// What selects it.
    pub selector: VersionSelector,
    /// Whether requests that name no version get it.
    pub default: bool,
}

/// How a request names its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSelector {
    /// A path prefix (`/v1`).
    Prefix(String),
    /// A header (lower-case name) with this value.
    Header {
        /// Header name.
        name: String,
        /// Its value.
        value: String,
    },
    /// A media type in `Accept` (lower case).
    MediaType(String),
}

/// What a deprecated operation tells its callers (RFC 9745 `Deprecation`, RFC 8594
/// `Sunset`, and a `Link` to its documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deprecation {
    /// Whether it is deprecated (it may only have a sunset date).
    pub deprecated: bool,
    /// When it was (or will be) deprecated, in seconds since the epoch, when the spec says.
    pub since: Option<i64>,
    /// When it stops working, in seconds since the epoch.
    pub sunset: Option<i64>,
    /// Where its documentation is.
    pub link: Option<String>,
}

impl Deprecation {
    /// The sunset as an HTTP date (`Wed, 30 Jun 2027 00:00:00 GMT`).
    pub fn sunset_http_date(&self) -> Option<String> {
        let t = DateTime::from_unix(self.sunset?);
        const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let weekday = DAYS.get(usize::try_from(t.weekday).ok()?)?;
        let month_name = MONTHS.get(usize::try_from(t.month.checked_sub(1)?).ok()?)?;
        Some(format!(
            "{weekday}, {:02} {month_name} {} {:02}:{:02}:{:02} GMT",
            t.day, t.year, t.hour, t.minute, t.second
        ))
    }
}

/// A rate: `limit` requests per `period`, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub limit: u64,
    /// The period.
    pub period: Duration,
    /// Requests allowed at once.
    pub burst: u64,
}

/// A quota's calendar window: the runtime counts in the same UTC windows.
pub use gatewayc_vocab::calendar::Window;

/// `limit` requests per calendar window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per window.
    pub limit: u64,
    /// The window.
    pub window: Window,
}

/// A plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Its name.
    pub name: String,
    /// Its rate.
    pub rate: Option<Rate>,
    /// Its quotas.
    pub quotas: Vec<Quota>,
}

/// What a route limit counts per.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    /// The consumer (client IP when anonymous).
    Consumer,
    /// The client IP.
    Ip,
    /// A request header (lower case).
    Header(String),
    /// A JWT claim.
    Claim(String),
}

/// A route-level rate limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteLimit {
    /// The rate.
    pub rate: Rate,
    /// What it counts per.
    pub key: LimitKey,
}

/// Where limit state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitStore {
    /// In process.
    Memory,
    /// In Redis.
    Redis {
        /// URL template.
        url: String,
        /// `allow`, `deny` or `local`.
        on_error: OnError,
        /// How long a request waits for Redis.
        timeout: Duration,
    },
}

/// Behaviour when Redis cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Let requests through.
    Allow,
    /// Refuse them.
    Deny,
    /// Count locally.
    Local,
}

/// `x-gateway.limits`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Where state lives.
    pub store: LimitStore,
    /// Plan for consumers whose plan is missing or unknown (index into `Model::plans`).
    pub default_plan: Option<usize>,
    /// Plan for anonymous requests (index into `Model::plans`).
    pub anonymous_plan: Option<usize>,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<String>,
}

/// A security scheme the gateway verifies.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheme {
    /// Its name in `components.securitySchemes`.
    pub name: String,
    /// How a credential is checked.
    pub kind: SchemeKind,
}

/// How a scheme checks a credential.
#[derive(Debug, Clone, PartialEq)]
pub enum SchemeKind {
    /// A JWT bearer token.
    Jwt(Jwt),
    /// An API key from the consumer key store.
    ApiKey {
        /// Where the key travels.
        location: KeyLocation,
        /// Header (lower case), query parameter or cookie name.
        name: String,
    },
    /// A client certificate verified in the TLS handshake (OpenAPI 3.1 `mutualTLS`).
    MutualTls,
}

/// Where an API key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLocation {
    /// A header.
    Header,
    /// A query parameter.
    Query,
    /// A cookie.
    Cookie,
}

/// JWT verification settings (`x-gateway.jwt` on a scheme).
#[derive(Debug, Clone, PartialEq)]
pub struct Jwt {
    /// Where keys come from.
    pub keys: KeySource,
    /// Accepted algorithms.
    pub algorithms: Vec<String>,
    /// Required issuer.
    pub issuer: Option<String>,
    /// Accepted audiences (empty: not checked).
    pub audience: Vec<String>,
    /// Whether `exp` is required.
    pub require_exp: bool,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Claim naming the consumer.
    pub consumer_claim: String,
    /// Claim naming the consumer's plan.
    pub plan_claim: Option<String>,
    /// (claim, lower-case header name) pairs forwarded upstream.
    pub forward_claims: Vec<(String, String)>,
}

/// Where a JWT scheme's keys come from; strings may hold `${VAR}` references.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A JWKS URL.
    JwksUrl(String),
    /// An OpenID Connect discovery URL.
    Discovery(String),
    /// A PEM file holding a public key.
    PemFile(String),
    /// An HMAC secret.
    Secret(String),
}

/// The consumer key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerStore {
    /// A TOML file managed by `gatewayc keys`.
    File(String),
    /// A Redis server.
    Redis(String),
}

/// Cross-origin resource sharing settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    /// Allowed origins (`*`: any).
    pub origins: Vec<String>,
    /// Methods a preflight may ask for (empty: those of the matched path).
    pub methods: Vec<String>,
    /// Request headers a preflight may ask for (lower case).
    pub headers: Vec<String>,
    /// Response headers exposed to scripts (lower case).
    pub expose: Vec<String>,
    /// `Access-Control-Allow-Credentials: true`.
    pub credentials: bool,
    /// `Access-Control-Max-Age`, in seconds.
    pub max_age: Option<u64>,
}

/// One scheme within a security requirement, with the scopes it must grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemeUse {
    /// Index into [`Model::schemes`].
    pub scheme: usize,
    /// Scopes that must all be granted.
    pub scopes: Vec<String>,
}

/// An upstream service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Its name in `x-gateway.upstreams`.
    pub name: String,
    /// URL template with `${VAR}` references, resolved at start-up; `None` serves examples
    /// unless `targets` has some.
    pub url: Option<String>,
    /// `targets`, when the spec lists them instead of `url` (then `url` is `None`).
    pub targets: Vec<Target>,
    /// How a request chooses a target when there are several.
    pub balance: Balance,
    /// Outlier ejection, health checks, retries and the circuit breaker, as written.
    pub resilience: Resilience,
    /// `tls`: the CA and client certificate for HTTPS targets.
    pub tls: Option<UpstreamTls>,
}

/// An upstream's `tls`: files, with `${VAR}` references resolved at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamTls {
    /// CA certificates (PEM) the targets' certificates are verified against, instead of
    /// the public roots.
    pub ca: Option<String>,
    /// The gateway's client certificate chain (PEM), with `key`.
    pub cert: Option<String>,
    /// The client certificate's private key (PEM).
    pub key: Option<String>,
}

/// What keeps an upstream's calls going when targets fail. Each setting is `None` when the
/// spec does not write it: the runtime's default (`OutlierDef::DEFAULT` and the others)
/// holds, and nothing is generated for it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Resilience {
    /// `outlier`.
    pub outlier: Option<Outlier>,
    /// `health`.
    pub health: Option<Health>,
    /// `retries`.
    pub retries: Option<Retries>,
    /// `breaker`.
    pub breaker: Option<Breaker>,
}

/// `outlier`: passive outlier ejection.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outlier {
    /// Failures in a row that eject a target (0: never).
    pub consecutive_failures: Option<u32>,
    /// A first ejection's length.
    pub base_ejection: Option<Duration>,
    /// The longest ejection.
    pub max_ejection: Option<Duration>,
    /// The largest share of targets ejected at once, in percent.
    pub max_ejected_percent: Option<u8>,
    /// Below this share of healthy targets (percent), every target is used.
    pub panic_threshold: Option<u8>,
}

/// `health`: active health checks.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Health {
    /// The path probed.
    pub path: Option<String>,
    /// Time between probes.
    pub interval: Option<Duration>,
    /// How long a probe waits.
    pub timeout: Option<Duration>,
    /// Successes in a row that make a target healthy.
    pub healthy: Option<u32>,
    /// Failures in a row that make it unhealthy.
    pub unhealthy: Option<u32>,
}

/// `retries`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Retries {
    /// Retries after the first try.
    pub attempts: Option<u32>,
    /// `on`: what is retried.
    pub on: Option<RetryOn>,
    /// The base of the backoff.
    pub backoff: Option<Duration>,
    /// The timeout of one try.
    pub per_try_timeout: Option<Duration>,
    /// The retry budget, in percent of requests.
    pub budget: Option<u8>,
    /// Retries a second allowed on top of the budget.
    pub min_per_second: Option<u32>,
}

/// `retries.on`: the failures and statuses that are retried.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RetryOn {
    /// `connect`.
    pub connect: bool,
    /// `reset`.
    pub reset: bool,
    /// `timeout`.
    pub timeout: bool,
    /// Statuses from 500 to 599, in the order written, each once.
    pub statuses: Vec<u16>,
}

/// `breaker`: the circuit breaker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Breaker {
    /// Requests in flight at most.
    pub max_requests: Option<u32>,
    /// Requests waiting for a connection at most.
    pub max_pending: Option<u32>,
    /// Connections open to the upstream (all its targets) at most.
    pub max_connections: Option<u32>,
}

/// One target of an upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// URL template with `${VAR}` references, resolved at start-up.
    pub url: String,
    /// Its share of the requests (1 to [`MAX_WEIGHT`]).
    pub weight: u32,
}

/// The largest weight a target may have.
pub const MAX_WEIGHT: u32 = 1000;

/// How an upstream with several targets chooses one (`balance`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Balance {
    /// Weighted round robin (the default).
    #[default]
    RoundRobin,
    /// Power of two random choices on requests in flight.
    LeastRequest,
    /// Consistent hashing on a key of the request.
    Hash(HashKey),
}

/// What `balance: hash` hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashKey {
    /// A request header (lower case).
    Header(String),
    /// A claim of the verified JWT.
    Claim(String),
    /// The authenticated consumer.
    Consumer,
    /// A path parameter.
    PathParam(String),
}

/// HTTP methods an OpenAPI path item can hold, in the order routes list them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// OPTIONS
    Options,
    /// TRACE
    Trace,
}

impl Method {
    /// All methods, in order.
    pub const ALL: [Method; 8] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
        Method::Trace,
    ];

    /// The method for a path-item key (`get`, `post`, ...).
    pub fn from_key(key: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.key() == key)
    }

    /// The lower-case path-item key.
    pub fn key(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Head => "head",
            Method::Post => "post",
            Method::Put => "put",
            Method::Patch => "patch",
            Method::Delete => "delete",
            Method::Options => "options",
            Method::Trace => "trace",
        }
    }

    /// The upper-case method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Trace => "TRACE",
        }
    }
}

/// A path template split into segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathTemplate {
    /// As written in the spec (without any `#fragment`).
    pub raw: String,
    /// The segments between slashes; `/` alone is one empty literal segment.
    pub segments: Vec<Segment>,
}

/// One path segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Segment {
    /// Literal text, matched exactly.
    Literal(String),
    /// Parameters and literal text (`{id}`, `{Sid}.json`, `{name}:cancel`).
    Pattern(Vec<Piece>),
    /// A parameter declared multi-segment: the rest of the path, one or more segments. Only
    /// ever the last segment of a template.
    Rest(String),
}

/// A piece of a pattern segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Piece {
    /// Literal text.
    Lit(String),
    /// The parameter with this name.
    Param(String),
}

impl Segment {
    /// The segment's shape, with parameter names erased: two templates whose segments all
    /// have the same shapes match exactly the same paths.
    pub fn shape(&self) -> String {
        match self {
            Segment::Literal(l) => l.clone(),
            Segment::Pattern(pieces) => pieces
                .iter()
                .map(|p| match p {
                    Piece::Lit(l) => l.clone(),
                    Piece::Param(_) => "{}".to_owned(),
                })
                .collect(),
            Segment::Rest(_) => "{**}".to_owned(),
        }
    }
}

/// The type a path parameter's value must parse as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamType {
    /// Any non-empty string.
    String,
    /// `type: integer, format: int32`.
    Int32,
    /// `type: integer` (64-bit).
    Int64,
    /// `type: number`.
    Number,
    /// `type: boolean`.
    Boolean,
    /// `type: string` with `enum`.
    Enum(Vec<String>),
    /// `type: string, format: uuid`.
    Uuid,
    /// A multi-segment parameter: the rest of the path as sent, `/` included.
    Path,
}

/// A path parameter of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathParam {
    /// Name in the spec.
    pub name: String,
    /// Rust identifier for generated code (unique within the operation).
    pub ident: String,
    /// Type from its schema.
    pub ty: ParamType,
}

/// A piece of the upstream path an operation sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rewrite {
    /// Literal text.
    Lit(String),
    /// The value of the path parameter at this index of [`Operation::params`].
    Param(usize),
}

/// A canned response taken from the spec's examples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Example {
    /// Status code.
    pub status: u16,
    /// Content-Type.
    pub content_type: String,
    /// The body, serialised.
    pub body: String,
}

/// One operation: a method on a path template.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// operationId, or a generated unique name.
    pub id: String,
    /// PascalCase identifier for the route variant.
    pub variant: String,
    /// The method.
    pub method: Method,
    /// The request path template.
    pub path: PathTemplate,
    /// Path parameters, in template order.
    pub params: Vec<PathParam>,
    /// Name of the upstream it goes to.
    pub upstream: String,
    /// The upstream path, with parameters substituted.
    pub rewrite: Vec<Rewrite>,
    /// Deadline for the upstream's response head.
    pub timeout: Duration,
    /// Largest request body accepted, in bytes.
    pub max_body: u64,
    /// The example response for mock mode.
    pub example: Option<Example>,
    /// Who may call it: alternatives (OR) of schemes that must all pass (AND). Empty:
    /// public.
    pub security: Vec<Vec<SchemeUse>>,
    /// Route-level rate limits.
    pub rate_limits: Vec<RouteLimit>,
    /// Set when the operation, or its version, is deprecated or has a sunset date.
    pub deprecation: Option<Deprecation>,
    /// Index into [`Model::versions`] when a header or media type chooses its version.
    pub version: Option<usize>,
    /// `x-gateway.transform`: what the gateway changes on the way through.
    pub transform: Option<Transform>,
    /// The success response's JSON schema as clients see it, after the response body
    /// transform (what `gatewayc docs` publishes); `None` without a response body
    /// transform or without a declared schema.
    pub published_response_schema: Option<serde_json::Value>,
    /// Where the operation is defined: (file, pointer), for generated comments.
    pub source: String,
    /// `x-gateway.aggregate`: the operation answers by combining several upstream calls
    /// instead of forwarding to one upstream.
    pub aggregate: Option<Aggregation>,
    /// `x-gateway.health_check`: never counted by limits.
    pub health_check: bool,
    /// `x-gateway.retryable`: retried like an idempotent request.
    pub retryable: bool,
    /// `x-gateway.cache`: GET answers kept in the gateway's shared cache.
    pub cache: Option<Cache>,
    /// The checks of its requests (and answers, with `validate.response: report`) against
    /// its schemas; `None` with nothing to check or `validate: none`.
    pub validation: Option<Validation>,
}

/// What an operation's requests are checked against: the generated validator functions'
/// names (in the gateway's `validate` module) and how to find each value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validation {
    /// Parameters with a schema, in declaration order.
    pub params: Vec<ParamCheck>,
    /// The JSON request body.
    pub body: Option<BodyCheck>,
    /// Answers checked and reported, not changed (`validate.response: report`).
    pub responses: Vec<ResponseCheck>,
}

/// Where a parameter travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamIn {
    /// The query string.
    Query,
    /// A request header.
    Header,
    /// A path segment.
    Path,
    /// The `Cookie` header.
    Cookie,
}

impl ParamIn {
    /// Its name in OpenAPI's `in`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamIn::Query => "query",
            ParamIn::Header => "header",
            ParamIn::Path => "path",
            ParamIn::Cookie => "cookie",
        }
    }

    /// OpenAPI's default `style` for this location.
    pub fn default_style(self) -> &'static str {
        match self {
            ParamIn::Query | ParamIn::Cookie => "form",
            ParamIn::Header | ParamIn::Path => "simple",
        }
    }
}

/// One parameter's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamCheck {
    /// Its name.
    pub name: String,
    /// Where it is.
    pub location: ParamIn,
    /// OpenAPI's `style` (`form`, `simple`, `spaceDelimited`, `pipeDelimited`,
    /// `deepObject`), or `json` for a parameter with `content: application/json`.
    pub style: String,
    /// OpenAPI's `explode`.
    pub explode: bool,
    /// Whether a request without it is refused.
    pub required: bool,
    /// How its text becomes a JSON value.
    pub shape: ParamShape,
    /// The validator function.
    pub function: String,
}

/// How a parameter's text becomes the JSON value its schema checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamShape {
    /// One value.
    Scalar(Coerce),
    /// A list (`style` says how it is split), each item read as the given types.
    Array(Coerce),
    /// An object: its properties, each read as its types (others as strings); and how a
    /// text standing for the whole value is read, for a schema that allows an object or
    /// something else (a `deepObject` parameter sent as `name=1`).
    Object(Vec<(String, Coerce)>, Coerce),
    /// The text is a JSON document (`content: application/json`).
    Json,
}

/// The JSON types a parameter's text may be read as, tried in order: `null` (the text
/// `null`), a boolean, a number, else a string.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Coerce {
    /// `integer` or `number`.
    pub number: bool,
    /// `boolean`.
    pub boolean: bool,
    /// `null`, or OpenAPI 3.0's `nullable`.
    pub null: bool,
    /// `string`, or no `type` at all.
    pub string: bool,
}

/// The JSON request body's check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyCheck {
    /// `requestBody.required`: a request without a body is refused.
    pub required: bool,
    /// Every media type the operation declares is JSON: another `Content-Type` is 415.
    pub json_only: bool,
    /// The validator function.
    pub function: String,
}

/// A declared response's JSON schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseCheck {
    /// `200`, `2XX` or `DEFAULT`.
    pub status: String,
    /// The validator function.
    pub function: String,
}

/// An operation's response cache settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cache {
    /// Freshness of an answer that gives none of its own (`Cache-Control` `s-maxage` or
    /// `max-age`); `None`: such answers are not stored.
    pub ttl: Option<Duration>,
    /// How long past its freshness a stored answer may stand in for a failing upstream.
    pub stale_if_error: Option<Duration>,
    /// How long past its freshness a stored answer is sent while one request refreshes it.
    pub stale_while_revalidate: Option<Duration>,
    /// Request headers (lower case) whose values tell answers apart.
    pub vary: Vec<String>,
}

/// An aggregate operation's parts and how their answers are combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    /// The parts, in the order the spec writes them; that is also the order of the keys of
    /// the combined response.
    pub parts: Vec<Part>,
    /// The whole aggregate's deadline.
    pub deadline: Duration,
    /// How the parts' answers are combined.
    pub shape: Shape,
}

/// How an aggregate combines its parts' answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// One member per part, keyed by part name (`null` for a missing optional part).
    Parts,
    /// The parts' top-level members in one object; build-time checks ensure the declared
    /// keys do not collide.
    Merge,
}

/// One upstream call of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its name: the key of its answer, and what `{name.field}` references use.
    pub name: String,
    /// Name of the upstream it calls.
    pub upstream: String,
    /// The upstream path, before any `?`.
    pub path: Vec<PartPiece>,
    /// The query string without the `?`; empty for none.
    pub query: Vec<PartPiece>,
    /// Indices (into [`Aggregation::parts`]) of the parts whose answers it uses, sorted.
    pub needs: Vec<usize>,
    /// Deadline for this part's answer, from the moment it starts.
    pub timeout: Duration,
    /// Whether the aggregate answers without it when it fails.
    pub optional: bool,
    /// Largest response body read from it, in bytes.
    pub max_response: u64,
    /// Its answer in mock mode, as JSON text, when its `response` gives an example.
    pub mock: Option<String>,
}

/// A piece of an aggregate part's path or query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartPiece {
    /// Literal text, already valid where it stands.
    Lit(String),
    /// The value of the operation's path parameter at this index of
    /// [`Operation::params`].
    Param(usize),
    /// A scalar in the answer of the part at index `part`, at the JSON pointer `pointer`.
    Field {
        /// Index into [`Aggregation::parts`].
        part: usize,
        /// RFC 6901 pointer into that part's answer.
        pointer: String,
    },
}

/// `x-gateway.transform` of an operation (see docs/x-gateway.md#transforms).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Transform {
    /// Changes to the request before it is forwarded.
    pub request: MessageTransform,
    /// Changes to the response before it is returned.
    pub response: MessageTransform,
    /// Response status mapping: (upstream status, status sent to the client), sorted.
    pub status: Vec<(u16, u16)>,
}

/// Changes to one message, applied in this order: body, headers, query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MessageTransform {
    /// Header edits; names are lower case.
    pub headers: Edits,
    /// Query parameter edits (requests only); `set` holds `add`.
    pub query: Edits,
    /// JSON body edits.
    pub body: Option<BodyTransform>,
}

/// Edits of named values (headers, query parameters), applied remove, rename, set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edits {
    /// Names removed.
    pub remove: Vec<String>,
    /// (from, to): values moved to another name, replacing what it had.
    pub rename: Vec<(String, String)>,
    /// Names given a value, replacing what they had.
    pub set: Vec<(String, Template)>,
}

impl Edits {
    /// Whether nothing is edited.
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty() && self.rename.is_empty() && self.set.is_empty()
    }
}

/// A JSON pointer split into unescaped reference tokens; `*` on an array is every element.
pub type Pointer = Vec<String>;

/// JSON body edits, applied pick, moves, remove, set.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BodyTransform {
    /// Allow-list: only these members are kept (empty: everything is kept).
    pub pick: Vec<Pointer>,
    /// (from, to): `rename` and `move` entries, in that order.
    pub moves: Vec<(Pointer, Pointer)>,
    /// Members removed.
    pub remove: Vec<Pointer>,
    /// Members set, missing parents created.
    pub set: Vec<(Pointer, JsonValue)>,
}

/// A JSON value to set in a body; strings may hold `${...}` references.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A negative integer.
    Int(i64),
    /// A non-negative integer.
    UInt(u64),
    /// Any other number.
    Float(f64),
    /// A string, built from a template.
    Str(Template),
    /// An array.
    Array(Vec<JsonValue>),
    /// An object, members in the order written.
    Object(Vec<(String, JsonValue)>),
}

/// A text value: literal text and `${...}` references.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template(pub Vec<TemplatePart>);

impl Template {
    /// Whether a part names the caller (consumer or claim), which an anonymous request
    /// lacks.
    pub fn names_caller(&self) -> bool {
        self.0
            .iter()
            .any(|p| matches!(p, TemplatePart::Consumer | TemplatePart::Claim(_)))
    }
}

/// A piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Literal text.
    Lit(String),
    /// `${NAME}` or `${NAME:-default}`: an environment variable, read at start-up.
    Env {
        /// The variable.
        name: String,
        /// Used when it is unset or empty.
        default: Option<String>,
    },
    /// `${request.id}`.
    RequestId,
    /// `${request.consumer}`.
    Consumer,
    /// `${request.claim.NAME}`.
    Claim(String),
}
