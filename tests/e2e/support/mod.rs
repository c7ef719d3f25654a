//! Helpers shared by the end-to-end tests: fixture copies, running the real `cargo-oci` binary,
//! reading the layouts it writes, and finding the real tools that judge them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

pub mod host;
pub mod parents;
pub mod registries;

pub use registries::{CuttingProxy, Registry, TokenServer};

/// A copy of `tests/fixtures/<name>` in a fresh temporary directory, so tests never write into
/// the source tree and each sees a crate outside any git checkout. The directory name is
/// lower-case because podman 4.3 names an image pulled from a layout after its path.
pub struct Fixture {
    dir: PathBuf,
}

impl Fixture {
    pub fn copy(name: &str) -> Fixture {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cargo-oci-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        copy_dir(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(name),
            &dir,
        );
        Fixture { dir }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn layout(&self) -> PathBuf {
        self.output("hello")
    }

    /// The OCI layout of the image `name`: `target/oci/<name>`.
    pub fn output(&self, name: &str) -> PathBuf {
        self.path().join("target/oci").join(name)
    }

    /// Replaces the `[package.metadata.oci]` section (and everything after it) of the fixture.
    pub fn set_metadata(&self, toml: &str) {
        let manifest = self.path().join("Cargo.toml");
        let text = fs::read_to_string(&manifest).unwrap();
        let head = text.split("[package.metadata.oci]").next().unwrap();
        fs::write(&manifest, format!("{head}{toml}")).unwrap();
    }

    /// Runs `cargo oci build ARGS` in the fixture.
    pub fn build(&self, args: &[&str]) -> Output {
        self.build_with_env(args, &[])
    }

    pub fn build_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut command = cargo_oci();
        command
            .arg("build")
            .args(args)
            .current_dir(self.path())
            .envs(env.iter().copied());
        command.output().unwrap()
    }

    /// Runs `cargo oci ARGS` (any subcommand) in the fixture.
    pub fn cargo_oci(&self, args: &[&str]) -> Output {
        cargo_oci()
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap()
    }

    /// Runs `cargo oci ARGS` in the fixture, killed (and the test failed) if it has not ended
    /// within `limit`: a guard for commands that once hung, not a measure of speed.
    pub fn cargo_oci_within(&self, args: &[&str], limit: std::time::Duration) -> Output {
        output_within(cargo_oci().args(args).current_dir(self.path()), limit)
    }

