//! `cargo xtask bench [--runs N] [WORDS]`: `cargo oci build --no-build` against the tools it
//! replaces, on the same inputs, in one paired run: `umoci insert` for an OCI layout, `podman
//! build` + `podman save` for a Docker archive, `podman build` for `--load=podman`, `docker
//! build` for `--load=docker` (in `docker.rs`), `skopeo copy` for a push (those rows are in
//! `registry.rs`). WORDS keep only the rows whose names
//! hold one of them (`bench push`: the registry rows alone). It builds its own workloads
//! (parents made by umoci from busybox, the host's shared libraries and the Rust toolchain's
//! files), times each pair several times, alternating who goes first, and prints medians and
//! ratios: these machines are noisy, and a ratio measured in one run is what can be compared
//! across runs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::{on_path, project_root, Result};

mod docker;
mod registry;

/// Timed runs of each side of each pair, unless `--runs` says otherwise.
const RUNS: usize = 7;

/// What the command line chose: how many runs, and which rows.
struct Choice {
    runs: usize,
    words: Vec<String>,
}

static CHOICE: std::sync::OnceLock<Choice> = std::sync::OnceLock::new();

fn runs() -> usize {
    CHOICE.get().map_or(RUNS, |c| c.runs)
}

/// Whether the row `name` is wanted: no words given, or one of them in its name.
fn wanted(name: &str) -> bool {
    CHOICE
        .get()
        .is_none_or(|c| c.words.is_empty() || c.words.iter().any(|w| name.contains(w.as_str())))
}

fn parse_choice(args: &[String]) -> Result<Choice> {
    let mut choice = Choice {
        runs: RUNS,
        words: Vec::new(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                choice.runs = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("`--runs` takes a number of runs, at least 1")?;
            }
            word => choice.words.push(word.to_owned()),
        }
    }
    Ok(choice)
}

/// The rows `args` choose (`--runs N`, words), every row without words.
pub fn run(sh: &xshell::Shell, args: &[String]) -> Result {
    let _ = CHOICE.set(parse_choice(args)?);
    for tool in ["umoci", "busybox"] {
        if !on_path(tool) {
            return Err(format!(
                "`{tool}` is needed to build the workloads; `cargo xtask tools` installs it"
            )
            .into());
        }
    }
    let podman = on_path("podman") && on_path("runc");
    if !podman {
        eprintln!("note: podman or runc is missing, so the Docker archive has no peer to compare");
    }
    xshell::cmd!(sh, "cargo build --release --locked --bin cargo-oci").run()?;
    xshell::cmd!(
        sh,
        "cargo build --release --locked -p oci-pack --example pack_floor"
    )
    .run()?;
    let work = project_root().join("target/bench");
    fs::create_dir_all(&work)?;
    let inputs = Inputs::prepare(&work)?;
    let conf = work.join("containers.conf");
    fs::write(
        &conf,
        "[containers]\ndefault_ulimits = [\"nofile=20000:20000\", \"nproc=4096:4096\"]\n\
         [engine]\nruntime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n",
    )?;

    let mut rows = build_rows(&work, &inputs, &conf, podman)?;
    let mut notes = Vec::new();
    let registry = on_path("docker-registry") && on_path("skopeo");
    if wanted("push") && registry {
        let release = Workload::new(&work, "release", &inputs.service, &inputs.libs_parent)?;
        release.add_files()?;
        rows.extend(registry::push_vs_skopeo(&release, &work)?);
        let registry = registry::LocalRegistry::start(&work.join("registry-release"))?;
        notes.push(registry::second_release_bytes(&release, &registry)?);
    } else if wanted("push") {
        eprintln!("note: docker-registry or skopeo is missing, so pushes are not measured");
    }
    print_table(&inputs, &rows, &notes);
    Ok(())
}

