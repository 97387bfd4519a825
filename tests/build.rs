//! `imgguard build` and `history` against the real daemon.

use std::process::Command;

use imgguard::core::event::EventKind;

use crate::support::{
    daemon_host, docker, docker_ok, engine_identity, full_id, image_id, DockerTest,
};

/// Build, change a file, rebuild (the first cause of `<none>` images). The old ID is gone from the
/// daemon and the lineage shows both, removed and current, with the git commit of the context.
#[test]
fn rebuild_removes_the_image_it_left_dangling() {
    let t = DockerTest::new("rebuild");
    let tag = t.tag("x:v1");
    let ctx = t.ctx.path();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"])
            .args(args)
            .current_dir(ctx)
            .output()
            .unwrap();
        assert!(ok.status.success(), "git {args:?}");
        String::from_utf8_lossy(&ok.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-qm", "first"]);
    let head = git(&["rev-parse", "HEAD"]);

    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).expect("built");
    t.set_content("2");
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    let second = image_id(&tag).expect("rebuilt");
    assert_ne!(first, second);
    assert!(image_id(&first).is_none(), "the superseded image is gone from the daemon");
    let short = |id: &str| id[..19].to_string();
    assert_eq!(
        r.imgguard_lines(),
        [format!(
            "imgguard: {tag}  {} → {}  removed {}",
            short(&first),
            short(&second),
            short(&first)
        )]
    );
    assert_eq!(
        t.states(&tag),
        [(second.clone(), "current".into()), (first.clone(), "removed".into())]
    );
    let h = t.history(Some(&tag));
    let entries = h[0]["entries"].as_array().unwrap();
    assert_eq!(entries[0]["git_commit"], head.as_str());
    assert_eq!(entries[0]["event"], "build");
    assert!(entries[1]["reason"].as_str().unwrap().starts_with("superseded"));
    assert!(h[0]["engine"].as_str().is_some_and(|e| !e.is_empty()));
    // recorded_at is RFC 3339.
    let at = entries[0]["recorded_at"].as_str().unwrap();
    assert!(at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at}");
}

#[test]
fn cache_hit_rebuild_removes_nothing() {
    let t = DockerTest::new("cachehit");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    assert_eq!(image_id(&tag).unwrap(), first);
    assert_eq!(r.imgguard_lines(), [format!("imgguard: {tag}  {}  unchanged", &first[..19])]);
    assert_eq!(t.states(&tag), [(first, "current".into())]);
}

#[test]
fn stopped_container_keeps_the_old_image() {
    let t = DockerTest::new("stopped");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    let name = t.container(&tag, "c1", false);
    t.set_content("2");
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    let line = r.imgguard_lines().join("\n");
    assert!(
        line.ends_with(&format!("kept {}: used by container {name} (exited)", &first[..19])),
        "{line}"
    );
    assert!(image_id(&first).is_some(), "kept, not forced");
    let states = t.states(&tag);
    assert_eq!(states[1], (first, "kept".into()));
    let h = t.history(Some(&tag));
    assert!(h[0]["entries"][1]["reason"].as_str().unwrap().contains(&name));
}

#[test]
fn running_container_keeps_the_old_image() {
    let t = DockerTest::new("running");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    let name = t.container(&tag, "web", true);
    t.set_content("2");
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    let line = r.imgguard_lines().join("\n");
    assert!(line.ends_with(&format!("used by container {name} (running)")), "{line}");
    assert!(image_id(&first).is_some());
    assert_eq!(t.states(&tag)[1].1, "kept");
    // The image is still the container's: no <none> made by force.
    let img = full_id(&docker(&["inspect", "--format", "{{.Image}}", &name]));
    assert_eq!(img, first);
}

#[test]
fn another_tag_keeps_the_old_image() {
    let t = DockerTest::new("othertag");
    let tag = t.tag("x:v1");
    let stable = t.tag("x:stable");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    docker(&["tag", &tag, &stable]);
    t.set_content("2");
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    let line = r.imgguard_lines().join("\n");
    assert!(line.ends_with(&format!("kept {}: still tagged {stable}", &first[..19])), "{line}");
    assert_eq!(image_id(&stable).as_deref(), Some(first.as_str()));
}

