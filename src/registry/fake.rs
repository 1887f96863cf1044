//! A registry on 127.0.0.1 for unit tests of code above the client (`decide`, transports):
//! wiremock serving small images built here, accepting pushes, recording every request.
//!
//! Owns nothing real: images are a few bytes of JSON, uploads are answered and forgotten.
//! It must not reach beyond the loopback interface, nor grow behaviour registries lack.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{ClientOptions, RegistryClient, RetryPolicy};
use crate::credentials::CredentialStore;
use crate::manifest::{sha256_digest, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST};
use crate::platform::Platform;
use crate::reference::Reference;

const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Priority of a test's own answers over the defaults of [`FakeRegistry::accept_pushes`].
const OVERRIDE: u8 = 1;

/// One image: its config (naming its platform), layers and Docker schema 2 manifest.
#[derive(Debug, Clone)]
pub(crate) struct TestImage {
    pub platform: Platform,
    pub config: Bytes,
    pub layers: Vec<Bytes>,
    pub manifest: Bytes,
    pub digest: String,
}

impl TestImage {
    /// An image of `platform` (`linux/arm64/v8`) whose layers hold these texts.
    pub fn new(platform: &str, layers: &[&str]) -> Self {
        let platform: Platform = platform.parse().expect("test platform");
        let mut config = serde_json::json!({
            "architecture": platform.architecture(),
            "os": platform.os(),
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        if let Some(variant) = platform.variant() {
            config["variant"] = variant.into();
        }
        let config = Bytes::from(serde_json::to_vec(&config).expect("json"));
        let layers: Vec<Bytes> = layers
            .iter()
            .map(|text| Bytes::from(text.as_bytes().to_vec()))
            .collect();
        let descriptor = |media_type: &str, bytes: &Bytes| {
            serde_json::json!({
                "mediaType": media_type,
                "digest": sha256_digest(bytes),
                "size": bytes.len(),
            })
        };
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": descriptor(CONFIG_TYPE, &config),
            "layers": layers.iter().map(|l| descriptor(LAYER_TYPE, l)).collect::<Vec<_>>(),
        });
        let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("json"));
        TestImage {
            digest: sha256_digest(&manifest),
            platform,
            config,
            layers,
            manifest,
        }
    }

    /// Digest and bytes of every blob, config first.
    pub fn blobs(&self) -> Vec<(String, Bytes)> {
        std::iter::once(&self.config)
            .chain(&self.layers)
            .map(|b| (sha256_digest(b), b.clone()))
            .collect()
    }

    /// Digest of layer `i`.
    pub fn layer(&self, i: usize) -> String {
        sha256_digest(&self.layers[i])
    }
}

/// A Docker manifest list over some images.
#[derive(Debug, Clone)]
pub(crate) struct TestIndex {
    pub children: Vec<TestImage>,
    pub manifest: Bytes,
    pub digest: String,
}

impl TestIndex {
    /// A manifest list naming `children` with their platforms, in this order.
    pub fn new(children: Vec<TestImage>) -> Self {
        let entries: Vec<serde_json::Value> = children
            .iter()
            .map(|child| {
                let p = &child.platform;
                let mut platform =
                    serde_json::json!({"architecture": p.architecture(), "os": p.os()});
                if let Some(variant) = p.variant() {
                    platform["variant"] = variant.into();
                }
                serde_json::json!({
                    "mediaType": DOCKER_MANIFEST,
                    "digest": child.digest,
                    "size": child.manifest.len(),
                    "platform": platform,
                })
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": entries,
        });
        let manifest = Bytes::from(serde_json::to_vec(&manifest).expect("json"));
        TestIndex {
            digest: sha256_digest(&manifest),
            children,
            manifest,
        }
    }
}

/// A client for fake registries: no credentials, retries fast enough for tests.
pub(crate) fn client() -> RegistryClient {
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    RegistryClient::new(CredentialStore::default(), options)
}

/// A wiremock registry on 127.0.0.1 that records what it was asked.
pub(crate) struct FakeRegistry {
    server: MockServer,
    /// Docker Hub's pull budget, when one is kept: (remaining, limit).
    budget: Budget,
}

/// A pull budget shared by the manifest answers of one fake registry.
type Budget = Arc<Mutex<Option<(u64, u64)>>>;

