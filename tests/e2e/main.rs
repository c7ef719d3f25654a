//! The end-to-end tests: the real `cargo-oci` binary on fixture crates, its images judged by the
//! real tools people load them with. One test binary, so fixtures and parent images are built
//! once and linking is paid once.

mod support;

mod archives;
mod auditable;
mod build;
mod cache;
mod ci_templates;
mod command_line;
mod compression;
mod credentials;
mod cross;
mod errors;
mod first_hour;
mod hostile;
mod hostile_registries;
mod inspect;
mod library;
mod mirrors;
mod nonroot;
mod oracles;
mod parents;
mod provenance;
mod registry;
mod reliability;
mod sbom;
mod targets;
mod templates;
mod verify;
mod workspaces;