#[test]
fn several_tags_in_one_build() {
    let t = DockerTest::new("multitag");
    let (a, b) = (t.tag("x:v1"), t.tag("x:latest"));
    t.build(&["-t", &a, "--tag", &b]).assert_code(0);
    let first = image_id(&a).unwrap();
    assert_eq!(image_id(&b).as_deref(), Some(first.as_str()));
    t.set_content("2");
    let r = t.build(&["-t", &a, &format!("--tag={b}")]);
    r.assert_code(0);
    let lines = r.imgguard_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|l| l.ends_with(&format!("removed {}", &first[..19]))), "{lines:?}");
    assert!(image_id(&first).is_none());
    assert_eq!(t.states(&a)[1].1, "removed");
    assert_eq!(t.states(&b)[1].1, "removed");
}

#[test]
fn keep_previous_records_but_removes_nothing() {
    let t = DockerTest::new("keepprev");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    t.set_content("2");
    let r = t.run(&["build", "--keep-previous", "-q", "-t", &tag, "."]);
    r.assert_code(0);
    assert!(r.imgguard_lines()[0].contains("kept"), "{}", r.stderr);
    assert!(image_id(&first).is_some());
    assert_eq!(t.states(&tag)[1], (first, "kept".into()));
}

#[test]
fn protect_pattern_from_config_keeps_the_old_image() {
    let t = DockerTest::new("protect");
    let tag = t.tag("x:v1");
    std::fs::write(
        t.ctx.path().join(".imgguard.yml"),
        format!("version: 1\nprotect:\n  - \"{}-x:*\"\n", t.name),
    )
    .unwrap();
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    t.set_content("2");
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    assert!(r.imgguard_lines()[0].contains("protected"), "{}", r.stderr);
    assert!(image_id(&first).is_some());
}

#[test]
fn failing_build_passes_dockers_code_and_records_nothing() {
    let t = DockerTest::new("fail");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    t.write_dockerfile("COPY does-not-exist /x\n");
    let r = t.build(&["-t", &tag]);
    r.assert_code(1);
    assert!(r.imgguard_lines().is_empty(), "{}", r.stderr);
    assert_eq!(image_id(&tag).as_deref(), Some(first.as_str()));
    assert_eq!(t.states(&tag), [(first, "current".into())]);
    // Only the first build is recorded; the failed run has its intent and its end, no more.
    let conn = rusqlite::Connection::open(t.home.path().join("ledger.db")).unwrap();
    let kinds: Vec<(String, Option<String>)> = conn
        .prepare("SELECT kind, outcome FROM events ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let finished = || ("intent".to_string(), Some("finished".to_string()));
    let intent = || ("intent".to_string(), None);
    assert_eq!(
        kinds,
        [intent(), finished(), ("build".into(), None), intent(), finished()],
        "only the first build is recorded"
    );
}

#[test]
fn build_arg_values_never_reach_the_ledger() {
    let t = DockerTest::new("buildarg");
    let tag = t.tag("x:v1");
    t.write_dockerfile("ARG SECRET_TOKEN\n");
    t.build(&["-t", &tag, "--build-arg", "SECRET_TOKEN=hunter2-very-secret"]).assert_code(0);
    let db = t.home.path().join("ledger.db");
    let mut bytes = std::fs::read(&db).unwrap();
    if let Ok(wal) = std::fs::read(t.home.path().join("ledger.db-wal")) {
        bytes.extend(wal);
    }
    let find = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
    assert!(!find(b"hunter2-very-secret"), "a build-arg value was stored");
    assert!(find(b"SECRET_TOKEN"), "the build-arg name is recorded");
    // The Dockerfile's sha256, the imgguard version and the names are on the build event.
    let store = imgguard::ledger::sqlite::Store::open(&db).unwrap();
    let events = store.events(None, &[&tag]).unwrap();
    let build = &events.iter().find(|e| e.event.kind == EventKind::Build).unwrap().event;
    let dockerfile = std::fs::read(t.ctx.path().join("Dockerfile")).unwrap();
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&dockerfile))
    };
    let facts = build.build.as_ref().expect("a build event carries the build's facts");
    assert_eq!(facts.dockerfile_sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(facts.build_arg_names, ["SECRET_TOKEN"]);
    assert_eq!(build.imgguard_version, env!("CARGO_PKG_VERSION"));
    assert_eq!(build.git_commit(), None, "the context is not in a git repository");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&db).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn docker_context_from_config_json_is_used_for_both_api_and_cli() {
    let t = DockerTest::new("context");
    let cfg = tempfile::tempdir().unwrap();
    let name = "igt-ctx";
    let id = imgguard::engine::endpoint::context_dir_name(name);
    let meta = cfg.path().join("contexts/meta").join(id);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{}","SkipTLSVerify":false}}}}}}"#,
            daemon_host()
        ),
    )
    .unwrap();
    std::fs::write(cfg.path().join("config.json"), format!(r#"{{"currentContext":"{name}"}}"#))
        .unwrap();
    let tag = t.tag("x:v1");
    let out = t
        .cmd(&["build", "-q", "-t", &tag, "."])
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", cfg.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(image_id(&tag).is_some());
    // The engine identity recorded is the daemon's own.
    assert_eq!(t.history(Some(&tag))[0]["engine"], engine_identity().as_str());

    // A context pointing nowhere: exit 2 before anything runs.
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Endpoints":{{"docker":{{"Host":"unix:///nonexistent.sock"}}}}}}"#
        ),
    )
    .unwrap();
    let out = t
        .cmd(&["build", "-q", "-t", &t.tag("y:v1"), "."])
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", cfg.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("imgguard: cannot reach the Docker engine at unix:///nonexistent.sock"),
        "{err}"
    );
    assert!(image_id(&t.tag("y:v1")).is_none());
}

