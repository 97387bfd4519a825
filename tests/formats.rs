//! The JSON documents scripts read instead of text: `build --report FILE`, and `--format json`
//! on `save`, `load` and `rmi` (one document on stdout). Real daemon.

use serde_json::Value;

use crate::support::{docker, image_id, DockerTest};

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}"))
}

#[test]
fn build_report_has_the_outputs_facts() {
    let t = DockerTest::new("report");
    let tag = t.tag("app:v1");
    let report = t.home.path().join("report.json");
    let report_arg = report.to_str().unwrap();
    t.run(&["build", "--report", report_arg, "-q", "-t", &tag, "."]).status(0);
    let first = image_id(&tag).unwrap();
    let r: Value = json(&std::fs::read_to_string(&report).unwrap());
    assert_eq!(r["image_id"], first.as_str());
    assert!(r["previous_image_ids"][&tag].is_null(), "{r}");
    t.container(&tag, "web", true);
    t.set_content("2");
    let run = t.run(&["build", "--report", report_arg, "-q", "-t", &tag, "."]);
    run.status(0);
    // stdout stays docker's: only the ID (Podman's build prints it without `sha256:`).
    let new = image_id(&tag).unwrap();
    assert_eq!(run.stdout.trim().trim_start_matches("sha256:"), new.trim_start_matches("sha256:"));
    let r: Value = json(&std::fs::read_to_string(&report).unwrap());
    assert_eq!(r["previous_image_ids"][&tag], first.as_str());
    assert_eq!(r["kept_image_ids"], serde_json::json!([first]));
    assert_eq!(r["kept"][0]["reason_kind"], "in-use");
    assert_eq!(r["removed_image_ids"], serde_json::json!([]));
}

#[test]
fn build_report_into_a_directory_is_refused_before_docker_runs() {
    let t = DockerTest::new("reportdir");
    let home = t.home.path().to_str().unwrap();
    let run = t.run(&["build", "--report", home, "-q", "-t", &t.tag("a:1"), "."]);
    run.status(2);
    assert_eq!(
        run.stderr,
        format!("imgguard: --report {}: is a directory\n", t.home.path().display())
    );
    assert!(image_id(&t.tag("a:1")).is_none(), "docker never ran");
}

#[test]
fn save_and_load_say_what_they_did_in_json() {
    let t = DockerTest::new("fmtsave");
    let tag = t.tag("app:v1");
    t.build(&["-t", &tag]).status(0);
    let id = image_id(&tag).unwrap();
    let archive = t.home.path().join("a.tar");
    let archive_arg = archive.to_str().unwrap();
    let run = t.run(&["save", "--format", "json", "-o", archive_arg, &tag]);
    run.status(0);
    let s = json(&run.stdout);
    assert_eq!(s["saved"], true);
    assert_eq!(s["archive"], archive_arg);
    assert_eq!(s["images"][0]["image_id"], id.as_str());
    assert_eq!(s["images"][0]["tags"], serde_json::json!([tag]));
    assert_eq!(s["size"], std::fs::metadata(&archive).unwrap().len());
    let sha = s["sha256"].as_str().unwrap().to_string();

    // A save by ID is refused, in JSON too, with the command that keeps the name.
    let run = t.run(&["save", "--format", "json", "-o", archive_arg, &id]);
    run.status(1);
    let r = json(&run.stdout);
    assert_eq!(r["saved"], false);
    assert_eq!(r["refused"], serde_json::json!([id]));
    assert!(r["suggestion"].as_str().unwrap().contains(&tag), "{r}");

    docker(&["rmi", &tag]);
    let run = t.run(&["load", "--format", "json", "-i", archive_arg]);
    run.status(0);
    let l = json(&run.stdout);
    assert_eq!(l["sha256"], sha.as_str());
    assert_eq!(l["images"][0]["image_id"], id.as_str());
    assert_eq!(l["images"][0]["nameless"], false);
    assert_eq!(l["placed"][0]["tag"], tag.as_str());
    assert_eq!(l["placed"][0]["how"], "loaded");

    // Without -o the archive is stdout: JSON cannot go there too.
    let run = t.run(&["save", "--format", "json", &tag]);
    run.status(2);
    run.stderr(
        "imgguard: --format json needs -o FILE: without it the archive itself goes to stdout\n",
    );
}

#[test]
fn rmi_reports_each_reference_in_json() {
    let t = DockerTest::new("fmtrmi");
    let tag = t.tag("app:v1");
    let alias = t.tag("app:alias");
    t.build(&["-t", &tag]).status(0);
    docker(&["tag", &tag, &alias]);
    let id = image_id(&tag).unwrap();
    let run = t.run(&["rmi", "--format", "json", &alias]);
    run.status(0);
    let r = json(&run.stdout);
    assert_eq!(r[0]["action"], "untagged");
    assert_eq!(r[0]["image_id"], id.as_str());
    assert_eq!(r[0]["untagged"], serde_json::json!([alias]));
    t.container(&tag, "web", true);
    let run = t.run(&["rmi", "--format", "json", &tag]);
    run.status(1);
    let r = json(&run.stdout);
    assert_eq!(r[0]["action"], "refused");
    assert!(r[0]["reason"].as_str().unwrap().starts_with("used by container"), "{r}");
    assert!(image_id(&tag).is_some(), "refused: nothing removed");
}
