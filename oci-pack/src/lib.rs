//! `oci-pack`: the image engine of `cargo oci`, a library with no knowledge of Cargo.
//!
//! Everything is built around a content-addressed [`store::BlobStore`]: layers, configs and
//! manifests are written into it once, and every output format is a view of it.
//! The engine never prints, never exits and never reads the environment; the caller passes in
//! what it needs (such as the `SOURCE_DATE_EPOCH` timestamp) and listens through
//! [`progress::Progress`]. The one exception is the registry client (the `registry` feature),
//! which, like any HTTP client, honours the proxy (`HTTPS_PROXY`, `NO_PROXY`, …) and trusted
//! certificate (`SSL_CERT_FILE`, `SSL_CERT_DIR`) variables.
//!
//! The types an image is built with are re-exported here; each module holds the rest of its
//! concept.
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

pub mod annotation;
pub mod archive;
pub mod cache;
pub mod capability;
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
pub mod inspect;
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
pub mod referrer;
#[cfg(feature = "registry")]
pub mod registry;
pub mod source;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod timestamp;
pub mod tree;
pub mod verify;

pub use cache::BuildCache;
pub use config::{ConfigChanges, ContainerConfig, ImageConfig};
pub use descriptor::Descriptor;
pub use digest::Digest;
pub use error::{Error, ErrorKind, Result};
pub use image::{build_image, join_index, BuiltImage, ImageRequest, NewLayer};
pub use index::ImageIndex;
pub use layer::{Compression, LayerContents, FIXED_MTIME};
pub use layout::{StagedLayout, Tagged};
pub use manifest::ImageManifest;
pub use platform::Platform;
pub use progress::{NoProgress, Progress};
pub use reference::{Reference, RemoteImage, Repository};
pub use source::{ImageSource, ParentImage};
pub use store::BlobStore;
pub use timestamp::Timestamp;
