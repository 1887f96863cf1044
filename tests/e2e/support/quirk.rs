//! `QuirkRegistry`: a real distribution registry behind a front on 127.0.0.1 that answers
//! the way Harbor, Nexus, Docker Hub, quay.io or registry.k8s.io do (SPEC section 12), and
//! counts every request by kind. Owns only those rewrites; must not push content.
//!
//! Everything the profile does not rewrite is forwarded byte for byte with its `Host` kept,
//! so the registry's `Location` URLs name the front. The backing registry stays reachable
//! directly ([`QuirkRegistry::backing`]) for assertions that must not go through the front.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::Method;
use serde_json::json;

use super::registry::Registry;
use super::server::{respond, Handler, HttpRequest, HttpResponse, HttpServer};

/// Docker Hub's window, as its headers carry it.
const HUB_WINDOW: &str = "w=21600";
/// Docker Hub's limit for anonymous pulls.
const HUB_LIMIT: u32 = 100;

/// Which registry the front poses as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Profile {
    /// Harbor, in one of its failure cases.
    Harbor(Harbor),
    /// A Sonatype Nexus docker-hosted repository: no `Docker-Content-Digest` on manifest
    /// GET and HEAD answers, nor on any other answer unless `write_digests`.
    Nexus {
        /// Whether blob answers and manifest PUT answers keep `Docker-Content-Digest`: the
        /// Docker daemon cannot push without it (its client parses the header after a blob
        /// upload and a manifest PUT: "invalid checksum digest format").
        write_digests: bool,
    },
    /// Docker Hub with `remaining` manifest GETs left in the window; with `abuse_at`, the
    /// manifest GET of that number (1 = the first) answers Docker Hub's other 429, the bare
    /// abuse limit (no body, `Retry-After: 1`), once.
    DockerHub {
        /// Pulls left before manifest GETs answer 429.
        remaining: u32,
        /// Which manifest GET meets the bare 429, if any.
        abuse_at: Option<usize>,
    },
    /// quay.io: tag lists paged by `page_size` with opaque `next_page` tokens.
    Quay {
        /// Tags per page.
        page_size: usize,
    },
    /// registry.k8s.io / ghcr.io: blob GETs redirected (307) to object storage on
    /// 127.0.0.2 and 127.0.0.3 in turn: the storage host changes from one blob to the next.
    K8s,
}

/// The Harbor behaviours (SPEC section 12). Each applies only to requests that carry an
/// `Authorization` header: anonymous ones go to the registry, which challenges them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Harbor {
    /// A missing project or no push permission: every request to a repository of
    /// `project` (`project/…`) answers 401 `unauthorized to access repository`, whatever
    /// token comes; other projects work.
    NoProject {
        /// The first path component of the repositories refused.
        project: String,
    },
    /// Quota full, noticed when an upload ends (the `PUT …/blobs/uploads/…?digest=`).
    QuotaAtUploadEnd,
    /// Quota full, noticed at the manifest PUT.
    QuotaAtManifest,
    /// Quota full, noticed when an upload starts (the `POST …/blobs/uploads/`).
    QuotaAtUploadStart,
    /// A cross-repository mount answers 401: `from` is not visible to the account.
    MountInvisible,
    /// A PUT of `tag` while the registry has it answers `status` (412, or 403 `DENIED`).
    Immutable {
        /// The immutable tag; `**` (Harbor's pattern for all of them) makes every tag so.
        tag: String,
        /// 412 (Harbor 2.x) or 403.
        status: u16,
    },
}

/// What a request was, for counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `GET /v2/`.
    Ping,
    /// `GET …/manifests/R`.
    ManifestGet,
    /// `HEAD …/manifests/R`.
    ManifestHead,
    /// `PUT …/manifests/R`.
    ManifestPut,
    /// `GET …/blobs/D`.
    BlobGet,
    /// `HEAD …/blobs/D`.
    BlobHead,
    /// `POST …/blobs/uploads/` without `mount`.
    UploadStart,
    /// `POST …/blobs/uploads/?mount=D&from=R`.
    Mount,
    /// `PATCH` of an upload session.
    UploadPatch,
    /// `PUT` that ends an upload.
    UploadPut,
    /// `GET …/tags/list`.
    TagsList,
    /// Anything else.
    Other,
}

