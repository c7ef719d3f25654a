//! The metadata's `rustflags` joined to the user's own, for the image's build. Cargo takes
//! rustflags from the first of these that sets any: `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`,
//! `target.<triple>.rustflags` (with `target.<cfg>`), `build.rustflags`, each from the
//! command line's `--config` or a configuration file. Ours go through the
//! first the user uses, added to what is there, so none of theirs is silently dropped. With
//! `--target` given, none of them reaches build scripts or proc-macros.

use std::path::PathBuf;

/// How the flags reach cargo.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `CARGO_ENCODED_RUSTFLAGS` for the builder: the user's environment flags, then ours.
    Environment(String),
    /// `--config target."<triple>".rustflags=[…]`: added by cargo to the user's target flags;
    /// the user's `build.rustflags`, which cargo would then ignore, come first.
    Config(String),
}

/// Where cargo reads its configuration for a run, lowest precedence last here and first in
/// cargo's merge: the user's `--config` values, then `.cargo/config.toml` in the directory
/// cargo runs in and each above it, then cargo's home.
#[derive(Debug, Clone, Default)]
pub struct ConfigPlaces {
    pub dir: PathBuf,
    pub cargo_home: Option<PathBuf>,
    /// `--config KEY=VALUE` or `--config PATH` (relative to `dir`), as given.
    pub command_line: Vec<String>,
}

/// How `ours` reach cargo for `target`, given the environment (`env`) and where cargo reads
/// its configuration.
pub fn deliver(
    target: &str,
    ours: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    places: &ConfigPlaces,
) -> Delivery {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(encoded) = env("CARGO_ENCODED_RUSTFLAGS") {
        let flags = encoded.split('\x1f').map(str::to_owned);
        return Delivery::Environment(
            flags
                .chain(ours.iter().cloned())
                .collect::<Vec<_>>()
                .join("\x1f"),
        );
    }
    if let Some(flags) = env("RUSTFLAGS") {
        let flags = flags.split_whitespace().map(str::to_owned);
        return Delivery::Environment(
            flags
                .chain(ours.iter().cloned())
                .collect::<Vec<_>>()
                .join("\x1f"),
        );
    }
    let config = Config::read(target, places);
    let variable = format!(
        "CARGO_TARGET_{}_RUSTFLAGS",
        target.to_uppercase().replace(['-', '.'], "_")
    );
    let mut flags = Vec::new();
    if !config.has_target_flags && env(&variable).is_none() {
        flags.extend(config.build_flags);
        if let Some(from_env) = env("CARGO_BUILD_RUSTFLAGS") {
            flags.extend(from_env.split_whitespace().map(str::to_owned));
        }
    }
    flags.extend(ours.iter().cloned());
    let flags: Vec<String> = flags.iter().map(|flag| toml_string(flag)).collect();
    Delivery::Config(format!(
        "target.{}.rustflags=[{}]",
        toml_string(target),
        flags.join(", ")
    ))
}

/// Where the user chose the linker of `target`, if anywhere cargo or rustc would take it from:
/// `CARGO_TARGET_<T>_LINKER`, `target.<triple>.linker` (or a `target.<cfg>` table's) in any
/// configuration file cargo reads, or `-C linker=` / `-C linker-flavor=` in any rustflags
/// source (the environment's, the configuration's, or the metadata's `ours`). Their choice
/// always wins over ours.
pub fn user_linker(
    target: &str,
    ours: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    places: &ConfigPlaces,
) -> Option<String> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let upper = target.to_uppercase().replace(['-', '.'], "_");
    let variable = format!("CARGO_TARGET_{upper}_LINKER");
    if env(&variable).is_some() {
        return Some(format!("`{variable}`"));
    }
    let config = Config::read(target, places);
    if let Some(file) = config.linker {
        return Some(file);
    }
    let sources: [(String, Vec<String>); 6] = [
        (
            "`CARGO_ENCODED_RUSTFLAGS`".into(),
            env("CARGO_ENCODED_RUSTFLAGS")
                .map(|flags| flags.split('\x1f').map(str::to_owned).collect())
                .unwrap_or_default(),
        ),
        ("`RUSTFLAGS`".into(), split(env("RUSTFLAGS"))),
        (
            format!("`CARGO_TARGET_{upper}_RUSTFLAGS`"),
            split(env(&format!("CARGO_TARGET_{upper}_RUSTFLAGS"))),
        ),
        (
            "`CARGO_BUILD_RUSTFLAGS`".into(),
            split(env("CARGO_BUILD_RUSTFLAGS")),
        ),
        ("the configuration's rustflags".into(), config.every_flag),
        ("the metadata's `rustflags`".into(), ours.to_vec()),
    ];
    sources
        .into_iter()
        .find(|(_, flags)| names_a_linker(flags))
        .map(|(source, _)| format!("`-C linker` in {source}"))
}

