//! The guard where it runs: a real `git push` to a local bare repository through the hook that
//! `imgguard hook install` wrote, and `pre-commit try-repo` with `.pre-commit-hooks.yaml`.

use std::path::Path;

use super::{git, git_may_fail, imgguard, isolated, write};
use crate::support::Run;

const BAD: &str = "#!/bin/sh\nset -e\ndocker save -o all.tar $(docker images -q)\n";
const GOOD: &str = "#!/bin/sh\nset -e\ndocker save -o all.tar app:1\n";

/// A repository `work/repo` with one pushed commit on `main`, and its remote `work/remote.git`.
fn repo_with_remote(work: &Path) -> std::path::PathBuf {
    let remote = work.join("remote.git");
    let repo = work.join("repo");
    std::fs::create_dir_all(&remote).unwrap();
    std::fs::create_dir_all(&repo).unwrap();
    git(&remote, &["init", "-q", "--bare", "-b", "main"]);
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["remote", "add", "origin", remote.to_str().unwrap()]);
    write(&repo, "README", "hello\n");
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    git(&repo, &["push", "-q", "origin", "main"]);
    repo
}

fn commit(repo: &Path, rel: &str, text: &str, message: &str) {
    write(repo, rel, text);
    git(repo, &["add", rel]);
    git(repo, &["commit", "-q", "-m", message]);
}

fn remote_head(repo: &Path, branch: &str) -> Option<String> {
    let out = git_may_fail(repo, &["ls-remote", "origin", &format!("refs/heads/{branch}")]);
    out.stdout.split_whitespace().next().map(str::to_string)
}

fn local_head(repo: &Path) -> String {
    git(repo, &["rev-parse", "HEAD"]).stdout.trim().to_string()
}

fn push(repo: &Path, args: &[&str]) -> Run {
    let mut all = vec!["push"];
    all.extend_from_slice(args);
    git_may_fail(repo, &all)
}

