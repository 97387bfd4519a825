//! `explain`, `prune` and `rmi` against the real daemon. Prune runs only with the test's own
//! ledger (it removes only images that ledger can explain) or, with `--unknown`, restricted to the
//! test's own label, so it never touches another test's images or anyone else's.

use std::fs::OpenOptions;

use serde_json::Value;

use crate::support::{docker, docker_ok, engine, image_id, DockerTest, EngineKind};

/// The explain entries for these image IDs (other tests' images may be dangling too).
fn explain_entries(t: &DockerTest, ids: &[&str]) -> Vec<Value> {
    let r = t.run(&["explain", "--format", "json"]);
    r.assert_code(0);
    let all: Value = serde_json::from_str(&r.stdout).expect("explain JSON");
    let all = all.as_array().unwrap();
    ids.iter()
        .map(|id| {
            all.iter()
                .find(|e| e["image_id"] == *id)
                .unwrap_or_else(|| panic!("{id} not explained: {}", r.stdout))
                .clone()
        })
        .collect()
}

fn plain_build(t: &DockerTest, tag: &str) -> String {
    docker(&["build", "-q", "-t", tag, t.ctx.path().to_str().unwrap()]);
    image_id(tag).unwrap()
}

/// The three causes of `<none>` images, made with plain docker after imgguard has seen the tags (the
/// nameless load is covered with `imgguard load`), plus an image imgguard never saw.
#[test]
fn explain_classifies_the_three_causes() {
    let t = DockerTest::new("explain");
    // 1. Rebuild by plain docker: superseded, moved outside imgguard.
    let a = t.tag("a:v1");
    t.build(&["-t", &a]).assert_code(0);
    let a_old = image_id(&a).unwrap();
    t.set_content("a2");
    let a_new = plain_build(&t, &a);
    // 3. `docker rmi -f` of an image a running container uses: force-untagged.
    let b = t.tag("b:v1");
    t.set_content("b1");
    t.build(&["-t", &b]).assert_code(0);
    let b_id = image_id(&b).unwrap();
    let web = t.container(&b, "web", true);
    docker(&["rmi", "-f", &b]);
    // Podman's forced removal takes the containers that use the image with it: no `<none>`
    // image is left (the service is stopped instead), so there is no force-untagged image.
    let podman = engine() == EngineKind::Podman;
    if podman {
        assert!(image_id(&b_id).is_none(), "podman rmi -f removed the image");
        assert!(!docker_ok(&["container", "inspect", &web]), "and its container");
    }
    // Never seen by imgguard: unknown.
    let c = t.tag("c:v1");
    t.set_content("c1");
    let c_old = plain_build(&t, &c);
    t.set_content("c2");
    plain_build(&t, &c);

    let ids: &[&str] = if podman { &[&a_old, &c_old] } else { &[&a_old, &c_old, &b_id] };
    let e = explain_entries(&t, ids);
    assert_eq!(e[0]["cause"], "superseded");
    assert_eq!(e[0]["former_tags"], serde_json::json!([a]));
    assert!(e[0]["detail"].as_str().unwrap().contains(&a_new[..19]), "{}", e[0]);
    assert_eq!(e[0]["containers"], serde_json::json!([]));
    assert_eq!(e[1]["cause"], "unknown");
    assert_eq!(e[1]["removable"], false);
    if !podman {
        assert_eq!(e[2]["cause"], "force-untagged");
        assert_eq!(e[2]["containers"][0]["name"], web.as_str());
        assert_eq!(e[2]["containers"][0]["state"], "running");
        assert_eq!(e[2]["removable"], false);
        assert!(e[2]["reason"].as_str().unwrap().contains(&web));
    }
    // The JSON contract's fields and types.
    for entry in &e {
        for key in ["image_id", "cause", "created", "former_tags", "containers", "removable"] {
            assert!(entry.get(key).is_some(), "{key} missing in {entry}");
        }
        assert!(entry["size"].is_i64());
        assert!(entry["reason"].is_string() || entry["reason"].is_null());
        assert!(entry["created"].as_str().unwrap().ends_with('Z'));
    }
    // The ledger learnt the moves it did not make.
    let h = t.history(Some(&a));
    assert_eq!(h[0]["entries"][0]["event"], "moved-outside");
    assert_eq!(h[0]["entries"][0]["image_id"], a_new.as_str());

    // Human output names each cause.
    let r = t.run(&["explain"]);
    r.assert_code(0);
    let wanted: &[&str] = if podman {
        &["superseded", "unknown", &a_old[..19]]
    } else {
        &["superseded", "force-untagged", "unknown", &a_old[..19]]
    };
    for want in wanted {
        assert!(r.stdout.contains(want), "{want} in\n{}", r.stdout);
    }
}