/// The rows of `cargo oci build` against umoci and podman.
fn build_rows(work: &Path, inputs: &Inputs, conf: &Path, podman: bool) -> Result<Vec<Row>> {
    let mut rows = Vec::new();
    let service = Workload::new(work, "service", &inputs.service, &inputs.libs_parent)?;
    if wanted(SERVICE_LAYOUT_ROW) {
        rows.push(first_pack_vs_umoci(&service, SERVICE_LAYOUT_ROW)?);
    }
    if podman && wanted("service onto libs, Docker archive") {
        rows.push(docker_archive_vs_podman(&service, conf)?);
    }
    let name = "service onto libs, --load=podman";
    if podman && on_path("skopeo") && wanted(name) {
        rows.push(load_vs_podman_build(&service, conf, name)?);
    }
    let name = "service onto libs, --load=docker";
    if on_path("dockerd") && on_path("skopeo") && wanted(name) {
        rows.push(docker::load_vs_docker_build(&service, work, name)?);
    }
    let name = "service onto libs, unchanged rebuild";
    if wanted(name) {
        rows.push(unchanged_rebuild(&service, name)?);
    }
    let small = Workload::new(work, "small-big", &inputs.small, &inputs.big_parent)?;
    let name = "small onto big parent, OCI layout";
    if wanted(name) {
        rows.push(first_pack_vs_umoci(&small, name)?);
    }
    let tiny = Workload::new(work, "small-scratch", &inputs.small, Path::new("scratch"))?;
    let name = "small onto scratch, unchanged rebuild";
    if wanted(name) {
        rows.push(unchanged_rebuild(&tiny, name)?);
    }
    for images in [1, 4, 16] {
        let name = format!("workspace of {images} services onto libs, OCI layouts");
        if wanted(&name) {
            rows.push(workspace_of(work, inputs, images, &name)?);
        }
    }
    let name = "service onto libs, no cache at all";
    if wanted(name) {
        rows.push(cold_first_pack(&service, name)?);
    }
    let name = "small onto big parent, no cache at all";
    if wanted(name) {
        rows.push(cold_first_pack(&small, name)?);
    }
    if wanted(FLOOR_ROW) {
        let first = rows.iter().find(|row| row.workload == SERVICE_LAYOUT_ROW);
        rows.push(packing_floor(&service, first)?);
    }
    Ok(rows)
}

/// The row of a new binary onto the libs parent, known to the cache, as an OCI layout.
const SERVICE_LAYOUT_ROW: &str = "service onto libs, OCI layout";
const FLOOR_ROW: &str = "service onto libs, packing floor";

/// This machine's floor for packing `workload`'s binary: in-process, from memory, gzip on
/// every core with the engine's own encoder and the two sha256 (`oci-pack`'s `pack_floor`
/// example), against `first`, the whole `cargo oci build` of the same binary (timed here when
/// that row was not run).
fn packing_floor(workload: &Workload, first: Option<&Row>) -> Result<Row> {
    let ours = match first {
        Some(row) => row.ours,
        None => first_pack_vs_umoci(workload, SERVICE_LAYOUT_ROW)?.ours,
    };
    eprintln!("bench: {FLOOR_ROW}");
    let floor = project_root().join("target/release/examples/pack_floor");
    let micros = run_output(
        Command::new(floor)
            .arg(&workload.binary)
            .arg(runs().to_string()),
    )?;
    let floor = Duration::from_micros(micros.trim().parse()?);
    Ok(Row {
        workload: FLOOR_ROW.to_owned(),
        ours,
        peer: Some(("gzip on every core + sha256, in memory".into(), floor)),
        note: Some(format!(
            "ours / floor: {:.2} (`cargo oci build`, whole process, against the floor)",
            ours.as_secs_f64() / floor.as_secs_f64()
        )),
        sizes: None,
    })
}

#[expect(clippy::print_stdout, reason = "the table is what the bench is for")]
fn print_table(inputs: &Inputs, rows: &[Row], notes: &[String]) {
    println!();
    println!("{}", inputs.describe());
    println!(
        "Medians of {} paired runs; ratio = peer / cargo oci (above 1: cargo oci is faster).",
        runs()
    );
    println!();
    println!("| workload | cargo oci | peer | peer time | ratio | new layer: ours / peer's |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!("{row}");
    }
    for note in notes {
        println!("\n{note}");
    }
}

/// The inputs every workload is made of, built once and kept under `target/bench`.
struct Inputs {
    /// A ~40 MB ELF of this machine.
    service: PathBuf,
    /// busybox-static, a small static binary.
    small: PathBuf,
    /// One layer: busybox and the host's shared libraries.
    libs_parent: PathBuf,
    /// Three layers: the libs parent's, the toolchain's shared libraries, its `bin/`.
    big_parent: PathBuf,
}

