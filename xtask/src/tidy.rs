//! Tidy checks: rules of this repository that no compiler enforces, run as plain tests
//! (`cargo test -p xtask`, part of `cargo xtask ci`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::project_root;

/// rustfmt's `max_width`; it does not break string literals, so this checks what it cannot.
const MAX_WIDTH: usize = 100;

/// Every file git tracks, relative to the project root.
fn tracked_files() -> Vec<PathBuf> {
    let output = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(project_root())
        .output()
        .expect("git runs");
    assert!(output.status.success(), "`git ls-files` failed");
    output
        .stdout
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        .collect()
}

fn tracked_rust_files() -> Vec<PathBuf> {
    tracked_files()
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect()
}

fn read(path: &Path) -> String {
    fs::read_to_string(project_root().join(path))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn no_build_output_is_tracked() {
    let outputs: Vec<PathBuf> = tracked_files()
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "target"))
        .collect();
    assert!(
        outputs.is_empty(),
        "build outputs are tracked by git; remove them (`target/` is ignored at any depth):\n{}",
        list(&outputs)
    );
}

#[test]
fn every_rust_file_starts_with_a_module_doc_comment() {
    let undocumented: Vec<PathBuf> = tracked_rust_files()
        .into_iter()
        .filter(|p| !read(p).starts_with("//!"))
        .collect();
    assert!(
        undocumented.is_empty(),
        "these files do not start with a `//!` line saying what they are for:\n{}",
        list(&undocumented)
    );
}

#[test]
fn no_line_is_wider_than_rustfmt_allows() {
    let mut wide = Vec::new();
    for path in tracked_rust_files() {
        // An inline snapshot (snapbox's `str![[r#"…"#]]`) is a program's output, kept verbatim.
        let mut in_snapshot = false;
        for (number, line) in read(&path).lines().enumerate() {
            if line.trim_end().ends_with("str![[r#\"") {
                in_snapshot = true;
            } else if line.starts_with("\"#]]") {
                in_snapshot = false;
            }
            if line.chars().count() > MAX_WIDTH && !in_snapshot {
                wide.push(format!("{}:{}", path.display(), number + 1));
            }
        }
    }
    assert!(
        wide.is_empty(),
        "lines wider than {MAX_WIDTH} characters (rustfmt gives up on long string literals; \
         split them with `\\` continuations):\n  {}",
        wide.join("\n  ")
    );
}

/// A comment that names a file of this repository (`tests/e2e/support/host.rs`,
/// `templates/metadata.toml`)
/// must name one that exists: a clone has nothing else.
#[test]
fn comments_name_only_files_that_exist() {
    let root = project_root();
    let mut dangling = Vec::new();
    for path in tracked_rust_files() {
        let dir = root.join(&path).parent().unwrap().to_owned();
        let crate_dir = crate_dir_of(&root.join(&path));
        for (number, line) in read(&path).lines().enumerate() {
            let Some((_, comment)) = line.split_once("//") else {
                continue;
            };
            for name in file_names(comment) {
                let exists = [&root, &dir, &crate_dir]
                    .iter()
                    .any(|base| base.join(&name).exists());
                if !exists {
                    dangling.push(format!("{}:{}: `{name}`", path.display(), number + 1));
                }
            }
        }
    }
    assert!(
        dangling.is_empty(),
        "comments name files that are not in the repository:\n  {}",
        dangling.join("\n  ")
    );
}

/// The nearest directory above `file` holding a `Cargo.toml`.
fn crate_dir_of(file: &Path) -> PathBuf {
    file.ancestors()
        .skip(1)
        .find(|dir| dir.join("Cargo.toml").is_file())
        .unwrap_or(file)
        .to_owned()
}

