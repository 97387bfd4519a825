//! The fleet ledger on a real PostgreSQL (a throwaway cluster per test, [`Cluster`]) with real
//! daemons: an archive saved by ID on one engine and loaded on the other gets its names back;
//! builds go on while the database is down and the spool drains after, with nothing lost or
//! duplicated; eight writers on two engines at once; `fleet` and `history --all-engines`.
//!
//! The two engines are the daemon under test (`DOCKER_HOST`) and the other one: Podman's API
//! service when the daemon under test is Docker (`IMGGUARD_TEST_PODMAN_HOST`, exported by
//! `tests/run.sh`, else a service this test starts in a temporary directory), Docker's
//! default socket when it is Podman.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::pg_cluster::Cluster;
use crate::support::{engine, engine_identity, image_id, DockerTest, EngineKind, Test};

/// A fleet database: the cluster and the URL imgguard is given.
struct Fleet {
    cluster: Cluster,
    url: String,
}

impl Fleet {
    fn new() -> Fleet {
        let cluster = Cluster::start();
        cluster.create_db("fleet");
        let url = cluster.url("fleet");
        Fleet { cluster, url }
    }
}

/// The other daemon, as a `DOCKER_HOST` value; a Podman service started here is stopped (and
/// its storage deleted) when this is dropped.
struct OtherDaemon {
    host: String,
    service: Option<(Child, tempfile::TempDir)>,
}

