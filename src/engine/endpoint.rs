//! Which daemon to talk to, resolved exactly as the docker CLI does, so that imgguard's own API
//! calls (bollard) and the `docker` child process reach the same daemon:
//!
//! 1. `DOCKER_HOST` (with `DOCKER_TLS_VERIFY` / `DOCKER_CERT_PATH`);
//! 2. else the context named by `DOCKER_CONTEXT`;
//! 3. else `currentContext` in `$DOCKER_CONFIG/config.json` (default `~/.docker`);
//! 4. a context other than `default` is read from
//!    `$DOCKER_CONFIG/contexts/meta/<sha256 of the name>/meta.json`, its TLS files from
//!    `contexts/tls/<same>/docker/`;
//! 5. else the default socket.
//!
//! bollard 0.21 knows nothing of contexts, hence this module. It reads the environment through a
//! closure so tests can hand it one.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::EngineError;

/// The default daemon socket on Unix.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A resolved endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix:///…`, `tcp://host:port`, …
    pub host: String,
    /// The docker context it came from, if any (`default` counts as none).
    pub context: Option<String>,
    /// Directory with `ca.pem`, `cert.pem`, `key.pem` when the endpoint uses TLS.
    pub tls_dir: Option<PathBuf>,
    /// Whether the server certificate is verified (only with `tls_dir`).
    pub tls_verify: bool,
}

impl Endpoint {
    /// The environment for a `docker` child process so that it talks to this same daemon,
    /// whatever contexts say: `(name, Some(value))` to set, `(name, None)` to remove.
    pub fn child_env(&self) -> Vec<(&'static str, Option<String>)> {
        let mut env = vec![("DOCKER_HOST", Some(self.host.clone())), ("DOCKER_CONTEXT", None)];
        match &self.tls_dir {
            Some(dir) => {
                env.push(("DOCKER_CERT_PATH", Some(dir.display().to_string())));
                if self.tls_verify {
                    env.push(("DOCKER_TLS_VERIFY", Some("1".into())));
                } else {
                    env.push(("DOCKER_TLS_VERIFY", None));
                    env.push(("DOCKER_TLS", Some("1".into())));
                }
            }
            None => {
                env.push(("DOCKER_TLS_VERIFY", None));
                env.push(("DOCKER_TLS", None));
            }
        }
        env
    }
}

/// Where an endpoint's host leads, checked: what [`super::docker::Engine::connect`] dials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `unix:///path`.
    Unix(PathBuf),
    /// `tcp://host:port` (also `http://` / `https://`), as `host:port`; the port defaults as the
    /// docker CLI's does (2376 with TLS, else 2375).
    Tcp(String),
    /// `ssh://[user@]host[:port]`: the docker CLI's way, `ssh … docker system dial-stdio`.
    Ssh(SshSpec),
}

/// The parts of an `ssh://` endpoint, each handed to `ssh` as its own argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshSpec {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl SshSpec {
    /// The `ssh` argv (after the program name) that runs `docker system dial-stdio` on the
    /// host, as the docker CLI builds it.
    pub fn dial_stdio_args(&self) -> Vec<String> {
        let mut args = vec!["-o".to_string(), "ConnectTimeout=30".to_string(), "-T".to_string()];
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(str::to_string));
        args
    }
}

