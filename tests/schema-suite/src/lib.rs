//! The JSON Schema Test Suite (json-schema-org's, kept outside the repository in
//! `../shared/fixtures/json-schema-test-suite` or `$GATEWAYC_JSON_SCHEMA_SUITE`) run through
//! the validators gatewayc generates: the outside measure of `compiler/src/validate/`.
//!
//! `build.rs` compiles the schema of every group of every file of `draft2020-12/` and
//! `draft4/` (optional ones included) into a module of validator functions, with warnings
//! denied; the `suite` test (`suite.rs`) runs each case and checks its verdict, and checks
//! that `SKIPPED.md` lists exactly what is left out and why, and checks the exact
//! violations (pointers and details) of the values in `violations.json`. Run it with
//! `cargo test -p gatewayc-schema-suite`.