impl OtherDaemon {
    fn new() -> OtherDaemon {
        if engine() == EngineKind::Podman {
            return OtherDaemon { host: "unix:///var/run/docker.sock".into(), service: None };
        }
        if let Some(host) =
            std::env::var("IMGGUARD_TEST_PODMAN_HOST").ok().filter(|h| !h.is_empty())
        {
            return OtherDaemon { host, service: None };
        }
        let dir = tempfile::Builder::new().prefix("imgguard-podman.").tempdir().unwrap();
        let conf = dir.path().join("containers.conf");
        std::fs::write(
            &conf,
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n\n\
             [engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        let sock = dir.path().join("podman.sock");
        let host = format!("unix://{}", sock.display());
        let child = Command::new("podman")
            .env("CONTAINERS_CONF", &conf)
            .arg("--root")
            .arg(dir.path().join("root"))
            .arg("--runroot")
            .arg(dir.path().join("run"))
            .args(["--storage-driver", "vfs", "system", "service", "--time=0", &host])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman is needed by the fleet tests (bash tests/run.sh installs it)");
        let other = OtherDaemon { host, service: Some((child, dir)) };
        for _ in 0..120 {
            if other.docker_ok(&["version"]) {
                return other;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
        panic!("podman system service did not come up at {}", other.host);
    }

    fn docker(&self, args: &[&str]) -> String {
        let o = Command::new("docker").env("DOCKER_HOST", &self.host).args(args).output().unwrap();
        assert!(o.status.success(), "docker {args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    fn docker_ok(&self, args: &[&str]) -> bool {
        Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    fn image_id(&self, reference: &str) -> Option<String> {
        let o = Command::new("docker")
            .env("DOCKER_HOST", &self.host)
            .args(["image", "inspect", "--format", "{{.Id}}", reference])
            .output()
            .unwrap();
        o.status.success().then(|| String::from_utf8_lossy(&o.stdout).trim().to_string())
    }

    /// The engine identity imgguard records for it (as [`engine_identity`] for the daemon under
    /// test).
    fn identity(&self) -> String {
        if self
            .docker(&["version", "--format", "{{range .Server.Components}}{{.Name}};{{end}}"])
            .contains("Podman")
        {
            format!("podman:{}", self.docker(&["info", "--format", "{{.Name}}:{{.DockerRootDir}}"]))
        } else {
            self.docker(&["info", "--format", "{{.ID}}"])
        }
    }
}

impl Drop for OtherDaemon {
    fn drop(&mut self) {
        if let Some((mut child, dir)) = self.service.take() {
            let _ = child.kill();
            let _ = child.wait();
            // vfs storage: no mounts; a container's shm would be, and this test runs none.
            drop(dir);
        }
    }
}

fn json(run: &crate::support::Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

/// `ledger export` of the ledger `test` reaches: the events' `id`s, in log order.
fn exported_ids(test: Test) -> Vec<String> {
    let r = test.args(["ledger", "export"]).run();
    r.assert_code(0);
    r.stdout
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().into()
        })
        .collect()
}

/// Saved by ID on one engine, loaded on the other (another "runner": its own local ledger,
/// the same fleet database): `--restore-tags` gives the names back; `history --all-engines`
/// shows each engine's lineage labelled by host; `fleet` has a row per engine.
#[test]
fn an_archive_saved_by_id_on_one_engine_gets_its_names_back_on_the_other() {
    let fleet = Fleet::new();
    let other = OtherDaemon::new();
    let t = DockerTest::new("fleetsave");
    let tag = t.tag("app:ci");
    let on_a = |args: &[&str]| t.test().env("IMGGUARD_LEDGER", &fleet.url).args(args).run();
    on_a(&["build", "-q", "-t", &tag, "."]).assert_code(0);
    let id = image_id(&tag).unwrap();
    let archive = t.home.path().join("by-id.tar");
    let archive_s = archive.to_str().unwrap();
    on_a(&["save", "--allow-id", "-o", archive_s, &id]).assert_code(0);

    // Runner B: another daemon, another local ledger, the same fleet database.
    let home_b = tempfile::tempdir().unwrap();
    let on_b = |args: &[&str]| {
        Test::new()
            .home(home_b.path())
            .env("DOCKER_HOST", &other.host)
            .env("IMGGUARD_LEDGER", &fleet.url)
            .args(args)
            .run()
    };
    let cleanup_b = scopeguard(&other, &tag, &id);
    assert!(other.image_id(&tag).is_none());
    let b_id = other.identity();
    let b_row = |f: &serde_json::Value| {
        f.as_array().unwrap().iter().find(|r| r["engine"] == b_id.as_str()).cloned().unwrap()
    };
    // A plain load first: <none> on B, which the fleet counts as nameless and unexplained,
    // with the archive's bytes; the hint names the tag A recorded.
    let r = on_b(&["load", "-i", archive_s]);
    r.assert_code(0);
    assert!(r.stderr.contains(&format!("the ledger knows it as {tag}")), "{}", r.stderr);
    let row = b_row(&json(&on_a(&["fleet", "--format", "json"])));
    let size = std::fs::metadata(&archive).unwrap().len();
    assert_eq!(
        (&row["nameless_images"], &row["unexplained"], &row["nameless_bytes"]),
        (&serde_json::json!(1), &serde_json::json!(1), &serde_json::json!(size)),
        "{row}"
    );
    let r = on_b(&["load", "-i", archive_s, "--restore-tags"]);
    r.assert_code(0);
    assert_eq!(other.image_id(&tag).as_deref(), Some(id.as_str()), "{}", r.stderr);
    assert!(r.stderr.contains("restored from the ledger"), "{}", r.stderr);

    // history --all-engines: the build on A, the restored tag on B, each with its host.
    let h = json(&on_b(&["history", &tag, "--all-engines", "--format", "json"]));
    let lineages = h.as_array().unwrap();
    let engines: BTreeSet<&str> = lineages.iter().map(|l| l["engine"].as_str().unwrap()).collect();
    let a_id = engine_identity();
    assert_eq!(engines, BTreeSet::from([a_id.as_str(), b_id.as_str()]), "{h}");
    for l in lineages {
        assert!(!l["host"].as_str().unwrap().is_empty(), "{l}");
        assert_eq!(l["entries"][0]["image_id"], id.as_str(), "{l}");
    }
    let human = on_b(&["history", &tag, "--all-engines"]);
    assert!(human.stdout.contains("(host "), "{}", human.stdout);

    // fleet: one row per engine, with the JSON contract's fields.
    let f = json(&on_a(&["fleet", "--format", "json"]));
    let rows: BTreeMap<&str, &serde_json::Value> =
        f.as_array().unwrap().iter().map(|r| (r["engine"].as_str().unwrap(), r)).collect();
    for e in [&a_id, &b_id] {
        let row = rows.get(e.as_str()).unwrap_or_else(|| panic!("no row for {e}: {f}"));
        for field in ["host", "name", "last_seen", "nameless_images", "nameless_bytes"] {
            assert!(!row[field].is_null(), "{field} in {row}");
        }
        for field in ["unexplained", "removed_7d", "kept_7d"] {
            assert!(row[field].is_u64(), "{field} in {row}");
        }
    }
    let named = b_row(&f);
    assert_eq!((&named["nameless_images"], &named["unexplained"]), (&0.into(), &0.into()), "{f}");
    let human = on_a(&["fleet"]);
    assert!(human.stdout.starts_with("HOST"), "{}", human.stdout);
    drop(cleanup_b);
}

/// Removes what the test put on the other daemon (the tag, then the image), when dropped.
fn scopeguard<'a>(other: &'a OtherDaemon, tag: &'a str, id: &'a str) -> impl Drop + 'a {
    struct Guard<'a>(&'a OtherDaemon, &'a str, &'a str);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            let _ = self.0.docker_ok(&["rmi", self.1]);
            let _ = self.0.docker_ok(&["rmi", self.2]);
        }
    }
    Guard(other, tag, id)
}

