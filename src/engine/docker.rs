//! The adapter over bollard: the only module that imports it. Everything it returns is in
//! imgguard's own types ([`ImageInfo`], [`ContainerInfo`], [`Removal`]).

use std::path::Path;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    ImportImageOptions, ListContainersOptionsBuilder, ListImagesOptions, ListImagesOptionsBuilder,
    RemoveImageOptions, TagImageOptions,
};
use bollard::{ClientVersion, Docker, API_DEFAULT_VERSION};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::{
    ContainerInfo, Endpoint, EngineError, EngineIdentity, ImageId, ImageInfo, ListedImage, Removal,
};

/// Seconds before an API call is given up on.
const TIMEOUT_SECS: u64 = 120;

/// Seconds an archive transfer may take before the daemon's first answer: Docker 20.10 writes
/// a whole `save` to a temporary directory before the first byte, and reads a whole `load`
/// before it answers, so a large image takes well over [`TIMEOUT_SECS`].
const TRANSFER_TIMEOUT_SECS: u64 = 6 * 3600;

/// A connection to one daemon, at one resolved endpoint.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: Endpoint,
    stamp: Option<String>,
}

impl Engine {
    /// Connects and agrees on an API version: bollard speaks a newer API than older daemons
    /// accept (Debian's 20.10 speaks 1.41), and newer daemons refuse APIs below their minimum, so
    /// a fixed version cannot serve both. On a Unix socket the daemon's version comes from the
    /// `Api-Version` header of `/_ping` (well under a millisecond); bollard's own negotiation
    /// calls `/version`, which costs 15 ms on Docker 20.10 (it asks containerd and runc for
    /// theirs), and remains the fallback.
    pub async fn connect(endpoint: Endpoint) -> Result<Engine, EngineError> {
        let unreachable =
            |message: String| EngineError::Unreachable { endpoint: endpoint.host.clone(), message };
        let host = endpoint.host.as_str();
        let docker = if let Some(path) = host.strip_prefix("unix://") {
            if !Path::new(path).exists() {
                return Err(unreachable("socket not found".into()));
            }
            match ping_api_version(path).await {
                Ok((Some(v), stamp)) => {
                    let v = if v < *API_DEFAULT_VERSION { v } else { *API_DEFAULT_VERSION };
                    let docker = Docker::connect_with_unix(host, TIMEOUT_SECS, &v)
                        .map_err(|e| unreachable(one_line(&e)))?;
                    return Ok(Engine { docker, endpoint, stamp });
                }
                Ok((None, _)) => Docker::connect_with_unix(host, TIMEOUT_SECS, API_DEFAULT_VERSION),
                Err(e) => return Err(unreachable(e.to_string())),
            }
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            match &endpoint.tls_dir {
                Some(dir) => Docker::connect_with_ssl(
                    host,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                ),
                None => Docker::connect_with_http(host, TIMEOUT_SECS, API_DEFAULT_VERSION),
            }
        } else {
            return Err(EngineError::Unsupported {
                endpoint: host.to_string(),
                message: "imgguard talks to unix:// and tcp:// endpoints (ssh:// is not supported)"
                    .into(),
            });
        }
        .map_err(|e| unreachable(one_line(&e)))?;
        let docker = docker.negotiate_version().await.map_err(|e| unreachable(one_line(&e)))?;
        Ok(Engine { docker, endpoint, stamp: None })
    }

    /// The endpoint this engine talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// What says that the daemon behind the endpoint is still the one it was: for a Unix socket,
    /// the socket file (device, inode, change time) and the process that answers on it (its
    /// PID), all read during the `/_ping` made to connect. A daemon restarted (the only way its
    /// data directory, and so its ID, can be replaced) answers from another PID. `None` where
    /// there is nothing so cheap to go by (TCP endpoints): ask [`Engine::identity`] each time.
    pub fn stamp(&self) -> Option<&str> {
        self.stamp.as_deref()
    }

