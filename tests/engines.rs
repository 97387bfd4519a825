//! Endpoints beyond the local socket, against real servers on loopback: TLS (a TLS-terminating
//! forwarder in front of the daemon's socket, certificates made here by openssl) and ssh (a throwaway
//! sshd with its own host and user keys on a high port, reaching the daemon through
//! `docker system dial-stdio`), through `DOCKER_HOST` and through docker contexts; and
//! malformed endpoints, which are bad input. The tools are installed by `bash tests/run.sh`; a
//! missing one fails the test with what to install.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{daemon_host, daemon_socket, engine_identity, image_id, DockerTest, Test};

/// The path of `tool`, or a failed test naming the package to install.
fn need(tool: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{tool} is needed by this test: apt-get install {package} (bash tests/run.sh does)"
            )
        })
}

#[track_caller]
fn run(program: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(program).args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, server: &mut Child) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.try_wait().unwrap() {
            panic!("the server on port {port} ended: {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(20), "nothing listens on port {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A server process, ended with the test.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A certificate authority and certificates it signs, made with openssl in a temporary dir.
struct Pki {
    dir: tempfile::TempDir,
    openssl: PathBuf,
}

impl Pki {
    fn new() -> Pki {
        Pki { dir: tempfile::tempdir().unwrap(), openssl: need("openssl", "openssl") }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `<name>.pem` and `<name>-key.pem`: a self-signed CA.
    fn ca(&self, name: &str) {
        let (cert, key) = (format!("{name}.pem"), format!("{name}-key.pem"));
        let subj = format!("/CN={name}");
        run(
            &self.openssl,
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", &key,
                "-out", &cert, "-subj", &subj,
            ],
            self.dir.path(),
        );
    }

    /// `<name>.pem` and `<name>-key.pem`, signed by `ca`, with `ext` (extensions).
    fn cert(&self, ca: &str, name: &str, ext: &str) {
        let (cert, key, csr) =
            (format!("{name}.pem"), format!("{name}-key.pem"), format!("{name}.csr"));
        let ext_file = format!("{name}.ext");
        std::fs::write(self.path(&ext_file), ext).unwrap();
        let subj = format!("/CN={name}");
        run(
            &self.openssl,
            &[
                "req", "-newkey", "rsa:2048", "-nodes", "-keyout", &key, "-out", &csr, "-subj",
                &subj,
            ],
            self.dir.path(),
        );
        let (ca_cert, ca_key) = (format!("{ca}.pem"), format!("{ca}-key.pem"));
        run(
            &self.openssl,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_cert,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &cert,
                "-extfile",
                &ext_file,
            ],
            self.dir.path(),
        );
    }

    /// A DOCKER_CERT_PATH-style directory: `ca.pem` (of `ca`), `cert.pem`, `key.pem`.
    fn client_dir(&self, ca: &str, client: &str, into: &Path) {
        std::fs::create_dir_all(into).unwrap();
        std::fs::copy(self.path(&format!("{ca}.pem")), into.join("ca.pem")).unwrap();
        std::fs::copy(self.path(&format!("{client}.pem")), into.join("cert.pem")).unwrap();
        std::fs::copy(self.path(&format!("{client}-key.pem")), into.join("key.pem")).unwrap();
    }
}

/// A TLS-terminating forwarder on a loopback port, in front of the daemon's socket; client
/// certificates are required, as dockerd's `--tlsverify` does. Python's `ssl`, not `socat
/// OPENSSL-LISTEN`: socat 1.7.4 sets no TLS session-id context, so with `verify=1` OpenSSL fails
/// every resumed session ("session id context uninitialized"), and rustls (bollard) resumes
/// sessions across connections as Go's TLS server (dockerd) allows.
const TLS_FORWARDER: &str = r#"
import socket, ssl, sys, threading
port, cert, key, ca, target = sys.argv[1:6]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
ctx.load_verify_locations(ca)
ctx.verify_mode = ssl.CERT_REQUIRED
srv = socket.create_server(("127.0.0.1", int(port)))
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.close()
        except OSError:
            pass
def serve(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError):
        c.close()
        return
    u = socket.socket(socket.AF_UNIX)
    u.connect(target)
    threading.Thread(target=pump, args=(u, t), daemon=True).start()
    pump(t, u)
while True:
    c, _ = srv.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

fn tls_forwarder(pki: &Pki, port: u16) -> Server {
    let python = need("python3", "python3");
    let script = pki.path("forward.py");
    std::fs::write(&script, TLS_FORWARDER).unwrap();
    let mut child = Command::new(python)
        .arg(&script)
        .arg(port.to_string())
        .args([pki.path("server.pem"), pki.path("server-key.pem"), pki.path("ca.pem")])
        .arg(daemon_socket())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut child);
    Server(child)
}

fn tls_pki() -> Pki {
    let pki = Pki::new();
    pki.ca("ca");
    pki.cert(
        "ca",
        "server",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
    );
    pki.cert("ca", "client", "extendedKeyUsage=clientAuth\n");
    // Another authority, which the daemon's certificate does not chain to.
    pki.ca("rogue");
    pki
}

/// `tcp://` with DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, and a context with TLS material: both
/// imgguard's own calls and the `docker build` child go through TLS to the daemon. A daemon
/// certificate that does not verify is refused in one line, exit 2, nothing done.
#[test]
fn tls_endpoint_from_env_and_from_a_context() {
    let t = DockerTest::new("tls");
    let pki = tls_pki();
    let port = free_port();
    let _socat = tls_forwarder(&pki, port);
    let host = format!("tcp://127.0.0.1:{port}");
    let certs = pki.path("docker-certs");
    pki.client_dir("ca", "client", &certs);

    let tag = t.tag("x:v1");
    let tls = |test: Test| {
        test.env("DOCKER_HOST", &host).env("DOCKER_TLS_VERIFY", "1").env("DOCKER_CERT_PATH", &certs)
    };
    tls(t.test().args(["build", "-q", "-t", &tag, "."])).run().status(0);
    assert!(image_id(&tag).is_some(), "built through TLS");
    let h = t.history(Some(&tag));
    assert_eq!(h[0]["engine"], engine_identity().as_str());
    tls(t.test().args(["explain", "--format", "json"])).run().status(0);

    // The same endpoint as a docker context with its TLS files.
    let config = tempfile::tempdir().unwrap();
    let name = "igt-tls";
    let id = imgguard::engine::endpoint::context_dir_name(name);
    let meta = config.path().join("contexts/meta").join(&id);
    std::fs::create_dir_all(&meta).unwrap();
    std::fs::write(
        meta.join("meta.json"),
        format!(
            r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        ),
    )
    .unwrap();
    pki.client_dir("ca", "client", &config.path().join("contexts/tls").join(&id).join("docker"));
    t.set_content("2");
    t.test()
        .env_remove("DOCKER_HOST")
        .env("DOCKER_CONFIG", config.path())
        .env("DOCKER_CONTEXT", name)
        .args(["build", "-q", "-t", &tag, "."])
        .run()
        .status(0);
    assert_eq!(t.states(&tag).len(), 2, "rebuilt through the context");

    // A daemon certificate from another authority: refused, one line, exit 2, nothing done.
    let rogue = pki.path("rogue-certs");
    pki.client_dir("rogue", "client", &rogue);
    let r = t
        .test()
        .env("DOCKER_HOST", &host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", &rogue)
        .args(["rmi", &tag])
        .run();
    r.status(2);
    let want = format!(
        "imgguard: TLS to {host}: the daemon's certificate does not verify against {} (invalid \
         peer certificate: UnknownIssuer)\n",
        rogue.join("ca.pem").display()
    );
    r.stderr(&want);
    assert!(image_id(&tag).is_some(), "nothing removed");

    // Missing client files are named.
    let empty = tempfile::tempdir().unwrap();
    let r = t
        .test()
        .env("DOCKER_HOST", &host)
        .env("DOCKER_TLS_VERIFY", "1")
        .env("DOCKER_CERT_PATH", empty.path())
        .args(["explain"])
        .run();
    r.status(2);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    r.stderr_has(&format!("imgguard: TLS to {host}: cannot read {}", empty.path().display()));
}

/// A throwaway sshd on a loopback port: its own host key, one authorised user key, and the
/// remote `docker` pointed at the daemon under test. `ssh` on PATH is a wrapper that gives the
/// client its config (key, known_hosts): the docker CLI and imgguard both run plain `ssh`.
struct Sshd {
    dir: tempfile::TempDir,
    port: u16,
    _server: Server,
}

impl Sshd {
    fn start() -> Sshd {
        let sshd = need("sshd", "openssh-server");
        let keygen = need("ssh-keygen", "openssh-client");
        let ssh = need("ssh", "openssh-client");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for key in ["host_key", "id", "stranger"] {
            run(&keygen, &["-q", "-t", "ed25519", "-N", "", "-C", key, "-f", key], d);
        }
        std::fs::copy(d.join("id.pub"), d.join("authorized_keys")).unwrap();
        let port = free_port();
        let host_pub = std::fs::read_to_string(d.join("host_key.pub")).unwrap();
        let mut parts = host_pub.split_whitespace();
        let (kind, key) = (parts.next().unwrap(), parts.next().unwrap());
        std::fs::write(d.join("known_hosts"), format!("[127.0.0.1]:{port} {kind} {key}\n"))
            .unwrap();
        std::fs::write(
            d.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\n\
                 AuthorizedKeysFile {dir}/authorized_keys\nPermitRootLogin prohibit-password\n\
                 PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n\
                 StrictModes no\nPidFile none\nSetEnv DOCKER_HOST={host}\n",
                dir = d.display(),
                host = daemon_host()
            ),
        )
        .unwrap();
        for (name, identity) in [("ssh_config", "id"), ("stranger_config", "stranger")] {
            std::fs::write(
                d.join(name),
                format!(
                    "Host *\n  IdentityFile {dir}/{identity}\n  IdentitiesOnly yes\n  \
                     UserKnownHostsFile {dir}/known_hosts\n  StrictHostKeyChecking yes\n  \
                     BatchMode yes\n  LogLevel ERROR\n",
                    dir = d.display()
                ),
            )
            .unwrap();
        }
        for (bin, config) in [("bin", "ssh_config"), ("stranger-bin", "stranger_config")] {
            std::fs::create_dir_all(d.join(bin)).unwrap();
            let wrapper = d.join(bin).join("ssh");
            std::fs::write(
                &wrapper,
                format!("#!/bin/sh\nexec {} -F {}/{config} \"$@\"\n", ssh.display(), d.display()),
            )
            .unwrap();
            std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
        // sshd wants its privilege-separation directory (Debian: /run/sshd).
        std::fs::create_dir_all("/run/sshd").unwrap();
        let mut child = Command::new(&sshd)
            .args(["-D", "-e", "-f"])
            .arg(d.join("sshd_config"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_for_port(port, &mut child);
        Sshd { dir, port, _server: Server(child) }
    }

    fn host(&self) -> String {
        let user = Command::new("id").arg("-un").output().unwrap();
        format!("ssh://{}@127.0.0.1:{}", String::from_utf8_lossy(&user.stdout).trim(), self.port)
    }

    /// PATH with the wrapper `ssh` (of `bin`) first.
    fn path(&self, bin: &str) -> std::ffi::OsString {
        let mut dirs = vec![self.dir.path().join(bin)];
        dirs.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()));
        std::env::join_paths(dirs).unwrap()
    }
}

/// `ssh://user@host:port`, as the docker CLI does it: imgguard's own calls and the `docker build`
/// child reach the daemon through `ssh … docker system dial-stdio`. A key the host refuses is
/// one line naming ssh's words, exit 2.
#[test]
fn ssh_endpoint_dials_stdio_through_a_real_sshd() {
    let t = DockerTest::new("ssh");
    let sshd = Sshd::start();
    let host = sshd.host();
    let tag = t.tag("x:v1");
    let over_ssh = |test: Test| test.env("DOCKER_HOST", &host).env("PATH", sshd.path("bin"));
    over_ssh(t.test().args(["build", "-q", "-t", &tag, "."])).run().status(0);
    assert!(image_id(&tag).is_some(), "built over ssh");
    assert_eq!(t.history(Some(&tag))[0]["engine"], engine_identity().as_str());
    t.set_content("2");
    over_ssh(t.test().args(["build", "-q", "-t", &tag, "."])).run().status(0);
    let states = t.states(&tag);
    assert_eq!(states[1].1, "removed", "the superseded image removed over ssh: {states:?}");
    let r = over_ssh(t.test().args(["explain", "--format", "json"])).run();
    r.status(0);
    assert!(r.stdout.starts_with('['), "{}", r.stdout);

    let r = t
        .test()
        .env("DOCKER_HOST", &host)
        .env("PATH", sshd.path("stranger-bin"))
        .args(["rmi", &tag])
        .run();
    r.status(2);
    r.stderr(&format!(
        "imgguard: ssh to {host}: {}@127.0.0.1: Permission denied (publickey).\n",
        host.trim_start_matches("ssh://").split('@').next().unwrap()
    ));
    assert!(image_id(&tag).is_some(), "nothing removed");
}

/// A malformed endpoint is bad input: its own one-line error, exit 2, no daemon asked.
#[test]
fn malformed_endpoints_are_bad_input() {
    let home = tempfile::tempdir().unwrap();
    for (host, message) in [
        ("tcp://", "no address after tcp://"),
        ("tcp://host:port", "`port` is not a port number"),
        ("ssh://", "no host after ssh://"),
        ("ssh://-oProxyCommand=touch", "a host or user name may not start with -"),
        ("bogus", "expected unix:///path, tcp://host:port or ssh://[user@]host[:port]"),
    ] {
        Test::new()
            .home(home.path())
            .env("DOCKER_HOST", host)
            .args(["explain"])
            .run()
            .status(2)
            .stderr(&format!("imgguard: invalid Docker endpoint `{host}`: {message}\n"));
    }
}

/// The daemons here keep images under a graph driver (Debian's Docker 20.10: overlay2;
/// the Podman pass: vfs); containerd's image store is detected from `info` the same way and is
/// covered by the adapter's unit tests on responses shaped like such a daemon's.
#[test]
fn the_image_store_of_the_daemon_under_test_is_detected() {
    crate::support::require_daemon();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let store = rt.block_on(async {
        let endpoint = imgguard::engine::Endpoint {
            host: daemon_host(),
            context: None,
            tls_dir: None,
            tls_verify: false,
        };
        let engine = imgguard::engine::Engine::connect(endpoint).await.unwrap();
        engine.image_store().await.unwrap()
    });
    let driver = crate::support::docker(&["info", "--format", "{{.Driver}}"]);
    assert_eq!(store, imgguard::engine::ImageStore::GraphDriver(driver));
}