/// One request the front answered.
#[derive(Clone, Debug)]
pub struct Seen {
    /// `GET`, `PUT` …
    pub method: String,
    /// What it was.
    pub kind: Kind,
    /// Path and query, as sent.
    pub uri: String,
    /// The status answered.
    pub status: u16,
    /// Whether it carried an `Authorization` header.
    pub authorized: bool,
}

/// One blob GET an object-storage host (127.0.0.2 or 127.0.0.3) answered.
#[derive(Clone, Debug)]
pub struct StorageGet {
    /// The storage host's `IP:PORT`.
    pub host: String,
    /// Path and query, as sent.
    pub uri: String,
    /// Whether it carried an `Authorization` header (it must never).
    pub authorized: bool,
}

/// A front posing as another registry, with its registry behind it; stops on `Drop`.
pub struct QuirkRegistry {
    // Field order is drop order: the fronts go before the registry.
    front: HttpServer,
    storage: Vec<HttpServer>,
    state: Arc<Front>,
    backing: Registry,
}

struct Front {
    upstream: String,
    profile: Profile,
    client: reqwest::Client,
    seen: Mutex<Vec<Seen>>,
    remaining: Mutex<u32>,
    /// quay: the exact `Link` targets handed out, and the offset each continues at.
    pages: Mutex<HashMap<String, usize>>,
    /// k8s: blobs waiting on the storage host, by digest.
    parked: Mutex<HashMap<String, Bytes>>,
    storage_addrs: Mutex<Vec<String>>,
    /// k8s: redirects sent so far (they alternate between the storage hosts).
    redirects: std::sync::atomic::AtomicUsize,
    storage_log: Mutex<Vec<StorageGet>>,
    /// The registry's own `WWW-Authenticate` (realm, service), learned on first need.
    challenge: Mutex<Option<String>>,
}