    /// Builds and panics with cargo-oci's stderr if it fails; returns stdout.
    pub fn build_ok(&self, args: &[&str]) -> String {
        let output = self.build(args);
        assert_success(&output, "cargo oci build");
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The output of `command`, which is killed, and the test failed, if it runs past `limit`.
pub fn output_within(command: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained as they come, so a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not end within {limit:?}: it hung");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// `cargo-oci oci`, [`hermetic`].
pub fn cargo_oci() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-oci"));
    hermetic(&mut command).arg("oci");
    command
}

/// What the tool reads from the environment and the developer's machine could set: cleared.
const MACHINE_SETTINGS: &[&str] = &[
    "CARGO_OCI_REGISTRY",
    "CARGO_OCI_REGISTRY_USERNAME",
    "CARGO_OCI_REGISTRY_PASSWORD",
    "REGISTRY_AUTH_FILE",
    "CONTAINERS_REGISTRIES_CONF",
    "CONTAINERS_REGISTRIES_CONF_DIR",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "CARGO_HTTP_TIMEOUT",
    "CARGO_HTTP_LOW_SPEED_LIMIT",
    "CARGO_NET_RETRY",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "SOURCE_DATE_EPOCH",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTFLAGS",
    "NO_COLOR",
    "CARGO_TERM_COLOR",
    "CARGO_TERM_VERBOSE",
    "CARGO_TERM_QUIET",
    // Read through anstream, with NO_COLOR, when colour is `auto`.
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "CARGO_OCI_SIGNING_KEY",
    // A CI's variables name the builder in a provenance.
    "GITHUB_ACTIONS",
    "GITLAB_CI",
];

/// Makes `command` see none of the developer's own settings, so their Docker login or proxy
/// cannot change a test's outcome: an empty `HOME` (cargo's and rustup's homes kept where they
/// are, for the toolchain and the crate cache), an empty `DOCKER_CONFIG`, an empty
/// `registries.conf` and drop-in directory (not the machine's `/etc/containers`, which podman's
/// package fills), and no registry, network or build settings from the environment. A test
/// sets what it needs after this.
pub fn hermetic(command: &mut Command) -> &mut Command {
    static HOME: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    let home = HOME.get_or_init(|| {
        let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-home");
        fs::create_dir_all(home.join(".docker")).unwrap();
        // podman insists on reading it when DOCKER_CONFIG is set.
        fs::write(home.join(".docker/config.json"), "{}").unwrap();
        fs::write(home.join("registries.conf"), "").unwrap();
        fs::create_dir_all(home.join("registries.conf.d")).unwrap();
        home
    });
    let real_home = PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()));
    let cargo_home =
        std::env::var_os("CARGO_HOME").unwrap_or_else(|| real_home.join(".cargo").into());
    let rustup_home =
        std::env::var_os("RUSTUP_HOME").unwrap_or_else(|| real_home.join(".rustup").into());
    for var in MACHINE_SETTINGS {
        command.env_remove(var);
    }
    command
        .env("HOME", home)
        .env("CARGO_HOME", cargo_home)
        .env("RUSTUP_HOME", rustup_home)
        .env("DOCKER_CONFIG", home.join(".docker"))
        .env("CONTAINERS_REGISTRIES_CONF", home.join("registries.conf"))
        .env(
            "CONTAINERS_REGISTRIES_CONF_DIR",
            home.join("registries.conf.d"),
        )
}

pub fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Copies a directory tree, leaving out `target` directories.
pub fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_name() == "target" {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

/// A blob of a layout, by `sha256:…` digest.
pub fn blob(layout: &Path, digest: &str) -> Value {
    read_json(
        &layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
}

/// The manifest and config the first `index.json` entry points to.
pub fn manifest_and_config(layout: &Path) -> (Value, Value) {
    let index = read_json(&layout.join("index.json"));
    let manifest = blob(layout, index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(layout, manifest["config"]["digest"].as_str().unwrap());
    (manifest, config)
}

/// Whether `tool` can be run. In CI (`CI` set) or with `CARGO_OCI_REQUIRE_TOOLS` set, a missing
/// tool fails the test: `.ci/run` installs them all, so a missing one is a broken setup.
pub fn tool(name: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let required = std::env::var_os("CI").is_some()
            || std::env::var_os("CARGO_OCI_REQUIRE_TOOLS").is_some();
        assert!(
            !required,
            "`{name}` is not installed; `cargo xtask tools` installs what the tests need"
        );
        eprintln!("note: skipping, `{name}` is not installed (`cargo xtask tools` installs it)");
    }
    found
}

/// `oci-image-tool validate` of the image tagged `tag` in `layout`. It predates OCI 1.1's
/// artifacts and cannot pick an image among the untagged entries beside it ("not unique"), so
/// it judges a copy whose `index.json` lists the tagged images alone; the blobs are the same.
pub fn oci_image_tool_validates(layout: &Path, tag: &str) {
    let copy = tempfile::tempdir().unwrap();
    let images = copy.path().join("image");
    copy_dir(layout, &images);
    let mut index = read_json(&layout.join("index.json"));
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .retain(|entry| entry["artifactType"].is_null());
    fs::write(images.join("index.json"), index.to_string()).unwrap();
    let stdout = run(Command::new("oci-image-tool")
        .args(["validate", "--type", "image", "--ref"])
        .arg(format!("name={tag}"))
        .arg(&images));
    assert!(stdout.contains("Validation succeeded"), "{stdout}");
}

/// Runs a tool and returns its stdout, panicking with its stderr if it fails.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("failed to run {command:?}: {e}"));
    assert_success(&output, &format!("{command:?}"));
    String::from_utf8(output.stdout).unwrap()
}

/// `git ARGS` in `dir`, as the same commit in any copy: no user or system configuration, a
/// fixed author, committer and date. Its stdout.
pub fn git(dir: &Path, args: &[&str]) -> String {
    run(Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Ferris")
        .env("GIT_AUTHOR_EMAIL", "ferris@example.com")
        .env("GIT_AUTHOR_DATE", "2026-01-01T00:00:00Z")
        .env("GIT_COMMITTER_NAME", "Ferris")
        .env("GIT_COMMITTER_EMAIL", "ferris@example.com")
        .env("GIT_COMMITTER_DATE", "2026-01-01T00:00:00Z"))
}

/// podman set up to work as root without a login session or systemd: a `CONTAINERS_CONF` of
/// its own with raised ulimits (the defaults fail with `setrlimit RLIMIT_NOFILE`), runc, and
/// the cgroupfs manager (crun refuses the hybrid cgroup layout of these machines).
pub struct Podman {
    conf: tempfile::NamedTempFile,
}

/// An image pulled into podman's store, removed again when dropped (even when a test fails).
pub struct Pulled<'a> {
    podman: &'a Podman,
    pub id: String,
}

