//! `imgguard build` inside a GitHub Actions step: the outputs file, the job summary and the
//! annotations, against the real daemon (the action itself is tested by tests/action/run.sh).

use std::path::Path;

use crate::support::{docker, image_id, DockerTest, Run};

/// A build run as the runner would run it: `GITHUB_ACTIONS=true` and fresh output and summary
/// files (the runner gives every step its own).
fn build_in_step(t: &DockerTest, args: &[&str]) -> (Run, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("output");
    let summary = dir.path().join("summary");
    // imgguard's own options first, then docker's.
    let mut all = vec!["build"];
    all.extend_from_slice(args);
    all.extend(["-q", "."]);
    let o = t
        .cmd(&all)
        .env("GITHUB_ACTIONS", "true")
        .env("GITHUB_OUTPUT", &out)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .expect("run imgguard");
    let run = Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    };
    (run, read(&out), read(&summary))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn short(id: &str) -> &str {
    &id[..19]
}

#[test]
fn rebuild_writes_outputs_and_summary() {
    let t = DockerTest::new("ghrebuild");
    let tag = t.tag("x:v1");
    let (r, out, summary) = build_in_step(&t, &["-t", &tag]);
    r.assert_code(0);
    let first = image_id(&tag).unwrap();
    assert_eq!(
        out,
        format!(
            "image-id={first}\nprevious-image-ids={{\"{tag}\":null}}\nremoved-image-ids=[]\n\
             kept-image-ids=[]\n"
        )
    );
    assert!(summary.contains(&format!("| `{tag}` | (new) → `{}` | – |", short(&first))));
    // -q: stdout is still only docker's image ID.
    assert_eq!(r.stdout.trim(), first);

    t.set_content("2");
    let (r, out, summary) = build_in_step(&t, &["-t", &tag]);
    r.assert_code(0);
    let second = image_id(&tag).unwrap();
    assert!(image_id(&first).is_none(), "the superseded image is gone");
    assert_eq!(
        out,
        format!(
            "image-id={second}\nprevious-image-ids={{\"{tag}\":\"{first}\"}}\n\
             removed-image-ids=[\"{first}\"]\nkept-image-ids=[]\n"
        )
    );
    assert_eq!(
        summary,
        format!(
            "### imgguard build\n\n| Tag | Previous → new | Previous image |\n| --- | --- | --- |\n\
             | `{tag}` | `{}` → `{}` | removed |\n\n",
            short(&first),
            short(&second)
        )
    );
    assert!(!r.stderr.contains("::warning"), "nothing kept, no annotation: {}", r.stderr);
}

#[test]
fn kept_image_is_an_output_and_a_warning() {
    let t = DockerTest::new("ghkept");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    let name = t.tag("holder");
    docker(&["create", "--label", &t.label, "--name", &name, &tag]);
    t.set_content("2");
    let (r, out, summary) = build_in_step(&t, &["-t", &tag]);
    r.assert_code(0);
    assert!(image_id(&first).is_some(), "kept while a container uses it");
    assert!(out.contains(&format!("kept-image-ids=[\"{first}\"]\n")), "{out}");
    assert!(out.contains("removed-image-ids=[]\n"), "{out}");
    assert!(summary.contains(&format!("kept: used by container {name} (created)")), "{summary}");
    let warning = r.stderr.lines().find(|l| l.starts_with("::warning ")).expect("a warning");
    assert_eq!(
        warning,
        format!(
            "::warning title=imgguard kept an image::kept {first} (previously {tag}): used by \
             container {name} (created)"
        )
    );
}

#[test]
fn keep_previous_is_a_notice() {
    let t = DockerTest::new("ghnotice");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    t.set_content("2");
    let (r, out, _) = build_in_step(&t, &["--keep-previous", "-t", &tag]);
    r.assert_code(0);
    assert!(r.stderr.lines().any(|l| l.starts_with("::notice title=imgguard kept an image::")));
    assert!(!out.contains("kept-image-ids=[]"), "{out}");
}

#[test]
fn failed_build_writes_no_outputs() {
    let t = DockerTest::new("ghfail");
    t.write_dockerfile("COPY does-not-exist /x\n");
    let tag = t.tag("x:v1");
    let (r, out, summary) = build_in_step(&t, &["-t", &tag]);
    assert_ne!(r.code, 0);
    assert_eq!((out.as_str(), summary.as_str()), ("", ""));
}

#[test]
fn outside_actions_nothing_is_written() {
    let t = DockerTest::new("ghoutside");
    let tag = t.tag("x:v1");
    let r = t.build(&["-t", &tag]);
    r.assert_code(0);
    assert!(!r.stderr.contains("::"), "{}", r.stderr);
}
