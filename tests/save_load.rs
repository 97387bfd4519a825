//! `imgguard save` and `load` against the real daemon.

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::support::{docker, image_id, DockerTest, Run};

/// `(kind, tag, image_id, outcome, archive_sha256)` of every ledger event, in order.
type Row = (String, Option<String>, Option<String>, Option<String>, Option<String>);

fn events(t: &DockerTest) -> Vec<Row> {
    let db = t.home.path().join("ledger.db");
    if !db.exists() {
        return Vec::new();
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT kind, tag, image_id, outcome, archive_sha256 FROM events ORDER BY seq")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

fn kinds(t: &DockerTest, kind: &str) -> Vec<Row> {
    events(t).into_iter().filter(|e| e.0 == kind).collect()
}

/// `(config ID, RepoTags)` of each image in an archive (plain or gzip), read with the `tar` crate.
fn manifest(path: &Path) -> Vec<(String, Vec<String>)> {
    let bytes = std::fs::read(path).unwrap();
    let plain = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..]).read_to_end(&mut out).unwrap();
        out
    } else {
        bytes
    };
    let mut ar = tar::Archive::new(&plain[..]);
    for entry in ar.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_str() == Some("manifest.json") {
            let mut text = String::new();
            entry.read_to_string(&mut text).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            return v
                .as_array()
                .unwrap()
                .iter()
                .map(|e| {
                    let config = e["Config"].as_str().unwrap();
                    let id = format!("sha256:{}", config.trim_end_matches(".json"));
                    let tags = e["RepoTags"]
                        .as_array()
                        .map(|a| a.iter().map(|t| archive_name(t.as_str().unwrap())).collect())
                        .unwrap_or_default();
                    (id, tags)
                })
                .collect();
        }
    }
    panic!("no manifest.json in {}", path.display());
}

/// A name as an archive holds it. Podman writes names in full (`docker.io/library/app:v1`);
/// both engines load that as `app:v1`, so on Podman the comparison is made on that form.
fn archive_name(name: &str) -> String {
    match crate::support::engine() {
        crate::support::EngineKind::Podman => {
            name.strip_prefix("docker.io/library/").unwrap_or(name).to_string()
        }
        crate::support::EngineKind::Docker => name.to_string(),
    }
}