/// The second cause: `docker save <ID>` writes an archive without names, and loading
/// it gives a `<none>` image. Loaded through imgguard, explain knows where it came from.
#[test]
fn explain_names_an_image_loaded_without_a_name() {
    let t = DockerTest::new("nameless");
    let tag = t.tag("x:v1");
    t.set_content("nameless");
    t.build(&["-t", &tag]).assert_code(0);
    let id = image_id(&tag).unwrap();
    let archive = t.home.path().join("by-id.tar");
    docker(&["save", "-o", archive.to_str().unwrap(), &id]);
    docker(&["rmi", &tag]);
    assert!(image_id(&id).is_none());
    let r = t.run(&["load", "-i", archive.to_str().unwrap()]);
    r.assert_code(0);
    let e = explain_entries(&t, &[&id]);
    assert_eq!(e[0]["cause"], "loaded-nameless", "{}", e[0]);
    assert!(e[0]["detail"].as_str().unwrap().contains("by-id.tar"), "{}", e[0]);
}

/// Builds `tag` `n` times with changing content, keeping every previous image; returns the IDs,
/// oldest first.
fn build_lineage(t: &DockerTest, tag: &str, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            t.set_content(&format!("{tag}-{i}"));
            t.run(&["build", "--keep-previous", "-q", "-t", tag, "."]).assert_code(0);
            image_id(tag).unwrap()
        })
        .collect()
}

