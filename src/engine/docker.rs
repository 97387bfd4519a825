//! The adapter over bollard: the only module that imports it. Everything it returns is in
//! imgguard's own types ([`ImageInfo`], [`ContainerInfo`], [`Removal`]).

use std::path::Path;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    EventsOptions, ImportImageOptions, ListContainersOptionsBuilder, ListImagesOptions,
    ListImagesOptionsBuilder, RemoveImageOptions, TagImageOptions,
};
use bollard::{BollardRequest, ClientVersion, Docker, API_DEFAULT_VERSION};
use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt};

use super::endpoint::Target;
use super::handshake::{self, Handshake};
use super::{
    ContainerInfo, Endpoint, EngineError, EngineIdentity, ImageId, ImageInfo, ListedImage, Removal,
};
use crate::core::watch::{DaemonEvent, Subject};

/// Seconds before an API call is given up on.
const TIMEOUT_SECS: u64 = 120;

/// Seconds an archive transfer may take before the daemon's first answer: Docker 20.10 writes
/// a whole `save` to a temporary directory before the first byte, and reads a whole `load`
/// before it answers, so a large image takes well over [`TIMEOUT_SECS`].
const TRANSFER_TIMEOUT_SECS: u64 = 6 * 3600;

/// How many times a list that met one of Podman's passing states is asked again
/// (100 ms apart).
const PODMAN_RETRIES: u32 = 50;

/// A connection to one daemon, at one resolved endpoint.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    endpoint: Endpoint,
    /// What kind of engine answers (dockerd or Podman), learnt while connecting.
    flavor: Flavor,
    /// What says the daemon is still the one it was (see [`Engine::stamp`]).
    stamp: Option<String>,
    /// The handshake learnt by `/_ping` while connecting, when one was made.
    fresh: Option<Handshake>,
}

/// The kinds of engine that speak the Docker API and differ in ways the adapter hides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// dockerd (moby).
    Docker,
    /// Podman's Docker-compatible API service (`podman system service`).
    Podman,
}

impl Engine {
    /// Connects and agrees on an API version: bollard speaks a newer API than older daemons
    /// accept (Debian's 20.10 speaks 1.41), and newer daemons refuse APIs below their minimum, so
    /// a fixed version cannot serve both. On a Unix socket the daemon's version comes from the
    /// `Api-Version` header of `/_ping` (well under a millisecond); bollard's own negotiation
    /// calls `/version`, which costs 15 ms on Docker 20.10 (it asks containerd and runc for
    /// theirs), and remains the fallback.
    pub async fn connect(endpoint: Endpoint) -> Result<Engine, EngineError> {
        Engine::connect_remembering(endpoint, "", 0).await
    }

    /// [`Engine::connect`], skipping `/_ping` on a Unix socket when `remembered` (the text of
    /// the handshake cache, [`super::handshake`]) holds a recent handshake of this endpoint
    /// under the daemon's current stamp. A handshake learnt by pinging is then
    /// [`Engine::fresh_handshake`], for the caller to remember.
    pub async fn connect_remembering(
        endpoint: Endpoint,
        remembered: &str,
        now_ms: i64,
    ) -> Result<Engine, EngineError> {
        let unreachable =
            |message: String| EngineError::Unreachable { endpoint: endpoint.host.clone(), message };
        let host = endpoint.host.as_str();
        let docker = match endpoint.target()? {
            Target::Unix(path) => {
                if !path.exists() {
                    return Err(unreachable("socket not found".into()));
                }
                let (stream, stamp) =
                    stamped(&path).await.map_err(|e| unreachable(e.to_string()))?;
                let known =
                    stamp.as_deref().and_then(|s| handshake::lookup(remembered, host, s, now_ms));
                if let Some(known) = known {
                    drop(stream);
                    let (major_version, minor_version) = known.api_version;
                    let v = at_most_ours(ClientVersion { major_version, minor_version });
                    let docker = Docker::connect_with_unix(host, TIMEOUT_SECS, &v)
                        .map_err(|e| unreachable(one_line(&e)))?;
                    let flavor = known.flavor;
                    return Ok(Engine { docker, endpoint, flavor, stamp, fresh: None });
                }
                match ping(stream).await {
                    Ok(Ping { version: Some(v), flavor }) => {
                        let fresh = stamp.clone().map(|stamp| Handshake {
                            endpoint: host.to_string(),
                            stamp,
                            api_version: (v.major_version, v.minor_version),
                            flavor,
                            at_ms: now_ms,
                        });
                        let v = at_most_ours(v);
                        let docker = Docker::connect_with_unix(host, TIMEOUT_SECS, &v)
                            .map_err(|e| unreachable(one_line(&e)))?;
                        return Ok(Engine { docker, endpoint, flavor, stamp, fresh });
                    }
                    Ok(Ping { version: None, .. }) => {
                        Docker::connect_with_unix(host, TIMEOUT_SECS, API_DEFAULT_VERSION)
                    }
                    Err(e) => return Err(unreachable(e.to_string())),
                }
            }
            // With TLS material the daemon's certificate is always verified against `ca.pem`
            // (DOCKER_TLS without DOCKER_TLS_VERIFY does not turn verification off here).
            Target::Tcp(addr) => match &endpoint.tls_dir {
                Some(dir) => Docker::connect_with_ssl(
                    &addr,
                    &dir.join("key.pem"),
                    &dir.join("cert.pem"),
                    &dir.join("ca.pem"),
                    TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                ),
                None => Docker::connect_with_http(
                    &format!("tcp://{addr}"),
                    TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                ),
            },
            Target::Ssh(spec) => {
                let args = spec.dial_stdio_args();
                Docker::connect_with_custom_transport(
                    move |req: BollardRequest| ssh_request(args.clone(), req),
                    Some("http://docker"),
                    TIMEOUT_SECS,
                    API_DEFAULT_VERSION,
                )
            }
        }
        .map_err(|e| connect_error(&endpoint, &e))?;
        let docker = docker.negotiate_version().await.map_err(|e| connect_error(&endpoint, &e))?;
        // Off a Unix socket there are no cheap ping headers to read: `/version` names the kind.
        let version = docker.version().await.map_err(|e| connect_error(&endpoint, &e))?;
        let flavor =
            flavor_of_components(version.components.iter().flatten().map(|c| c.name.as_str()));
        Ok(Engine { docker, endpoint, flavor, stamp: None, fresh: None })
    }

