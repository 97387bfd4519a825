//! Hostile and broken input, as one table over the binary: each case is argv, environment and
//! files → the exit code, one stderr line that names the bad thing, and nothing changed (on a
//! fresh machine no ledger is created; a prepared ledger home is byte for byte as it was; a
//! `save -o` target is still what it was).

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::os::unix::fs::FileTypeExt as _;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{docker, require_daemon, DockerTest, Test};

/// Where a case's ledger lives.
#[derive(Clone)]
enum Home {
    /// A fresh, empty directory: it must stay empty.
    Fresh,
    /// A prepared path (a file, a directory with a foreign database, …): it must not change.
    At(PathBuf),
}

struct Case {
    name: &'static str,
    args: Vec<String>,
    env: Vec<(String, String)>,
    home: Home,
    code: i32,
    /// What the one stderr line must contain.
    says: String,
    /// Whether docker's own output may precede imgguard's (a build docker runs).
    docker_speaks: bool,
}

fn case(name: &'static str, args: &[&str], code: i32, says: &str) -> Case {
    Case {
        name,
        args: args.iter().map(|a| (*a).to_string()).collect(),
        env: Vec::new(),
        home: Home::Fresh,
        code,
        says: says.to_string(),
        docker_speaks: false,
    }
}

impl Case {
    fn env(mut self, k: &str, v: &str) -> Case {
        self.env.push((k.into(), v.into()));
        self
    }
    fn home(mut self, p: &Path) -> Case {
        self.home = Home::At(p.to_path_buf());
        self
    }
    fn docker_speaks(mut self) -> Case {
        self.docker_speaks = true;
        self
    }
}

/// Every file under `p` (or `p` itself) with its bytes or kind, to prove nothing changed.
fn snapshot(p: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let Ok(meta) = std::fs::symlink_metadata(p) else { return out };
    if meta.is_dir() {
        out.insert(p.to_path_buf(), b"<dir>".to_vec());
        for e in std::fs::read_dir(p).unwrap().flatten() {
            out.extend(snapshot(&e.path()));
        }
    } else if meta.is_file() {
        out.insert(p.to_path_buf(), std::fs::read(p).unwrap());
    } else {
        out.insert(p.to_path_buf(), format!("{:?}", meta.file_type()).into_bytes());
    }
    out
}

fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// The files the cases point at.
struct Fixtures {
    dir: tempfile::TempDir,
}

