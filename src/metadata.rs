//! The `[package.metadata.oci]` schema, as users write it in `Cargo.toml`, and its loading:
//! `[workspace.metadata.oci]` gives defaults, the package's own table overrides them key by key.
//!
//! Every table rejects unknown keys: a misspelt key is an error naming its whole path and the
//! nearest known key, never a silently ignored setting.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::Value;

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct OciMetadata {
    pub base: Option<String>,
    pub bins: Option<Vec<String>>,
    pub bin_dir: Option<String>,
    #[serde(default)]
    pub files: Vec<FileSpec>,
    #[serde(default)]
    pub remove: Vec<String>,
    pub compression: Option<CompressionSpec>,
    pub formats: Option<Vec<crate::outputs::Format>>,
    pub tags: Option<Vec<String>>,
    pub author: Option<String>,
    pub comment: Option<String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub index_annotations: BTreeMap<String, String>,
    /// Rust target triples to build, one image each (default: the host).
    pub targets: Option<Vec<String>>,
    /// Always join the images in an image index, even for one target.
    pub index: Option<bool>,
    /// Overrides per target triple; any key but those that name the whole set of images.
    #[serde(default)]
    pub target: BTreeMap<String, Value>,
    pub builder: Option<BuilderSpec>,
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

/// The metadata of every image: the package's (workspace defaults merged in), and for each
/// `[package.metadata.oci.target.<triple>]` the same with that table merged over it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub package: OciMetadata,
    pub targets: BTreeMap<String, OciMetadata>,
}

impl Loaded {
    /// The metadata for `triple` (the package's own when it has no table).
    pub fn for_target(&self, triple: Option<&str>) -> &OciMetadata {
        triple
            .and_then(|t| self.targets.get(t))
            .unwrap_or(&self.package)
    }
}

/// Keys that describe the whole set of images, and so cannot differ per target.
const NOT_PER_TARGET: [&str; 6] = [
    "tags",
    "formats",
    "index-annotations",
    "targets",
    "target",
    "index",
];

