//! `imgguard watch` against the real daemon: it runs in the background while plain docker (and
//! imgguard build) act, and the ledger then explains every image they left.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::support::{docker, engine, image_id, DockerTest, EngineKind, Test};

/// A running `imgguard watch --format json`, its output lines collected as they come.
struct Watching {
    child: Child,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
}

fn collect(from: impl Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { break };
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Watching {
    /// Starts watch with `args` (through `host` when given) and waits until it follows.
    fn start(t: &DockerTest, args: &[&str], host: Option<&str>) -> Watching {
        // Only this test's images: the daemon is shared with other tests.
        let mut test = t.test().args(["watch", "--format", "json", "--label", &t.label]).args(args);
        if let Some(h) = host {
            test = test.env("DOCKER_HOST", h);
        }
        let mut cmd = test.into_command();
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start imgguard watch");
        let out = collect(child.stdout.take().unwrap());
        let err = collect(child.stderr.take().unwrap());
        let w = Watching { child, out, err };
        w.wait_err("watching", Duration::from_secs(30));
        w
    }

    /// The JSON objects printed so far.
    fn events(&self) -> Vec<serde_json::Value> {
        self.out
            .lock()
            .unwrap()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
            .collect()
    }

    /// Waits until an event printed satisfies `pred`.
    #[track_caller]
    fn wait_for(&self, what: &str, pred: impl Fn(&serde_json::Value) -> bool) {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            if self.events().iter().any(&pred) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "watch never recorded {what}; it printed:\n{}\nstderr:\n{}",
            self.out.lock().unwrap().join("\n"),
            self.err.lock().unwrap().join("\n")
        );
    }

    #[track_caller]
    fn wait_err(&self, part: &str, limit: Duration) {
        let start = Instant::now();
        while start.elapsed() < limit {
            if self.err.lock().unwrap().iter().any(|l| l.contains(part)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("watch never said `{part}`: {:?}", self.err.lock().unwrap());
    }

    /// Sends `signal` and returns the exit code.
    fn stop(mut self, signal: rustix::process::Signal) -> Option<i32> {
        let pid = rustix::process::Pid::from_raw(i32::try_from(self.child.id()).unwrap()).unwrap();
        rustix::process::kill_process(pid, signal).unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(start.elapsed() < Duration::from_secs(30), "watch did not end on {signal:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `(kind, tag, image_id, previous_id, reason_kind, at)` of every ledger event but the build
/// runs' intents.
type Row = (String, Option<String>, Option<String>, Option<String>, Option<String>, i64);

fn rows(t: &DockerTest) -> Vec<Row> {
    let conn = rusqlite::Connection::open(t.home.path().join("ledger.db")).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT kind, tag, image_id, previous_id, reason_kind, at FROM events
             WHERE kind <> 'intent' ORDER BY seq",
        )
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// No event recorded twice (same kind, tag, images and time).
#[track_caller]
fn no_duplicates(rows: &[Row]) {
    let mut seen = HashSet::new();
    for r in rows {
        assert!(seen.insert(r.clone()), "recorded twice: {r:?}\nall: {rows:#?}");
    }
}

/// A plain `docker build -t tag` of the test's context with `content`; returns the image ID.
fn plain_build(t: &DockerTest, tag: &str, content: &str) -> String {
    t.set_content(content);
    let ctx = t.ctx.path().to_str().unwrap();
    docker(&["build", "-q", "-t", tag, ctx]);
    image_id(tag).unwrap()
}

/// [`plain_build`] while `w` watches, then waits until watch has recorded the tag's move: Podman
/// delivers its events late and a build's event does not name the tag, so a tag moved twice
/// within that delay shows there as one move (a README caveat); Docker needs no wait.
fn watched_build(w: &Watching, t: &DockerTest, tag: &str, content: &str) -> String {
    let id = plain_build(t, tag, content);
    if engine() == EngineKind::Podman {
        w.wait_for(tag, |e| e["tag"] == tag && e["image_id"] == id.as_str());
    }
    id
}

/// `explain --format json` of this test's images: image ID → cause.
fn causes(t: &DockerTest) -> BTreeMap<String, String> {
    let r = t.run(&["explain", "--format", "json", "--label", &t.label]);
    r.assert_code(0);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| (e["image_id"].as_str().unwrap().into(), e["cause"].as_str().unwrap().into()))
        .collect()
}

fn is(kind: &str, image: &str) -> impl Fn(&serde_json::Value) -> bool {
    let (kind, image) = (kind.to_string(), image.to_string());
    move |e| e["kind"] == kind.as_str() && e["image_id"] == image.as_str()
}

/// The issue's scenario: plain docker builds twice to one tag, tags, force-removes a tag off an
/// image a container runs, saves by ID and loads, removes; `explain` then gives each image its
/// cause and none is `unknown`. SIGTERM ends watch with exit 0; every line is one JSON object.
/// On Podman 4.3 what its events cannot tell is asserted as such: `docker rmi -f` removes the
/// container and the image with it (no force-untagged image arises), and a load's event names
/// only a temporary file, not the image (a nameless load stays `unknown`).
#[test]
fn plain_docker_under_watch_leaves_no_unknown_image() {
    let t = DockerTest::new("wscn");
    let w = Watching::start(&t, &["--grace", "1s"], None);
    // Rebuilt: the first image is superseded.
    let a = t.tag("a:v1");
    let a1 = watched_build(&w, &t, &a, "a1");
    let a2 = watched_build(&w, &t, &a, "a2");
    assert_ne!(a1, a2);
    // `docker tag` takes x's only tag to another image.
    let x = t.tag("x:v1");
    let x1 = watched_build(&w, &t, &x, "x1");
    docker(&["tag", &a2, &x]);
    // `docker rmi -f` of an image a running container uses.
    let f = t.tag("f:v1");
    let f1 = watched_build(&w, &t, &f, "f1");
    t.container(&f, "fc", true);
    docker(&["rmi", "-f", &f]);
    // `docker save <ID>`, the image removed, then loaded: nameless.
    let l = t.tag("l:v1");
    let l1 = watched_build(&w, &t, &l, "l1");
    let archive = t.home.path().join("l.tar");
    docker(&["save", "-o", archive.to_str().unwrap(), &l1]);
    docker(&["rmi", &l]);
    docker(&["load", "-i", archive.to_str().unwrap()]);
    // `docker rmi`: the image is gone, and the ledger says so.
    let r = t.tag("r:v1");
    let r1 = watched_build(&w, &t, &r, "r1");
    docker(&["rmi", &r]);
    let podman = engine() == EngineKind::Podman;
    w.wait_for("the removal of r", is("removed", &r1));
    if !podman {
        w.wait_for("the nameless load", is("load", &l1));
    }
    let printed = w.events();
    assert_eq!(w.stop(rustix::process::Signal::TERM), Some(0), "SIGTERM ends watch with 0");
    for e in &printed {
        for field in ["at", "at_ms", "kind", "tag", "image_id", "previous_id", "reason_kind"] {
            assert!(e.get(field).is_some(), "{field} missing in {e}");
        }
    }
    let got = causes(&t);
    let mut want = vec![(&a1, "superseded"), (&x1, "superseded")];
    if podman {
        assert_eq!(image_id(&f1), None, "Podman's rmi -f removes the image in use");
        // Its load event names no image: what explains the loaded image is its tag's removal.
        assert_eq!(got.get(l1.as_str()).map(String::as_str), Some("superseded"), "{got:?}");
    } else {
        want.extend([(&f1, "force-untagged"), (&l1, "loaded-nameless")]);
    }
    for (id, cause) in want {
        let why = rows(&t);
        assert_eq!(got.get(id.as_str()).map(String::as_str), Some(cause), "{id}: {got:?} {why:#?}");
    }
    if podman {
        // Podman's builder leaves images of its own (a README caveat): ours are explained.
        assert!([&a1, &x1, &l1].iter().all(|id| got[id.as_str()] != "unknown"), "{got:?}");
    } else {
        assert!(got.values().all(|c| c != "unknown"), "{got:?}");
    }
    let all = rows(&t);
    no_duplicates(&all);
    assert!(all.iter().any(|r| r.0 == "removed" && r.2.as_deref() == Some(r1.as_str())));
    assert!(all.iter().any(|r| r.0 == "container" && r.2.as_deref() == Some(f1.as_str())));
}

/// A Unix-socket proxy to the daemon that cuts the first event stream once `limit` bytes of its
/// answer have passed; every other connection is passed through whole.
struct CuttingProxy {
    path: PathBuf,
    cuts: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl CuttingProxy {
    fn start(limit: usize) -> CuttingProxy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let cuts = Arc::new(AtomicUsize::new(0));
        let shared = Arc::clone(&cuts);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let cuts = Arc::clone(&shared);
                std::thread::spawn(move || forward(client, limit, &cuts));
            }
        });
        CuttingProxy { path, cuts, _dir: dir }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

fn forward(client: UnixStream, limit: usize, cuts: &AtomicUsize) {
    let Ok(daemon) = UnixStream::connect(crate::support::daemon_socket()) else { return };
    let events = Arc::new(AtomicUsize::new(0));
    let (mut c_read, mut d_write) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
    let flag = Arc::clone(&events);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 {
                break;
            }
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.contains("/events?") && !text.contains("until=") {
                flag.store(1, Ordering::SeqCst);
            }
            if d_write.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = d_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut d_read, mut c_write) = (daemon, client);
    let mut buf = vec![0u8; 16 << 10];
    let mut passed = 0;
    let mut cutting = false;
    while let Ok(n) = d_read.read(&mut buf) {
        if n == 0 {
            break;
        }
        if !cutting && events.load(Ordering::SeqCst) == 1 {
            // Only the first live event stream is cut.
            cutting = cuts.fetch_add(1, Ordering::SeqCst) == 0;
            events.store(2, Ordering::SeqCst);
        }
        let n = if cutting { n.min(limit - passed) } else { n };
        passed += n;
        if c_write.write_all(&buf[..n]).is_err() || (cutting && passed >= limit) {
            break;
        }
    }
    let _ = c_write.shutdown(std::net::Shutdown::Both);
    let _ = d_read.shutdown(std::net::Shutdown::Both);
}

/// The event stream cut in the middle (a proxy socket): watch says it reconnects, resumes from
/// the last event it handled, and every tag move made before, during and after the cut is
/// recorded exactly once. SIGINT ends it with 0.
#[test]
fn a_connection_cut_mid_stream_loses_and_duplicates_nothing() {
    let t = DockerTest::new("wcut");
    let base = plain_build(&t, &t.tag("base:v1"), "base");
    let proxy = CuttingProxy::start(3000);
    let w = Watching::start(&t, &["--grace", "1s"], Some(&proxy.host()));
    let tags: Vec<String> = (0..12).map(|i| t.tag(&format!("c:{i}"))).collect();
    for tag in &tags {
        docker(&["tag", &base, tag]);
        std::thread::sleep(Duration::from_millis(250));
    }
    for tag in &tags {
        w.wait_for(tag, |e| e["tag"] == tag.as_str() && e["image_id"] == base.as_str());
    }
    w.wait_err("reconnecting", Duration::from_secs(5));
    assert!(proxy.cuts.load(Ordering::SeqCst) >= 1, "the proxy never cut the stream");
    assert_eq!(w.stop(rustix::process::Signal::INT), Some(0), "SIGINT ends watch with 0");
    let all = rows(&t);
    no_duplicates(&all);
    for tag in &tags {
        let moves: Vec<&Row> = all.iter().filter(|r| r.1.as_deref() == Some(tag)).collect();
        assert_eq!(moves.len(), 1, "{tag}: {moves:?}");
        assert_eq!(moves[0].2.as_deref(), Some(base.as_str()));
    }
}

/// `--remove-superseded`: an image plain docker superseded is removed (never forced), one a
/// container uses is kept with the reason.
#[test]
fn remove_superseded_removes_a_free_image_and_keeps_one_in_use() {
    let t = DockerTest::new("wrm");
    let s = t.tag("s:v1");
    let u = t.tag("u:v1");
    let u1 = plain_build(&t, &u, "u1");
    t.container(&u, "uc", false);
    let w = Watching::start(&t, &["--grace", "1s", "--remove-superseded"], None);
    let s1 = watched_build(&w, &t, &s, "s1");
    let s2 = watched_build(&w, &t, &s, "s2");
    let u2 = watched_build(&w, &t, &u, "u2");
    w.wait_for("the removal of s1", |e| is("removed", &s1)(e) && e["outcome"] == "removed");
    w.wait_for("the keep of u1", |e| is("kept", &u1)(e) && e["reason_kind"] == "in-use");
    assert_eq!(w.stop(rustix::process::Signal::TERM), Some(0));
    assert_eq!(image_id(&s1), None, "the superseded image is gone");
    assert_eq!(image_id(&u1).as_deref(), Some(u1.as_str()), "the one in use stays");
    assert_eq!(image_id(&s).as_deref(), Some(s2.as_str()));
    assert_eq!(image_id(&u).as_deref(), Some(u2.as_str()));
    no_duplicates(&rows(&t));
}

/// An `imgguard build` while watch runs: the build records its own moves, watch adds no
/// duplicate and no move outside imgguard for the build's tag.
#[test]
fn a_build_under_watch_is_recorded_once_and_never_as_outside() {
    let t = DockerTest::new("wbld");
    let tag = t.tag("b:v1");
    let w = Watching::start(&t, &["--grace", "1s"], None);
    t.build(&["-t", &tag]).assert_code(0);
    t.set_content("2");
    t.build(&["-t", &tag]).assert_code(0);
    // A plain move afterwards shows watch is live and has handled everything before it.
    let other = t.tag("later:v1");
    docker(&["tag", &tag, &other]);
    w.wait_for("the later tag", |e| e["tag"] == other.as_str());
    assert_eq!(w.stop(rustix::process::Signal::TERM), Some(0));
    let all = rows(&t);
    no_duplicates(&all);
    let mine: Vec<&Row> = all.iter().filter(|r| r.1.as_deref() == Some(tag.as_str())).collect();
    assert!(mine.iter().all(|r| r.0 != "moved-outside"), "{mine:#?}");
    assert_eq!(mine.iter().filter(|r| r.0 == "build").count(), 2, "{mine:#?}");
    let removed: Vec<&Row> = all.iter().filter(|r| r.0 == "removed").collect();
    let ids: HashSet<&Option<String>> = removed.iter().map(|r| &r.2).collect();
    assert_eq!(ids.len(), removed.len(), "an image's removal recorded twice: {removed:#?}");
}

/// Stopped and started again: the second watch resumes from the cursor the first left in the
/// ledger (`since=`), so what happened in between is recorded with the daemon's own times. On
/// Podman 4.3, whose `/events` replays nothing, the list at start records the tracked tag that
/// moved, at the time it was noticed (a tag made meanwhile is not news there).
#[test]
fn a_restarted_watch_resumes_from_its_cursor() {
    let t = DockerTest::new("wres");
    let base = plain_build(&t, &t.tag("base:v1"), "base");
    let other = plain_build(&t, &t.tag("other:v1"), "other");
    let (moved, made) = (t.tag("m:v1"), t.tag("n:v1"));
    let w = Watching::start(&t, &["--grace", "1s"], None);
    docker(&["tag", &base, &moved]);
    w.wait_for("the first tag", |e| e["tag"] == moved.as_str());
    assert_eq!(w.stop(rustix::process::Signal::TERM), Some(0));
    // While nobody watches.
    docker(&["tag", &other, &moved]);
    docker(&["tag", &base, &made]);
    let away =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let away = i64::try_from(away).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let w = Watching::start(&t, &["--grace", "1s"], None);
    w.wait_for("the move while away", |e| {
        e["tag"] == moved.as_str() && e["image_id"] == other.as_str()
    });
    if engine() == EngineKind::Docker {
        w.wait_for("the tag made while away", |e| e["tag"] == made.as_str());
    }
    assert_eq!(w.stop(rustix::process::Signal::TERM), Some(0));
    let all = rows(&t);
    no_duplicates(&all);
    let mine: Vec<&Row> = all.iter().filter(|r| r.1.as_deref() == Some(moved.as_str())).collect();
    assert_eq!(mine.len(), 2, "{mine:#?}");
    let at = mine[1].5;
    match engine() {
        EngineKind::Docker => assert!(at <= away, "replayed with the daemon's time: {at} > {away}"),
        EngineKind::Podman => assert!(at > away, "noticed by the list at start: {at} <= {away}"),
    }
}

/// Bad input is one line and exit 2, and so is no daemon at start; nothing is created.
#[test]
fn bad_input_and_no_daemon_are_one_line_exit_2_and_create_nothing() {
    let home = tempfile::tempdir().unwrap();
    let ledger = home.path().join("ledger.db");
    for (args, part) in [
        (vec!["watch", "--grace", "soon"], "--grace: invalid duration `soon`"),
        (vec!["watch", "--label", "=x"], "--label: label filter `=x` has no key"),
    ] {
        let r = Test::new().home(home.path()).args(&args).run();
        r.assert_code(2);
        assert_eq!(r.imgguard_lines().len(), 1, "{:?}", r.stderr);
        r.stderr_has(part);
    }
    let r = Test::new()
        .home(home.path())
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .args(["watch"])
        .run();
    r.assert_code(2);
    r.stderr_has("cannot reach the Docker engine");
    assert!(!ledger.exists(), "no ledger before the daemon has answered");
}
