//! The `[package.metadata.oci]` schema, as users write it in `Cargo.toml`, and its loading:
//! `[workspace.metadata.oci]` gives defaults, the package's own table overrides them key by key.
//!
//! The table holds two kinds of keys, and the types say which is which: [`SetMetadata`] for
//! what describes every image of the package together (tags, formats, targets, the index, the
//! repository), and [`ImageMetadata`] for what one image is, which a `target.<triple>` table
//! may override. An `images.<name>` table makes the package several images (one per binary,
//! typically), each with the package's keys as defaults under its own.
//!
//! Every table rejects unknown keys: a misspelt key is an error naming its whole path and the
//! nearest known key, never a silently ignored setting.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{KeyPath, Table};

/// What one image is: the keys a `target.<triple>` table may override.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ImageMetadata {
    pub base: Option<String>,
    pub bins: Option<Vec<String>>,
    pub bin_dir: Option<String>,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    /// Empty directories, each with its owner and mode.
    #[serde(default)]
    pub dirs: Vec<DirSpec>,
    /// File capabilities of the image's binaries (`CAP_NET_BIND_SERVICE`, …).
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub remove: Vec<String>,
    pub compression: Option<CompressionSpec>,
    /// Every file's modification time inside the new layers (default: one fixed time).
    pub layer_mtime: Option<LayerMtime>,
    pub author: Option<String>,
    pub comment: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    pub builder: Option<BuilderSpec>,
    /// Flags for rustc, for the image's binaries only: never for build scripts or proc-macros,
    /// nor for the user's own `cargo build` (as `.cargo/config.toml` rustflags would be).
    pub rustflags: Option<Vec<String>>,
    /// Platform fields, for a triple we cannot map or to be more precise than the triple.
    pub os: Option<String>,
    pub architecture: Option<String>,
    pub variant: Option<String>,
    pub os_version: Option<String>,
    pub os_features: Option<Vec<String>>,
    pub elf_check: Option<ElfCheck>,
    #[serde(default)]
    pub config: ConfigSpec,
}

/// What describes every image of the package together, and so cannot differ per target.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct SetMetadata {
    pub formats: Option<Vec<super::vocabulary::Format>>,
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub index_annotations: BTreeMap<String, String>,
    /// Rust target triples to build, one image each (default: the host), or `"base"`: every
    /// platform of the base image that maps to a Rust target.
    pub targets: Option<Targets>,
    /// With `targets = "base"`: the C library of the triples (`gnu` or `musl`); default: the
    /// base's own.
    pub target_libc: Option<Libc>,
    /// Always join the images in an image index, even for one target.
    pub index: Option<bool>,
    /// Overrides per target triple, each an [`ImageMetadata`] table.
    #[serde(default)]
    pub target: BTreeMap<String, Value>,
    /// Where `--push` sends the image when it names no repository; `{name}` is the image's name.
    pub repository: Option<String>,
    /// The SBOM written beside the outputs and attached to each platform's image.
    pub sbom: Option<super::vocabulary::SbomFormat>,
    /// Whether each platform's image gets its SLSA provenance (default: it does).
    pub provenance: Option<bool>,
    /// Build with `cargo auditable build`, so each binary carries its dependency list.
    pub auditable: Option<bool>,
}

impl SetMetadata {
    /// The keys of this table, as users spell them.
    const KEYS: [&'static str; 11] = [
        "formats",
        "tags",
        "index-annotations",
        "targets",
        "target-libc",
        "index",
        "target",
        "repository",
        "sbom",
        "provenance",
        "auditable",
    ];
}

/// `targets`: triples, or the base's platforms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Targets {
    List(Vec<String>),
    /// `"base"`.
    Base,
}

impl<'de> Deserialize<'de> for Targets {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Targets, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(word) if word == "base" => Ok(Targets::Base),
            value @ Value::Array(_) => serde_json::from_value(value)
                .map(Targets::List)
                .map_err(serde::de::Error::custom),
            other => Err(serde::de::Error::custom(format!(
                "expected a list of target triples or \"base\", found {other}"
            ))),
        }
    }
}

/// A Linux target's C library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Libc {
    Gnu,
    Musl,
}

/// The key that makes a package several images: `images.<name>` tables.
const IMAGES: &str = "images";

