//! The software bill of materials of an image, from Cargo's own resolution: the packages
//! compiled into its binaries for its target (`cargo metadata --filter-platform`, the build's
//! features; normal dependencies only, so no dev-, build- or other-platform dependency and no
//! proc-macro), with checksums from `Cargo.lock`, and the base image. Written as SPDX 2.3 or
//! CycloneDX 1.5 JSON; the same inputs give the same bytes (identifiers come from the image's
//! digest, times from its `created`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use cargo_metadata::{DependencyKind, Metadata, Package, PackageId};
use oci_pack::Digest;
use oci_pack::Timestamp;
use serde_json::{json, Value};

use crate::cargo::options::CargoOptions;
use crate::plan::SbomFormat;
use crate::text::without_userinfo;

/// `Cargo.lock`'s `checksum` of each registry package, by name, version and source.
pub type Checksums = BTreeMap<(String, String, String), String>;

/// Each package's dependencies among those compiled in.
type Edges<'a> = BTreeMap<&'a PackageId, Vec<&'a PackageId>>;

/// `cargo metadata` of the whole dependency graph as it resolves for `triple`, with the
/// build's features.
pub fn resolve(options: &CargoOptions, triple: &str) -> Result<Metadata> {
    // rustc, which cargo asks about the platform, knows no zigbuild glibc suffix.
    let plain = crate::cargo::compile::plain_triple(triple);
    let mut other = vec!["--filter-platform".to_owned(), plain.to_owned()];
    other.extend(options.feature_args());
    options
        .workspace
        .metadata_command(other)
        .exec()
        .with_context(|| format!("failed to resolve the dependencies for {triple}"))
}

/// The `checksum` of each registry package in `Cargo.lock`, by name, version and source.
pub fn lock_checksums(workspace_root: &Path) -> Result<Checksums> {
    let path = workspace_root.join("Cargo.lock");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(BTreeMap::new());
    };
    let lock: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not valid TOML", path.display()))?;
    let mut checksums = BTreeMap::new();
    let packages = lock.get("package").and_then(|p| p.as_array_of_tables());
    for package in packages.into_iter().flatten() {
        let field = |key: &str| package.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        if let (Some(name), Some(version), Some(source), Some(checksum)) = (
            field("name"),
            field("version"),
            field("source"),
            field("checksum"),
        ) {
            checksums.insert((name, version, source), checksum);
        }
    }
    Ok(checksums)
}

/// What an SBOM is about: one platform's image.
#[derive(Debug)]
pub struct Subject<'a> {
    /// The image's name, e.g. `api`.
    pub name: &'a str,
    /// `linux/amd64`.
    pub platform: &'a str,
    /// The platform's image manifest.
    pub manifest: Digest,
    pub created: Timestamp,
    /// The base image's name and manifest digest, when it has them.
    pub base: Option<(String, Option<String>)>,
}

/// One package compiled into the image.
#[derive(Debug)]
struct Component<'a> {
    package: &'a Package,
    checksum: Option<&'a str>,
}

/// The packages reachable from `root` through normal dependencies, root first, and each
/// one's dependencies among them.
fn components<'a>(
    metadata: &'a Metadata,
    root: &PackageId,
    checksums: &'a Checksums,
) -> Result<(Vec<Component<'a>>, Edges<'a>)> {
    let resolve = metadata
        .resolve
        .as_ref()
        .context("`cargo metadata` resolved no dependencies")?;
    let nodes: BTreeMap<&PackageId, _> = resolve.nodes.iter().map(|n| (&n.id, n)).collect();
    let packages: BTreeMap<&PackageId, &Package> =
        metadata.packages.iter().map(|p| (&p.id, p)).collect();
    let is_proc_macro = |package: &Package| {
        package
            .targets
            .iter()
            .any(|t| t.kind.iter().any(|k| k.to_string() == "proc-macro"))
    };
    let mut order = Vec::new();
    let mut edges: Edges<'_> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    let mut queue = std::collections::VecDeque::from([root]);
    while let Some(id) = queue.pop_front() {
        let Some(node) = nodes.get(id) else { continue };
        let Some(&id) = packages.get_key_value(id).map(|(id, _)| id) else {
            continue;
        };
        if !seen.insert(id) {
            continue;
        }
        order.push(id);
        let mut depends_on: Vec<&PackageId> = Vec::new();
        let mut deps: Vec<_> = node.deps.iter().collect();
        // By what the package is, not by its id, which holds the checkout's absolute path.
        deps.sort_by_key(|dep| packages.get(&dep.pkg).map(|p| stable_key(p)));
        for dep in deps {
            let normal = dep
                .dep_kinds
                .iter()
                .any(|k| k.kind == DependencyKind::Normal);
            let Some(package) = packages.get(&dep.pkg) else {
                continue;
            };
            // A proc-macro runs in the compiler; none of it is in the binary.
            if normal && !is_proc_macro(package) && !depends_on.contains(&&package.id) {
                depends_on.push(&package.id);
                queue.push_back(&package.id);
            }
        }
        edges.insert(id, depends_on);
    }
    let components = order
        .into_iter()
        .map(|id| {
            let package = packages[id];
            let checksum = package.source.as_ref().and_then(|source| {
                checksums
                    .get(&(
                        package.name.to_string(),
                        package.version.to_string(),
                        source.repr.clone(),
                    ))
                    .map(String::as_str)
            });
            Component { package, checksum }
        })
        .collect();
    Ok((components, edges))
}

