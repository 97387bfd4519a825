//! `imgguard ledger stats|compact|export|import`: the JSON Lines contract, round trips,
//! idempotent and all-or-nothing imports, and a compaction that keeps what the daemon's images
//! need (against the real daemon).

use serde_json::Value;

use crate::support::{image_id, DockerTest, Test};

fn export(home: &std::path::Path) -> Vec<String> {
    let r = Test::new().home(home).args(["ledger", "export"]).run();
    r.assert_code(0);
    r.stdout.lines().map(str::to_string).collect()
}

fn import(home: &std::path::Path, lines: &[String]) -> crate::support::Run {
    let mut text = lines.join("\n");
    text.push('\n');
    Test::new().home(home).args(["ledger", "import", "-"]).stdin(text).run()
}

fn stats(home: &std::path::Path) -> Value {
    let r = Test::new().home(home).args(["ledger", "stats", "--format", "json"]).run();
    r.assert_code(0);
    serde_json::from_str(&r.stdout).expect("stats JSON")
}

fn explain_json(home: &std::path::Path, ids: &[&str]) -> Vec<Value> {
    let r = Test::new().home(home).args(["explain", "--format", "json"]).run();
    r.assert_code(0);
    let all: Value = serde_json::from_str(&r.stdout).unwrap();
    all.as_array()
        .unwrap()
        .iter()
        .filter(|e| ids.iter().any(|id| e["image_id"] == *id))
        .cloned()
        .collect()
}

/// Every line carries the contract's fields; export → import into an empty ledger → export gives
/// the same lines; importing again adds nothing.
#[test]
fn export_import_round_trips_and_is_idempotent() {
    let t = DockerTest::new("ledger-rt");
    let tag = t.tag("app:v1");
    t.run(&["build", "--keep-previous", "-q", "-t", &tag, "."]).assert_code(0);
    t.set_content("2");
    t.run(&["build", "--keep-previous", "-q", "-t", &tag, "."]).assert_code(0);
    let lines = export(t.home.path());
    let kinds: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["kind"].as_str().unwrap().to_string())
        .filter(|k| k != "intent")
        .collect();
    assert_eq!(kinds, ["build", "build", "kept"], "two builds and the fate of the first image");
    assert_eq!(lines.len(), 7, "and each build run's intent and end: {lines:?}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["kind"] == "kept" {
            assert_eq!(v["reason_kind"], "keep-previous");
            continue;
        }
        assert_eq!(v["schema"], 1);
        assert_eq!(v["id"].as_str().unwrap().len(), 32, "{line}");
        assert!(!v["engine"].as_str().unwrap().is_empty());
        let at = v["at"].as_str().unwrap();
        assert!(at.len() == 24 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "{at}");
        if v["kind"] == "intent" {
            continue;
        }
        assert_eq!(v["kind"], "build");
        assert_eq!(v["tag"], tag.as_str());
        assert!(v["image_id"].as_str().unwrap().starts_with("sha256:"));
    }
    let first_build = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["kind"] == "build")
        .unwrap();
    assert_eq!(first_build["previous_id"], Value::Null);

    let copy = tempfile::tempdir().unwrap();
    import(copy.path(), &lines)
        .status(0)
        .stderr("imgguard: imported 7 events from - (0 already in the ledger)\n");
    assert_eq!(export(copy.path()), lines);
    import(copy.path(), &lines)
        .status(0)
        .stderr("imgguard: imported 0 events from - (7 already in the ledger)\n");
    assert_eq!(export(copy.path()), lines);
    let s = stats(copy.path());
    assert_eq!(
        (s["events"].as_i64(), s["tags"].as_i64(), s["engines"].as_i64()),
        (Some(7), Some(1), Some(1))
    );
    let first: Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(s["oldest_event"], first["at"]);
    assert!(s["size_bytes"].as_u64().unwrap() > 0);
}

