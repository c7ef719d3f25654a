//! `registries.conf` as podman, buildah and skopeo read it (containers-registries.conf(5)):
//! where a registry base is pulled from. The files are found as podman finds them
//! (`$CONTAINERS_REGISTRIES_CONF`, else `~/.config/containers/registries.conf` if it exists,
//! else `/etc/containers/registries.conf`; then the `registries.conf.d` drop-ins, or those of
//! `$CONTAINERS_REGISTRIES_CONF_DIR`), and merged by the man page's rules: a later file's
//! `[[registry]]` table replaces an earlier one with the same prefix.
//!
//! The table whose `prefix` is the longest match of a base's name decides: `blocked`, its
//! mirrors (tried in order, then its `location`, which replaces the prefix), and which of them
//! may be plain HTTP (`insecure`). Short names are never searched for: a base named `debian`
//! is Docker Hub's, as Docker reads it, whatever `unqualified-search-registries` or `[aliases]`
//! say, so one name means one image on every machine.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use oci_pack::{RemoteImage, Repository};
use serde::Deserialize;

/// The main file, read instead of the user's or the system's.
pub const CONF_VAR: &str = "CONTAINERS_REGISTRIES_CONF";
/// The one directory of drop-ins, read instead of the system's and the user's.
pub const CONF_DIR_VAR: &str = "CONTAINERS_REGISTRIES_CONF_DIR";

/// Where the system's files are.
const SYSTEM_DIR: &str = "/etc/containers";

/// One place a base may be pulled from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    /// The repository to ask: a mirror's, or the base's own (moved by `location`).
    pub repository: Repository,
    /// `insecure = true`: plain HTTP may be tried.
    pub insecure: bool,
}

/// Every `[[registry]]` table of the files read, each prefix once.
#[derive(Debug, Default)]
pub struct RegistriesConf {
    tables: Vec<Table>,
}

/// A `[[registry]]` table, checked, with the file it is from.
#[derive(Debug, Clone)]
struct Table {
    prefix: String,
    /// Empty only under a wildcard prefix: the name is kept as it is.
    location: String,
    insecure: bool,
    blocked: bool,
    mirrors: Vec<Mirror>,
    file: PathBuf,
}

#[derive(Debug, Clone)]
struct Mirror {
    location: String,
    insecure: bool,
    pulls: Pulls,
}

/// Which pulls a mirror serves (`pull-from-mirror`, or `mirror-by-digest-only`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pulls {
    All,
    ByDigest,
    ByTag,
}

/// The files to read, in order.
#[derive(Debug, PartialEq, Eq)]
struct Files {
    main: PathBuf,
    /// Named by the environment: its absence is an error.
    main_required: bool,
    /// Each read in turn, its `*.conf` files in lexical order.
    drop_in_dirs: Vec<PathBuf>,
}

impl Files {
    /// As containers/image chooses them: `conf` and `conf_dir` are the environment's.
    fn choose(
        conf: Option<PathBuf>,
        conf_dir: Option<PathBuf>,
        home: Option<&Path>,
        system: &Path,
    ) -> Files {
        let user = home.map(|home| home.join(".config/containers"));
        let user_file = user.as_ref().map(|dir| dir.join("registries.conf"));
        let user_dir = user.as_ref().map(|dir| dir.join("registries.conf.d"));
        let both_dirs = || {
            std::iter::once(system.join("registries.conf.d"))
                .chain(user_dir.clone())
                .collect()
        };
        let (main, main_required, dirs) = match (conf, user_file) {
            (Some(conf), _) => (conf, true, both_dirs()),
            // The user's own file replaces the system's, drop-ins included.
            (None, Some(user_file)) if user_file.is_file() => {
                (user_file, false, user_dir.into_iter().collect())
            }
            (None, _) => (system.join("registries.conf"), false, both_dirs()),
        };
        Files {
            main,
            main_required,
            drop_in_dirs: conf_dir.map_or(dirs, |dir| vec![dir]),
        }
    }
}