/// What orders packages the same way in any checkout: name, version, and the source when it is
/// not a path (a path source names this machine's directory).
fn stable_key(package: &Package) -> (String, String, String) {
    let source = package
        .source
        .as_ref()
        .map(|s| s.repr.clone())
        .unwrap_or_default();
    (
        package.name.to_string(),
        package.version.to_string(),
        source,
    )
}

const CRATES_IO: &str = "registry+https://github.com/rust-lang/crates.io-index";

/// Where a package comes from, as cargo's source string says; its URLs without user
/// information (a token in `http://ci-bot:TOKEN@host/…` is never published).
enum Origin<'a> {
    CratesIo,
    /// Another registry: its index URL.
    Registry(String),
    /// A git repository (its URL, without the query) at a commit.
    Git {
        url: String,
        commit: &'a str,
    },
    /// A directory of the workspace or beside it.
    Path,
}

fn origin(package: &Package) -> Origin<'_> {
    let Some(source) = &package.source else {
        return Origin::Path;
    };
    let repr = source.repr.as_str();
    if repr == CRATES_IO {
        Origin::CratesIo
    } else if let Some(git) = repr.strip_prefix("git+") {
        let (url, commit) = git.split_once('#').unwrap_or((git, ""));
        let url = url.split('?').next().unwrap_or(url);
        Origin::Git {
            url: without_userinfo(url),
            commit,
        }
    } else {
        let index = repr.split_once('+').map_or(repr, |(_, url)| url);
        Origin::Registry(without_userinfo(index))
    }
}

/// `pkg:cargo/NAME@VERSION`, qualified with where it came from when that is not crates.io;
/// none for a path package (a workspace member, a `[patch]` with a local fork), which a
/// crates.io purl would confuse with the published crate of that name.
fn purl(package: &Package) -> Option<String> {
    let version = percent_encode(&package.version.to_string());
    let base = format!("pkg:cargo/{}@{version}", package.name);
    match origin(package) {
        Origin::CratesIo => Some(base),
        Origin::Path => None,
        Origin::Registry(index) => {
            Some(format!("{base}?repository_url={}", percent_encode(&index)))
        }
        Origin::Git { url, commit } => Some(format!(
            "{base}?vcs_url={}",
            percent_encode(&format!("git+{url}@{commit}"))
        )),
    }
}

/// Where the package's source can be fetched, as SPDX's `downloadLocation` says it.
fn download_location(package: &Package) -> String {
    match origin(package) {
        Origin::CratesIo => format!(
            "https://crates.io/api/v1/crates/{}/{}/download",
            package.name, package.version
        ),
        Origin::Git { url, commit } if spdx_takes_vcs_url(&url) => format!("git+{url}@{commit}"),
        Origin::Git { .. } | Origin::Registry(_) | Origin::Path => "NOASSERTION".to_owned(),
    }
}