    /// The handshake `/_ping` taught while connecting (none when a remembered one was used, or
    /// off a Unix socket): worth remembering ([`super::handshake::remember`]).
    pub fn fresh_handshake(&self) -> Option<&Handshake> {
        self.fresh.as_ref()
    }

    /// The endpoint this engine talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// What says that the daemon behind the endpoint is still the one it was: for a Unix socket,
    /// the socket file (device, inode, change time) and the process that answers on it (its
    /// PID), all read during the `/_ping` made to connect. A daemon restarted (the only way its
    /// data directory, and so its ID, can be replaced) answers from another PID. `None` where
    /// there is nothing so cheap to go by (TCP, ssh): ask [`Engine::identity`] each time.
    pub fn stamp(&self) -> Option<&str> {
        self.stamp.as_deref()
    }

    /// The daemon's identity: what keys its image IDs in the ledger.
    ///
    /// dockerd: its `docker info` ID, stable for the life of its data root. Podman answers
    /// `info` with a new random ID on every call, so there the identity is made of what stays:
    /// `podman:<host name>:<storage root>` (one storage holds one set of image IDs).
    pub async fn identity(&self) -> Result<EngineIdentity, EngineError> {
        let info = self.docker.info().await.map_err(|e| api("info", &e))?;
        Ok(identity_of(
            self.flavor,
            info.id.as_deref(),
            info.name.as_deref(),
            info.docker_root_dir.as_deref(),
            &self.endpoint.host,
        ))
    }

    /// The kind of engine.
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Inspects an image by reference or ID; `None` when the daemon has no such image (404).
    pub async fn inspect(&self, reference: &str) -> Result<Option<ImageInfo>, EngineError> {
        match self.docker.inspect_image(reference).await {
            Ok(img) => Ok(Some(image_info(img))),
            Err(BollardError::DockerResponseServerError { status_code, message })
                if inspect_gone(status_code, &message) =>
            {
                Ok(None)
            }
            Err(e) => Err(api(&format!("inspect {reference}"), &e)),
        }
    }

    /// Every image, intermediate ones included (one `list_images(all=true)` call).
    pub async fn images(&self) -> Result<Vec<ListedImage>, EngineError> {
        let opts = ListImagesOptionsBuilder::new().all(true).build();
        Ok(listed_images(self.list_images_retrying(opts, "list images").await?))
    }

    /// One image list. Podman fails the whole list when an image goes away while it lists
    /// (another client removing one): then it is asked again, every image list alike.
    async fn list_images_retrying(
        &self,
        opts: ListImagesOptions,
        what: &str,
    ) -> Result<Vec<bollard::models::ImageSummary>, EngineError> {
        let mut tries = 0;
        loop {
            match self.docker.list_images(Some(opts.clone())).await {
                Err(e)
                    if self.flavor == Flavor::Podman
                        && is_podman_list_race(&e)
                        && tries < PODMAN_RETRIES =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other.map_err(|e| api(what, &e)),
            }
        }
    }

    /// Where the daemon keeps its images: its graph driver, or containerd's image store
    /// (`docker info` driver status `driver-type io.containerd.snapshotter.v1`; the default of
    /// fresh Docker 29 installs). [`Engine::images`] and [`Engine::inspect`] hand the core the same
    /// facts from both; this says which one answered.
    pub async fn image_store(&self) -> Result<ImageStore, EngineError> {
        let info = self.docker.info().await.map_err(|e| api("info", &e))?;
        Ok(image_store_of(info.driver.as_deref(), info.driver_status.as_deref()))
    }

    /// The parent of each image that has one (the legacy builder records them): of the
    /// dangling images only (one short list call) or of all.
    pub async fn parents(
        &self,
        dangling_only: bool,
    ) -> Result<std::collections::HashMap<ImageId, ImageId>, EngineError> {
        let opts = if dangling_only {
            let filters = std::collections::HashMap::from([(
                "dangling".to_string(),
                vec!["true".to_string()],
            )]);
            ListImagesOptions { filters: Some(filters), ..Default::default() }
        } else {
            ListImagesOptionsBuilder::new().all(true).build()
        };
        let list = self.list_images_retrying(opts, "list images").await?;
        Ok(list
            .into_iter()
            .filter(|i| !i.parent_id.is_empty())
            .map(|i| (ImageId::new(i.id), ImageId::new(i.parent_id)))
            .collect())
    }

    /// Every container, running or not (one `list_containers(all=true)` call).
    pub async fn containers(&self) -> Result<Vec<ContainerInfo>, EngineError> {
        let opts = ListContainersOptionsBuilder::new().all(true).build();
        let mut tries = 0;
        let list = loop {
            match self.docker.list_containers(Some(opts.clone())).await {
                // Podman reports `stopped` for the moment between a container's end and its
                // clean-up (then `exited`), a state the Docker API (and bollard) does not know:
                // ask again shortly rather than guess what else the list held.
                Err(e) if is_transient_podman_state(&e) && tries < PODMAN_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other.map_err(|e| api("list containers", &e))?,
            }
        };
        Ok(list.into_iter().map(container_info).collect())
    }

