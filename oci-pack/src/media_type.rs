//! The media types the engine reads and writes.

/// An OCI image index: one manifest per platform, or a layout's `index.json`.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// An OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// An OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// An uncompressed layer.
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// A gzip-compressed layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// A zstd-compressed layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
/// The `{}` config of an artifact that needs none.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
/// An SPDX document in JSON.
pub const SPDX_JSON: &str = "application/spdx+json";
/// A CycloneDX document in JSON.
pub const CYCLONEDX_JSON: &str = "application/vnd.cyclonedx+json";
/// An in-toto statement (an attestation, such as SLSA provenance), unsigned.
pub const IN_TOTO_JSON: &str = "application/vnd.in-toto+json";
/// A DSSE envelope: a signed payload (an in-toto statement), as the in-toto attestation
/// framework names it.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";

/// Docker's schema 2 manifest list, its image index; parents pulled by skopeo or saved by
/// docker still carry Docker's types.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's image config, the same JSON as [`OCI_CONFIG`].
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's gzip-compressed layer, the same bytes as [`OCI_LAYER_GZIP`].
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Whether a blob of this type is an image index, OCI's or Docker's.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

/// Whether a blob of this type is an image manifest, OCI's or Docker's.
pub fn is_manifest(media_type: &str) -> bool {
    media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST
}

/// The OCI name of a layer type we can read; the bytes are the same, only the name differs.
pub fn oci_layer(media_type: &str) -> Option<&'static str> {
    match media_type {
        OCI_LAYER_TAR => Some(OCI_LAYER_TAR),
        OCI_LAYER_GZIP | DOCKER_LAYER_GZIP => Some(OCI_LAYER_GZIP),
        OCI_LAYER_ZSTD => Some(OCI_LAYER_ZSTD),
        _ => None,
    }
}

/// Whether moby's classic `docker load` reads layers of this type: plain and gzip tars only.
pub fn docker_loads(media_type: &str) -> bool {
    matches!(oci_layer(media_type), Some(OCI_LAYER_TAR | OCI_LAYER_GZIP))
}