impl Fixtures {
    fn new() -> Fixtures {
        let f = Fixtures { dir: tempfile::tempdir().unwrap() };
        let hex = "a".repeat(64);
        let config = format!("{hex}.json");
        let manifest = format!(r#"[{{"Config":"{config}","RepoTags":["x:v1"],"Layers":[]}}]"#);
        let good = tar_of(&[(&config, b"{}"), ("manifest.json", manifest.as_bytes())]);
        f.write("missing-config.tar", &tar_of(&[("manifest.json", manifest.as_bytes())]));
        let layer_manifest =
            format!(r#"[{{"Config":"{config}","RepoTags":["x:v1"],"Layers":["l/layer.tar"]}}]"#);
        f.write(
            "missing-layer.tar",
            &tar_of(&[(&config, b"{}"), ("manifest.json", layer_manifest.as_bytes())]),
        );
        f.write("no-manifest.tar", &tar_of(&[("hello.txt", b"hi")]));
        f.write("bad-manifest.tar", &tar_of(&[("manifest.json", b"[1]")]));
        f.write("empty-manifest.tar", &tar_of(&[("manifest.json", b"[]")]));
        f.write("truncated.tar", &good[..good.len() / 2]);
        f.write("truncated.tar.gz", &gzip(&good)[..20]);
        f.write("text.gz", &gzip(b"this is gzip, but not a tar\n"));
        let garbage: Vec<u8> =
            (1..=5000u32).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2] | 1).collect();
        f.write("garbage.bin", &garbage);
        f.write("empty.tar", b"");
        f.write("a-file", b"not a directory");
        let mut trailing = good.clone();
        trailing.extend_from_slice(b"{\"message\":\"daemon error\"}");
        f.write("trailing.tar", &trailing);
        std::fs::create_dir(f.path("a-dir")).unwrap();
        // A foreign SQLite database, a text file, a directory, and a too-new schema where the
        // ledger should be.
        for (home, setup) in [
            ("foreign", "CREATE TABLE customers (id INTEGER, name TEXT);"),
            ("too-new", "CREATE TABLE events (seq INTEGER); PRAGMA user_version = 99;"),
        ] {
            std::fs::create_dir(f.path(home)).unwrap();
            let conn = rusqlite::Connection::open(f.path(home).join("ledger.db")).unwrap();
            conn.execute_batch(setup).unwrap();
        }
        std::fs::create_dir(f.path("text-ledger")).unwrap();
        f.write("text-ledger/ledger.db", b"these are notes, not a database\n");
        std::fs::create_dir_all(f.path("dir-ledger/ledger.db")).unwrap();
        // A character device like /dev/null (root can make one), else a FIFO: neither is a file.
        let dev = f.path("null-device");
        let made = Command::new("mknod").arg(&dev).args(["c", "1", "3"]).status();
        if !made.is_ok_and(|s| s.success()) {
            let ok = Command::new("mkfifo").arg(&dev).status().unwrap();
            assert!(ok.success(), "cannot make a character device or a FIFO for the save case");
        }
        let fifo = f.path("a-fifo");
        assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        f
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn p(&self, name: &str) -> String {
        self.path(name).display().to_string()
    }

    fn write(&self, name: &str, bytes: &[u8]) {
        std::fs::write(self.path(name), bytes).unwrap();
    }
}

fn cases(f: &Fixtures, daemon: &DockerTest) -> Vec<Case> {
    let long_repo = format!("{}:v1", "a".repeat(300));
    let long_tag = format!("x:{}", "b".repeat(200));
    let missing_image = daemon.tag("missing:v9");
    let existing = daemon.tag("x:v1");
    let p = |n: &str| f.p(n);
    vec![
        // Usage: unknown commands, flags and values.
        case("unknown command", &["frob"], 2, "unrecognized subcommand 'frob'"),
        case("unknown flag", &["prune", "--bogus"], 2, "'--bogus'"),
        case("unknown format", &["history", "--format", "xml"], 2, "'xml'"),
        case("negative keep", &["prune", "--keep", "-1"], 2, "'-1'"),
        case("keep not a number", &["prune", "--keep", "lots"], 2, "'lots'"),
        case("min-age nonsense", &["prune", "--min-age", "soon"], 2, "`soon`"),
        case("min-age bad unit", &["prune", "--min-age", "1x"], 2, "`1x`"),
        case("min-age without value", &["prune", "--min-age"], 2, "--min-age"),
        case("rmi without refs", &["rmi"], 2, "<REF>"),
        case("save without image", &["save"], 2, "<IMAGE>"),
        // Item 7: a label filter needs a key.
        case("label without key (explain)", &["explain", "--label", "=v"], 2, "`=v` has no key"),
        case("empty label (prune)", &["prune", "--label", ""], 2, "`` has no key"),
        case("label without key (dry run)", &["prune", "--dry-run", "--label", "=x"], 2, "no key"),
        // Build arguments: checked before docker runs.
        case("empty tag", &["build", "-t", "", "."], 2, "empty reference"),
        case("huge repository name", &["build", "-t", &long_repo, "."], 2, "longer than 255"),
        case("huge tag", &["build", "-t", &long_tag, "."], 2, "up to 128 characters"),
        case("uppercase tag", &["build", "-t", "App:v1", "."], 2, "must be lowercase"),
        case("space in tag", &["build", "-t", "a b:v1", "."], 2, "`a b:v1`"),
        case("tag flag without value", &["build", ".", "--tag"], 2, "`--tag` needs a value"),
        case("build-arg without value", &["build", ".", "--build-arg"], 2, "`--build-arg`"),
        // rmi.
        case("rmi empty reference", &["rmi", ""], 2, "empty reference"),
        case("rmi uppercase", &["rmi", "UP:x"], 2, "must be lowercase"),
        case("rmi of a missing image", &["rmi", &missing_image], 2, "no such image"),
        // save: item 1 (a device is not a file to replace), and other targets.
        case(
            "save to a char device",
            &["save", "-o", &p("null-device"), &existing],
            2,
            "null-device",
        ),
        case("save to a FIFO", &["save", "-o", &p("a-fifo"), &existing], 2, "a-fifo"),
        case("save to a directory", &["save", "-o", &p("a-dir"), &existing], 2, "is a directory"),
        case("save an uppercase ref", &["save", "-o", &p("out.tar"), "Bad:Tag"], 2, "lowercase"),
        case(
            "save a missing image",
            &["save", "-o", &p("out.tar"), &missing_image],
            2,
            "no such image",
        ),
        // load: item 9 (the manifest names what is not there) and broken archives.
        case("load: config missing", &["load", "-i", &p("missing-config.tar")], 2, "names config"),
        case("load: layer missing", &["load", "-i", &p("missing-layer.tar")], 2, "names layer"),
        case("load: no manifest", &["load", "-i", &p("no-manifest.tar")], 2, "no manifest.json"),
        case(
            "load: bad manifest",
            &["load", "-i", &p("bad-manifest.tar")],
            2,
            "manifest.json is not valid",
        ),
        case(
            "load: empty manifest",
            &["load", "-i", &p("empty-manifest.tar")],
            2,
            "lists no image",
        ),
        case("load: truncated tar", &["load", "-i", &p("truncated.tar")], 2, "truncated archive"),
        case("load: truncated gzip", &["load", "-i", &p("truncated.tar.gz")], 2, "truncated gzip"),
        case("load: gzip of a text", &["load", "-i", &p("text.gz")], 2, "not a tar archive"),
        case("load: garbage", &["load", "-i", &p("garbage.bin")], 2, "not a tar archive"),
        case("load: empty file", &["load", "-i", &p("empty.tar")], 2, "not a tar archive"),
        case(
            "load: data after the end",
            &["load", "-i", &p("trailing.tar")],
            2,
            "unexpected data after the end",
        ),
        case("load: a directory", &["load", "-i", &p("a-dir")], 2, "is a directory"),
        case("load: a missing file", &["load", "-i", &p("nope.tar")], 2, "nope.tar"),
        case("load: a char device", &["load", "-i", &p("null-device")], 2, "null-device"),
        case(
            "load: bad --tag",
            &["load", "-i", &p("missing-config.tar"), "--tag", "Bad:Tag"],
            2,
            "lowercase",
        ),
        // The ledger's home: item 6 (a file), and what is at the ledger's place.
        case("home is a file (history)", &["history"], 2, "is not a directory")
            .home(&f.path("a-file")),
        case("home is a file (explain)", &["explain"], 2, "is not a directory")
            .home(&f.path("a-file")),
        case("home is a file (build)", &["build", "-t", "x:v1", "."], 2, "is not a directory")
            .home(&f.path("a-file")),
        case("ledger is a directory", &["history"], 2, "ledger.db").home(&f.path("dir-ledger")),
        case("ledger is a text file", &["history"], 2, "not a database")
            .home(&f.path("text-ledger")),
        case("ledger is foreign", &["history"], 2, "not an imgguard ledger")
            .home(&f.path("foreign")),
        case("ledger is too new", &["prune", "--dry-run"], 2, "schema version 99 is newer")
            .home(&f.path("too-new")),
        // The daemon's place.
        case("no daemon (prune)", &["prune"], 2, "cannot reach the Docker engine")
            .env("DOCKER_HOST", "unix:///nonexistent.sock"),
        case("no daemon (build)", &["build", "-t", "x:v1", "."], 2, "cannot reach")
            .env("DOCKER_HOST", "unix:///nonexistent.sock"),
        case("unknown endpoint scheme", &["explain"], 2, "invalid Docker endpoint `ftp://x`")
            .env("DOCKER_HOST", "ftp://x"),
        case("unknown context", &["explain"], 2, "docker context `nope`")
            .env("DOCKER_CONTEXT", "nope"),
        // Item 10: a build docker fails on a fresh machine leaves no ledger (docker's code).
        case("failing build", &["build", "-t", &daemon.tag("fail:v1"), "."], 1, "").docker_speaks(),
    ]
}

/// The table: every case exits as expected with one line naming the problem, and changes
/// nothing.
#[test]
fn hostile_and_broken_input_is_refused_with_one_line_and_changes_nothing() {
    require_daemon();
    let f = Fixtures::new();
    let t = DockerTest::new("hostile");
    t.build(&["-t", &t.tag("x:v1")]).status(0);
    // A context whose build fails: the Dockerfile copies what is not there.
    let failing = tempfile::tempdir().unwrap();
    std::fs::write(
        failing.path().join("Dockerfile"),
        format!("FROM scratch\nLABEL {}\nCOPY does-not-exist /x\n", t.label),
    )
    .unwrap();
    let device_before = std::fs::symlink_metadata(f.path("null-device")).unwrap().file_type();
    let all = cases(&f, &t);
    assert!(all.len() >= 40, "the table has {} cases", all.len());
    let mut failures = Vec::new();
    for c in &all {
        let fresh = tempfile::tempdir().unwrap();
        let home = match &c.home {
            Home::Fresh => fresh.path().to_path_buf(),
            Home::At(p) => p.clone(),
        };
        let before = snapshot(&home);
        let fixtures_before = snapshot(f.dir.path());
        let mut test = Test::new().home(&home).current_dir(failing.path()).args(&c.args);
        for (k, v) in &c.env {
            test = test.env(k, v);
        }
        let r = test.run();
        let lines: Vec<&str> =
            if c.docker_speaks { r.imgguard_lines() } else { r.stderr.lines().collect() };
        let mut wrong = Vec::new();
        if r.code != c.code {
            wrong.push(format!("exit {} (want {})", r.code, c.code));
        }
        if c.docker_speaks {
            if !lines.is_empty() {
                wrong.push("imgguard spoke about a failed build".into());
            }
        } else if lines.len() != 1
            || !lines[0].starts_with("imgguard: ")
            || !lines[0].contains(&c.says)
        {
            wrong.push(format!("want one line containing {:?}", c.says));
        }
        if snapshot(&home) != before {
            wrong.push(format!("the ledger home changed: {:?}", snapshot(&home).keys()));
        }
        if snapshot(f.dir.path()) != fixtures_before {
            wrong.push("a fixture file changed".into());
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n  stderr: {}",
                c.name,
                wrong.join("; "),
                r.stderr.trim()
            ));
        }
    }
    let device_after = std::fs::symlink_metadata(f.path("null-device")).unwrap().file_type();
    assert!(
        device_after.is_char_device() == device_before.is_char_device() && !device_after.is_file(),
        "the device node is intact"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        all.len(),
        failures.join("\n")
    );
    eprintln!("hostile input: {} cases, all refused as expected", all.len());
}