/// Whether SPDX's `downloadLocation` grammar takes `git+URL`: an http(s) or ssh URL whose host
/// is a dotted name (not `file://`, an IP address or a bare host name).
fn spdx_takes_vcs_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let host = host.split(':').next().unwrap_or(host);
    matches!(scheme, "https" | "http" | "ssh")
        && host.contains('.')
        && host.chars().any(|c| c.is_ascii_alphabetic())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// A package's license, as SPDX can state it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum License {
    /// An expression of license identifiers, each on the list below or a `LicenseRef-`, which
    /// the document then declares.
    Expression(String),
    /// Text that is no such expression (`Proprietary`, `MIT/Apache-2.0 AND Zlib`): stated as
    /// `LicenseRef-<text>`, declared with the text itself.
    Text(String),
}

/// The SPDX license identifiers crates commonly use. Any other is kept as a declared
/// `LicenseRef-`, which is valid SPDX whatever license list the reader has.
const KNOWN_LICENSES: &[&str] = &[
    "0BSD",
    "Apache-2.0",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "CC0-1.0",
    "CDLA-Permissive-2.0",
    "EPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-2.0",
    "NCSA",
    "OpenSSL",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "WTFPL",
    "Zlib",
];

/// The exceptions a `WITH` may name, of those crates use.
const KNOWN_EXCEPTIONS: &[&str] = &["LLVM-exception", "Classpath-exception-2.0"];

const OPERATORS: [&str; 3] = ["AND", "OR", "WITH"];

impl License {
    /// Cargo's `license` field: an SPDX expression, or the old `MIT/Apache-2.0` (`OR`).
    fn of(package: &Package) -> Option<License> {
        License::parse(package.license.as_deref()?)
    }

    fn parse(text: &str) -> Option<License> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let has_operator = text.split_whitespace().any(|w| OPERATORS.contains(&w));
        let expression = match text.contains('/') && !has_operator {
            true => text
                .split('/')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(" OR "),
            false => text.to_owned(),
        };
        Some(match expression::parse(&expression) {
            Some(expression) => License::Expression(expression),
            None => License::Text(text.to_owned()),
        })
    }

    /// What SPDX's `licenseDeclared` says.
    fn spdx(&self) -> String {
        match self {
            License::Expression(expression) => expression.clone(),
            License::Text(text) => format!("LicenseRef-{}", spdx_safe(text)),
        }
    }

    /// The `LicenseRef-`s it uses, each with the text that defines it.
    fn refs(&self) -> Vec<(String, String)> {
        match self {
            License::Text(text) => vec![(self.spdx(), text.clone())],
            License::Expression(expression) => identifiers(expression)
                .filter(|id| is_license_ref(id))
                .map(|id| {
                    (
                        id.to_owned(),
                        format!("{id}, as the package's license names it"),
                    )
                })
                .collect(),
        }
    }

    /// CycloneDX's `licenses`: an expression, or a license named by its text.
    fn cyclonedx(&self) -> Value {
        match self {
            License::Expression(expression) => json!([{"expression": expression}]),
            License::Text(text) => json!([{"license": {"name": text}}]),
        }
    }
}

/// The license identifiers of an expression: its words but operators and parentheses.
fn identifiers(expression: &str) -> impl Iterator<Item = &str> {
    expression
        .split_whitespace()
        .flat_map(|word| word.split(['(', ')']))
        .filter(|id| !id.is_empty() && !OPERATORS.contains(id))
}

fn is_license_ref(id: &str) -> bool {
    id.strip_prefix("LicenseRef-").is_some_and(is_idstring)
}

