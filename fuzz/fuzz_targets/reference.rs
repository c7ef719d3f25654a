//! Image references and sources, as a user or an image's annotations write them: `Reference`,
//! `Digest`, `Repository`, `RemoteImage` and `ImageSource` parse any string without panicking,
//! and what parses prints back to text that parses to the same value (for `Reference` and
//! `Digest`, to the very input).

#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use oci_pack::{Digest, ImageSource, Reference, RemoteImage, Repository};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(reference) = text.parse::<Reference>() {
        assert_eq!(reference.to_string(), text, "a reference prints as written");
        assert_eq!(
            reference.to_string().parse::<Reference>().ok(),
            Some(reference)
        );
    }
    if let Ok(digest) = text.parse::<Digest>() {
        assert_eq!(digest.to_string(), text, "a digest prints as written");
    }
    if let Ok(repository) = Repository::parse(text) {
        let printed = repository.to_string();
        let again = Repository::parse(&printed);
        assert_eq!(again.ok(), Some(repository), "`{printed}` parses otherwise");
    }
    if let Ok(image) = RemoteImage::parse(text) {
        let printed = image.to_string();
        let again = RemoteImage::parse(&printed);
        assert_eq!(again.ok(), Some(image), "`{printed}` parses otherwise");
    }
    let dir = Path::new("/pkg");
    if let Ok(source) = ImageSource::parse(text, dir) {
        let printed = source.to_string();
        let again = ImageSource::parse(&printed, dir);
        assert_eq!(again.ok(), Some(source), "`{printed}` parses otherwise");
    }
});