#[test]
fn push_through_the_installed_hook() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_with_remote(t.path());
    let out = imgguard(&repo, &["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    let hook = repo.join(".git/hooks/pre-push");
    assert_eq!(std::fs::read_to_string(&hook).unwrap(), imgguard::commands::hook::PRE_PUSH);

    // A commit that adds an ID-only save is refused, and the remote keeps its old head.
    let before = remote_head(&repo, "main").unwrap();
    commit(&repo, "scripts/release.sh", BAD, "release script");
    let out = push(&repo, &["origin", "main"]);
    assert_ne!(out.code, 0, "push should be refused: {out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("scripts/release.sh:3:24: error[IG001]"), "{said}");
    assert_eq!(remote_head(&repo, "main").unwrap(), before);

    // Fixed in a second commit: the pushed content is clean, the push goes through.
    commit(&repo, "scripts/release.sh", GOOD, "fix release script");
    let out = push(&repo, &["origin", "main"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(remote_head(&repo, "main").unwrap(), local_head(&repo));

    // A bad file only in the working tree (not committed) does not count.
    write(&repo, "scripts/release.sh", BAD);
    write(&repo, "scripts/untracked.sh", BAD);
    commit(&repo, "docs.txt", "docs\n", "docs");
    let out = push(&repo, &["origin", "main"]);
    assert_eq!(out.code, 0, "{out:?}");
    git(&repo, &["checkout", "-q", "--", "scripts/release.sh"]);
    std::fs::remove_file(repo.join("scripts/untracked.sh")).unwrap();

    // A new branch is compared with what the remote has: its own bad commit is refused...
    git(&repo, &["checkout", "-q", "-b", "feature"]);
    commit(&repo, "ci/clean.sh", "docker rmi -f app\n", "clean");
    let out = push(&repo, &["-u", "origin", "feature"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(format!("{}{}", out.stdout, out.stderr).contains("ci/clean.sh:1:1: error[IG002]"));
    assert_eq!(remote_head(&repo, "feature"), None);
    // ...while a new branch of commits the remote already has scans nothing and goes through,
    // even though the branch's history contains old findings elsewhere.
    git(&repo, &["checkout", "-q", "main"]);
    git(&repo, &["checkout", "-q", "-b", "copy"]);
    let out = push(&repo, &["origin", "copy"]);
    assert_eq!(out.code, 0, "{out:?}");

    // Deleting a branch scans nothing, even one whose tip has findings.
    git(&repo, &["checkout", "-q", "feature"]);
    let out = push(&repo, &["--no-verify", "origin", "feature"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(remote_head(&repo, "feature").is_some());
    let out = push(&repo, &["origin", "--delete", "feature"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(remote_head(&repo, "feature"), None);
}

#[test]
fn pre_push_reads_git_stdin_lines() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_with_remote(t.path());
    let base = local_head(&repo);
    commit(&repo, "a.sh", BAD, "bad");
    let tip = local_head(&repo);
    let zero = "0".repeat(40);
    let update = format!("refs/heads/main {tip} refs/heads/main {base}\n");
    let out = super::imgguard_stdin(&repo, &["check", "--pre-push", "--remote", "origin"], &update);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.starts_with("a.sh:3:24: error[IG001]"), "{}", out.stdout);
    // A delete line scans nothing; so does empty input.
    let delete = format!("(delete) {zero} refs/heads/main {tip}\n");
    assert_eq!(super::imgguard_stdin(&repo, &["check", "--pre-push"], &delete).code, 0);
    assert_eq!(super::imgguard_stdin(&repo, &["check", "--pre-push"], "\n").code, 0);
    // A new branch: only what origin/main does not have.
    let new = format!("refs/heads/x {tip} refs/heads/x {zero}\n");
    assert_eq!(super::imgguard_stdin(&repo, &["check", "--pre-push"], &new).code, 1);
    let old = format!("refs/heads/x {base} refs/heads/x {zero}\n");
    assert_eq!(super::imgguard_stdin(&repo, &["check", "--pre-push"], &old).code, 0);
    // Garbage is an error that names the line.
    let out = super::imgguard_stdin(&repo, &["check", "--pre-push"], "what\n");
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("pre-push input line 1"), "{}", out.stderr);
}

#[test]
fn hook_install_honours_hooks_path_and_chains() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_with_remote(t.path());
    git(&repo, &["config", "core.hooksPath", ".githooks"]);
    // Someone else's hook records what git gave it on stdin.
    write(
        &repo,
        ".githooks/pre-push",
        "#!/bin/sh\ncat > \"$(dirname \"$0\")/seen\"\necho \"$1\" >> \"$(dirname \"$0\")/seen\"\n",
    );
    make_executable(&repo.join(".githooks/pre-push"));
    let out = imgguard(&repo, &["hook", "install"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("pre-push.imgguard-chained"), "{}", out.stderr);
    assert!(repo.join(".githooks/pre-push.imgguard-chained").exists());
    // Installing twice is harmless and keeps the chain.
    assert_eq!(imgguard(&repo, &["hook", "install"]).code, 0);
    assert!(repo.join(".githooks/pre-push.imgguard-chained").exists());

    commit(&repo, "b.sh", BAD, "bad");
    let out = push(&repo, &["origin", "main"]);
    assert_ne!(out.code, 0, "{out:?}");
    let seen = std::fs::read_to_string(repo.join(".githooks/seen")).unwrap();
    assert!(seen.starts_with("refs/heads/main "), "chained hook got git's stdin: {seen}");
    assert!(seen.ends_with("origin\n"), "and its arguments: {seen}");

    // --replace drops the chained hook's place in front.
    let out = imgguard(&repo, &["hook", "install", "--replace"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        std::fs::read_to_string(repo.join(".githooks/pre-push")).unwrap(),
        imgguard::commands::hook::PRE_PUSH
    );
}

#[test]
fn hook_without_imgguard_on_path_says_how_to_install() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_with_remote(t.path());
    assert_eq!(imgguard(&repo, &["hook", "install"]).code, 0);
    commit(&repo, "c.sh", GOOD, "good");
    let out = isolated("git", &repo, &t.path().join(".home"))
        .args(["push", "origin", "main"])
        .env("PATH", "/usr/bin:/bin")
        .run();
    assert_ne!(out.code, 0, "fails closed: {out:?}");
    assert!(out.stderr.contains("imgguard is not on PATH"), "{}", out.stderr);
    assert!(out.stderr.contains("cargo install"), "{}", out.stderr);
}

#[cfg(unix)]
fn make_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) {}

/// pre-commit (https://pre-commit.com) must be installed: CI runs `pip install pre-commit`.
fn pre_commit() -> &'static str {
    let found = std::process::Command::new("pre-commit")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "pre-commit is not installed; install it with `pip install pre-commit` (CI does this in \
         .ci/run) and run the tests again"
    );
    "pre-commit"
}

#[test]
fn pre_commit_try_repo() {
    let program = pre_commit();
    let t = tempfile::tempdir().unwrap();
    // A hook repository holding only this crate's .pre-commit-hooks.yaml.
    let hooks = t.path().join("hooks-repo");
    std::fs::create_dir_all(&hooks).unwrap();
    git(&hooks, &["init", "-q", "-b", "main"]);
    let manifest = include_str!("../../.pre-commit-hooks.yaml");
    write(&hooks, ".pre-commit-hooks.yaml", manifest);
    git(&hooks, &["add", "."]);
    git(&hooks, &["commit", "-q", "-m", "hooks"]);

    let user = t.path().join("user");
    std::fs::create_dir_all(&user).unwrap();
    git(&user, &["init", "-q", "-b", "main"]);
    write(&user, "deploy.sh", BAD);
    write(&user, "ok.sh", GOOD);
    write(&user, "README.md", "docker rmi -f x\n");
    git(&user, &["add", "."]);

    let try_repo = |files: &[&str]| {
        isolated(program, &user, &t.path().join(".home"))
            .args(["try-repo", hooks.to_str().unwrap(), "imgguard", "--files"])
            .args(files)
            .env("PRE_COMMIT_HOME", t.path().join("pre-commit-cache"))
            .env("PRE_COMMIT_COLOR", "never")
            .run()
    };
    let out = try_repo(&["deploy.sh", "ok.sh"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.contains("deploy.sh:3:24: error[IG001]"), "{}", out.stdout);
    assert!(!out.stdout.contains("ok.sh:"), "{}", out.stdout);
    let out = try_repo(&["ok.sh", "README.md"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Passed"), "{}", out.stdout);
}

/// The hook is POSIX sh and ShellCheck-clean; so is the benchmark script. ShellCheck must be
/// installed (Debian: `apt-get install shellcheck`; CI does this in .ci/run).
#[test]
fn shell_scripts_are_shellcheck_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::process::Command::new("shellcheck")
        .args(["--shell=sh", "--severity=style"])
        .arg(root.join("hooks/pre-push"))
        .arg(root.join("bench/check-scale.sh"))
        .output();
    let out = out.unwrap_or_else(|e| {
        panic!("shellcheck is not installed ({e}); install it with `apt-get install shellcheck`")
    });
    assert!(
        out.status.success(),
        "shellcheck findings:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A script with a Latin-1 byte in a comment is scanned like any other: the push of a forced
/// removal in it is refused.
#[test]
fn push_of_a_latin1_script_with_a_finding_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let repo = repo_with_remote(t.path());
    assert_eq!(imgguard(&repo, &["hook", "install"]).code, 0);
    let before = remote_head(&repo, "main").unwrap();
    std::fs::create_dir_all(repo.join("ops")).unwrap();
    std::fs::write(
        repo.join("ops/purge.sh"),
        b"#!/bin/sh\n# nettoy\xe9 chaque nuit\ndocker rmi --force app:old\n",
    )
    .unwrap();
    git(&repo, &["add", "ops/purge.sh"]);
    git(&repo, &["commit", "-q", "-m", "purge"]);
    let out = push(&repo, &["origin", "main"]);
    assert_ne!(out.code, 0, "push should be refused: {out:?}");
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(said.contains("ops/purge.sh:3:1: error[IG002]"), "{said}");
    assert_eq!(remote_head(&repo, "main").unwrap(), before);
}