impl QuirkRegistry {
    /// Puts a front with `profile` before `backing`.
    pub fn start(backing: Registry, profile: Profile) -> QuirkRegistry {
        let remaining = match &profile {
            Profile::DockerHub { remaining, .. } => *remaining,
            _ => 0,
        };
        let state = Arc::new(Front {
            upstream: backing.url(),
            profile: profile.clone(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("build the front's HTTP client"),
            seen: Mutex::default(),
            remaining: Mutex::new(remaining),
            pages: Mutex::default(),
            parked: Mutex::default(),
            storage_addrs: Mutex::default(),
            redirects: Default::default(),
            storage_log: Mutex::default(),
            challenge: Mutex::default(),
        });
        let mut storage = Vec::new();
        if profile == Profile::K8s {
            for ip in ["127.0.0.2", "127.0.0.3"] {
                let serving = state.clone();
                let handler: Handler = Arc::new(move |request| {
                    let serving = serving.clone();
                    Box::pin(async move { serving.storage(request) })
                });
                let server = HttpServer::start_on(ip, handler);
                lock(&state.storage_addrs).push(server.addr().to_string());
                storage.push(server);
            }
        }
        let serving = state.clone();
        let handler: Handler = Arc::new(move |request| {
            let serving = serving.clone();
            Box::pin(async move { serving.handle(request).await })
        });
        QuirkRegistry {
            front: HttpServer::start(handler),
            storage,
            state,
            backing,
        }
    }

    /// `127.0.0.1:PORT` of the front, as used in image references.
    pub fn host(&self) -> String {
        self.front.addr().to_string()
    }

    /// The registry behind the front, for checks that must bypass the quirks.
    pub fn backing(&self) -> &Registry {
        &self.backing
    }

    /// Every request the front answered so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// How many requests of `kind` the front answered.
    pub fn count(&self, kind: Kind) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|s| s.kind == kind)
            .count()
    }

    /// How many requests of `kind` the front answered with `status`.
    pub fn count_status(&self, kind: Kind, status: u16) -> usize {
        lock(&self.state.seen)
            .iter()
            .filter(|s| s.kind == kind && s.status == status)
            .count()
    }

    /// Forgets the requests seen so far (between two runs of one test).
    pub fn reset(&self) {
        lock(&self.state.seen).clear();
        lock(&self.state.storage_log).clear();
    }

    /// Docker Hub: pulls left in the window.
    pub fn remaining(&self) -> u32 {
        *lock(&self.state.remaining)
    }

    /// k8s: every blob GET the storage host answered.
    pub fn storage_gets(&self) -> Vec<StorageGet> {
        lock(&self.state.storage_log).clone()
    }

    /// A one-line summary of the requests seen, for assertion messages.
    pub fn summary(&self) -> String {
        lock(&self.state.seen)
            .iter()
            .map(|s| format!("{} {} {}", s.method, s.uri, s.status))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The repository and kind of a request path.
fn route(method: &Method, path: &str, query: &str) -> (Option<String>, Option<String>, Kind) {
    let Some(rest) = path.strip_prefix("/v2/").filter(|r| !r.is_empty()) else {
        return (None, None, Kind::Ping);
    };
    let split = |marker: &str| {
        rest.rfind(marker).map(|at| {
            (
                rest[..at].to_string(),
                rest[at + marker.len()..].to_string(),
            )
        })
    };
    if let Some((repo, reference)) = split("/manifests/") {
        let kind = match *method {
            Method::GET => Kind::ManifestGet,
            Method::HEAD => Kind::ManifestHead,
            Method::PUT => Kind::ManifestPut,
            _ => Kind::Other,
        };
        return (Some(repo), Some(reference), kind);
    }
    if let Some((repo, _)) = split("/blobs/uploads") {
        let kind = match *method {
            Method::POST if query.contains("mount=") => Kind::Mount,
            Method::POST => Kind::UploadStart,
            Method::PATCH => Kind::UploadPatch,
            Method::PUT => Kind::UploadPut,
            _ => Kind::Other,
        };
        return (Some(repo), None, kind);
    }
    if let Some((repo, digest)) = split("/blobs/") {
        let kind = match *method {
            Method::GET => Kind::BlobGet,
            Method::HEAD => Kind::BlobHead,
            _ => Kind::Other,
        };
        return (Some(repo), Some(digest), kind);
    }
    if let Some(repo) = rest.strip_suffix("/tags/list") {
        return (Some(repo.to_string()), None, Kind::TagsList);
    }
    (None, None, Kind::Other)
}

impl Front {
    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let method = request.method().clone();
        let uri = request
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        let query = request.uri().query().unwrap_or("").to_string();
        let authorized = request.headers().contains_key("authorization");
        let (repo, reference, kind) = route(&method, request.uri().path(), &query);
        let mut response = match &self.profile {
            Profile::Harbor(case) => {
                self.harbor(case, request, repo, reference, kind, authorized)
                    .await
            }
            Profile::Nexus { .. } => self.nexus(request, repo, kind).await,
            Profile::DockerHub { abuse_at, .. } => self.docker_hub(request, kind, *abuse_at).await,
            Profile::Quay { page_size } => self.quay(request, repo, kind, *page_size).await,
            Profile::K8s => self.k8s(request, reference, kind).await,
        };
        if let Profile::Nexus { write_digests } = self.profile {
            let read = matches!(kind, Kind::ManifestGet | Kind::ManifestHead);
            if read || !write_digests {
                response.headers_mut().remove("docker-content-digest");
            }
        }
        lock(&self.seen).push(Seen {
            method: method.to_string(),
            kind,
            uri,
            status: response.status().as_u16(),
            authorized,
        });
        response
    }

    async fn harbor(
        &self,
        case: &Harbor,
        request: HttpRequest,
        repo: Option<String>,
        reference: Option<String>,
        kind: Kind,
        authorized: bool,
    ) -> HttpResponse {
        let Some(repo) = repo.filter(|_| authorized) else {
            return self.forward_as_is(request).await;
        };
        let denied = |message: String| envelope(403, "DENIED", &message);
        let quota = || {
            denied("adding 1.2 MiB of storage resource, which when updated to current usage of 9.9 MiB will exceed the configured upper limit of 10.0 MiB.".to_string())
        };
        match (case, kind) {
            (Harbor::NoProject { project }, _) if repo.starts_with(&format!("{project}/")) => {
                let message =
                    format!("unauthorized to access repository: {repo}, action: push: unauthorized to access repository: {repo}, action: push");
                self.challenged(&repo, envelope(401, "UNAUTHORIZED", &message))
                    .await
            }
            (Harbor::QuotaAtUploadEnd, Kind::UploadPut)
            | (Harbor::QuotaAtManifest, Kind::ManifestPut)
            | (Harbor::QuotaAtUploadStart, Kind::UploadStart | Kind::Mount) => quota(),
            (Harbor::MountInvisible, Kind::Mount) => {
                let message = format!("unauthorized to access repository: {repo}, action: pull");
                self.challenged(&repo, envelope(401, "UNAUTHORIZED", &message))
                    .await
            }
            (Harbor::Immutable { tag, status }, Kind::ManifestPut)
                if reference
                    .as_deref()
                    .is_some_and(|r| !r.starts_with("sha256:") && (tag == "**" || r == tag))
                    && self
                        .has_manifest(&request, &repo, reference.as_deref().unwrap_or_default())
                        .await =>
            {
                let tag = reference.unwrap_or_default();
                match status {
                    412 => envelope(
                        412,
                        "PRECONDITION",
                        &format!("Failed to process request due to '{repo}:{tag}' configured as immutable."),
                    ),
                    _ => denied(format!(
                        "The tag {repo}:{tag} is immutable, cannot be overwritten."
                    )),
                }
            }
            _ => self.forward_as_is(request).await,
        }
    }

    async fn nexus(&self, request: HttpRequest, repo: Option<String>, kind: Kind) -> HttpResponse {
        let Some(repo) = repo else {
            return self.forward_as_is(request).await;
        };
        match kind {
            Kind::TagsList if request.method() == Method::GET => {
                // One answer whatever `n` says, no `Link`, and a tag twice as a group
                // repository of two members lists it.
                let url = format!("{}/v2/{repo}/tags/list", self.upstream);
                let (status, tags) = self.upstream_tags(request, url).await;
                let Some(tags) = tags else { return status };
                let doubled: Vec<&String> = tags.iter().chain(tags.iter()).collect();
                json_response(200, json!({"name": repo, "tags": doubled}))
            }
            Kind::Mount => {
                // Not a mount: a new upload session, 202 with its Location.
                let url = format!("{}/v2/{repo}/blobs/uploads/", self.upstream);
                self.forward(request, url).await
            }
            Kind::ManifestPut => {
                let children = index_children(request.body());
                let mut missing = Vec::new();
                for child in children {
                    if !self.has_manifest(&request, &repo, &child).await {
                        missing.push(child);
                    }
                }
                if missing.is_empty() {
                    self.forward_as_is(request).await
                } else {
                    envelope(
                        400,
                        "MANIFEST_INVALID",
                        &format!("manifest invalid: missing manifests {}", missing.join(", ")),
                    )
                }
            }
            _ => self.forward_as_is(request).await,
        }
    }

    async fn docker_hub(
        &self,
        request: HttpRequest,
        kind: Kind,
        abuse_at: Option<usize>,
    ) -> HttpResponse {
        match kind {
            Kind::ManifestGet => {
                let nth = lock(&self.seen)
                    .iter()
                    .filter(|s| s.kind == Kind::ManifestGet)
                    .count()
                    + 1;
                if abuse_at == Some(nth) {
                    let mut response = respond(429, "");
                    response
                        .headers_mut()
                        .insert("retry-after", HeaderValue::from_static("1"));
                    return response;
                }
                if *lock(&self.remaining) == 0 {
                    let mut response = envelope(429, "TOOMANYREQUESTS", "You have reached your pull rate limit. You may increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit");
                    self.rate_headers(&mut response, 0);
                    return response;
                }
                let mut response = self.forward_as_is(request).await;
                let left = {
                    let mut remaining = lock(&self.remaining);
                    if response.status() == 200 {
                        *remaining = remaining.saturating_sub(1);
                    }
                    *remaining
                };
                self.rate_headers(&mut response, left);
                response
            }
            Kind::ManifestHead => {
                let mut response = self.forward_as_is(request).await;
                let left = *lock(&self.remaining);
                self.rate_headers(&mut response, left);
                response
            }
            _ => self.forward_as_is(request).await,
        }
    }

    fn rate_headers(&self, response: &mut HttpResponse, remaining: u32) {
        let headers = response.headers_mut();
        let value = |v: String| HeaderValue::from_str(&v).expect("a header-safe value");
        headers.insert(
            "ratelimit-limit",
            value(format!("{HUB_LIMIT};{HUB_WINDOW}")),
        );
        headers.insert(
            "ratelimit-remaining",
            value(format!("{remaining};{HUB_WINDOW}")),
        );
    }

    async fn quay(
        &self,
        request: HttpRequest,
        repo: Option<String>,
        kind: Kind,
        page_size: usize,
    ) -> HttpResponse {
        let Some(repo) = repo.filter(|_| kind == Kind::TagsList) else {
            return self.forward_as_is(request).await;
        };
        let exact = request
            .uri()
            .path_and_query()
            .map_or(String::new(), |p| p.to_string());
        let query = request.uri().query().unwrap_or("").to_string();
        let offset = if query.contains("next_page=") {
            match lock(&self.pages).get(&exact) {
                Some(offset) => *offset,
                None => {
                    return envelope(400, "BAD_REQUEST", "invalid next_page token");
                }
            }
        } else if query
            .split('&')
            .all(|p| p.is_empty() || p.starts_with("n="))
        {
            0
        } else {
            return envelope(
                400,
                "BAD_REQUEST",
                "unsupported query: only n and next_page",
            );
        };
        let url = format!("{}/v2/{repo}/tags/list", self.upstream);
        let (status, tags) = self.upstream_tags(request, url).await;
        let Some(mut tags) = tags else { return status };
        tags.sort();
        let page: Vec<&String> = tags.iter().skip(offset).take(page_size).collect();
        let mut response = json_response(200, json!({"name": repo, "tags": page}));
        let next = offset + page.len();
        if next < tags.len() {
            let token = format!(
                "gAAAAABm{:016x}{:016x}-_Q==",
                rand::random::<u64>(),
                rand::random::<u64>()
            );
            let link = format!("/v2/{repo}/tags/list?n={page_size}&next_page={token}");
            lock(&self.pages).insert(link.clone(), next);
            let header = format!("<{link}>; rel=\"next\"");
            response.headers_mut().insert(
                "link",
                HeaderValue::from_str(&header).expect("a header-safe link"),
            );
        }
        response
    }

    async fn k8s(&self, request: HttpRequest, digest: Option<String>, kind: Kind) -> HttpResponse {
        let Some(digest) = digest.filter(|_| kind == Kind::BlobGet) else {
            return self.forward_as_is(request).await;
        };
        let upstream = self.forward_as_is(request).await;
        if upstream.status() != 200 {
            return upstream;
        }
        let bytes = upstream
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        lock(&self.parked).insert(digest.clone(), bytes);
        let storage = {
            let hosts = lock(&self.storage_addrs);
            let turn = self
                .redirects
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            hosts[turn % hosts.len()].clone()
        };
        let signature = format!("{:016x}", rand::random::<u64>());
        let location = format!(
            "http://{storage}/storage/{digest}?X-Goog-Signature={signature}&X-Goog-Expires=600"
        );
        let mut response = respond(307, "");
        response.headers_mut().insert(
            "location",
            HeaderValue::from_str(&location).expect("a header-safe location"),
        );
        response
    }

    /// The object-storage host: serves parked blobs, noting any `Authorization`.
    fn storage(&self, request: HttpRequest) -> HttpResponse {
        let uri = request
            .uri()
            .path_and_query()
            .map_or(String::new(), |p| p.to_string());
        let host = request
            .headers()
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_string();
        lock(&self.storage_log).push(StorageGet {
            host,
            uri,
            authorized: request.headers().contains_key("authorization"),
        });
        let digest = request.uri().path().trim_start_matches("/storage/");
        let Some(bytes) = lock(&self.parked).get(digest).cloned() else {
            return respond(404, "NoSuchKey");
        };
        let len = bytes.len();
        let head = request.method() == Method::HEAD;
        let mut response = respond(200, if head { Bytes::new() } else { bytes });
        let headers = response.headers_mut();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/octet-stream"),
        );
        if head {
            headers.insert("content-length", HeaderValue::from(len));
        }
        response
    }

    /// Whether the registry has the manifest `repo:reference`, asked with the request's
    /// own `Authorization`.
    async fn has_manifest(&self, request: &HttpRequest, repo: &str, reference: &str) -> bool {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.upstream);
        let mut head = self.client.head(url).header(
            "accept",
            "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        );
        if let Some(value) = request.headers().get("authorization") {
            head = head.header("authorization", value);
        }
        matches!(head.send().await, Ok(answer) if answer.status() == 200)
    }

    /// The registry's whole tag list (it ignores `n`), or the answer to pass on.
    async fn upstream_tags(
        &self,
        request: HttpRequest,
        url: String,
    ) -> (HttpResponse, Option<Vec<String>>) {
        let upstream = self.forward(request, url).await;
        if upstream.status() != 200 {
            return (upstream, None);
        }
        let body = upstream
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        let listed: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let tags = listed["tags"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        (respond(200, ""), Some(tags))
    }

    /// A 401 carrying the registry's own challenge, with the repository's scope.
    async fn challenged(&self, repo: &str, mut response: HttpResponse) -> HttpResponse {
        if let Some(challenge) = self.challenge().await {
            let value = format!("{challenge},scope=\"repository:{repo}:pull,push\"");
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.headers_mut().insert("www-authenticate", value);
            }
        }
        response
    }

    async fn challenge(&self) -> Option<String> {
        if let Some(known) = lock(&self.challenge).clone() {
            return Some(known);
        }
        let answer = self
            .client
            .get(format!("{}/v2/", self.upstream))
            .send()
            .await
            .ok()?;
        let value = answer
            .headers()
            .get("www-authenticate")?
            .to_str()
            .ok()?
            .to_string();
        *lock(&self.challenge) = Some(value.clone());
        Some(value)
    }

    async fn forward_as_is(&self, request: HttpRequest) -> HttpResponse {
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/".to_string(), |p| p.to_string());
        let url = format!("{}{path_and_query}", self.upstream);
        self.forward(request, url).await
    }

    async fn forward(&self, request: HttpRequest, url: String) -> HttpResponse {
        let (parts, body) = request.into_parts();
        // A HEAD answer has no body, so its Content-Length (a blob's size) must pass as is.
        let head = parts.method == Method::HEAD;
        let mut outgoing = self.client.request(parts.method, url).body(body);
        for (name, value) in parts.headers.iter().filter(|(n, _)| passes(n)) {
            outgoing = outgoing.header(name, value);
        }
        let upstream = match outgoing.send().await {
            Ok(upstream) => upstream,
            Err(error) => return respond(502, format!("registry unreachable: {error}")),
        };
        let status = upstream.status().as_u16();
        let headers = upstream.headers().clone();
        let body: Bytes = upstream.bytes().await.unwrap_or_default();
        let mut response = hyper::Response::new(Full::new(body));
        *response.status_mut() = hyper::StatusCode::from_u16(status).expect("a valid status");
        let kept = headers
            .iter()
            .filter(|(n, _)| passes(n) || (head && *n == "content-length"));
        for (name, value) in kept {
            response.headers_mut().append(name, value.clone());
        }
        response
    }
}

/// The child digests of an index body; empty for anything else.
fn index_children(body: &[u8]) -> Vec<String> {
    let parsed: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    parsed["manifests"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["digest"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// An OCI error envelope with one error.
fn envelope(status: u16, code: &str, message: &str) -> HttpResponse {
    json_response(
        status,
        json!({"errors": [{"code": code, "message": message, "detail": null}]}),
    )
}

fn json_response(status: u16, body: serde_json::Value) -> HttpResponse {
    let mut response = respond(status, body.to_string());
    response.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Hop-by-hop and length headers are the front's own business.
fn passes(name: &HeaderName) -> bool {
    !matches!(
        name.as_str(),
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "content-length"
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