    /// Removes one reference (an image ID or a tag), never forced `[ref:never-forced]`: the
    /// daemon's own conflict check is the last guard. A tag of an image that keeps other tags is
    /// only untagged, as `docker rmi` does. Parents freed by the removal stay (`noprune=true`):
    /// an untagged parent is the legacy builder's cache, which a concurrent build may have just
    /// picked to build on; `crate::flow::apply` frees them later (`[ref:removal-grace]`).
    pub async fn remove(&self, reference: &str) -> Result<Removal, EngineError> {
        let opts = RemoveImageOptions { force: false, noprune: true, platforms: None };
        match self.docker.remove_image(reference, Some(opts), None).await {
            Ok(items) => Ok(Removal::Removed {
                untagged: familiar_tags(items.iter().filter_map(|i| i.untagged.clone()).collect()),
                deleted: items.into_iter().filter_map(|i| i.deleted).map(full_id).collect(),
            }),
            Err(BollardError::DockerResponseServerError { status_code, message })
                if is_gone(status_code, &message) =>
            {
                Ok(Removal::Gone)
            }
            Err(BollardError::DockerResponseServerError { status_code: 409, message }) => {
                Ok(Removal::Conflict(conflict_message(&message)))
            }
            Err(e) => Err(api(&format!("remove {}", short(reference)), &e)),
        }
    }
}

/// Whether the daemon's answer to a removal says the image is already gone: a 404, or — when
/// another process removed it between the daemon's lookup and its delete — Docker 20.10's 409
/// or 500 with `unrecognized image ID` or `No such image`.
fn is_gone(status: u16, message: &str) -> bool {
    status == 404
        || matches!(status, 409 | 500)
            && (message.contains("unrecognized image ID") || message.contains("No such image"))
}

/// Whether the daemon's answer to an inspect says the image is gone: a 404, or — when another
/// process is deleting it at that moment — Docker 20.10's 500 `layer does not exist` (the image
/// store still names the image whose layers the delete has just released; seen on the shared
/// test daemon while builds were being killed). Either way there is nothing left to decide about.
fn inspect_gone(status: u16, message: &str) -> bool {
    status == 404 || status == 500 && message.contains("layer does not exist")
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
        // Podman 4.3's `reference` filter matches nothing given a familiar name (it compares
        // against `docker.io/library/…`): there the list is filtered here only.
        let filters = (self.flavor == Flavor::Docker).then(|| {
            std::collections::HashMap::from([("reference".to_string(), vec![repo.to_string()])])
        });
        let opts = ListImagesOptions { filters, ..Default::default() };
        let list = self.list_images_retrying(opts, &format!("list {repo}")).await?;
        let mut out = Vec::new();
        for img in list {
            for tag in familiar_tags(img.repo_tags) {
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
        // Podman 4.3's API loads only plain tar archives: gzip is unpacked on the way.
        let body = match self.flavor {
            Flavor::Docker => body.boxed(),
            Flavor::Podman => gunzip_if_gzip(body).boxed(),
        };
        let mut stream = docker.import_image_stream(opts, body, None).boxed();
        let mut lines = Vec::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| api("load", &e))?;
            if let Some(text) = info.stream.or(info.status) {
                lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(familiar_line));
            }
        }
        Ok(lines)
    }
}

impl Engine {
    /// The daemon's image and container events from `since` (ns since the epoch; `None`: from
    /// now) to `until` (`None`: for as long as the connection lasts), in order. A lost connection
    /// ends the stream with [`EngineError::WentAway`].
    pub fn events(
        &self,
        since_ns: Option<i64>,
        until_ns: Option<i64>,
    ) -> impl Stream<Item = Result<DaemonEvent, EngineError>> + Unpin + Send + 'static {
        let mut docker = self.docker.clone();
        // A subscription lasts as long as the daemon does.
        docker.set_timeout(Duration::from_secs(10 * 365 * 24 * 3600));
        let stamp = |ns: i64| {
            format!("{}.{:09}", ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))
        };
        let filters = std::collections::HashMap::from([(
            "type".to_string(),
            vec!["image".to_string(), "container".to_string()],
        )]);
        let opts = EventsOptions {
            since: since_ns.map(stamp),
            until: until_ns.map(stamp),
            filters: Some(filters),
        };
        docker.events(Some(opts)).map(|m| m.map(daemon_event).map_err(|e| events_error(&e))).boxed()
    }
}

/// An error of the event stream: the daemon's answer, else the connection broke (a message cut
/// short when the connection was cut is that too, not a bad answer).
fn events_error(e: &BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError { .. } => api("events", e),
        _ => EngineError::WentAway { what: "events".into(), message: root_cause(e) },
    }
}

/// One event message in imgguard's words.
fn daemon_event(m: bollard::models::EventMessage) -> DaemonEvent {
    use bollard::models::EventMessageTypeEnum as T;
    let subject = match m.typ {
        Some(T::IMAGE) => Subject::Image,
        Some(T::CONTAINER) => Subject::Container,
        _ => Subject::Other,
    };
    let actor = m.actor.unwrap_or_default();
    let mut attributes = actor.attributes.unwrap_or_default();
    let time_nano = m.time_nano.or_else(|| m.time.map(|s| s.saturating_mul(1_000_000_000)));
    let action = m.action.unwrap_or_default();
    let name = attributes.remove("name");
    // Podman's `build` event names the new image in `name` and has no actor ID.
    let id = match actor.id.filter(|i| !i.is_empty()) {
        Some(id) => id,
        None if subject == Subject::Image && action == "build" => name.clone().unwrap_or_default(),
        None => String::new(),
    };
    // Podman spells names in full (`docker.io/library/app:v1`).
    let name = match subject {
        Subject::Image => name.map(|n| familiar(&n)),
        _ => name,
    };
    for noise in ["containerExitCode", "podId"] {
        attributes.remove(noise);
    }
    DaemonEvent {
        time_nano: time_nano.unwrap_or_default(),
        subject,
        action,
        id,
        name,
        image: attributes.remove("image").filter(|i| !i.is_empty()).map(|i| familiar(&i)),
        labels: attributes.into_iter().collect(),
        tags_now: None,
    }
}

