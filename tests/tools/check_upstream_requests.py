#!/usr/bin/env python3
"""Checks what an upstream received against the OpenAPI 3.1 document of the gateway in
front of it, with PyPI's `jsonschema` (an implementation independent of gatewayc's
generated validators).

Usage: check_upstream_requests.py SPEC RECORDS

SPEC is the OpenAPI 3.1 document (YAML or JSON). RECORDS is a file of JSON lines, one per
request the upstream received: `{"method": "POST", "path": "/pets?x=1", "content_type":
"application/json", "body": "<base64>"}`.

Each request is matched to its operation by method and path (the spec's path template,
or the operation's `x-gateway.path` rewrite). Then:

- a JSON body is parsed and validated against the operation's JSON request body schema
  (formats asserted); a missing body where `requestBody.required` is a violation;
- path parameters and scalar query parameters are read as JSON where their text is JSON
  (`5`, `true`), else as strings, and validated against their schemas.

Prints one summary line of JSON: `{"requests": N, "bodies": B, "parameters": P,
"unmatched": [...], "invalid": [...]}`.

Exit status: 0 when every request is valid, 1 when one is not or matches no operation,
2 when `jsonschema` or `yaml` is not installed.
"""

import base64
import json
import re
import sys
import urllib.parse


def main() -> int:
    try:
        import jsonschema
        import referencing
        import yaml
    except ImportError as e:
        print(
            f"check_upstream_requests.py: {e}; install it: python3 -m pip install jsonschema pyyaml",
            file=sys.stderr,
        )
        return 2
    spec_path, records_path = sys.argv[1], sys.argv[2]
    with open(spec_path, encoding="utf-8") as f:
        spec = yaml.safe_load(f)
    if not str(spec.get("openapi", "")).startswith("3.1"):
        print(f"{spec_path}: only OpenAPI 3.1 documents are read", file=sys.stderr)
        return 1
    uri = "urn:gateway-spec"
    registry = referencing.Registry().with_resource(
        uri,
        referencing.Resource.from_contents(
            spec, default_specification=referencing.jsonschema.DRAFT202012
        ),
    )

    def validator(pointer: str):
        return jsonschema.Draft202012Validator(
            {"$ref": f"{uri}#{pointer}"},
            registry=registry,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )

    def esc(token: str) -> str:
        return token.replace("~", "~0").replace("/", "~1")

    def deref(node, pointer):
        """A local `$ref` followed: (the node, its JSON pointer)."""
        for _ in range(8):
            ref = node.get("$ref") if isinstance(node, dict) else None
            if not ref:
                return node, pointer
            pointer = ref[1:]
            node = spec
            for token in pointer.split("/")[1:]:
                node = node[token.replace("~1", "/").replace("~0", "~")]
        return node, pointer

    # (method, compiled path regex, parameter names, operation, its pointer, path item)
    routes = []
    for template, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            upstream = (op.get("x-gateway") or {}).get("path") or template
            names = re.findall(r"\{([^}]+)\}", upstream)
            regex = "^" + re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(upstream)) + "$"
            routes.append(
                (method.upper(), re.compile(regex), names, op,
                 f"/paths/{esc(template)}/{method}", item, template)
            )

    def parameters(item, op, op_ptr, template):
        out = {}
        for base, node in ((f"/paths/{esc(template)}", item), (op_ptr, op)):
            for i, p in enumerate(node.get("parameters", [])):
                p, ptr = deref(p, f"{base}/parameters/{i}")
                if "schema" in p:
                    out[(p["name"], p["in"])] = (p, f"{ptr}/schema")
        return out

    def as_json(text: str):
        try:
            return json.loads(text)
        except ValueError:
            return text

    counts = {"requests": 0, "bodies": 0, "parameters": 0, "unmatched": [], "invalid": []}
    with open(records_path, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    for r in records:
        counts["requests"] += 1
        path, _, query = r["path"].partition("?")
        found = None
        for method, regex, names, op, op_ptr, item, template in routes:
            m = regex.match(path)
            if method == r["method"] and m:
                found = (names, m, op, op_ptr, item, template)
                break
        if found is None:
            counts["unmatched"].append(f'{r["method"]} {r["path"]}')
            continue
        names, m, op, op_ptr, item, template = found
        where = f'{r["method"]} {r["path"]}'

        def check(pointer, value, what):
            for e in validator(pointer).iter_errors(value):
                counts["invalid"].append(
                    f"{where}: {what} {json.dumps(value)[:200]}: {e.message} (at {e.json_path})"
                )

        params = parameters(item, op, op_ptr, template)
        for name, text in zip(names, m.groups()):
            if (name, "path") in params:
                counts["parameters"] += 1
                check(params[(name, "path")][1], as_json(urllib.parse.unquote(text)), f"path `{name}`")
        given = urllib.parse.parse_qs(query, keep_blank_values=True)
        for (name, loc), (p, ptr) in params.items():
            schema, _ = deref(p["schema"], ptr)
            if loc != "query" or name not in given or schema.get("type") in ("array", "object"):
                continue
            counts["parameters"] += 1
            check(ptr, as_json(given[name][0]), f"query `{name}`")

        body = base64.b64decode(r.get("body") or "")
        rb = op.get("requestBody")
        if rb is None:
            continue
        rb, rb_ptr = deref(rb, f"{op_ptr}/requestBody")
        media = (r.get("content_type") or "").split(";")[0].strip().lower()
        content = rb.get("content", {})
        if not body:
            if rb.get("required"):
                counts["invalid"].append(f"{where}: the required body is missing")
            continue
        if not (media == "application/json" or media.endswith("+json")):
            if all(m == "application/json" or m.endswith("+json") for m in content):
                counts["invalid"].append(f"{where}: a `{media}` body where only JSON is declared")
            continue
        schema_media = next(
            (m for m, c in content.items()
             if (m == "application/json" or m.endswith("+json")) and "schema" in c),
            None,
        )
        if schema_media is None:
            continue
        counts["bodies"] += 1
        try:
            value = json.loads(body)
        except ValueError as e:
            counts["invalid"].append(f"{where}: the body is not JSON: {e}")
            continue
        check(f"{rb_ptr}/content/{esc(schema_media)}/schema", value, "body")

    print(json.dumps(counts))
    return 1 if counts["invalid"] or counts["unmatched"] else 0


if __name__ == "__main__":
    sys.exit(main())
