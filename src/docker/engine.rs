//! `Engine`: the bollard-backed [`DockerApi`] talking to a real dockerd.
//!
//! Owns connecting (DOCKER_HOST, API version negotiation) and the request/response
//! endpoints; the streaming ones live in `transfer`. It must not print or retry.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions, TagImageOptions};
use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};

use super::api::{BuildRequest, DockerApi, ImageInfo, Pulled};
use super::auth::RegistryAuth;
use super::error::{classify, one_line, DockerError, DockerErrorKind, Operation};
use super::events::EventSink;
use super::image::{from_inspect, from_summary, platform_of};
use super::transfer::{root_cause, IdleTimeouts, Streams};
use crate::platform::Platform;
use crate::reference::Reference;

/// Where dockerd listens when `DOCKER_HOST` is unset.
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

/// Seconds bollard waits for the answer's headers on request/response endpoints.
const REQUEST_TIMEOUT_SECONDS: u64 = 120;

/// How long opening a connection to the daemon may take. Streams have no overall limit:
/// a pull of a large image or a long build step may legitimately take many minutes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to one Docker daemon. Cheap to clone; clones share connections.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    streams: Streams,
    api_version: String,
}

enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Engine {
    /// Connects to `DOCKER_HOST` (`unix://…` or `tcp://…`), or to the default socket.
    pub async fn connect() -> Result<Engine, DockerError> {
        let host = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_DOCKER_HOST.to_owned());
        Engine::connect_to(&host).await
    }

    /// Connects to the daemon at `host` and negotiates the API version with it.
    pub async fn connect_to(host: &str) -> Result<Engine, DockerError> {
        let unreachable = |reason: String| {
            DockerError::new(
                Operation::Connect,
                host,
                DockerErrorKind::Unreachable {
                    host: host.to_owned(),
                    reason,
                },
            )
        };
        let endpoint = parse_host(host).map_err(unreachable)?;
        let (docker, http, base) = match &endpoint {
            Endpoint::Unix(path) => (
                Docker::connect_with_unix(
                    &path.to_string_lossy(),
                    REQUEST_TIMEOUT_SECONDS,
                    API_DEFAULT_VERSION,
                ),
                reqwest::Client::builder().unix_socket(path.as_path()),
                "http://docker".to_owned(),
            ),
            Endpoint::Tcp(address) => (
                Docker::connect_with_http(address, REQUEST_TIMEOUT_SECONDS, API_DEFAULT_VERSION),
                reqwest::Client::builder().no_proxy(),
                format!("http://{address}"),
            ),
        };
        let docker = docker.map_err(|e| unreachable(root_cause(&e)))?;
        // bollard 0.21 never negotiates on its own; it asks `/version` here.
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| unreachable(root_cause(&e)))?;
        let version = docker.client_version();
        let api_version = format!("{}.{}", version.major_version, version.minor_version);
        let pinned = api_version.clone();
        let docker = docker.with_request_modifier(move |req| pin_api_version(req, &pinned));
        let http = http
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| unreachable(root_cause(&e)))?;
        Ok(Engine {
            docker,
            streams: Streams {
                http,
                base: format!("{base}/v{api_version}"),
                host: host.to_owned(),
                idle: IdleTimeouts::default(),
            },
            api_version,
        })
    }

    /// The same engine giving up a pull or push stream that stays silent for `idle` of the
    /// registry it talks to (see [`IdleTimeouts`]).
    pub fn with_idle_timeouts(mut self, idle: IdleTimeouts) -> Self {
        self.streams.idle = idle;
        self
    }

    /// The daemon's address (`unix:///var/run/docker.sock`).
    pub fn host(&self) -> &str {
        &self.streams.host
    }

    /// The negotiated API version (`1.41` against dockerd 20.10).
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    fn error(&self, operation: Operation, subject: &str, e: bollard::errors::Error) -> DockerError {
        use bollard::errors::Error as B;
        let kind = match e {
            B::DockerResponseServerError {
                status_code,
                message,
            } => DockerErrorKind::Refused {
                class: classify(Some(status_code), &message),
                message: one_line(&message),
            },
            B::RequestTimeoutError => {
                DockerErrorKind::Interrupted("no answer from the daemon in time".into())
            }
            B::JsonDataError { .. } | B::JsonSerdeError { .. } => {
                DockerErrorKind::Protocol(root_cause(&e))
            }
            other => DockerErrorKind::Unreachable {
                host: self.streams.host.clone(),
                reason: root_cause(&other),
            },
        };
        DockerError::new(operation, subject, kind)
    }

    /// Checks that the image just pulled as `image` is of `wanted` platform: dockerd 20.10
    /// silently accepts a single-platform manifest of another platform.
    async fn check_platform(
        &self,
        image: &Reference,
        wanted: &Platform,
    ) -> Result<(), DockerError> {
        let name = daemon_name(image);
        let fail = |kind| {
            DockerError::new(Operation::Pull, image.to_string(), kind)
                .with_registry(image.registry())
        };
        let inspected = self
            .docker
            .inspect_image(&name)
            .await
            .map_err(|e| self.error(Operation::Inspect, &name, e))?;
        let actual = platform_of(&inspected);
        if wanted.selects(&actual) {
            Ok(())
        } else {
            Err(fail(DockerErrorKind::PlatformMismatch {
                wanted: wanted.to_string(),
                actual: actual.to_string(),
            }))
        }
    }
}