/// Four imgguard processes at once on different tags, two rounds: every record is there and the
/// database is consistent.
#[test]
fn concurrent_builds_lose_no_records() {
    let t = DockerTest::new("concurrent");
    let ctxs: Vec<tempfile::TempDir> = (0..4)
        .map(|i| {
            let d = tempfile::tempdir().unwrap();
            for f in ["Dockerfile", "pause"] {
                std::fs::copy(t.ctx.path().join(f), d.path().join(f)).unwrap();
            }
            std::fs::write(d.path().join("content"), format!("{i}-a")).unwrap();
            d
        })
        .collect();
    let tags: Vec<String> = (0..4).map(|i| t.tag(&format!("c{i}:v1"))).collect();
    for round in ["a", "b"] {
        let children: Vec<_> = ctxs
            .iter()
            .zip(&tags)
            .enumerate()
            .map(|(i, (ctx, tag))| {
                std::fs::write(ctx.path().join("content"), format!("{i}-{round}")).unwrap();
                t.cmd(&["build", "-q", "-t", tag, "."]).current_dir(ctx.path()).output_async()
            })
            .collect();
        for c in children {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
    }
    // Each superseded image is removed, or — when another of the builds was still running —
    // kept as deferred (`[ref:build-lock]`).
    for tag in &tags {
        let states: Vec<String> = t.states(tag).into_iter().map(|s| s.1).collect();
        assert!(states == ["current", "removed"] || states == ["current", "kept"], "{tag}");
    }
    let db = t.home.path().join("ledger.db");
    imgguard::ledger::sqlite::Store::open(&db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    // Per tag: two builds and one removal (superseded); each of the eight runs its intent and
    // its end. (Build cache deferred and freed by later builds varies with timing.)
    let count = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(count("SELECT count(*) FROM events WHERE kind = 'build'"), 8);
    assert_eq!(
        count(
            "SELECT count(*) FROM events WHERE tag IS NOT NULL AND (kind = 'removed' AND \
             reason_kind = 'superseded' OR kind = 'kept' AND reason_kind = 'deferred')"
        ),
        4
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE kind = 'intent' AND outcome = 'finished'"),
        8
    );
    assert_eq!(count("SELECT count(*) FROM events WHERE kind = 'intent' AND outcome IS NULL"), 8);
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    assert!(!docker_ok(&["image", "inspect", "--format", "x", &format!("{}:missing", t.name)]));
    // Once the grace period is over, one build with nothing else running removes every image
    // whose removal was deferred.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    t.cmd(&["build", "-q", "-t", &tags[0], "."]).current_dir(ctxs[0].path()).output().unwrap();
    for tag in &tags {
        let states: Vec<String> = t.states(tag).into_iter().map(|s| s.1).collect();
        assert_eq!(states, ["current", "removed"], "{tag}");
    }
}

trait SpawnOutput {
    fn output_async(&mut self) -> std::process::Child;
}

impl SpawnOutput for Command {
    fn output_async(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

/// A `docker` on PATH that runs the real one (when `run_real`) and then does `extra` (a shell
/// snippet given the real docker as `$D`), to stage what another process or a buildx driver
/// would do.
fn wrapped_docker(run_real: bool, extra: &str) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let real = String::from_utf8(
        Command::new("sh").args(["-c", "command -v docker"]).output().unwrap().stdout,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("docker");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nD={}\n{}\n{extra}\n",
            real.trim(),
            if run_real { "\"$D\" \"$@\" || exit $?" } else { ":" }
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn with_path(cmd: &mut Command, dir: &std::path::Path) {
    cmd.env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()));
}

/// Two builds of one tag at once: the other one finishes last and takes the tag. Ours is then
/// superseded already and, held by nothing, removed; the ledger shows the tag where the daemon
/// has it.
#[test]
fn a_concurrent_build_that_takes_the_tag_supersedes_ours() {
    let t = DockerTest::new("race");
    let tag = t.tag("x:v1");
    let other = t.tag("other:v1");
    t.set_content("other");
    t.build(&["-t", &other]).assert_code(0);
    let other_id = image_id(&other).unwrap();
    t.set_content("ours");
    // After the real build, "another build" points the tag at its own image.
    let wrap = wrapped_docker(true, &format!("\"$D\" tag {other} {tag}"));
    let mut cmd = t.cmd(&["build", "-q", "-t", &tag, "."]);
    with_path(&mut cmd, wrap.path());
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let ours = full_id(String::from_utf8_lossy(&out.stdout).trim());
    assert!(stderr.contains("by another build meanwhile"), "{stderr}");
    assert_eq!(image_id(&tag).as_deref(), Some(other_id.as_str()));
    assert!(image_id(&ours).is_none(), "our superseded image is not left dangling");
    let states = t.states(&tag);
    assert_eq!(states[0], (other_id, "current".into()));
    assert_eq!(states[1], (ours, "removed".into()));
}

/// A build whose image never reaches the daemon (what a buildx container driver without --load
/// does; staged by a docker that writes an ID the daemon does not have): recorded, nothing
/// removed, and said why.
#[test]
fn an_image_not_in_the_daemon_is_recorded_and_removes_nothing() {
    let t = DockerTest::new("notloaded");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    t.set_content("2");
    let fake = format!("sha256:{}", "e".repeat(64));
    let wrap = wrapped_docker(false, &format!(
        "while [ $# -gt 0 ]; do if [ \"$1\" = --iidfile ]; then printf {fake} > \"$2\"; fi; shift; done"
    ));
    let mut cmd = t.cmd(&["build", "-q", "-t", &tag, "."]);
    with_path(&mut cmd, wrap.path());
    let out = cmd.output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is not in the daemon"), "{stderr}");
    assert!(image_id(&first).is_some(), "nothing removed");
    // The lineage still shows the daemon's truth: the tag did not move.
    let store = imgguard::ledger::sqlite::Store::open(&t.home.path().join("ledger.db")).unwrap();
    let events = store.events(None, &[&tag]).unwrap();
    let last = &events.last().unwrap().event;
    assert_eq!(last.outcome.map(imgguard::core::event::Outcome::as_str), Some("not-in-daemon"));
    assert_eq!(last.image_id.as_deref(), Some(fake.as_str()));
    assert_eq!(t.states(&tag)[0].1, "current");
}

/// A Unix-socket proxy to the daemon that writes down the head of the first request of every
/// connection: who asked `/_ping`, and what else was asked.
struct RecordingProxy {
    path: std::path::PathBuf,
    heads: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl RecordingProxy {
    fn start() -> RecordingProxy {
        use std::io::{Read as _, Write as _};
        use std::os::unix::net::{UnixListener, UnixStream};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = heads.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let seen = seen.clone();
                std::thread::spawn(move || {
                    let Ok(mut daemon) = UnixStream::connect(crate::support::daemon_socket())
                    else {
                        return;
                    };
                    let (mut back, mut front) =
                        (daemon.try_clone().unwrap(), client.try_clone().unwrap());
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut back, &mut front);
                        let _ = front.shutdown(std::net::Shutdown::Both);
                    });
                    // Every request head on imgguard's connections (its requests here have no
                    // body); only the first on the docker CLI's, whose build context follows.
                    let mut head = Vec::new();
                    let mut buf = vec![0u8; 64 << 10];
                    let mut scanning = true;
                    while let Ok(n) = client.read(&mut buf) {
                        if n == 0 || daemon.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        if !scanning {
                            continue;
                        }
                        head.extend_from_slice(&buf[..n]);
                        while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                            let text = String::from_utf8_lossy(&head[..end]).into_owned();
                            head.drain(..end + 4);
                            scanning = !text.contains("Docker-Client");
                            seen.lock().unwrap().push(text);
                            if !scanning {
                                break;
                            }
                        }
                    }
                    let _ = daemon.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        RecordingProxy { path, heads, _dir: dir }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    /// The request heads recorded so far that imgguard sent (the docker CLI's carry its
    /// `Docker-Client` user agent), emptying the record.
    fn take_imgguards(&self) -> Vec<String> {
        let heads = std::mem::take(&mut *self.heads.lock().unwrap());
        heads.into_iter().filter(|h| !h.contains("Docker-Client")).collect()
    }
}

/// `[ref:no-move-no-look]` A rebuild that moves no tag does not ask the daemon about the tags
/// again after docker (one inspect per tag, before); one that moves a tag does, and both are
/// recorded as what they are.
#[test]
fn a_rebuild_that_moves_no_tag_does_not_look_again() {
    let t = DockerTest::new("nolook");
    let tag = t.tag("nl:v1");
    let proxy = RecordingProxy::start();
    let build =
        || t.test().env("DOCKER_HOST", proxy.host()).args(["build", "-q", "-t", &tag, "."]).run();
    let of_tag = format!("/images/{tag}/json ");
    let inspects = |heads: &[String]| {
        heads.iter().filter(|h| h.starts_with("GET ") && h.contains(&of_tag)).count()
    };
    build().status(0);
    let first = image_id(&tag).unwrap();
    proxy.take_imgguards();

    // The same content: the tag stays; one inspect (before), none after.
    let run = build();
    run.status(0);
    let heads = proxy.take_imgguards();
    assert_eq!(inspects(&heads), 1, "{heads:#?}");
    assert!(run.stderr.contains("unchanged"), "{}", run.stderr);
    assert_eq!(image_id(&tag).as_deref(), Some(first.as_str()));

    // New content: the tag moves; looked at before and after, and the old image removed.
    t.set_content("moved");
    let run = build();
    run.status(0);
    let heads = proxy.take_imgguards();
    assert_eq!(inspects(&heads), 2, "{heads:#?}");
    let second = image_id(&tag).unwrap();
    assert_ne!(second, first);
    assert!(image_id(&first).is_none(), "the old image was removed: {}", run.stderr);
    let conn = rusqlite::Connection::open(t.home.path().join("ledger.db")).unwrap();
    let rows: Vec<(String, Option<String>, Option<String>)> = conn
        .prepare(
            "SELECT kind, image_id, previous_id FROM events WHERE kind IN ('build', 'removed') \
             ORDER BY seq",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let row = |k: &str, id: &String, previous: Option<&String>| {
        (k.to_string(), Some(id.clone()), previous.cloned())
    };
    // The lineage: built, rebuilt onto itself, moved (from the first), the first removed.
    assert_eq!(
        rows,
        [
            row("build", &first, None),
            row("build", &first, Some(&first)),
            row("build", &second, Some(&first)),
            row("removed", &first, None),
        ]
    );
}

/// `imgguard build` learns the daemon's API version and kind from `/_ping` and remembers them
/// under the daemon's stamp, beside an existing ledger: the next build goes without the ping,
/// unless the stamp changed. A broken or hostile cache is a miss, never an error.
#[test]
fn a_build_remembers_the_handshake_and_the_next_skips_the_ping() {
    let t = DockerTest::new("handshake");
    let tag = t.tag("hs:v1");
    let proxy = RecordingProxy::start();
    let cache = t.home.path().join("handshakes");
    let build =
        || t.test().env("DOCKER_HOST", proxy.host()).args(["build", "-q", "-t", &tag, "."]).run();
    let pings = |heads: &[String]| heads.iter().filter(|h| h.starts_with("HEAD /_ping")).count();

    // A fresh home: the ping is made, and nothing is written beside the new ledger.
    build().status(0);
    let heads = proxy.take_imgguards();
    assert_eq!(pings(&heads), 1, "{heads:#?}");
    assert!(!cache.exists(), "the first build of a fresh home remembers nothing");

    // An existing ledger: pinged once more, and remembered.
    build().status(0);
    assert_eq!(pings(&proxy.take_imgguards()), 1);
    let text = std::fs::read_to_string(&cache).unwrap();
    let flavor = match crate::support::engine() {
        crate::support::EngineKind::Docker => "docker",
        crate::support::EngineKind::Podman => "podman",
    };
    let fields: Vec<&str> = text.trim_end().split('\t').collect();
    assert_eq!(fields.len(), 6, "{text:?}");
    assert_eq!((fields[0], fields[1], fields[4]), ("handshake1", proxy.host().as_str(), flavor));

    // Remembered: no ping, and nothing rewritten.
    build().status(0);
    let heads = proxy.take_imgguards();
    assert_eq!(pings(&heads), 0, "{heads:#?}");
    assert!(heads.iter().any(|h| h.contains(&format!("/images/{tag}/json"))), "{heads:#?}");
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), text, "a hit rewrites nothing");

    // Under another stamp (as after a daemon restart): pinged, and remembered anew.
    std::fs::write(&cache, text.replacen(fields[2], "1:2:3.4:5", 1)).unwrap();
    build().status(0);
    assert_eq!(pings(&proxy.take_imgguards()), 1);
    assert_eq!(std::fs::read_to_string(&cache).unwrap().split('\t').nth(2), Some(fields[2]));

    // Garbage is a miss: pinged, and the file is written anew.
    std::fs::write(&cache, b"\xff\xfe not a cache \0\n").unwrap();
    build().status(0);
    assert_eq!(pings(&proxy.take_imgguards()), 1);
    assert!(std::fs::read_to_string(&cache).unwrap().starts_with("handshake1\t"));

    // A FIFO in its place is neither waited on nor an error.
    std::fs::remove_file(&cache).unwrap();
    let made = std::process::Command::new("mkfifo").arg(&cache).status().unwrap();
    assert!(made.success());
    build().status(0);
    assert_eq!(pings(&proxy.take_imgguards()), 1);
}

/// A build's image-ID file lives in `imgguard-<uid>` (private, kept) and is gone when the build
/// ends; where that directory is open to others, the build uses a directory of its own and
/// leaves nothing either.
#[test]
fn a_build_leaves_nothing_in_the_temporary_directory() {
    use std::os::unix::fs::PermissionsExt;
    let t = DockerTest::new("tmpdir");
    let tag = t.tag("a");
    let tmp = tempfile::tempdir().unwrap();
    let uid = rustix::process::getuid().as_raw();
    let private = tmp.path().join(format!("imgguard-{uid}"));
    let entries = |dir: &std::path::Path| -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    let build = || t.test().env("TMPDIR", tmp.path()).args(["build", "-q", "-t", &tag, "."]).run();
    build().status(0);
    assert_eq!(entries(tmp.path()), vec![format!("imgguard-{uid}")]);
    assert_eq!(entries(&private), Vec::<String>::new(), "the image-ID file is removed");
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    // Someone opened it to others: the build makes a directory of its own (which directory
    // is trusted is `host::private_dir`'s unit test) and leaves that one's mode alone.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o777)).unwrap();
    t.set_content("2");
    build().status(0);
    let mode = std::fs::metadata(&private).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o777);
    assert_eq!(
        entries(tmp.path()),
        vec![format!("imgguard-{uid}")],
        "its own directory is removed"
    );
    assert_eq!(entries(&private), Vec::<String>::new());
    let h = t.history(Some(&tag));
    assert_eq!(h[0]["entries"].as_array().map(Vec::len), Some(2), "both builds recorded: {h}");
    t.run(&["rmi", &tag]).status(0);
}