impl Inputs {
    fn prepare(work: &Path) -> Result<Inputs> {
        let service = ["/usr/bin/docker", "/usr/bin/containerd", "/usr/bin/podman"]
            .iter()
            .map(PathBuf::from)
            .find(|p| fs::metadata(p).is_ok_and(|m| (30 << 20..60 << 20).contains(&m.len())))
            .ok_or("no 30-60 MB ELF found (docker.io, containerd or podman provides one)")?;
        let small = which("busybox")?;
        let libs_parent = work.join("libs-parent");
        if !libs_parent.join("index.json").is_file() {
            make_libs_parent(work, &libs_parent, &service, &small)?;
        }
        let big_parent = work.join("big-parent");
        // Made only for the row that uses it: it takes a while.
        let needed = ["OCI layout", "no cache at all"]
            .iter()
            .any(|row| wanted(&format!("small onto big parent, {row}")));
        if needed && !big_parent.join("index.json").is_file() {
            make_big_parent(work, &libs_parent, &big_parent)?;
        }
        Ok(Inputs {
            service,
            small,
            libs_parent,
            big_parent,
        })
    }

    fn describe(&self) -> String {
        let size = |p: &Path| fs::metadata(p).map_or(0, |m| m.len());
        let layout = |dir: &Path| -> (usize, u64) {
            let layers = layer_sizes(dir, "latest").unwrap_or_default();
            (layers.len(), layers.iter().sum())
        };
        let (libs_layers, libs_bytes) = layout(&self.libs_parent);
        let (big_layers, big_bytes) = layout(&self.big_parent);
        format!(
            "Workloads: service = `{}` ({}), small = `{}` ({}); libs parent: {libs_layers} layer, \
             {} compressed; big parent: {big_layers} layers, {} compressed. Machine: {}.",
            self.service.display(),
            mb(size(&self.service)),
            self.small.display(),
            mb(size(&self.small)),
            mb(libs_bytes),
            mb(big_bytes),
            machine()
        )
    }
}

/// A crate whose one binary is `binary`, on `base`, packed with `--no-build`.
struct Workload {
    dir: PathBuf,
    binary: PathBuf,
    base: PathBuf,
}

impl Workload {
    fn new(work: &Path, name: &str, binary: &Path, base: &Path) -> Result<Workload> {
        let dir = work.join(format!("crate-{name}"));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("src"))?;
        fs::write(dir.join("src/main.rs"), "fn main() {}\n")?;
        let base_value = if base == Path::new("scratch") {
            "scratch".to_owned()
        } else {
            format!("oci:{}:latest", base.display())
        };
        fs::write(
            dir.join("Cargo.toml"),
            format!(
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [workspace]\n\n[package.metadata.oci]\nbase = \"{base_value}\"\n\
                 elf-check = \"warn\"\n"
            ),
        )?;
        let workload = Workload {
            dir,
            binary: binary.to_owned(),
            base: base.to_owned(),
        };
        workload.set_binary(0)?;
        Ok(workload)
    }

    /// The binary at `target/release/app`, made different for each `run` by trailing bytes,
    /// as each commit makes a new one.
    fn set_binary(&self, run: usize) -> Result<PathBuf> {
        let path = self.dir.join("target/release/app");
        fs::create_dir_all(path.parent().unwrap())?;
        let mut bytes = fs::read(&self.binary)?;
        bytes.extend_from_slice(format!("run {run}").as_bytes());
        fs::write(&path, bytes)?;
        let mode = std::os::unix::fs::PermissionsExt::from_mode(0o755);
        fs::set_permissions(&path, mode)?;
        Ok(path)
    }

    fn output(&self) -> PathBuf {
        self.dir.join("target/oci/app")
    }

    /// Forgets what was packed, keeping what was learnt of the parent.
    fn forget_outputs(&self) {
        let oci = self.dir.join("target/oci");
        for path in [
            oci.join("app"),
            oci.join("app.docker.tar"),
            oci.join(".cache/layers"),
            oci.join(".cache/outputs"),
        ] {
            let _ = fs::remove_dir_all(&path);
            let _ = fs::remove_file(&path);
        }
    }

    /// `cargo oci build --no-build ARGS`, through cargo as a user runs it.
    fn cargo_oci(&self, args: &[&str]) -> Command {
        let mut command = self.cargo();
        command
            .args(["oci", "build", "--no-build", "--quiet"])
            .args(args);
        command
    }

    /// `cargo oci push` of the layout to `repository`.
    fn cargo_oci_push(&self, repository: &str) -> Command {
        let mut command = self.cargo();
        command
            .args(["oci", "push", "--layout"])
            .arg(self.output())
            .arg(repository);
        command
    }

    /// Static files, in a `files` layer of their own: 2 MiB of noise and 2 MiB of text.
    fn add_files(&self) -> Result {
        let dir = self.dir.join("static");
        fs::create_dir_all(&dir)?;
        let mut noise = Vec::with_capacity(2 << 20);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while noise.len() < 2 << 20 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            noise.extend_from_slice(&x.to_le_bytes());
        }
        fs::write(dir.join("noise.bin"), noise)?;
        let text: String = (0..40_000)
            .map(|i| format!("line {i} of the manual\n"))
            .collect();
        fs::write(dir.join("manual.txt"), text)?;
        let manifest = self.dir.join("Cargo.toml");
        let toml = fs::read_to_string(&manifest)?;
        fs::write(
            &manifest,
            format!("{toml}files = [{{ src = \"static\", dest = \"/srv/static\" }}]\n"),
        )?;
        Ok(())
    }

    /// Sets `layer-mtime` (or leaves it out: `None`).
    fn set_layer_mtime(&self, value: Option<&str>) -> Result {
        let manifest = self.dir.join("Cargo.toml");
        let toml = fs::read_to_string(&manifest)?;
        let mut lines: Vec<String> = toml
            .lines()
            .filter(|line| !line.starts_with("layer-mtime"))
            .map(str::to_owned)
            .collect();
        lines.extend(value.map(|value| format!("layer-mtime = \"{value}\"")));
        fs::write(&manifest, lines.join("\n") + "\n")?;
        Ok(())
    }

    /// cargo, in the crate, with this project's `cargo-oci` first on PATH.
    fn cargo(&self) -> Command {
        let mut command = Command::new(env!("CARGO"));
        let bin = project_root().join("target/release");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(&path));
        command
            .env("PATH", std::env::join_paths(paths).unwrap())
            .current_dir(&self.dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("SOURCE_DATE_EPOCH");
        command
    }

    /// The size of the last layer of the layout `dir`: the one just added.
    fn new_layer(dir: &Path, tag: &str) -> u64 {
        layer_sizes(dir, tag)
            .ok()
            .and_then(|l| l.last().copied())
            .unwrap_or(0)
    }
}