impl FakeRegistry {
    /// An open registry (`/v2/` answers 200) that knows nothing yet: 404 to everything else.
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v2/"))
            .respond_with(ResponseTemplate::new(200).set_body_string("{}"))
            .mount(&server)
            .await;
        FakeRegistry {
            server,
            budget: Budget::default(),
        }
    }

    /// `127.0.0.1:PORT/<rest>`.
    pub fn reference(&self, rest: &str) -> Reference {
        format!("{}/{rest}", self.server.address())
            .parse()
            .expect("test reference")
    }

    /// The wiremock server, for a test's own answers.
    pub fn server(&self) -> &MockServer {
        &self.server
    }

    /// Serves a manifest of `repo` under `reference` (tag or digest), for HEAD and GET.
    pub async fn serve_manifest(
        &self,
        repo: &str,
        reference: &str,
        bytes: &Bytes,
        media_type: &str,
    ) {
        let answer = ResponseTemplate::new(200)
            .insert_header("Content-Type", media_type)
            .insert_header("Docker-Content-Digest", sha256_digest(bytes).as_str())
            .set_body_bytes(bytes.to_vec());
        for verb in ["HEAD", "GET"] {
            Mock::given(method(verb))
                .and(path(format!("/v2/{repo}/manifests/{reference}")))
                .respond_with(Budgeted {
                    answer: answer.clone(),
                    budget: self.budget.clone(),
                })
                .with_priority(OVERRIDE)
                .mount(&self.server)
                .await;
        }
    }

    /// From now on, manifests are served as Docker Hub does for an anonymous pull budget:
    /// `ratelimit-limit`/`ratelimit-remaining` on GET and HEAD, each GET spends one, and
    /// a GET with nothing left answers 429 `TOOMANYREQUESTS` (no `Retry-After`).
    pub fn rate_limit(&self, remaining: u64, limit: u64) {
        if let Ok(mut budget) = self.budget.lock() {
            *budget = Some((remaining, limit));
        }
    }

    /// Answers HEAD of a manifest of `repo` under `reference` with `digest`, serving no bytes.
    pub async fn head_only(&self, repo: &str, reference: &str, digest: &str) {
        Mock::given(method("HEAD"))
            .and(path(format!("/v2/{repo}/manifests/{reference}")))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("Content-Type", DOCKER_MANIFEST)
                    .insert_header("Docker-Content-Digest", digest),
            )
            .with_priority(OVERRIDE)
            .mount(&self.server)
            .await;
    }

    /// Serves `image` in `repo` under `tag` and its digest, with its blobs.
    pub async fn serve_image(&self, repo: &str, tag: &str, image: &TestImage) {
        self.serve_manifest(repo, tag, &image.manifest, DOCKER_MANIFEST)
            .await;
        self.serve_child(repo, image).await;
    }

    /// Serves `index` in `repo` under `tag` and its digest; every child by digest, with blobs.
    pub async fn serve_index(&self, repo: &str, tag: &str, index: &TestIndex) {
        self.serve_manifest(repo, tag, &index.manifest, DOCKER_MANIFEST_LIST)
            .await;
        self.serve_manifest(repo, &index.digest, &index.manifest, DOCKER_MANIFEST_LIST)
            .await;
        for child in &index.children {
            self.serve_child(repo, child).await;
        }
    }

    async fn serve_child(&self, repo: &str, image: &TestImage) {
        self.serve_manifest(repo, &image.digest, &image.manifest, DOCKER_MANIFEST)
            .await;
        for (digest, bytes) in image.blobs() {
            self.has_blob(repo, &digest, bytes.len()).await;
            Mock::given(method("GET"))
                .and(path(format!("/v2/{repo}/blobs/{digest}")))
                .respond_with(ResponseTemplate::new(200).set_body_bytes(bytes.to_vec()))
                .with_priority(OVERRIDE)
                .mount(&self.server)
                .await;
        }
    }

    /// The repository `repo` has blob `digest` (HEAD 200).
    pub async fn has_blob(&self, repo: &str, digest: &str, size: usize) {
        Mock::given(method("HEAD"))
            .and(path(format!("/v2/{repo}/blobs/{digest}")))
            .respond_with(
                ResponseTemplate::new(200).insert_header("Content-Length", size.to_string()),
            )
            .with_priority(OVERRIDE)
            .mount(&self.server)
            .await;
    }

    /// Behaves as an empty target: blobs and manifests are missing until a test says
    /// otherwise, uploads open a session and finish with 201, manifest PUTs answer 201 with
    /// the digest of their bytes, and mounts are refused (202: an upload session instead).
    pub async fn accept_pushes(&self) {
        let missing = ResponseTemplate::new(404);
        Mock::given(method("HEAD"))
            .and(path_regex("^/v2/.+/(blobs|manifests)/[^/]+$"))
            .respond_with(missing)
            .mount(&self.server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex("^/v2/.+/blobs/uploads/$"))
            .respond_with(OpenSession)
            .mount(&self.server)
            .await;
        Mock::given(method("PUT"))
            .and(path_regex("^/v2/.+/blobs/uploads/session$"))
            .respond_with(ResponseTemplate::new(201))
            .mount(&self.server)
            .await;
        Mock::given(method("PUT"))
            .and(path_regex("^/v2/.+/manifests/[^/]+$"))
            .respond_with(StoreManifest)
            .mount(&self.server)
            .await;
    }

    /// Cross-repository mounts succeed (201).
    pub async fn accept_mounts(&self) {
        Mock::given(method("POST"))
            .and(path_regex("^/v2/.+/blobs/uploads/$"))
            .and(wiremock::matchers::query_param_contains("mount", "sha256:"))
            .respond_with(Mounted)
            .with_priority(OVERRIDE)
            .mount(&self.server)
            .await;
    }

    /// The upload of blob `digest` is refused with a permanent 403 `DENIED`.
    pub async fn deny_upload(&self, digest: &str) {
        let envelope =
            serde_json::json!({"errors": [{"code": "DENIED", "message": "quota exceeded"}]});
        Mock::given(method("PUT"))
            .and(path_regex("^/v2/.+/blobs/uploads/session$"))
            .and(query_param("digest", digest))
            .respond_with(ResponseTemplate::new(403).set_body_json(envelope))
            .with_priority(OVERRIDE)
            .mount(&self.server)
            .await;
    }

    /// Blob uploads finish only after `delay`, so concurrent jobs overlap.
    pub async fn slow_uploads(&self, delay: Duration) {
        Mock::given(method("PUT"))
            .and(path_regex("^/v2/.+/blobs/uploads/session$"))
            .respond_with(ResponseTemplate::new(201).set_delay(delay))
            .with_priority(OVERRIDE + 1)
            .mount(&self.server)
            .await;
    }

    /// Every request but the `/v2/` ping, in the order received: `PUT /v2/r/manifests/1`,
    /// with the decoded query when there is one (`POST /v2/r/blobs/uploads/?mount=…&from=…`).
    pub async fn requests(&self) -> Vec<String> {
        let received = self.server.received_requests().await.unwrap_or_default();
        received
            .iter()
            .filter(|r| r.url.path() != "/v2/")
            .map(|r| {
                let query: Vec<String> = r
                    .url
                    .query_pairs()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                let mut line = format!("{} {}", r.method, r.url.path());
                if !query.is_empty() {
                    line = format!("{line}?{}", query.join("&"));
                }
                line
            })
            .collect()
    }

    /// The requests that write (POST, PUT, PATCH), in order.
    pub async fn writes(&self) -> Vec<String> {
        let all = self.requests().await;
        all.into_iter()
            .filter(|r| ["POST ", "PUT ", "PATCH "].iter().any(|m| r.starts_with(m)))
            .collect()
    }

    /// Bodies of the manifest PUTs to `repo` under `reference`.
    pub async fn put_bodies(&self, repo: &str, reference: &str) -> Vec<Vec<u8>> {
        let wanted = format!("/v2/{repo}/manifests/{reference}");
        let received = self.server.received_requests().await.unwrap_or_default();
        received
            .into_iter()
            .filter(|r| r.method.as_str() == "PUT" && r.url.path() == wanted)
            .map(|r| r.body)
            .collect()
    }
}