/// What builds the binaries: `"cargo"`, `"cross"`, `"zigbuild"`, or a command given as a list
/// that takes `cargo build`'s arguments (e.g. `["cross", "build"]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    untagged,
    expecting = "\"cargo\", \"cross\", \"zigbuild\" or a command as a list of strings"
)]
pub enum BuilderSpec {
    Named(String),
    Command(Vec<String>),
}

/// What a failed ELF check of a staged binary does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ElfCheck {
    /// Fail the build
    Deny,
    /// Print a warning and build anyway
    Warn,
}

/// One image of the package, workspace defaults merged in: the set-wide keys, the image keys,
/// and for each `target.<triple>` table the image keys with that table merged over.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// Its `images.<name>` key; `None` for the package's one image.
    pub name: Option<String>,
    pub set: SetMetadata,
    pub image: ImageMetadata,
    pub targets: BTreeMap<String, ImageMetadata>,
    /// The image's whole table as merged (workspace defaults, the package's keys, its
    /// `images.<name>` table), as its provenance records it.
    pub table: Value,
}

impl Loaded {
    /// The image keys for `triple` (the package's own when it has no table).
    pub fn for_target(&self, triple: Option<&str>) -> &ImageMetadata {
        triple
            .and_then(|t| self.targets.get(t))
            .unwrap_or(&self.image)
    }
}

/// Extra content copied into the image: `src` relative to the package, `dest` absolute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub src: String,
    pub dest: String,
    /// `src` may be outside the package (it must be said: `/etc/shadow` is never a typo away).
    #[serde(default, rename = "allow-outside")]
    pub allow_outside: bool,
    /// `"UID:GID"`, the owner of every entry staged (default `0:0`).
    pub owner: Option<String>,
    /// The mode of every file staged, octal (`"0640"`).
    pub mode: Option<Mode>,
    /// For a directory `src`: the mode of every directory staged, octal (`"0750"`).
    #[serde(rename = "dir-mode")]
    pub dir_mode: Option<Mode>,
}

/// An empty directory in the image: `{ path = "/data", owner = "65532:65532", mode = "0750" }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirSpec {
    pub path: String,
    /// `"UID:GID"` (default `0:0`).
    pub owner: Option<String>,
    /// Octal (default `"0755"`).
    pub mode: Option<Mode>,
}

/// A mode as an octal string, `"0640"`: a TOML number would be read as decimal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mode(pub String);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Mode, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(Mode(text)),
            other => Err(serde::de::Error::custom(format!(
                "expected a mode as an octal string like \"0640\", found {other} \
                 (TOML reads a number as decimal)"
            ))),
        }
    }
}

/// How new layers are compressed, as `compression` and `--compression` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum CompressionSpec {
    /// gzip, which every tool reads
    Gzip,
    /// zstd: smaller and faster; OCI only (not for `docker load`)
    Zstd,
    /// Plain tar
    None,
}

/// `layer-mtime`: what every file's modification time inside the new layers is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerMtime {
    /// 1970-01-01T00:00:01Z, whatever `SOURCE_DATE_EPOCH` says: a layer whose files did not
    /// change keeps its digest from release to release.
    Fixed,
    /// `SOURCE_DATE_EPOCH`, as the image's `created`: every release changes every layer.
    SourceDateEpoch,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct ConfigSpec {
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<EnvSpec>,
    #[serde(default)]
    pub exposed_ports: Vec<PortSpec>,
    #[serde(default)]
    pub volumes: Vec<String>,
    pub working_dir: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<HealthcheckSpec>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub cpu_shares: Option<i64>,
}

/// `env = { KEY = "value" }` or `env = ["KEY=value"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a table of `NAME = \"value\"` or a list of \"NAME=value\" strings"
)]
pub enum EnvSpec {
    Table(BTreeMap<String, String>),
    List(Vec<String>),
}

/// `8080`, `"8080"`, `"8080/tcp"`, `"53/udp"`, `"9000/sctp"`, `"8000-8002/tcp"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged, expecting = "a port number or a string like \"8080/tcp\"")]
pub enum PortSpec {
    Number(i64),
    Text(String),
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Number(n) => write!(f, "{n}"),
            PortSpec::Text(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct HealthcheckSpec {
    pub test: Vec<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub start_period: Option<String>,
    pub retries: Option<u64>,
}

/// A metadata table that does not match the schema, with the path of the culprit.
#[derive(Debug)]
pub struct KeyError {
    pub path: KeyPath,
    pub message: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path, self.message)
    }
}

