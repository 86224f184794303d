//! The gateways generated from `specs/accepted/`, compiled into this crate by `build.rs`,
//! for the end-to-end tests in `e2e/`; and where those tests find material kept outside
//! the repository (`material`).

#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/accepted.rs"));

pub mod material;

/// The routers of the corpus documents (`material::corpus`), for the corpus routing test;
/// empty when the corpus was absent at build time.
pub mod corpus {
    include!(concat!(env!("OUT_DIR"), "/corpus.rs"));
}
