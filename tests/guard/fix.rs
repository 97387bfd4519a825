//! `imgguard check --fix` and `--diff`: IG002 loses its `-f`, IG003 (only when named) becomes
//! `imgguard build`; nothing else in the file changes; re-running check finds nothing of what
//! was fixed; SARIF carries the same edits.

use super::{imgguard, write};

fn read(dir: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

const SCRIPT: &str = "#!/bin/sh\n# clean up, caf\u{e9} style\nset -e\ndocker rmi -f old:1   # keep comment\ndocker image rm --force a b\nsudo docker rmi \\\n  -f c\ndocker build -t app:1 .\ndocker save 0123456789ab > x.tar\n";

#[test]
fn bare_fix_drops_force_and_nothing_else() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "clean.sh", SCRIPT);
    let out = imgguard(t.path(), &["check", "--fix"]);
    assert_eq!(out.code, 1, "IG001 stays: {out:?}");
    assert!(out.stderr.contains("imgguard: fixed 3 findings in 1 file\n"), "{}", out.stderr);
    let want = SCRIPT
        .replace("docker rmi -f old:1", "docker rmi old:1")
        .replace("rm --force a b", "rm a b")
        .replace("  -f c\n", "  c\n");
    assert_eq!(read(t.path(), "clean.sh"), want);
    assert!(!out.stdout.contains("IG002"), "{}", out.stdout);
    assert!(out.stdout.contains("IG001"), "{}", out.stdout);
    // Run again: nothing of IG002 is left, IG003 was not touched (a bare --fix skips it).
    let again = imgguard(t.path(), &["check", "--fail-on", "note", "--format", "json"]);
    let rules: Vec<String> = serde_json::from_str::<serde_json::Value>(&again.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(rules, ["IG003", "IG001"]);
}

#[test]
fn fix_ig003_only_when_named() {
    let t = tempfile::tempdir().unwrap();
    write(
        t.path(),
        "b.sh",
        "docker build -t app:1 .\nsudo docker image build --pull -t x .\npodman build -t p .\n",
    );
    let out = imgguard(t.path(), &["check", "--fix=IG003", "--fail-on", "note"]);
    assert_eq!(out.code, 1, "podman has no imgguard build: {out:?}");
    assert_eq!(
        read(t.path(), "b.sh"),
        "imgguard build -t app:1 .\nsudo imgguard build --pull -t x .\npodman build -t p .\n"
    );
    let again = imgguard(t.path(), &["check", "--fail-on", "note"]);
    assert!(again.stdout.starts_with("b.sh:3:1: note[IG003]"), "{}", again.stdout);
    assert_eq!(again.stdout.matches("[IG003]").count(), 1);
}

#[test]
fn diff_prints_and_writes_nothing() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "ci/a.sh", "echo 1\ndocker rmi -f app\necho 2\n");
    let out = imgguard(t.path(), &["check", "--diff"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stdout,
        "--- a/ci/a.sh\n+++ b/ci/a.sh\n@@ -1,3 +1,3 @@\n echo 1\n-docker rmi -f app\n+docker rmi app\n echo 2\n"
    );
    assert_eq!(read(t.path(), "ci/a.sh"), "echo 1\ndocker rmi -f app\necho 2\n");
    assert!(
        out.stderr.contains("1 finding to fix in 1 file (--diff: nothing written)"),
        "{}",
        out.stderr
    );
}

#[test]
fn fixes_inside_make_and_yaml_keep_the_file() {
    let t = tempfile::tempdir().unwrap();
    let make = "IMAGE = app\nclean:\n\t@docker rmi -f $(IMAGE) || true\n";
    let wf = "on: push\njobs:\n  c:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n          docker rmi --force app\n          echo done\n";
    write(t.path(), "Makefile", make);
    write(t.path(), ".github/workflows/c.yml", wf);
    let out = imgguard(t.path(), &["check", "--fix"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(read(t.path(), "Makefile"), make.replace(" -f", ""));
    assert_eq!(read(t.path(), ".github/workflows/c.yml"), wf.replace(" --force", ""));
}

#[test]
fn rules_without_a_fix_are_refused() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "a.sh", "docker rmi -f app\n");
    let out = imgguard(t.path(), &["check", "--fix=IG001"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stderr,
        "imgguard: --fix: IG001 has no automatic fix (its message says what to do)\n"
    );
    let out = imgguard(t.path(), &["check", "--fix=IG009"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert!(out.stderr.contains("unknown rule `IG009`"), "{}", out.stderr);
    assert_eq!(read(t.path(), "a.sh"), "docker rmi -f app\n");
    let out = imgguard(t.path(), &["check", "--fix", "--staged"]);
    assert_eq!(out.code, 2, "{out:?}");
}

#[test]
fn sarif_carries_the_edits() {
    let t = tempfile::tempdir().unwrap();
    write(t.path(), "a.sh", "x=1; docker rmi -f app\n");
    let out = imgguard(t.path(), &["check", "--format", "sarif"]);
    let log: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let fix = &log["runs"][0]["results"][0]["fixes"][0];
    let change = &fix["artifactChanges"][0];
    assert_eq!(change["artifactLocation"]["uri"], "a.sh");
    let r = &change["replacements"][0];
    assert_eq!(
        r["deletedRegion"],
        serde_json::json!({"startLine": 1, "startColumn": 16, "endLine": 1, "endColumn": 19})
    );
    assert_eq!(r["insertedContent"]["text"], "");
}
