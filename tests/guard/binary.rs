//! `imgguard check` as a process: exit codes, the JSON / SARIF / GitHub / human formats,
//! configuration, .gitignore and `--staged`.

use super::{git, imgguard, write};

const SAVE_BY_ID: &str = "#!/bin/sh\nids=$(docker images -q)\ndocker save -o all.tar $ids\n";

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn clean_tree_exits_0() {
    let t = tmp();
    write(t.path(), "ok.sh", "docker save -o a.tar app:1\n");
    write(t.path(), "README.md", "docker rmi -f x\n");
    let out = imgguard(t.path(), &["check"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout, "");
    assert_eq!(out.stderr, "imgguard: no findings in 1 file\n");
}

#[test]
fn exit_codes_follow_fail_on() {
    let t = tmp();
    write(t.path(), "a.sh", "docker build -t app .\n"); // IG003, a note
    assert_eq!(imgguard(t.path(), &["check"]).code, 0, "a note does not fail by default");
    assert_eq!(imgguard(t.path(), &["check", "--fail-on", "note"]).code, 1);
    write(t.path(), "b.sh", "docker system prune -a\n"); // IG004, a warning
    assert_eq!(imgguard(t.path(), &["check"]).code, 1, "warning is the default threshold");
    assert_eq!(imgguard(t.path(), &["check", "--fail-on", "error"]).code, 0);
    write(t.path(), "c.sh", "docker rmi -f app\n"); // IG002, an error
    assert_eq!(imgguard(t.path(), &["check", "--fail-on", "error"]).code, 1);
    let bad = imgguard(t.path(), &["check", "--fail-on", "fatal"]);
    assert_eq!(bad.code, 2, "{bad:?}");
}

#[test]
fn missing_path_exits_2_naming_it() {
    let t = tmp();
    let out = imgguard(t.path(), &["check", "no/such/dir"]);
    assert_eq!(out.code, 2);
    assert_eq!(out.stderr, "imgguard: no/such/dir: No such file or directory (os error 2)\n");
    assert_eq!(out.stdout, "");
}

#[test]
fn unknown_rule_in_config_exits_2() {
    let t = tmp();
    write(t.path(), ".imgguard.yml", "check:\n  rules:\n    IG009: off\n");
    write(t.path(), "a.sh", "echo\n");
    let out = imgguard(t.path(), &["check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown rule `IG009`"), "{}", out.stderr);
    assert!(out.stderr.contains(".imgguard.yml"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn unknown_key_in_check_section_exits_2() {
    let t = tmp();
    write(t.path(), ".imgguard.yml", "check:\n  exclude: []\n  rule: {}\n");
    let out = imgguard(t.path(), &["check"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("unknown field `rule`"), "{}", out.stderr);
}

#[test]
fn unknown_rule_in_inline_ignore_exits_2() {
    let t = tmp();
    write(t.path(), "x/a.sh", "docker rmi -f x # imgguard ignore=IG2\n");
    let out = imgguard(t.path(), &["check", "x"]);
    assert_eq!(out.code, 2);
    assert_eq!(
        out.stderr,
        "imgguard: a.sh:1: unknown rule `IG2` in `imgguard ignore=` (known: IG001, IG002, IG003, \
         IG004)\n"
    );
}

#[test]
fn json_contract() {
    let t = tmp();
    let root = t.path().join("repo");
    write(&root, "ci/deploy.sh", SAVE_BY_ID);
    write(
        &root,
        ".github/workflows/ci.yml",
        "jobs:\n  b:\n    steps:\n      - run: |\n          docker build \\\n            -t app .\n",
    );
    let out = imgguard(t.path(), &["check", "--format", "json", "--fail-on", "note", "repo"]);
    assert_eq!(out.code, 1, "{out:?}");
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 2, "{v:#}");
    assert_eq!(
        items[0],
        serde_json::json!({
            "rule": "IG003",
            "severity": "note",
            "path": ".github/workflows/ci.yml",
            "line": 5,
            "column": 11,
            "end_line": 6,
            "message": "`docker build -t app` moves the tag; the image it pointed to is left as <none>:<none>",
            "fix": imgguard::core::guard::RuleId::Ig003.info().fix,
        })
    );
    assert_eq!(items[1]["rule"], "IG001");
    assert_eq!(items[1]["severity"], "error");
    assert_eq!(items[1]["path"], "ci/deploy.sh");
    assert_eq!((items[1]["line"].as_u64(), items[1]["column"].as_u64()), (Some(3), Some(24)));
    assert_eq!(items[1]["end_line"], 3);
    assert!(items[1]["message"].as_str().unwrap().contains("`$ids`"), "{v:#}");
}

#[test]
fn sarif_is_valid_2_1_0() {
    // The committed file is the official schema, byte for byte. Its `run.language` pattern
    // has a lone `]`, a literal in ECMA-262 regexes (the dialect JSON Schema names) but a
    // syntax error for Rust's regex engine; escaping it keeps the same meaning.
    let text = include_str!("../sarif-2.1.0.json");
    let ecma = r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$""#;
    assert!(text.contains(ecma), "the schema's language pattern changed");
    let text = text.replace(ecma, r#""^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$""#);
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let validator = jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the committed schema compiles");
    let t = tmp();
    write(t.path(), "ci/deploy.sh", SAVE_BY_ID);
    write(t.path(), "ci/with space.sh", "docker system prune -af\n");
    write(t.path(), ".gitlab-ci.yml", "b:\n  script:\n    - docker build -t app .\n");
    let out = imgguard(t.path(), &["check", "--format", "sarif"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let log: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let errors: Vec<String> = validator.iter_errors(&log).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "SARIF does not match the 2.1.0 schema: {errors:#?}");
    let run = &log["runs"][0];
    assert_eq!(log["version"], "2.1.0");
    assert_eq!(run["tool"]["driver"]["name"], "imgguard");
    let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
    assert_eq!(rules.len(), imgguard::core::guard::RULES.len());
    let fixes = &results_with_fixes(&log);
    assert_eq!(fixes, &[".gitlab-ci.yml"], "the IG003 rebuild carries its fix");
    let base = run["originalUriBaseIds"]["%SRCROOT%"]["uri"].as_str().unwrap();
    assert!(base.starts_with("file:///") && base.ends_with('/'), "{base}");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    // What GitHub code scanning needs on every result.
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"];
        let uri = loc["artifactLocation"]["uri"].as_str().unwrap();
        assert!(!uri.starts_with('/') && !uri.contains("://"), "relative URI: {uri}");
        assert_eq!(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert!(loc["region"]["startLine"].as_u64().unwrap() >= 1);
        let id = r["ruleId"].as_str().unwrap();
        let index = usize::try_from(r["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(run["tool"]["driver"]["rules"][index]["id"], id);
    }
    let uris: Vec<&str> = results
        .iter()
        .map(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, [".gitlab-ci.yml", "ci/deploy.sh", "ci/with%20space.sh"]);
    // A clean run is valid SARIF too.
    let clean = tmp();
    let out = imgguard(clean.path(), &["check", "--format", "sarif"]);
    assert_eq!(out.code, 0);
    let log: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(validator.is_valid(&log));
    assert_eq!(log["runs"][0]["results"], serde_json::json!([]));
    // And the validator does reject what GitHub would reject.
    let mut broken = log.clone();
    broken["version"] = "2.0.0".into();
    assert!(!validator.is_valid(&broken));
}

#[test]
fn github_annotations() {
    let t = tmp();
    write(t.path(), "a.sh", "echo\ndocker rmi -f app\ndocker build -t app .\n");
    let out = imgguard(t.path(), &["check", "--format", "github"]);
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(
        lines[0].starts_with(
            "::error file=a.sh,line=2,col=1,endLine=2,title=IG002::forced image removal `docker rmi -f`"
        ),
        "{}",
        lines[0]
    );
    assert!(lines[1].starts_with("::notice file=a.sh,line=3,col=1,endLine=3,title=IG003::"));
}

/// GitHub resolves `file=` against the workspace: a scan of a subdirectory still names the file
/// from the working directory, while JSON paths stay relative to the scanned root.
#[test]
fn github_annotations_of_a_subdirectory_name_the_file_from_the_workspace() {
    let t = tmp();
    write(t.path(), "scripts/backup.sh", "docker rmi -f app\n");
    let out = imgguard(t.path(), &["check", "--format", "github", "scripts"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.starts_with("::error file=scripts/backup.sh,line=1,"), "{}", out.stdout);
    let out = imgguard(t.path(), &["check", "--format", "json", "scripts"]);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(json[0]["path"], "backup.sh");
}

#[test]
fn human_format() {
    let t = tmp();
    write(t.path(), "deploy.sh", SAVE_BY_ID);
    let out = imgguard(t.path(), &["check"]);
    assert_eq!(out.code, 1);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        "deploy.sh:3:24: error[IG001] `docker save` of image IDs from `$ids`: the archive keeps \
         no name:tag, so it loads back as <none>:<none>"
    );
    assert_eq!(lines[1], "3 | docker save -o all.tar $ids");
    assert_eq!(lines[2], "  |                        ^");
    assert!(lines[3].starts_with("  = fix: save by name:tag"), "{}", lines[3]);
    assert!(!out.stdout.contains('\x1b'), "no colour when stdout is not a terminal");
    assert_eq!(
        out.stderr,
        "imgguard: 1 finding (1 error, 0 warnings, 0 notes) in 1 file of 1 scanned\n"
    );
}

#[test]
fn config_changes_severity_disables_and_excludes() {
    let t = tmp();
    write(
        t.path(),
        ".imgguard.yml",
        "version: 1\ncheck:\n  rules:\n    IG003: error\n    IG002: off\n  exclude: [\"vendor/\", \"legacy/*.sh\"]\n",
    );
    write(t.path(), "a.sh", "docker rmi -f x\ndocker build -t app .\n");
    write(t.path(), "vendor/lib/b.sh", "docker system prune -a\n");
    write(t.path(), "legacy/c.sh", "docker system prune -a\n");
    write(t.path(), "legacy/keep/d.sh", "docker system prune -a\n");
    let out = imgguard(t.path(), &["check", "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let got: Vec<(String, String, String)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["rule"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("a.sh".into(), "IG003".into(), "error".into()),
            ("legacy/keep/d.sh".into(), "IG004".into(), "warning".into()),
        ]
    );
}

#[test]
fn gitignore_is_honoured_in_a_repository() {
    let t = tmp();
    let repo = t.path().join("r");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    write(&repo, ".gitignore", "build/\n");
    write(&repo, "build/gen.sh", "docker rmi -f x\n");
    write(&repo, "scripts/ok.sh", "docker rmi app\n");
    let out = imgguard(&repo, &["check"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    // Named on the command line, an ignored file is read anyway (pre-commit passes files).
    let out = imgguard(&repo, &["check", "build/gen.sh"]);
    assert_eq!(out.code, 1);
    assert!(out.stdout.starts_with("build/gen.sh:1:1: error[IG002]"), "{}", out.stdout);
}

#[test]
fn staged_scans_the_index_not_the_working_tree() {
    let t = tmp();
    let repo = t.path().join("r");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    write(&repo, "README", "x\n");
    git(&repo, &["add", "README"]);
    git(&repo, &["commit", "-q", "-m", "init"]);
    // Staged bad, working tree fixed: the commit would carry the bad line.
    write(&repo, "ci/release.sh", SAVE_BY_ID);
    git(&repo, &["add", "ci/release.sh"]);
    write(&repo, "ci/release.sh", "docker save -o all.tar app:1\n");
    let out = imgguard(&repo, &["check", "--staged", "--format", "json"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["path"], "ci/release.sh");
    assert_eq!(v[0]["line"], 3);
    // Staged good, working tree bad: nothing in the commit to refuse.
    git(&repo, &["add", "ci/release.sh"]);
    write(&repo, "ci/release.sh", SAVE_BY_ID);
    let out = imgguard(&repo, &["check", "--staged"]);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{}", out.stderr);
    // And the working-tree scan does see it.
    assert_eq!(imgguard(&repo, &["check"]).code, 1);
}

#[test]
fn staged_outside_a_repository_exits_2() {
    let t = tmp();
    let out = imgguard(t.path(), &["check", "--staged"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("is not inside a git repository"), "{}", out.stderr);
}

/// The URIs of the results that carry SARIF `fixes`.
fn results_with_fixes(log: &serde_json::Value) -> Vec<String> {
    log["runs"][0]["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.get("fixes").is_some())
        .map(|r| {
            r["fixes"][0]["artifactChanges"][0]["artifactLocation"]["uri"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}