impl DockerApi for Engine {
    async fn pull(
        &self,
        image: &Reference,
        platform: Option<&Platform>,
        auth: Option<&RegistryAuth>,
        events: &dyn EventSink,
    ) -> Result<Pulled, DockerError> {
        let pulled = self.streams.pull(image, platform, auth, events).await?;
        if let Some(wanted) = platform {
            self.check_platform(image, wanted).await?;
        }
        Ok(pulled)
    }

    async fn tag(&self, source: &str, target: &Reference) -> Result<(), DockerError> {
        let subject = format!("{source} as {target}");
        let Some(tag) = target.tag() else {
            let kind = DockerErrorKind::Invalid("the target needs a tag".into());
            return Err(DockerError::new(Operation::Tag, subject, kind));
        };
        let options = TagImageOptions {
            repo: Some(target.repository_name()),
            tag: Some(tag.to_owned()),
        };
        self.docker
            .tag_image(source, Some(options))
            .await
            .map_err(|e| self.error(Operation::Tag, &subject, e))
    }

    async fn push(
        &self,
        target: &Reference,
        auth: Option<&RegistryAuth>,
        events: &dyn EventSink,
    ) -> Result<String, DockerError> {
        self.streams.push(target, auth, events).await
    }

    async fn inspect(&self, image: &str) -> Result<Option<ImageInfo>, DockerError> {
        match self.docker.inspect_image(image).await {
            Ok(inspected) => Ok(Some(from_inspect(inspected))),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(self.error(Operation::Inspect, image, e)),
        }
    }

    async fn list(&self, labels: &[&str]) -> Result<Vec<ImageInfo>, DockerError> {
        let mut filters = HashMap::new();
        if !labels.is_empty() {
            filters.insert(
                "label".to_owned(),
                labels.iter().map(|l| l.to_string()).collect(),
            );
        }
        let options = ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        };
        let images = self
            .docker
            .list_images(Some(options))
            .await
            .map_err(|e| self.error(Operation::List, "images", e))?;
        Ok(images.into_iter().map(from_summary).collect())
    }

    async fn remove(&self, image: &str) -> Result<bool, DockerError> {
        let options = RemoveImageOptions {
            force: true,
            ..Default::default()
        };
        match self.docker.remove_image(image, Some(options), None).await {
            Ok(_) => Ok(true),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(false),
            Err(e) => Err(self.error(Operation::Remove, image, e)),
        }
    }

    async fn build(
        &self,
        request: &BuildRequest,
        events: &dyn EventSink,
    ) -> Result<String, DockerError> {
        self.streams.build(request, events).await
    }
}

/// The name the daemon stores a pulled reference under: `repo@digest`, else `repo:tag`.
fn daemon_name(image: &Reference) -> String {
    match image.digest() {
        Some(digest) => format!("{}@{digest}", image.repository_name()),
        None => format!("{}:{}", image.repository_name(), image.manifest_reference()),
    }
}

