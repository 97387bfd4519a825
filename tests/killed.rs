//! Killed processes: `imgguard build` runs killed (with docker, as a cancelled CI job's process
//! group is) at random moments, and one stopped by SIGTERM. The ledger must stay sound, every
//! build that finished in the daemon must be recorded as a build, the images the killed runs left
//! must be explained (`interrupted-build`), and the next run must clean up their temporary
//! directories.

use std::os::unix::process::CommandExt as _;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::support::{image_id, DockerTest};

const WORKERS: usize = 4;
const BUILDS_EACH: usize = 6;

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    u64::from(t.subsec_nanos()) ^ (u64::from(std::process::id()) << 20)
}

fn spawn_build(t: &DockerTest, ctx: &std::path::Path, tag: &str) -> Child {
    let mut cmd = t.cmd(&["build", "-q", "-t", tag, "."]);
    cmd.current_dir(ctx).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    // Its own process group, killed as a whole, as a CI runner kills a cancelled job.
    cmd.process_group(0);
    cmd.spawn().unwrap()
}

fn kill_group(child: &Child) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

/// What builds `pids` left in the temporary directory: `imgguard-build.<pid>.*` directories,
/// and `iid.<pid>.*` files in the builds' own directory (`imgguard-<uid>`).
fn temp_dirs_of(pids: &[u32]) -> Vec<String> {
    let names = |dir: &std::path::Path| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|d| d.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
            .unwrap_or_default()
    };
    let temp = std::env::temp_dir();
    let uid = rustix::process::getuid().as_raw();
    let ours =
        |n: &String, prefix: &str| pids.iter().any(|p| n.starts_with(&format!("{prefix}{p}.")));
    let mut left: Vec<String> =
        names(&temp).into_iter().filter(|n| ours(n, "imgguard-build.")).collect();
    left.extend(
        names(&temp.join(format!("imgguard-{uid}"))).into_iter().filter(|n| ours(n, "iid.")),
    );
    left
}

fn explain_json(t: &DockerTest) -> Vec<serde_json::Value> {
    let r = t.run(&["explain", "--format", "json", "--label", &t.label]);
    r.status(0);
    serde_json::from_str::<serde_json::Value>(&r.stdout).unwrap().as_array().unwrap().clone()
}