/// SPDX's `idstring`: letters, digits, `-` and `.`, at least one.
fn is_idstring(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// SPDX license expressions (SPDX 2.3, annex D), read by their grammar:
///
/// ```text
/// compound = and *("OR" and)
/// and      = with *("AND" with)
/// with     = simple ["WITH" exception-id]
/// simple   = license-id ["+"] / "LicenseRef-" idstring / "(" compound ")"
/// ```
///
/// A license id must be one of [`KNOWN_LICENSES`] and an exception one of
/// [`KNOWN_EXCEPTIONS`], so that every validator, whatever its license list, accepts it.
mod expression {
    use super::{is_idstring, is_license_ref, KNOWN_EXCEPTIONS, KNOWN_LICENSES};

    /// `text` written the one way SPDX documents read it (single spaces, no line breaks), if it
    /// is a well-formed expression of known identifiers.
    pub fn parse(text: &str) -> Option<String> {
        let tokens: Vec<&str> = text
            .split_whitespace()
            .flat_map(split_parentheses)
            .collect();
        let mut parser = Parser {
            tokens: &tokens,
            next: 0,
        };
        parser.compound()?;
        (parser.next == tokens.len()).then(|| render(&tokens))
    }

    /// `(MIT` → `(`, `MIT`; `Apache-2.0))` → `Apache-2.0`, `)`, `)`.
    fn split_parentheses(word: &str) -> Vec<&str> {
        let mut tokens = Vec::new();
        let mut start = 0;
        for (i, c) in word.char_indices() {
            if c == '(' || c == ')' {
                if start < i {
                    tokens.push(&word[start..i]);
                }
                tokens.push(&word[i..i + 1]);
                start = i + 1;
            }
        }
        if start < word.len() {
            tokens.push(&word[start..]);
        }
        tokens
    }

    fn render(tokens: &[&str]) -> String {
        let mut text = String::new();
        for (i, token) in tokens.iter().enumerate() {
            let after_open = i > 0 && tokens[i - 1] == "(";
            if i > 0 && !after_open && *token != ")" {
                text.push(' ');
            }
            text.push_str(token);
        }
        text
    }

    struct Parser<'a> {
        tokens: &'a [&'a str],
        next: usize,
    }

    impl<'a> Parser<'a> {
        fn peek(&self) -> Option<&'a str> {
            self.tokens.get(self.next).copied()
        }

        fn take(&mut self) -> Option<&'a str> {
            let token = self.peek()?;
            self.next += 1;
            Some(token)
        }

        /// `first *(operator first)`
        fn chain(&mut self, operator: &str, first: fn(&mut Self) -> Option<()>) -> Option<()> {
            first(self)?;
            while self.peek() == Some(operator) {
                self.next += 1;
                first(self)?;
            }
            Some(())
        }

        fn compound(&mut self) -> Option<()> {
            self.chain("OR", |p| p.chain("AND", Self::with))
        }

        fn with(&mut self) -> Option<()> {
            self.simple()?;
            if self.peek() == Some("WITH") {
                self.next += 1;
                KNOWN_EXCEPTIONS.contains(&self.take()?).then_some(())?;
            }
            Some(())
        }

        fn simple(&mut self) -> Option<()> {
            match self.take()? {
                "(" => {
                    self.compound()?;
                    (self.take()? == ")").then_some(())
                }
                id if is_license_ref(id) => Some(()),
                id => {
                    let id = id.strip_suffix('+').unwrap_or(id);
                    (is_idstring(id) && KNOWN_LICENSES.contains(&id)).then_some(())
                }
            }
        }
    }
}

/// Letters, digits, `.` and `-`: what an SPDX identifier may hold.
fn spdx_safe(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// `pkg:oci/NAME@DIGEST?arch=…&repository_url=…&tag=…`, the purl of an image named
/// `REGISTRY/REPOSITORY[:TAG][@DIGEST]`.
pub fn image_purl(name: &str, digest: &str, platform: &str) -> String {
    let name = name.split('@').next().unwrap_or(name);
    // A tag is what follows the last `:` after the last `/` (a port comes before a `/`).
    let (repository, tag) = match name.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => (repository, Some(tag)),
        _ => (name, None),
    };
    let last = repository.rsplit('/').next().unwrap_or(repository);
    let arch = platform.split('/').nth(1).unwrap_or("");
    let mut purl = format!(
        "pkg:oci/{last}@{}?arch={arch}&repository_url={}",
        percent_encode(digest),
        percent_encode(repository)
    );
    if let Some(tag) = tag {
        purl.push_str(&format!("&tag={}", percent_encode(tag)));
    }
    purl
}