fn parse_host(host: &str) -> Result<Endpoint, String> {
    if let Some(path) = host.strip_prefix("unix://") {
        return Ok(Endpoint::Unix(PathBuf::from(path)));
    }
    let address = host
        .strip_prefix("tcp://")
        .or_else(|| host.strip_prefix("http://"))
        .ok_or_else(|| "unsupported address; use unix://PATH or tcp://HOST:PORT".to_owned())?;
    if std::env::var_os("DOCKER_TLS_VERIFY").is_some_and(|v| !v.is_empty()) {
        return Err("DOCKER_TLS_VERIFY is set, but ferry speaks plain HTTP to the daemon".into());
    }
    Ok(Endpoint::Tcp(address.trim_end_matches('/').to_owned()))
}

/// Prefixes the request path with `/v{version}`: bollard 0.21 builds its URLs with
/// `Url::join` on an absolute path, which drops the version it meant to send.
fn pin_api_version(mut request: BollardRequest, version: &str) -> BollardRequest {
    let uri = request.uri();
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    if path.starts_with("/v1.") {
        return request;
    }
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return request;
    };
    if let Ok(pinned) = format!("{scheme}://{authority}/v{version}{path}").parse() {
        *request.uri_mut() = pinned;
    }
    request
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn bollard_paths_get_the_negotiated_version() {
        let mut request = BollardRequest::new(bollard::body_full(bytes::Bytes::new()));
        *request.uri_mut() = "unix://2f7661722f72756e/images/a%2Fb/json?x=1"
            .parse()
            .expect("uri");
        let pinned = pin_api_version(request, "1.41");
        assert_eq!(
            pinned.uri().to_string(),
            "unix://2f7661722f72756e/v1.41/images/a%2Fb/json?x=1"
        );
        let again = pin_api_version(pinned, "1.41");
        assert_eq!(again.uri().path(), "/v1.41/images/a%2Fb/json");
    }

    #[test]
    fn hosts_are_unix_sockets_or_tcp_addresses() {
        let unix = parse_host("unix:///run/user/1000/docker.sock");
        assert!(
            matches!(unix, Ok(Endpoint::Unix(p)) if p == Path::new("/run/user/1000/docker.sock"))
        );
        let tcp = parse_host("tcp://10.0.0.5:2375/");
        assert!(matches!(tcp, Ok(Endpoint::Tcp(a)) if a == "10.0.0.5:2375"));
        assert!(parse_host("npipe:////./pipe/docker_engine").is_err());
    }

    #[test]
    fn daemon_names_prefer_the_digest() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let pinned: Reference = format!("127.0.0.1:5000/x/y:1@{digest}")
            .parse()
            .expect("ref");
        assert_eq!(daemon_name(&pinned), format!("127.0.0.1:5000/x/y@{digest}"));
        let tagged: Reference = "nginx".parse().expect("ref");
        assert_eq!(daemon_name(&tagged), "docker.io/library/nginx:latest");
    }

    #[tokio::test]
    async fn a_missing_socket_is_one_clear_line() {
        let err = Engine::connect_to("unix:///nonexistent/ferry.sock")
            .await
            .expect_err("no daemon there");
        let text = err.to_string();
        assert!(
            text.starts_with("cannot reach the Docker daemon at unix:///nonexistent/ferry.sock: "),
            "{text}"
        );
        assert!(!text.contains('\n') && text.contains("not found"), "{text}");

        // A socket file nobody listens on any more: connection refused.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).expect("bind"));
        let host = format!("unix://{}", path.display());
        let err = Engine::connect_to(&host).await.expect_err("nobody listens");
        let text = err.to_string();
        assert!(text.starts_with(&format!("cannot reach the Docker daemon at {host}: ")));
        assert!(text.contains("refused") && !text.contains('\n'), "{text}");

        let err = Engine::connect_to("ssh://somewhere")
            .await
            .expect_err("scheme");
        assert!(
            err.to_string()
                .contains("use unix://PATH or tcp://HOST:PORT"),
            "{err}"
        );
    }
}
