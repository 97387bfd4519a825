//! Files a repository controls, read by `imgguard check`: FIFOs, devices behind symbolic links,
//! huge or garbage configuration, bytes that are not UTF-8. Nothing hangs, nothing eats memory,
//! errors are one short line, and what was not read is said.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use super::{isolated, write};
use crate::support::Run;

const LIMIT: Duration = Duration::from_secs(20);

fn check(dir: &Path, args: &[&str]) -> Run {
    let home = dir.join(".home");
    isolated(crate::support::BIN, dir, &home).arg("check").args(args).timeout(LIMIT).run()
}

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo").arg(path).status().unwrap().success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_fifo_named_on_the_command_line_is_a_warning_not_a_hang() {
    let t = tempfile::tempdir().unwrap();
    mkfifo(&t.path().join("deploy.sh"));
    write(t.path(), "ok.sh", "docker rmi -f app\n");
    let out = check(t.path(), &["deploy.sh", "ok.sh"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr
            .contains("imgguard: warning: skipped deploy.sh: is a FIFO, not a regular file\n"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("ok.sh:1:1: error[IG002]"), "{}", out.stdout);
}

#[test]
fn a_fifo_in_the_tree_is_listed_with_verbose() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("ci")).unwrap();
    mkfifo(&t.path().join("ci/build.sh"));
    write(t.path(), "a.sh", "echo\n");
    let quiet = check(t.path(), &[]);
    assert_eq!(quiet.code, 0, "{quiet:?}");
    let out = check(t.path(), &["--verbose"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("imgguard: skipped ci/build.sh: is a FIFO, not a regular file\n"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_script_linked_to_dev_zero_is_not_read() {
    let t = tempfile::tempdir().unwrap();
    symlink("/dev/zero", t.path().join("zero.sh")).unwrap();
    write(t.path(), "a.sh", "echo\n");
    let out = check(t.path(), &["--verbose"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("imgguard: skipped zero.sh: is a symbolic link (not followed)\n"),
        "{}",
        out.stderr
    );
    // Named on the command line, the link is followed to the device, which is refused.
    let out = check(t.path(), &["zero.sh"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(
        out.stderr,
        "imgguard: warning: skipped zero.sh: is a character device, not a regular file\n\
         imgguard: no findings in 0 files\n"
    );
}

#[test]
fn a_config_linked_to_dev_zero_is_one_line_exit_2() {
    let t = tempfile::tempdir().unwrap();
    symlink("/dev/zero", t.path().join(".imgguard.yml")).unwrap();
    write(t.path(), "a.sh", "echo\n");
    let out = check(t.path(), &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.ends_with("is a character device, not a regular file\n"), "{}", out.stderr);
    assert!(out.stderr.contains(".imgguard.yml"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);

    let out = check(t.path(), &["--config", "/dev/zero"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        "imgguard: config /dev/zero: is a character device, not a regular file\n"
    );
}

#[test]
fn a_fifo_as_config_is_refused() {
    let t = tempfile::tempdir().unwrap();
    mkfifo(&t.path().join("conf.yml"));
    let out = check(t.path(), &["--config", "conf.yml"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stderr, "imgguard: config conf.yml: is a FIFO, not a regular file\n");
}

#[test]
fn garbage_config_gives_a_short_error_line() {
    let t = tempfile::tempdir().unwrap();
    // 10 MB: refused by size before parsing.
    let big: String = (0..10_000_000).map(|i| if i % 97 == 0 { '"' } else { 'x' }).collect();
    write(t.path(), "big.yml", &big);
    let out = check(t.path(), &["--config", "big.yml"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(out.stderr, "imgguard: config big.yml: is larger than 1 MiB\n");
    // Just under the limit, garbage the YAML parser rejects: its message is cut.
    let garbage = format!("check: [{}\n", "\"x\\q".repeat(200_000));
    write(t.path(), ".imgguard.yml", &garbage);
    let out = check(t.path(), &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.len() < 300, "{} bytes: {}", out.stderr.len(), &out.stderr[..300]);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    assert!(out.stderr.starts_with("imgguard: config "), "{}", out.stderr);
}

#[test]
fn a_config_that_is_not_utf8_is_one_line() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(t.path().join(".imgguard.yml"), b"protect: [\"caf\xe9\"]\n").unwrap();
    let out = check(t.path(), &[]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains(".imgguard.yml: is not valid UTF-8"), "{}", out.stderr);
}

#[test]
fn invalid_utf8_is_scanned_with_exact_positions() {
    let t = tempfile::tempdir().unwrap();
    std::fs::write(
        t.path().join("clean.sh"),
        b"#!/bin/sh\n# d\xe9ploiement \xff\xfe\necho \xe9t\xe9; docker rmi -f app\n",
    )
    .unwrap();
    let out = check(t.path(), &["--verbose"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stdout.starts_with("clean.sh:3:11: error[IG002]"), "{}", out.stdout);
    assert!(out.stderr.contains("imgguard: clean.sh: not valid UTF-8"), "{}", out.stderr);
    assert!(out.stderr.contains("in 1 file of 1 scanned"), "{}", out.stderr);
}

#[test]
fn a_huge_script_is_skipped_and_said() {
    let t = tempfile::tempdir().unwrap();
    let big = format!("docker rmi -f app\n{}", "# filler line\n".repeat(1_300_000));
    write(t.path(), "huge.sh", &big);
    let out = check(t.path(), &["huge.sh"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("imgguard: warning: skipped huge.sh: is larger than 16 MiB\n"),
        "{}",
        out.stderr
    );
}
