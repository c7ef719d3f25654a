//! The image configuration (`application/vnd.oci.image.config.v1+json`) and the Dockerfile-like
//! rules by which a configuration change applies to an inherited one.
//!
//! Fields we do not model (`Shell`, `OnBuild`, …) are kept in `extra` maps so a parent's survive
//! a read-modify-write. Maps are `BTreeMap`s, so the JSON is the same on every run.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::platform::Platform;

/// An image's configuration: its platform, its layers' diff IDs, its history and the
/// defaults a container of it starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// When the image was made, RFC 3339 in UTC, e.g. `"2024-05-01T12:00:00Z"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Who made the image and maintains it, a name or an email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// CPU architecture in Go's names, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// Version of the operating system the image needs (`os.version`), mostly set for
    /// Windows, e.g. `10.0.17763.1040`.
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Features of the operating system the image needs (`os.features`), e.g. `win32k`.
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    /// CPU variant, e.g. `v8` for `arm64`, `v7` for `arm`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Defaults of a container run from the image; `None` when the image sets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The layers the filesystem is made of.
    pub rootfs: RootFs,
    /// One entry per build step, oldest first; steps that made no layer are marked
    /// `empty_layer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Top-level fields not modelled here, kept so they survive a read-modify-write.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// An empty configuration for `platform`, as the `scratch` base has.
    pub fn scratch(platform: &Platform) -> ImageConfig {
        ImageConfig {
            created: None,
            author: None,
            architecture: platform.architecture.clone(),
            os: platform.os.clone(),
            os_version: platform.os_version.clone(),
            os_features: platform.os_features.clone(),
            variant: platform.variant.clone(),
            config: None,
            rootfs: RootFs {
                kind: "layers".into(),
                diff_ids: Vec::new(),
            },
            history: Vec::new(),
            extra: BTreeMap::new(),
        }
    }

    /// The platform this config says it is for.
    pub fn platform(&self) -> Platform {
        let mut platform = Platform::new(&self.os, &self.architecture, self.variant.as_deref());
        platform.os_version.clone_from(&self.os_version);
        platform.os_features.clone_from(&self.os_features);
        platform
    }

    /// Makes the config describe `platform`, whatever it said before; an OS version or
    /// features the platform leaves unset keep the config's own.
    pub fn set_platform(&mut self, platform: &Platform) {
        self.architecture.clone_from(&platform.architecture);
        self.os.clone_from(&platform.os);
        self.variant.clone_from(&platform.variant);
        if platform.os_version.is_some() {
            self.os_version.clone_from(&platform.os_version);
        }
        if !platform.os_features.is_empty() {
            self.os_features.clone_from(&platform.os_features);
        }
    }
}

/// The container's runtime defaults, in the names Docker gave them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// User the process runs as, by name or ID, with an optional group: `"nobody"`,
    /// `"1000:1000"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Ports the container listens on, keyed like `"8080/tcp"` or `"53/udp"`; the
    /// runtime publishes them only when asked to (`docker run -P`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    /// Environment of the process, as `KEY=value` strings, e.g. `"PATH=/usr/bin:/bin"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// Program and arguments the container runs; `Cmd` is appended to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments of the entrypoint, or the command itself when there is none;
    /// arguments given to `docker run` replace them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Directories the runtime mounts a fresh volume on, e.g. `"/data"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    /// Directory the process starts in, e.g. `"/app"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Free-form metadata, e.g. `org.opencontainers.image.source`; the runtime only
    /// reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// Signal that stops the container, e.g. `SIGTERM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker extensions, reserved by the OCI spec under these names and kept with their Docker
    /// meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Memory limit in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    /// Limit on memory plus swap in bytes; `-1` for unlimited swap.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    /// CPU weight relative to other containers; Docker's default is `1024`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    /// Fields not modelled here (`Shell`, `OnBuild`, …), kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `{}` that `ExposedPorts` and `Volumes` map each key to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Docker's `HEALTHCHECK`; durations are nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// The check: `["CMD", program, args…]`, `["CMD-SHELL", command]`, or `["NONE"]` to
    /// turn off an inherited one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    /// Time between two checks, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// Time a check may run before it counts as failed, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Time after the start during which failed checks are not counted, in
    /// nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
    /// Failed checks in a row after which the container is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// Fields not modelled here (such as `StartInterval`), kept as read.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The layers of an image's filesystem, by the digests of their uncompressed tars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `"layers"` (the JSON's `type`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Digest of each layer's uncompressed tar, bottom layer first.
    pub diff_ids: Vec<Digest>,
}

/// One step of an image's build, as `docker history` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// When the step ran, RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// What the step did, e.g. `"cargo oci: bins hello"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who made the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A note on the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Set when the step made no layer, so the history and `rootfs.diff_ids` pair up
    /// once these are skipped.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// What a build sets on top of the inherited configuration; `None` keeps what is inherited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigChanges {
    /// User to run as, e.g. `"nobody"` or `"1000:1000"`.
    pub user: Option<String>,
    /// Ports to add to the inherited ones, e.g. `"8080/tcp"`.
    pub exposed_ports: Vec<String>,
    /// `(KEY, VALUE)` pairs, merged by key into the inherited `Env`.
    pub env: Vec<(String, String)>,
    /// New entrypoint; setting one also clears an inherited `Cmd`.
    pub entrypoint: Option<Vec<String>>,
    /// New `Cmd`.
    pub cmd: Option<Vec<String>>,
    /// Volume directories to add to the inherited ones, e.g. `"/data"`.
    pub volumes: Vec<String>,
    /// New working directory, e.g. `"/app"`.
    pub working_dir: Option<String>,
    /// Labels merged by key into the inherited ones; these win.
    pub labels: BTreeMap<String, String>,
    /// New stop signal, e.g. `SIGTERM`.
    pub stop_signal: Option<String>,
    /// New health check, replacing the inherited one whole.
    pub healthcheck: Option<Healthcheck>,
    /// New memory limit, in bytes.
    pub memory: Option<i64>,
    /// New limit on memory plus swap, in bytes; `-1` for unlimited swap.
    pub memory_swap: Option<i64>,
    /// New relative CPU weight.
    pub cpu_shares: Option<i64>,
}