fn sha256_file(path: &Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Files in a directory (to see that no temporary file is left behind).
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn out_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A save by ID, end to end: it is refused with the command that keeps
/// the name; `--allow-id` writes an archive with `"RepoTags": null` that loads as
/// `<none>:<none>`; the load names the tag the ledger knows, and `--restore-tags` puts it back.
#[test]
fn save_by_id_is_refused_and_a_nameless_load_gets_its_name_back() {
    let t = DockerTest::new("seed2");
    let tag = t.tag("alpine1:v1.0");
    t.build(&["-t", &tag]).assert_code(0);
    let id = image_id(&tag).unwrap();
    let dir = out_dir();
    let target = dir.path().join("alpine1.tar");
    let target_s = path_str(&target);

    // docker save e4159797272a: refused, exit 1, the fix as a ready command, no file.
    for by_id in [&id[7..19], id.as_str(), &id[7..]] {
        let r = t.run(&["save", "-o", target_s, by_id]);
        r.assert_code(1);
        let lines = r.imgguard_lines();
        assert_eq!(
            lines[0],
            format!(
                "imgguard: refusing to save `{by_id}` by ID: the archive would carry no name \
                 (\"RepoTags\": null) and `docker load` would give <none>:<none> ({})",
                &id[..19]
            )
        );
        assert_eq!(lines[1], format!("imgguard:   tagged now: {tag}"));
        assert_eq!(lines[2], "imgguard: save it by name instead:");
        assert_eq!(lines[3], format!("imgguard:   imgguard save -o {target_s} {tag}"));
        assert!(!target.exists(), "nothing written");
        assert!(listing(dir.path()).is_empty(), "no temporary file left");
    }
    assert!(kinds(&t, "save").is_empty());

    // --allow-id: saved, and it says the archive has no name.
    let r = t.run(&["save", "--allow-id", "-o", target_s, &id[7..19]]);
    r.assert_code(0);
    assert!(r.stderr.contains("the archive has no name for it"), "{}", r.stderr);
    assert_eq!(manifest(&target), [(id.clone(), vec![])]);
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&target).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let saves = kinds(&t, "save");
    assert_eq!(saves.len(), 1);
    assert_eq!(saves[0].1, None);
    assert_eq!(saves[0].2.as_deref(), Some(id.as_str()));
    assert_eq!(saves[0].3.as_deref(), Some("nameless"));
    assert_eq!(saves[0].4, Some(sha256_file(&target)));

    // docker rmi, then load: <none>:<none>, and imgguard names the tag it had.
    docker(&["rmi", &tag]);
    assert!(image_id(&id).is_none());
    let r = t.run(&["load", "-i", target_s]);
    r.assert_code(0);
    assert!(image_id(&id).is_some(), "loaded");
    assert!(image_id(&tag).is_none(), "nameless, as docker load does");
    let text = r.imgguard_lines().join("\n");
    assert!(text.contains(&format!("warning: {} has no name in {target_s}", &id[..19])), "{text}");
    assert!(text.contains(&format!("the ledger knows it as {tag}")), "{text}");
    assert!(
        text.contains(&format!("`imgguard load -i {target_s} --restore-tags` puts it back")),
        "{text}"
    );
    let loads = kinds(&t, "load");
    assert_eq!(loads.len(), 1);
    assert_eq!((loads[0].1.as_deref(), loads[0].3.as_deref()), (None, Some("nameless")));

    // --restore-tags gives the name back, recorded as a tag event.
    let r = t.run(&["load", "-i", target_s, "--restore-tags"]);
    r.assert_code(0);
    assert_eq!(image_id(&tag).as_deref(), Some(id.as_str()));
    assert!(
        r.imgguard_lines().contains(
            &format!("imgguard: {tag}  (new) → {}  restored from the ledger", &id[..19]).as_str()
        ),
        "{}",
        r.stderr
    );
    let tags = kinds(&t, "tag");
    assert_eq!(tags.len(), 1);
    assert_eq!(
        (tags[0].1.as_deref(), tags[0].2.as_deref()),
        (Some(tag.as_str()), Some(id.as_str()))
    );
    assert_eq!(t.states(&tag)[0], (id, "current".to_string()));
}

/// An image tagged by plain docker and saved with `--allow-id`: the save records the tags it
/// saw on it, so `--restore-tags` can put them back after a nameless load.
#[test]
fn allow_id_save_remembers_the_tags_it_saw() {
    let t = DockerTest::new("sawtags");
    let tag = t.tag("x:v1");
    docker(&["build", "-q", "-t", &tag, path_str(t.ctx.path())]);
    let id = image_id(&tag).unwrap();
    let dir = out_dir();
    let target = dir.path().join("x.tar");
    t.run(&["save", "--allow-id", "-o", path_str(&target), &id]).assert_code(0);
    docker(&["rmi", &tag]);
    let r = t.run(&["load", "-i", path_str(&target), "--restore-tags"]);
    r.assert_code(0);
    assert_eq!(image_id(&tag).as_deref(), Some(id.as_str()), "{}", r.stderr);
}

