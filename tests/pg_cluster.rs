//! A throwaway PostgreSQL cluster for the fleet ledger's tests: `initdb` and `pg_ctl` from
//! `pg_config --bindir`, run as the `postgres` user when the tests run as root, in a temporary
//! directory, listening on a free loopback port (and a unix socket in that directory), with
//! `trust` authentication for loopback. Stopped and deleted when dropped, also when a test
//! panics. Shared by the unit tests (`src/ledger/conformance.rs`) and the integration tests.

#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
    running: bool,
    /// The superuser's password, when host connections need one.
    password: Option<String>,
}

fn bindir() -> PathBuf {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .expect("pg_config is missing: install PostgreSQL (Debian: apt-get install postgresql)");
    assert!(out.status.success(), "pg_config --bindir failed");
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(str::to_string))
        .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
}

/// `program args…`, as the `postgres` user when this process is root (initdb refuses root).
fn as_postgres(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

fn run(mut c: Command, what: &str) {
    let out = c.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// Creates and starts a cluster with `trust` authentication.
    pub fn start() -> Cluster {
        Cluster::start_with(None)
    }

    /// Creates and starts a cluster whose loopback connections need the superuser's
    /// `password` (scram-sha-256).
    pub fn start_with_password(password: &str) -> Cluster {
        Cluster::start_with(Some(password))
    }

    fn start_with(password: Option<&str>) -> Cluster {
        let dir = tempfile::Builder::new().prefix("imgguard-pg.").tempdir().unwrap();
        if is_root() {
            let uid = pg_user_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid.0), Some(uid.1)).unwrap();
        }
        let bindir = bindir();
        let data = dir.path().join("data");
        let data_s = data.to_str().unwrap();
        let mut args = vec!["-D", data_s, "-U", "postgres", "--no-sync", "-E", "UTF8"];
        let pwfile = dir.path().join("pw");
        let pwfile_s = pwfile.to_str().unwrap().to_string();
        match password {
            None => args.extend(["-A", "trust"]),
            Some(p) => {
                std::fs::write(&pwfile, p).unwrap();
                if is_root() {
                    let uid = pg_user_ids();
                    std::os::unix::fs::chown(&pwfile, Some(uid.0), Some(uid.1)).unwrap();
                }
                args.extend(["--auth-local=trust", "--auth-host=scram-sha-256", "--pwfile"]);
                args.push(&pwfile_s);
            }
        }
        run(as_postgres(&bindir.join("initdb"), &args), "initdb");
        let _ = std::fs::remove_file(&pwfile);
        let mut cluster = Cluster {
            dir,
            bindir,
            port: free_port(),
            running: false,
            password: password.map(str::to_string),
        };
        cluster.resume();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").to_str().unwrap().to_string()
    }

    /// Starts the (stopped) cluster again, on the same port.
    pub fn resume(&mut self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=off \
             -c max_connections=60",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").to_str().unwrap().to_string();
        run(
            as_postgres(
                &self.bindir.join("pg_ctl"),
                &["-D", &self.data(), "-o", &options, "-l", &log, "-w", "-t", "60", "start"],
            ),
            "pg_ctl start",
        );
        self.running = true;
    }

    /// Stops the cluster (fast shutdown), keeping its data.
    pub fn stop(&mut self) {
        run(
            as_postgres(
                &self.bindir.join("pg_ctl"),
                &["-D", &self.data(), "-m", "fast", "-w", "stop"],
            ),
            "pg_ctl stop",
        );
        self.running = false;
    }

    /// The URL of database `db` (created by [`Cluster::create_db`], or `postgres`).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable", self.port)
    }

    /// Runs SQL as the superuser in database `postgres`.
    pub fn sql(&self, sql: &str) {
        let url = match &self.password {
            Some(p) => self.url("postgres").replace("postgres@", &format!("postgres:{p}@")),
            None => self.url("postgres"),
        };
        let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        c.batch_execute(sql).unwrap();
    }

    /// Creates database `db`.
    pub fn create_db(&self, db: &str) {
        self.sql(&format!("CREATE DATABASE {db}"));
    }
}

fn pg_user_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("the postgres system user is missing");
    let f: Vec<&str> = line.split(':').collect();
    (f[2].parse().unwrap(), f[3].parse().unwrap())
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.running {
            let _ = as_postgres(
                &self.bindir.join("pg_ctl"),
                &["-D", &self.data(), "-m", "immediate", "-w", "stop"],
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        }
    }
}