/// The database stopped in the middle of a run: builds still succeed, with one warning line
/// naming the spool; after the restart the next command sends the spool, in order, exactly
/// once; `ledger sync` then has nothing left to send.
#[test]
fn builds_go_on_while_the_database_is_down_and_the_spool_drains_once() {
    let mut fleet = Fleet::new();
    let t = DockerTest::new("fleetspool");
    let tag = t.tag("app:v1");
    let run = |args: &[&str]| t.test().env("IMGGUARD_LEDGER", &fleet.url).args(args).run();
    run(&["build", "-q", "-t", &tag, "."]).assert_code(0);
    let url = fleet.url.clone();
    let fleet_ids = |t: &DockerTest| exported_ids(t.test().env("IMGGUARD_LEDGER", &url));
    let before = fleet_ids(&t);
    assert!(!before.is_empty());
    assert!(!t.home.path().join("ledger.db").exists(), "nothing spooled while it is up");

    fleet.cluster.stop();
    for content in ["2", "3"] {
        t.set_content(content);
        let r = t.test().env("IMGGUARD_LEDGER", &url).args(["build", "-q", "-t", &tag, "."]).run();
        r.assert_code(0);
        let warnings: Vec<&str> =
            r.imgguard_lines().into_iter().filter(|l| l.contains("unreachable")).collect();
        assert_eq!(warnings.len(), 1, "{}", r.stderr);
        assert!(warnings[0].contains("using the local spool"), "{}", warnings[0]);
        assert!(!warnings[0].contains('\n'));
    }
    let spooled = exported_ids(t.test().env("IMGGUARD_LEDGER", "sqlite"));
    assert!(spooled.len() >= 2, "{spooled:?}");

    fleet.cluster.resume();
    // The next command sends the spool.
    let r = t.test().env("IMGGUARD_LEDGER", &url).args(["history", &tag]).run();
    r.assert_code(0);
    assert!(r.stderr.contains(&format!("sent {} spooled events", spooled.len())), "{}", r.stderr);
    let sync = t.test().env("IMGGUARD_LEDGER", &url).args(["ledger", "sync"]).run();
    sync.assert_code(0);
    assert!(sync.stdout.starts_with("sent 0 events of 0 unsent"), "{}", sync.stdout);

    let after = fleet_ids(&t);
    let mut expected = before.clone();
    expected.extend(spooled.iter().cloned());
    assert_eq!(after, expected, "every event once, the spool's in its order, after the others");
    let unique: BTreeSet<&String> = after.iter().collect();
    assert_eq!(unique.len(), after.len(), "no duplicates");
    // The fleet's current state is the last build's.
    let h = json(
        &t.test().env("IMGGUARD_LEDGER", &url).args(["history", &tag, "--format", "json"]).run(),
    );
    assert_eq!(h[0]["entries"][0]["image_id"], image_id(&tag).unwrap().as_str());
    assert_eq!(h[0]["entries"][0]["state"], "current");
}

