//! The route table `gatewayc routes` prints: one row per operation, as aligned text for
//! people ([`table`]) or as JSON for programs ([`json`], `--format json`).
//!
//! Both read the [`Model`] only, so they show what the gateway will do, after every
//! default and inherited setting is applied. The JSON field names are documented in
//! docs/cli.md and are stable: a field may be added, none is renamed or removed.

use serde::Serialize;

use crate::model::{LimitKey, Model, Operation, PartPiece, Rewrite, Shape, VersionSelector};

/// The route table as aligned text: method, path, operation, upstream, upstream path,
/// timeout, auth and limits.
pub fn table(model: &Model) -> String {
    let mut rows = vec![[
        "METHOD".to_owned(),
        "PATH".to_owned(),
        "OPERATION".to_owned(),
        "UPSTREAM".to_owned(),
        "UPSTREAM PATH".to_owned(),
        "TIMEOUT".to_owned(),
        "AUTH".to_owned(),
        "LIMITS".to_owned(),
    ]];
    for op in &model.operations {
        let (upstream, rewrite) = match &op.aggregate {
            Some(agg) => (
                "(aggregate)".to_owned(),
                agg.parts
                    .iter()
                    .map(|p| {
                        let query = if p.query.is_empty() {
                            String::new()
                        } else {
                            format!("?{}", part_text(op, &p.query))
                        };
                        format!(
                            "{}={}:{}{query}",
                            p.name,
                            p.upstream,
                            part_text(op, &p.path)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            None => (op.upstream.clone(), upstream_path(op)),
        };
        rows.push([
            op.method.as_str().to_owned(),
            op.path.raw.clone(),
            op.id.clone(),
            upstream,
            rewrite,
            format!("{}ms", op.timeout.as_millis()),
            auth_cell(model, op),
            limits_cell(model, op),
        ]);
    }
    let mut widths = [0usize; 8];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The upstream path an operation sends, parameters written `{name}`.
fn upstream_path(op: &Operation) -> String {
    op.rewrite
        .iter()
        .map(|r| match r {
            Rewrite::Lit(l) => l.clone(),
            Rewrite::Param(i) => format!("{{{}}}", op.params[*i].name),
        })
        .collect()
}

/// An aggregate part's path or query, parameters written `{name}` and fields of other
/// parts `{part.field}`.
fn part_text(op: &Operation, pieces: &[PartPiece]) -> String {
    let parts = op.aggregate.as_ref().map_or(&[][..], |a| &a.parts[..]);
    pieces
        .iter()
        .map(|piece| match piece {
            PartPiece::Lit(l) => l.clone(),
            PartPiece::Param(i) => format!("{{{}}}", op.params[*i].name),
            PartPiece::Field { part, pointer } => format!(
                "{{{}{}}}",
                parts.get(*part).map_or("?", |p| p.name.as_str()),
                pointer.replace('/', ".")
            ),
        })
        .collect()
}

/// An operation's security as `a[scope] + b | c`: alternatives OR-ed with `|`, schemes
/// AND-ed with `+`; `public` when anyone may call it.
fn auth_cell(model: &Model, op: &Operation) -> String {
    if op.security.is_empty() {
        return "public".to_owned();
    }
    op.security
        .iter()
        .map(|alt| {
            alt.iter()
                .map(|u| {
                    let name = model.schemes.get(u.scheme).map_or("?", |s| s.name.as_str());
                    if u.scopes.is_empty() {
                        name.to_owned()
                    } else {
                        format!("{name}[{}]", u.scopes.join(","))
                    }
                })
                .collect::<Vec<_>>()
                .join(" + ")
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

/// What a route limit counts per, as the spec writes it.
fn key_text(key: &LimitKey) -> String {
    match key {
        LimitKey::Consumer => "consumer".to_owned(),
        LimitKey::Ip => "ip".to_owned(),
        LimitKey::Header(h) => format!("header:{h}"),
        LimitKey::Claim(c) => format!("claim:{c}"),
    }
}

/// The limits that apply: `plan` when plans are defined, then the route's own limits.
fn limits_cell(model: &Model, op: &Operation) -> String {
    let mut parts = Vec::new();
    if !model.plans.is_empty() {
        parts.push("plan".to_owned());
    }
    for l in &op.rate_limits {
        parts.push(format!(
            "{}/{}s per {}",
            l.rate.limit,
            l.rate.period.as_secs(),
            key_text(&l.key)
        ));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The whole table as JSON (`gatewayc routes --format json`).
#[derive(Debug, Serialize)]
pub struct Routes<'a> {
    /// The gateway's name.
    pub gateway: &'a str,
    /// One entry per operation, in the table's order (path template, then method).
    pub routes: Vec<Route<'a>>,
}

/// One operation.
#[derive(Debug, Serialize)]
pub struct Route<'a> {
    method: &'static str,
    path: &'a str,
    operation: &'a str,
    params: Vec<Param<'a>>,
    upstream: Option<&'a str>,
    upstream_path: Option<String>,
    aggregate: Option<Aggregate<'a>>,
    timeout_ms: u128,
    max_body_bytes: u64,
    security: Vec<Vec<SchemeUse<'a>>>,
    plan_limits: bool,
    rate_limits: Vec<RateLimit>,
    version: Option<Version<'a>>,
    deprecated: bool,
    sunset: Option<String>,
    cache: Option<Cache<'a>>,
    transform: bool,
    health_check: bool,
    retryable: bool,
    source: &'a str,
}

#[derive(Debug, Serialize)]
struct Param<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<&'a [String]>,
}

#[derive(Debug, Serialize)]
struct Aggregate<'a> {
    shape: &'static str,
    deadline_ms: u128,
    parts: Vec<Part<'a>>,
}

#[derive(Debug, Serialize)]
struct Part<'a> {
    name: &'a str,
    upstream: &'a str,
    path: String,
    query: Option<String>,
    optional: bool,
    timeout_ms: u128,
}

#[derive(Debug, Serialize)]
struct SchemeUse<'a> {
    scheme: &'a str,
    scopes: &'a [String],
}

#[derive(Debug, Serialize)]
struct RateLimit {
    limit: u64,
    period_ms: u128,
    burst: u64,
    key: String,
}

#[derive(Debug, Serialize)]
struct Version<'a> {
    name: &'a str,
    selected_by: &'static str,
    header: Option<&'a str>,
    value: &'a str,
    default: bool,
}

#[derive(Debug, Serialize)]
struct Cache<'a> {
    ttl_ms: Option<u128>,
    stale_if_error_ms: Option<u128>,
    stale_while_revalidate_ms: Option<u128>,
    vary: &'a [String],
}

/// The route table as data; see docs/cli.md for the meaning of each field.
pub fn json(model: &Model) -> Routes<'_> {
    use crate::model::ParamType;
    let routes = model
        .operations
        .iter()
        .map(|op| Route {
            method: op.method.as_str(),
            path: &op.path.raw,
            operation: &op.id,
            params: op
                .params
                .iter()
                .map(|p| {
                    let (ty, values) = match &p.ty {
                        ParamType::String => ("string", None),
                        ParamType::Int32 => ("int32", None),
                        ParamType::Int64 => ("int64", None),
                        ParamType::Number => ("number", None),
                        ParamType::Boolean => ("boolean", None),
                        ParamType::Enum(v) => ("enum", Some(&v[..])),
                        ParamType::Uuid => ("uuid", None),
                        ParamType::Path => ("path", None),
                    };
                    Param {
                        name: &p.name,
                        ty,
                        values,
                    }
                })
                .collect(),
            upstream: op.aggregate.is_none().then_some(op.upstream.as_str()),
            upstream_path: op.aggregate.is_none().then(|| upstream_path(op)),
            aggregate: op.aggregate.as_ref().map(|agg| Aggregate {
                shape: match agg.shape {
                    Shape::Parts => "parts",
                    Shape::Merge => "merge",
                },
                deadline_ms: agg.deadline.as_millis(),
                parts: agg
                    .parts
                    .iter()
                    .map(|p| Part {
                        name: &p.name,
                        upstream: &p.upstream,
                        path: part_text(op, &p.path),
                        query: (!p.query.is_empty()).then(|| part_text(op, &p.query)),
                        optional: p.optional,
                        timeout_ms: p.timeout.as_millis(),
                    })
                    .collect(),
            }),
            timeout_ms: op.timeout.as_millis(),
            max_body_bytes: op.max_body,
            security: op
                .security
                .iter()
                .map(|alt| {
                    alt.iter()
                        .map(|u| SchemeUse {
                            scheme: model.schemes.get(u.scheme).map_or("?", |s| &s.name),
                            scopes: &u.scopes,
                        })
                        .collect()
                })
                .collect(),
            plan_limits: !model.plans.is_empty(),
            rate_limits: op
                .rate_limits
                .iter()
                .map(|l| RateLimit {
                    limit: l.rate.limit,
                    period_ms: l.rate.period.as_millis(),
                    burst: l.rate.burst,
                    key: key_text(&l.key),
                })
                .collect(),
            version: op.version.and_then(|i| model.versions.get(i)).map(|v| {
                let (selected_by, header, value) = match &v.selector {
                    VersionSelector::Prefix(p) => ("prefix", None, p.as_str()),
                    VersionSelector::Header { name, value } => {
                        ("header", Some(name.as_str()), value.as_str())
                    }
                    VersionSelector::MediaType(m) => ("media_type", None, m.as_str()),
                };
                Version {
                    name: &v.name,
                    selected_by,
                    header,
                    value,
                    default: v.default,
                }
            }),
            deprecated: op.deprecation.as_ref().is_some_and(|d| d.deprecated),
            sunset: op
                .deprecation
                .as_ref()
                .and_then(|d| d.sunset)
                .map(|s| gatewayc_vocab::calendar::DateTime::from_unix(s).to_string()),
            cache: op.cache.as_ref().map(|c| Cache {
                ttl_ms: c.ttl.map(|d| d.as_millis()),
                stale_if_error_ms: c.stale_if_error.map(|d| d.as_millis()),
                stale_while_revalidate_ms: c.stale_while_revalidate.map(|d| d.as_millis()),
                vary: &c.vary,
            }),
            transform: op.transform.is_some(),
            health_check: op.health_check,
            retryable: op.retryable,
            source: &op.source,
        })
        .collect();
    Routes {
        gateway: &model.name,
        routes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    use crate::lower::test_model as model;

    const SPEC: &str = r#"
openapi: 3.1.0
info: { title: Pets, version: "1" }
x-gateway:
  name: pets
  upstreams:
    pets: { url: "http://127.0.0.1:9", timeout: 5s }
    owners: "http://127.0.0.1:9"
  defaults: { upstream: pets, max_body: 1MiB }
  plans:
    free: { rate: 10/s }
security:
  - bearer: [pets:read]
paths:
  /pets/{petId}:
    get:
      operationId: getPet
      parameters: [{ name: petId, in: path, required: true, schema: { type: integer } }]
      deprecated: true
      x-gateway:
        path: /internal/pets/{petId}
        timeout: 2s
        rate_limit: { rate: 5/s, key: "header:X-Tenant" }
        cache: { ttl: 30s, vary: [accept] }
      responses: { "200": { description: ok } }
  /pets/{petId}/card:
    get:
      operationId: petCard
      security: []
      parameters: [{ name: petId, in: path, required: true, schema: { type: string } }]
      x-gateway:
        aggregate:
          parts:
            pet: { path: "/pets/{petId}" }
            owner: { upstream: owners, path: "/owners?pet={petId}", optional: true }
      responses: { "200": { description: ok } }
components:
  securitySchemes:
    bearer:
      type: http
      scheme: bearer
      x-gateway: { jwt: { jwks_url: "https://id.example.test/jwks" } }
"#;

    #[test]
    fn json_has_a_field_for_every_column_of_the_table() {
        let model = model(SPEC);
        let v: Value = serde_json::to_value(json(&model)).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(v["gateway"], "pets");
        let get = &v["routes"][0];
        assert_eq!(
            *get,
            json!({
                "method": "GET",
                "path": "/pets/{petId}",
                "operation": "getPet",
                "params": [{ "name": "petId", "type": "int64" }],
                "upstream": "pets",
                "upstream_path": "/internal/pets/{petId}",
                "aggregate": null,
                "timeout_ms": 2000,
                "max_body_bytes": 1_048_576,
                "security": [[{ "scheme": "bearer", "scopes": ["pets:read"] }]],
                "plan_limits": true,
                "rate_limits": [{ "limit": 5, "period_ms": 1000, "burst": 5, "key": "header:x-tenant" }],
                "version": null,
                "deprecated": true,
                "sunset": null,
                "cache": { "ttl_ms": 30000, "stale_if_error_ms": null, "stale_while_revalidate_ms": null, "vary": ["accept"] },
                "transform": false,
                "health_check": false,
                "retryable": false,
                "source": "t.yaml#/paths/~1pets~1{petId}/get"
            })
        );
        let card = &v["routes"][1];
        assert_eq!(card["operation"], "petCard");
        assert_eq!(card["upstream"], Value::Null);
        assert_eq!(card["upstream_path"], Value::Null);
        assert_eq!(card["security"], json!([]));
        assert_eq!(
            card["aggregate"]["parts"],
            json!([
                { "name": "pet", "upstream": "pets", "path": "/pets/{petId}", "query": null, "optional": false, "timeout_ms": card["aggregate"]["parts"][0]["timeout_ms"] },
                { "name": "owner", "upstream": "owners", "path": "/owners", "query": "pet={petId}", "optional": true, "timeout_ms": card["aggregate"]["parts"][1]["timeout_ms"] }
            ])
        );
        assert_eq!(card["aggregate"]["shape"], "parts");
    }

    #[test]
    fn the_table_and_the_json_agree() {
        let model = model(SPEC);
        let table = table(&model);
        let row: Vec<&str> = table
            .lines()
            .find(|l| l.contains("getPet"))
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        assert_eq!(
            row,
            [
                "GET",
                "/pets/{petId}",
                "getPet",
                "pets",
                "/internal/pets/{petId}",
                "2000ms",
                "bearer[pets:read]",
                "plan,",
                "5/1s",
                "per",
                "header:x-tenant"
            ]
        );
    }
}
