//! The generator's own checks: what is reported, what code a keyword becomes, and that
//! references are shared and cycles broken. The JSON Schema Test Suite run
//! (`tests/schema-suite`) checks that the code accepts and rejects the right values.

use serde_json::{Value, json};

use super::{Dialect, Document, Generated, Reason, Validators};

fn generate(schema: &Value, dialect: Dialect) -> Generated {
    let doc = Document::new(schema);
    let mut v = Validators::new(&doc);
    v.add("root", 0, "", dialect).expect("the root exists");
    v.finish()
}

fn code(g: &Generated) -> String {
    g.source(proc_macro2::TokenStream::new())
}

fn reasons(g: &Generated) -> Vec<(String, String, Reason)> {
    g.unsupported
        .iter()
        .map(|u| (u.keyword.clone(), u.pointer.clone(), u.reason))
        .collect()
}

#[test]
fn unenforced_keywords_are_reported_with_where_and_why() {
    let g = generate(
        &json!({
            "properties": {
                "a": {"unevaluatedProperties": false, "format": "hostname"},
                "b": {"$ref": "https://example.com/x.json"},
                "c": {"pattern": "(?=x)y", "maxLenght": 3, "nullable": true},
                "d": {"minLength": "3", "contentMediaType": "application/json"}
            },
            "title": "annotations are not reported",
            "x-extension": 1
        }),
        Dialect::Draft2020,
    );
    assert_eq!(
        reasons(&g),
        vec![
            (
                "unevaluatedProperties".into(),
                "/properties/a/unevaluatedProperties".into(),
                Reason::NotEnforced
            ),
            (
                "format".into(),
                "/properties/a/format".into(),
                Reason::FormatNotChecked
            ),
            (
                "$ref".into(),
                "/properties/b/$ref".into(),
                Reason::RefNotFollowed
            ),
            (
                "pattern".into(),
                "/properties/c/pattern".into(),
                Reason::InvalidValue
            ),
            (
                "maxLenght".into(),
                "/properties/c/maxLenght".into(),
                Reason::UnknownKeyword
            ),
            (
                "nullable".into(),
                "/properties/c/nullable".into(),
                Reason::UnknownKeyword
            ),
            (
                "minLength".into(),
                "/properties/d/minLength".into(),
                Reason::InvalidValue
            ),
            (
                "contentMediaType".into(),
                "/properties/d/contentMediaType".into(),
                Reason::AnnotationOnly
            ),
        ]
    );
    assert!(
        g.unsupported[4]
            .detail
            .contains("`maxLenght` is not a keyword")
    );
    assert!(g.unsupported[5].detail.contains("type: [T, \"null\"]"));
}