impl Podman {
    /// `None` when podman or runc is missing outside CI.
    pub fn new() -> Option<Podman> {
        if !tool("podman") || !tool("runc") {
            return None;
        }
        let mut conf = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(
            &mut conf,
            b"[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\
              [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n",
        )
        .unwrap();
        Some(Podman { conf })
    }

    pub fn conf_path(&self) -> &Path {
        self.conf.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new("podman");
        command.env("CONTAINERS_CONF", self.conf.path()).args(args);
        command
    }

    /// `podman ARGS…` with this configuration.
    pub fn run(&self, args: &[&str]) -> String {
        run(&mut self.command(args))
    }

    /// `podman load -i ARCHIVE`; the loaded tags are removed again when the result is dropped.
    pub fn load(&self, archive: &Path, tags: &[&str]) -> Loaded<'_> {
        run(&mut self.command(&["load", "-i", &archive.display().to_string()]));
        Loaded {
            podman: self,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }

    /// Pulls `oci:LAYOUT:TAG` (podman 4.3 cannot `load` a layout directory).
    pub fn pull(&self, layout: &Path, tag: &str) -> Pulled<'_> {
        let source = format!("oci:{}:{tag}", layout.display());
        let id = run(&mut self.command(&["pull", "--quiet", &source]))
            .trim()
            .to_owned();
        Pulled { podman: self, id }
    }
}

/// Tags loaded into podman, removed when dropped.
pub struct Loaded<'a> {
    podman: &'a Podman,
    pub tags: Vec<String>,
}

impl<'a> Loaded<'a> {
    /// For tags something else loaded: removed when the result is dropped.
    pub fn forget_later(podman: &'a Podman, tags: &[&str]) -> Loaded<'a> {
        Loaded {
            podman,
            tags: tags.iter().map(|t| t.to_string()).collect(),
        }
    }
}

impl Drop for Loaded<'_> {
    fn drop(&mut self) {
        for tag in &self.tags {
            let _ = self.podman.command(&["rmi", "--force", tag]).output();
        }
    }
}

impl Pulled<'_> {
    /// `podman run --rm --network none IMAGE ARGS…`, returning stdout.
    pub fn run(&self, args: &[&str]) -> String {
        let mut command = self
            .podman
            .command(&["run", "--rm", "--network", "none", &self.id]);
        command.args(args);
        run(&mut command)
    }
}

