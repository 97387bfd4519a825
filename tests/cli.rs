//! Input errors: one line naming the problem, exit 2, nothing run and nothing written.

use std::os::unix::fs::PermissionsExt;

use crate::support::{Run, Test};

/// A directory with a fake `docker` that records that it ran, to prove docker never did.
struct FakeDocker {
    dir: tempfile::TempDir,
}

impl FakeDocker {
    fn new() -> FakeDocker {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("docker");
        std::fs::write(&script, "#!/bin/sh\necho ran >> \"$(dirname \"$0\")/ran\"\nexit 0\n")
            .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        FakeDocker { dir }
    }

    fn ran(&self) -> bool {
        self.dir.path().join("ran").exists()
    }

    fn run(&self, home: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let path = format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap());
        let mut t =
            Test::new().args(args).env("PATH", path).home(home).current_dir(self.dir.path());
        for (k, v) in env {
            t = t.env(k, v);
        }
        t.run()
    }
}

#[test]
fn invalid_tag_exits_2_before_docker_runs() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    let r = fake.run(home.path(), &["build", "-t", "App:v1", "."], &[]);
    r.assert_code(2);
    assert_eq!(
        r.stderr,
        "imgguard: invalid reference `App:v1`: repository name must be lowercase\n"
    );
    assert!(!fake.ran(), "docker must not run");
    assert!(!home.path().join("ledger.db").exists(), "nothing written");
}

#[test]
fn tag_option_without_value_is_an_error() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    let r = fake.run(home.path(), &["build", ".", "--tag"], &[]);
    r.assert_code(2);
    assert_eq!(r.stderr, "imgguard: docker build option `--tag` needs a value\n");
    assert!(!fake.ran());
}

#[test]
fn unreachable_daemon_is_one_line_and_exit_2() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    let r = fake.run(
        home.path(),
        &["build", "-t", "x:v1", "."],
        &[("DOCKER_HOST", "unix:///nonexistent.sock")],
    );
    r.assert_code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr.starts_with(
            "imgguard: cannot reach the Docker engine at unix:///nonexistent.sock: socket not found"
        ),
        "{}",
        r.stderr
    );
    assert!(!fake.ran());
}

#[test]
fn missing_context_is_named() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    let cfg = tempfile::tempdir().unwrap();
    let r = fake.run(
        home.path(),
        &["build", "-t", "x:v1", "."],
        &[("DOCKER_CONTEXT", "nope"), ("DOCKER_CONFIG", cfg.path().to_str().unwrap())],
    );
    r.assert_code(2);
    assert!(
        r.stderr.starts_with("imgguard: docker context `nope`: context not found"),
        "{}",
        r.stderr
    );
    assert!(!fake.ran());
}

#[test]
fn unknown_config_key_is_named_and_nothing_runs() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(fake.dir.path().join(".imgguard.yml"), "keep_prevous: true\n").unwrap();
    let r = fake.run(home.path(), &["build", "-t", "x:v1", "."], &[]);
    r.assert_code(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("unknown field `keep_prevous`"), "{}", r.stderr);
    assert!(!fake.ran());
}

#[test]
fn explicit_missing_config_file_is_an_error() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    let r = fake.run(home.path(), &["--config", "/nonexistent/cfg.yml", "history"], &[]);
    r.assert_code(2);
    assert!(r.stderr.starts_with("imgguard: /nonexistent/cfg.yml: "), "{}", r.stderr);
}

#[test]
fn history_without_a_ledger_is_empty_and_creates_nothing() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    let r = fake.run(home.path(), &["history", "--format", "json"], &[]);
    r.assert_code(0);
    assert_eq!(r.stdout.trim(), "[]");
    assert!(!home.path().join("ledger.db").exists());
}

#[test]
fn history_rejects_an_invalid_tag() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    let r = fake.run(home.path(), &["history", "Bad:tag"], &[]);
    r.assert_code(2);
    assert!(r.stderr.contains("`Bad:tag`"), "{}", r.stderr);
}

#[test]
fn unknown_subcommand_exits_2() {
    let fake = FakeDocker::new();
    let home = tempfile::tempdir().unwrap();
    fake.run(home.path(), &["frobnicate"], &[]).assert_code(2);
}

#[test]
fn color_is_asked_for_or_not_on_every_command_that_colours() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.sh"), "docker rmi -f app\n").unwrap();
    let run = |args: &[&str], no_color: Option<&str>| {
        let mut t = Test::new().args(args).current_dir(dir.path()).home(dir.path().join("h"));
        if let Some(v) = no_color {
            t = t.env("NO_COLOR", v);
        }
        t.run()
    };
    let always = run(&["check", "--color", "always", "a.sh"], None);
    always.status(1);
    assert!(always.stdout.contains("\x1b["), "{}", always.stdout);
    // An explicit --color always wins over NO_COLOR; auto (not a terminal here) never colours.
    assert!(run(&["--color", "always", "check", "a.sh"], Some("1")).stdout.contains("\x1b["));
    for args in [&["check", "--color", "never", "a.sh"][..], &["check", "a.sh"][..]] {
        let plain = run(args, None);
        plain.status(1);
        assert!(!plain.stdout.contains('\x1b'), "{args:?}: {}", plain.stdout);
        assert!(plain.stdout.contains("a.sh:1:1: error[IG002]"), "{}", plain.stdout);
    }
    let bad = run(&["check", "--color", "sometimes", "a.sh"], None);
    bad.status(2);
    assert!(bad.stderr.contains("sometimes"), "{}", bad.stderr);
}