fn percent_encode(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The SBOM of `subject`, whose binaries are `root`'s, in `format`.
pub fn document(
    format: SbomFormat,
    subject: &Subject<'_>,
    metadata: &Metadata,
    root: &PackageId,
    checksums: &Checksums,
) -> Result<Vec<u8>> {
    let (components, edges) = components(metadata, root, checksums)?;
    let value = match format {
        SbomFormat::Spdx => spdx(subject, &components, &edges),
        SbomFormat::CycloneDx => cyclonedx(subject, &components, &edges),
        SbomFormat::None => unreachable!("no document is made for `none`"),
    };
    let mut bytes = serde_json::to_vec_pretty(&value).context("failed to write the SBOM")?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// An SPDX identifier: letters, digits, `.` and `-`.
fn spdx_id(kind: &str, index: usize, name: &str) -> String {
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("SPDXRef-{kind}-{index}-{name}")
}
/// The SPDX package of a component (`application`: the one whose binaries the image holds),
/// with the license references its expression uses.
fn spdx_package(
    component: &Component<'_>,
    id: &str,
    application: bool,
) -> (Value, Vec<(String, String)>) {
    let package = component.package;
    let license = License::of(package);
    let mut entry = json!({
        "name": package.name,
        "SPDXID": id,
        "versionInfo": package.version.to_string(),
        "downloadLocation": download_location(package),
        "filesAnalyzed": false,
        "primaryPackagePurpose": if application { "APPLICATION" } else { "LIBRARY" },
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": license.as_ref().map_or("NOASSERTION".to_owned(), License::spdx),
        "copyrightText": "NOASSERTION",
    });
    let refs = license.iter().flat_map(License::refs).collect();
    if let Some(purl) = purl(package) {
        entry["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": purl,
        }]);
    }
    if let Some(checksum) = component.checksum {
        entry["checksums"] = json!([{"algorithm": "SHA256", "checksumValue": checksum}]);
    }
    (entry, refs)
}

/// The SPDX package of the base image, `name` (at `digest` when known) for `platform`.
fn spdx_base(name: &str, digest: Option<&str>, platform: &str) -> Value {
    let mut base = json!({
        "name": name,
        "SPDXID": "SPDXRef-Base",
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "comment": "The base image",
    });
    if let Some(digest) = digest {
        base["versionInfo"] = json!(digest);
        base["externalRefs"] = json!([{
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": image_purl(name, digest, platform),
        }]);
    }
    base
}

fn spdx(subject: &Subject<'_>, components: &[Component<'_>], edges: &Edges<'_>) -> Value {
    let digest = subject.manifest.to_string();
    let image_id = "SPDXRef-Image".to_owned();
    let ids: BTreeMap<&PackageId, String> = components
        .iter()
        .enumerate()
        .map(|(i, c)| (&c.package.id, spdx_id("Package", i, &c.package.name)))
        .collect();
    let mut packages = vec![json!({
        "name": subject.name,
        "SPDXID": image_id,
        "versionInfo": digest,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": false,
        "primaryPackagePurpose": "CONTAINER",
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
        "checksums": [{"algorithm": "SHA256", "checksumValue": subject.manifest.hex()}],
        "comment": format!("The {} image's manifest", subject.platform),
    })];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": image_id,
    })];
    let mut license_refs = BTreeMap::new();
    for (i, component) in components.iter().enumerate() {
        let (entry, refs) = spdx_package(component, &ids[&component.package.id], i == 0);
        license_refs.extend(refs);
        packages.push(entry);
    }
    if let Some(root) = components.first() {
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": ids[&root.package.id],
        }));
    }
    for component in components {
        for dependency in &edges[&component.package.id] {
            relationships.push(json!({
                "spdxElementId": ids[&component.package.id],
                "relationshipType": "DEPENDS_ON",
                "relatedSpdxElement": ids[dependency],
            }));
        }
    }
    if let Some((name, digest)) = &subject.base {
        let base = spdx_base(name, digest.as_deref(), subject.platform);
        packages.push(base);
        relationships.push(json!({
            "spdxElementId": image_id,
            "relationshipType": "DESCENDANT_OF",
            "relatedSpdxElement": "SPDXRef-Base",
        }));
    }
    let mut document = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", subject.name, subject.platform),
        "creationInfo": {
            "created": subject.created.to_rfc3339(),
            "creators": [format!("Tool: cargo-oci-{}", env!("CARGO_PKG_VERSION"))],
        },
        "packages": packages,
        "relationships": relationships,
    });
    if !license_refs.is_empty() {
        document["hasExtractedLicensingInfos"] = license_refs
            .into_iter()
            .map(|(id, text)| json!({"licenseId": id, "extractedText": text}))
            .collect();
    }
    // Unique per document and the same for the same document: named after its content.
    document["documentNamespace"] = json!(format!(
        "https://spdx.org/spdxdocs/cargo-oci/{}/{}",
        percent_encode(subject.name),
        Digest::of(document.to_string().as_bytes()).hex()
    ));
    document
}

