//! The media types the engine reads and writes.

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Docker's schema 2 types, which parents pulled by skopeo or saved by docker still carry.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST
}

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
