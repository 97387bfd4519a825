//! Shared test harness: run the binary ([`Test`], after just's builder), make throwaway build
//! contexts, clean up only our own.

#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub const BIN: &str = env!("CARGO_BIN_EXE_imgguard");

/// One run of the binary under test, built step by step and run once:
/// `Test::new().args(&["check"]).current_dir(dir).run().status(0).stderr("…")`.
///
/// The environment is the test process's, less what would make a run depend on the machine:
/// a docker context, GitHub's step variables, tracing and colour settings.
pub struct Test {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    timeout: Option<std::time::Duration>,
}

impl Test {
    /// `imgguard` with a cleaned environment.
    pub fn new() -> Test {
        Test::program(BIN)
    }

    /// Any program (git, a hook) with the same cleaned environment.
    pub fn program(program: impl AsRef<OsStr>) -> Test {
        let mut cmd = Command::new(program);
        for v in [
            "DOCKER_CONTEXT",
            "GITHUB_ACTIONS",
            "GITHUB_OUTPUT",
            "GITHUB_STEP_SUMMARY",
            "IMGGUARD_TRACE",
            "NO_COLOR",
        ] {
            cmd.env_remove(v);
        }
        Test { cmd, stdin: None, timeout: None }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Test {
        self.cmd.arg(arg);
        self
    }

    pub fn args<S: AsRef<OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Test {
        self.cmd.args(args);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Test {
        self.cmd.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Test {
        self.cmd.env_remove(key);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Test {
        self.cmd.current_dir(dir);
        self
    }

    /// The ledger's home (`IMGGUARD_HOME`).
    pub fn home(self, dir: impl AsRef<Path>) -> Test {
        let dir = dir.as_ref().to_path_buf();
        self.env("IMGGUARD_HOME", dir)
    }

    /// Bytes fed to standard input (else it is empty, never the test's own).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Test {
        self.stdin = Some(bytes.into());
        self
    }

    /// Kill the run and fail the test when it takes longer (a run that could hang on its
    /// input: a FIFO, a device).
    pub fn timeout(mut self, limit: std::time::Duration) -> Test {
        self.timeout = Some(limit);
        self
    }

    /// The command as built, for a caller that needs a detail this builder does not have.
    pub fn command(&mut self) -> &mut Command {
        &mut self.cmd
    }

    /// The command as built, to spawn and signal by hand.
    pub fn into_command(self) -> Command {
        self.cmd
    }

    /// Runs to the end. A `build` that met Podman's cache-lookup race ([`podman_cache_race`])
    /// is run again: it changed and recorded nothing.
    pub fn run(mut self) -> Run {
        let mut run = self.run_once();
        for _ in 0..3 {
            let build = self.cmd.get_args().next().is_some_and(|a| a == "build");
            if !(build && podman_cache_race(&run.stderr)) {
                break;
            }
            run = self.run_once();
        }
        run
    }

    fn run_once(&mut self) -> Run {
        self.cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child =
            self.cmd.spawn().unwrap_or_else(|e| panic!("cannot run {:?}: {e}", self.cmd));
        let input = self.stdin.clone().unwrap_or_default();
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let writer = std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
        if let Some(limit) = self.timeout {
            let started = std::time::Instant::now();
            while child.try_wait().expect("poll the child").is_none() {
                if started.elapsed() > limit {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{:?} did not finish within {limit:?}", self.cmd);
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let out = child.wait_with_output().expect("wait for the child");
        writer.join().expect("stdin writer");
        Run::from(&out)
    }
}

/// What a run of the binary gave.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(o: &Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// The lines imgguard itself printed (docker's output filtered out).
    pub fn imgguard_lines(&self) -> Vec<&str> {
        self.stderr.lines().filter(|l| l.starts_with("imgguard: ")).collect()
    }

    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Run {
        self.status(code)
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn status(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts the whole of stdout.
    #[track_caller]
    pub fn stdout(&self, want: &str) -> &Run {
        assert_eq!(self.stdout, want, "stdout (stderr was:\n{})", self.stderr);
        self
    }

    /// Asserts the whole of stderr.
    #[track_caller]
    pub fn stderr(&self, want: &str) -> &Run {
        assert_eq!(self.stderr, want, "stderr (stdout was:\n{})", self.stdout);
        self
    }

    /// Asserts that stderr contains `part`.
    #[track_caller]
    pub fn stderr_has(&self, part: &str) -> &Run {
        assert!(self.stderr.contains(part), "stderr lacks {part:?}:\n{}", self.stderr);
        self
    }
}

/// A unique, lowercase id for this test process.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos();
        format!("{}{:x}", std::process::id(), nanos % 0xfffff)
    })
}

/// The engine the daemon tests run against, from `IMGGUARD_TEST_ENGINE` (`docker`, the default,
/// or `podman`; `bash tests/run.sh` runs the daemon tests once with each). The daemon itself is
/// the one `docker` reaches (`DOCKER_HOST`, …), and [`require_daemon`] checks that it is of this
/// kind, so a Podman pass can never quietly run against Docker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Docker,
    Podman,
}

pub fn engine() -> EngineKind {
    match std::env::var("IMGGUARD_TEST_ENGINE").as_deref() {
        Ok("podman") => EngineKind::Podman,
        Ok("docker" | "") | Err(_) => EngineKind::Docker,
        Ok(other) => panic!("IMGGUARD_TEST_ENGINE={other}: expected docker or podman"),
    }
}

/// The daemon under test as `DOCKER_HOST` names it (the default socket when unset).
pub fn daemon_host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unix:///var/run/docker.sock".to_string())
}

/// The path of the daemon's Unix socket.
pub fn daemon_socket() -> PathBuf {
    let host = daemon_host();
    PathBuf::from(host.strip_prefix("unix://").expect("the daemon tests use a unix:// DOCKER_HOST"))
}

/// The engine identity imgguard records for the daemon under test: dockerd's `info` ID, or
/// for Podman (whose `info` ID changes on every call) `podman:<name>:<storage root>`.
pub fn engine_identity() -> String {
    match engine() {
        EngineKind::Docker => docker(&["info", "--format", "{{.ID}}"]),
        EngineKind::Podman => {
            format!("podman:{}", docker(&["info", "--format", "{{.Name}}:{{.DockerRootDir}}"]))
        }
    }
}

/// Fails the test with a one-line instruction when no daemon answers, or when it is not the
/// engine [`engine`] names; never skips.
pub fn require_daemon() {
    static OK: OnceLock<Result<(), String>> = OnceLock::new();
    let r = OK.get_or_init(|| {
        let out = Command::new("docker")
            .args(["version", "--format", "{{range .Server.Components}}{{.Name}};{{end}}"])
            .output();
        let components = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).to_string(),
            Ok(o) => return Err(String::from_utf8_lossy(&o.stderr).trim().to_string()),
            Err(e) => return Err(format!("cannot run docker: {e}")),
        };
        let is_podman = components.contains("Podman");
        match (engine(), is_podman) {
            (EngineKind::Podman, false) => Err(format!(
                "IMGGUARD_TEST_ENGINE=podman but the daemon at DOCKER_HOST is not Podman \
                 (components: {components})"
            )),
            (EngineKind::Docker, true) => {
                Err("the daemon at DOCKER_HOST is Podman: set IMGGUARD_TEST_ENGINE=podman"
                    .to_string())
            }
            _ => Ok(()),
        }
    });
    if let Err(e) = r {
        match engine() {
            EngineKind::Docker => panic!(
                "these tests need a Docker daemon and none answers ({e}); start one with \
                 `sudo dockerd &`, or run `bash tests/run.sh`, which starts it"
            ),
            EngineKind::Podman => panic!(
                "the Podman pass needs a Podman API service at DOCKER_HOST ({e}); run \
                 `bash tests/run.sh`, which installs podman and starts `podman system service`"
            ),
        }
    }
}

