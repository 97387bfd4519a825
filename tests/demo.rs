//! The README's main job, `bash examples/hello/demo.sh`, does what its first screen says: the
//! tag's old images are removed, the lineage is shown, and no `<none>` image of the example is
//! left behind (its build-cache parent is freed after the grace by a prune of the example's
//! label). Docker only: the example is written for the docker CLI against its daemon.

use std::process::Command;

use crate::support::{docker, require_daemon, BIN};

const LABEL: &str = "label=org.opencontainers.image.title=imgguard hello example";

/// Removes the example's tag when the test ends, pass or fail (never forced).
struct RemoveTag;

impl Drop for RemoveTag {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "hello-imgguard:demo"]).output();
    }
}

#[test]
fn the_readme_demo_leaves_no_none_image_of_the_example() {
    require_daemon();
    let _cleanup = RemoveTag;
    let home = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/examples/hello/demo.sh"))
        .env("IMGGUARD", BIN)
        .env("IMGGUARD_HOME", home.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stderr.contains("removed sha256:"), "the rebuild removed the old image: {stderr}");
    assert!(stdout.contains("superseded: hello-imgguard:demo"), "the lineage: {stdout}");
    assert!(stdout.contains("build-cache"), "the parent explained: {stdout}");
    let left = docker(&["images", "-q", "--filter", "dangling=true", "--filter", LABEL]);
    assert_eq!(left.trim(), "", "no <none> image of the example is left: {stdout}");
    let tagged = docker(&["images", "-q", "--filter", LABEL, "hello-imgguard:demo"]);
    assert_eq!(tagged.trim().lines().count(), 1, "the tag points at one image");
}