/// A bad line is named (file:line), exit 2, and nothing of the file is imported.
#[test]
fn bad_import_input_is_named_and_nothing_is_imported() {
    let home = tempfile::tempdir().unwrap();
    let good = r#"{"schema":1,"id":"a1","engine":"E","at":"2026-01-01T00:00:00.000Z","kind":"build","tag":"x:v1","image_id":"sha256:a","imgguard_version":"0.1.0"}"#;
    let file = home.path().join("in.jsonl");
    std::fs::write(&file, format!("{good}\n{}\nnot json\n", good.replace("a1", "a2"))).unwrap();
    let r = Test::new().home(home.path()).args(["ledger", "import"]).arg(&file).run();
    r.status(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.starts_with(&format!("imgguard: {}:3: not a JSON object", file.display())));
    assert_eq!(stats(home.path())["events"], 0, "all or nothing");

    let newer = good.replace(r#""schema":1"#, r#""schema":7"#);
    std::fs::write(&file, format!("{good}\n{newer}\n")).unwrap();
    let r = Test::new().home(home.path()).args(["ledger", "import"]).arg(&file).run();
    r.status(2).stderr(&format!(
        "imgguard: {}:2: schema 7 is newer than this imgguard reads (1); upgrade imgguard\n",
        file.display()
    ));
    assert_eq!(stats(home.path())["events"], 0);

    Test::new()
        .home(home.path())
        .args(["ledger", "compact", "--older-than", "6 moons"])
        .run()
        .status(2)
        .stderr("imgguard: --older-than: invalid duration `6 moons` (use e.g. 90s, 30m, 1h, 2d)\n");
}

/// History older than the cut goes, but never a tag's current state nor the evidence for an
/// image the daemon still has: `explain` says the same before and after.
#[test]
fn compact_keeps_current_state_and_the_daemons_evidence() {
    let t = DockerTest::new("ledger-compact");
    let tag = t.tag("app:v1");
    t.run(&["build", "--keep-previous", "-q", "-t", &tag, "."]).assert_code(0);
    let old = image_id(&tag).unwrap();
    t.set_content("2");
    t.run(&["build", "--keep-previous", "-q", "-t", &tag, "."]).assert_code(0);
    let new = image_id(&tag).unwrap();
    let engine = serde_json::from_str::<Value>(&export(t.home.path())[0]).unwrap()["engine"]
        .as_str()
        .unwrap()
        .to_string();

    // The same history (its builds and fates; the runs' intents aside), as if made in 2020, plus
    // a tag whose images the daemon never had.
    let mut lines: Vec<String> = export(t.home.path())
        .iter()
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["kind"] != "intent")
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v["at"] = "2020-01-01T00:00:00.000Z".into();
            v.to_string()
        })
        .collect();
    let gone = t.tag("gone:v1");
    for i in 0..5 {
        lines.push(
            serde_json::json!({
                "schema": 1, "id": format!("gone{i}"), "engine": engine,
                "at": format!("2020-01-0{}T00:00:00.000Z", i + 1), "kind": "build",
                "tag": gone, "image_id": format!("sha256:{i:064}"), "imgguard_version": "0.1.0",
            })
            .to_string(),
        );
    }
    // What explain says with the whole history (in a copy)…
    let whole = tempfile::tempdir().unwrap();
    import(whole.path(), &lines).status(0);
    let before = explain_json(whole.path(), &[&old]);
    assert_eq!(before.len(), 1, "the kept image is explained");
    assert_eq!(before[0]["cause"], "superseded");

    // …and after a compaction that drops everything older than 30 days it may drop.
    let home = tempfile::tempdir().unwrap();
    import(home.path(), &lines).status(0);
    let r = Test::new().home(home.path()).args(["ledger", "compact", "--older-than", "30d"]).run();
    r.status(0);
    assert!(r.stderr.starts_with("imgguard: dropped 4 events"), "{}", r.stderr);
    assert_eq!(stats(home.path())["events"].as_i64(), Some(4));
    let states = |tag: &str| {
        let r = Test::new().home(home.path()).args(["history", "--format", "json", tag]).run();
        let v: Value = serde_json::from_str(&r.stdout).unwrap();
        v[0]["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let state = e["state"].as_str().unwrap().to_string();
                (e["image_id"].as_str().unwrap().to_string(), state)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        states(&gone),
        [(format!("sha256:{:064}", 4), "current".to_string())],
        "a tag's current state stays, even when the daemon lacks its image"
    );
    assert_eq!(
        states(&tag),
        [(new, "current".to_string()), (old.clone(), "kept".to_string())],
        "the daemon has both images: both entries stay"
    );
    assert_eq!(explain_json(home.path(), &[&old]), before, "explain has what it needs");
}

/// `ledger.retention` in the configuration: `explain` compacts, at most once a day.
#[test]
fn retention_is_applied_at_most_once_a_day() {
    let t = DockerTest::new("ledger-retention");
    t.build(&["-t", &t.tag("app:v1")]).assert_code(0);
    let engine = serde_json::from_str::<Value>(&export(t.home.path())[0]).unwrap()["engine"]
        .as_str()
        .unwrap()
        .to_string();
    let gone = t.tag("gone:v1");
    // A second tag for the second import: the first one's removal, recorded now, is newer than
    // any 2020 build of it (`[ref:observed-order]`).
    let gone_too = t.tag("gone-too:v1");
    let old = |from: usize, tag: &str| -> Vec<String> {
        (from..from + 3)
            .map(|i| {
                serde_json::json!({
                    "schema": 1, "id": format!("old{i}"), "engine": engine,
                    "at": format!("2020-01-0{}T00:00:00.000Z", i + 1), "kind": "build",
                    "tag": tag, "image_id": format!("sha256:{i:064}"), "imgguard_version": "0.1.0",
                })
                .to_string()
            })
            .collect()
    };
    import(t.home.path(), &old(0, &gone)).status(0);
    let config = t.ctx.path().join("retention.yml");
    std::fs::write(&config, "ledger:\n  retention: 30d\n").unwrap();
    let explain = || {
        t.run(&["--config", config.to_str().unwrap(), "explain"]).assert_code(0);
    };
    let events = || stats(t.home.path())["events"].as_i64().unwrap();
    let before = events();
    explain();
    // explain records `gone` removed outside imgguard (its current state now), then retention
    // drops the three old builds, which the daemon's images do not need.
    assert_eq!(events(), before + 1 - 3, "retention dropped the old history");
    import(t.home.path(), &old(3, &gone_too)).status(0);
    let before = events();
    explain();
    assert_eq!(events(), before + 1, "not again the same day (only the new removal recorded)");
}
