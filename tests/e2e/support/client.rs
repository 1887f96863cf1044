//! A plain-reqwest distribution-API client for fixtures and assertions (never ferry's own
//! client, which is under test): push and read blobs, manifests and tags, answering the
//! auth each registry asks for (Basic, or the 401 → token dance). Decides no content.

use std::collections::HashMap;
use std::sync::Mutex;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE};
use reqwest::{RequestBuilder, Response, StatusCode};

use super::fixture::{sha256_digest, Blob};
use super::registry::{Credentials, Registry};

/// The manifest types [`RegistryClient::manifest`] accepts.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json, \
application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";

/// A manifest as a registry serves it.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// `Docker-Content-Digest`.
    pub digest: String,
    /// `Content-Type`.
    pub media_type: String,
    /// The bytes served.
    pub bytes: Vec<u8>,
}

impl Manifest {
    /// The bytes as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).expect("a manifest is JSON")
    }
}

/// Talks to one test registry with its credentials, caching a token per repository.
pub struct RegistryClient {
    client: reqwest::Client,
    base: String,
    credentials: Option<Credentials>,
    authorization: Mutex<HashMap<String, String>>,
}

impl RegistryClient {
    /// A client for `registry`, using its credentials when challenged.
    pub fn new(registry: &Registry) -> RegistryClient {
        RegistryClient {
            client: reqwest::Client::new(),
            base: registry.url(),
            credentials: registry.credentials().cloned(),
            authorization: Mutex::new(HashMap::new()),
        }
    }

    /// The manifest `repo:reference` (tag or digest), `None` when the registry has none.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Option<Manifest> {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let answer = self
            .send(repo, || {
                self.client.get(&url).header("accept", MANIFEST_TYPES)
            })
            .await;
        if answer.status() == StatusCode::NOT_FOUND {
            return None;
        }
        let answer = expect_status(answer, StatusCode::OK, "get a manifest").await;
        let header = |name: &str| {
            let value = answer.headers().get(name).and_then(|v| v.to_str().ok());
            value.unwrap_or_default().to_string()
        };
        let (digest, media_type) = (header("docker-content-digest"), header("content-type"));
        let bytes = answer.bytes().await.expect("read a manifest").to_vec();
        Some(Manifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Every tag of `repo`, following `Link` pages; empty when the repository is unknown.
    pub async fn tags(&self, repo: &str) -> Vec<String> {
        let mut tags = Vec::new();
        let mut next = Some(format!("/v2/{repo}/tags/list"));
        while let Some(path) = next {
            let url = if path.starts_with("http") {
                path
            } else {
                format!("{}{path}", self.base)
            };
            let answer = self.send(repo, || self.client.get(&url)).await;
            if answer.status() == StatusCode::NOT_FOUND {
                break;
            }
            let answer = expect_status(answer, StatusCode::OK, "list tags").await;
            next = answer
                .headers()
                .get("link")
                .and_then(|link| link.to_str().ok())
                .and_then(|link| Some(link[link.find('<')? + 1..link.find('>')?].to_string()));
            let body: serde_json::Value = answer.json().await.expect("tags/list is JSON");
            let page = body["tags"].as_array().cloned().unwrap_or_default();
            tags.extend(page.iter().filter_map(|t| t.as_str().map(str::to_string)));
        }
        tags
    }

    /// Whether `repo` holds the blob `digest`.
    pub async fn has_blob(&self, repo: &str, digest: &str) -> bool {
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let head = self.send(repo, || self.client.head(&url)).await;
        head.status() == StatusCode::OK
    }

    /// Uploads `bytes` to `repo` (unless already there); returns their digest.
    pub async fn push_blob(&self, repo: &str, bytes: impl Into<bytes::Bytes>) -> String {
        let blob = Blob::new(bytes);
        self.upload(repo, &blob).await;
        blob.digest
    }

    /// Uploads `blob` to `repo` unless the registry already has it there.
    pub(crate) async fn upload(&self, repo: &str, blob: &Blob) {
        if self.has_blob(repo, &blob.digest).await {
            return;
        }
        let start_url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let started = self.send(repo, || self.client.post(&start_url)).await;
        let started = expect_status(started, StatusCode::ACCEPTED, "start a blob upload").await;
        let location = started
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .expect("a started upload names its Location")
            .to_string();
        let location = if location.starts_with('/') {
            format!("{}{location}", self.base)
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put_url = format!("{location}{separator}digest={}", blob.digest);
        let put = self
            .send(repo, || {
                self.client
                    .put(&put_url)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(blob.bytes.clone())
            })
            .await;
        expect_status(put, StatusCode::CREATED, "finish a blob upload").await;
    }

    /// Puts a manifest under `reference` (tag or digest); returns its digest.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        body: &[u8],
    ) -> String {
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let put = self
            .send(repo, || {
                self.client
                    .put(&url)
                    .header(CONTENT_TYPE, media_type)
                    .body(body.to_vec())
            })
            .await;
        let put = expect_status(put, StatusCode::CREATED, "put a manifest").await;
        let digest = sha256_digest(body);
        let answered = put
            .headers()
            .get("docker-content-digest")
            .and_then(|d| d.to_str().ok());
        assert_eq!(
            answered,
            Some(digest.as_str()),
            "registry digest of {repo}:{reference}"
        );
        digest
    }

    /// Sends with the cached authorization; on 401 answers the challenge and sends again.
    async fn send(&self, repo: &str, request: impl Fn() -> RequestBuilder) -> Response {
        let cached = self.cached(repo);
        let response = authorized(request(), cached.as_deref())
            .send()
            .await
            .expect("the fixture registry answers");
        if response.status() != StatusCode::UNAUTHORIZED {
            return response;
        }
        let challenge = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|c| c.to_str().ok())
            .expect("a 401 carries WWW-Authenticate")
            .to_string();
        let authorization = self.answer(repo, &challenge).await;
        self.authorization
            .lock()
            .expect("authorization cache lock")
            .insert(repo.to_string(), authorization.clone());
        authorized(request(), Some(&authorization))
            .send()
            .await
            .expect("the fixture registry answers")
    }