fn ledger_dump(t: &DockerTest) -> Vec<(i64, String, Option<String>)> {
    let conn = rusqlite::Connection::open(t.home.path().join("ledger.db")).unwrap();
    let mut stmt = conn.prepare("SELECT seq, kind, image_id FROM events ORDER BY seq").unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn our_images(t: &DockerTest) -> Vec<String> {
    let filter = format!("label={}", t.label);
    let out = docker(&[
        "images",
        "-a",
        "--no-trunc",
        "--filter",
        &filter,
        "--format",
        "{{.ID}} {{.Repository}}:{{.Tag}}",
    ]);
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

#[test]
fn prune_keeps_what_is_needed_and_removes_the_rest() {
    let t = DockerTest::new("prune");
    std::fs::write(
        t.ctx.path().join(".imgguard.yml"),
        format!("protect:\n  - \"{}-p:*\"\n", t.name),
    )
    .unwrap();
    let r = build_lineage(&t, &t.tag("r:v1"), 4); // r0 r1 r2 superseded, r3 current
    let u = build_lineage(&t, &t.tag("u:v1"), 2); // u0 superseded, in use
    let p = build_lineage(&t, &t.tag("p:v1"), 2); // p0 superseded, protected
    t.container(&u[0], "user", false);

    // A plain docker rebuild the ledger must learn about before pruning.
    t.set_content("r-outside");
    let r_tag = t.tag("r:v1");
    let r4 = plain_build(&t, &r_tag);

    // --dry-run changes nothing: neither the images nor the ledger.
    let (images0, ledger0) = (our_images(&t), ledger_dump(&t));
    let dry = t.run(&["prune", "--dry-run", "--min-age", "0", "--keep", "1"]);
    dry.assert_code(0);
    assert!(dry.stdout.starts_with("would remove 3 of "), "{}", dry.stdout);
    assert_eq!(our_images(&t), images0);
    assert_eq!(ledger_dump(&t), ledger0);

    // The default --min-age (1h) spares everything made just now.
    let young = t.run(&["prune", "--format", "json"]);
    young.assert_code(0);
    let report: Value = serde_json::from_str(&young.stdout).unwrap();
    assert_eq!(report["dry_run"], false);
    assert_eq!(report["reclaimed_bytes"], 0);
    let mine: Vec<&Value> = report["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| r.iter().chain(&u).chain(&p).any(|id| i["image_id"] == id.as_str()))
        .collect();
    assert_eq!(mine.len(), 6, "{}", young.stdout);
    let young_reasons =
        mine.iter().filter(|i| i["reason"].as_str().unwrap().starts_with("younger than")).count();
    assert_eq!(young_reasons, 4, "r0, r1, r2, r3 are young; u0 in use, p0 protected");

    let run = t.run(&["prune", "--min-age", "0", "--keep", "1"]);
    run.assert_code(0);
    // r0, r1 and r2 (superseded by the build) and r3 (moved outside) are candidates: --keep 1
    // keeps the newest of them, r3.
    for gone in [&r[0], &r[1], &r[2]] {
        assert!(image_id(gone).is_none(), "{gone} should be pruned\n{}", run.stdout);
    }
    for kept in [&r[3], &u[0], &p[0], &r4, &u[1], &p[1]] {
        assert!(image_id(kept).is_some(), "{kept} should be kept\n{}", run.stdout);
    }
    assert!(run.stdout.contains("keep: used by container"), "{}", run.stdout);
    assert!(run.stdout.contains("keep: protected"), "{}", run.stdout);
    assert!(run.stdout.contains("keep: kept for rollback"), "{}", run.stdout);
    assert!(run.stdout.lines().last().unwrap().starts_with("reclaimed "), "{}", run.stdout);
    // Every removal is in the ledger.
    let removed: Vec<String> = ledger_dump(&t)
        .into_iter()
        .filter(|(_, kind, _)| kind == "removed")
        .filter_map(|(_, _, id)| id)
        .collect();
    for gone in [&r[0], &r[1], &r[2]] {
        assert!(removed.contains(gone), "{gone} not recorded as removed");
    }
}

#[test]
fn prune_unknown_removes_unexplained_images_and_spares_the_rest() {
    let t = DockerTest::new("unknown");
    let tag = t.tag("z:v1");
    t.set_content("z1");
    let old = plain_build(&t, &tag);
    t.set_content("z2");
    plain_build(&t, &tag);
    let label = t.label.clone();
    // Without --unknown the ledger cannot explain it: kept.
    t.run(&["prune", "--min-age", "0", "--label", &label]).assert_code(0);
    assert!(image_id(&old).is_some());
    // With --unknown, restricted to this test's label, it goes.
    let r = t.run(&["prune", "--min-age", "0", "--unknown", "--label", &label]);
    r.assert_code(0);
    assert!(image_id(&old).is_none(), "{}", r.stdout);
    assert!(image_id(&tag).is_some());
}

#[test]
fn a_second_prune_is_refused_while_one_runs() {
    let t = DockerTest::new("prunelock");
    std::fs::create_dir_all(t.home.path()).unwrap();
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(t.home.path().join("ledger.prune.lock"))
        .unwrap();
    lock.lock().unwrap();
    let r = t.run(&["prune", "--dry-run"]);
    r.assert_code(1);
    assert!(r.stderr.starts_with("imgguard: another imgguard prune is running"), "{}", r.stderr);
    lock.unlock().unwrap();
    t.run(&["prune", "--dry-run"]).assert_code(0);
}

#[test]
fn bad_min_age_is_an_error() {
    let t = DockerTest::new("badage");
    let r = t.run(&["prune", "--min-age", "soon"]);
    r.assert_code(2);
    assert_eq!(
        r.stderr,
        "imgguard: --min-age: invalid duration `soon` (use e.g. 90s, 30m, 1h, 2d)\n"
    );
}

#[test]
fn rmi_refuses_an_image_a_running_container_uses() {
    let t = DockerTest::new("rmi");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let id = image_id(&tag).unwrap();
    let web = t.container(&tag, "web", true);
    let r = t.run(&["rmi", &tag]);
    r.assert_code(1);
    assert!(
        r.stderr.contains(&format!("refusing to remove {tag}"))
            && r.stderr.contains(&format!("{web} (running)")),
        "{}",
        r.stderr
    );
    assert_eq!(image_id(&tag).as_deref(), Some(id.as_str()), "image and tag intact");

    // A second tag can go: the image keeps its first name.
    let extra = t.tag("x:extra");
    docker(&["tag", &tag, &extra]);
    let r = t.run(&["rmi", &extra]);
    r.assert_code(0);
    assert_eq!(r.stdout.trim(), format!("untagged {extra}"));
    assert!(image_id(&extra).is_none());
    assert!(image_id(&tag).is_some());
}

#[test]
fn rmi_removes_an_unused_image_and_records_it() {
    let t = DockerTest::new("rmiok");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let id = image_id(&tag).unwrap();
    let r = t.run(&["rmi", &tag]);
    r.assert_code(0);
    assert!(r.stdout.contains(&format!("untagged {tag}")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("removed {id}")), "{}", r.stdout);
    assert!(image_id(&id).is_none());
    let h = t.history(Some(&tag));
    assert_eq!(h[0]["entries"][0]["state"], "removed");
    // A missing image: exit 2, nothing done.
    let r = t.run(&["rmi", &t.tag("nope:v1")]);
    r.assert_code(2);
    assert!(r.stderr.starts_with("imgguard: no such image: "), "{}", r.stderr);
}
