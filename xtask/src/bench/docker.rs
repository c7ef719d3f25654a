//! The `--load=docker` row: `cargo oci build --load=docker` against `docker build` of the same
//! image, both into a private `dockerd` the bench starts (its storage driver the daemon's
//! default, overlay2 where the filesystem allows), stopped when the row ends.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{median, paired, run_output, runs, time, Row, Workload};
use crate::Result;

/// A `dockerd` of the bench's own, under `dir`.
struct Dockerd {
    dir: PathBuf,
    child: Child,
}

impl Dockerd {
    fn start(dir: &Path) -> Result<Dockerd> {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir)?;
        let log = fs::File::create(dir.join("log"))?;
        let child = Command::new("dockerd")
            .args(["--iptables=false", "--bridge=none"])
            .arg("--data-root")
            .arg(dir.join("data"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("pid"))
            .arg("--host")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let daemon = Dockerd {
            dir: dir.to_owned(),
            child,
        };
        for _ in 0..120 {
            if daemon.docker(&["version"]).output()?.status.success() {
                return Ok(daemon);
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        Err(format!(
            "dockerd did not answer within 60 s; see {}",
            dir.join("log").display()
        )
        .into())
    }

    fn host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }

    /// Debian's client, which speaks the daemon's API version.
    fn docker(&self, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command.env("DOCKER_HOST", self.host()).args(args);
        command
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(self.dir.join("data"));
    }
}

/// `--load=docker` of a new binary against `docker build --no-cache` (moby's builder) of a
/// one-line Dockerfile on the same parent, both into the daemon, which holds the parent
/// already (copied in by skopeo, and loaded by a first `--load`, untimed).
pub fn load_vs_docker_build(workload: &Workload, work: &Path, name: &str) -> Result<Row> {
    eprintln!("bench: {name}");
    let daemon = Dockerd::start(&work.join("dockerd"))?;
    let parent = "localhost/bench-parent:latest";
    run_output(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--dest-daemon-host",
        &daemon.host(),
        &format!("oci:{}:latest", workload.base.display()),
        &format!("docker-daemon:{parent}"),
    ]))?;
    let context = workload.dir.join("docker-context");
    fs::create_dir_all(&context)?;
    fs::write(
        context.join("Dockerfile"),
        format!("FROM {parent}\nCOPY app /usr/local/bin/app\n"),
    )?;
    let load = |tag: &str| {
        let mut command = workload.cargo_oci(&["--load=docker", "--tag", tag]);
        command.env("DOCKER_HOST", daemon.host());
        command
    };
    time(&mut load("localhost/bench-load:0"))?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 1..=runs() {
        let binary = workload.set_binary(run)?;
        fs::copy(&binary, context.join("app"))?;
        let mut peer = daemon.docker(&["build", "--quiet", "--no-cache", "-t"]);
        peer.arg(format!("localhost/bench-build:{run}"))
            .arg(&context)
            .env("DOCKER_BUILDKIT", "0");
        // The same tag each run, as a developer's loop loads: docker holds the last one.
        let mut ours_now = load("localhost/bench-load:0");
        paired(run, &mut ours_now, &mut peer, &mut ours, &mut theirs)?;
        let _ = daemon
            .docker(&["rmi", &format!("localhost/bench-build:{run}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let ours = median(ours);
    let theirs = median(theirs);
    Ok(Row {
        workload: name.to_owned(),
        ours,
        peer: Some(("docker build --no-cache".into(), theirs)),
        note: Some(format!(
            "moby {} with {}",
            run_output(&mut daemon.docker(&["version", "--format", "{{.Server.Version}}"]))?.trim(),
            run_output(&mut daemon.docker(&["info", "--format", "{{.Driver}}"]))?.trim(),
        )),
        sizes: None,
    })
}