impl Endpoint {
    /// Checks the host and says where it leads; a malformed one is bad input
    /// ([`EngineError::BadEndpoint`]), named in one line.
    pub fn target(&self) -> Result<Target, EngineError> {
        let host = self.host.as_str();
        let bad = |message: &str| EngineError::BadEndpoint {
            endpoint: host.to_string(),
            message: message.to_string(),
        };
        let Some((scheme, rest)) = host.split_once("://") else {
            return Err(bad("expected unix:///path, tcp://host:port or ssh://[user@]host[:port]"));
        };
        match scheme {
            "unix" => {
                if rest.is_empty() {
                    return Err(bad("no socket path after unix://"));
                }
                Ok(Target::Unix(PathBuf::from(rest)))
            }
            "tcp" | "http" | "https" => {
                let addr = rest.strip_suffix('/').unwrap_or(rest);
                if addr.is_empty() {
                    return Err(bad(&format!("no address after {scheme}://")));
                }
                if addr.contains('/') {
                    return Err(bad("a path after the address is not supported"));
                }
                let (name, port) = split_port(addr).map_err(|m| bad(&m))?;
                if name.is_empty() {
                    return Err(bad("no host name before the port"));
                }
                let port = port.unwrap_or(if self.tls_dir.is_some() { 2376 } else { 2375 });
                Ok(Target::Tcp(format!("{name}:{port}")))
            }
            "ssh" => {
                let rest = rest.strip_suffix('/').unwrap_or(rest);
                if rest.contains('/') {
                    return Err(bad("ssh:// takes no path (as the docker CLI)"));
                }
                let (user, addr) = match rest.rsplit_once('@') {
                    Some((u, a)) if !u.is_empty() => (Some(u.to_string()), a),
                    Some(_) => return Err(bad("empty user name before @")),
                    None => (None, rest),
                };
                let (name, port) = split_port(addr).map_err(|m| bad(&m))?;
                if name.is_empty() {
                    return Err(bad("no host after ssh://"));
                }
                if name.starts_with('-') || user.as_deref().is_some_and(|u| u.starts_with('-')) {
                    return Err(bad("a host or user name may not start with -"));
                }
                Ok(Target::Ssh(SshSpec { user, host: name.to_string(), port }))
            }
            "npipe" => Err(EngineError::Unsupported {
                endpoint: host.to_string(),
                message: "named pipes exist on Windows only".into(),
            }),
            _ => Err(bad(&format!(
                "unknown scheme {scheme}:// (expected unix://, tcp:// or ssh://)"
            ))),
        }
    }
}

/// `host:port` → (host, port); `[v6]:port` keeps its brackets; no port → `None`.
fn split_port(addr: &str) -> Result<(&str, Option<u16>), String> {
    let (name, port) = if addr.starts_with('[') {
        match addr.split_once("]:") {
            Some((h, p)) => (&addr[..=h.len()], Some(p)),
            None => (addr, None),
        }
    } else {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (addr, None),
        }
    };
    match port {
        None => Ok((name, None)),
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .map(|p| (name, Some(p)))
            .ok_or_else(|| format!("`{p}` is not a port number")),
    }
}

#[derive(Deserialize)]
struct ConfigJson {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct MetaJson {
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::HashMap<String, MetaEndpoint>,
}

#[derive(Deserialize)]
struct MetaEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// Resolves the endpoint from the process environment.
pub fn resolve_from_env() -> Result<Endpoint, EngineError> {
    resolve(&|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// Resolves the endpoint from the given environment lookup (empty values count as unset).
pub fn resolve(env: &dyn Fn(&str) -> Option<String>) -> Result<Endpoint, EngineError> {
    let config_dir = env("DOCKER_CONFIG")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".docker")))
        .unwrap_or_else(|| PathBuf::from(".docker"));

    if let Some(host) = env("DOCKER_HOST") {
        let verify = env("DOCKER_TLS_VERIFY").is_some();
        let tls = verify || env("DOCKER_TLS").is_some();
        let tls_dir =
            tls.then(|| env("DOCKER_CERT_PATH").map_or(config_dir.clone(), PathBuf::from));
        return Ok(Endpoint { host, context: None, tls_dir, tls_verify: verify });
    }

    let name = match env("DOCKER_CONTEXT") {
        Some(name) => Some(name),
        None => current_context(&config_dir)?,
    };
    match name.as_deref() {
        None | Some("default") => Ok(Endpoint {
            host: DEFAULT_HOST.to_string(),
            context: None,
            tls_dir: None,
            tls_verify: false,
        }),
        Some(name) => from_context(&config_dir, name),
    }
}