/// What `/_ping` says.
struct Ping {
    /// The `Api-Version` header; `None` when absent (then bollard negotiates).
    version: Option<ClientVersion>,
    flavor: Flavor,
}

/// A connection to the socket and the daemon's stamp (see [`Engine::stamp`]), read from the
/// connection (the PID answering) and the socket file. An error means nothing listens.
async fn stamped(path: &Path) -> std::io::Result<(tokio::net::UnixStream, Option<String>)> {
    use std::os::unix::fs::MetadataExt;
    let stream = tokio::net::UnixStream::connect(path).await?;
    let pid = stream.peer_cred().ok().and_then(|c| c.pid());
    let stamp = std::fs::metadata(path).ok().map(|m| {
        format!("{}:{}:{}.{}:{}", m.dev(), m.ino(), m.ctime(), m.ctime_nsec(), pid.unwrap_or(0))
    });
    Ok((stream, stamp))
}

/// `HEAD /_ping` over the connection: the daemon's API version and kind, from the headers. An
/// error means nothing answers.
async fn ping(mut stream: tokio::net::UnixStream) -> std::io::Result<Ping> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    let head = String::from_utf8_lossy(&buf);
    Ok(Ping { version: parse_api_version(&head), flavor: flavor_of_ping(&head) })
}

/// Podman's API service answers `/_ping` with `Libpod-Api-Version`; dockerd does not.
fn flavor_of_ping(head: &str) -> Flavor {
    if header(head, "libpod-api-version").is_some() {
        Flavor::Podman
    } else {
        Flavor::Docker
    }
}

/// The kind of engine from `/version`'s component names (`Engine` for dockerd, `Podman Engine`).
fn flavor_of_components<'a>(mut names: impl Iterator<Item = &'a str>) -> Flavor {
    if names.any(|n| n.starts_with("Podman")) {
        Flavor::Podman
    } else {
        Flavor::Docker
    }
}

/// The engine's identity from `info` (see [`Engine::identity`]).
fn identity_of(
    flavor: Flavor,
    id: Option<&str>,
    name: Option<&str>,
    root_dir: Option<&str>,
    host: &str,
) -> EngineIdentity {
    let name = name.unwrap_or_default().to_string();
    let id = match (flavor, id.filter(|id| !id.is_empty())) {
        (Flavor::Podman, _) => format!("podman:{name}:{}", root_dir.unwrap_or_default()),
        (Flavor::Docker, Some(id)) => id.to_string(),
        // Some proxies report no ID: the endpoint is the best identity left.
        (Flavor::Docker, None) => format!("endpoint:{host}"),
    };
    EngineIdentity { id, name, endpoint: host.to_string() }
}

/// Where a daemon keeps its images.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageStore {
    /// The classic store under a graph driver (`overlay2`, `vfs`, …; Podman's storage too):
    /// image IDs are config digests, the legacy builder records parents.
    GraphDriver(String),
    /// containerd's image store (Docker 24+ with the containerd snapshotter): image IDs are
    /// manifest or index digests, a replaced image is kept as a `moby-dangling@sha256:…` record
    /// (or, after a BuildKit rebuild, may not be kept at all), nothing records parents.
    Containerd,
}

/// The image store from `info`'s `Driver` and `DriverStatus`.
fn image_store_of(driver: Option<&str>, status: Option<&[Vec<String>]>) -> ImageStore {
    let containerd = status.unwrap_or_default().iter().any(|pair| {
        pair.first().is_some_and(|k| k == "driver-type")
            && pair.get(1).is_some_and(|v| v == "io.containerd.snapshotter.v1")
    });
    if containerd {
        ImageStore::Containerd
    } else {
        ImageStore::GraphDriver(driver.unwrap_or_default().to_string())
    }
}

/// One container in imgguard's terms. On either store its `ImageID` is the image's ID as the
/// image list gives it (containerd's store: the index digest), so "in use" compares like with like.
fn container_info(c: bollard::models::ContainerSummary) -> ContainerInfo {
    ContainerInfo {
        id: c.id.unwrap_or_default(),
        name: c
            .names
            .and_then(|n| n.into_iter().next())
            .map(|n| n.trim_start_matches('/').to_string())
            .unwrap_or_default(),
        image_id: ImageId::new(c.image_id.unwrap_or_default()),
        state: c.state.map(|s| s.to_string()).unwrap_or_default(),
    }
}

/// One image inspected, in imgguard's terms (names familiar, the ID in full).
fn image_info(img: bollard::models::ImageInspect) -> ImageInfo {
    ImageInfo {
        id: ImageId::new(img.id.unwrap_or_default()),
        repo_tags: familiar_tags(img.repo_tags.unwrap_or_default()),
        created: img.created,
        size: img.size,
        labels: img
            .config
            .and_then(|c| c.labels)
            .map(|l| l.into_iter().collect())
            .unwrap_or_default(),
    }
}

/// The image list in imgguard's terms, the same facts from every store:
/// - names familiar, and no pseudo-names (`<none>:<none>`, `<none>@<none>`, containerd's
///   `moby-dangling@…` records): an image without a real name has no tags;
/// - one entry per image ID: containerd's store before Docker 25 lists an image once per
///   platform it holds (same ID each time); the entries are merged (tags and labels united, the
///   largest size, the earliest creation);
/// - no parent where the daemon records none (containerd's store never does).
fn listed_images(list: Vec<bollard::models::ImageSummary>) -> Vec<ListedImage> {
    let mut out: Vec<ListedImage> = Vec::with_capacity(list.len());
    let mut at: std::collections::HashMap<ImageId, usize> = std::collections::HashMap::new();
    for i in list {
        let image = ListedImage {
            id: ImageId::new(i.id),
            parent: Some(i.parent_id).filter(|p| !p.is_empty()).map(ImageId::new),
            repo_tags: familiar_tags(i.repo_tags),
            created_s: i.created,
            size: i.size,
            labels: i.labels.into_iter().collect(),
        };
        match at.get(&image.id) {
            Some(&k) => {
                let seen = &mut out[k];
                for t in image.repo_tags {
                    if !seen.repo_tags.contains(&t) {
                        seen.repo_tags.push(t);
                    }
                }
                seen.size = seen.size.max(image.size);
                seen.created_s = seen.created_s.min(image.created_s);
                seen.labels.extend(image.labels);
                if seen.parent.is_none() {
                    seen.parent = image.parent;
                }
            }
            None => {
                at.insert(image.id.clone(), out.len());
                out.push(image);
            }
        }
    }
    out
}

