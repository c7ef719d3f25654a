//! `oci-pack`: the image engine of `cargo oci`, a library with no knowledge of Cargo.
//!
//! Everything is built around a content-addressed [`store::BlobStore`]: layers, configs and
//! manifests are written into it once, and every output format is a view of it.
//! The engine never prints, never exits and never reads the environment; the caller passes in
//! what it needs (such as the `SOURCE_DATE_EPOCH` timestamp) and listens through
//! [`progress::Progress`]. The one exception is the registry client (the `registry` feature),
//! which, like any HTTP client, honours the proxy (`HTTPS_PROXY`, `NO_PROXY`, …) and trusted
//! certificate (`SSL_CERT_FILE`, `SSL_CERT_DIR`) variables.

pub mod annotation;
pub mod archive;
pub mod cache;
pub mod check;
pub mod compress;
pub mod config;
pub mod descriptor;
pub mod diff;
pub mod digest;
pub mod docker;
pub mod elf;
pub mod error;
pub mod graph;
pub mod image;
pub mod index;
pub mod json;
pub mod layer;
pub mod layout;
pub mod manifest;
pub mod media_type;
pub mod output;
pub mod path;
pub mod platform;
pub mod progress;
pub mod reference;
#[cfg(feature = "registry")]
pub mod registry;
pub mod source;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timestamp;
pub mod tree;

pub use error::{Error, Result};