struct Row {
    workload: String,
    ours: Duration,
    peer: Option<(String, Duration)>,
    /// A second comparison, in words.
    note: Option<String>,
    sizes: Option<(u64, u64)>,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (peer, peer_time, ratio) = match &self.peer {
            Some((name, time)) => (
                name.as_str(),
                ms(*time),
                format!("{:.2}×", time.as_secs_f64() / self.ours.as_secs_f64()),
            ),
            None => ("—", "—".to_owned(), "—".to_owned()),
        };
        let sizes = match self.sizes {
            Some((ours, 0)) => mb(ours),
            Some((ours, theirs)) => format!("{} / {}", mb(ours), mb(theirs)),
            None => "—".to_owned(),
        };
        write!(
            f,
            "| {} | {} | {peer} | {peer_time} | {ratio} | {sizes} |",
            self.workload,
            ms(self.ours)
        )?;
        match &self.note {
            Some(note) => write!(f, "\n|  |  | {note} |  |  |  |"),
            None => Ok(()),
        }
    }
}

/// A first pack of a new binary (the parent known from earlier builds) against umoci, which
/// inserts into a layout in place: timed with the `cp -a` of the parent that a new output needs,
/// and alone, into a copy made untimed. Each run finds the previous run's output in place, as
/// a developer's next build does: it replaces it. (Removing it by hand first would move the
/// change time of every cache blob it linked, and the next build would hash them again.)
fn first_pack_vs_umoci(workload: &Workload, name: &str) -> Result<Row> {
    eprintln!("bench: {name}");
    // A first build teaches the cache the parent.
    time(&mut workload.cargo_oci(&[]))?;
    let scratch = workload.dir.join("umoci-out");
    let (mut ours, mut theirs, mut alone) = (Vec::new(), Vec::new(), Vec::new());
    let mut sizes = (0, 0);
    for run in 1..=runs() {
        let binary = workload.set_binary(run)?;
        let _ = fs::remove_dir_all(&scratch);
        let insert = format!(
            "umoci insert --image {}:latest {} /usr/local/bin/app",
            scratch.display(),
            binary.display()
        );
        let mut copy_and_insert = Command::new("sh");
        copy_and_insert.arg("-c").arg(format!(
            "cp -a {} {} && {insert}",
            workload.base.display(),
            scratch.display()
        ));
        let mut cargo_oci = workload.cargo_oci(&[]);
        paired(
            run,
            &mut cargo_oci,
            &mut copy_and_insert,
            &mut ours,
            &mut theirs,
        )?;
        sizes = (
            Workload::new_layer(&workload.output(), "0.1.0"),
            Workload::new_layer(&scratch, "latest"),
        );
        let _ = fs::remove_dir_all(&scratch);
        copy_layout(&workload.base, &scratch)?;
        alone.push(time(Command::new("sh").arg("-c").arg(&insert))?);
    }
    let ours = median(ours);
    let alone = median(alone);
    Ok(Row {
        workload: name.to_owned(),
        ours,
        peer: Some(("cp -a + umoci insert".into(), median(theirs))),
        note: Some(format!(
            "umoci insert alone, into a copy made untimed: {} ({:.2}×)",
            ms(alone),
            alone.as_secs_f64() / ours.as_secs_f64()
        )),
        sizes: Some(sizes),
    })
}