/// A tag in the familiar form dockerd reports and users type: Podman spells every name in
/// full (`docker.io/library/app:v1`, `docker.io/me/app:v1`), dockerd shortens the Docker Hub
/// ones (`app:v1`, `me/app:v1`). Older daemons list a dangling image as `<none>:<none>`, which is
/// no tag at all.
fn familiar_tags(tags: Vec<String>) -> Vec<String> {
    tags.into_iter()
        .filter(|t| {
            t != "<none>:<none>" && t != "<none>@<none>" && !t.starts_with("moby-dangling@")
        })
        .map(|t| familiar(&t))
        .collect()
}

fn familiar(name: &str) -> String {
    let short = name.strip_prefix("docker.io/library/").or_else(|| name.strip_prefix("docker.io/"));
    match short {
        // `docker.io/library/x` is `x`; `docker.io/me/x` is `me/x`. A name whose first part
        // still looks like a registry would change meaning without its prefix: keep it.
        Some(rest) if !looks_like_registry(rest) => rest.to_string(),
        _ => name.to_string(),
    }
}

/// Whether a name's first part names a registry (`host.tld/…`, `host:5000/…`, `localhost/…`).
fn looks_like_registry(name: &str) -> bool {
    name.split_once('/')
        .is_some_and(|(first, _)| first.contains(['.', ':']) || first == "localhost")
}

/// A daemon message line with the image name in familiar form (`Loaded image: app:v1`).
fn familiar_line(line: &str) -> String {
    match line.split_once(": ") {
        Some((head, name)) if head.starts_with("Loaded image") => {
            format!("{head}: {}", familiar(name.trim()))
        }
        _ => line.to_string(),
    }
}

/// The daemon's refusal in its words, less advice imgguard will never take: Podman ends an
/// in-use conflict with "consider listing external containers and force-removing image".
fn conflict_message(message: &str) -> String {
    let one = message.replace('\n', " ");
    let advice = ": consider listing external containers and force-removing image";
    one.strip_suffix(advice).unwrap_or(&one).trim().to_string()
}

/// bollard's refusal of Podman's `stopped` container state (see [`Engine::containers`]).
fn is_transient_podman_state(e: &BollardError) -> bool {
    matches!(e, BollardError::JsonDataError { message, .. } if message.contains("unknown variant `stopped`"))
}

/// Podman's image list failing on an image removed meanwhile (see [`Engine::images`]): its
/// record already gone ("image not known"), or its files ("locating item named \"manifest\"
/// for image with ID …: file does not exist"; "reading data blob size \"signature-…\" for …:
/// size is not known", seen with four builds removing each other's old images at once).
fn is_podman_list_race(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code: 500, message }
        if message.contains("image not known")
            || (message.contains("locating item named") && message.contains("file does not exist"))
            || (message.contains("reading data blob size") && message.contains("size is not known")))
}

/// The body, gunzipped when it starts with gzip's magic bytes; as it streams, in constant memory.
fn gunzip_if_gzip<S>(body: S) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
{
    use std::io::Write as _;
    enum Kind {
        /// Before the first chunk.
        Unknown,
        Plain,
        Gzip(Box<flate2::write::GzDecoder<Vec<u8>>>),
    }
    struct State<S> {
        body: std::pin::Pin<Box<S>>,
        kind: Kind,
        done: bool,
    }
    let state = State { body: Box::pin(body), kind: Kind::Unknown, done: false };
    futures_util::stream::unfold(state, |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            let Some(item) = st.body.next().await else {
                st.done = true;
                let rest = match std::mem::replace(&mut st.kind, Kind::Plain) {
                    Kind::Gzip(dec) => dec.finish(),
                    Kind::Unknown | Kind::Plain => return None,
                };
                return Some((rest.map(Bytes::from), st));
            };
            let chunk = match item {
                Ok(chunk) => chunk,
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
            };
            if matches!(st.kind, Kind::Unknown) {
                st.kind = if chunk.starts_with(&[0x1f, 0x8b]) {
                    Kind::Gzip(Box::new(flate2::write::GzDecoder::new(Vec::new())))
                } else {
                    Kind::Plain
                };
            }
            let Kind::Gzip(dec) = &mut st.kind else { return Some((Ok(chunk), st)) };
            if let Err(e) = dec.write_all(&chunk) {
                st.done = true;
                return Some((Err(e), st));
            }
            let out = std::mem::take(dec.get_mut());
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), st));
            }
        }
    })
}

/// An image ID in full `sha256:` form (Podman reports deleted IDs bare).
fn full_id(id: String) -> String {
    ImageId::new(id).as_str().to_string()
}

fn header<'a>(head: &'a str, wanted: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim().eq_ignore_ascii_case(wanted).then(|| value.trim())
    })
}

/// The daemon's API version, or bollard's when the daemon speaks a newer one.
fn at_most_ours(v: ClientVersion) -> ClientVersion {
    if v < *API_DEFAULT_VERSION {
        v
    } else {
        *API_DEFAULT_VERSION
    }
}