    /// The daemon's identity (`docker info` ID).
    pub async fn identity(&self) -> Result<EngineIdentity, EngineError> {
        let info = self.docker.info().await.map_err(|e| api("info", &e))?;
        let name = info.name.unwrap_or_default();
        let id = info.id.filter(|id| !id.is_empty()).unwrap_or_else(|| {
            // Podman and some proxies report no ID: the endpoint is the best identity left.
            format!("endpoint:{}", self.endpoint.host)
        });
        Ok(EngineIdentity { id, name, endpoint: self.endpoint.host.clone() })
    }

    /// Inspects an image by reference or ID; `None` when the daemon has no such image (404).
    pub async fn inspect(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(img) => Ok(Some(ImageInfo {
                id: ImageId::new(img.id.unwrap_or_default()),
                repo_tags: img.repo_tags.unwrap_or_default(),
                created: img.created,
                size: img.size,
            })),
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => Ok(None),
            Err(e) => Err(api(&format!("inspect {reference}"), &e)),
        }
    }

    /// Every image, intermediate ones included (one `list_images(all=true)` call).
    pub async fn images(&self) -> Result<Vec<ListedImage>, EngineError> {
        let opts = ListImagesOptionsBuilder::new().all(true).build();
        let list = self.docker.list_images(Some(opts)).await.map_err(|e| api("list images", &e))?;
        Ok(list
            .into_iter()
            .map(|i| ListedImage {
                id: ImageId::new(i.id),
                parent: Some(i.parent_id).filter(|p| !p.is_empty()).map(ImageId::new),
                // Older daemons list a dangling image's tags as `<none>:<none>`.
                repo_tags: i.repo_tags.into_iter().filter(|t| t != "<none>:<none>").collect(),
                created_s: i.created,
                size: i.size,
                labels: i.labels.into_iter().collect(),
            })
            .collect())
    }

    /// Every container, running or not (one `list_containers(all=true)` call).
    pub async fn containers(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        let opts = ListContainersOptionsBuilder::new().all(true).build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| api("list containers", &e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .and_then(|n| n.into_iter().next())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_default(),
                image_id: ImageId::new(c.image_id.unwrap_or_default()),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
            })
            .collect())
    }

    /// Removes one reference (an image ID or a tag), never forced `[ref:never-forced]`: the
    /// daemon's own conflict check is the last guard. A tag of an image that keeps other tags is
    /// only untagged, as `docker rmi` does; parents freed by the removal go too
    /// (`noprune=false`), as `docker rmi`.
    pub async fn remove(&self, reference: &str) -> Result<Removal, EngineError> {
        let opts = RemoveImageOptions { force: false, noprune: false, platforms: None };
        match self.docker.remove_image(reference, Some(opts), None).await {
            Ok(items) => Ok(Removal::Removed {
                untagged: items.iter().filter_map(|i| i.untagged.clone()).collect(),
                deleted: items.into_iter().filter_map(|i| i.deleted).collect(),
            }),
            Err(BollardError::DockerResponseServerError { status_code: 409, message }) => {
                Ok(Removal::Conflict(message))
            }
            Err(BollardError::DockerResponseServerError { status_code: 404, .. }) => {
                Ok(Removal::Gone)
            }
            Err(e) => Err(api(&format!("remove {}", short(reference)), &e)),
        }
    }
}

/// A reference as people read it: an image ID shortened, anything else as it is.
fn short(reference: &str) -> &str {
    if reference.starts_with("sha256:") {
        reference.get(..19).unwrap_or(reference)
    } else {
        reference
    }
}