/// Reads the workspace defaults and the package's table, each checked on its own so an error
/// names the table it is in, then merged (package keys win; tables merge key by key). One image
/// for the package, or one per `images.<name>` table, in name order.
pub fn load(workspace: Option<&Value>, package: Option<&Value>) -> Result<Vec<Loaded>, KeyError> {
    let workspace = workspace.cloned().unwrap_or(Value::Null);
    let mut package = package.cloned().unwrap_or(Value::Null);
    if workspace.get(IMAGES).is_some() {
        return Err(KeyError {
            path: KeyPath::new(Table::Workspace).key(IMAGES),
            message: "`images` names one package's images; set it in `[package.metadata.oci]`"
                .into(),
        });
    }
    let images = match package
        .as_object_mut()
        .and_then(|table| table.remove(IMAGES))
    {
        None => None,
        Some(Value::Object(images)) => Some(images),
        Some(_) => {
            return Err(KeyError {
                path: KeyPath::new(Table::Package).key(IMAGES),
                message: "expected a table of images, as in `[package.metadata.oci.images.api]`"
                    .into(),
            })
        }
    };
    split(&workspace, &KeyPath::new(Table::Workspace))?;
    split(&package, &KeyPath::new(Table::Package))?;
    let mut merged = workspace;
    merge(&mut merged, package);
    let Some(images) = images else {
        return Ok(vec![load_image(
            merged,
            None,
            &KeyPath::new(Table::Package),
        )?]);
    };
    if images.is_empty() {
        return Err(KeyError {
            path: KeyPath::new(Table::Package).key(IMAGES),
            message: "the table is empty: name at least one image, or remove it".into(),
        });
    }
    let mut loaded = Vec::new();
    for (name, table) in images {
        let at = KeyPath::new(Table::Image(name.clone()));
        if table.get(IMAGES).is_some() {
            return Err(KeyError {
                path: at.key(IMAGES),
                message: "an image's table cannot hold images of its own".into(),
            });
        }
        split(&table, &at)?;
        let mut for_image = merged.clone();
        merge(&mut for_image, table);
        loaded.push(load_image(for_image, Some(name), &at)?);
    }
    Ok(loaded)
}

/// One image from its merged table: set-wide keys, image keys, and each target's.
fn load_image(table: Value, name: Option<String>, at: &KeyPath) -> Result<Loaded, KeyError> {
    let (set, image_keys) = split(&table, at)?;
    let mut targets = BTreeMap::new();
    for (triple, table) in &set.target {
        let at = at.clone().key("target").key(triple);
        if let Some(key) = SetMetadata::KEYS.iter().find(|k| table.get(**k).is_some()) {
            return Err(KeyError {
                path: at.key(*key),
                message: format!(
                    "`{key}` describes every image together and cannot be set per target"
                ),
            });
        }
        parse::<ImageMetadata>(table.clone(), &at)?;
        let mut for_target = image_keys.clone();
        merge(&mut for_target, table.clone());
        targets.insert(triple.clone(), parse(for_target, &at)?);
    }
    Ok(Loaded {
        table: table.clone(),
        name,
        set,
        image: parse(image_keys, at)?,
        targets,
    })
}

/// Checks a whole table: its set-wide keys, and the rest as image keys. Returns the first parsed
/// and the second as it is, for merging.
fn split(value: &Value, at: &KeyPath) -> Result<(SetMetadata, Value), KeyError> {
    let table = match value {
        Value::Null => Map::new(),
        Value::Object(table) => table.clone(),
        other => {
            // Let serde say what was expected instead of a table.
            parse::<ImageMetadata>(other.clone(), at)?;
            unreachable!("only a table parses as a table")
        }
    };
    let (set, image): (Map<String, Value>, Map<String, Value>) = table
        .into_iter()
        .partition(|(key, _)| SetMetadata::KEYS.contains(&key.as_str()));
    let image = Value::Object(image);
    // A misspelt set-wide key lands among the image keys: suggest from all.
    let known: Vec<&str> = SetMetadata::KEYS.iter().copied().chain([IMAGES]).collect();
    parse_with::<ImageMetadata>(image.clone(), at, &known)?;
    Ok((parse(Value::Object(set), at)?, image))
}

fn parse<T: serde::de::DeserializeOwned>(value: Value, at: &KeyPath) -> Result<T, KeyError> {
    parse_with(value, at, &[])
}

