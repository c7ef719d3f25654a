//! Helpers shared by the end-to-end tests: fixture copies, running the real `cargo-oci` binary,
//! reading the layouts it writes, and finding the real tools that judge them.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

pub mod host;
pub mod parents;

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
        self.path().join("target/oci/hello")
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
        let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-oci"));
        command
            .arg("oci")
            .arg("build")
            .args(args)
            .current_dir(self.path());
        for var in [
            "SOURCE_DATE_EPOCH",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTFLAGS",
        ] {
            command.env_remove(var);
        }
        command.env("CARGO_TERM_COLOR", "never");
        command.envs(env.iter().copied());
        command.output().unwrap()
    }

    /// Runs `cargo oci ARGS` (any subcommand) in the fixture.
    pub fn cargo_oci(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_cargo-oci"));
        command
            .arg("oci")
            .args(args)
            .current_dir(self.path())
            .env_remove("CARGO_TARGET_DIR");
        command.output().unwrap()
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

/// Runs a tool and returns its stdout, panicking with its stderr if it fails.
pub fn run(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("failed to run {command:?}: {e}"));
    assert_success(&output, &format!("{command:?}"));
    String::from_utf8(output.stdout).unwrap()
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

/// A private registry (distribution, Debian's `docker-registry`) on a free loopback port,
/// optionally with htpasswd Basic auth; stopped when dropped.
pub struct Registry {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
    /// `127.0.0.1:PORT`
    pub host: String,
    auth: Option<(String, String)>,
}

impl Registry {
    /// `None` when the registry is missing outside CI.
    pub fn start(auth: Option<(&str, &str)>) -> Option<Registry> {
        Registry::start_with(auth, None)
    }

    /// A registry that sends clients to `token` for a Bearer token (`auth: token`).
    pub fn start_with_tokens(token: &TokenServer, credentials: (&str, &str)) -> Option<Registry> {
        Registry::start_with(Some(credentials), Some(token))
    }

    fn start_with(auth: Option<(&str, &str)>, token: Option<&TokenServer>) -> Option<Registry> {
        if !tool("docker-registry") || (auth.is_some() && !tool("htpasswd")) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nstorage:\n  filesystem: {{ rootdirectory: {} }}\n\
             http:\n  addr: {host}\n",
            dir.path().join("data").display()
        );
        if let Some(token) = token {
            config.push_str(&format!(
                "auth:\n  token:\n    realm: {}\n    service: {}\n    issuer: {}\n    \
                 rootcertbundle: {}\n",
                token.realm,
                TokenServer::SERVICE,
                TokenServer::ISSUER,
                token.certificate.display()
            ));
        } else if let Some((user, password)) = auth {
            let htpasswd = run(Command::new("htpasswd").args(["-Bbn", user, password]));
            fs::write(dir.path().join("htpasswd"), htpasswd).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{ realm: test, path: {} }}\n",
                dir.path().join("htpasswd").display()
            ));
        }
        fs::write(dir.path().join("registry.yml"), config).unwrap();
        let mut registry = Registry {
            dir,
            child: None,
            host,
            auth: auth.map(|(u, p)| (u.to_owned(), p.to_owned())),
        };
        registry.resume();
        Some(registry)
    }

    /// Starts the registry process (again, after [`Registry::stop`]), with the same storage.
    pub fn resume(&mut self) {
        let log = fs::File::create(self.dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(self.dir.path().join("registry.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(&self.host).is_ok() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("the registry did not listen on {}", self.host);
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `skopeo inspect --raw docker://HOST/NAME`, with this registry's credentials.
    pub fn raw_manifest(&self, name: &str) -> Vec<u8> {
        let mut command = Command::new("skopeo");
        command.args(["inspect", "--raw", "--tls-verify=false"]);
        if let Some((user, password)) = &self.auth {
            command.arg("--creds").arg(format!("{user}:{password}"));
        }
        let output = command
            .arg(format!("docker://{}/{name}", self.host))
            .output()
            .unwrap();
        assert_success(
            &output,
            &format!("skopeo inspect --raw docker://{}/{name}", self.host),
        );
        output.stdout
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A TCP proxy in front of a registry that cuts every connection, mid-transfer, once a number
/// of bytes has gone through, and refuses new ones until [`CuttingProxy::resume`]: a registry
/// that goes away in the middle of a push, deterministically.
pub struct CuttingProxy {
    /// `127.0.0.1:PORT` to talk to instead of the registry.
    pub host: String,
    state: std::sync::Arc<std::sync::Mutex<ProxyState>>,
}

struct ProxyState {
    open: bool,
    /// After a cut, let connections through again this much later.
    reopen_after: Option<std::time::Duration>,
    cut_after: Option<u64>,
    forwarded: u64,
    streams: Vec<std::net::TcpStream>,
    stopped: bool,
}

impl CuttingProxy {
    pub fn start(upstream: &str, cut_after: u64) -> CuttingProxy {
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(ProxyState {
            open: true,
            reopen_after: None,
            cut_after: Some(cut_after),
            forwarded: 0,
            streams: Vec::new(),
            stopped: false,
        }));
        let upstream = upstream.to_owned();
        let shared = state.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let mut guard = shared.lock().unwrap();
                if guard.stopped {
                    return;
                }
                if !guard.open {
                    continue; // dropped: the connection is refused
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                guard
                    .streams
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                drop(guard);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let counting = shared.clone();
                std::thread::spawn(move || Self::pump(client, server, Some(counting)));
                std::thread::spawn(move || Self::pump(s2, c2, None));
            }
        });
        CuttingProxy { host, state }
    }

    /// Copies `from` to `to`; counting the bytes towards the cut when `counting` is given.
    fn pump(
        mut from: std::net::TcpStream,
        mut to: std::net::TcpStream,
        counting: Option<std::sync::Arc<std::sync::Mutex<ProxyState>>>,
    ) {
        use std::io::{Read, Write};
        let mut buffer = [0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if let Some(state_arc) = &counting {
                let mut state = state_arc.lock().unwrap();
                state.forwarded += n as u64;
                if state.cut_after.is_some_and(|limit| state.forwarded > limit) {
                    state.open = false;
                    for stream in state.streams.drain(..) {
                        let _ = stream.shutdown(std::net::Shutdown::Both);
                    }
                    if let Some(pause) = state.reopen_after {
                        let shared = state_arc.clone();
                        std::thread::spawn(move || {
                            std::thread::sleep(pause);
                            let mut state = shared.lock().unwrap();
                            state.open = true;
                            state.cut_after = None;
                        });
                    }
                    return;
                }
            }
            if to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(std::net::Shutdown::Write);
    }

    /// Like [`CuttingProxy::start`], but a cut lasts only `pause`: a transient failure.
    pub fn start_transient(
        upstream: &str,
        cut_after: u64,
        pause: std::time::Duration,
    ) -> CuttingProxy {
        let proxy = CuttingProxy::start(upstream, cut_after);
        proxy.state.lock().unwrap().reopen_after = Some(pause);
        proxy
    }

    /// Lets connections through again, with no further cut.
    pub fn resume(&self) {
        let mut state = self.state.lock().unwrap();
        state.open = true;
        state.cut_after = None;
    }
}

impl Drop for CuttingProxy {
    fn drop(&mut self) {
        self.state.lock().unwrap().stopped = true;
        let _ = std::net::TcpStream::connect(&self.host); // wakes the accept loop to end it
    }
}

/// A token server for a registry with `auth: token`: it checks HTTP Basic credentials and answers
/// with a JWT (RS256, signed by `openssl`, its certificate in `x5c`) granting pull and push on
/// one repository, as Docker Hub and most hosted registries do. Runs until the test ends.
pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`
    pub realm: String,
    /// The certificate the registry trusts (`rootcertbundle`).
    pub certificate: PathBuf,
}

impl TokenServer {
    pub const SERVICE: &'static str = "test-registry";
    pub const ISSUER: &'static str = "test-issuer";

    pub fn start(dir: &Path, repository: &str, user: &str, password: &str) -> TokenServer {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let key = dir.join("token.key");
        let certificate = dir.join("token.crt");
        run(Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=token",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&certificate));
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(&certificate)
            .output()
            .unwrap()
            .stdout;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let header = serde_json::json!({"alg": "RS256", "typ": "JWT",
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)]});
        let claims = serde_json::json!({
            "iss": Self::ISSUER, "sub": user, "aud": Self::SERVICE, "jti": "test",
            "iat": now, "nbf": now - 60, "exp": now + 3600,
            "access": [{"type": "repository", "name": repository, "actions": ["pull", "push"]}]
        });
        let signing_input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let input_file = dir.join("token.input");
        fs::write(&input_file, &signing_input).unwrap();
        let signature = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&key)
            .arg(&input_file)
            .output()
            .unwrap()
            .stdout;
        let token = format!("{signing_input}.{}", b64(&signature));
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://{}/token", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            use std::io::{BufRead, BufReader, Write};
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut authorized = false;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if let Some((name, value)) = line.split_once(':') {
                        authorized |=
                            name.eq_ignore_ascii_case("authorization") && value.trim() == expected;
                    }
                    line.clear();
                }
                let (status, body) = if authorized {
                    (
                        "200 OK",
                        serde_json::json!({"token": token, "access_token": token}).to_string(),
                    )
                } else {
                    ("401 Unauthorized", "{}".to_owned())
                };
                let mut stream = stream;
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { realm, certificate }
    }
}
