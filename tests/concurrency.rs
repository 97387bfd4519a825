//! Concurrency on one daemon, as on a shared CI runner: eight `imgguard build` loops on four
//! shared tags (new content every build) while containers are created, started, stopped and
//! removed from those tags at random — once with the legacy builder, once with BuildKit (the
//! client of Debian's `docker.io` package). imgguard must break no build, make no error, leave
//! no container without its image, remove no tagged image, keep the ledger in step with the
//! daemon, and leave nothing dangling once a final prune has run.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{docker, image_id, DockerTest, Test};

/// How long the build loops run, per builder.
const LOOP_TIME: Duration = Duration::from_secs(15);
const LOOPS: usize = 8;
const TAGS: usize = 4;

/// A small xorshift: the test needs varied choices, not good randomness.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % (n as u64)).unwrap()
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::from(t.subsec_nanos()) ^ u64::from(std::process::id())
}

/// The directory of Debian's docker.io client (`dpkg -L docker.io`), which still speaks
/// BuildKit to a 20.10 daemon without buildx.
fn debian_docker_dir() -> tempfile::TempDir {
    let out = Command::new("dpkg").args(["-L", "docker.io"]).output().expect("run dpkg");
    let list = String::from_utf8_lossy(&out.stdout);
    let client = list
        .lines()
        .find(|l| l.ends_with("/bin/docker") && Path::new(l).is_file())
        .expect("Debian's docker.io client (dpkg -L docker.io) is needed for the BuildKit half");
    let dir = tempfile::Builder::new().prefix("imgguard-test-bk-").tempdir().unwrap();
    std::os::unix::fs::symlink(client, dir.path().join("docker")).unwrap();
    dir
}

/// What the loops saw.
#[derive(Default)]
struct Tally {
    builds: usize,
    failures: Vec<String>,
    containers: Vec<String>,
    container_ops: usize,
    container_failures: Vec<String>,
}

fn build_loop(t: &DockerTest, i: usize, env: &[(String, String)], tally: &Mutex<Tally>) {
    let ctx = tempfile::tempdir().unwrap();
    for f in ["Dockerfile", "pause"] {
        std::fs::copy(t.ctx.path().join(f), ctx.path().join(f)).unwrap();
    }
    let tag = t.tag(&format!("s{}", i % TAGS));
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < LOOP_TIME {
        n += 1;
        // New content every build, the same across loops within one second (`date +%s`): builds
        // share the legacy builder's cache, and sometimes a whole image.
        let second = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
        std::fs::write(ctx.path().join("content"), second.as_secs().to_string()).unwrap();
        let mut test =
            Test::new().current_dir(ctx.path()).home(t.home.path()).args(["build", "-q", "-t"]);
        test = test.arg(&tag).arg(".");
        for (k, v) in env {
            test = test.env(k, v);
        }
        let r = test.run();
        let mut tally = tally.lock().unwrap();
        tally.builds += 1;
        let errors: Vec<&str> =
            r.imgguard_lines().into_iter().filter(|l| l.contains("error")).collect();
        if r.code != 0 || !errors.is_empty() {
            tally.failures.push(format!("loop {i} build {n}: exit {}\n{}", r.code, r.stderr));
        }
    }
}