/// A Docker archive of a new binary against `podman build --no-cache` of a one-line
/// Containerfile on the same parent (pulled into podman before, not timed), then `podman save`.
fn docker_archive_vs_podman(workload: &Workload, conf: &Path) -> Result<Row> {
    let name = "service onto libs, Docker archive";
    eprintln!("bench: {name}");
    let podman = |args: &[&str]| {
        let mut command = Command::new("podman");
        command.env("CONTAINERS_CONF", conf).args(args);
        command
    };
    let parent = format!("oci:{}:latest", workload.base.display());
    let pulled = run_output(&mut podman(&["pull", "--quiet", &parent]))?;
    run_output(&mut podman(&[
        "tag",
        pulled.trim(),
        "localhost/bench-parent:latest",
    ]))?;
    let context = workload.dir.join("podman-context");
    fs::create_dir_all(&context)?;
    fs::write(
        context.join("Containerfile"),
        "FROM localhost/bench-parent:latest\nCOPY app /usr/local/bin/app\n",
    )?;
    time(&mut workload.cargo_oci(&["--format", "docker"]))?;
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 1..=runs() {
        let binary = workload.set_binary(run)?;
        fs::copy(&binary, context.join("app"))?;
        let archive = context.join("podman.tar");
        let _ = fs::remove_file(&archive);
        let script = format!(
            "podman build --quiet --no-cache -t localhost/bench-app:{run} {ctx} >/dev/null && \
             podman save --quiet --format docker-archive -o {archive} localhost/bench-app:{run}",
            ctx = context.display(),
            archive = archive.display()
        );
        let mut peer = Command::new("sh");
        peer.env("CONTAINERS_CONF", conf).args(["-c", &script]);
        let mut cargo_oci = workload.cargo_oci(&["--format", "docker"]);
        paired(run, &mut cargo_oci, &mut peer, &mut ours, &mut theirs)?;
        let _ = podman(&["rmi", "--force", &format!("localhost/bench-app:{run}")]).output();
    }
    let _ = podman(&["rmi", "--force", "localhost/bench-parent:latest"]).output();
    Ok(Row {
        workload: name.to_owned(),
        ours: median(ours),
        peer: Some(("podman build + save".into(), median(theirs))),
        note: None,
        sizes: None,
    })
}