impl ContainerConfig {
    /// Applies `changes` as a Dockerfile would: `Env` and `Labels` merge by key (ours win),
    /// ports and volumes are added, and setting an entrypoint clears an inherited `Cmd`.
    pub fn apply(&mut self, changes: &ConfigChanges) {
        set(&mut self.user, &changes.user);
        set(&mut self.working_dir, &changes.working_dir);
        set(&mut self.stop_signal, &changes.stop_signal);
        set(&mut self.healthcheck, &changes.healthcheck);
        set(&mut self.memory, &changes.memory);
        set(&mut self.memory_swap, &changes.memory_swap);
        set(&mut self.cpu_shares, &changes.cpu_shares);
        if let Some(entrypoint) = &changes.entrypoint {
            self.entrypoint = Some(entrypoint.clone());
            self.cmd = None;
        }
        set(&mut self.cmd, &changes.cmd);
        add_keys(&mut self.exposed_ports, &changes.exposed_ports);
        add_keys(&mut self.volumes, &changes.volumes);
        if !changes.labels.is_empty() {
            let labels = self.labels.get_or_insert_with(BTreeMap::new);
            labels.extend(changes.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        if !changes.env.is_empty() {
            let env = self.env.get_or_insert_with(Vec::new);
            for (key, value) in &changes.env {
                let entry = format!("{key}={value}");
                let same_key = |e: &String| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key;
                match env.iter_mut().find(|e| same_key(e)) {
                    Some(existing) => *existing = entry,
                    None => env.push(entry),
                }
            }
        }
    }
}

fn set<T: Clone>(field: &mut Option<T>, change: &Option<T>) {
    if let Some(value) = change {
        *field = Some(value.clone());
    }
}

fn add_keys(map: &mut Option<BTreeMap<String, Empty>>, keys: &[String]) {
    if !keys.is_empty() {
        map.get_or_insert_with(BTreeMap::new)
            .extend(keys.iter().map(|k| (k.clone(), Empty {})));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let json = concat!(
            r#"{"architecture":"amd64","os":"linux","#,
            r#""config":{"Env":["PATH=/bin"],"Shell":["/bin/sh","-c"],"OnBuild":null},"#,
            r#""rootfs":{"type":"layers","diff_ids":[]},"moby.buildkit.buildinfo.v1":"e30="}"#
        );
        let config: ImageConfig = serde_json::from_str(json).unwrap();
        let again = serde_json::to_string(&config).unwrap();
        let back: Value = serde_json::from_str(&again).unwrap();
        assert_eq!(
            back["config"]["Shell"],
            serde_json::json!(["/bin/sh", "-c"])
        );
        assert!(back["config"].as_object().unwrap().contains_key("OnBuild"));
        assert_eq!(back["moby.buildkit.buildinfo.v1"], "e30=");
    }

    #[test]
    fn changes_apply_with_dockerfile_rules() {
        let mut config = ContainerConfig {
            env: Some(vec!["PATH=/usr/bin".into(), "LANG=C".into()]),
            cmd: Some(vec!["/bin/sh".into()]),
            labels: Some(BTreeMap::from([
                ("a".into(), "1".into()),
                ("b".into(), "1".into()),
            ])),
            exposed_ports: Some(BTreeMap::from([("22/tcp".into(), Empty {})])),
            user: Some("root".into()),
            ..ContainerConfig::default()
        };
        config.apply(&ConfigChanges {
            env: vec![
                ("LANG".into(), "C.UTF-8".into()),
                ("RUST_LOG".into(), "info".into()),
            ],
            entrypoint: Some(vec!["/app".into()]),
            labels: BTreeMap::from([("b".into(), "2".into())]),
            exposed_ports: vec!["8080/tcp".into()],
            ..ConfigChanges::default()
        });
        assert_eq!(
            config.env.unwrap(),
            ["PATH=/usr/bin", "LANG=C.UTF-8", "RUST_LOG=info"]
        );
        assert_eq!(config.entrypoint.unwrap(), ["/app"]);
        assert_eq!(
            config.cmd, None,
            "a new entrypoint clears the inherited cmd"
        );
        assert_eq!(
            config.labels.unwrap(),
            BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())])
        );
        assert_eq!(
            config.exposed_ports.unwrap().keys().collect::<Vec<_>>(),
            ["22/tcp", "8080/tcp"]
        );
        assert_eq!(
            config.user.as_deref(),
            Some("root"),
            "unset changes keep what is inherited"
        );
    }

    #[test]
    fn ports_and_volumes_serialize_as_maps_to_empty_objects() {
        let mut config = ContainerConfig::default();
        config.apply(&ConfigChanges {
            exposed_ports: vec!["53/udp".into()],
            volumes: vec!["/data".into()],
            ..Default::default()
        });
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"ExposedPorts":{"53/udp":{}},"Volumes":{"/data":{}}}"#
        );
    }
}
