//! The release pipelines of `templates/ci`, run here as their CI would run them: each template
//! is read with a real YAML parser (Debian's `yq`, PyYAML under jq), and the shell of every job
//! runs in order, in a fresh clone of a fixture repository, against a loopback registry with
//! htpasswd, with the CI's variables standing in (`GITHUB_*`, `CI_*`, the job token) and the
//! `cargo-oci` under test on PATH in place of the install step. The release tag must then be an
//! index of both platforms whose images are the digests the jobs reported, as skopeo reads them.
//!
//! The CI plumbing (`uses:` steps, GitLab's checkout, cache and artifacts) is emulated: a
//! checkout is a `git clone`, artifacts go through a directory all jobs share, a cache is none.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::support::host::{FOREIGN, HOST};
use crate::support::{assert_success, copy_dir, hermetic, run, tool, Fixture, Registry};

/// The registry's htpasswd user and password: the CI's registry login.
const USER: &str = "ci-bot";
const PASSWORD: &str = "job-token-1";
/// The git tag the pipelines release, and the image tag they make of it.
const RELEASE: &str = "v0.1.0";
const RELEASE_TAG: &str = "0.1.0";
/// The fixture's commit time, as git takes it and as images carry it (SOURCE_DATE_EPOCH).
const COMMITTED: &str = "@1704164645 +0000";
const CREATED: &str = "2024-01-02T03:04:05Z";
/// What the templates call the step that installs cargo oci; the test skips it.
const INSTALL_STEP: &str = "Install cargo oci";
/// The one way the templates may install cargo oci: the crates.io `cargo-oci` is another crate.
const INSTALL: &str = "cargo install --locked --git \"$CARGO_OCI_GIT\" cargo-oci";

/// One job of a pipeline (one per matrix entry), as this test runs it.
struct Job {
    name: String,
    /// The target triple the job builds, when it builds one (as run here, see [`runnable`]).
    target: Option<String>,
    /// Variables, in the CI's words: GitHub's are taken literally, GitLab's expanded.
    env: Vec<(String, String)>,
    steps: Vec<Step>,
    /// Whether the job had its install step (skipped).
    installs: bool,
}

enum Step {
    /// A fresh clone of the repository into the job's directory.
    Checkout,
    Shell {
        name: String,
        env: Vec<(String, String)>,
        script: String,
    },
    /// Copies a path of the job's directory into the artifacts, or the artifacts into it.
    Upload {
        from: String,
        to: String,
    },
    Download {
        from: String,
        to: String,
    },
}

struct Pipeline {
    jobs: Vec<Job>,
    /// How the CI runs a script file.
    shell: &'static [&'static str],
    /// The variable naming the job's directory (`GITHUB_WORKSPACE`, `CI_PROJECT_DIR`).
    workspace_variable: &'static str,
    /// The CI's own variables, for every job.
    predefined: Vec<(String, String)>,
    /// Whether `$NAME` in a variable's value is expanded (GitLab), or taken literally (GitHub).
    expands_variables: bool,
}

#[test]
fn the_github_actions_template_releases_both_platforms_under_one_tag() {
    let Some(registry) = ready() else {
        return;
    };
    let document = parse("templates/ci/github.yml");
    let pipeline = github(&document, &registry);
    let reported = run_pipeline(&pipeline);
    check_release(&registry, &pipeline, &reported);
}

#[test]
fn the_gitlab_ci_template_releases_both_platforms_under_one_tag() {
    let Some(registry) = ready() else {
        return;
    };
    let document = parse("templates/ci/gitlab-ci.yml");
    let pipeline = gitlab(&document, &registry);
    let reported = run_pipeline(&pipeline);
    check_release(&registry, &pipeline, &reported);
}

/// The registry the pipelines push to, once every tool they and this test need is there.
fn ready() -> Option<Registry> {
    for needed in ["bash", "git", "jq", "yq", "skopeo", FOREIGN.gcc] {
        if !tool(needed) {
            return None;
        }
    }
    Registry::start(Some((USER, PASSWORD)))
}

/// The template at `path` (of this repository) as JSON, read by PyYAML through Debian's `yq`,
/// after checking that it installs cargo oci only from git.
fn parse(path: &str) -> Value {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    let text = fs::read_to_string(&file).unwrap();
    for line in text.lines().filter(|line| line.contains("cargo install")) {
        assert!(
            line.contains(INSTALL),
            "{path}: `cargo-oci` on crates.io is another project; install with `{INSTALL}`:\n\
             {line}"
        );
    }
    let json = run(hermetic(&mut Command::new("yq")).arg(".").arg(&file));
    serde_json::from_str(&json).unwrap_or_else(|e| {
        panic!("`yq .` did not print JSON ({e}); the test needs Debian's `yq` (jq over PyYAML)")
    })
}

