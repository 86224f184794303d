//! The JWT fixtures for the unit tests of `auth`: tokens minted and keys made by an
//! implementation independent of this project, kept beside the repository in
//! `../shared/fixtures/jwt` (or where `$GATEWAYC_JWT_FIXTURES` points), not in it.
//!
//! A clone of the repository alone must pass its tests, so without the fixtures a test
//! that needs them says so once and passes; under `CI=true`, where they are always
//! present, their absence fails it.

use std::io::Write as _;
use std::path::PathBuf;

/// Where the fixtures are expected.
pub(crate) fn jwt_dir() -> PathBuf {
    std::env::var_os("GATEWAYC_JWT_FIXTURES").map_or_else(
        || {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shared/fixtures/jwt"
            ))
        },
        PathBuf::from,
    )
}

/// The fixtures' directory; `None` (after a notice, or a panic under `CI=true`) when it
/// has no `tokens.json`. A test that reads the fixtures starts with this check.
pub(crate) fn jwt() -> Option<PathBuf> {
    let dir = jwt_dir();
    if dir.join("tokens.json").is_file() {
        return Some(dir);
    }
    let message = format!(
        "the JWT fixtures not found (no tokens.json in {}); they are read from ../shared/fixtures/jwt beside the repository, or from the directory $GATEWAYC_JWT_FIXTURES names",
        dir.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message} (CI=true: nothing may be skipped)");
    }
    let thread = std::thread::current();
    // Straight to the file descriptor: `eprintln!` output of a passing test is swallowed.
    let _ = writeln!(
        std::io::stderr(),
        "note: skipped {}: {message}",
        thread.name().unwrap_or("a test")
    );
    None
}
