//! Test material this repository does not hold, and tools it does not install: the corpus
//! of real API descriptions and the JWT fixtures (both kept beside the repository, in
//! `../shared`), and independent checkers such as the SARIF validator.
//!
//! A clone of the repository alone must pass `cargo test --workspace`, so a test whose
//! material is absent says so, once, and passes. CI always has the material: there
//! (`CI=true`) its absence fails the test with the same message.

use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Whether this is a CI run (`CI=true`), where nothing may be missing.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Reports that the running test cannot go on without some material or tool: `message`
/// says which, and how to provide it.
///
/// Under `CI=true` it panics with that message. Otherwise it writes one notice to the
/// process's standard error (past the test harness's capture, so it is seen) naming the
/// test, and returns: the caller then ends the test.
pub fn missing(message: &str) {
    if in_ci() {
        panic!("{message} (CI=true: nothing may be skipped)");
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("a test");
    // Straight to the file descriptor: `eprintln!` output of a passing test is swallowed.
    let _ = writeln!(std::io::stderr(), "note: skipped {test}: {message}");
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A directory of material: `$var` when set, else `beside` under `../shared` next to the
/// repository. `None`, after [`missing`], when it has no file `probe`.
fn shared_dir(what: &str, var: &str, beside: &str, probe: &str) -> Option<PathBuf> {
    let dir = std::env::var_os(var).map_or_else(
        || root().join("..").join("shared").join(beside),
        PathBuf::from,
    );
    if dir.join(probe).is_file() {
        return Some(dir);
    }
    missing(&format!(
        "{what} not found (no {probe} in {}); they are read from ../shared/{beside} beside the repository, or from the directory ${var} names",
        dir.display()
    ));
    None
}

/// The JWT fixtures: tokens minted and keys made by an implementation independent of
/// this project (`tokens.json`, `jwks.json`, `jwks-rotated.json`, `keys/`).
pub fn jwt_fixtures() -> Option<PathBuf> {
    shared_dir(
        "the JWT fixtures",
        "GATEWAYC_JWT_FIXTURES",
        "fixtures/jwt",
        "tokens.json",
    )
}

/// The corpus of real API descriptions, with its `MANIFEST.tsv`. `tests/build.rs` reads
/// the same place to compile their routers.
pub fn corpus() -> Option<PathBuf> {
    shared_dir(
        "the API description corpus",
        "GATEWAYC_CORPUS",
        "corpus",
        "MANIFEST.tsv",
    )
}