/// `--load=podman` of a new binary against `podman build --no-cache` of a one-line
/// Containerfile on the same parent, both into podman's store, which holds the parent already
/// (pulled, and loaded by a first `--load`, untimed). A third command, timed after each pair,
/// loads with uncompressed new layers (`--compression none`).
fn load_vs_podman_build(workload: &Workload, conf: &Path, name: &str) -> Result<Row> {
    eprintln!("bench: {name}");
    let podman = |args: &[&str]| {
        let mut command = Command::new("podman");
        command.env("CONTAINERS_CONF", conf).args(args);
        command
    };
    // Names of this process's own: podman's store is shared.
    let own = |name: &str| format!("localhost/bench-{}-{name}", std::process::id());
    let parent = format!("oci:{}:latest", workload.base.display());
    let pulled = run_output(&mut podman(&["pull", "--quiet", &parent]))?;
    let pulled = pulled.trim();
    run_output(&mut podman(&["tag", pulled, &own("parent:latest")]))?;
    let context = workload.dir.join("podman-context");
    fs::create_dir_all(&context)?;
    fs::write(
        context.join("Containerfile"),
        format!(
            "FROM {}\nCOPY app /usr/local/bin/app\n",
            own("parent:latest")
        ),
    )?;
    let load = |tag: &str, more: &[&str]| {
        let mut args = vec!["--load=podman", "--tag", tag];
        args.extend_from_slice(more);
        let mut command = workload.cargo_oci(&args);
        command.env("CONTAINERS_CONF", conf);
        command
    };
    time(&mut load(&own("load:0"), &[]))?;
    let (mut ours, mut theirs, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs() {
        let binary = workload.set_binary(run)?;
        fs::copy(&binary, context.join("app"))?;
        let mut peer = podman(&["build", "--quiet", "--no-cache", "-t"]);
        peer.arg(own(&format!("build:{run}"))).arg(&context);
        let tag = own(&format!("load:{run}"));
        paired(run, &mut load(&tag, &[]), &mut peer, &mut ours, &mut theirs)?;
        // The same binary again would find its layer in the store: another one, uncompressed.
        workload.set_binary(1000 + run)?;
        let tag = own(&format!("load-plain:{run}"));
        plain.push(time(&mut load(&tag, &["--compression", "none"]))?);
        for image in ["build", "load", "load-plain"] {
            let _ = podman(&["rmi", "--force", &own(&format!("{image}:{run}"))]).output();
        }
    }
    // The parent by its ID: with it goes the name `pull` gave it, after its directory.
    let _ = podman(&["rmi", "--force", &own("load:0"), pulled]).output();
    let ours = median(ours);
    let plain = median(plain);
    Ok(Row {
        workload: name.to_owned(),
        ours,
        peer: Some(("podman build --no-cache".into(), median(theirs))),
        note: Some(format!(
            "cargo oci --compression none, timed after each pair: {} ({:.2}× ours)",
            ms(plain),
            plain.as_secs_f64() / ours.as_secs_f64()
        )),
        sizes: None,
    })
}

/// The same build again, nothing changed: no peer does this, so it stands alone.
fn unchanged_rebuild(workload: &Workload, name: &str) -> Result<Row> {
    eprintln!("bench: {name}");
    workload.set_binary(0)?;
    // The binary was built a while ago, as an unchanged one is: settled, and packed once.
    std::thread::sleep(Duration::from_millis(100));
    time(&mut workload.cargo_oci(&[]))?;
    let mut ours = Vec::new();
    for _ in 0..runs() {
        ours.push(time(&mut workload.cargo_oci(&[]))?);
    }
    Ok(Row {
        workload: name.to_owned(),
        ours: median(ours),
        peer: None,
        note: None,
        sizes: None,
    })
}

/// A workspace of `images` packages, each with its own service binary (new bytes every run)
/// on the libs parent, the parent known from an untimed first build: how the time grows with
/// the number of images.
fn workspace_of(work: &Path, inputs: &Inputs, images: usize, name: &str) -> Result<Row> {
    eprintln!("bench: {name}");
    let dir = work.join(format!("workspace-{images}"));
    let _ = fs::remove_dir_all(&dir);
    let members: Vec<String> = (0..images).map(|i| format!("app{i}")).collect();
    let list = members
        .iter()
        .map(|m| format!("\"{m}\""))
        .collect::<Vec<_>>();
    fs::create_dir_all(&dir)?;
    fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[workspace]\nmembers = [{}]\nresolver = \"2\"\n",
            list.join(", ")
        ),
    )?;
    for member in &members {
        fs::create_dir_all(dir.join(member).join("src"))?;
        fs::write(dir.join(member).join("src/main.rs"), "fn main() {}\n")?;
        fs::write(
            dir.join(member).join("Cargo.toml"),
            format!(
                "[package]\nname = \"{member}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
                 [package.metadata.oci]\nbase = \"oci:{}:latest\"\nelf-check = \"warn\"\n",
                inputs.libs_parent.display()
            ),
        )?;
    }
    let workload = Workload {
        dir: dir.clone(),
        binary: inputs.service.clone(),
        base: inputs.libs_parent.clone(),
    };
    let set_binaries = |run: usize| -> Result {
        let bytes = fs::read(&workload.binary)?;
        for member in &members {
            let path = dir.join("target/release").join(member);
            fs::create_dir_all(path.parent().unwrap())?;
            let mut bytes = bytes.clone();
            bytes.extend_from_slice(format!("{member} run {run}").as_bytes());
            fs::write(&path, bytes)?;
            fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        }
        Ok(())
    };
    let forget = || {
        let oci = dir.join("target/oci");
        let made = members.iter().map(|m| oci.join(m));
        for path in made.chain([oci.join(".cache/layers"), oci.join(".cache/outputs")]) {
            let _ = fs::remove_dir_all(path);
        }
    };
    set_binaries(0)?;
    time(&mut workload.cargo_oci(&[]))?;
    let mut ours = Vec::new();
    for run in 1..=runs() {
        set_binaries(run)?;
        forget();
        ours.push(time(&mut workload.cargo_oci(&[]))?);
    }
    let ours = median(ours);
    Ok(Row {
        workload: name.to_owned(),
        ours,
        peer: None,
        note: Some(format!("{} per image", ms(ours.div_f64(images as f64)))),
        sizes: None,
    })
}