/// Runs docker with argv; panics if it fails.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    let mut o = Command::new("docker").args(args).output().expect("run docker");
    for _ in 0..3 {
        if !podman_cache_race(&String::from_utf8_lossy(&o.stderr)) {
            break;
        }
        o = Command::new("docker").args(args).output().expect("run docker");
    }
    assert!(o.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Podman 4.3's build fails when an image goes away while it looks for a cached step ("checking
/// if cached image exists from a previous build: … layer not known"): the tests build and remove
/// images in parallel, so a build that failed so is run again (it recorded and changed nothing:
/// a failed build never does). A README caveat for Podman.
fn podman_cache_race(stderr: &str) -> bool {
    engine() == EngineKind::Podman
        && stderr.contains("checking if cached image exists")
        && stderr.contains("layer not known")
}

/// Runs docker with argv; returns whether it succeeded.
pub fn docker_ok(args: &[&str]) -> bool {
    Command::new("docker").args(args).output().is_ok_and(|o| o.status.success())
}

/// The full ID a reference points at, if any, as `sha256:…` (the docker CLI shows Podman's IDs
/// without the algorithm).
pub fn image_id(reference: &str) -> Option<String> {
    let o = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", reference])
        .output()
        .expect("run docker");
    o.status.success().then(|| full_id(String::from_utf8_lossy(&o.stdout).trim()))
}

/// An image ID with its `sha256:` prefix.
pub fn full_id(id: &str) -> String {
    if id.contains(':') {
        id.to_string()
    } else {
        format!("sha256:{id}")
    }
}

/// A static `pause` program, built once with gcc, so test images can run a container that keeps
/// running without any base image.
pub fn pause_binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("imgguard-pause-{}", run_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("pause.c");
        std::fs::write(&src, "#include <unistd.h>\nint main(void){for(;;)pause();}\n").unwrap();
        let bin = dir.join("pause");
        let ok =
            Command::new("gcc").args(["-static", "-Os", "-o"]).arg(&bin).arg(&src).status().expect(
                "gcc is needed to build the test pause program (apt-get install gcc libc6-dev)",
            );
        assert!(ok.success(), "gcc -static failed");
        bin
    })
}