/// The database stops while a build runs (it answered when the build started, so the build
/// began on the fleet ledger): the build still exits 0, says once that its record went to the
/// local spool, and the record reaches the database at the next command, once.
#[test]
fn the_database_stopping_during_a_build_loses_nothing() {
    let mut fleet = Fleet::new();
    let t = DockerTest::new("fleetmid");
    let tag = t.tag("app:v1");
    let url = fleet.url.clone();
    // A docker that takes its time: the database is stopped while it "builds".
    let slow = tempfile::tempdir().unwrap();
    let real = String::from_utf8(
        Command::new("sh").args(["-c", "command -v docker"]).output().unwrap().stdout,
    )
    .unwrap();
    let wrapper = slow.path().join("docker");
    std::fs::write(&wrapper, format!("#!/bin/sh\nsleep 4\nexec {} \"$@\"\n", real.trim())).unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let path = format!("{}:{}", slow.path().display(), std::env::var("PATH").unwrap());
    let mut cmd = t
        .test()
        .env("IMGGUARD_LEDGER", &url)
        .env("PATH", &path)
        .args(["build", "-q", "-t", &tag, "."])
        .into_command();
    let child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    fleet.cluster.stop();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("went away")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(warnings[0].contains("local spool"), "{}", warnings[0]);
    let spooled = exported_ids(t.test().env("IMGGUARD_LEDGER", "sqlite"));
    assert!(!spooled.is_empty(), "the build's record is in the spool");

    fleet.cluster.resume();
    let sync = t.test().env("IMGGUARD_LEDGER", &url).args(["ledger", "sync"]).run();
    sync.assert_code(0);
    let in_fleet = exported_ids(t.test().env("IMGGUARD_LEDGER", &url));
    for id in &spooled {
        assert_eq!(in_fleet.iter().filter(|i| *i == id).count(), 1, "{id} once in {in_fleet:?}");
    }
    let h = json(
        &t.test().env("IMGGUARD_LEDGER", &url).args(["history", &tag, "--format", "json"]).run(),
    );
    assert_eq!(h[0]["entries"][0]["image_id"], image_id(&tag).unwrap().as_str());
}

/// A `.imgguard.yml` with a password in the ledger URL is refused with one line (exit 2), and
/// the password is never echoed; against a cluster that wants a password, `ledger.url_env`
/// (the URL, password and all, from the environment), `PGPASSWORD` and `PGPASSFILE` each reach
/// it, and without any the command uses the spool and says why; `ledger sync` without a fleet
/// ledger is a usage error.
#[test]
fn passwords_come_from_the_environment_never_the_file() {
    let cluster = Cluster::start_with_password("hunter2");
    cluster.create_db("fleet");
    let url = cluster.url("fleet");
    let with_password = url.replace("postgres@", "postgres:hunter2@");
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let cfg = dir.path().join(".imgguard.yml");
    let test = || Test::new().current_dir(dir.path()).home(home.path()).env_remove("PGPASSWORD");
    std::fs::write(&cfg, format!("ledger: {with_password}\n")).unwrap();
    let r = test().args(["fleet"]).run();
    r.assert_code(2);
    assert!(r.stderr.contains("ledger.url: the URL holds a password"), "{}", r.stderr);
    assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);

    let reached = |r: &crate::support::Run| {
        r.assert_code(0);
        let stats = json(r);
        assert_eq!(stats["path"], url.as_str(), "{stats}");
        assert!(!r.stdout.contains("hunter2") && !r.stderr.contains("hunter2"), "{}", r.stderr);
    };
    std::fs::write(&cfg, "ledger:\n  url_env: FLEET_URL_FOR_TEST\n").unwrap();
    let stats = ["ledger", "stats", "--format", "json"];
    reached(&test().env("FLEET_URL_FOR_TEST", &with_password).args(stats).run());
    std::fs::write(&cfg, format!("ledger: {url}\n")).unwrap();
    reached(&test().env("PGPASSWORD", "hunter2").args(stats).run());
    let passfile = home.path().join("pgpass");
    std::fs::write(&passfile, format!("127.0.0.1:{}:fleet:postgres:hunter2\n", cluster.port))
        .unwrap();
    reached(&test().env("PGPASSFILE", &passfile).args(stats).run());

    // No password: the database refuses; the command goes on with the local spool.
    let r = test().env("PGPASSFILE", home.path().join("none")).args(stats).run();
    r.assert_code(0);
    assert!(r.stderr.contains("unreachable") && r.stderr.contains("password"), "{}", r.stderr);

    let r = Test::new().current_dir(home.path()).home(home.path()).args(["ledger", "sync"]).run();
    r.assert_code(2);
    assert!(r.stderr.contains("no fleet ledger is configured"), "{}", r.stderr);
}