/// The triple a matrix entry builds here: Rust's standard library is the host's only, so the
/// entry of the host's architecture builds for the host's own triple (same platform, another
/// libc), and the foreign one keeps its triple. Its job's text runs as written: the fixture
/// gives that triple a builder, as a team cross-compiling would (`builder = "cross"`), and here
/// the builder is a stand-in reporting a prebuilt static C program (see [`repository`]).
fn runnable(triple: &str) -> String {
    let arch = |triple: &str| triple.split('-').next().unwrap().to_owned();
    if arch(triple) == arch(HOST.triple) {
        HOST.triple.to_owned()
    } else {
        assert_eq!(
            arch(triple),
            arch(FOREIGN.triple),
            "a matrix entry for `{triple}`: this test knows the host and one foreign architecture"
        );
        triple.to_owned()
    }
}

fn is_foreign(triple: &str) -> bool {
    triple != HOST.triple
}

/// `${{ … }}` replaced by what the GitHub context holds here; any other expression fails.
fn expand_github(text: &str, matrix: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("an expression ends") + start;
        let expression = rest[start + 3..end].trim();
        let value = match expression {
            "github.actor" => USER.to_owned(),
            "secrets.GITHUB_TOKEN" => PASSWORD.to_owned(),
            _ => match expression.strip_prefix("matrix.") {
                Some(key) => matrix[key].clone(),
                None => panic!("the test has no value for `${{{{ {expression} }}}}`"),
            },
        };
        out.push_str(&value);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

fn strings(map: &Value) -> Vec<(String, String)> {
    map.as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("a string").to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The workflow of `templates/ci/github.yml`, its jobs in the order `needs` allows.
fn github(document: &Value, registry: &Registry) -> Pipeline {
    assert_eq!(
        document["defaults"]["run"]["shell"], "bash",
        "steps run with `shell: bash`, as the test runs them"
    );
    let mut workflow_env = strings(&document["env"]);
    for (name, value) in &mut workflow_env {
        if name == "CARGO_OCI_REGISTRY" {
            assert_eq!(value, "ghcr.io");
            // The registry this test started stands in for ghcr.io.
            value.clone_from(&registry.host);
        }
    }
    let definitions = document["jobs"].as_object().unwrap();
    let mut order: Vec<&String> = Vec::new();
    while order.len() < definitions.len() {
        let before = order.len();
        for (name, job) in definitions {
            let needs: Vec<&str> = match &job["needs"] {
                Value::Null => vec![],
                Value::String(one) => vec![one.as_str()],
                many => many
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap())
                    .collect(),
            };
            if !order.contains(&name) && needs.iter().all(|n| order.iter().any(|o| o == n)) {
                order.push(name);
            }
        }
        assert!(
            order.len() > before,
            "the jobs' `needs` go round in a circle"
        );
    }
    let mut jobs = Vec::new();
    for name in order {
        let job = &definitions[name];
        let entries: Vec<BTreeMap<String, String>> = match &job["strategy"]["matrix"] {
            Value::Null => vec![BTreeMap::new()],
            matrix => {
                assert_eq!(
                    matrix.as_object().unwrap().len(),
                    1,
                    "the test reads a matrix of `include` entries only"
                );
                matrix["include"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|entry| strings(entry).into_iter().collect())
                    .collect()
            }
        };
        for mut matrix in entries {
            let target = matrix.get("target").map(|t| runnable(t));
            if let Some(target) = &target {
                matrix.insert("target".to_owned(), target.clone());
            }
            let mut env = workflow_env.clone();
            for (key, value) in strings(&job["env"]) {
                env.push((key, expand_github(&value, &matrix)));
            }
            let (steps, installs) = github_steps(job, &matrix);
            jobs.push(Job {
                name: format!("{name} {}", target.as_deref().unwrap_or_default()),
                target,
                env,
                steps,
                installs,
            });
        }
    }
    let predefined = [
        ("CI", "true"),
        ("GITHUB_ACTIONS", "true"),
        // Capitals, as GitHub's names may have: ghcr.io takes lower-case ones only.
        ("GITHUB_REPOSITORY", "Acme/Hello"),
        ("GITHUB_REF", "refs/tags/v0.1.0"),
        ("GITHUB_REF_NAME", RELEASE),
        ("GITHUB_ACTOR", USER),
    ];
    Pipeline {
        jobs,
        // What GitHub runs for `shell: bash`.
        shell: &["bash", "--noprofile", "--norc", "-eo", "pipefail"],
        workspace_variable: "GITHUB_WORKSPACE",
        predefined: predefined
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        expands_variables: false,
    }
}

/// A GitHub job's steps, and whether it had its install step.
fn github_steps(job: &Value, matrix: &BTreeMap<String, String>) -> (Vec<Step>, bool) {
    let mut steps = Vec::new();
    let mut installs = false;
    for step in job["steps"].as_array().unwrap() {
        if let Some(action) = step["uses"].as_str() {
            let (action, _version) = action.split_once('@').unwrap();
            let path = || step["with"]["path"].as_str().unwrap().to_owned();
            match action {
                "actions/checkout" => steps.push(Step::Checkout),
                "actions/upload-artifact" => steps.push(Step::Upload {
                    from: path(),
                    to: String::new(),
                }),
                "actions/download-artifact" => steps.push(Step::Download {
                    from: String::new(),
                    to: path(),
                }),
                // The toolchain is this machine's, and the test keeps no cache between runs.
                "dtolnay/rust-toolchain" | "actions/cache" => {}
                _ => panic!("the test does not know the action `{action}`"),
            }
            continue;
        }
        let script = step["run"].as_str().expect("a step uses an action or runs");
        let name = step["name"].as_str().unwrap_or(script).to_owned();
        if name == INSTALL_STEP {
            assert!(script.contains(INSTALL), "{script}");
            installs = true;
            continue;
        }
        assert!(
            !script.contains("${{"),
            "step `{name}`: expressions go through `env:`, never into a script"
        );
        let env = strings(&step["env"])
            .into_iter()
            .map(|(k, v)| (k, expand_github(&v, matrix)))
            .collect();
        steps.push(Step::Shell {
            name,
            env,
            script: script.to_owned(),
        });
    }
    (steps, installs)
}

/// The pipeline of `templates/ci/gitlab-ci.yml`, its jobs in the order of their stages.
fn gitlab(document: &Value, registry: &Registry) -> Pipeline {
    const KEYWORDS: [&str; 10] = [
        "workflow",
        "stages",
        "variables",
        "default",
        "include",
        "image",
        "services",
        "cache",
        "before_script",
        "after_script",
    ];
    assert!(
        document["image"].is_null() || document["image"].is_string(),
        "a job named `image` is not a job: GitLab reads it as the default image"
    );
    let install = &document[".install-cargo-oci"];
    assert!(
        install
            .as_array()
            .unwrap()
            .iter()
            .any(|line| line.as_str() == Some(INSTALL)),
        "the `.install-cargo-oci` list installs cargo oci: {install}"
    );
    let stages: Vec<&str> = document["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let mut definitions: Vec<(&String, &Value)> = document
        .as_object()
        .unwrap()
        .iter()
        .filter(|(name, _)| !name.starts_with('.') && !KEYWORDS.contains(&name.as_str()))
        .collect();
    let stage = |job: &Value| {
        let name = job["stage"].as_str().unwrap_or("test");
        stages.iter().position(|s| *s == name).unwrap()
    };
    definitions.sort_by_key(|(_, job)| stage(job));
    let mut jobs = Vec::new();
    for (name, job) in definitions {
        let entries: Vec<Vec<(String, String)>> = match &job["parallel"]["matrix"] {
            Value::Null => vec![vec![]],
            matrix => matrix.as_array().unwrap().iter().map(strings).collect(),
        };
        for matrix in entries {
            let mut env = strings(&document["variables"]);
            env.extend(strings(&job["variables"]));
            let mut target = None;
            for (key, value) in matrix {
                if key == "TARGET" {
                    target = Some(runnable(&value));
                    env.push((key, runnable(&value)));
                } else {
                    env.push((key, value));
                }
            }
            // GitLab runs the lines of before_script and script in one shell, in order.
            let mut lines = Vec::new();
            let mut installs = false;
            for item in [&job["before_script"], &job["script"]]
                .into_iter()
                .filter_map(Value::as_array)
                .flatten()
            {
                if item == install {
                    installs = true;
                    continue;
                }
                match item {
                    Value::String(line) => lines.push(line.clone()),
                    Value::Array(nested) => {
                        lines.extend(nested.iter().map(|l| l.as_str().unwrap().to_owned()))
                    }
                    _ => panic!("a script line is a string: {item}"),
                }
            }
            let mut steps = vec![Step::Checkout];
            if stage(job) > 0 {
                steps.push(Step::Download {
                    from: String::new(),
                    to: String::new(),
                });
            }
            steps.push(Step::Shell {
                name: "script".to_owned(),
                env: vec![],
                script: lines.join("\n"),
            });
            for path in job["artifacts"]["paths"].as_array().into_iter().flatten() {
                let path = path.as_str().unwrap().to_owned();
                steps.push(Step::Upload {
                    from: path.clone(),
                    to: path,
                });
            }
            jobs.push(Job {
                name: format!("{name} {}", target.as_deref().unwrap_or_default()),
                target,
                env,
                steps,
                installs,
            });
        }
    }
    let image = format!("{}/acme/hello", registry.host);
    let predefined = [
        ("CI", "true"),
        ("GITLAB_CI", "true"),
        ("CI_COMMIT_TAG", RELEASE),
        ("CI_REGISTRY", &registry.host),
        ("CI_REGISTRY_IMAGE", &image),
        ("CI_REGISTRY_USER", USER),
        ("CI_REGISTRY_PASSWORD", PASSWORD),
    ];
    Pipeline {
        jobs,
        // The runner's shell in an Alpine image.
        shell: &["sh", "-e"],
        workspace_variable: "CI_PROJECT_DIR",
        predefined: predefined
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        expands_variables: true,
    }
}

/// The repository the pipelines release: the `hello` fixture, committed at [`COMMITTED`], with
/// a builder for the foreign triple. That builder stands in for `cross`: the machine has no
/// standard library for the foreign target, so it builds for the host to have cargo's own
/// messages, and reports the static C program the test put where cross would have put the
/// binary (as `targets.rs` packs one).
fn repository(foreign: &str) -> Fixture {
    let fixture = Fixture::copy("hello");
    let stand_in = fixture.path().join("cross-stand-in");
    fs::write(
        &stand_in,
        format!(
            "#!/usr/bin/env bash\nset -euo pipefail\n\
             here=\"$(cd \"$(dirname \"$0\")\" && pwd)\"\n\
             cargo \"${{@/#{foreign}/{host}}}\" |\n  \
             jq -c --arg exe \"$here/target/{foreign}/release/hello\" \\\n    \
             'if .reason == \"compiler-artifact\" and .executable then .executable = $exe \
             else . end'\n",
            host = HOST.triple
        ),
    )
    .unwrap();
    fs::set_permissions(
        &stand_in,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let manifest = fixture.path().join("Cargo.toml");
    let text = fs::read_to_string(&manifest).unwrap();
    fs::write(
        &manifest,
        format!(
            "{text}\n[package.metadata.oci.target.{foreign}]\n\
             builder = [\"./cross-stand-in\", \"build\"]\n"
        ),
    )
    .unwrap();
    let git = |args: &[&str]| {
        run(hermetic(&mut Command::new("git"))
            .args(["-c", "user.name=CI", "-c", "user.email=ci@example.com"])
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .env("GIT_AUTHOR_DATE", COMMITTED)
            .env("GIT_COMMITTER_DATE", COMMITTED)
            .current_dir(fixture.path()))
    };
    git(&["init", "--quiet"]);
    git(&["add", "."]);
    git(&["commit", "--quiet", "-m", "release"]);
    git(&["tag", RELEASE]);
    fixture
}

/// Runs every job in order, each in a directory of its own. Returns what the jobs reported, the
/// artifacts' files by name (the target triple) and content (`REPOSITORY@sha256:…`).
fn run_pipeline(pipeline: &Pipeline) -> BTreeMap<String, String> {
    let foreign = pipeline
        .jobs
        .iter()
        .filter_map(|job| job.target.as_deref())
        .find(|t| is_foreign(t))
        .expect("a job for the foreign architecture");
    let repository = repository(foreign);
    let artifacts = tempfile::tempdir().unwrap();
    let cargo_oci = Path::new(env!("CARGO_BIN_EXE_cargo-oci")).parent().unwrap();
    let path = std::env::join_paths(
        std::iter::once(cargo_oci.to_owned())
            .chain(std::env::split_paths(&std::env::var_os("PATH").unwrap())),
    )
    .unwrap();
    for job in &pipeline.jobs {
        assert!(job.installs, "job `{}` installs cargo oci", job.name);
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        for (number, step) in job.steps.iter().enumerate() {
            match step {
                Step::Checkout => {
                    fs::remove_dir(&work).unwrap();
                    run(hermetic(&mut Command::new("git"))
                        .args(["clone", "--quiet"])
                        .arg(repository.path())
                        .arg(&work));
                    if let Some(target) = job.target.as_deref().filter(|t| is_foreign(t)) {
                        let release = work.join("target").join(target).join("release");
                        crate::targets::foreign_program(&release.join("hello"));
                    }
                }
                Step::Upload { from, to } => copy_dir(&work.join(from), &artifacts.path().join(to)),
                Step::Download { from, to } => {
                    copy_dir(&artifacts.path().join(from), &work.join(to))
                }
                Step::Shell { name, env, script } => {
                    let file = dir.path().join(format!("step-{number}"));
                    let exports: String = if pipeline.expands_variables {
                        // Exported at the script's start, so the shell expands them as GitLab.
                        job.env
                            .iter()
                            .map(|(k, v)| format!("export {k}=\"{}\"\n", v.replace('"', "\\\"")))
                            .collect()
                    } else {
                        String::new()
                    };
                    fs::write(&file, format!("{exports}{script}\n")).unwrap();
                    let mut command = Command::new(pipeline.shell[0]);
                    hermetic(&mut command)
                        .args(&pipeline.shell[1..])
                        .arg(&file)
                        .current_dir(&work)
                        .envs(pipeline.predefined.iter().cloned())
                        .env(pipeline.workspace_variable, &work)
                        .env("PATH", &path);
                    if !pipeline.expands_variables {
                        command.envs(job.env.iter().cloned());
                    }
                    let output = command.envs(env.iter().cloned()).output().unwrap();
                    assert_success(&output, &format!("job `{}`, step `{name}`", job.name));
                }
            }
        }
    }
    let mut reported = BTreeMap::new();
    let mut pending = vec![artifacts.path().to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path: PathBuf = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                reported.insert(name, fs::read_to_string(&path).unwrap().trim().to_owned());
            }
        }
    }
    reported
}

/// `skopeo inspect [--raw] docker://HOST/acme/hello` + `:TAG` or `@DIGEST`, with the
/// registry's login, as JSON.
fn inspect(registry: &Registry, tag_or_digest: &str, raw: bool) -> Value {
    let mut command = Command::new("skopeo");
    hermetic(&mut command).args(["inspect", "--tls-verify=false", "--creds"]);
    command.arg(format!("{USER}:{PASSWORD}"));
    if raw {
        command.arg("--raw");
    }
    let reference = format!("docker://{}/acme/hello{tag_or_digest}", registry.host);
    serde_json::from_str(&run(command.arg(reference))).unwrap()
}

/// The release tag is an index of one image per job, each the digest that job reported, of the
/// job's architecture, dated by the commit; the jobs pushed by digest, so the release tag is
/// the only one (beside the SBOMs' fallback tags).
fn check_release(registry: &Registry, pipeline: &Pipeline, reported: &BTreeMap<String, String>) {
    let mut targets: Vec<String> = pipeline
        .jobs
        .iter()
        .filter_map(|job| job.target.clone())
        .collect();
    targets.sort();
    assert_eq!(
        reported.keys().cloned().collect::<Vec<_>>(),
        targets,
        "one reported push per target"
    );
    let repository = format!("{}/acme/hello", registry.host);
    let mut expected = Vec::new();
    for (target, reference) in reported {
        let digest = reference
            .strip_prefix(&format!("{repository}@"))
            .unwrap_or_else(|| panic!("`{reference}` is a push to {repository} by digest"));
        let arch = if is_foreign(target) {
            FOREIGN.go
        } else {
            HOST.go
        };
        let image = inspect(registry, &format!("@{digest}"), false);
        assert_eq!(image["Digest"], digest);
        assert_eq!(image["Architecture"], arch);
        assert_eq!(
            image["Created"], CREATED,
            "SOURCE_DATE_EPOCH was the commit's"
        );
        expected.push((digest.to_owned(), arch.to_owned()));
    }
    let index = inspect(registry, &format!(":{RELEASE_TAG}"), true);
    let mut command = Command::new("skopeo");
    hermetic(&mut command).args(["list-tags", "--tls-verify=false", "--creds"]);
    command.arg(format!("{USER}:{PASSWORD}"));
    let listed: Value = serde_json::from_str(&run(
        command.arg(format!("docker://{}/acme/hello", registry.host))
    ))
    .unwrap();
    let tags: Vec<&str> = listed["Tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .filter(|t| !t.starts_with("sha256-"))
        .collect();
    assert_eq!(tags, [RELEASE_TAG], "no job pushed a tag of its own");
    assert_eq!(
        index["mediaType"], "application/vnd.oci.image.index.v1+json",
        "{index}"
    );
    let mut entries: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["digest"].as_str().unwrap().to_owned(),
                m["platform"]["architecture"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    entries.sort();
    expected.sort();
    assert_eq!(
        entries, expected,
        "the release tag joins what the jobs pushed"
    );
}
