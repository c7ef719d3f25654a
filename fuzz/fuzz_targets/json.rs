//! The JSON documents of an image read from a parent: an index, a manifest, a config, a
//! descriptor, a platform and Docker's `manifest.json`. Any bytes either fail to parse or give
//! a value that serializes to JSON which parses back to the same value. They are read as the
//! engine reads them, through `oci_pack::json::parse` (its size cap included).

#![no_main]

use libfuzzer_sys::fuzz_target;
use oci_pack::{Descriptor, DockerArchiveImage, ImageConfig, ImageIndex, ImageManifest, Platform};
use serde::de::DeserializeOwned;
use serde::Serialize;

fuzz_target!(|data: &[u8]| {
    round_trip::<ImageIndex>(data);
    round_trip::<ImageManifest>(data);
    round_trip::<ImageConfig>(data);
    round_trip::<Descriptor>(data);
    round_trip::<Platform>(data);
    round_trip::<Vec<DockerArchiveImage>>(data);
});

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(data: &[u8]) {
    let Ok(value) = oci_pack::json::parse::<T>(data, || "the fuzz input".to_owned()) else {
        return;
    };
    let json = serde_json::to_vec(&value).expect("a parsed document serializes");
    let again = serde_json::from_slice::<T>(&json).unwrap_or_else(|e| {
        panic!(
            "{}: its own JSON does not parse: {e}\n{}",
            std::any::type_name::<T>(),
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(
        again,
        value,
        "{}: differs after a round trip",
        std::any::type_name::<T>()
    );
}
