//! The registry rows of `cargo xtask bench`: pushing to a registry on loopback (Debian's
//! `docker-registry`). A fresh push of a three-layer image and the same push again, each against
//! `skopeo copy oci:… docker://…` of the same layout, timed; and the second release of a crate
//! whose only change is its code, in bytes sent to the registry (counted by a proxy in front of
//! it), with every file at the fixed time against files dated by `SOURCE_DATE_EPOCH`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{mb, median, paired, runs, time, Row, Workload};
use crate::Result;

/// `SOURCE_DATE_EPOCH` of the first release; the second is a day later.
const FIRST_RELEASE: u64 = 1_700_000_000;

/// A registry on a free loopback port, its storage under `dir`; stopped and removed when
/// dropped.
pub struct LocalRegistry {
    child: Child,
    dir: PathBuf,
    /// `127.0.0.1:PORT`
    pub host: String,
}

impl LocalRegistry {
    pub fn start(dir: &Path) -> Result<LocalRegistry> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let host = format!("127.0.0.1:{port}");
        let config = dir.join("registry.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog: {{ disabled: true }}\n\
                 storage:\n  filesystem: {{ rootdirectory: {} }}\nhttp:\n  addr: \"{host}\"\n",
                dir.join("data").display()
            ),
        )?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let registry = LocalRegistry {
            child,
            dir: dir.to_owned(),
            host,
        };
        for _ in 0..100 {
            if TcpStream::connect(&registry.host).is_ok() {
                return Ok(registry);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("docker-registry did not listen on {}", registry.host).into())
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP proxy in front of a registry that counts the bytes clients send through it (requests,
/// headers and bodies). Runs until the bench ends.
struct CountingProxy {
    host: String,
    sent: Arc<AtomicU64>,
}

impl CountingProxy {
    fn start(upstream: &str) -> Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let host = listener.local_addr()?.to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let (counted, upstream) = (sent.clone(), upstream.to_owned());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let (Ok(mut client_in), Ok(mut server_out)) =
                    (client.try_clone(), server.try_clone())
                else {
                    continue;
                };
                let (mut server_in, mut client_out) = (server, client);
                let counted = counted.clone();
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 64 << 10];
                    while let Ok(n @ 1..) = client_in.read(&mut buffer) {
                        counted.fetch_add(n as u64, Ordering::Relaxed);
                        if server_out.write_all(&buffer[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_in, &mut client_out);
                    let _ = client_out.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        Ok(CountingProxy { host, sent })
    }

    fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// `skopeo copy` of `workload`'s layout to `repository` of `registry`.
fn skopeo_copy(workload: &Workload, registry: &LocalRegistry, repository: &str) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args(["copy", "--quiet", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:0.1.0", workload.output().display()))
        .arg(format!("docker://{}/{repository}:0.1.0", registry.host));
    command
}

/// A push of the image (three layers, no SBOM or provenance, as skopeo copies it) to a fresh
/// registry each run, then the same push again; each against skopeo. A registry of its own for
/// each run, because skopeo remembers where it pushed a blob and mounts it from there into
/// another repository of the same registry rather than send it.
pub fn push_vs_skopeo(workload: &Workload, work: &Path) -> Result<[Row; 2]> {
    eprintln!("bench: pushes to a loopback registry");
    time(&mut workload.cargo_oci(&["--sbom", "none", "--provenance", "none"]))?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut registry = None;
    for run in 1..=runs() {
        // The one before is stopped, and its storage removed, first.
        drop(registry.take());
        let registry = registry.insert(LocalRegistry::start(&work.join("registry-push"))?);
        let mut push = workload.cargo_oci_push(&format!("{}/ours", registry.host));
        let mut skopeo = skopeo_copy(workload, registry, "theirs");
        paired(run, &mut push, &mut skopeo, &mut ours, &mut theirs)?;
    }
    let registry = registry.expect("at least one run");
    let (mut ours_again, mut theirs_again) = (Vec::new(), Vec::new());
    for run in 1..=runs() {
        let mut push = workload.cargo_oci_push(&format!("{}/ours", registry.host));
        let mut skopeo = skopeo_copy(workload, &registry, "theirs");
        paired(
            run,
            &mut push,
            &mut skopeo,
            &mut ours_again,
            &mut theirs_again,
        )?;
    }
    let layers = super::layer_sizes(&workload.output(), "0.1.0")?;
    let row = |name: String, ours: Vec<Duration>, theirs: Vec<Duration>| Row {
        workload: name,
        ours: median(ours),
        peer: Some(("skopeo copy oci: docker://".into(), median(theirs))),
        note: None,
        sizes: None,
    };
    Ok([
        row(
            format!(
                "push of {} layers ({}) to a loopback registry",
                layers.len(),
                mb(layers.iter().sum())
            ),
            ours,
            theirs,
        ),
        row(
            "the same push again, unchanged".into(),
            ours_again,
            theirs_again,
        ),
    ])
}

/// What the second release of `workload` (files and binaries layers, SBOM and provenance on)
/// sends to the registry when only the binary changed and `SOURCE_DATE_EPOCH` moved a day:
/// with every file at the fixed time, and with `layer-mtime = "source-date-epoch"`.
pub fn second_release_bytes(workload: &Workload, registry: &LocalRegistry) -> Result<String> {
    eprintln!("bench: bytes sent by a second release");
    let proxy = CountingProxy::start(&registry.host)?;
    let mut sent = Vec::new();
    for (name, mtime) in [("fixed", None), ("dated", Some("source-date-epoch"))] {
        workload.set_layer_mtime(mtime)?;
        let repository = format!("{}/release-{name}", proxy.host);
        let release = |run: usize, epoch: u64| -> Result<u64> {
            workload.set_binary(1000 + run)?;
            workload.forget_outputs();
            let before = proxy.sent();
            let mut build = workload.cargo_oci(&["--push", &repository]);
            time(build.env("SOURCE_DATE_EPOCH", epoch.to_string()))?;
            Ok(proxy.sent() - before)
        };
        release(1, FIRST_RELEASE)?;
        sent.push(release(2, FIRST_RELEASE + 86_400)?);
    }
    workload.set_layer_mtime(None)?;
    let layers = super::layer_sizes(&workload.output(), "0.1.0")?;
    let last = |n: usize| layers.iter().rev().nth(n).copied().unwrap_or(0);
    Ok(format!(
        "Second release, only the code changed (files layer {}, binaries layer {}): {} sent \
         with files at the fixed time, {} with `layer-mtime = \"source-date-epoch\"` ({:.2}×).",
        mb(last(1)),
        mb(last(0)),
        mb(sent[0]),
        mb(sent[1]),
        sent[1] as f64 / sent[0] as f64
    ))
}
