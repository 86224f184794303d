//! The vocabulary `gatewayc` (the compiler) and `gatewayc-runtime` must agree on.
//!
//! The runtime never depends on the compiler, yet both read and write the same things: the
//! names of the metrics a gateway exports (the compiler writes dashboards that query them),
//! and the formats and syntax listed in each module here. Each fact lives here once; a
//! change here is a change of both sides, checked by both sides' tests.
//!
//! This crate has no dependencies, so it costs a generated gateway nothing to build.

pub mod calendar;
pub mod env;
pub mod headers;
pub mod jwt;
pub mod keys;
pub mod media;
pub mod metrics;
pub mod net;
pub mod size;

/// The version of the interface between generated gateway code and `gatewayc-runtime`: the
/// shape of the runtime's `Gateway` trait and `*Def` types. The compiler writes it into
/// every generated crate, which asserts at compile time that the runtime it builds against
/// has the same. A field added with a default (`OperationDef::DEFAULT`) keeps it; removing,
/// renaming or retyping one raises it. 3: `UpstreamDef` gained `targets` and `balance`, and
/// with them a `DEFAULT` (crates generated for 2 write it without `..UpstreamDef::DEFAULT`).
/// 4: operations name generated validators (`OperationDef::validate`, the types of
/// `validate::request`), which a runtime for 3 does not have.
pub const INTERFACE: u32 = 4;