/// Parses `value`; an unknown key directly in it is compared with serde's known keys and
/// `also_known` for the "did you mean".
fn parse_with<T: serde::de::DeserializeOwned>(
    value: Value,
    at: &KeyPath,
    also_known: &[&str],
) -> Result<T, KeyError> {
    let value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    };
    serde_path_to_error::deserialize(value).map_err(|error| {
        let mut path = at.clone();
        for segment in error.path().iter() {
            use serde_path_to_error::Segment as Serde;
            path = match segment {
                Serde::Seq { index } => path.index(*index),
                Serde::Map { key } => path.key(key),
                Serde::Enum { variant } => path.key(variant),
                Serde::Unknown => path.key("?"),
            };
        }
        let top_level = error.path().iter().count() == 1;
        let also_known = if top_level { also_known } else { &[] };
        KeyError {
            path,
            message: explain(&error.inner().to_string(), also_known),
        }
    })
}

/// Adds "did you mean" to serde's `unknown field `x`, expected one of `a`, `b``.
fn explain(message: &str, also_known: &[&str]) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let mut quoted = rest.split('`').step_by(2);
    let unknown = quoted.next().unwrap_or_default();
    let mut known: Vec<&str> = quoted.chain(also_known.iter().copied()).collect();
    let nearest = known
        .iter()
        .map(|known| (strsim::jaro_winkler(unknown, known), known))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match nearest {
        Some((_, known)) => {
            format!("unknown key `{unknown}`\nhelp: a key with a similar name exists: `{known}`")
        }
        None if known.is_empty() => format!("unknown key `{unknown}`"),
        None => {
            known.sort_unstable();
            let listed: Vec<String> = known.iter().map(|k| format!("`{k}`")).collect();
            format!(
                "unknown key `{unknown}`, expected one of {}",
                listed.join(", ")
            )
        }
    }
}

