//! Example responses for mock mode, taken from the spec.
//!
//! For the first success response (the lowest 2xx, else `default`), the example comes
//! from, in order: the media type's `example`, its first `examples` entry, the schema's
//! `example` or `examples`, and last a value built from the schema's shape. JSON media types
//! are preferred. The result is what a new user sees before any upstream exists.

use serde_json::{Map, Value};

use crate::model::Example;
use crate::spec::source::child;
use crate::spec::{Resolved, Spec};

/// Largest synthesised example, in nodes; keeps huge schemas from making huge mocks.
const BUDGET: usize = 200;

/// The example response of an operation, if its responses describe one.
pub fn pick(spec: &Spec, op: &Resolved<'_>, swagger2: bool) -> Option<Example> {
    let responses_ptr = child(&op.pointer, "responses");
    let responses = spec.deref(op.file, &responses_ptr, op.value.get("responses")?)?;
    let map = responses.value.as_object()?;
    let mut codes: Vec<(&String, u16)> = map
        .keys()
        .filter_map(|k| {
            let status = match k.as_str() {
                "2XX" | "2xx" => Some(200),
                "default" => Some(999),
                other => other.parse::<u16>().ok().filter(|c| (200..300).contains(c)),
            };
            status.map(|s| (k, s))
        })
        .collect();
    codes.sort_by_key(|(_, s)| *s);
    let (key, status) = codes.first().copied()?;
    let status = if status == 999 { 200 } else { status };
    let resp = spec.deref(
        responses.file,
        &child(&responses.pointer, key),
        map.get(key)?,
    )?;
    if swagger2 {
        let media = resp.value.get("examples").and_then(Value::as_object);
        if let Some((ct, v)) = media.and_then(|m| {
            m.iter()
                .find(|(k, _)| k.contains("json"))
                .or_else(|| m.iter().next())
        }) {
            return Some(render(status, ct, v));
        }
        let schema = resp
            .value
            .get("schema")
            .and_then(|s| spec.deref(resp.file, &child(&resp.pointer, "schema"), s));
        return Some(match schema {
            Some(s) => render(
                status,
                "application/json",
                &synthesise(spec, &s, &mut BUDGET.clone(), 0),
            ),
            None => Example {
                status,
                content_type: String::new(),
                body: String::new(),
            },
        });
    }
    let Some(content) = resp.value.get("content").and_then(Value::as_object) else {
        return Some(Example {
            status,
            content_type: String::new(),
            body: String::new(),
        });
    };
    let (ct, media) = content
        .iter()
        .find(|(k, _)| k.starts_with("application/json"))
        .or_else(|| content.iter().find(|(k, _)| k.contains("json")))
        .or_else(|| content.iter().next())?;
    let media_ptr = child(&child(&resp.pointer, "content"), ct);
    if let Some(v) = media.get("example") {
        return Some(render(status, ct, v));
    }
    if let Some((name, ex)) = media
        .get("examples")
        .and_then(Value::as_object)
        .and_then(|m| m.iter().next())
    {
        let ex_ptr = child(&child(&media_ptr, "examples"), name);
        if let Some(v) = spec
            .deref(resp.file, &ex_ptr, ex)
            .and_then(|e| e.value.get("value"))
        {
            return Some(render(status, ct, v));
        }
    }
    let schema = media
        .get("schema")
        .and_then(|s| spec.deref(resp.file, &child(&media_ptr, "schema"), s));
    Some(match schema {
        Some(s) => render(status, ct, &synthesise(spec, &s, &mut BUDGET.clone(), 0)),
        None => Example {
            status,
            content_type: ct.clone(),
            body: String::new(),
        },
    })
}

fn render(status: u16, content_type: &str, value: &Value) -> Example {
    let body = match value {
        Value::String(s) if !content_type.contains("json") => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    Example {
        status,
        content_type: content_type.to_owned(),
        body,
    }
}

/// A plausible value for a schema: its own example, or one built from its shape.
pub(super) fn for_schema(spec: &Spec, schema: &Resolved<'_>) -> Value {
    synthesise(spec, schema, &mut BUDGET.clone(), 0)
}

/// A plausible value for a schema, within `budget` nodes.
fn synthesise(spec: &Spec, schema: &Resolved<'_>, budget: &mut usize, depth: usize) -> Value {
    if *budget == 0 || depth > 6 {
        return Value::Null;
    }
    *budget -= 1;
    let s = schema.value;
    for key in ["example", "const", "default"] {
        if let Some(v) = s.get(key) {
            return v.clone();
        }
    }
    if let Some(v) = s
        .get("examples")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return v.clone();
    }
    if let Some(v) = s
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
    {
        return v.clone();
    }
    let sub = |key: &str, budget: &mut usize| -> Option<Value> {
        let list = s.get(key)?.as_array()?;
        let mut merged: Option<Value> = None;
        for (i, item) in list.iter().enumerate() {
            let ptr = child(&child(&schema.pointer, key), &i.to_string());
            let r = spec.deref(schema.file, &ptr, item)?;
            let v = synthesise(spec, &r, budget, depth + 1);
            if key != "allOf" {
                return Some(v);
            }
            merged = Some(match (merged, v) {
                (Some(Value::Object(mut a)), Value::Object(b)) => {
                    a.extend(b);
                    Value::Object(a)
                }
                (_, v) => v,
            });
        }
        merged
    };
    for key in ["allOf", "oneOf", "anyOf"] {
        if let Some(v) = sub(key, budget) {
            return v;
        }
    }
    let ty = match s.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if s.get("properties").is_some() => "object",
        _ => "",
    };
    match ty {
        "object" => {
            let mut out = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    if *budget == 0 {
                        break;
                    }
                    let ptr = child(&child(&schema.pointer, "properties"), name);
                    if let Some(r) = spec.deref(schema.file, &ptr, prop) {
                        out.insert(name.clone(), synthesise(spec, &r, budget, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => match s
            .get("items")
            .and_then(|i| spec.deref(schema.file, &child(&schema.pointer, "items"), i))
        {
            Some(items) => Value::Array(vec![synthesise(spec, &items, budget, depth + 1)]),
            None => Value::Array(Vec::new()),
        },
        "integer" => Value::from(0),
        "number" => Value::from(0.0),
        "boolean" => Value::Bool(true),
        "string" => Value::String(
            match s.get("format").and_then(Value::as_str) {
                Some("date-time") => "2026-01-01T00:00:00Z",
                Some("date") => "2026-01-01",
                Some("uuid") => "00000000-0000-4000-8000-000000000000",
                Some("email") => "user@example.com",
                Some("uri") | Some("url") => "https://example.com/",
                _ => "string",
            }
            .to_owned(),
        ),
        _ => Value::Null,
    }
}