impl Engine {
    /// The tags of one repository (`app` → `app:v1`, `app:v2`), each with its image: what
    /// `docker save app` saves.
    pub async fn repository_tags(&self, repo: &str) -> Result<Vec<(String, ImageId)>, EngineError> {
        let filters =
            std::collections::HashMap::from([("reference".to_string(), vec![repo.to_string()])]);
        let opts = ListImagesOptions { filters: Some(filters), ..Default::default() };
        let list = self
            .docker
            .list_images(Some(opts))
            .await
            .map_err(|e| api(&format!("list {repo}"), &e))?;
        let mut out = Vec::new();
        for img in list {
            for tag in img.repo_tags {
                // The filter is a pattern; keep exactly this repository's tags.
                if tag.rsplit_once(':').is_some_and(|(r, _)| r == repo) {
                    out.push((tag, ImageId::new(img.id.clone())));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Puts `tag` (`name:tag`, familiar form) on an image.
    pub async fn tag(&self, id: &ImageId, tag: &str) -> Result<(), EngineError> {
        let (repo, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
        let opts = TagImageOptions { repo: Some(repo.to_string()), tag: Some(t.to_string()) };
        self.docker
            .tag_image(id.as_str(), Some(opts))
            .await
            .map_err(|e| api(&format!("tag {} as {tag}", id.short()), &e))
    }

    /// `docker save`: the daemon's archive of `names`, as it streams in (never collected).
    pub fn export(
        &self,
        names: &[&str],
    ) -> impl Stream<Item = Result<Bytes, EngineError>> + Unpin + Send + 'static {
        let mut docker = self.docker.clone();
        docker.set_timeout(Duration::from_secs(TRANSFER_TIMEOUT_SECS));
        let what = format!("save {}", names.join(" "));
        docker.export_images(names).map_err(move |e| api(&what, &e))
    }

    /// `docker load`: streams `body` (an archive, plain or gzip) to the daemon and returns the
    /// daemon's message lines (`Loaded image: …`). An error in `body` aborts the upload, and the
    /// daemon then loads nothing.
    pub async fn import<S>(&self, body: S) -> Result<Vec<String>, EngineError>
    where
        S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    {
        let mut docker = self.docker.clone();
        docker.set_timeout(Duration::from_secs(TRANSFER_TIMEOUT_SECS));
        let opts = ImportImageOptions { quiet: true, platform: None };
        let mut stream = docker.import_image_stream(opts, body, None).boxed();
        let mut lines = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| api("load", &e))?;
            if let Some(text) = info.stream.or(info.status) {
                lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
            }
        }
        Ok(lines)
    }
}

/// `HEAD /_ping` over the socket; the daemon's API version from the `Api-Version` header, `None`
/// when the answer has no such header (then bollard negotiates), with the daemon's stamp (see
/// [`Engine::stamp`]). An error means nothing answers.
async fn ping_api_version(path: &str) -> std::io::Result<(Option<ClientVersion>, Option<String>)> {
    use std::os::unix::fs::MetadataExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::UnixStream::connect(path).await?;
    let pid = stream.peer_cred().ok().and_then(|c| c.pid());
    let stamp = std::fs::metadata(path).ok().map(|m| {
        format!("{}:{}:{}.{}:{}", m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), pid.unwrap_or(0))
    });
    stream.write_all(b"HEAD /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n").await?;
    let mut buf = Vec::with_capacity(1024);
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(TIMEOUT_SECS),
        stream.read_to_end(&mut buf),
    )
    .await;
    if read.is_err() {
        return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer to /_ping"));
    }
    Ok((parse_api_version(&String::from_utf8_lossy(&buf)), stamp))
}

/// Reads `Api-Version: 1.41` out of an HTTP response head.
fn parse_api_version(head: &str) -> Option<ClientVersion> {
    let value = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case("api-version").then(|| value.trim())
    })?;
    let (major, minor) = value.split_once('.')?;
    Some(ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
}

fn api(what: &str, e: &BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError { message, .. } => {
            EngineError::Api { what: what.to_string(), message: message.replace('\n', " ") }
        }
        other => EngineError::Api { what: what.to_string(), message: one_line(other) },
    }
}

fn one_line(e: &BollardError) -> String {
    e.to_string().replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_header() {
        let head = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nDocker-Experimental: false\r\n\r\n";
        let v = parse_api_version(head).unwrap();
        assert_eq!((v.major_version, v.minor_version), (1, 41));
        assert!(parse_api_version("HTTP/1.1 200 OK\r\n\r\n").is_none());
        assert!(parse_api_version("HTTP/1.1 200 OK\r\nAPI-VERSION: x\r\n").is_none());
    }
}