fn container_loop(t: &DockerTest, k: usize, stop: &AtomicBool, tally: &Mutex<Tally>) {
    let mut rng = Rng::new(seed() ^ (k as u64) << 32);
    let mut mine: Vec<String> = Vec::new();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let tag = t.tag(&format!("s{}", rng.below(TAGS)));
        let name = t.tag(&format!("c{k}-{n}"));
        let args: Vec<String> = match rng.below(5) {
            0 | 1 => {
                let verb = if rng.below(2) == 0 { "create" } else { "run" };
                let mut a = vec![verb.to_string(), "--pull".into(), "never".into()];
                if verb == "run" {
                    a.push("-d".into());
                }
                a.extend(["--label".into(), t.label.clone(), "--name".into(), name.clone(), tag]);
                mine.push(name.clone());
                tally.lock().unwrap().containers.push(name);
                a
            }
            2 if !mine.is_empty() => vec!["start".into(), mine[rng.below(mine.len())].clone()],
            3 if !mine.is_empty() => {
                vec!["stop".into(), "-t".into(), "0".into(), mine[rng.below(mine.len())].clone()]
            }
            4 if !mine.is_empty() => {
                let c = mine.swap_remove(rng.below(mine.len()));
                vec!["rm".into(), "-f".into(), c]
            }
            _ => continue,
        };
        let o = Command::new("docker").args(&args).output().unwrap();
        let mut tally = tally.lock().unwrap();
        tally.container_ops += 1;
        // Only creating from a tag can suffer from imgguard (the image it resolved removed).
        if !o.status.success() && matches!(args[0].as_str(), "create" | "run") {
            let err = String::from_utf8_lossy(&o.stderr).trim().to_string();
            tally.container_failures.push(format!("docker {}: {err}", args.join(" ")));
        }
    }
}

/// The image a container was created from.
fn container_image(name: &str) -> Option<String> {
    let o = Command::new("docker")
        .args(["container", "inspect", "--format", "{{.Image}}", name])
        .output()
        .unwrap();
    o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
}

fn run_half(builder: &str, env: &[(String, String)]) -> String {
    let t = DockerTest::new(&format!("conc-{builder}"));
    // Every tag exists before the containers come: a create from a missing tag is no test.
    for s in 0..TAGS {
        let r = t.test().args(["build", "-q", "-t", &t.tag(&format!("s{s}")), "."]);
        let r = env.iter().fold(r, |r, (k, v)| r.env(k, v)).run();
        r.status(0);
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = AtomicBool::new(false);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for k in 0..2 {
            let (t, stop, tally) = (&t, &stop, &tally);
            scope.spawn(move || container_loop(t, k, stop, tally));
        }
        let builders: Vec<_> = (0..LOOPS)
            .map(|i| {
                let (t, tally) = (&t, &tally);
                scope.spawn(move || build_loop(t, i, env, tally))
            })
            .collect();
        for b in builders {
            b.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
    });
    let loops_took = started.elapsed();
    let (removed, deferred) = removals(&t);
    let tally = tally.lock().unwrap();
    assert!(tally.failures.is_empty(), "{builder}: builds failed:\n{}", tally.failures.join("\n"));
    assert!(
        tally.container_failures.is_empty(),
        "{builder}: container creates failed:\n{}",
        tally.container_failures.join("\n")
    );
    assert!(tally.builds >= LOOPS * 2, "{builder}: too few builds ran: {}", tally.builds);

    // Every container's image exists; every tag still points at an image.
    let filter = format!("label={}", t.label);
    let containers = docker(&["ps", "-aq", "--filter", &filter]);
    let containers: Vec<&str> = containers.lines().collect();
    for c in &containers {
        let img = container_image(c).expect("container inspect");
        assert!(image_id(&img).is_some(), "{builder}: container {c} lost its image {img}");
    }
    // The ledger's current image of each tag is the daemon's.
    for s in 0..TAGS {
        let tag = t.tag(&format!("s{s}"));
        let daemon = image_id(&tag).unwrap_or_else(|| panic!("{builder}: tag {tag} is gone"));
        let states = t.states(&tag);
        let current: Vec<&(String, String)> = states.iter().filter(|s| s.1 == "current").collect();
        assert_eq!(current.len(), 1, "{builder}: one current entry for {tag}: {states:?}");
        assert_eq!(current[0].0, daemon, "{builder}: the ledger's {tag} is the daemon's");
    }
    // Once quiet: one prune leaves nothing dangling from this test that nothing uses.
    let r = t.run(&["prune", "--min-age", "0", "--label", &t.label]);
    r.status(0);
    let used: Vec<String> = containers.iter().filter_map(|c| container_image(c)).collect();
    let dangling =
        docker(&["images", "-q", "--no-trunc", "--filter", "dangling=true", "--filter", &filter]);
    let left: Vec<&str> = dangling.lines().filter(|d| !used.iter().any(|u| u == d)).collect();
    if !left.is_empty() {
        let keep =
            std::env::temp_dir().join(format!("imgguard-conc-ledger-{}.db", std::process::id()));
        let _ = std::fs::copy(t.home.path().join("ledger.db"), &keep);
        let _ = std::fs::copy(t.home.path().join("ledger.db-wal"), keep.with_extension("db-wal"));
        let explained = t.run(&["explain", "--format", "json", "--label", &t.label]).stdout;
        let inspect: Vec<String> = left
            .iter()
            .map(|i| {
                docker(&[
                    "image",
                    "inspect",
                    "--format",
                    "{{.Id}} parent={{.Parent}} created={{.Created}} cmd={{.ContainerConfig.Cmd}}",
                    i,
                ])
            })
            .collect();
        panic!(
            "{builder}: dangling after the final prune: {left:?}\n{inspect:#?}\nprune:\n{}\nexplain:\n{explained}\nledger kept at {}",
            r.stdout,
            keep.display()
        );
    }
    for s in 0..TAGS {
        assert!(image_id(&t.tag(&format!("s{s}"))).is_some(), "{builder}: a tag lost its image");
    }
    format!(
        "{builder}: {} builds, 0 failures, {} containers ({} container ops, {} left), {} s; \
         during the loops {removed} images removed, {deferred} removals deferred",
        tally.builds,
        tally.containers.len(),
        tally.container_ops,
        containers.len(),
        loops_took.as_secs()
    )
}