/// Tables merge key by key; anything else is replaced by the override.
fn merge(base: &mut Value, overrides: Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (base, overrides) if !overrides.is_null() => *base = overrides,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn error_of(package: Value) -> String {
        load(None, Some(&package)).unwrap_err().to_string()
    }

    #[test]
    fn misspelt_keys_name_their_path_and_the_near_key() {
        assert_eq!(
            error_of(json!({"config": {"exposed-port": [8080]}})),
            "`package.metadata.oci.config.exposed-port`: unknown key `exposed-port`\n\
             help: a key with a similar name exists: `exposed-ports`"
        );
        assert_eq!(
            error_of(json!({"bin-dirs": "/bin"})),
            "`package.metadata.oci.bin-dirs`: unknown key `bin-dirs`\n\
             help: a key with a similar name exists: `bin-dir`"
        );
        assert!(error_of(json!({"zzz": 1}))
            .starts_with("`package.metadata.oci.zzz`: unknown key `zzz`, expected one of"));
        // A set-wide key is suggested too, though it lives in another table type.
        assert_eq!(
            error_of(json!({"tag": ["x:1"]})),
            "`package.metadata.oci.tag`: unknown key `tag`\n\
             help: a key with a similar name exists: `tags`"
        );
    }

    #[test]
    fn wrong_types_name_their_path() {
        assert_eq!(
            error_of(json!({"config": {"memory": "lots"}})),
            "`package.metadata.oci.config.memory`: invalid type: string \"lots\", expected i64"
        );
        assert_eq!(
            error_of(json!({"files": [{"src": "a"}]})),
            "`package.metadata.oci.files[0]`: missing field `dest`"
        );
        assert_eq!(
            error_of(json!({"config": {"env": 3}})),
            "`package.metadata.oci.config.env`: a table of `NAME = \"value\"` \
             or a list of \"NAME=value\" strings"
        );
    }

    #[test]
    fn workspace_errors_name_the_workspace_table() {
        let err = load(Some(&json!({"tag": []})), None).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`workspace.metadata.oci.tag`: unknown key `tag`"),
            "{err}"
        );
    }

    #[test]
    fn target_tables_override_the_package_and_name_their_triple_in_errors() {
        let package = json!({"base": "scratch", "config": {"user": "1", "env": {"A": "1"}},
        "target": {
            "aarch64-unknown-linux-gnu": {"variant": "v8", "config": {"env": {"B": "2"}}}
        }});
        let loaded = load(None, Some(&package)).unwrap().remove(0);
        let arm = loaded.for_target(Some("aarch64-unknown-linux-gnu"));
        assert_eq!(arm.variant.as_deref(), Some("v8"));
        assert_eq!(arm.config.user.as_deref(), Some("1"));
        assert!(matches!(&arm.config.env, Some(EnvSpec::Table(t)) if t.len() == 2));
        assert_eq!(
            loaded.for_target(Some("x86_64-unknown-linux-gnu")).variant,
            None
        );

        let typo = json!({"target": {"aarch64-unknown-linux-gnu": {"varaint": "v8"}}});
        assert!(error_of(typo).starts_with(
            "`package.metadata.oci.target.aarch64-unknown-linux-gnu.varaint`: \
             unknown key `varaint`"
        ));
        let tags = json!({"target": {"aarch64-unknown-linux-gnu": {"tags": ["x:1"]}}});
        assert_eq!(
            error_of(tags),
            "`package.metadata.oci.target.aarch64-unknown-linux-gnu.tags`: \
             `tags` describes every image together and cannot be set per target"
        );
    }

    #[test]
    fn package_keys_override_workspace_defaults_and_tables_merge() {
        let workspace = json!({
            "bin-dir": "/opt/bin",
            "author": "infra",
            "config": {"user": "1000", "labels": {"team": "infra", "tier": "2"}}
        });
        let package = json!({"author": "me", "config": {"labels": {"tier": "1"}}});
        let metadata = load(Some(&workspace), Some(&package))
            .unwrap()
            .remove(0)
            .image;
        assert_eq!(metadata.bin_dir.as_deref(), Some("/opt/bin"));
        assert_eq!(metadata.author.as_deref(), Some("me"));
        assert_eq!(metadata.config.user.as_deref(), Some("1000"));
        assert_eq!(
            metadata.config.labels,
            BTreeMap::from([("team".into(), "infra".into()), ("tier".into(), "1".into())])
        );
    }

    #[test]
    fn images_tables_make_one_image_each_over_the_package_keys() {
        let package = json!({"config": {"user": "1"}, "tags": ["{name}:1"],
            "images": {"migrate": {"tags": ["m:1"]}, "seed": {"config": {"cmd": ["--all"]}}}});
        let images = load(None, Some(&package)).unwrap();
        let names: Vec<_> = images.iter().map(|i| i.name.as_deref()).collect();
        assert_eq!(names, [Some("migrate"), Some("seed")]);
        assert_eq!(images[0].set.tags.as_deref(), Some(&["m:1".to_owned()][..]));
        assert_eq!(
            images[1].set.tags.as_deref(),
            Some(&["{name}:1".to_owned()][..])
        );
        assert_eq!(images[1].image.config.user.as_deref(), Some("1"));
        assert!(images[1].image.config.cmd.is_some());

        assert!(error_of(json!({"images": {"seed": {"bnis": ["x"]}}}))
            .starts_with("`package.metadata.oci.images.seed.bnis`: unknown key `bnis`"));
        assert!(error_of(json!({"images": {}})).contains("the table is empty"));
        assert!(error_of(json!({"images": {"a": {"images": {}}}}))
            .starts_with("`package.metadata.oci.images.a.images`"));
        let workspace = json!({"images": {"a": {}}});
        assert!(load(Some(&workspace), None)
            .unwrap_err()
            .to_string()
            .starts_with("`workspace.metadata.oci.images`"));
        assert!(
            error_of(json!({"imagse": {}})).contains("a key with a similar name exists: `images`")
        );
    }
}

#[cfg(test)]
mod template_tests {
    /// The snippet users copy must stay valid as the schema changes.
    #[test]
    fn the_metadata_template_is_valid() {
        let document: toml::Table =
            toml::from_str(include_str!("../../templates/metadata.toml")).unwrap();
        let oci = serde_json::to_value(&document["package"]["metadata"]["oci"]).unwrap();
        let metadata = super::load(None, Some(&oci)).unwrap().remove(0).image;
        assert_eq!(metadata.files.len(), 2);
        assert_eq!(metadata.files[1].mode, Some(super::Mode("0640".into())));
        assert_eq!(metadata.dirs[0].path, "/data");
        let config = crate::plan::resolve::config_changes(&metadata.config).unwrap();
        assert_eq!(config.exposed_ports, ["8080/tcp", "9090/tcp", "53/udp"]);
        assert_eq!(
            config.healthcheck.and_then(|h| h.interval),
            Some(30_000_000_000)
        );
    }
}