impl RegistriesConf {
    /// The files podman would read, found with `HOME` and the variables above.
    pub fn from_env() -> Result<RegistriesConf> {
        let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
        let home = var("HOME").map(PathBuf::from);
        let files = Files::choose(
            var(CONF_VAR).map(PathBuf::from),
            var(CONF_DIR_VAR).map(PathBuf::from),
            home.as_deref(),
            Path::new(SYSTEM_DIR),
        );
        RegistriesConf::read(&files)
    }

    fn read(files: &Files) -> Result<RegistriesConf> {
        let mut conf = RegistriesConf::default();
        match std::fs::read_to_string(&files.main) {
            Ok(text) => conf.merge(parse(&text, &files.main, false)?),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound && !files.main_required => {}
            Err(error) => {
                return Err(error).with_context(|| {
                    format!(
                        "failed to read `{}` (`{CONF_VAR}` names it)",
                        files.main.display()
                    )
                })
            }
        }
        for dir in &files.drop_in_dirs {
            for file in drop_ins(dir)? {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("failed to read `{}`", file.display()))?;
                conf.merge(parse(&text, &file, true)?);
            }
        }
        Ok(conf)
    }

    /// Adds `tables`, each replacing one with the same prefix.
    fn merge(&mut self, tables: Vec<Table>) {
        for table in tables {
            self.tables.retain(|t| t.prefix != table.prefix);
            self.tables.push(table);
        }
    }

    /// The table for `reference`: the one whose prefix matches the most of it.
    fn table_for(&self, reference: &str, registry: &str) -> Option<(&Table, usize)> {
        self.tables
            .iter()
            .filter_map(|table| Some((table, matched(&table.prefix, reference, registry)?)))
            .max_by_key(|(table, _)| table.prefix.len())
    }

    /// Where `image` is pulled from, in order: its mirrors that serve such a pull (by tag or
    /// by digest), then its location; or the image's own repository when no table matches.
    /// A blocked image is an error naming the file that blocks it.
    pub fn pull_sources(&self, image: &RemoteImage) -> Result<Vec<PullSource>> {
        let reference = image.to_string();
        let Some((table, matched)) = self.table_for(&reference, &image.repository.registry) else {
            return Ok(vec![PullSource {
                repository: image.repository.clone(),
                insecure: false,
            }]);
        };
        if table.blocked {
            bail!(
                "`{image}` is blocked: the `[[registry]]` with prefix `{}` in `{}` says \
                 `blocked = true`",
                table.prefix,
                table.file.display()
            );
        }
        let name = image.repository.to_string();
        if matched > name.len() {
            bail!(
                "`{}` in `{}` names a tag or digest, which cargo oci does not rewrite; \
                 a prefix names a registry or repository, as in `{}`",
                table.prefix,
                table.file.display(),
                image.repository
            );
        }
        let wanted = match image.digest {
            Some(_) => Pulls::ByDigest,
            None => Pulls::ByTag,
        };
        let mirrors = table
            .mirrors
            .iter()
            .filter(|m| m.pulls == Pulls::All || m.pulls == wanted)
            .map(|m| (m.location.as_str(), m.insecure));
        let location = std::iter::once((table.location.as_str(), table.insecure));
        mirrors
            .chain(location)
            .map(|(location, insecure)| {
                let repository = match location {
                    "" => image.repository.clone(),
                    _ => rewrite(table, location, &name[matched..])?,
                };
                Ok(PullSource {
                    repository,
                    insecure,
                })
            })
            .collect()
    }

    /// Whether `repository` may be pushed to, and over plain HTTP (its table's `insecure`):
    /// podman refuses a push to a blocked registry too. Pushes go where they are told:
    /// mirrors and `location` are for pulls.
    pub fn push_allows_plain_http(&self, repository: &Repository) -> Result<bool> {
        let name = repository.to_string();
        let Some((table, _)) = self.table_for(&name, &repository.registry) else {
            return Ok(false);
        };
        if table.blocked {
            bail!(
                "`{repository}` is blocked: the `[[registry]]` with prefix `{}` in `{}` says \
                 `blocked = true`",
                table.prefix,
                table.file.display()
            );
        }
        Ok(table.insecure)
    }
}