/// How many images the ledger records as removed, and how many removals as deferred (a build
/// was running, or build cache), so far.
fn removals(t: &DockerTest) -> (usize, usize) {
    let r = t.run(&["ledger", "export"]);
    r.status(0);
    let events: Vec<serde_json::Value> =
        r.stdout.lines().map(|l| serde_json::from_str(l).expect("an export line")).collect();
    let removed = events.iter().filter(|e| e["outcome"] == "removed").count();
    let deferred = events.iter().filter(|e| e["reason_kind"] == "deferred").count();
    (removed, deferred)
}

/// The goal: zero builds broken by imgguard and zero imgguard errors, with 8 build
/// loops on 4 shared tags, with both builders.
#[test]
fn concurrent_builds_on_shared_tags_break_nothing() {
    let legacy = run_half("legacy", &[("DOCKER_BUILDKIT".into(), "0".into())]);
    let client = debian_docker_dir();
    let path = format!("{}:{}", client.path().display(), std::env::var("PATH").unwrap_or_default());
    let buildkit =
        run_half("buildkit", &[("DOCKER_BUILDKIT".into(), "1".into()), ("PATH".into(), path)]);
    eprintln!("{legacy}\n{buildkit}");
}

/// The builds lock beside the test's ledger (`[ref:build-lock]`), opened as another imgguard
/// process would.
fn builds_lock(t: &DockerTest) -> std::fs::File {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(t.home.path().join("ledger.builds.lock"))
        .expect("open the builds lock")
}

/// While another imgguard build runs (its shared hold on the builds lock, taken here by the
/// test), a rebuild deletes nothing: the image it superseded is kept as deferred, and the next
/// build after the grace period, with nothing running, removes it. A deletion during a running
/// legacy build's cache lookup fails that build (`unable to find image`), so this is how
/// imgguard never breaks another imgguard build.
#[test]
fn a_removal_is_deferred_while_another_build_runs() {
    let t = DockerTest::new("lock-defer");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).expect("built");
    let lock = builds_lock(&t);
    lock.lock_shared().unwrap();
    t.set_content("2");
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    let second = image_id(&tag).expect("rebuilt");
    assert_ne!(first, second);
    assert!(image_id(&first).is_some(), "nothing is deleted while a build runs");
    let line = r.imgguard_lines().join("\n");
    assert!(
        line.contains("kept") && line.contains("an imgguard build is running"),
        "the build says why it kept the image: {line}"
    );
    let h = t.history(Some(&tag));
    let old = &h[0]["entries"][1];
    assert_eq!(old["image_id"], first.as_str(), "{h}");
    assert!(old["reason"].as_str().unwrap_or("").contains("deferred"), "{h}");
    drop(lock);
    // The next build (a cache hit: its tag does not move) frees it once the grace period (2 s)
    // since the deferral is over.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    t.build(&["-t", &tag]).assert_code(0);
    assert!(image_id(&first).is_none(), "the next build removed the deferred image");
    assert_eq!(t.states(&tag), [(second, "current".into()), (first, "removed".into())]);
}