    fn cached(&self, repo: &str) -> Option<String> {
        let cache = self.authorization.lock().expect("authorization cache lock");
        cache.get(repo).cloned()
    }

    /// Turns a `WWW-Authenticate` challenge into an `Authorization` value.
    async fn answer(&self, repo: &str, challenge: &str) -> String {
        let basic = self.credentials.as_ref().map(|c| {
            format!(
                "Basic {}",
                STANDARD.encode(format!("{}:{}", c.user, c.pass))
            )
        });
        if challenge.starts_with("Basic") {
            return basic.expect("a Basic registry needs credentials");
        }
        let params = challenge_params(challenge);
        let realm = params
            .get("realm")
            .expect("a Bearer challenge names its realm");
        let mut token_request = self.client.get(realm).query(&[
            ("service", params.get("service").map_or("", String::as_str)),
            ("scope", &format!("repository:{repo}:pull,push")),
        ]);
        if let Some(basic) = basic {
            token_request = token_request.header(AUTHORIZATION, basic);
        }
        let answer = token_request
            .send()
            .await
            .expect("the token issuer answers");
        let answer = expect_status(answer, StatusCode::OK, "get a token").await;
        let body: serde_json::Value = answer.json().await.expect("the token answer is JSON");
        let token = body["token"]
            .as_str()
            .or(body["access_token"].as_str())
            .expect("the token answer holds a token");
        format!("Bearer {token}")
    }
}

fn authorized(request: RequestBuilder, authorization: Option<&str>) -> RequestBuilder {
    match authorization {
        Some(value) => request.header(AUTHORIZATION, value),
        None => request,
    }
}

async fn expect_status(response: Response, want: StatusCode, what: &str) -> Response {
    if response.status() == want {
        return response;
    }
    let status = response.status();
    let url = response.url().clone();
    let body = response.text().await.unwrap_or_default();
    panic!("fixture: could not {what}: {status} from {url}: {body}");
}

/// `Bearer realm="…",service="…",scope="a,b"` → its parameters (quoted values may hold commas).
pub fn challenge_params(challenge: &str) -> HashMap<String, String> {
    let mut params = HashMap::new();
    let mut rest = challenge.split_once(' ').map_or("", |(_, r)| r).trim();
    while let Some((key, after)) = rest.split_once('=') {
        let (value, tail) = match after.strip_prefix('"') {
            Some(quoted) => quoted.split_once('"').unwrap_or((quoted, "")),
            None => after.split_once(',').unwrap_or((after, "")),
        };
        params.insert(key.trim().to_ascii_lowercase(), value.to_string());
        rest = tail.trim_start_matches([',', ' ']);
    }
    params
}