/// A Unix-socket proxy to the daemon that lets `limit` bytes of an `/images/load` upload through
/// and then closes the connection: the daemon as seen by a client when it is killed mid-load.
fn cutting_upload_proxy(limit: usize) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            std::thread::spawn(move || {
                let Ok(daemon) = UnixStream::connect("/var/run/docker.sock") else { return };
                let mut back = daemon.try_clone().unwrap();
                let mut front = client.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut back, &mut front);
                    let _ = front.shutdown(std::net::Shutdown::Both);
                });
                let (mut from, mut to) = (client, daemon);
                let mut buf = vec![0u8; 16 << 10];
                let (mut loading, mut passed) = (false, 0usize);
                while let Ok(n) = from.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    loading |= String::from_utf8_lossy(&buf[..n]).contains("/images/load");
                    if loading {
                        passed += n;
                        if passed > limit {
                            let _ = to.shutdown(std::net::Shutdown::Both);
                            let _ = from.shutdown(std::net::Shutdown::Both);
                            return;
                        }
                    }
                    if to.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let host = format!("unix://{}", path.display());
    (dir, host)
}

/// Item 8: the daemon going away in the middle of a load is said so, on one line, exit 2.
#[test]
fn a_daemon_gone_mid_load_is_said_so() {
    let t = DockerTest::new("gone");
    let tag = t.tag("x:v1");
    t.write_dockerfile("COPY big /big\n");
    let noise: Vec<u8> =
        (0..2_000_000u32).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect();
    std::fs::write(t.ctx.path().join("big"), noise).unwrap();
    t.build(&["-t", &tag]).status(0);
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("x.tar");
    t.run(&["save", "-o", archive.to_str().unwrap(), &tag]).status(0);
    docker(&["rmi", &tag]);
    let (_proxy_dir, host) = cutting_upload_proxy(256 << 10);
    let r =
        t.test().args(["load", "-i", archive.to_str().unwrap()]).env("DOCKER_HOST", &host).run();
    r.status(2);
    let last = r.stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("imgguard: Docker engine: load: the daemon went away (connection lost"),
        "{}",
        r.stderr
    );
    let gone: Vec<&str> =
        r.imgguard_lines().into_iter().filter(|l| l.contains("went away")).collect();
    assert_eq!(gone.len(), 1, "{}", r.stderr);
}

/// Item 4: `rmi` takes a short hex image ID as docker does (not as a repository name).
#[test]
fn rmi_of_a_short_image_id_removes_that_image() {
    let t = DockerTest::new("rmishort");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).status(0);
    let id = crate::support::image_id(&tag).expect("built");
    let short = &id["sha256:".len().."sha256:".len() + 12];
    let r = t.run(&["rmi", short]);
    r.status(0);
    assert!(crate::support::image_id(&id).is_none(), "the image is gone: {}", r.stderr);
    assert!(r.stdout.contains(&format!("removed {id}")), "{}", r.stdout);
    // A short ID that names nothing is one line, exit 2.
    let r = t.run(&["rmi", "0123456789ab"]);
    r.status(2);
    assert!(r.stderr.starts_with("imgguard: no such image: 0123456789ab"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1);
}