/// A first pack with no cache at all (the parent's layers are read too) against umoci, timed
/// with the `cp -a` of the parent a new output needs, as in [`first_pack_vs_umoci`].
fn cold_first_pack(workload: &Workload, name: &str) -> Result<Row> {
    eprintln!("bench: {name}");
    let scratch = workload.dir.join("umoci-out");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for run in 1..=runs() {
        let binary = workload.set_binary(100 + run)?;
        let _ = fs::remove_dir_all(workload.dir.join("target/oci"));
        let _ = fs::remove_dir_all(&scratch);
        let mut copy_and_insert = Command::new("sh");
        copy_and_insert.arg("-c").arg(format!(
            "cp -a {} {} && umoci insert --image {}:latest {} /usr/local/bin/app",
            workload.base.display(),
            scratch.display(),
            scratch.display(),
            binary.display()
        ));
        let mut cargo_oci = workload.cargo_oci(&[]);
        paired(
            run,
            &mut cargo_oci,
            &mut copy_and_insert,
            &mut ours,
            &mut theirs,
        )?;
    }
    Ok(Row {
        workload: name.to_owned(),
        ours: median(ours),
        peer: Some(("cp -a + umoci insert".into(), median(theirs))),
        note: None,
        sizes: None,
    })
}

/// Runs both, the first of them alternating from run to run.
fn paired(
    run: usize,
    ours: &mut Command,
    peer: &mut Command,
    our_times: &mut Vec<Duration>,
    peer_times: &mut Vec<Duration>,
) -> Result {
    if run.is_multiple_of(2) {
        our_times.push(time(ours)?);
        peer_times.push(time(peer)?);
    } else {
        peer_times.push(time(peer)?);
        our_times.push(time(ours)?);
    }
    Ok(())
}

fn time(command: &mut Command) -> Result<Duration> {
    let started = Instant::now();
    let output = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    let elapsed = started.elapsed();
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(elapsed)
}