impl Drop for Pulled<'_> {
    fn drop(&mut self) {
        let _ = self.podman.command(&["rmi", "--force", &self.id]).output();
    }
}

/// What `dir` (a `target/oci`) holds besides the build cache (`.cache`) and the outputs' lock
/// files (`.NAME.lock`), which are not outputs.
/// The SBOM file a build for this machine writes beside the image `name`.
pub fn sbom_of(name: &str) -> String {
    format!(
        "{name}.{}.spdx.json",
        host::HOST.platform().replace('/', "-")
    )
}

/// The provenance statement a build for this machine writes beside the image `name`.
pub fn provenance_of(name: &str) -> String {
    format!(
        "{name}.{}.provenance.json",
        host::HOST.platform().replace('/', "-")
    )
}

/// File names, as [`outputs_in`] lists them.
pub fn names(names: &[&str]) -> Vec<std::ffi::OsString> {
    names.iter().map(std::ffi::OsString::from).collect()
}

pub fn outputs_in(dir: &Path) -> Vec<std::ffi::OsString> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    names.retain(|name| {
        let name = name.to_string_lossy();
        name != ".cache" && !(name.starts_with('.') && name.ends_with(".lock"))
    });
    names.sort();
    names
}

/// The size of the largest file under `dir`.
pub fn largest_file(dir: &Path) -> u64 {
    let mut largest = 0;
    for entry in fs::read_dir(dir).into_iter().flatten() {
        let entry = entry.unwrap();
        let metadata = entry.metadata().unwrap();
        largest = largest.max(if metadata.is_dir() {
            largest_file(&entry.path())
        } else {
            metadata.len()
        });
    }
    largest
}

/// The paths of a layer blob's tar entries, in order.
pub fn layer_paths(layout: &Path, digest: &str) -> Vec<String> {
    let blob = fs::read(
        layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:")),
    )
    .unwrap();
    let listing = if blob.starts_with(&[0x1f, 0x8b]) {
        oci_pack::testing::list_tar(flate2::read::MultiGzDecoder::new(blob.as_slice()))
    } else {
        oci_pack::testing::list_tar(blob.as_slice())
    };
    listing.into_iter().map(|e| e.path).collect()
}

/// A private dockerd (moby's classic store, vfs driver, no bridge or iptables) on a unix
/// socket in a temporary directory, so it needs no bridge and touches no host network; stopped
/// when dropped.
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Dockerd {
    /// `None` when dockerd is missing outside CI.
    pub fn start() -> Option<Dockerd> {
        if !tool("dockerd") || !tool("docker") {
            return None;
        }
        // Short: a unix socket path must fit in 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("dk")
            .tempdir_in("/tmp")
            .unwrap();
        let d = dir.path();
        let log = fs::File::create(d.join("log")).unwrap();
        let child = Command::new("dockerd")
            .args(["--storage-driver=vfs", "--iptables=false", "--bridge=none"])
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let daemon = Dockerd { dir, child };
        for _ in 0..120 {
            if daemon
                .docker(&["version"])
                .output()
                .is_ok_and(|o| o.status.success())
            {
                return Some(daemon);
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        panic!(
            "dockerd did not answer within 60 s:\n{}",
            fs::read_to_string(daemon.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// `DOCKER_HOST` for this daemon.
    pub fn host(&self) -> String {
        format!("unix://{}", self.dir.path().join("docker.sock").display())
    }

    /// A `docker` command talking to this daemon, with Debian's client, which matches the daemon
    /// (a newer client on PATH may speak an API version it refuses).
    pub fn docker(&self, args: &[&str]) -> Command {
        let client = if Path::new("/usr/bin/docker").is_file() {
            "/usr/bin/docker"
        } else {
            "docker"
        };
        let mut command = Command::new(client);
        command.env("DOCKER_HOST", self.host()).args(args);
        command
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop the containerd it started.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}