/// A manifest answer under the registry's pull budget, if it keeps one.
struct Budgeted {
    answer: ResponseTemplate,
    budget: Budget,
}

impl Respond for Budgeted {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(mut budget) = self.budget.lock() else {
            return self.answer.clone();
        };
        let Some((remaining, limit)) = budget.as_mut() else {
            return self.answer.clone();
        };
        let headers = |answer: ResponseTemplate, left: u64| {
            answer
                .insert_header("ratelimit-limit", format!("{limit};w=21600").as_str())
                .insert_header("ratelimit-remaining", format!("{left};w=21600").as_str())
        };
        if request.method.as_str() != "GET" {
            return headers(self.answer.clone(), *remaining);
        }
        if *remaining == 0 {
            let envelope = serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS",
                "message": "You have reached your pull rate limit."}]});
            return headers(ResponseTemplate::new(429).set_body_json(envelope), 0);
        }
        *remaining -= 1;
        headers(self.answer.clone(), *remaining)
    }
}

/// `POST …/blobs/uploads/`: 202 with a session `Location` in the same repository.
struct OpenSession;

impl Respond for OpenSession {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let location = format!("{}session", request.url.path());
        ResponseTemplate::new(202).insert_header("Location", location.as_str())
    }
}

/// `PUT …/manifests/<reference>`: 201 with the digest of the bytes received.
struct StoreManifest;

impl Respond for StoreManifest {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        ResponseTemplate::new(201).insert_header(
            "Docker-Content-Digest",
            sha256_digest(&request.body).as_str(),
        )
    }
}

/// A 201 to a mount, naming the mounted blob as distribution does.
struct Mounted;

impl Respond for Mounted {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let digest = request
            .url
            .query_pairs()
            .find(|(name, _)| name == "mount")
            .map(|(_, digest)| digest.into_owned())
            .unwrap_or_default();
        ResponseTemplate::new(201).insert_header("Docker-Content-Digest", digest.as_str())
    }
}