/// Twenty-four builds on four tags, every second one killed at a random moment with its docker.
#[test]
fn killed_builds_leave_a_sound_ledger_and_explained_images() {
    let t = DockerTest::new("killed");
    let started = Instant::now();
    let tags: Vec<String> = (0..WORKERS).map(|w| t.tag(&format!("k{w}"))).collect();
    for tag in &tags {
        t.build(&["-t", tag]).status(0);
    }
    let outcomes = std::thread::scope(|scope| {
        let workers: Vec<_> = tags
            .iter()
            .enumerate()
            .map(|(w, tag)| {
                let t = &t;
                scope.spawn(move || {
                    let ctx = tempfile::tempdir().unwrap();
                    for f in ["Dockerfile", "pause"] {
                        std::fs::copy(t.ctx.path().join(f), ctx.path().join(f)).unwrap();
                    }
                    let mut rng = seed() ^ (w as u64);
                    let mut out = Vec::new();
                    for n in 0..BUILDS_EACH {
                        std::fs::write(ctx.path().join("content"), format!("{w}-{n}-{rng}"))
                            .unwrap();
                        let child = spawn_build(t, ctx.path(), tag);
                        let killed = n % 2 == 1;
                        if killed {
                            rng ^= rng << 13;
                            rng ^= rng >> 7;
                            rng ^= rng << 17;
                            std::thread::sleep(Duration::from_millis(rng % 2500));
                            kill_group(&child);
                        }
                        let pid = child.id();
                        let o = child.wait_with_output().unwrap();
                        out.push((pid, killed, o));
                    }
                    out
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().unwrap()).collect::<Vec<_>>()
    });
    let killed_pids: Vec<u32> = outcomes.iter().filter(|o| o.1).map(|o| o.0).collect();
    for (_, killed, o) in &outcomes {
        if !killed {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
    }
    // docker's own client is gone with the group; give the daemon a moment to cancel.
    std::thread::sleep(Duration::from_secs(1));

    // The next command: explain (reads only), then prune (records, cleans up).
    let explained = explain_json(&t);
    let unknown: Vec<&serde_json::Value> =
        explained.iter().filter(|e| e["cause"] == "unknown").collect();
    assert!(unknown.is_empty(), "images the killed runs left are explained: {unknown:?}");
    // Only this test's images: other tests build on the same daemon meanwhile.
    t.run(&["prune", "--min-age", "0", "--label", &t.label]).status(0);
    assert_eq!(temp_dirs_of(&killed_pids), Vec::<String>::new(), "stale temp dirs cleaned");
    let left: Vec<serde_json::Value> =
        explain_json(&t).into_iter().filter(|e| e["containers"] == serde_json::json!([])).collect();
    assert!(left.is_empty(), "nothing of the killed runs left dangling: {left:?}");

    // Every tag: the ledger agrees with the daemon, and every move in it is a build.
    for tag in &tags {
        let daemon = image_id(tag).expect("the tag exists");
        let h = t.history(Some(tag));
        let entries = h[0]["entries"].as_array().unwrap();
        assert_eq!(entries[0]["image_id"], daemon.as_str(), "{tag}: ledger = daemon");
        assert_eq!(entries[0]["state"], "current");
        for e in entries {
            assert_eq!(e["event"], "build", "{tag}: recorded as a build: {e}");
        }
    }
    // The ledger opens, is sound, and every run ended.
    let db = t.home.path().join("ledger.db");
    imgguard::ledger::sqlite::Store::open(&db).unwrap();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(check, "ok");
    let open: i64 = conn
        .query_row(
            "SELECT count(DISTINCT reason) FROM events WHERE kind = 'intent' AND reason NOT IN
               (SELECT reason FROM events WHERE kind = 'intent' AND outcome IS NOT NULL)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(open, 0, "every build run ended in the ledger");
    let interrupted: i64 = conn
        .query_row(
            "SELECT count(DISTINCT reason) FROM events WHERE outcome = 'interrupted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let by_cause = |c: &str| explained.iter().filter(|e| e["cause"] == c).count();
    eprintln!(
        "killed: {} builds, {} killed, {} runs recorded interrupted; before prune {} images \
         explained ({} interrupted-build, {} unknown), {} s",
        outcomes.len(),
        killed_pids.len(),
        interrupted,
        explained.len(),
        by_cause("interrupted-build"),
        by_cause("unknown"),
        started.elapsed().as_secs()
    );
}

/// SIGTERM to `imgguard build` reaches docker; imgguard ends with docker's code and records the
/// run's end.
#[test]
fn sigterm_reaches_docker_and_the_run_is_recorded() {
    let t = DockerTest::new("sigterm");
    let tag = t.tag("x");
    t.build(&["-t", &tag]).status(0);
    t.set_content("2");
    let mut child = t.cmd(&["build", "-q", "-t", &tag, "."]);
    let mut child = child.stdin(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let status = child.wait().unwrap();
    // Not killed by the signal itself: imgguard waited for docker and exited with its code.
    assert!(status.code().is_some(), "imgguard ended by the signal: {status:?}");
    let db = t.home.path().join("ledger.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let ends: Vec<String> = conn
        .prepare("SELECT outcome FROM events WHERE kind = 'intent' AND outcome IS NOT NULL")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(ends.len(), 2, "both runs ended in the ledger: {ends:?}");
    let code = status.code().unwrap();
    if code == 0 {
        assert_eq!(ends[1], "finished");
    } else {
        assert_eq!(ends[1], "interrupted", "exit {code}");
    }
    let h = t.history(Some(&tag));
    assert_eq!(h[0]["entries"][0]["image_id"], image_id(&tag).unwrap().as_str());
    // The daemon may commit the interrupted build's image after its client is gone: wait until
    // the test's images stop changing (at most 5 s), so that the cleanup finds that one too.
    let filter = format!("label={}", t.label);
    let count = || crate::support::docker(&["images", "-aq", "--filter", &filter]).lines().count();
    let (mut last, mut stable) = (count(), 0);
    for _ in 0..10 {
        std::thread::sleep(Duration::from_millis(500));
        let now = count();
        stable = if now == last { stable + 1 } else { 0 };
        last = now;
        if stable >= 2 {
            break;
        }
    }
}
