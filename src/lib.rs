//! `cargo oci`, as a library: the same build `cargo oci build` runs, from a team's own `xtask`
//! or release tooling, with each option set in code and a typed result.
//!
//! ```no_run
//! // xtask/src/main.rs: `cargo xtask image` builds and pushes every image of the workspace.
//! let images = cargo_oci::Build::new()
//!     .workspace()
//!     .push("ghcr.io/acme")
//!     .run()?;
//! for image in images {
//!     println!("{} {}", image.pushed.unwrap_or_default(), image.tags.join(", "));
//! }
//! # Ok::<(), cargo_oci::Error>(())
//! ```
//!
//! The image engine underneath, with no knowledge of Cargo, is the `oci-pack` crate.

#![deny(missing_docs)]

mod api;
mod attestation;
mod build;
mod cargo;
pub mod cli;
mod commands;
mod error;
mod index;
mod init;
mod inspect;
mod plan;
mod push;
mod registry;
mod report;
mod run;
mod shell;
mod text;
mod verify;

pub use api::{Build, Image, Output};

/// The README's Rust examples, compiled as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeExamples;
pub use error::{Error, ErrorKind};
pub use plan::{Format, Loader, MessageFormat, SbomFormat};
pub use shell::Verbosity;