/// One daemon test: its own name prefix, label, ledger home and build context; removes the
/// containers and images carrying its label when dropped.
pub struct DockerTest {
    pub name: String,
    pub label: String,
    pub home: tempfile::TempDir,
    pub ctx: tempfile::TempDir,
}

impl DockerTest {
    pub fn new(test: &str) -> DockerTest {
        require_daemon();
        let name = format!("igt-{}-{test}", run_id());
        let label = format!("imgguard.test={name}");
        let t = DockerTest {
            name,
            label,
            home: tempfile::tempdir().unwrap(),
            ctx: tempfile::tempdir().unwrap(),
        };
        std::fs::copy(pause_binary(), t.ctx.path().join("pause")).unwrap();
        t.write_dockerfile("");
        t.set_content("1");
        t
    }

    /// A tag under this test's prefix: `igt-<run>-<test>-<suffix>`.
    pub fn tag(&self, suffix: &str) -> String {
        format!("{}-{suffix}", self.name)
    }

    /// The Dockerfile: FROM scratch, our label, the pause program, the content file, plus `extra`.
    pub fn write_dockerfile(&self, extra: &str) {
        let text = format!(
            "FROM scratch\nLABEL {}\nCOPY pause /pause\nCOPY content /content\n{extra}CMD [\"/pause\"]\n",
            self.label
        );
        std::fs::write(self.ctx.path().join("Dockerfile"), text).unwrap();
    }

    /// Changes the content so the next build makes a new image ID.
    pub fn set_content(&self, content: &str) {
        std::fs::write(self.ctx.path().join("content"), content).unwrap();
    }

    /// The binary with this test's ledger home, run in the build context.
    pub fn test(&self) -> Test {
        Test::new().current_dir(self.ctx.path()).home(self.home.path())
    }

    /// The same as a plain `Command`, for tests that need to spawn and signal it.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.test().args(args).into_command()
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.test().args(args).run()
    }

    /// `imgguard build -q <args> .`
    pub fn build(&self, args: &[&str]) -> Run {
        let mut all = vec!["build", "-q"];
        all.extend_from_slice(args);
        all.push(".");
        self.run(&all)
    }

    /// `imgguard history --format json [tag]`, parsed.
    pub fn history(&self, tag: Option<&str>) -> serde_json::Value {
        let mut args = vec!["history", "--format", "json"];
        args.extend(tag);
        let r = self.run(&args);
        r.assert_code(0);
        serde_json::from_str(&r.stdout).expect("history JSON")
    }

    /// `(image_id, state)` of a tag's lineage, newest first.
    pub fn states(&self, tag: &str) -> Vec<(String, String)> {
        let h = self.history(Some(tag));
        let arr = h.as_array().unwrap();
        assert_eq!(arr.len(), 1, "one lineage for {tag}: {h}");
        arr[0]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["image_id"].as_str().unwrap().to_string(),
                    e["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Runs a container of `image` under this test's label; `running` keeps it up.
    pub fn container(&self, image: &str, suffix: &str, running: bool) -> String {
        let name = self.tag(suffix);
        docker(&["run", "-d", "--label", &self.label, "--name", &name, image]);
        if !running {
            docker(&["kill", &name]);
        }
        name
    }
}

impl Drop for DockerTest {
    fn drop(&mut self) {
        let filter = format!("label={}", self.label);
        let containers = docker_list(&["ps", "-aq", "--filter", &filter]);
        if !containers.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(containers.iter().map(String::as_str));
            let _ = Command::new("docker").args(&args).output();
        }
        // Tags first (removing a tag never removes another's image), then the untagged rest.
        for _ in 0..3 {
            let tags = docker_list(&[
                "images",
                "--filter",
                &filter,
                "--format",
                "{{.Repository}}:{{.Tag}}",
            ]);
            for t in tags.iter().filter(|t| !t.contains("<none>")) {
                let _ = Command::new("docker").args(["rmi", t]).output();
            }
            let ids = docker_list(&["images", "-aq", "--filter", &filter]);
            if ids.is_empty() {
                break;
            }
            for id in ids {
                let _ = Command::new("docker").args(["rmi", &id]).output();
            }
        }
    }
}

fn docker_list(args: &[&str]) -> Vec<String> {
    Command::new("docker")
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
        .unwrap_or_default()
}
