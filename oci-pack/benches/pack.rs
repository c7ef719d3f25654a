//! The packing step on its own: one binary staged as a layer on `scratch`, the config, the
//! manifest and the OCI layout, timed over repeated runs. `cargo xtask bench` runs it on the
//! example's binary; any file may be given instead.
//!
//! Prints the minimum and median wall time, and the input and layer sizes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use oci_pack::config::ConfigChanges;
use oci_pack::image::{build_image, ImageRequest, NewLayer};
use oci_pack::layer::{Compression, LayerContents};
use oci_pack::layout::StagedLayout;
use oci_pack::platform::Platform;
use oci_pack::progress::NoProgress;
use oci_pack::timestamp::Timestamp;

const RUNS: usize = 20;

#[expect(
    clippy::print_stdout,
    reason = "a benchmark reports its figures on stdout"
)]
fn main() {
    let input = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .map(PathBuf::from)
        .expect("usage: cargo bench -p oci-pack --bench pack -- FILE");
    let input_size = std::fs::metadata(&input)
        .expect("the input file exists")
        .len();
    let out = tempfile::tempdir().expect("a temporary directory");

    for compression in [Compression::Gzip, Compression::None] {
        let mut times = Vec::with_capacity(RUNS);
        let mut layer_size = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            let mut contents = LayerContents::new();
            contents
                .add_path("/usr/local/bin/app", &input)
                .expect("the input can be staged");
            let request = ImageRequest {
                platform: Platform::new("linux", "amd64", None),
                base: None,
                layers: vec![NewLayer {
                    contents,
                    remove: Vec::new(),
                    created_by: "bench".into(),
                }],
                config: ConfigChanges {
                    entrypoint: Some(vec!["/usr/local/bin/app".into()]),
                    ..Default::default()
                },
                author: None,
                comment: None,
                created: Timestamp::DEFAULT,
                annotations: Default::default(),
                compression,
                config_created_by: "bench".into(),
            };
            let staged = StagedLayout::create(&out.path().join("image")).expect("staging");
            let image =
                build_image(staged.store(), request, None, &mut NoProgress).expect("packing");
            staged
                .finish(
                    &image.manifest,
                    &["bench:latest".parse().unwrap()],
                    Default::default(),
                )
                .expect("finishing");
            times.push(started.elapsed());
            layer_size = image.layers[0].descriptor.size;
        }
        times.sort();
        println!(
            "pack {:?} {} ({} bytes -> {} byte layer): min {}, median {} over {RUNS} runs",
            compression,
            input.display(),
            input_size,
            layer_size,
            ms(times[0]),
            ms(times[RUNS / 2]),
        );
    }
}

fn ms(duration: Duration) -> String {
    format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
}