#[test]
fn dialects_differ_where_the_specifications_do() {
    // 3.0: `nullable` is a keyword, `const` is not, `$ref` replaces its siblings.
    let g = generate(
        &json!({
            "type": "string", "nullable": true, "const": "x",
            "properties": {"p": {"$ref": "#/properties/q", "maxLength": 2}, "q": {"type": "string"}}
        }),
        Dialect::OpenApi30,
    );
    assert_eq!(
        reasons(&g),
        vec![
            ("const".into(), "/const".into(), Reason::UnknownKeyword),
            (
                "maxLength".into(),
                "/properties/p/maxLength".into(),
                Reason::IgnoredBesideRef
            ),
        ]
    );
    let text = code(&g);
    assert!(text.contains(r#"Detail::Type("string or null")"#), "{text}");
    assert!(!text.contains("MaxLength"), "{text}");
    // Draft 4: boolean exclusiveMaximum modifies maximum; 2020-12 rejects that form.
    let g4 = generate(
        &json!({"maximum": 3, "exclusiveMaximum": true}),
        Dialect::Draft4,
    );
    assert!(g4.unsupported.is_empty());
    assert!(code(&g4).contains("ExclusiveMaximum(\"3\")"));
    let g20 = generate(
        &json!({"maximum": 3, "exclusiveMaximum": true}),
        Dialect::Draft2020,
    );
    assert_eq!(reasons(&g20)[0].2, Reason::InvalidValue);
}

#[test]
fn shared_references_are_one_function_and_recursion_is_a_call() {
    let g = generate(
        &json!({
            "$defs": {"node": {"properties": {"next": {"$ref": "#/$defs/node"}, "v": {"$ref": "#/$defs/int"}}},
                      "int": {"type": "integer"}},
            "properties": {"a": {"$ref": "#/$defs/node"}, "b": {"$ref": "#/$defs/node"}}
        }),
        Dialect::Draft2020,
    );
    assert!(g.unsupported.is_empty(), "{:?}", g.unsupported);
    assert_eq!(g.functions, ["root", "schema_node", "schema_int"]);
    let text = code(&g);
    assert_eq!(text.matches("pub fn schema_node(").count(), 1);
    assert!(text.contains("schema_node(v, at, out)"), "{text}");
}

#[test]
fn references_that_never_descend_are_broken_and_reported() {
    let g = generate(
        &json!({"$defs": {"a": {"anyOf": [{"type": "string"}, {"$ref": "#/$defs/b"}]},
                          "b": {"allOf": [{"$ref": "#/$defs/a"}]}},
                "$ref": "#/$defs/a"}),
        Dialect::Draft2020,
    );
    let cycles: Vec<_> = g
        .unsupported
        .iter()
        .filter(|u| u.detail.contains("never end"))
        .map(|u| u.pointer.as_str())
        .collect();
    assert_eq!(cycles, ["/$defs/a/anyOf/1/$ref", "/$defs/b/allOf/0/$ref"]);
    let text = code(&g);
    assert!(
        !text.contains("schema_b(v, at, out)")
            && !text.contains("schema_a(v, at, out);\n    }\n}\n///")
    );
}

#[test]
fn straight_line_code_for_objects() {
    let g = generate(
        &json!({
            "type": "object",
            "required": ["id"],
            "properties": {"id": {"type": "integer", "format": "int64"}, "tag": {"enum": ["a", "b", null]}},
            "additionalProperties": false
        }),
        Dialect::Draft2020,
    );
    let text = code(&g);
    assert!(text.contains("match k.as_str()"), "{text}");
    assert!(
        text.contains(r#""id" =>"#) && text.contains(r#""tag" =>"#),
        "{text}"
    );
    assert!(text.contains("Detail::AdditionalProperty"), "{text}");
    assert!(
        text.contains(r#"matches!(v.as_str(), ::core::option::Option::Some("a" | "b"))"#),
        "{text}"
    );
    assert!(text.contains("is_int64(n)"), "{text}");
    assert!(
        !text.contains("HashMap") && !text.contains(".get(\""),
        "{text}"
    );
}

#[test]
fn read_only_members_are_not_required_in_3_0_requests() {
    let spec = crate::spec::from_yaml(
        "components:\n  schemas:\n    Pet:\n      type: object\n      required: [id, name]\n      properties:\n        id: {$ref: '#/components/schemas/Id'}\n        name: {type: string}\n    Id: {type: integer, readOnly: true}\n",
    );
    let mut v = Validators::new(&spec);
    let name = v
        .add("Pet body", 0, "/components/schemas/Pet", Dialect::OpenApi30)
        .expect("exists");
    assert_eq!(name, "pet_body");
    let text = code(&v.finish());
    assert!(
        text.contains(r#"Detail::Required("name")"#) && !text.contains(r#"Required("id")"#),
        "{text}"
    );
}

#[test]
fn read_only_and_write_only_members_are_required_each_in_one_direction_in_3_0() {
    let spec = crate::spec::from_yaml(
        "components:\n  schemas:\n    Account:\n      type: object\n      required: [id, name, password]\n      properties:\n        id: {$ref: '#/components/schemas/Id'}\n        name: {type: string}\n        password: {type: string, writeOnly: true}\n    Id: {type: integer, readOnly: true}\n",
    );
    let required = |response: bool, dialect: Dialect| {
        let mut v = Validators::new(&spec);
        let added = if response {
            v.add_response("account", 0, "/components/schemas/Account", dialect)
        } else {
            v.add("account", 0, "/components/schemas/Account", dialect)
        };
        added.expect("exists");
        let text = code(&v.finish());
        ["id", "name", "password"]
            .into_iter()
            .filter(|m| text.contains(&format!("Detail::Required(\"{m}\")")))
            .collect::<Vec<_>>()
    };
    assert_eq!(required(false, Dialect::OpenApi30), ["name", "password"]);
    assert_eq!(required(true, Dialect::OpenApi30), ["id", "name"]);
    // In 2020-12 both are annotations: every listed member is required both ways.
    assert_eq!(
        required(true, Dialect::Draft2020),
        ["id", "name", "password"]
    );
    assert_eq!(
        required(false, Dialect::Draft2020),
        ["id", "name", "password"]
    );
}

#[test]
fn swagger_parameters_leave_their_own_fields_out() {
    let spec = crate::spec::from_yaml(
        "parameters:\n  limit: {name: limit, in: query, required: true, type: integer, maximum: 100, collectionFormat: csv}\n",
    );
    let mut v = Validators::new(&spec);
    v.add_swagger2_parameter("limit", 0, "/parameters/limit")
        .expect("exists");
    assert!(v.unsupported().is_empty(), "{:?}", v.unsupported());
    let text = code(&v.finish());
    assert!(text.contains("Detail::Maximum(\"100\")"), "{text}");
}

#[test]
fn malformed_schemas_are_entries_not_panics() {
    for schema in [
        json!(3),
        json!({"type": 3}),
        json!({"type": ["string", "nope"]}),
        json!({"items": [1, 2]}),
        json!({"allOf": []}),
        json!({"$ref": 3}),
        json!({"$ref": "#/nowhere"}),
        json!({"$ref": "#"}),
        json!({"multipleOf": 0}),
        json!({"properties": [1]}),
        json!({"dependentRequired": {"a": [1]}}),
        json!({"patternProperties": {"(": {}}}),
        json!({"enum": 1}),
        json!({"required": "a"}),
    ] {
        let g = generate(&schema, Dialect::Draft2020);
        assert!(!g.unsupported.is_empty(), "{schema}");
        assert!(g.unsupported.iter().all(|u| u.reason.weakens()), "{schema}");
        let _ = code(&g);
    }
    let doc = Document::new(&Value::Null);
    let mut v = Validators::new(&doc);
    assert!(v.add("x", 0, "/missing", Dialect::Draft4).is_err());
}

#[test]
fn output_is_deterministic() {
    let schema = json!({"properties": {"b": {"$ref": "#/$defs/x"}, "a": {"pattern": "^a\\d$"}},
                        "$defs": {"x": {"minimum": 1.5, "multipleOf": 0.5}}});
    let a = code(&generate(&schema, Dialect::Draft2020));
    let b = code(&generate(&schema, Dialect::Draft2020));
    assert_eq!(a, b);
    // Floats are written by their bits: exact, and free of float-literal lints.
    assert!(a.contains("f64::from_bits(4609434218613702656u64)"), "{a}");
    assert!(a.contains("[0-9]"), "{a}");
}

#[test]
fn function_names_never_shadow_the_code_s_own_bindings() {
    let schema = json!({"$defs": {"v": {"type": "string"}}, "items": {"$ref": "#/$defs/v"}});
    let doc = Document::new(&schema);
    let mut v = Validators::new(&doc);
    assert_eq!(v.add("n", 0, "", Dialect::Draft2020).as_deref(), Ok("n_2"));
    assert_eq!(
        v.add("n", 0, "/$defs/v", Dialect::Draft2020).as_deref(),
        Ok("n_3")
    );
    let g = v.finish();
    assert_eq!(g.functions, ["n_2", "schema_v", "n_3"]);
    // The same schema added twice is one function the second root calls.
    assert!(
        code(&g).contains("schema_v(v, at, out);\n}"),
        "{}",
        code(&g)
    );
}