/// Extra content copied into the image: `src` relative to the package, `dest` absolute.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub src: String,
    pub dest: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CompressionSpec {
    Gzip,
    None,
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

/// A metadata table that does not match the schema, with the dotted path of the culprit.
#[derive(Debug)]
pub struct KeyError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}`: {}", self.path, self.message)
    }
}

/// Reads the workspace defaults and the package's table, each checked on its own so an error
/// names the table it is in, then merged (package keys win; tables merge key by key).
pub fn load(workspace: Option<&Value>, package: Option<&Value>) -> Result<Loaded, KeyError> {
    let workspace = workspace.cloned().unwrap_or(Value::Null);
    let package = package.cloned().unwrap_or(Value::Null);
    check(&workspace, "workspace.metadata.oci")?;
    check(&package, "package.metadata.oci")?;
    let mut merged = workspace;
    merge(&mut merged, package);
    let metadata = parse(merged.clone(), "package.metadata.oci")?;

    let mut targets = BTreeMap::new();
    for (triple, table) in &metadata.target {
        let prefix = format!("package.metadata.oci.target.{triple}");
        check(table, &prefix)?;
        if let Some(key) = NOT_PER_TARGET.iter().find(|k| table.get(**k).is_some()) {
            return Err(KeyError {
                path: format!("{prefix}.{key}"),
                message: format!(
                    "`{key}` describes every image together and cannot be set per target"
                ),
            });
        }
        let mut for_target = merged.clone();
        if let Some(map) = for_target.as_object_mut() {
            map.remove("target");
        }
        merge(&mut for_target, table.clone());
        targets.insert(triple.clone(), parse(for_target, &prefix)?);
    }
    Ok(Loaded {
        package: metadata,
        targets,
    })
}

fn check(value: &Value, prefix: &str) -> Result<(), KeyError> {
    parse(value.clone(), prefix).map(drop)
}

fn parse(value: Value, prefix: &str) -> Result<OciMetadata, KeyError> {
    let value = if value.is_null() {
        Value::Object(Default::default())
    } else {
        value
    };
    serde_path_to_error::deserialize(value).map_err(|error| {
        let path = match error.path().to_string().as_str() {
            "." => prefix.to_owned(),
            inner => format!("{prefix}.{inner}"),
        };
        KeyError {
            path,
            message: explain(&error.inner().to_string()),
        }
    })
}

/// Adds "did you mean" to serde's `unknown field `x`, expected one of `a`, `b``.
fn explain(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return message.to_owned();
    };
    let mut quoted = rest.split('`').step_by(2);
    let unknown = quoted.next().unwrap_or_default();
    let nearest = quoted
        .map(|known| (strsim::jaro_winkler(unknown, known), known))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    match nearest {
        Some((_, known)) => {
            format!("unknown key `{unknown}`\nhelp: a key with a similar name exists: `{known}`")
        }
        None => format!(
            "unknown key `{unknown}`{}",
            rest.split_once(',')
                .map_or(String::new(), |(_, r)| format!(",{r}"))
        ),
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
            "`package.metadata.oci.config.exposed-port`: unknown key `exposed-port`\nhelp: a key with a similar name exists: `exposed-ports`"
        );
        assert_eq!(
            error_of(json!({"bin-dirs": "/bin"})),
            "`package.metadata.oci.bin-dirs`: unknown key `bin-dirs`\nhelp: a key with a similar name exists: `bin-dir`"
        );
        assert!(error_of(json!({"zzz": 1}))
            .starts_with("`package.metadata.oci.zzz`: unknown key `zzz`, expected one of"));
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
            "`package.metadata.oci.config.env`: a table of `NAME = \"value\"` or a list of \"NAME=value\" strings"
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
            "target": {"aarch64-unknown-linux-gnu": {"variant": "v8", "config": {"env": {"B": "2"}}}}});
        let loaded = load(None, Some(&package)).unwrap();
        let arm = loaded.for_target(Some("aarch64-unknown-linux-gnu"));
        assert_eq!(arm.variant.as_deref(), Some("v8"));
        assert_eq!(arm.config.user.as_deref(), Some("1"));
        assert!(matches!(&arm.config.env, Some(EnvSpec::Table(t)) if t.len() == 2));
        assert_eq!(
            loaded.for_target(Some("x86_64-unknown-linux-gnu")).variant,
            None
        );

        let typo = json!({"target": {"aarch64-unknown-linux-gnu": {"varaint": "v8"}}});
        assert!(error_of(typo).starts_with("`package.metadata.oci.target.aarch64-unknown-linux-gnu.varaint`: unknown key `varaint`"));
        let tags = json!({"target": {"aarch64-unknown-linux-gnu": {"tags": ["x:1"]}}});
        assert_eq!(
            error_of(tags),
            "`package.metadata.oci.target.aarch64-unknown-linux-gnu.tags`: `tags` describes every image together and cannot be set per target"
        );
    }

    #[test]
    fn package_keys_override_workspace_defaults_and_tables_merge() {
        let workspace = json!({"bin-dir": "/opt/bin", "author": "infra", "config": {"user": "1000", "labels": {"team": "infra", "tier": "2"}}});
        let package = json!({"author": "me", "config": {"labels": {"tier": "1"}}});
        let metadata = load(Some(&workspace), Some(&package)).unwrap().package;
        assert_eq!(metadata.bin_dir.as_deref(), Some("/opt/bin"));
        assert_eq!(metadata.author.as_deref(), Some("me"));
        assert_eq!(metadata.config.user.as_deref(), Some("1000"));
        assert_eq!(
            metadata.config.labels,
            BTreeMap::from([("team".into(), "infra".into()), ("tier".into(), "1".into())])
        );
    }
}

#[cfg(test)]
mod template_tests {
    /// The snippet users copy must stay valid as the schema changes.
    #[test]
    fn the_metadata_template_is_valid() {
        let document: toml::Table =
            toml::from_str(include_str!("../templates/metadata.toml")).unwrap();
        let oci = serde_json::to_value(&document["package"]["metadata"]["oci"]).unwrap();
        let metadata = super::load(None, Some(&oci)).unwrap().package;
        assert_eq!(metadata.files.len(), 2);
        let config = crate::plan::config_changes(&metadata.config).unwrap();
        assert_eq!(config.exposed_ports, ["8080/tcp", "9090/tcp", "53/udp"]);
        assert_eq!(
            config.healthcheck.and_then(|h| h.interval),
            Some(30_000_000_000)
        );
    }
}