/// A database whose schema a newer imgguard wrote is refused (exit 2), not spooled around.
#[test]
fn a_newer_fleet_schema_is_refused() {
    let fleet = Fleet::new();
    let home = tempfile::tempdir().unwrap();
    let test = || Test::new().home(home.path()).env("IMGGUARD_LEDGER", &fleet.url);
    test().args(["ledger", "stats"]).run().assert_code(0);
    let mut c = postgres::Client::connect(&fleet.url, postgres::NoTls).unwrap();
    c.batch_execute("UPDATE schema_version SET version = 99").unwrap();
    let r = test().args(["ledger", "stats"]).run();
    r.assert_code(2);
    assert!(r.stderr.contains("schema version 99 is newer"), "{}", r.stderr);
}

/// One line of an export: event `id` on `engine`, tag `tag` pointing at `image` at `at`.
fn line(id: &str, engine: &str, at: i64, tag: &str, image: &str) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(at) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    serde_json::json!({
        "schema": 1, "id": id, "engine": engine, "at": at, "kind": "tag", "tag": tag,
        "image_id": image, "imgguard_version": "test"
    })
    .to_string()
}

/// Eight processes on two engines write at once (each an import of 400 events, half of them
/// shared with another writer): every event is there once, and each tag's current state is its
/// latest pointer.
#[test]
fn eight_writers_on_two_engines_lose_and_duplicate_nothing() {
    let fleet = Fleet::new();
    let dir = tempfile::tempdir().unwrap();
    let mut expected: BTreeMap<String, (String, i64, String, String)> = BTreeMap::new();
    let mut files: Vec<PathBuf> = Vec::new();
    for w in 0..8_i64 {
        let engine = if w % 2 == 0 { "engine-a" } else { "engine-b" };
        let mut lines = Vec::new();
        for i in 0..400_i64 {
            // The first half is shared by writers w and w ^ 2 (same engine).
            let owner = if i < 200 { w & !2 } else { w };
            let id = format!("w{owner}-{i:04}");
            let at = 1_700_000_000_000 + i * 10 + owner;
            let tag = format!("t{}:x", i % 7);
            let image = format!("sha256:{owner:02}{i:062}");
            lines.push(line(&id, engine, at, &tag, &image));
            expected.insert(id, (engine.into(), at, tag, image));
        }
        let f = dir.path().join(format!("w{w}.jsonl"));
        std::fs::write(&f, lines.join("\n") + "\n").unwrap();
        files.push(f);
    }
    let homes: Vec<tempfile::TempDir> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let children: Vec<Child> = files
        .iter()
        .zip(&homes)
        .map(|(f, h)| {
            Test::new()
                .home(h.path())
                .env("IMGGUARD_LEDGER", &fleet.url)
                .args([Path::new("ledger").as_os_str(), "import".as_ref(), f.as_os_str()])
                .into_command()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let home = tempfile::tempdir().unwrap();
    let ids = exported_ids(Test::new().home(home.path()).env("IMGGUARD_LEDGER", &fleet.url));
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    assert_eq!(unique, expected.keys().collect::<BTreeSet<_>>(), "nothing lost");

    // Each tag's current state: its pointer with the greatest time.
    let h = json(
        &Test::new()
            .home(home.path())
            .env("IMGGUARD_LEDGER", &fleet.url)
            .args(["history", "--format", "json"])
            .run(),
    );
    let mut latest: BTreeMap<(String, String), (i64, String)> = BTreeMap::new();
    for (engine, at, tag, image) in expected.values() {
        let slot = latest.entry((engine.clone(), tag.clone())).or_insert((i64::MIN, String::new()));
        if *at > slot.0 {
            *slot = (*at, image.clone());
        }
    }
    let lineages = h.as_array().unwrap();
    assert_eq!(lineages.len(), latest.len());
    for l in lineages {
        let key =
            (l["engine"].as_str().unwrap().to_string(), l["tag"].as_str().unwrap().to_string());
        assert_eq!(l["entries"][0]["image_id"], latest[&key].1.as_str(), "{key:?}");
        assert_eq!(l["entries"][0]["state"], "current");
    }
}

/// Eight `imgguard build`s at once, four on each daemon, into one fleet ledger: every build is
/// recorded once, on its own engine, and each tag's lineage ends at the image its daemon has.
#[test]
fn eight_builds_on_two_daemons_at_once() {
    let fleet = Fleet::new();
    let other = OtherDaemon::new();
    let t = DockerTest::new("fleet8");
    let contexts: Vec<tempfile::TempDir> = (0..8)
        .map(|i| {
            let dir = tempfile::tempdir().unwrap();
            for f in ["Dockerfile", "pause"] {
                std::fs::copy(t.ctx.path().join(f), dir.path().join(f)).unwrap();
            }
            std::fs::write(dir.path().join("content"), format!("writer {i}")).unwrap();
            dir
        })
        .collect();
    let tags: Vec<String> = (0..8).map(|i| t.tag(&format!("w{i}:v1"))).collect();
    let on_other = |i: usize| i % 2 == 1;
    let _cleanup: Vec<_> =
        (0..8).filter(|i| on_other(*i)).map(|i| scopeguard(&other, &tags[i], &tags[i])).collect();
    let homes: Vec<tempfile::TempDir> = (0..8).map(|_| tempfile::tempdir().unwrap()).collect();
    let children: Vec<Child> = (0..8)
        .map(|i| {
            let mut test = Test::new()
                .home(homes[i].path())
                .current_dir(contexts[i].path())
                .env("IMGGUARD_LEDGER", &fleet.url);
            if on_other(i) {
                test = test.env("DOCKER_HOST", &other.host);
            }
            test.args(["build", "-q", "-t", &tags[i], "."])
                .into_command()
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let home = tempfile::tempdir().unwrap();
    let reader = || Test::new().home(home.path()).env("IMGGUARD_LEDGER", &fleet.url);
    let ids = exported_ids(reader());
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    let (a_id, b_id) = (engine_identity(), other.identity());
    for (i, tag) in tags.iter().enumerate() {
        let h = json(&reader().args(["history", tag, "--all-engines", "--format", "json"]).run());
        let lineages = h.as_array().unwrap();
        assert_eq!(lineages.len(), 1, "{h}");
        let (engine, id) = if on_other(i) {
            (&b_id, other.image_id(tag).unwrap())
        } else {
            (&a_id, image_id(tag).unwrap())
        };
        assert_eq!(lineages[0]["engine"], engine.as_str(), "{h}");
        assert_eq!(lineages[0]["entries"][0]["image_id"], id.as_str(), "{h}");
        assert_eq!(lineages[0]["entries"][0]["event"], "build", "{h}");
    }
}

/// A `<none>` image the ledger keeps (a container holds it) counts in `fleet`'s bytes with the
/// size the daemon reported when the build decided to keep it (local ledger: no database).
#[test]
fn a_kept_image_counts_with_its_size() {
    let t = DockerTest::new("fleetsize");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    t.container(&tag, "c1", false);
    t.set_content("2");
    t.build(&["-t", &tag]).assert_code(0);
    let size: u64 = crate::support::docker(&["image", "inspect", "-f", "{{.Size}}", &first])
        .trim()
        .parse()
        .unwrap();
    assert!(size > 0);
    let f = json(&t.test().args(["fleet", "--format", "json"]).run());
    let here = engine_identity();
    let row = f.as_array().unwrap().iter().find(|r| r["engine"] == here.as_str()).unwrap();
    assert_eq!(
        (&row["nameless_images"], &row["kept_7d"]),
        (&serde_json::json!(1), &serde_json::json!(1)),
        "{row}"
    );
    assert_eq!(row["nameless_bytes"], serde_json::json!(size), "{row}");
    assert_eq!(row["unexplained"], serde_json::json!(0), "{row}");
}
