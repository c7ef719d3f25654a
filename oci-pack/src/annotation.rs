//! The annotation keys the engine reads and writes, in one place.

/// Names an `index.json` entry by its tag, as skopeo, podman and umoci look it up.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// The full image name of an `index.json` entry, which containerd and podman use to name what
/// they load.
pub const CONTAINERD_IMAGE_NAME: &str = "io.containerd.image.name";
/// The parent image's name, on a manifest built on it.
pub const BASE_NAME: &str = "org.opencontainers.image.base.name";
/// The parent manifest's digest, on a manifest built on it.
pub const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";
/// When an image or artifact was made, RFC 3339.
pub const CREATED: &str = "org.opencontainers.image.created";
/// A blob's file name, e.g. an SBOM's `app.linux-amd64.spdx.json`.
pub const TITLE: &str = "org.opencontainers.image.title";
/// The predicate type of an in-toto attestation an artifact holds, as buildx and cosign
/// annotate it (`https://slsa.dev/provenance/v1`).
pub const PREDICATE_TYPE: &str = "in-toto.io/predicate-type";