/// The repository `location` + `rest` (what follows the prefix in the name).
fn rewrite(table: &Table, location: &str, rest: &str) -> Result<Repository> {
    let text = format!("{location}{rest}");
    Repository::parse(&text).with_context(|| {
        format!(
            "the `[[registry]]` with prefix `{}` in `{}` moves the image to `{text}`, \
             which is not a repository",
            table.prefix,
            table.file.display()
        )
    })
}

/// How much of `reference` (`host[:port]/path[:tag][@digest]`, of `registry`) `prefix`
/// matches, if it does. A prefix with no `/` names a registry: `host[:port]` exactly, or
/// `*.domain` any host under the domain (and any port, which stays in the name).
fn matched(prefix: &str, reference: &str, registry: &str) -> Option<usize> {
    if let Some(domain) = prefix.strip_prefix('*') {
        let host = registry.split(':').next().unwrap_or(registry);
        return host.ends_with(domain).then_some(host.len());
    }
    if !prefix.contains('/') {
        return (prefix == registry).then_some(prefix.len());
    }
    let rest = reference.strip_prefix(prefix)?;
    matches!(rest.chars().next(), None | Some('/' | ':' | '@')).then_some(prefix.len())
}

/// The `*.conf` files of `dir`, in lexical order; none if it does not exist.
fn drop_ins(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => {
            return Err(error).with_context(|| format!("failed to read `{}`", dir.display()))
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("failed to read `{}`", dir.display()))?
            .path();
        if path.extension().is_some_and(|e| e == "conf") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// A file as written. Keys we do not use (`unqualified-search-registries`, `[aliases]`,
/// `short-name-mode`, `credential-helpers`) are accepted and ignored, as podman ignores keys
/// it does not know: a file podman reads is one we read.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct FileV2 {
    #[serde(default)]
    registry: Vec<RegistryV2>,
    #[serde(default)]
    unqualified_search_registries: Vec<String>,
    /// Version 1's `[registries.search|insecure|block]` lists.
    #[serde(default)]
    registries: FileV1,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RegistryV2 {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    blocked: bool,
    #[serde(default)]
    mirror_by_digest_only: bool,
    #[serde(default)]
    pull_from_mirror: String,
    #[serde(default)]
    mirror: Vec<MirrorV2>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct MirrorV2 {
    #[serde(default)]
    location: String,
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    pull_from_mirror: String,
}

#[derive(Default, Deserialize)]
struct FileV1 {
    #[serde(default)]
    search: ListV1,
    #[serde(default)]
    insecure: ListV1,
    #[serde(default)]
    block: ListV1,
}

#[derive(Default, Deserialize)]
struct ListV1 {
    #[serde(default)]
    registries: Vec<String>,
}

/// The tables of one file, checked as containers/image checks them; within a file, the first
/// table with a prefix is the one that counts. `drop_in`: version 2 only.
fn parse(text: &str, file: &Path, drop_in: bool) -> Result<Vec<Table>> {
    let invalid = |reason: String| anyhow::anyhow!("invalid `{}`: {reason}", file.display());
    let parsed: FileV2 = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let v1 = &parsed.registries;
    let is_v1 = [&v1.search, &v1.insecure, &v1.block]
        .iter()
        .any(|list| !list.registries.is_empty());
    let tables = match is_v1 {
        true if drop_in => return Err(invalid("a drop-in must be in the version 2 format".into())),
        true if !parsed.registry.is_empty() || !parsed.unqualified_search_registries.is_empty() => {
            return Err(invalid(
                "`[registries.*]` (version 1) and `[[registry]]` (version 2) are mixed".into(),
            ))
        }
        true => from_v1(v1).map_err(invalid)?,
        false => parsed.registry,
    };
    let tables = tables
        .into_iter()
        .map(|table| check(table, file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;
    agree(&tables).map_err(invalid)?;
    let mut first: Vec<Table> = Vec::new();
    for table in tables {
        if !first.iter().any(|t| t.prefix == table.prefix) {
            first.push(table);
        }
    }
    Ok(first)
}

/// Version 1's lists as tables: one per registry, which may be both insecure and blocked.
fn from_v1(v1: &FileV1) -> Result<Vec<RegistryV2>, String> {
    let mut tables: Vec<RegistryV2> = Vec::new();
    for (list, insecure) in [(&v1.insecure, true), (&v1.block, false)] {
        for location in &list.registries {
            let location = trimmed(location)?;
            let table = match tables.iter_mut().find(|t| t.location == location) {
                Some(table) => table,
                None => {
                    tables.push(RegistryV2 {
                        prefix: location.clone(),
                        location,
                        insecure: false,
                        blocked: false,
                        mirror_by_digest_only: false,
                        pull_from_mirror: String::new(),
                        mirror: Vec::new(),
                    });
                    tables.last_mut().expect("just pushed")
                }
            };
            table.insecure |= insecure;
            table.blocked |= !insecure;
        }
    }
    Ok(tables)
}

/// Tables of one registry (by location, or by wildcard prefix) agree on `insecure` and
/// `blocked`, as containers/image requires.
fn agree(tables: &[Table]) -> Result<(), String> {
    let registry = |t: &Table| match t.location.as_str() {
        "" => t.prefix.clone(),
        location => location.to_owned(),
    };
    for (i, table) in tables.iter().enumerate() {
        let conflict = tables[..i].iter().find(|other| {
            registry(other) == registry(table)
                && (other.insecure != table.insecure || other.blocked != table.blocked)
        });
        if conflict.is_some() {
            return Err(format!(
                "`{}` is the location of two `[[registry]]` tables that disagree on \
                 `insecure` or `blocked`",
                registry(table)
            ));
        }
    }
    Ok(())
}

/// A `[[registry]]` table's rules, as containers/image states them.
fn check(table: RegistryV2, file: &Path) -> Result<Table, String> {
    let location = trimmed(&table.location)?;
    let prefix = match trimmed(&table.prefix)? {
        prefix if prefix.is_empty() && location.is_empty() => {
            return Err("a `[[registry]]` has neither `prefix` nor `location`".into())
        }
        prefix if prefix.is_empty() => location.clone(),
        prefix => prefix,
    };
    let at = format!("the `[[registry]]` with prefix `{prefix}`");
    if prefix.starts_with("*.") && prefix.contains(['/', '@', ':']) {
        return Err(format!(
            "{at}: a wildcard prefix is `*.example.com`, with no port, path, tag or digest"
        ));
    }
    let stars_ok = match prefix.strip_prefix("*.") {
        Some(domain) => !domain.contains('*'),
        None => !prefix.contains('*'),
    };
    if !stars_ok {
        return Err(format!(
            "{at}: `*` may only begin a prefix, as in `*.example.com`"
        ));
    }
    if location.is_empty() && !prefix.starts_with("*.") {
        return Err(format!(
            "{at}: `location` is needed (only a wildcard prefix may omit it)"
        ));
    }
    if !table.pull_from_mirror.is_empty() {
        return Err(format!(
            "{at}: `pull-from-mirror` is for a `[[registry.mirror]]`"
        ));
    }
    let mut mirrors = Vec::new();
    for mirror in table.mirror {
        let mirror_location = trimmed(&mirror.location)?;
        if mirror_location.is_empty() {
            return Err(format!("{at}: a `[[registry.mirror]]` has no `location`"));
        }
        let pulls = match (
            table.mirror_by_digest_only,
            mirror.pull_from_mirror.as_str(),
        ) {
            (true, "") => Pulls::ByDigest,
            (true, _) => {
                return Err(format!(
                    "{at}: `mirror-by-digest-only` and the mirror `{mirror_location}`'s \
                     `pull-from-mirror` are set together"
                ))
            }
            (false, "" | "all") => Pulls::All,
            (false, "digest-only") => Pulls::ByDigest,
            (false, "tag-only") => Pulls::ByTag,
            (false, other) => {
                return Err(format!(
                    "{at}: the mirror `{mirror_location}` has `pull-from-mirror = \"{other}\"`; \
                     expected \"all\", \"digest-only\" or \"tag-only\""
                ))
            }
        };
        mirrors.push(Mirror {
            location: mirror_location,
            insecure: mirror.insecure,
            pulls,
        });
    }
    Ok(Table {
        prefix,
        location,
        insecure: table.insecure,
        blocked: table.blocked,
        mirrors,
        file: file.to_owned(),
    })
}

/// A prefix or location without trailing `/`; a URL is refused (it names a registry, not how
/// to reach it).
fn trimmed(text: &str) -> Result<String, String> {
    let text = text.trim_end_matches('/');
    if text.starts_with("http://") || text.starts_with("https://") {
        return Err(format!(
            "`{text}` is a URL; a registry is named without a scheme, as in `registry.example.com`"
        ));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(text: &str) -> RegistriesConf {
        let mut conf = RegistriesConf::default();
        conf.merge(parse(text, Path::new("/etc/containers/registries.conf"), false).unwrap());
        conf
    }

    fn sources(conf: &RegistriesConf, image: &str) -> Vec<String> {
        conf.pull_sources(&RemoteImage::parse(image).unwrap())
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}{}",
                    s.repository,
                    if s.insecure { " insecure" } else { "" }
                )
            })
            .collect()
    }

    fn error(result: Result<impl std::fmt::Debug>) -> String {
        format!("{:#}", result.unwrap_err())
    }

    const DIGEST: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    #[test]
    fn the_man_page_example_gives_its_order() {
        let conf = conf(
            r#"
            unqualified-search-registries = ["example.com"]

            [[registry]]
            prefix = "example.com/foo"
            insecure = false
            blocked = false
            location = "internal-registry-for-example.com/bar"

            [[registry.mirror]]
            location = "example-mirror-0.local/mirror-for-foo"

            [[registry.mirror]]
            location = "example-mirror-1.local/mirrors/foo"
            insecure = true

            [[registry]]
            location = "registry.com"

            [[registry.mirror]]
            location = "mirror.registry.com"
            "#,
        );
        assert_eq!(
            sources(&conf, "example.com/foo/image:latest"),
            [
                "example-mirror-0.local/mirror-for-foo/image",
                "example-mirror-1.local/mirrors/foo/image insecure",
                "internal-registry-for-example.com/bar/image",
            ]
        );
        assert_eq!(
            sources(&conf, "registry.com/image"),
            ["mirror.registry.com/image", "registry.com/image"]
        );
        // Not under the prefix: `example.com/foobar` is another namespace.
        assert_eq!(
            sources(&conf, "example.com/foobar/image"),
            ["example.com/foobar/image"]
        );
        assert_eq!(sources(&conf, "quay.io/a/b:1"), ["quay.io/a/b"]);
    }

    #[test]
    fn the_longest_prefix_wins_and_docker_hub_is_matched_normalised() {
        let conf = conf(
            r#"
            [[registry]]
            location = "docker.io"
            [[registry.mirror]]
            location = "mirror.gcr.io"

            [[registry]]
            prefix = "docker.io/library"
            location = "hub-cache.internal:5000/library"
            "#,
        );
        assert_eq!(
            sources(&conf, "debian:bookworm"),
            ["hub-cache.internal:5000/library/debian"]
        );
        assert_eq!(
            sources(&conf, "team/app:1"),
            ["mirror.gcr.io/team/app", "docker.io/team/app"]
        );
    }

    #[test]
    fn a_registry_prefix_matches_that_registry_only_and_wildcards_its_subdomains() {
        let conf = conf(
            r#"
            [[registry]]
            location = "example.com"
            insecure = true

            [[registry]]
            prefix = "*.corp.example"
            [[registry.mirror]]
            location = "cache.internal"
            "#,
        );
        assert_eq!(
            sources(&conf, "example.com/app"),
            ["example.com/app insecure"]
        );
        // containers/image matches this as well, a quirk it says not to rely on: here a
        // registry prefix is the whole `host[:port]`.
        assert_eq!(
            sources(&conf, "example.com:5000/app"),
            ["example.com:5000/app"]
        );
        assert_eq!(
            sources(&conf, "a.b.corp.example/team/app:1"),
            ["cache.internal/team/app", "a.b.corp.example/team/app"]
        );
        assert_eq!(sources(&conf, "corp.example/app"), ["corp.example/app"]);
        assert_eq!(sources(&conf, "xcorp.example/app"), ["xcorp.example/app"]);
    }

    #[test]
    fn digest_only_mirrors_serve_digests_and_tag_only_mirrors_tags() {
        let by_digest = conf(
            r#"
            [[registry]]
            location = "registry.example"
            mirror-by-digest-only = true
            [[registry.mirror]]
            location = "mirror.example"
            "#,
        );
        assert_eq!(
            sources(&by_digest, "registry.example/app:1"),
            ["registry.example/app"]
        );
        assert_eq!(
            sources(&by_digest, &format!("registry.example/app@{DIGEST}")),
            ["mirror.example/app", "registry.example/app"]
        );
        let per_mirror = conf(
            r#"
            [[registry]]
            location = "registry.example"
            [[registry.mirror]]
            location = "digests.example"
            pull-from-mirror = "digest-only"
            [[registry.mirror]]
            location = "tags.example"
            pull-from-mirror = "tag-only"
            [[registry.mirror]]
            location = "all.example"
            pull-from-mirror = "all"
            "#,
        );
        assert_eq!(
            sources(&per_mirror, "registry.example/app:1"),
            [
                "tags.example/app",
                "all.example/app",
                "registry.example/app"
            ]
        );
        assert_eq!(
            sources(&per_mirror, &format!("registry.example/app:1@{DIGEST}")),
            [
                "digests.example/app",
                "all.example/app",
                "registry.example/app"
            ]
        );
    }

    #[test]
    fn a_blocked_image_is_an_error_naming_the_file() {
        let conf = conf(
            "[[registry]]\nprefix = \"docker.io/library\"\nlocation = \"docker.io/library\"\n\
             blocked = true\n",
        );
        let message = error(conf.pull_sources(&RemoteImage::parse("debian").unwrap()));
        assert_eq!(
            message,
            "`docker.io/library/debian:latest` is blocked: the `[[registry]]` with prefix \
             `docker.io/library` in `/etc/containers/registries.conf` says `blocked = true`"
        );
        assert!(conf
            .push_allows_plain_http(&Repository::parse("docker.io/library/app").unwrap())
            .is_err());
        assert_eq!(sources(&conf, "docker.io/team/app"), ["docker.io/team/app"]);
    }

    #[test]
    fn pushes_follow_blocked_and_insecure_but_not_mirrors() {
        let conf = conf(
            "[[registry]]\nlocation = \"registry.internal:5000\"\ninsecure = true\n\
             [[registry.mirror]]\nlocation = \"mirror.internal\"\n",
        );
        let push = |text| conf.push_allows_plain_http(&Repository::parse(text).unwrap());
        assert!(push("registry.internal:5000/app").unwrap());
        assert!(!push("other.internal/app").unwrap());
    }

    #[test]
    fn version_1_lists_are_tables() {
        let conf = conf(
            "[registries.search]\nregistries = ['quay.io']\n\
             [registries.insecure]\nregistries = ['registry.internal', 'registry.bad']\n\
             [registries.block]\nregistries = ['registry.bad']\n",
        );
        assert_eq!(
            sources(&conf, "registry.internal/app"),
            ["registry.internal/app insecure"]
        );
        assert!(conf
            .pull_sources(&RemoteImage::parse("registry.bad/app").unwrap())
            .is_err());
        assert!(parse(
            "[registries.block]\nregistries = ['x.io']\n",
            Path::new("d.conf"),
            true
        )
        .is_err());
    }

    #[test]
    fn podmans_own_keys_are_accepted_and_ignored() {
        let conf = conf(
            r#"
            unqualified-search-registries = ["registry.fedoraproject.org", "quay.io"]
            short-name-mode = "enforcing"
            credential-helpers = ["containers-auth.json"]
            [aliases]
            "debian" = "docker.io/library/debian"
            "fedora" = "registry.fedoraproject.org/fedora"
            "#,
        );
        // A short name stays Docker Hub's: no search, no alias.
        assert_eq!(sources(&conf, "fedora:39"), ["docker.io/library/fedora"]);
    }

    #[test]
    fn mistakes_name_the_file_and_the_table() {
        let file = Path::new("/home/me/.config/containers/registries.conf");
        let parse_error = |text: &str| format!("{:#}", parse(text, file, false).unwrap_err());
        for (text, expected) in [
            (
                "[[registry]]\ninsecure = true\n",
                "neither `prefix` nor `location`",
            ),
            (
                "[[registry]]\nprefix = \"a.io\"\n",
                "the `[[registry]]` with prefix `a.io`: `location` is needed",
            ),
            (
                "[[registry]]\nlocation = \"https://a.io\"\n",
                "`https://a.io` is a URL",
            ),
            (
                "[[registry]]\nprefix = \"*.a.io/x\"\n",
                "a wildcard prefix is `*.example.com`",
            ),
            (
                "[[registry]]\nprefix = \"a.*.io\"\nlocation = \"b.io\"\n",
                "`*` may only begin",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\ninsecure = true\n",
                "a `[[registry.mirror]]` has no `location`",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\nmirror-by-digest-only = true\n\
                 [[registry.mirror]]\nlocation = \"m.io\"\npull-from-mirror = \"all\"\n",
                "set together",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"m.io\"\n\
                 pull-from-mirror = \"sometimes\"\n",
                "expected \"all\", \"digest-only\" or \"tag-only\"",
            ),
            (
                "[[registry]]\nlocation = \"a.io\"\ninsecure = \"yes\"\n",
                "line 3",
            ),
            (
                "[registries.block]\nregistries = ['a.io']\n[[registry]]\nlocation = \"b.io\"\n",
                "are mixed",
            ),
        ] {
            let message = parse_error(text);
            assert!(
                message.starts_with(&format!("invalid `{}`: ", file.display()))
                    && message.contains(expected),
                "{text}: {message}"
            );
        }
        let tagged = conf("[[registry]]\nprefix = \"a.io/app:1\"\nlocation = \"b.io/app:1\"\n");
        assert!(
            error(tagged.pull_sources(&RemoteImage::parse("a.io/app:1").unwrap()))
                .contains("names a tag or digest")
        );
        let bad = conf("[[registry]]\nprefix = \"a.io\"\nlocation = \"not a host\"\n");
        assert!(
            error(bad.pull_sources(&RemoteImage::parse("a.io/app").unwrap()))
                .contains("moves the image to `not a host/app`, which is not a repository")
        );
    }

    #[test]
    fn files_are_found_as_podman_finds_them() {
        let home = tempfile::tempdir().unwrap();
        let system = Path::new("/etc/containers");
        let user = home.path().join(".config/containers");
        let choose = |conf: Option<&str>, dir: Option<&str>| {
            Files::choose(
                conf.map(PathBuf::from),
                dir.map(PathBuf::from),
                Some(home.path()),
                system,
            )
        };
        let both = vec![
            system.join("registries.conf.d"),
            user.join("registries.conf.d"),
        ];
        assert_eq!(
            choose(None, None),
            Files {
                main: system.join("registries.conf"),
                main_required: false,
                drop_in_dirs: both.clone(),
            }
        );
        assert_eq!(
            choose(Some("/tmp/r.conf"), None),
            Files {
                main: "/tmp/r.conf".into(),
                main_required: true,
                drop_in_dirs: both,
            }
        );
        std::fs::create_dir_all(&user).unwrap();
        std::fs::write(user.join("registries.conf"), "").unwrap();
        assert_eq!(
            choose(None, None),
            Files {
                main: user.join("registries.conf"),
                main_required: false,
                drop_in_dirs: vec![user.join("registries.conf.d")],
            }
        );
        assert_eq!(
            choose(None, Some("/tmp/d")).drop_in_dirs,
            [PathBuf::from("/tmp/d")]
        );
    }

    #[test]
    fn drop_ins_are_read_in_order_and_replace_tables_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("registries.conf");
        let drop_ins = dir.path().join("registries.conf.d");
        std::fs::create_dir_all(drop_ins.join("sub.conf")).unwrap();
        std::fs::write(
            &main,
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"main.io\"\n\
             [[registry]]\nlocation = \"b.io\"\nblocked = true\n",
        )
        .unwrap();
        std::fs::write(
            drop_ins.join("20-late.conf"),
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"late.io\"\n",
        )
        .unwrap();
        std::fs::write(
            drop_ins.join("10-early.conf"),
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"early.io\"\n",
        )
        .unwrap();
        std::fs::write(drop_ins.join("ignored.txt"), "not toml [").unwrap();
        let files = Files {
            main: main.clone(),
            main_required: true,
            drop_in_dirs: vec![drop_ins.clone(), dir.path().join("missing")],
        };
        let conf = RegistriesConf::read(&files).unwrap();
        assert_eq!(sources(&conf, "a.io/app"), ["late.io/app", "a.io/app"]);
        // A drop-in that does not name `b.io` leaves the main file's table alone.
        assert!(conf
            .pull_sources(&RemoteImage::parse("b.io/app").unwrap())
            .is_err());

        let missing = Files {
            main: dir.path().join("none.conf"),
            main_required: true,
            drop_in_dirs: Vec::new(),
        };
        assert!(
            error(RegistriesConf::read(&missing)).contains("`CONTAINERS_REGISTRIES_CONF` names it")
        );
        let optional = Files {
            main_required: false,
            ..missing
        };
        assert!(RegistriesConf::read(&optional).unwrap().tables.is_empty());
    }

    #[test]
    fn tables_of_one_location_must_agree_on_insecure_and_blocked() {
        let text = "[[registry]]\nprefix = \"a.io/x\"\nlocation = \"b.io\"\ninsecure = true\n\
                    [[registry]]\nprefix = \"a.io/y\"\nlocation = \"b.io\"\n";
        let message = format!("{:#}", parse(text, Path::new("r.conf"), false).unwrap_err());
        assert_eq!(
            message,
            "invalid `r.conf`: `b.io` is the location of two `[[registry]]` tables that \
             disagree on `insecure` or `blocked`"
        );
        let agreeing = text.replace("insecure = true\n", "");
        assert_eq!(
            parse(&agreeing, Path::new("r.conf"), false).unwrap().len(),
            2
        );
    }

    #[test]
    fn the_first_table_of_a_prefix_in_a_file_counts() {
        let conf = conf(
            "[[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"first.io\"\n\
             [[registry]]\nlocation = \"a.io\"\n[[registry.mirror]]\nlocation = \"second.io\"\n",
        );
        assert_eq!(sources(&conf, "a.io/app"), ["first.io/app", "a.io/app"]);
    }
}