/// A version 5 style UUID from a digest's first bytes, for a serial number that is the same
/// for the same image.
fn uuid_of(digest: &Digest) -> String {
    let hex = digest.hex();
    let mut chars: Vec<char> = hex[..32].chars().collect();
    chars[12] = '5';
    chars[16] = ['8', '9', 'a', 'b'][chars[16].to_digit(16).unwrap_or(0) as usize % 4];
    let text: String = chars.into_iter().collect();
    format!(
        "{}-{}-{}-{}-{}",
        &text[..8],
        &text[8..12],
        &text[12..16],
        &text[16..20],
        &text[20..32]
    )
}

fn cyclonedx(subject: &Subject<'_>, components: &[Component<'_>], edges: &Edges<'_>) -> Value {
    let digest = subject.manifest.to_string();
    let refs: BTreeMap<&PackageId, String> = components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            (
                &c.package.id,
                format!("{i}-{}@{}", c.package.name, c.package.version),
            )
        })
        .collect();
    let mut entries = Vec::new();
    for (i, component) in components.iter().enumerate() {
        let package = component.package;
        let mut entry = json!({
            "type": if i == 0 { "application" } else { "library" },
            "bom-ref": refs[&package.id],
            "name": package.name,
            "version": package.version.to_string(),
        });
        if let Some(purl) = purl(package) {
            entry["purl"] = json!(purl);
        }
        if let Some(license) = License::of(package) {
            entry["licenses"] = license.cyclonedx();
        }
        if let Some(checksum) = component.checksum {
            entry["hashes"] = json!([{"alg": "SHA-256", "content": checksum}]);
        }
        match origin(package) {
            Origin::Git { url, commit } => {
                entry["externalReferences"] =
                    json!([{"type": "vcs", "url": format!("git+{url}@{commit}")}]);
            }
            Origin::CratesIo => {
                entry["externalReferences"] =
                    json!([{"type": "distribution", "url": download_location(package)}]);
            }
            Origin::Registry(_) | Origin::Path => {}
        }
        entries.push(entry);
    }
    if let Some((name, base_digest)) = &subject.base {
        let mut base = json!({
            "type": "container",
            "bom-ref": "base-image",
            "name": name,
            "description": "The base image",
        });
        if let Some(base_digest) = base_digest {
            base["version"] = json!(base_digest);
            base["purl"] = json!(image_purl(name, base_digest, subject.platform));
        }
        entries.push(base);
    }
    let mut dependencies: Vec<Value> = components
        .iter()
        .map(|c| {
            json!({
                "ref": refs[&c.package.id],
                "dependsOn": edges[&c.package.id].iter().map(|d| &refs[d]).collect::<Vec<_>>(),
            })
        })
        .collect();
    let mut image_depends = Vec::new();
    if let Some(root) = components.first() {
        image_depends.push(refs[&root.package.id].clone());
    }
    if subject.base.is_some() {
        image_depends.push("base-image".to_owned());
    }
    dependencies.push(json!({"ref": "image", "dependsOn": image_depends}));
    let mut bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "timestamp": subject.created.to_rfc3339(),
            "tools": {"components": [{
                "type": "application",
                "name": "cargo-oci",
                "version": env!("CARGO_PKG_VERSION"),
            }]},
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": subject.name,
                "version": digest,
                "description": format!("The {} image's manifest", subject.platform),
            },
        },
        "components": entries,
        "dependencies": dependencies,
    });
    // Unique per document and the same for the same document: derived from its content.
    let content = Digest::of(bom.to_string().as_bytes());
    bom["serialNumber"] = json!(format!("urn:uuid:{}", uuid_of(&content)));
    bom
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_are_uuids_made_from_the_digest() {
        let digest = Digest::of(b"an image");
        let uuid = uuid_of(&digest);
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "5");
        assert!("89ab".contains(&uuid[19..20]), "{uuid}");
        assert_eq!(uuid, uuid_of(&digest));
        assert_ne!(uuid, uuid_of(&Digest::of(b"another")));
    }

    #[test]
    fn licenses_are_expressions_or_declared_references() {
        let expression = |text: &str| License::parse(text).map(|l| l.spdx());
        assert_eq!(expression("MIT/Apache-2.0").unwrap(), "MIT OR Apache-2.0");
        assert_eq!(
            expression("(MIT OR Apache-2.0) AND Unicode-3.0").unwrap(),
            "(MIT OR Apache-2.0) AND Unicode-3.0"
        );
        // Not an expression: a reference, declared with the text as cargo has it.
        let proprietary = License::parse("Proprietary").unwrap();
        assert_eq!(proprietary.spdx(), "LicenseRef-Proprietary");
        assert_eq!(
            proprietary.refs(),
            [(
                "LicenseRef-Proprietary".to_owned(),
                "Proprietary".to_owned()
            )]
        );
        assert_eq!(
            proprietary.cyclonedx(),
            json!([{"license": {"name": "Proprietary"}}])
        );
        // A slash beside operators is not the old `OR`: its meaning is not guessed.
        let mixed = License::parse("MIT/Apache-2.0 AND Zlib").unwrap();
        assert_eq!(mixed.spdx(), "LicenseRef-MIT-Apache-2.0-AND-Zlib");
        let declared = License::parse("MIT AND LicenseRef-Acme").unwrap();
        assert_eq!(declared.spdx(), "MIT AND LicenseRef-Acme");
        assert_eq!(declared.refs().len(), 1);
        assert_eq!(License::parse("  "), None);
    }

    #[test]
    fn a_license_is_an_expression_only_where_the_grammar_says_so() {
        let spdx = |text: &str| License::parse(text).unwrap().spdx();
        // Well-formed: written with single spaces, on one line.
        assert_eq!(spdx("MIT\nOR  Apache-2.0"), "MIT OR Apache-2.0");
        assert_eq!(spdx("((MIT))"), "((MIT))");
        assert_eq!(
            spdx("Apache-2.0 WITH LLVM-exception OR (GPL-2.0-or-later+ AND MIT)"),
            "Apache-2.0 WITH LLVM-exception OR (GPL-2.0-or-later+ AND MIT)"
        );
        // Accepted by cargo, no expression: declared references to the text.
        for (text, reference) in [
            ("(MIT", "LicenseRef--MIT"),
            ("MIT)", "LicenseRef-MIT-"),
            ("MIT OR", "LicenseRef-MIT-OR"),
            ("OR MIT", "LicenseRef-OR-MIT"),
            ("MIT AND OR Zlib", "LicenseRef-MIT-AND-OR-Zlib"),
            ("() MIT", "LicenseRef----MIT"),
            ("MIT WITH Zlib", "LicenseRef-MIT-WITH-Zlib"),
            ("LLVM-exception", "LicenseRef-LLVM-exception"),
            ("MIT Apache-2.0", "LicenseRef-MIT-Apache-2.0"),
            ("mit or apache-2.0", "LicenseRef-mit-or-apache-2.0"),
            ("MIT++", "LicenseRef-MIT--"),
        ] {
            let license = License::parse(text).unwrap();
            assert_eq!(license.spdx(), reference, "{text}");
            assert_eq!(license.refs(), [(reference.to_owned(), text.to_owned())]);
            assert_eq!(license.cyclonedx(), json!([{"license": {"name": text}}]));
        }
    }

    #[test]
    fn a_git_url_is_a_download_location_only_where_spdx_takes_it() {
        assert!(spdx_takes_vcs_url("https://github.com/rust-lang/cargo"));
        assert!(spdx_takes_vcs_url("ssh://git@git.example.com:2222/team/x"));
        assert!(!spdx_takes_vcs_url("file:///tmp/repo"));
        assert!(!spdx_takes_vcs_url("https://10.0.0.5/team/x"));
        assert!(!spdx_takes_vcs_url("ssh://git@gitea:2222/team/x"));
    }

    #[test]
    fn an_image_purl_keeps_its_tag_apart() {
        assert_eq!(
            image_purl("registry:5000/team/base:1.2", "sha256:ab", "linux/arm64"),
            "pkg:oci/base@sha256%3Aab?arch=arm64&repository_url=registry%3A5000%2Fteam%2Fbase\
             &tag=1.2"
        );
        assert_eq!(
            image_purl("registry:5000/base@sha256:cd", "sha256:cd", "linux/amd64"),
            "pkg:oci/base@sha256%3Acd?arch=amd64&repository_url=registry%3A5000%2Fbase"
        );
    }

    #[test]
    fn percent_encoding_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("1.0.0+build"), "1.0.0%2Bbuild");
        assert_eq!(
            percent_encode("git+https://x/y@ab"),
            "git%2Bhttps%3A%2F%2Fx%2Fy%40ab"
        );
    }
}