/// `--tag` names a nameless image; an image the ledger never saw gets the hint to do so.
#[test]
fn load_tag_names_a_nameless_image() {
    let t = DockerTest::new("loadtag");
    let tag = t.tag("x:v1");
    docker(&["build", "-q", "-t", &tag, path_str(t.ctx.path())]);
    let id = image_id(&tag).unwrap();
    let dir = out_dir();
    let target = dir.path().join("x.tar");
    // An archive made by plain `docker save <ID>`: the ledger has never seen the image.
    docker(&["save", "-o", path_str(&target), &id]);
    docker(&["rmi", &tag]);
    let r = t.run(&["load", "-i", path_str(&target)]);
    r.assert_code(0);
    assert!(r.stderr.contains("the ledger knows no tag for it: name it with `--tag NAME:TAG`"));
    let named = t.tag("y:v2");
    let r = t.run(&["load", "-i", path_str(&target), "--tag", &named]);
    r.assert_code(0);
    assert_eq!(image_id(&named).as_deref(), Some(id.as_str()));
    assert_eq!(kinds(&t, "tag")[0].1.as_deref(), Some(named.as_str()));
    // An invalid name: exit 2 before anything is loaded.
    let r = t.run(&["load", "-i", path_str(&target), "--tag", "Bad:Name"]);
    r.assert_code(2);
    assert_eq!(
        r.stderr,
        "imgguard: invalid reference `Bad:Name`: repository name must be lowercase\n"
    );
}

/// Two images, three tags, one of them as a bare repository name: every tag goes in, is named,
/// and comes back on load; the ledger has one save and one load event per tag.
#[test]
fn multi_tag_save_and_load() {
    let t = DockerTest::new("multi");
    let a = t.tag("a:v1");
    let (b1, b2) = (t.tag("b:v1"), t.tag("b:v2"));
    t.build(&["-t", &a]).assert_code(0);
    t.set_content("2");
    t.build(&["-t", &b1, "-t", &b2]).assert_code(0);
    let (ida, idb) = (image_id(&a).unwrap(), image_id(&b1).unwrap());
    let dir = out_dir();
    let target = dir.path().join("multi.tar");
    let repo_b = t.tag("b");
    let r = t.run(&["save", "-o", path_str(&target), &a, &repo_b]);
    r.assert_code(0);
    assert!(
        r.imgguard_lines().contains(
            &format!("imgguard: {repo_b}: every tag of the repository: {b1}, {b2}").as_str()
        ),
        "{}",
        r.stderr
    );
    let mut m = manifest(&target);
    m.sort();
    let mut want =
        vec![(ida.clone(), vec![a.clone()]), (idb.clone(), vec![b1.clone(), b2.clone()])];
    want.sort();
    for (got, want) in m.iter_mut().zip(&mut want) {
        got.1.sort();
        want.1.sort();
    }
    assert_eq!(m, want);
    let saved: Vec<Option<String>> = kinds(&t, "save").into_iter().map(|e| e.1).collect();
    assert_eq!(saved.len(), 3);
    for tag in [&a, &b1, &b2] {
        assert!(saved.contains(&Some(tag.clone())), "{tag} recorded");
    }

    for tag in [&a, &b1, &b2] {
        docker(&["rmi", tag]);
    }
    let r = t.run(&["load", "-i", path_str(&target)]);
    r.assert_code(0);
    assert_eq!(image_id(&a).as_deref(), Some(ida.as_str()));
    assert_eq!(image_id(&b1).as_deref(), Some(idb.as_str()));
    assert_eq!(image_id(&b2).as_deref(), Some(idb.as_str()));
    let lines = r.imgguard_lines();
    assert!(lines.contains(&format!("imgguard: {b2}  (new) → {}  loaded", &idb[..19]).as_str()));
    let loads = kinds(&t, "load");
    assert_eq!(loads.len(), 3);
    assert!(loads.iter().all(|l| l.4 == Some(sha256_file(&target))));
}

