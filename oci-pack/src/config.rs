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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Empty>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Docker extensions, reserved by the OCI spec under these names and kept with their Docker
    /// meaning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_swap: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
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
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
    pub diff_ids: Vec<Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// What a build sets on top of the inherited configuration; `None` keeps what is inherited.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConfigChanges {
    pub user: Option<String>,
    pub exposed_ports: Vec<String>,
    /// `(KEY, VALUE)` pairs, merged by key into the inherited `Env`.
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub volumes: Vec<String>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: Option<String>,
    pub healthcheck: Option<Healthcheck>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
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
