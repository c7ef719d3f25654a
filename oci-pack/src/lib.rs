//! `oci-pack`: the image engine of `cargo oci`, a library with no knowledge of Cargo.
//!
//! Everything is built around a content-addressed [`BlobStore`]: layers, configs and
//! manifests are written into it once, and every output format is a view of it.
//! The engine never prints, never exits and never reads the environment; the caller passes in
//! what it needs (such as the `SOURCE_DATE_EPOCH` timestamp) and listens through
//! [`Progress`]. The one exception is the registry client (the `registry` feature),
//! which, like any HTTP client, honours the proxy (`HTTPS_PROXY`, `NO_PROXY`, …) and trusted
//! certificate (`SSL_CERT_FILE`, `SSL_CERT_DIR`) variables.
//!
//! The types an image is built, stored and written with, and the errors, are here at the root;
//! the modules that hold them are private. The public modules are namespaces whose items read
//! with their name: [`elf::read`], [`inspect::open`], [`verify::compare`], the spec's
//! [`media_type`]s.
//!
//! # Example
//!
//! An image on `scratch` holding one file, written as an OCI image layout:
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use oci_pack::{
//!     build_image, ImageIndex, ImageRequest, LayerContents, NewLayer, NoProgress, Platform,
//!     Reference, StagedLayout, Timestamp, FIXED_MTIME,
//! };
//!
//! let dir = tempfile::tempdir()?;
//! std::fs::write(dir.path().join("hello.txt"), "Hello, world!\n")?;
//! let mut files = LayerContents::new();
//! files.add_path("/hello.txt", &dir.path().join("hello.txt"))?;
//!
//! // Blobs go straight into the layout, which is moved into place once complete.
//! let layout = StagedLayout::create(&dir.path().join("hello-image"))?;
//! let request = ImageRequest {
//!     platform: Platform::new("linux", "amd64", None),
//!     base: None, // `scratch`
//!     layers: vec![NewLayer {
//!         contents: files,
//!         remove: Vec::new(),
//!         created_by: "COPY hello.txt /".to_owned(),
//!     }],
//!     config: Default::default(),
//!     config_created_by: String::new(),
//!     author: None,
//!     comment: None,
//!     created: Timestamp(1_700_000_000), // SOURCE_DATE_EPOCH
//!     mtime: FIXED_MTIME, // every file's: the layer depends on its contents alone
//!     annotations: BTreeMap::new(),
//!     compression: Default::default(),
//!     keep_tars: false,
//! };
//! let image = build_image(layout.store(), request, None, &mut NoProgress)?;
//! let tag: Reference = "hello:1.0".parse()?;
//! let written = layout.finish(&image.manifest, &[tag], BTreeMap::new())?;
//!
//! // `index.json` names the manifest `build_image` returned, by its tag.
//! let index: ImageIndex = serde_json::from_slice(&std::fs::read(written.join("index.json"))?)?;
//! assert_eq!(index.manifests.len(), 1);
//! assert_eq!(index.manifests[0].digest, image.manifest.digest);
//! assert_eq!(index.manifests[0].annotations["org.opencontainers.image.ref.name"], "1.0");
//! assert!(written.join("blobs/sha256").join(image.manifest.digest.hex()).is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

// The homes of the types re-exported below: callers name those at the root.
mod archive;
mod cache;
mod config;
mod descriptor;
mod diff;
mod digest;
mod docker;
mod error;
mod graph;
mod image;
mod index;
mod layout;
mod manifest;
mod platform;
mod reference;
mod source;
mod store;
mod timestamp;

// Constants named as the specs name them, read with their module's name.
pub mod annotation;
pub mod media_type;

// The binary check: an ELF file's headers, a binary against its image, file capabilities.
pub mod capability;
pub mod check;
pub mod elf;

// Images read back: inspected, checked, compared.
pub mod inspect;
pub mod verify;

// A layer's entries as staged and as read, and its encoder and decoder.
pub mod compress;
pub mod layer;
pub mod tree;

// What the engine reports to its listener.
pub mod progress;

// Rules callers apply themselves: image paths, output destinations, capped JSON documents,
// artifacts attached to an image.
pub mod json;
pub mod output;
pub mod path;
pub mod referrer;

// The features: the registry client, and layers crafted entry by entry for tests.
#[cfg(feature = "registry")]
pub mod registry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use archive::{
    write_archive, write_docker_load_stream, ArchiveFiles, ArchiveFormat, StagedArchive,
};
pub use cache::BuildCache;
pub use capability::Capabilities;
pub use compress::Compression;
pub use config::{
    ConfigChanges, ContainerConfig, Empty, Healthcheck, History, ImageConfig, RootFs,
};
pub use descriptor::Descriptor;
pub use diff::rootfs_diff;
pub use digest::{Digest, DigestError, DigestWriter};
pub use docker::DockerArchiveImage;
pub use error::{Error, ErrorKind, Result};
pub use image::{
    build_image, build_image_unpacked_first, join_index, BuiltImage, ImageRequest, NewLayer,
    UnpackedImage,
};
pub use index::ImageIndex;
pub use layer::{Attributes, LayerContents, Owner, FIXED_MTIME};
pub use layout::{SealedLayout, StagedLayout, Tagged};
pub use manifest::ImageManifest;
pub use platform::Platform;
pub use progress::{NoProgress, Progress};
pub use reference::{Reference, RemoteImage, Repository};
pub use source::{ImageSource, ParentImage, RegistryFetch, Selector};
pub use store::{BlobStore, BlobWriter, VerifiedReader};
pub use timestamp::Timestamp;