/// Reads `Api-Version: 1.41` out of an HTTP response head.
fn parse_api_version(head: &str) -> Option<ClientVersion> {
    let value = header(head, "api-version")?;
    let (major, minor) = value.split_once('.')?;
    Some(ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
}

/// One HTTP exchange over `ssh … docker system dial-stdio`, as the docker CLI reaches an
/// `ssh://` host: ssh runs the remote docker CLI, which joins its stdin/stdout to the remote
/// daemon's socket. One ssh process per request (bollard asks a few times per command); it is
/// killed when the response has been read. The argv is built from the checked endpoint
/// ([`super::endpoint::SshSpec`]), never through a shell.
async fn ssh_request(
    args: Vec<String>,
    req: BollardRequest,
) -> Result<hyper::Response<hyper::body::Incoming>, BollardError> {
    let mut child = tokio::process::Command::new("ssh")
        .args(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| std::io::Error::new(e.kind(), format!("ssh: cannot run ssh: {e}")))?;
    // Invariant: all three were set to piped just above.
    let (stdin, stdout, mut stderr) =
        (child.stdin.take().unwrap(), child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let io = hyper_util::rt::TokioIo::new(tokio::io::join(stdout, stdin));
    let why = |e: String, stderr_text: String| {
        let said = stderr_text.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string);
        std::io::Error::other(format!("ssh: {}", said.unwrap_or(e)))
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(io).await {
        Ok(pair) => pair,
        Err(e) => {
            let e = e.to_string();
            return Err(why(e, read_all(&mut stderr).await).into());
        }
    };
    tokio::spawn(async move {
        let _ = conn.await;
        drop(child);
    });
    let (mut parts, body) = req.into_parts();
    // Over a pipe the request line carries the path only.
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    parts.uri = path.parse().map_err(|e: hyper::http::uri::InvalidUri| {
        std::io::Error::other(format!("ssh: bad request path {path}: {e}"))
    })?;
    parts.headers.insert(hyper::header::HOST, hyper::header::HeaderValue::from_static("docker"));
    match sender.send_request(hyper::Request::from_parts(parts, body)).await {
        Ok(response) => Ok(response),
        Err(e) => {
            let e = e.to_string();
            Err(why(e, read_all(&mut stderr).await).into())
        }
    }
}

/// What ssh said on stderr, waiting at most a few seconds for it to end.
async fn read_all(stderr: &mut tokio::process::ChildStderr) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stderr.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf).into_owned()
}

/// A failure to connect in one line, sorted by cause: TLS (certificates), ssh, else the
/// daemon does not answer.
fn connect_error(endpoint: &Endpoint, e: &BollardError) -> EngineError {
    let host = endpoint.host.clone();
    let message = one_line_with_causes(e);
    if let Some(dir) = &endpoint.tls_dir {
        let ca = dir.join("ca.pem");
        let tls = match e {
            BollardError::CertPathError { path } => {
                Some(format!("cannot read {} (DOCKER_CERT_PATH)", path.display()))
            }
            BollardError::CertParseError { path } => {
                Some(format!("{} is not a PEM certificate or key", path.display()))
            }
            _ if message.contains("UnknownIssuer") || message.contains("NotValidForName") => {
                Some(format!(
                    "the daemon's certificate does not verify against {} ({})",
                    ca.display(),
                    tls_cause(&message)
                ))
            }
            _ if message.contains("certificate") || message.contains("alert") => {
                Some(tls_cause(&message).to_string())
            }
            _ => None,
        };
        if let Some(message) = tls {
            return EngineError::Tls { endpoint: host, message };
        }
    }
    if let Some(said) = message.split("ssh: ").nth(1).filter(|_| host.starts_with("ssh://")) {
        return EngineError::Ssh { endpoint: host, message: said.to_string() };
    }
    EngineError::Unreachable { endpoint: host, message }
}

/// The innermost part of a TLS error chain (`… invalid peer certificate: UnknownIssuer`).
fn tls_cause(message: &str) -> &str {
    message
        .find("invalid peer certificate")
        .or_else(|| message.find("received fatal alert"))
        .map_or(message, |i| &message[i..])
}

fn api(what: &str, e: &BollardError) -> EngineError {
    match e {
        BollardError::DockerResponseServerError { message, .. } => {
            EngineError::Api { what: what.to_string(), message: message.replace('\n', " ") }
        }
        // The transport broke: hyper's words alone (`client error (SendRequest)`) do not say
        // that the daemon is gone, so say it, with the innermost cause.
        BollardError::HyperLegacyError { .. }
        | BollardError::HyperResponseError { .. }
        | BollardError::IOError { .. } => {
            EngineError::WentAway { what: what.to_string(), message: root_cause(e) }
        }
        other => EngineError::Api { what: what.to_string(), message: one_line(other) },
    }
}

/// The error and its causes on one line (hyper hides the cause of a failed connection, such
/// as a refused certificate, in its source chain).
fn one_line_with_causes(e: &BollardError) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let said = cause.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text.replace('\n', " ")
}