/// `-o x.tar.gz` writes gzip that `docker load` reads; stdout and stdin work as docker's do.
#[test]
fn gzip_round_trip_and_pipes() {
    let t = DockerTest::new("gzip");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let id = image_id(&tag).unwrap();
    let dir = out_dir();
    let gz = dir.path().join("x.tar.gz");
    t.run(&["save", "-o", path_str(&gz), &tag]).assert_code(0);
    let bytes = std::fs::read(&gz).unwrap();
    assert_eq!(&bytes[..2], &[0x1f, 0x8b], "gzip");
    assert_eq!(manifest(&gz), [(id.clone(), vec![tag.clone()])]);
    // The sha256 recorded is the file's: of the compressed bytes, not of the stream received.
    assert_eq!(kinds(&t, "save").last().unwrap().4, Some(sha256_file(&gz)));
    docker(&["rmi", &tag]);
    // Podman 4.3's API loads no gzip archive (imgguard load unpacks it on the way for Podman).
    if crate::support::engine() == crate::support::EngineKind::Docker {
        let loaded = docker(&["load", "-i", path_str(&gz)]);
        assert!(loaded.contains(&tag), "{loaded}");
        docker(&["rmi", &tag]);
    }
    t.run(&["load", "-i", path_str(&gz)]).assert_code(0);
    assert_eq!(image_id(&tag).as_deref(), Some(id.as_str()));

    // No -o: the archive goes to stdout; docker load reads it, and imgguard load reads a pipe.
    let out = t.cmd(&["save", &tag]).stdout(Stdio::piped()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let plain = dir.path().join("stdout.tar");
    std::fs::write(&plain, &out.stdout).unwrap();
    assert_eq!(manifest(&plain), [(id.clone(), vec![tag.clone()])]);
    assert_eq!(kinds(&t, "save").last().unwrap().4, Some(sha256_file(&plain)));
    docker(&["rmi", &tag]);
    let mut child = t.cmd(&["load"]).stdin(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(&out.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(image_id(&tag).as_deref(), Some(id.as_str()));
}

/// A load that moves a tag leaves the old image dangling: removed as after a build, or kept
/// when a container uses it — never forced.
#[test]
fn load_that_steals_a_tag_removes_or_keeps_the_old_image() {
    let t = DockerTest::new("steal");
    let tag = t.tag("app:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let first = image_id(&tag).unwrap();
    let dir = out_dir();
    let target = dir.path().join("app.tar");
    t.run(&["save", "-o", path_str(&target), &tag]).assert_code(0);

    // Rebuilt with plain docker (imgguard does not know), then the old archive loaded again.
    t.set_content("2");
    docker(&["build", "-q", "-t", &tag, path_str(t.ctx.path())]);
    let second = image_id(&tag).unwrap();
    let r = t.run(&["load", "-i", path_str(&target)]);
    r.assert_code(0);
    assert_eq!(image_id(&tag).as_deref(), Some(first.as_str()));
    assert!(image_id(&second).is_none(), "the image the load left dangling is removed");
    let line = r.imgguard_lines().join("\n");
    assert!(
        line.contains(&format!("{tag}  {} → {}  loaded", &second[..19], &first[..19])),
        "{line}"
    );
    assert!(line.contains(&format!("removed {}", &second[..19])), "{line}");
    assert_eq!(
        t.states(&tag),
        [
            (first.clone(), "current".to_string()),
            (second.clone(), "removed".to_string()),
            (first.clone(), "superseded".to_string())
        ]
    );
    let removed = kinds(&t, "removed");
    assert_eq!(removed[0].2.as_deref(), Some(second.as_str()));

    // Again, with a stopped container on the image about to lose its tag: kept.
    t.set_content("3");
    docker(&["build", "-q", "-t", &tag, path_str(t.ctx.path())]);
    let third = image_id(&tag).unwrap();
    let name = t.container(&tag, "c1", false);
    let r = t.run(&["load", "-i", path_str(&target)]);
    r.assert_code(0);
    assert_eq!(image_id(&tag).as_deref(), Some(first.as_str()));
    assert!(image_id(&third).is_some(), "kept, not forced");
    let line = r.imgguard_lines().join("\n");
    assert!(
        line.contains(&format!("kept {}: used by container {name} (exited)", &third[..19])),
        "{line}"
    );
}

/// Load of a truncated archive, of a file that is no archive, of a missing file: one line,
/// exit 2, nothing loaded and nothing recorded.
#[test]
fn bad_archives_are_refused_with_one_line() {
    let t = DockerTest::new("badarch");
    let tag = t.tag("x:v1");
    t.write_dockerfile("COPY big /big\n");
    std::fs::write(t.ctx.path().join("big"), vec![7u8; 300_000]).unwrap();
    t.build(&["-t", &tag]).assert_code(0);
    let dir = out_dir();
    let full = dir.path().join("full.tar");
    t.run(&["save", "-o", path_str(&full), &tag]).assert_code(0);
    let before = events(&t).len();
    docker(&["rmi", &tag]);

    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.path().join("cut.tar");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let r = t.run(&["load", "-i", path_str(&cut)]);
    r.assert_code(2);
    assert!(
        r.stderr.starts_with(&format!("imgguard: {}: truncated archive", path_str(&cut))),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    let cutgz = dir.path().join("cut.tar.gz");
    std::fs::write(&cutgz, &gz[..gz.len() / 2]).unwrap();
    let r = t.run(&["load", "-i", path_str(&cutgz)]);
    r.assert_code(2);
    assert!(r.stderr.contains("truncated"), "{}", r.stderr);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);

    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "these are not the layers you are looking for\n".repeat(40)).unwrap();
    let r = t.run(&["load", "-i", path_str(&foreign)]);
    r.assert_code(2);
    assert_eq!(r.stderr, format!("imgguard: {}: not a tar archive\n", path_str(&foreign)));

    let notar = dir.path().join("plain.tar");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    b.append_data(&mut h, "hello.txt", &b"hi"[..]).unwrap();
    std::fs::write(&notar, b.into_inner().unwrap()).unwrap();
    let r = t.run(&["load", "-i", path_str(&notar)]);
    r.assert_code(2);
    assert_eq!(
        r.stderr,
        format!(
            "imgguard: {}: not a docker image archive (no manifest.json in it)\n",
            path_str(&notar)
        )
    );

    let r = t.run(&["load", "-i", path_str(&dir.path().join("missing.tar"))]);
    r.assert_code(2);
    assert_eq!(r.stderr.lines().count(), 1);

    assert!(image_id(&tag).is_none(), "nothing loaded");
    assert_eq!(events(&t).len(), before, "nothing recorded");
}

/// A save that cannot be done leaves no file, and an existing target as it was.
#[test]
fn failed_saves_leave_no_file_and_the_target_intact() {
    let t = DockerTest::new("savefail");
    let tag = t.tag("x:v1");
    t.build(&["-t", &tag]).assert_code(0);
    let dir = out_dir();

    // A nonexistent image: exit 2, no file.
    let target = dir.path().join("new.tar");
    let missing = t.tag("x:missing");
    let r = t.run(&["save", "-o", path_str(&target), &missing]);
    r.assert_code(2);
    assert_eq!(r.stderr, format!("imgguard: no such image: {missing}\n"));
    assert!(listing(dir.path()).is_empty());

    // An existing target stays as it was.
    let precious = dir.path().join("precious.tar");
    std::fs::write(&precious, "keep me").unwrap();
    t.run(&["save", "-o", path_str(&precious), &missing]).assert_code(2);
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");

    // A directory imgguard cannot write to: exit 2, one line. As root permissions do not stop a
    // write, so /proc (which takes no new files) stands in for it there.
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o500)).unwrap();
    let writable = std::fs::write(locked.join("probe"), "x").is_ok();
    let unwritable: PathBuf = if writable { PathBuf::from("/proc") } else { locked.clone() };
    let _ = std::fs::remove_file(locked.join("probe"));
    let r = t.run(&["save", "-o", path_str(&unwritable.join("x.tar")), &tag]);
    r.assert_code(2);
    assert!(
        r.stderr.starts_with(&format!("imgguard: cannot write to {}: ", unwritable.display())),
        "{}",
        r.stderr
    );
    assert_eq!(r.stderr.lines().count(), 1);
    std::fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    assert!(kinds(&t, "save").is_empty(), "nothing recorded");
}

/// Without `-o`, a terminal on stdout is refused as docker does (`script` gives it one). No
/// daemon is needed for that: the refusal comes first.
#[test]
fn save_to_a_terminal_is_refused() {
    assert!(
        std::process::Command::new("script").arg("--version").output().is_ok(),
        "`script` is needed to give this test a terminal: apt-get install bsdutils"
    );
    let home = tempfile::tempdir().unwrap();
    let cmd = format!("{} save app:v1", crate::support::BIN);
    let o = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("IMGGUARD_HOME", home.path())
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(
            "imgguard: cowardly refusing to save to a terminal. Use the -o flag or redirect"
        ),
        "{text}"
    );
    assert_eq!(o.status.code(), Some(2));
}

