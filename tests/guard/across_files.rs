//! What is resolved across files of the repository. `docker compose build` /
//! `docker-compose build`: the finding stands on the command's line and names the compose file
//! and service; silent without a compose file that gives a built service a fixed `image:`.
//! A wrapper function defined in a sourced file.

use super::{imgguard, write};

const COMPOSE: &str = "services:\n  web:\n    build: .\n    image: shop/web:dev\n  db:\n    image: postgres:16\n  worker:\n    build: ./worker\n    image: shop/worker:${TAG:-dev}\n";

fn check(files: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let t = tempfile::tempdir().unwrap();
    for (path, text) in files {
        write(t.path(), path, text);
    }
    let mut all = vec!["check", "--fail-on", "note"];
    all.extend_from_slice(args);
    let out = imgguard(t.path(), &all);
    (out.code, out.stdout)
}

#[test]
fn script_build_of_a_fixed_image() {
    let (code, out) =
        check(&[("compose.yaml", COMPOSE), ("ci/build.sh", "set -e\ndocker compose build\n")], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.starts_with(
            "ci/build.sh:2:1: note[IG003] `docker compose build` rebuilds `shop/web:dev` (service `web` in compose.yaml)"
        ),
        "{out}"
    );
}

#[test]
fn makefile_with_file_option_and_service() {
    let make = "images:\n\tdocker-compose -f deploy/stack.yml build --pull web\n";
    let (code, out) = check(&[("deploy/stack.yml", COMPOSE), ("Makefile", make)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("Makefile:2:2: note[IG003] `docker-compose build` rebuilds `shop/web:dev` (service `web` in deploy/stack.yml)"), "{out}");
}

#[test]
fn workflow_uses_the_root_compose_file() {
    let wf = "on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    steps:\n      - run: |\n          docker compose --progress plain build\n";
    let (code, out) =
        check(&[("docker-compose.yml", COMPOSE), (".github/workflows/ci.yml", wf)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with(".github/workflows/ci.yml:7:11: note[IG003]"), "{out}");
    assert!(out.contains("in docker-compose.yml"), "{out}");
}

#[test]
fn silent_without_a_fixed_image() {
    let script = ("build.sh", "docker compose build worker\ndocker compose build db\n");
    assert_eq!(check(&[("compose.yaml", COMPOSE), script], &[]).0, 0);
    assert_eq!(check(&[("build.sh", "docker compose build\n")], &[]).0, 0, "no compose file");
    let other = ("compose.yaml", "services:\n  web:\n    build: .\n");
    assert_eq!(check(&[other, ("build.sh", "docker compose build\n")], &[]).0, 0);
    let up = ("build.sh", "docker compose up -d\ndocker compose pull\n");
    assert_eq!(check(&[("compose.yaml", COMPOSE), up], &[]).0, 0);
}

#[test]
fn inline_ignore_and_rule_off_hold() {
    let ignored = ("build.sh", "docker compose build # imgguard ignore=IG003\n");
    assert_eq!(check(&[("compose.yaml", COMPOSE), ignored], &[]).0, 0);
    let off = (".imgguard.yml", "check:\n  rules:\n    IG003: off\n");
    let script = ("build.sh", "docker compose build\n");
    assert_eq!(check(&[("compose.yaml", COMPOSE), script, off], &[]).0, 0);
}

/// A wrapper defined in a sourced file of the repository counts like one in the same file.
#[test]
fn wrapper_from_a_sourced_file() {
    let lib = ("ci/lib/common.sh", "retry_cmd() {\n  local n=0\n  until \"$@\"; do n=$((n+1)); [ $n -ge 3 ] && return 1; done\n}\nsay() { echo \"$@\"; }\n");
    let script = "#!/bin/bash\n. \"$(dirname \"$0\")/lib/common.sh\"\nretry_cmd docker rmi -f app\nsay docker rmi -f app\nundefined_fn docker rmi -f app\n";
    let (code, out) = check(&[lib, ("ci/clean.sh", script)], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("ci/clean.sh:3:11: error[IG002]"), "{out}");
    assert_eq!(out.matches("[IG002]").count(), 1, "{out}");
    // `source lib.sh` relative to the root works too; without the source line, nothing.
    let root_lib = ("lib.sh", "with_retry_x() { for i in 1 2; do \"$@\" && break; done; }\n");
    let (code, out) =
        check(&[root_lib, ("b.sh", "source lib.sh\nwith_retry_x docker build -t a .\n")], &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("b.sh:2:14: note[IG003]"), "{out}");
    let (code, _) = check(&[root_lib, ("b.sh", "with_retry_x docker build -t a .\n")], &[]);
    assert_eq!(code, 0);
}