/// `prune` waits for a running build to end (up to 10 s) rather than defer at once.
#[test]
fn prune_waits_for_a_running_build_to_end() {
    let t = DockerTest::new("lock-prune");
    let tag = t.tag("x:v1");
    let build = || t.run(&["build", "--keep-previous", "-q", "-t", &tag, "."]);
    build().assert_code(0);
    t.set_content("2");
    build().assert_code(0);
    let old = t.states(&tag)[1].0.clone();
    assert!(image_id(&old).is_some(), "--keep-previous kept it");
    let lock = builds_lock(&t);
    lock.lock_shared().unwrap();
    let watched = old.clone();
    let release = std::thread::spawn(move || {
        // Longer than the grace period the removal waits anyway (2 s).
        std::thread::sleep(std::time::Duration::from_secs(4));
        let kept = image_id(&watched).is_some();
        drop(lock);
        kept
    });
    let r = t.run(&["prune", "--min-age", "0", "--label", &t.label]);
    assert!(release.join().unwrap(), "nothing was deleted while the build ran");
    r.assert_code(0);
    assert!(image_id(&old).is_none(), "removed once the build ended: {}", r.stdout);
}

/// A build holds the builds lock shared for as long as its docker runs, and lets go at the end.
#[test]
fn a_build_holds_the_builds_lock_while_docker_runs() {
    use std::io::Write as _;
    let t = DockerTest::new("lock-hold");
    let tag = t.tag("x:v1");
    // The lock lives beside a ledger that exists: a first build makes it.
    t.build(&["-t", &tag]).assert_code(0);
    // `docker build -` reads the Dockerfile from standard input: the build waits for it.
    let mut child = t
        .test()
        .args(["build", "-q", "-t", &tag, "-"])
        .into_command()
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let held = |lock: &std::fs::File| match lock.try_lock() {
        Ok(()) => {
            lock.unlock().unwrap();
            false
        }
        Err(std::fs::TryLockError::WouldBlock) => true,
        Err(e) => panic!("{e}"),
    };
    let lock = builds_lock(&t);
    let started = std::time::Instant::now();
    while !held(&lock) {
        assert!(started.elapsed() < Duration::from_secs(20), "the build never took the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut stdin = child.stdin.take().unwrap();
    write!(stdin, "FROM scratch\nLABEL {}\n", t.label).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(image_id(&tag).is_some());
    assert!(!held(&lock), "the lock is free once the build has ended");
}

/// A builds lock that is no regular file (a FIFO, a symlink to `/dev/zero`) is not used: the
/// build neither hangs nor fails, and removes what it superseded as it did before the lock.
#[test]
fn a_builds_lock_that_is_no_file_is_ignored_and_nothing_hangs() {
    let t = DockerTest::new("lock-hostile");
    let tag = t.tag("x:v1");
    let lock = t.home.path().join("ledger.builds.lock");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &lock,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let build =
        || t.test().args(["build", "-q", "-t", &tag, "."]).timeout(Duration::from_secs(120)).run();
    build().assert_code(0);
    let first = image_id(&tag).expect("built");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &lock).unwrap();
    t.set_content("2");
    let r = build();
    r.assert_code(0);
    assert!(image_id(&first).is_none(), "removed as before: {}", r.stderr);
    assert!(std::fs::symlink_metadata(&lock).unwrap().file_type().is_symlink(), "left alone");
}