/// A Unix-socket proxy to the daemon that cuts the connection once `limit` bytes of an
/// `/images/get` response have passed.
struct CuttingProxy {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl CuttingProxy {
    fn start(limit: usize) -> CuttingProxy {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                std::thread::spawn(move || forward(client, limit));
            }
        });
        CuttingProxy { path, _dir: dir }
    }

    fn host(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

fn forward(client: UnixStream, limit: usize) {
    let Ok(daemon) = UnixStream::connect(crate::support::daemon_socket()) else { return };
    let saving = Arc::new(AtomicBool::new(false));
    let (mut c_read, mut d_write) = (client.try_clone().unwrap(), daemon.try_clone().unwrap());
    let flag = Arc::clone(&saving);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 16 << 10];
        while let Ok(n) = c_read.read(&mut buf) {
            if n == 0 {
                break;
            }
            if String::from_utf8_lossy(&buf[..n]).contains("/images/get") {
                flag.store(true, Ordering::SeqCst);
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
    while let Ok(n) = d_read.read(&mut buf) {
        if n == 0 {
            break;
        }
        let n = if saving.load(Ordering::SeqCst) {
            let n = n.min(limit - passed);
            passed += n;
            n
        } else {
            n
        };
        if c_write.write_all(&buf[..n]).is_err() || passed >= limit {
            break;
        }
    }
    let _ = c_write.shutdown(std::net::Shutdown::Both);
    let _ = d_read.shutdown(std::net::Shutdown::Both);
}

/// The connection cut in the middle of a save: exit 2, no file at the target, no temporary
/// file left, an existing target untouched.
#[test]
fn connection_cut_mid_save_leaves_nothing() {
    let t = DockerTest::new("cut");
    let tag = t.tag("x:v1");
    t.write_dockerfile("COPY big /big\n");
    let noise: Vec<u8> =
        (0..3_000_000u32).map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[1]).collect();
    std::fs::write(t.ctx.path().join("big"), noise).unwrap();
    t.build(&["-t", &tag]).assert_code(0);
    let proxy = CuttingProxy::start(1 << 20);
    let dir = out_dir();
    let target = dir.path().join("x.tar");
    let run = |target: &Path| -> Run {
        let o = t
            .cmd(&["save", "-o", path_str(target), &tag])
            .env("DOCKER_HOST", proxy.host())
            .output()
            .unwrap();
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    };
    let r = run(&target);
    r.assert_code(2);
    assert!(!target.exists(), "no file at the target");
    assert!(listing(dir.path()).is_empty(), "no temporary file left: {:?}", listing(dir.path()));
    let last = r.stderr.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "imgguard: Docker engine: save {tag}: the daemon went away (connection lost: end of \
             file before message length reached)"
        ),
        "{}",
        r.stderr
    );

    std::fs::write(&target, "keep me").unwrap();
    run(&target).assert_code(2);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
    assert_eq!(listing(dir.path()), ["x.tar"]);
    assert!(kinds(&t, "save").is_empty(), "nothing recorded");

    // Through the same proxy with room enough, the save works (the proxy itself is sound).
    let roomy = CuttingProxy::start(usize::MAX);
    let o = t
        .cmd(&["save", "-o", path_str(&target), &tag])
        .env("DOCKER_HOST", roomy.host())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(manifest(&target)[0].1, std::slice::from_ref(&tag));
}