/// Relative paths with a directory and a source-file extension, as comments name files:
/// `tests/e2e/support/host.rs`, `.cargo/config.toml`. Absolute paths, paths in the user's home
/// or under a placeholder (`<target-dir>/…`, `$DOCKER_CONFIG/…`) name no file of ours.
fn file_names(comment: &str) -> Vec<String> {
    const EXTENSIONS: [&str; 6] = [".rs", ".md", ".toml", ".sh", ".yml", ".yaml"];
    comment
        .split(|c: char| c.is_whitespace() || matches!(c, '`' | '(' | ')' | ',' | ';' | '"'))
        .map(|word| word.trim_end_matches([':', '.']))
        .filter(|word| word.contains('/') && EXTENSIONS.iter().any(|e| word.ends_with(e)))
        .filter(|word| {
            !word.starts_with(['/', '~', '$', '<', '.'])
                || word.starts_with("./")
                || word.starts_with(".cargo/")
        })
        .filter(|word| !word.contains(['<', '…', '*', '{', ':']))
        .map(str::to_owned)
        .collect()
}

fn list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| format!("  {}", p.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// ARCHITECTURE.md's "Layers" block: for each crate's source directory, its modules in layers,
/// lowest first.
fn layers() -> BTreeMap<String, Vec<BTreeSet<String>>> {
    let architecture = read(Path::new("ARCHITECTURE.md"));
    let section = architecture
        .split("\n## Layers\n")
        .nth(1)
        .expect("ARCHITECTURE.md has a `## Layers` section");
    let block = section
        .split("```")
        .nth(1)
        .expect("the Layers section has a code block");
    let mut crates: BTreeMap<String, Vec<BTreeSet<String>>> = BTreeMap::new();
    let mut current = None;
    for line in block.lines().skip(1) {
        let line = line.split('#').next().unwrap_or_default().trim_end();
        if line.trim().is_empty() {
            continue;
        }
        if !line.starts_with(' ') {
            let dir = line.trim_end_matches(':').to_owned();
            crates.insert(dir.clone(), Vec::new());
            current = Some(dir);
            continue;
        }
        let dir = current.as_ref().expect("a crate line comes first");
        let layer = line.split_whitespace().map(str::to_owned).collect();
        crates.get_mut(dir).unwrap().push(layer);
    }
    crates
}

/// The modules a file uses through `PREFIX::NAME` (`crate::`, `super::`), outside its tests and
/// comments.
fn uses(text: &str, prefix: &str) -> BTreeSet<String> {
    let code: String = text
        .split("#[cfg(test)]\nmod tests")
        .next()
        .unwrap_or(text)
        .lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices(prefix) {
        let rest = &code[at + prefix.len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a::B, c}`: the first name of each item at the top level.
            let mut depth = 0;
            let mut item_start = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !name.is_empty() {
                            found.insert(std::mem::take(&mut name));
                        }
                        item_start = true;
                        continue;
                    }
                    _ => {}
                }
                if item_start && (c.is_alphanumeric() || c == '_') {
                    name.push(c);
                } else if item_start && !name.is_empty() {
                    found.insert(std::mem::take(&mut name));
                    item_start = false;
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            found.insert(name);
        }
    }
    found
}

/// Each module may use only the modules on the layers above its own, so the import graph has no
/// circle and the layering in ARCHITECTURE.md is the code's. A module's own directory (such as
/// `oci-pack/src/registry`) has a section of its own: its files use their siblings through
/// `super::` by that section's layers, and the rest of the crate only below their module.
#[test]
fn modules_use_only_the_layers_below_them() {
    let root = project_root();
    let sections = layers();
    let level_maps: BTreeMap<&str, BTreeMap<&str, usize>> = sections
        .iter()
        .map(|(dir, layers)| {
            let levels = layers
                .iter()
                .enumerate()
                .flat_map(|(level, modules)| modules.iter().map(move |m| (m.as_str(), level)))
                .collect();
            (dir.as_str(), levels)
        })
        .collect();
    let mut problems = Vec::new();
    // Every directory of modules has a section, so no module goes unchecked.
    for dir in module_dirs(&root, &sections) {
        if !sections.contains_key(&dir) {
            problems.push(format!("{dir}/ has modules and no section of its own"));
        }
    }
    for (dir, level_of) in &level_maps {
        // For a module's own directory: the crate's layers, and that module's level in them.
        let outer = Path::new(dir).parent().and_then(|parent| {
            let levels = level_maps.get(parent.to_str()?)?;
            let module = Path::new(dir).file_name()?.to_str()?;
            Some((levels, module, *levels.get(module)?))
        });
        let on_disk: BTreeSet<String> = fs::read_dir(root.join(dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
            .filter(|m| !matches!(m.as_str(), "lib" | "main"))
            .collect();
        for module in &on_disk {
            if !level_of.contains_key(module.as_str()) {
                problems.push(format!("{dir}/{module}.rs is in no layer"));
            }
        }
        for module in level_of.keys() {
            if !on_disk.contains(*module) {
                problems.push(format!(
                    "{dir}/{module}.rs is in a layer but does not exist"
                ));
            }
        }
        for module in &on_disk {
            let Some(&level) = level_of.get(module.as_str()) else {
                continue;
            };
            let text = read(&Path::new(dir).join(format!("{module}.rs")));
            let (crate_levels, crate_level, siblings) = match outer {
                Some((levels, _, outer_level)) => (levels, outer_level, uses(&text, "super::")),
                None => (level_of, level, BTreeSet::new()),
            };
            for used in uses(&text, "crate::") {
                match crate_levels.get(used.as_str()) {
                    Some(&other) if other < crate_level => {}
                    Some(_) if outer.is_none() && used == *module => {}
                    Some(_) => problems.push(format!(
                        "{dir}/{module}.rs uses `crate::{used}`, which is not on a layer below it"
                    )),
                    None => {}
                }
            }
            for used in siblings {
                match level_of.get(used.as_str()) {
                    // An inline module's reach to the items of its own file.
                    None if defined_in(&text, &used) => {}
                    Some(&other) if other < level => {}
                    Some(_) => problems.push(format!(
                        "{dir}/{module}.rs uses `super::{used}`, which is not on a layer below it"
                    )),
                    // Not a sibling: an item of the module above, which it may not use.
                    None => problems.push(format!(
                        "{dir}/{module}.rs uses `super::{used}` of the module above it"
                    )),
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "the layers in ARCHITECTURE.md and the code disagree:\n  {}",
        problems.join("\n  ")
    );
}

/// The directories of `.rs` files under each crate's source directory the sections name
/// (`src`, `oci-pack/src`), as those sections name them.
fn module_dirs(root: &Path, sections: &BTreeMap<String, Vec<BTreeSet<String>>>) -> Vec<String> {
    let mut dirs = Vec::new();
    let mut pending: Vec<String> = sections
        .keys()
        .filter(|dir| !sections.contains_key(Path::new(dir).parent().unwrap().to_str().unwrap()))
        .cloned()
        .collect();
    while let Some(dir) = pending.pop() {
        let entries: Vec<PathBuf> = fs::read_dir(root.join(&dir))
            .unwrap_or_else(|e| panic!("{dir}: {e}"))
            .map(|e| e.unwrap().path())
            .collect();
        if entries
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "rs"))
        {
            dirs.push(dir.clone());
        }
        for sub in entries.iter().filter(|p| p.is_dir()) {
            let name = sub.file_name().unwrap().to_string_lossy();
            pending.push(format!("{dir}/{name}"));
        }
    }
    dirs
}

/// Whether `text` declares an item named `name` (`fn name`, `const NAME`, …).
fn defined_in(text: &str, name: &str) -> bool {
    let kinds = [
        "fn", "const", "static", "struct", "enum", "type", "trait", "mod",
    ];
    kinds.iter().any(|kind| {
        text.match_indices(&format!("{kind} {name}"))
            .any(|(at, found)| {
                let after = text[at + found.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
            })
    })
}

#[test]
fn uses_reads_single_and_grouped_imports() {
    let text = "use crate::a::B;\nuse crate::{c::D, e, f::{G, H}};\nfn x() { crate::i::j(); }\n\
                /// See [`crate::z`].\n#[cfg(test)]\nmod tests {\n    use crate::k;\n}\n";
    let found: Vec<String> = uses(text, "crate::").into_iter().collect();
    assert_eq!(found, ["a", "c", "e", "f", "i"]);
}

/// Every relative link of the docs (`[text](docs/guide/workspaces.md#anchor)`) leads to a file
/// of the repository and, with an anchor, to a heading of that file: a reader who follows one
/// never lands nowhere.
#[test]
fn docs_links_lead_somewhere() {
    let root = project_root();
    let docs = tracked_files().into_iter().filter(|p| {
        p.extension().is_some_and(|e| e == "md")
            && (p.starts_with("docs")
                || p == Path::new("README.md")
                || p == Path::new("ARCHITECTURE.md"))
    });
    let mut broken = Vec::new();
    for path in docs {
        let text = read(&path);
        for target in link_targets(&text) {
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if file.is_empty() {
                path.clone()
            } else {
                path.parent().unwrap().join(file)
            };
            let found = if !root.join(&linked).exists() {
                Some("no such file")
            } else if anchor.is_empty() {
                None
            } else if !headings(&read(&linked)).iter().any(|h| *h == anchor) {
                Some("no such heading")
            } else {
                None
            };
            if let Some(problem) = found {
                broken.push(format!("{}: `{target}`: {problem}", path.display()));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links in the docs lead nowhere:\n  {}",
        broken.join("\n  ")
    );
}

/// The targets of a Markdown text's inline links that are not URLs, outside code blocks and
/// code spans.
fn link_targets(text: &str) -> Vec<String> {
    let mut targets = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if in_block {
            continue;
        }
        // Code spans hold examples, not links.
        let prose: String = line.split('`').step_by(2).collect::<Vec<_>>().join(" ");
        for (at, _) in prose.match_indices("](") {
            let rest = &prose[at + 2..];
            let Some(end) = rest.find(')') else { continue };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                targets.push(target.to_owned());
            }
        }
    }
    targets
}

/// A Markdown file's heading anchors, as GitHub makes them: lowercase, spaces become `-`,
/// punctuation other than `-` and `_` dropped; a repeated heading gets `-1`, `-2`, ….
fn headings(text: &str) -> Vec<String> {
    let mut anchors: Vec<String> = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        let Some(title) = line.strip_prefix('#').filter(|_| !in_block) else {
            continue;
        };
        let title = title.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let repeats = anchors
            .iter()
            .filter(|a| {
                a.as_str() == slug
                    || a.strip_prefix(&format!("{slug}-"))
                        .is_some_and(|n| n.parse::<u32>().is_ok())
            })
            .count();
        anchors.push(if repeats == 0 {
            slug
        } else {
            format!("{slug}-{repeats}")
        });
    }
    anchors
}

#[test]
fn headings_are_slugged_as_github_does() {
    let text = "# `[package.metadata.oci]` reference\n## SBOMs: what is in the image\n\
                ```sh\n# a comment\n```\n### `config.memory`, `config.cpu-shares`\n\
                ## Keys\n## Keys\n";
    assert_eq!(
        headings(text),
        [
            "packagemetadataoci-reference",
            "sboms-what-is-in-the-image",
            "configmemory-configcpu-shares",
            "keys",
            "keys-1"
        ]
    );
}

/// The longest a function outside tests may be: past this it does several things, and a reader
/// wants them named.
const MAX_FUNCTION_LINES: usize = 120;

/// No function outside tests is longer than [`MAX_FUNCTION_LINES`], so each reads as one step.
#[test]
fn no_function_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for path in tracked_rust_files() {
        if path.components().any(|c| c.as_os_str() == "tests") {
            continue;
        }
        for (name, line, length) in long_functions(&read(&path)) {
            let place = format!("{}:{line}", path.display());
            long.push(format!("  {place} `{name}` is {length} lines"));
        }
    }
    assert!(
        long.is_empty(),
        "these functions are longer than {MAX_FUNCTION_LINES} lines; split them into named \
         steps:\n{}",
        long.join("\n")
    );
}

#[test]
fn long_functions_are_found_outside_tests_only() {
    let body = "    let x = 1;\n".repeat(MAX_FUNCTION_LINES);
    let text = format!(
        "//! Doc.\nfn short() {{ let s = \"}}\"; let c = '{{'; }}\n\
         pub(crate) fn long<'a>(x: &'a str) -> Result<(), E> {{\n{body}}}\n\
         trait T {{ fn declared(&self); }}\n\
         #[cfg(test)]\nmod tests {{\n    fn long_test() {{\n{body}    }}\n}}\n"
    );
    assert_eq!(
        long_functions(&text),
        vec![("long".to_owned(), 3, MAX_FUNCTION_LINES + 2)]
    );
}

/// The functions of a Rust file longer than [`MAX_FUNCTION_LINES`]: each one's name, first line
/// and length in lines. A scan of braces, blind to strings, characters and comments, that skips
/// items under `#[cfg(test)]`.
fn long_functions(text: &str) -> Vec<(String, usize, usize)> {
    let code = code_only(text);
    let bytes = code.as_bytes();
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let mut found = Vec::new();
    let mut at = 0;
    while at < code.len() {
        let rest = &code[at..];
        if rest.starts_with("#[cfg(test)]") {
            // Skip the item the attribute is on: up to its `;` or its closing brace.
            at = item_end(bytes, at);
            continue;
        }
        let starts_word =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if starts_word && rest.starts_with("fn ") {
            let name: String = rest[3..]
                .trim_start()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                let end = item_end(bytes, at);
                let (first, last) = (line_of(at), line_of(end.saturating_sub(1)));
                if bytes[end - 1] == b'}' && last - first + 1 > MAX_FUNCTION_LINES {
                    found.push((name, first, last - first + 1));
                }
            }
        }
        at += rest.chars().next().map_or(1, char::len_utf8);
    }
    found
}

/// Where the item starting at `start` ends: just past its first `;` outside brackets, or past the
/// brace that closes its first block.
fn item_end(bytes: &[u8], start: usize) -> usize {
    let mut depth = 0usize;
    let mut in_block = false;
    for (offset, byte) in bytes[start..].iter().enumerate() {
        match byte {
            b'{' | b'(' | b'[' => {
                depth += 1;
                in_block |= *byte == b'{';
            }
            b'}' | b')' | b']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 && in_block {
                    return start + offset + 1;
                }
            }
            b';' if depth == 0 => return start + offset + 1,
            _ => {}
        }
    }
    bytes.len()
}

/// `text` with every comment, string and character literal blanked out (newlines kept), so its
/// brackets are the code's.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                out.push(' ');
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && matches!(next, Some('"' | '#'))
            && (i == 0 || !(chars[i - 1].is_alphanumeric() || chars[i - 1] == '_'))
        {
            // A raw string: `r"…"` or `r#"…"#`, closed by a quote and as many hashes.
            let hashes = chars[i + 1..].iter().take_while(|c| **c == '#').count();
            if chars.get(i + 1 + hashes) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let close: String = std::iter::once('"')
                .chain("#".repeat(hashes).chars())
                .collect();
            let close: Vec<char> = close.chars().collect();
            out.push('"');
            i += 2 + hashes;
            while i < chars.len() && !chars[i..].starts_with(&close) {
                out.push(blank(chars[i]));
                i += 1;
            }
            out.push('"');
            i += close.len();
        } else if c == '"' {
            out.push('"');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(blank(c));
                }
                i += 1;
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A character literal (a lifetime has no closing quote two characters on).
            out.push('\'');
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\\' {
                    out.push(' ');
                    i += 1;
                }
                out.push(' ');
                i += 1;
            }
            out.push('\'');
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}