fn run_output(command: &mut Command) -> Result<String> {
    let output = command.output()?;
    if !output.status.success() {
        return Err(format!(
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// A copy of a layout the peer can write into, every file copied. Not hard-linked: a link
/// moves the change time of the parent's blobs, which `cargo oci` would then hash again on its
/// next run, as it must for a file that may have changed.
fn copy_layout(from: &Path, to: &Path) -> Result {
    fs::create_dir_all(to.join("blobs/sha256"))?;
    for entry in fs::read_dir(from.join("blobs/sha256"))? {
        let entry = entry?;
        fs::copy(
            entry.path(),
            to.join("blobs/sha256").join(entry.file_name()),
        )?;
    }
    for name in ["index.json", "oci-layout"] {
        fs::copy(from.join(name), to.join(name))?;
    }
    Ok(())
}

/// busybox and its applet links, then the binary's libraries and the host's other shared
/// libraries up to about 110 MB, in one layer made by umoci.
fn make_libs_parent(work: &Path, layout: &Path, service: &Path, busybox: &Path) -> Result {
    eprintln!("bench: building the libs parent with umoci");
    let bundle = work.join("bundle");
    let _ = fs::remove_dir_all(&bundle);
    umoci(work, &["init", "--layout", &name_of(layout)])?;
    let image = format!("{}:latest", name_of(layout));
    umoci(work, &["new", "--image", &image])?;
    umoci(work, &["unpack", "--rootless", "--image", &image, "bundle"])?;
    let rootfs = bundle.join("rootfs");
    fs::create_dir_all(rootfs.join("bin"))?;
    fs::copy(busybox, rootfs.join("bin/busybox"))?;
    for applet in ["sh", "ls", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
    }
    let multiarch = format!("{}-linux-gnu", std::env::consts::ARCH);
    let libdir = Path::new("/usr/lib").join(&multiarch);
    let target = rootfs.join("usr/lib").join(&multiarch);
    fs::create_dir_all(&target)?;
    let mut libraries: Vec<PathBuf> = fs::read_dir(&libdir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".so") && p.is_file() && !p.is_symlink())
        .collect();
    libraries.sort();
    // What the service binary links comes first, so its ELF check passes.
    let needed = run_output(Command::new("ldd").arg(service)).unwrap_or_default();
    libraries.sort_by_key(|p| !needed.contains(&*p.file_name().unwrap().to_string_lossy()));
    let mut total = 0;
    for library in libraries {
        let size = fs::metadata(&library)?.len();
        if total + size > 110 << 20 {
            continue;
        }
        fs::copy(&library, target.join(library.file_name().unwrap()))?;
        total += size;
    }
    fs::create_dir_all(rootfs.join("lib64"))?;
    let loader = format!("ld-linux-{}.so.2", std::env::consts::ARCH.replace('_', "-"));
    let _ = std::os::unix::fs::symlink(
        Path::new("/usr/lib").join(&multiarch).join(&loader),
        rootfs.join("lib64").join(&loader),
    );
    std::os::unix::fs::symlink("usr/lib", rootfs.join("lib"))?;
    umoci(work, &["repack", "--image", &image, "bundle"])?;
    fs::remove_dir_all(&bundle)?;
    Ok(())
}

/// The libs parent, then the toolchain's shared libraries, then its `bin/`: three layers.
fn make_big_parent(work: &Path, libs: &Path, layout: &Path) -> Result {
    eprintln!("bench: building the big parent with umoci");
    let _ = fs::remove_dir_all(layout);
    crate::copy_dir(libs, layout)?;
    let image = format!("{}:latest", name_of(layout));
    let sysroot = run_output(Command::new("rustc").args(["--print", "sysroot"]))?;
    let sysroot = PathBuf::from(sysroot.trim());
    for (dir, filter) in [("lib", ".so"), ("bin", "")] {
        let bundle = work.join("bundle");
        let _ = fs::remove_dir_all(&bundle);
        umoci(work, &["unpack", "--rootless", "--image", &image, "bundle"])?;
        let target = bundle.join("rootfs/opt/toolchain").join(dir);
        fs::create_dir_all(&target)?;
        for entry in fs::read_dir(sysroot.join(dir))? {
            let path = entry?.path();
            if path.is_file() && path.to_string_lossy().contains(filter) {
                fs::copy(&path, target.join(path.file_name().unwrap()))?;
            }
        }
        umoci(work, &["repack", "--image", &image, "bundle"])?;
        fs::remove_dir_all(&bundle)?;
    }
    Ok(())
}

fn umoci(dir: &Path, args: &[&str]) -> Result {
    run_output(Command::new("umoci").args(args).current_dir(dir)).map(drop)
}

fn name_of(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The compressed size of each layer of `tag` in the layout `dir`.
fn layer_sizes(dir: &Path, tag: &str) -> Result<Vec<u64>> {
    let read = |digest: &str| -> Result<serde_json::Value> {
        let path = dir
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        Ok(serde_json::from_slice(&fs::read(path)?)?)
    };
    let index: serde_json::Value = serde_json::from_slice(&fs::read(dir.join("index.json"))?)?;
    let entry = index["manifests"]
        .as_array()
        .and_then(|m| {
            m.iter()
                .find(|e| e["annotations"]["org.opencontainers.image.ref.name"] == tag)
        })
        .ok_or("no such tag")?;
    let manifest = read(entry["digest"].as_str().ok_or("no digest")?)?;
    Ok(manifest["layers"]
        .as_array()
        .ok_or("no layers")?
        .iter()
        .filter_map(|l| l["size"].as_u64())
        .collect())
}

fn which(program: &str) -> Result<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| format!("`{program}` is not on PATH").into())
}

/// The CPU and core count, to name the machine a table was measured on.
fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{model}, {cores} cores")
}

fn ms(time: Duration) -> String {
    format!("{:.0} ms", time.as_secs_f64() * 1000.0)
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}
