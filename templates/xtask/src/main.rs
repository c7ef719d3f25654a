//! `cargo xtask image`: this workspace's images, built as `cargo oci build --workspace` builds
//! them, by cargo oci's library, so a release script can add its own steps around them.
//!
//! ```text
//! cargo xtask image                                   # every image, into target/oci/
//! cargo xtask image --release-tag 1.4.0               # tagged NAME:1.4.0
//! cargo xtask image --target aarch64-unknown-linux-musl --push ghcr.io/acme
//! ```

use std::path::Path;
use std::process::ExitCode;

use cargo_oci::{Build, Image};

const USAGE: &str = "\
usage: cargo xtask image [OPTIONS]

  --release-tag TAG    tag each image NAME:TAG (default: the metadata's tags)
  --target TRIPLE      build for this target, one image each (repeatable)
  --push [REPOSITORY]  push each image to REPOSITORY/NAME, or to its metadata's `repository`
  --locked             assert that Cargo.lock is up to date";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.split_first() {
        Some((task, options)) if task == "image" => image(options),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}

fn image(options: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    // The workspace this xtask is a member of, wherever `cargo xtask` is run from.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("the xtask is not in a workspace")?;
    // Every member that is an image (this one says `oci = false`).
    let mut build = Build::new().current_dir(root).workspace();
    let mut options = options.iter().peekable();
    while let Some(option) = options.next() {
        let value = |value: Option<&String>| {
            value
                .cloned()
                .ok_or(format!("{option} needs a value\n{USAGE}"))
        };
        build = match option.as_str() {
            "--release-tag" => build.tag(format!("{{name}}:{}", value(options.next())?)),
            "--target" => build.target(value(options.next())?),
            "--locked" => build.locked(),
            "--push" => match options.next_if(|next| !next.starts_with("--")) {
                Some(repository) => build.push(repository),
                None => build.push_to_each_repository(),
            },
            other => return Err(format!("unknown option `{other}`\n{USAGE}").into()),
        };
    }
    for image in build.run()? {
        report(&image);
    }
    Ok(())
}

/// One line per image on stdout, for the release notes or the next step of a pipeline.
fn report(image: &Image) {
    let place = match &image.pushed {
        Some(reference) => reference.clone(),
        None => image.digest.clone(),
    };
    println!("{} {} {}", image.name, place, image.tags.join(" "));
}