fn split(flags: Option<String>) -> Vec<String> {
    flags
        .map(|flags| flags.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Whether rustc flags choose the linker (`-C linker=…`, `-Clinker=…`, `-C linker-flavor=…`,
/// `--codegen linker=…`).
fn names_a_linker(flags: &[String]) -> bool {
    let is_linker =
        |option: &str| option.starts_with("linker=") || option.starts_with("linker-flavor=");
    flags.iter().enumerate().any(|(i, flag)| {
        let next = flags.get(i + 1).map(String::as_str).unwrap_or_default();
        match flag.as_str() {
            "-C" | "--codegen" => is_linker(next),
            other => other
                .strip_prefix("-C")
                .or_else(|| other.strip_prefix("--codegen="))
                .is_some_and(is_linker),
        }
    })
}

/// `text` as a TOML basic string. A JSON string is one: the same quotes and escapes.
pub fn toml_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// What cargo's configuration says of rustflags, as cargo finds it: `--config` on the command
/// line, `.cargo/config.toml` (or `.cargo/config`) in the directory cargo runs in and each
/// above it, then cargo's home.
#[derive(Debug, Default)]
struct Config {
    /// `build.rustflags`, lowest precedence first, as cargo joins them.
    build_flags: Vec<String>,
    /// Whether a `target.<triple>` or `target.<cfg>` table sets rustflags.
    has_target_flags: bool,
    /// Every rustflag of `build.rustflags` and the target's tables (to find `-C linker`).
    every_flag: Vec<String>,
    /// Where a `target.<triple>` or `target.<cfg>` table sets `linker`.
    linker: Option<String>,
}

impl Config {
    fn read(target: &str, places: &ConfigPlaces) -> Config {
        let mut files: Vec<PathBuf> = places
            .dir
            .ancestors()
            .filter_map(|dir| {
                ["config.toml", "config"]
                    .iter()
                    .map(|name| dir.join(".cargo").join(name))
                    .find(|file| file.is_file())
            })
            .collect();
        if let Some(home) = &places.cargo_home {
            for name in ["config.toml", "config"] {
                let file = home.join(name);
                if file.is_file() && !files.contains(&file) {
                    files.push(file);
                    break;
                }
            }
        }
        let mut config = Config::default();
        // Lowest precedence (cargo's home, then the outermost directory) first.
        for file in files.iter().rev() {
            let text = std::fs::read_to_string(file).unwrap_or_default();
            config.take(target, &text, &format!("`{}`", file.display()));
        }
        // The command line's last, as cargo merges them: a path is a file, else `KEY=VALUE`.
        for setting in &places.command_line {
            let file = places.dir.join(setting);
            match file.is_file() {
                true => {
                    let text = std::fs::read_to_string(&file).unwrap_or_default();
                    config.take(target, &text, &format!("`{}`", file.display()));
                }
                false => config.take(target, setting, &format!("`--config {setting}`")),
            }
        }
        config
    }

    /// Adds what one source of configuration (`text`, read from `source`) says.
    fn take(&mut self, target: &str, text: &str, source: &str) {
        // cargo itself reports a broken configuration, and stops.
        let Ok(document) = text.parse::<toml_edit::DocumentMut>() else {
            return;
        };
        if let Some(flags) = document.get("build").and_then(|b| b.get("rustflags")) {
            self.build_flags.extend(strings(flags));
            self.every_flag.extend(strings(flags));
        }
        if let Some(targets) = document.get("target").and_then(|t| t.as_table_like()) {
            // A `cfg(…)` table may not apply to this target; counting it as the user's
            // choice keeps ours out of their way, which is the safe side.
            let tables = targets
                .iter()
                .filter(|(key, _)| *key == target || key.starts_with("cfg("));
            for (key, table) in tables {
                if let Some(flags) = table.get("rustflags") {
                    self.has_target_flags = true;
                    self.every_flag.extend(strings(flags));
                }
                if table.get("linker").is_some() {
                    self.linker = Some(format!("`target.{key}.linker` in {source}"));
                }
            }
        }
    }
}

/// A rustflags value: a list, or a string of flags separated by spaces.
fn strings(value: &toml_edit::Item) -> Vec<String> {
    if let Some(text) = value.as_str() {
        return text.split_whitespace().map(str::to_owned).collect();
    }
    value
        .as_array()
        .map(|array| {
            array
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TARGET: &str = "x86_64-unknown-linux-gnu";

    fn ours() -> Vec<String> {
        vec!["-C".into(), "target-feature=+crt-static".into()]
    }

    fn with(config: &str, env: &[(&str, &str)]) -> Delivery {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join(".cargo")).unwrap();
        std::fs::write(project.join(".cargo/config.toml"), config).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let places = ConfigPlaces {
            dir: project,
            ..ConfigPlaces::default()
        };
        deliver(TARGET, &ours(), &lookup, &places)
    }

    #[test]
    fn the_users_build_flags_are_kept_when_no_target_table_sets_any() {
        assert_eq!(
            with(
                "[build]\nrustflags = [\"--cfg\", \"tokio_unstable\"]\n",
                &[]
            ),
            Delivery::Config(format!(
                "target.\"{TARGET}\".rustflags=[\"--cfg\", \"tokio_unstable\", \"-C\", \
                 \"target-feature=+crt-static\"]"
            ))
        );
        // With a target table, cargo ignores `build.rustflags` anyway; ours join the table's.
        let both = "[build]\nrustflags = \"--cfg a\"\n\
                    [target.'cfg(unix)']\nrustflags = [\"--cfg\", \"b\"]\n";
        assert_eq!(
            with(both, &[]),
            Delivery::Config(format!(
                "target.\"{TARGET}\".rustflags=[\"-C\", \"target-feature=+crt-static\"]"
            ))
        );
    }

    fn linker_with(config: &str, env: &[(&str, &str)], ours: &[&str]) -> Option<String> {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir_all(project.join(".cargo")).unwrap();
        std::fs::write(dir.path().join("config.toml"), config).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let ours: Vec<String> = ours.iter().map(|s| s.to_string()).collect();
        // The file is cargo's home's: the least specific place is found too.
        let places = ConfigPlaces {
            dir: project,
            cargo_home: Some(dir.path().to_owned()),
            command_line: Vec::new(),
        };
        user_linker(TARGET, &ours, &lookup, &places)
            .map(|found| found.replace(&dir.path().display().to_string(), "HOME"))
    }

    #[test]
    fn a_linker_the_user_chose_anywhere_is_found() {
        assert_eq!(linker_with("", &[], &[]), None);
        assert_eq!(
            linker_with(&format!("[target.{TARGET}]\nlinker = \"cc\"\n"), &[], &[]),
            Some(format!("`target.{TARGET}.linker` in `HOME/config.toml`"))
        );
        assert_eq!(
            linker_with("[target.'cfg(unix)']\nlinker = \"cc\"\n", &[], &[]),
            Some("`target.cfg(unix).linker` in `HOME/config.toml`".into())
        );
        // Another target's linker is not this one's.
        assert_eq!(
            linker_with("[target.other-linux-gnu]\nlinker = \"cc\"\n", &[], &[]),
            None
        );
        assert_eq!(
            linker_with(
                "",
                &[("CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER", "cc")],
                &[]
            ),
            Some("`CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_LINKER`".into())
        );
        assert_eq!(
            linker_with("", &[("RUSTFLAGS", "-O -Clinker=clang")], &[]),
            Some("`-C linker` in `RUSTFLAGS`".into())
        );
        assert_eq!(
            linker_with(
                "[build]\nrustflags = [\"-C\", \"linker-flavor=ld.lld\"]\n",
                &[],
                &[]
            ),
            Some("`-C linker` in the configuration's rustflags".into())
        );
        assert_eq!(
            linker_with("", &[], &["-C", "linker=mold"]),
            Some("`-C linker` in the metadata's `rustflags`".into())
        );
        assert_eq!(
            linker_with("", &[("RUSTFLAGS", "-C opt-level=3")], &[]),
            None
        );
    }

    #[test]
    fn the_command_lines_config_counts_as_a_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let lookup = |_: &str| None;
        let places = |command_line: &[&str]| ConfigPlaces {
            dir: dir.path().to_owned(),
            cargo_home: None,
            command_line: command_line.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(
            deliver(
                TARGET,
                &ours(),
                &lookup,
                &places(&["build.rustflags=[\"--cfg\", \"from_cli\"]"])
            ),
            Delivery::Config(format!(
                "target.\"{TARGET}\".rustflags=[\"--cfg\", \"from_cli\", \"-C\", \
                 \"target-feature=+crt-static\"]"
            ))
        );
        let linker = format!("target.{TARGET}.linker=\"cc\"");
        assert_eq!(
            user_linker(TARGET, &[], &lookup, &places(&[&linker])),
            Some(format!("`target.{TARGET}.linker` in `--config {linker}`"))
        );
        // A path is a file, relative to where cargo runs.
        let file = dir.path().join("extra.toml");
        std::fs::write(&file, format!("[target.{TARGET}]\nlinker = \"cc\"\n")).unwrap();
        assert_eq!(
            user_linker(TARGET, &[], &lookup, &places(&["extra.toml"])),
            Some(format!("`target.{TARGET}.linker` in `{}`", file.display()))
        );
    }

    #[test]
    fn environment_flags_win_and_ours_join_them() {
        assert_eq!(
            with("", &[("RUSTFLAGS", "-D warnings")]),
            Delivery::Environment("-D\x1fwarnings\x1f-C\x1ftarget-feature=+crt-static".into())
        );
        assert_eq!(
            with(
                "",
                &[
                    ("CARGO_ENCODED_RUSTFLAGS", "--cfg\x1fx y"),
                    ("RUSTFLAGS", "-D warnings")
                ]
            ),
            Delivery::Environment("--cfg\x1fx y\x1f-C\x1ftarget-feature=+crt-static".into())
        );
    }
}