fn current_context(config_dir: &Path) -> Result<Option<String>, EngineError> {
    let path = config_dir.join("config.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(EngineError::Context {
                name: "(current)".into(),
                message: format!("cannot read {}: {e}", path.display()),
            })
        }
    };
    let cfg: ConfigJson = serde_json::from_str(&text).map_err(|e| EngineError::Context {
        name: "(current)".into(),
        message: format!("{} is not valid JSON: {e}", path.display()),
    })?;
    Ok(cfg.current_context.filter(|c| !c.is_empty()))
}

/// The directory name docker gives a context: the hex sha256 of its name.
pub fn context_dir_name(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

fn from_context(config_dir: &Path, name: &str) -> Result<Endpoint, EngineError> {
    let id = context_dir_name(name);
    let meta_path = config_dir.join("contexts").join("meta").join(&id).join("meta.json");
    let err = |message: String| EngineError::Context { name: name.to_string(), message };
    let text = std::fs::read_to_string(&meta_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            err(format!("context not found ({} does not exist)", meta_path.display()))
        } else {
            err(format!("cannot read {}: {e}", meta_path.display()))
        }
    })?;
    let meta: MetaJson = serde_json::from_str(&text)
        .map_err(|e| err(format!("{} is not valid JSON: {e}", meta_path.display())))?;
    let docker = meta
        .endpoints
        .get("docker")
        .ok_or_else(|| err(format!("{} has no docker endpoint", meta_path.display())))?;
    let host = docker
        .host
        .clone()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| err(format!("{} has no docker endpoint host", meta_path.display())))?;
    let tls = config_dir.join("contexts").join("tls").join(&id).join("docker");
    let tls_dir = tls.join("ca.pem").exists().then_some(tls);
    Ok(Endpoint {
        host,
        context: Some(name.to_string()),
        tls_verify: tls_dir.is_some() && !docker.skip_tls_verify,
        tls_dir,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> =
            pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        move |k| map.get(k).cloned()
    }

    fn write_context(config: &Path, name: &str, host: &str) {
        let dir = config.join("contexts/meta").join(context_dir_name(name));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("meta.json"),
            format!(r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
        )
        .unwrap();
    }

    #[test]
    fn context_dir_is_sha256_of_name() {
        // Same value docker itself uses for a context named "default"... of name "test".
        assert_eq!(
            context_dir_name("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn docker_host_wins_over_contexts() {
        let tmp = tempfile::tempdir().unwrap();
        write_context(tmp.path(), "remote", "tcp://10.0.0.1:2375");
        let cfg = tmp.path().to_str().unwrap();
        let e = resolve(&env_of(&[
            ("DOCKER_HOST", "unix:///tmp/x.sock"),
            ("DOCKER_CONTEXT", "remote"),
            ("DOCKER_CONFIG", cfg),
        ]))
        .unwrap();
        assert_eq!(e.host, "unix:///tmp/x.sock");
        assert_eq!(e.context, None);
    }

    #[test]
    fn docker_context_env_then_config_json() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().to_str().unwrap();
        write_context(tmp.path(), "one", "unix:///one.sock");
        write_context(tmp.path(), "two", "unix:///two.sock");
        std::fs::write(tmp.path().join("config.json"), r#"{"currentContext":"two"}"#).unwrap();
        let e = resolve(&env_of(&[("DOCKER_CONTEXT", "one"), ("DOCKER_CONFIG", cfg)])).unwrap();
        assert_eq!((e.host.as_str(), e.context.as_deref()), ("unix:///one.sock", Some("one")));
        let e = resolve(&env_of(&[("DOCKER_CONFIG", cfg)])).unwrap();
        assert_eq!((e.host.as_str(), e.context.as_deref()), ("unix:///two.sock", Some("two")));
    }

    #[test]
    fn default_context_and_no_config_use_the_socket() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().to_str().unwrap();
        let e = resolve(&env_of(&[("DOCKER_CONFIG", cfg)])).unwrap();
        assert_eq!(e.host, DEFAULT_HOST);
        let e = resolve(&env_of(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "default")])).unwrap();
        assert_eq!(e.host, DEFAULT_HOST);
    }

    #[test]
    fn missing_context_is_a_named_error() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = tmp.path().to_str().unwrap();
        let e = resolve(&env_of(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "nope")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("docker context `nope`: context not found"), "{e}");
    }

    fn target(host: &str) -> Result<Target, String> {
        let e = Endpoint { host: host.into(), context: None, tls_dir: None, tls_verify: false };
        e.target().map_err(|e| e.to_string())
    }

    #[test]
    fn endpoints_are_checked_before_dialing() {
        assert_eq!(target("unix:///run/d.sock"), Ok(Target::Unix("/run/d.sock".into())));
        assert_eq!(target("tcp://10.0.0.1:2376"), Ok(Target::Tcp("10.0.0.1:2376".into())));
        assert_eq!(target("tcp://h"), Ok(Target::Tcp("h:2375".into())));
        assert_eq!(target("tcp://[::1]:99"), Ok(Target::Tcp("[::1]:99".into())));
        assert_eq!(
            target("ssh://me@box:2222"),
            Ok(Target::Ssh(SshSpec {
                user: Some("me".into()),
                host: "box".into(),
                port: Some(2222)
            }))
        );
        assert_eq!(
            target("ssh://box"),
            Ok(Target::Ssh(SshSpec { user: None, host: "box".into(), port: None }))
        );
        for (host, message) in [
            ("tcp://", "invalid Docker endpoint `tcp://`: no address after tcp://"),
            ("tcp://h:x", "invalid Docker endpoint `tcp://h:x`: `x` is not a port number"),
            ("tcp://:2375", "invalid Docker endpoint `tcp://:2375`: no host name before the port"),
            ("unix://", "invalid Docker endpoint `unix://`: no socket path after unix://"),
            ("ssh://", "invalid Docker endpoint `ssh://`: no host after ssh://"),
            ("ssh://-oProxyCommand=x", "invalid Docker endpoint `ssh://-oProxyCommand=x`: a host or user name may not start with -"),
            ("ssh://h/path", "invalid Docker endpoint `ssh://h/path`: ssh:// takes no path (as the docker CLI)"),
            ("ftp://h", "invalid Docker endpoint `ftp://h`: unknown scheme ftp:// (expected unix://, tcp:// or ssh://)"),
            ("localhost", "invalid Docker endpoint `localhost`: expected unix:///path, tcp://host:port or ssh://[user@]host[:port]"),
        ] {
            assert_eq!(target(host), Err(message.to_string()), "{host}");
        }
    }

    #[test]
    fn ssh_argv_is_the_docker_clis() {
        let spec = SshSpec { user: Some("me".into()), host: "box".into(), port: Some(2222) };
        assert_eq!(
            spec.dial_stdio_args().join(" "),
            "-o ConnectTimeout=30 -T -l me -p 2222 -- box docker system dial-stdio"
        );
    }

    #[test]
    fn tls_context_files_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        write_context(tmp.path(), "secure", "tcp://h:2376");
        let tls = tmp.path().join("contexts/tls").join(context_dir_name("secure")).join("docker");
        std::fs::create_dir_all(&tls).unwrap();
        std::fs::write(tls.join("ca.pem"), "x").unwrap();
        let cfg = tmp.path().to_str().unwrap();
        let e = resolve(&env_of(&[("DOCKER_CONFIG", cfg), ("DOCKER_CONTEXT", "secure")])).unwrap();
        assert_eq!(e.tls_dir.as_deref(), Some(tls.as_path()));
        assert!(e.tls_verify);
        let env = e.child_env();
        assert!(env.contains(&("DOCKER_TLS_VERIFY", Some("1".into()))));
        assert!(env.contains(&("DOCKER_HOST", Some("tcp://h:2376".into()))));
    }
}
