//! The gateways generated from `specs/accepted/`, compiled into this crate by `build.rs`,
//! for the end-to-end tests in `e2e/`.

#![allow(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/accepted.rs"));

/// The routers of the shared corpus documents, for the corpus routing test.
pub mod corpus {
    include!(concat!(env!("OUT_DIR"), "/corpus.rs"));
}
