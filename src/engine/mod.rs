//! The Docker engine, in imgguard's terms: domain types, the endpoint the docker CLI would use,
//! and the adapter over bollard ([`docker`], the only module that imports bollard).

pub mod docker;
pub mod endpoint;
pub mod handshake;

pub use docker::{Engine, Flavor, ImageStore};
pub use endpoint::Endpoint;

pub use crate::core::image::{
    ContainerInfo, EngineIdentity, ImageId, ImageInfo, ListedImage, Removal,
};

/// Errors talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// No daemon answers at the endpoint.
    #[error(
        "cannot reach the Docker engine at {endpoint}: {message} (is dockerd running? \
         start it with `sudo systemctl start docker` or `sudo dockerd &`)"
    )]
    Unreachable { endpoint: String, message: String },
    /// The docker context named in the environment or config.json cannot be used.
    #[error("docker context `{name}`: {message}")]
    Context { name: String, message: String },
    /// The endpoint is malformed: bad input, not an unreachable daemon.
    #[error("invalid Docker endpoint `{endpoint}`: {message}")]
    BadEndpoint { endpoint: String, message: String },
    /// The TLS connection failed: the daemon's certificate does not verify, or the client's own
    /// certificate files cannot be used.
    #[error("TLS to {endpoint}: {message}")]
    Tls { endpoint: String, message: String },
    /// ssh to an `ssh://` endpoint failed (ssh's own words).
    #[error("ssh to {endpoint}: {message}")]
    Ssh { endpoint: String, message: String },
    /// The endpoint is of a kind imgguard cannot talk to.
    #[error("unsupported Docker endpoint `{endpoint}`: {message}")]
    Unsupported { endpoint: String, message: String },
    /// The daemon answered with an error.
    #[error("Docker engine: {what}: {message}")]
    Api { what: String, message: String },
    /// The connection broke in the middle of a call: the daemon stopped, restarted or was killed
    /// (or something between cut the connection).
    #[error("Docker engine: {what}: the daemon went away (connection lost: {message})")]
    WentAway { what: String, message: String },
}