/// The innermost cause of an error, on one line.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(next) = inner.source() {
        inner = next;
    }
    inner.to_string().replace('\n', " ")
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

    #[test]
    fn podman_is_told_by_its_ping_header_or_version_components() {
        let podman = "HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\nLibpod-Api-Version: 4.3.1\r\n\r\n";
        assert_eq!(flavor_of_ping(podman), Flavor::Podman);
        assert_eq!(flavor_of_ping("HTTP/1.1 200 OK\r\nApi-Version: 1.41\r\n\r\n"), Flavor::Docker);
        let names = ["Podman Engine", "Conmon", "OCI Runtime (runc)"];
        assert_eq!(flavor_of_components(names.into_iter()), Flavor::Podman);
        let names = ["Engine", "containerd", "runc", "docker-init"];
        assert_eq!(flavor_of_components(names.into_iter()), Flavor::Docker);
    }

    #[test]
    fn podman_identity_is_host_and_storage_not_its_random_id() {
        let p = |id| {
            identity_of(
                Flavor::Podman,
                Some(id),
                Some("vm"),
                Some("/var/lib/containers/storage"),
                "unix:///p.sock",
            )
        };
        // Podman 4.3 answers each `info` with a new UUID: the identity must not follow it.
        assert_eq!(
            p("23efedaf-379f-46b8-9bf6-6603dbdddcd1"),
            p("0d1b4bd9-e147-4685-b06f-dbfe7802cc82")
        );
        assert_eq!(p("x").id, "podman:vm:/var/lib/containers/storage");
        let d = identity_of(
            Flavor::Docker,
            Some("ND4D:36XV"),
            Some("vm"),
            Some("/var/lib/docker"),
            "h",
        );
        assert_eq!(d.id, "ND4D:36XV");
        assert_eq!(
            identity_of(Flavor::Docker, Some(""), None, None, "tcp://h:2375").id,
            "endpoint:tcp://h:2375"
        );
    }

    #[test]
    fn names_are_familiar_as_dockerd_prints_them() {
        let tags = vec![
            "docker.io/library/app:v1".to_string(),
            "docker.io/me/app:v1".to_string(),
            "quay.io/me/app:v1".to_string(),
            "docker.io/localhost:5000/app:v1".to_string(),
            "localhost/app:v1".to_string(),
            "app:v1".to_string(),
            "<none>:<none>".to_string(),
        ];
        assert_eq!(
            familiar_tags(tags),
            [
                "app:v1",
                "me/app:v1",
                "quay.io/me/app:v1",
                "docker.io/localhost:5000/app:v1",
                "localhost/app:v1",
                "app:v1"
            ]
        );
        assert_eq!(familiar_line("Loaded image: docker.io/library/app:v1"), "Loaded image: app:v1");
        assert_eq!(familiar_line("Loaded image ID: sha256:abc"), "Loaded image ID: sha256:abc");
        assert_eq!(full_id("abc".repeat(21) + "d"), format!("sha256:{}d", "abc".repeat(21)));
    }

    #[test]
    fn podman_list_races_are_recognised_and_nothing_else() {
        let err = |status_code: u16, message: &str| BollardError::DockerResponseServerError {
            status_code,
            message: message.to_string(),
        };
        assert!(is_podman_list_race(&err(
            500,
            "checking if image \"adc9c4b0\" is dangling: reading image \"adc9c4b0\": locating \
             image with ID \"adc9c4b0\": image not known"
        )));
        assert!(is_podman_list_race(&err(
            500,
            "locating item named \"manifest\" for image with ID \"cae862fe\" (consider removing \
             the image to resolve the issue): file does not exist"
        )));
        assert!(is_podman_list_race(&err(
            500,
            "checking if image \"f04f20dc\" is dangling: reading data blob size \
             \"signature-4eea71f6\" for \"1c8caff0\": size is not known"
        )));
        assert!(!is_podman_list_race(&err(500, "size is not known")));
        assert!(!is_podman_list_race(&err(500, "file does not exist")));
        assert!(!is_podman_list_race(&err(404, "image not known")));
    }

    #[test]
    fn conflicts_keep_the_daemons_words_but_not_advice_to_force() {
        let podman = "image app:v1 is in use: image used by 38e922ccce05: image is in use by a \
                      container: consider listing external containers and force-removing image";
        assert_eq!(
            conflict_message(podman),
            "image app:v1 is in use: image used by 38e922ccce05: image is in use by a container"
        );
        let docker = "conflict: unable to remove repository reference \"app:v1\" (must force) - \
                      container 38e922ccce05 is using its referenced image 2c26b943c5be";
        assert_eq!(conflict_message(docker), docker);
    }

    fn images_of(json: &str) -> Vec<ListedImage> {
        listed_images(serde_json::from_str(json).expect("an image list bollard accepts"))
    }

    /// What the core decides from, without the store-specific IDs: each image's tags (sorted),
    /// whether it is dangling, and its labels.
    fn facts(list: &[ListedImage], with_labels: bool) -> Vec<(Vec<String>, bool, Vec<String>)> {
        let mut out: Vec<_> = list
            .iter()
            .map(|i| {
                let mut tags = i.repo_tags.clone();
                tags.sort();
                let labels = if with_labels {
                    i.labels.iter().map(|(k, v)| format!("{k}={v}")).collect()
                } else {
                    Vec::new()
                };
                (tags, i.repo_tags.is_empty(), labels)
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn the_image_store_is_detected_from_info() {
        let info: bollard::models::SystemInfo =
            serde_json::from_str(include_str!("testdata/containerd29-info.json")).unwrap();
        assert_eq!(
            image_store_of(info.driver.as_deref(), info.driver_status.as_deref()),
            ImageStore::Containerd
        );
        let overlay2 = vec![
            vec!["Backing Filesystem".to_string(), "extfs".to_string()],
            vec!["Supports d_type".to_string(), "true".to_string()],
        ];
        assert_eq!(
            image_store_of(Some("overlay2"), Some(&overlay2)),
            ImageStore::GraphDriver("overlay2".into())
        );
        assert_eq!(image_store_of(Some("vfs"), None), ImageStore::GraphDriver("vfs".into()));
    }

    #[test]
    fn containerd_stores_give_the_core_the_same_facts_as_a_graph_driver() {
        let graph = images_of(include_str!("testdata/graphdriver-images.json"));
        let c24 = images_of(include_str!("testdata/containerd24-images.json"));
        let c29 = images_of(include_str!("testdata/containerd29-images.json"));
        // Docker 24 lists base:1 once per platform held: one image for the core.
        assert_eq!((graph.len(), c24.len(), c29.len()), (3, 3, 3));
        let base = c24.iter().find(|i| i.repo_tags == ["base:1"]).unwrap();
        assert_eq!(base.size, 14_680_064, "the largest of its platform entries");
        // The same tags and the same dangling image on every store; Docker 29 also lists the
        // labels (Docker 24's containerd store lists none: a caveat of `--label` there).
        assert_eq!(facts(&c24, false), facts(&graph, false));
        assert_eq!(facts(&c29, true), facts(&graph, true));
        let expected = vec![
            (Vec::new(), true, Vec::new()),
            (vec!["app:v1".to_string()], false, Vec::new()),
            (vec!["base:1".to_string()], false, Vec::new()),
        ];
        assert_eq!(facts(&c24, false), expected);
        // Nothing records parents on containerd: no image looks like an intermediate layer.
        assert!(c24.iter().chain(&c29).all(|i| i.parent.is_none()));
        // IDs are the digests the list gives, in full.
        assert!(c29
            .iter()
            .all(|i| i.id.as_str().starts_with("sha256:") && i.id.as_str().len() == 71));
    }

    #[test]
    fn a_container_names_its_image_by_the_id_the_image_list_uses() {
        let json = r#"[{"Id": "38e922ccce05d4aaf516a683c85e1f9731c9e0b3f41c645c073adf87d9a3aa42",
            "Names": ["/web"], "Image": "app:v1",
            "ImageID": "sha256:3b4a59687786950a4b3c2d1e0f9e8d7c6b5a4938271605f4e3d2c1b0a9f8e7d6",
            "ImageManifestDescriptor": {"mediaType": "application/vnd.oci.image.manifest.v1+json",
              "digest": "sha256:7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e",
              "size": 1234, "platform": {"architecture": "amd64", "os": "linux"}},
            "Command": "/pause", "Created": 1764668500, "State": "running", "Status": "Up 5 minutes",
            "Labels": {}, "Mounts": []}]"#;
        let list: Vec<bollard::models::ContainerSummary> = serde_json::from_str(json).unwrap();
        let c = container_info(list.into_iter().next().unwrap());
        assert_eq!((c.name.as_str(), c.state.as_str()), ("web", "running"));
        let images = images_of(include_str!("testdata/containerd29-images.json"));
        let used = images.iter().find(|i| i.id == c.image_id).expect("the dangling image");
        assert!(used.repo_tags.is_empty());
    }

    #[test]
    fn an_inspected_image_on_containerd_is_named_familiarly() {
        let json = r#"{"Id": "sha256:5c7e2f0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d",
            "RepoTags": ["docker.io/library/app:v1", "docker.io/me/app:v1"],
            "RepoDigests": ["docker.io/library/app@sha256:5c7e2f0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"],
            "Created": "2026-12-02T10:40:00Z", "Size": 10485760,
            "Descriptor": {"mediaType": "application/vnd.oci.image.index.v1+json",
              "digest": "sha256:5c7e2f0d9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d", "size": 856}}"#;
        let info = image_info(serde_json::from_str(json).unwrap());
        assert_eq!(info.repo_tags, ["app:v1", "me/app:v1"]);
        assert_eq!(info.id.short(), "sha256:5c7e2f0d9a8b");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn gzip_is_unpacked_on_the_way_and_plain_passes_untouched() {
        use std::io::Write as _;
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        let chunks = |bytes: &[u8]| {
            let v: Vec<Result<Bytes, std::io::Error>> =
                bytes.chunks(4096).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
            futures_util::stream::iter(v)
        };
        let collect = |s: Vec<Result<Bytes, std::io::Error>>| {
            s.into_iter().flat_map(|b| b.unwrap().to_vec()).collect::<Vec<u8>>()
        };
        let out: Vec<_> = gunzip_if_gzip(chunks(&gz)).collect().await;
        assert_eq!(collect(out), data);
        let out: Vec<_> = gunzip_if_gzip(chunks(&data)).collect().await;
        assert_eq!(collect(out), data);
        // A truncated gzip stream is an error, not a short archive.
        let out: Vec<_> = gunzip_if_gzip(chunks(&gz[..gz.len() / 2])).collect().await;
        assert!(out.iter().any(Result::is_err));
    }

    #[test]
    fn an_image_removed_meanwhile_is_gone_not_an_error() {
        assert!(inspect_gone(404, "No such image: sha256:abc"));
        assert!(inspect_gone(500, "layer does not exist"));
        assert!(!inspect_gone(500, "something else broke"));
        assert!(!inspect_gone(409, "layer does not exist"));
        assert!(is_gone(404, "No such image: sha256:abc"));
        assert!(is_gone(409, "unrecognized image ID sha256:abc"));
        assert!(is_gone(500, "unrecognized image ID sha256:abc"));
        assert!(is_gone(500, "No such image: sha256:abc"));
        assert!(!is_gone(409, "conflict: unable to delete abc (must be forced) - image is being used by stopped container 1"));
        assert!(!is_gone(500, "driver failed"));
    }

    #[test]
    fn podman_events_read_as_dockers() {
        let m: bollard::models::EventMessage = serde_json::from_str(
            r#"{"status":"build","Type":"image","Action":"build","Actor":{"ID":"","Attributes":
            {"containerExitCode":"0","image":"","name":"62143b273335808eb93ba297313b8861cd96c4302f6ceceabe651579be7c2552","podId":""}},
            "scope":"local","time":1796223769,"timeNano":1796223769274888712}"#,
        )
        .unwrap();
        let e = daemon_event(m);
        assert_eq!((e.subject, e.action.as_str()), (Subject::Image, "build"));
        assert_eq!(e.id, "62143b273335808eb93ba297313b8861cd96c4302f6ceceabe651579be7c2552");
        assert_eq!((e.image.as_deref(), e.labels.len()), (None, 0));
        assert!(e.needs_tags());
        let m: bollard::models::EventMessage = serde_json::from_str(
            r#"{"Type":"image","Action":"tag","Actor":{"ID":"6214","Attributes":
            {"name":"docker.io/library/pw:v2","team":"x"}},"time":1796223769}"#,
        )
        .unwrap();
        let e = daemon_event(m);
        assert_eq!((e.name.as_deref(), e.time_nano), (Some("pw:v2"), 1_796_223_769_000_000_000));
        assert_eq!(e.labels.get("team").map(String::as_str), Some("x"));
    }
}
