//! The metadata's `rustflags` joined to the user's own, for the image's build. Cargo takes
//! rustflags from the first of these that sets any: `CARGO_ENCODED_RUSTFLAGS`, `RUSTFLAGS`,
//! `target.<triple>.rustflags` (with `target.<cfg>`), `build.rustflags`. Ours go through the
//! first the user uses, added to what is there, so none of theirs is silently dropped. With
//! `--target` given, none of them reaches build scripts or proc-macros.

use std::path::{Path, PathBuf};

/// How the flags reach cargo.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// `CARGO_ENCODED_RUSTFLAGS` for the builder: the user's environment flags, then ours.
    Environment(String),
    /// `--config target."<triple>".rustflags=[…]`: added by cargo to the user's target flags;
    /// the user's `build.rustflags`, which cargo would then ignore, come first.
    Config(String),
}

/// How `ours` reach cargo for `target`, given the environment (`env`), the directory cargo
/// runs in and cargo's home.
pub fn deliver(
    target: &str,
    ours: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    dir: &Path,
    cargo_home: Option<&Path>,
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
    let config = Config::read(target, dir, cargo_home);
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
    dir: &Path,
    cargo_home: Option<&Path>,
) -> Option<String> {
    let env = |name: &str| env(name).filter(|value| !value.is_empty());
    let upper = target.to_uppercase().replace(['-', '.'], "_");
    let variable = format!("CARGO_TARGET_{upper}_LINKER");
    if env(&variable).is_some() {
        return Some(format!("`{variable}`"));
    }
    let config = Config::read(target, dir, cargo_home);
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

/// What cargo's configuration files say of rustflags, as cargo finds them: `.cargo/config.toml`
/// (or `.cargo/config`) in the directory cargo runs in and each above it, then cargo's home.
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
    fn read(target: &str, dir: &Path, cargo_home: Option<&Path>) -> Config {
        let mut files: Vec<PathBuf> = dir
            .ancestors()
            .filter_map(|dir| {
                ["config.toml", "config"]
                    .iter()
                    .map(|name| dir.join(".cargo").join(name))
                    .find(|file| file.is_file())
            })
            .collect();
        if let Some(home) = cargo_home {
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
            let Ok(document) = std::fs::read_to_string(file)
                .unwrap_or_default()
                .parse::<toml_edit::DocumentMut>()
            else {
                // cargo itself reports a broken configuration file, and stops.
                continue;
            };
            if let Some(flags) = document.get("build").and_then(|b| b.get("rustflags")) {
                config.build_flags.extend(strings(flags));
                config.every_flag.extend(strings(flags));
            }
            if let Some(targets) = document.get("target").and_then(|t| t.as_table_like()) {
                // A `cfg(…)` table may not apply to this target; counting it as the user's
                // choice keeps ours out of their way, which is the safe side.
                let tables = targets
                    .iter()
                    .filter(|(key, _)| *key == target || key.starts_with("cfg("));
                for (key, table) in tables {
                    if let Some(flags) = table.get("rustflags") {
                        config.has_target_flags = true;
                        config.every_flag.extend(strings(flags));
                    }
                    if table.get("linker").is_some() {
                        config.linker =
                            Some(format!("`target.{key}.linker` in `{}`", file.display()));
                    }
                }
            }
        }
        config
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
        deliver(TARGET, &ours(), &lookup, &project, None)
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
        user_linker(TARGET, &ours, &lookup, &project, Some(dir.path()))
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
