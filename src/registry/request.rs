//! One request to one repository: concurrency permit, Authorization, hand-followed
//! redirects, the 401 → fresh token → one retry dance, and status → error mapping.
//!
//! Owns where credentials may go (same scheme, host and port as the pinged endpoint); it must
//! not retry on its own except through [`Repo::send`] with a replayable [`Payload`].

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use reqwest::header::{
    HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, LOCATION, RETRY_AFTER,
};
use reqwest::{Method, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::OwnedSemaphorePermit;
use url::Url;

use super::auth::{Endpoint, Presented};
use super::challenge::{parse_challenge, Challenge};
use super::error::{network, parse_envelope, ErrorKind, OciError, RegistryError};
use super::retry::parse_retry_after;
use super::{Host, RegistryClient};
use crate::credentials::{Credentials, Side};
use crate::reference::Reference;

const MAX_REDIRECTS: usize = 5;
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An operation on one repository of a pinged registry.
#[derive(Debug, Clone)]
pub(crate) struct Repo {
    pub(crate) client: RegistryClient,
    pub(crate) host: Arc<Host>,
    pub(crate) endpoint: Arc<Endpoint>,
    pub(crate) reference: Reference,
    pub(crate) action: String,
}

/// A request body that can be rebuilt for every attempt, except [`Payload::Stream`].
#[derive(Debug, Clone)]
pub(crate) enum Payload {
    Empty,
    Bytes(Bytes),
    /// `len` bytes arriving from elsewhere (a download copied on the fly): sent once; a
    /// second attempt finds it spent and fails instead of sending something else.
    Stream {
        body: super::upload::SpentOnce,
        len: u64,
    },
    /// `len` bytes of a file from `offset`, streamed (never held in memory).
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
}

/// A request to send; `scopes` are the token scopes it needs.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: HeaderMap,
    pub(crate) payload: Payload,
    pub(crate) scopes: Vec<String>,
}

/// A response, with the concurrency permit held until it is dropped.
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) response: Response,
    pub(crate) _permit: OwnedSemaphorePermit,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("authority", &self.authority)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// Pings the registry of `reference` (once per host) and opens an operation on it.
    pub(crate) async fn open(
        &self,
        reference: &Reference,
        action: impl Into<String>,
    ) -> Result<Repo, RegistryError> {
        let host = self.host(reference.api_host())?;
        let endpoint = self.endpoint(&host, reference.registry()).await?;
        Ok(Repo {
            client: self.clone(),
            host,
            endpoint,
            reference: reference.clone(),
            action: action.into(),
        })
    }
}

impl Call {
    pub(crate) fn new(method: Method, url: Url, scopes: Vec<String>) -> Self {
        Call {
            method,
            url,
            headers: HeaderMap::new(),
            payload: Payload::Empty,
            scopes,
        }
    }

    pub(crate) fn header(mut self, name: reqwest::header::HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.insert(name, value);
        }
        self
    }

    pub(crate) fn payload(mut self, payload: Payload) -> Self {
        self.payload = payload;
        self
    }
}

impl Repo {
    /// An error of this operation.
    pub(crate) fn error(&self, kind: ErrorKind) -> RegistryError {
        RegistryError::new(
            self.reference.registry(),
            Some(self.reference.repository()),
            self.action.clone(),
            kind,
        )
    }

    /// `{base}/v2/{repository}/{rest}`.
    pub(crate) fn url(&self, rest: &str) -> Result<Url, RegistryError> {
        let path = format!("v2/{}/{rest}", self.reference.repository());
        self.endpoint
            .base
            .join(&path)
            .map_err(|e| self.error(ErrorKind::Protocol(format!("bad URL: {e}"))))
    }

    /// A `Location` (absolute, or relative to the registry) as a URL.
    pub(crate) fn resolve(&self, location: &str) -> Result<Url, RegistryError> {
        self.endpoint
            .base
            .join(location)
            .map_err(|e| self.error(ErrorKind::Protocol(format!("bad Location header: {e}"))))
    }

    /// Credentials of this repository on the client's side.
    pub(crate) async fn credentials(&self) -> Result<Option<Credentials>, RegistryError> {
        self.client.credentials_for(&self.reference).await
    }

    /// Sends with retries; statuses for which `ok` is false become errors.
    pub(crate) async fn send(
        &self,
        call: &Call,
        ok: fn(StatusCode) -> bool,
    ) -> Result<Sent, RegistryError> {
        self.client
            .inner
            .options
            .retry
            .run(|_| self.send_once(call, ok))
            .await
    }

    /// Sends once (the caller retries at a higher level); statuses for which `ok` is false
    /// become errors.
    pub(crate) async fn send_once(
        &self,
        call: &Call,
        ok: fn(StatusCode) -> bool,
    ) -> Result<Sent, RegistryError> {
        let sent = self.attempt(call).await?;
        if ok(sent.response.status()) {
            Ok(sent)
        } else {
            Err(self.status_error(sent.response).await)
        }
    }

    /// One attempt: a permit, Authorization, redirects, and on a 401 one renewal. A host
    /// that answered 429 to the last [`THROTTLED_AFTER`] requests is not asked again.
    async fn attempt(&self, call: &Call) -> Result<Sent, RegistryError> {
        let permit = self
            .host
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| self.error(ErrorKind::Protocol("client is shutting down".into())))?;
        if self.host.too_many.load(Ordering::SeqCst) >= THROTTLED_AFTER {
            let refused = OciError {
                code: "TOOMANYREQUESTS".into(),
                message: format!(
                    "not asked again in this run: it answered 429 to the last {THROTTLED_AFTER} requests"
                ),
            };
            return Err(self
                .error(ErrorKind::Status {
                    status: 429,
                    errors: vec![refused],
                    retry_after: None,
                })
                .exhausted());
        }
        let mut scopes = call.scopes.clone();
        let (header, presented) = self.authorization(&scopes, None).await?;
        let response = self.transmit(call, header.as_ref()).await?;
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS => self.host.too_many.fetch_add(1, Ordering::SeqCst),
            _ => self.host.too_many.swap(0, Ordering::SeqCst),
        };
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(Sent {
                response,
                _permit: permit,
            });
        }
        // A 401 from a redirect target on another origin says nothing about this registry:
        // learning its challenge would send our credentials to a realm it picked.
        if origin(response.url()) != origin(&self.endpoint.base) {
            return Err(self.unauthorized(response).await);
        }
        let learned = parse_challenge(response.headers());
        let mut wider = false;
        if let Some(challenge) = &learned {
            if let Challenge::Bearer { scopes: asked, .. } = challenge {
                for scope in asked {
                    if !scopes.contains(scope) {
                        scopes.push(scope.clone());
                        wider = true;
                    }
                }
            }
            self.endpoint.learn(challenge);
        }
        let stale = match &presented {
            Presented::Bearer {
                token,
                fresh: false,
            } => Some(token.clone()),
            Presented::Bearer { fresh: true, .. } if wider => None,
            Presented::Nothing if learned.is_some() => None,
            Presented::Bearer { fresh: true, .. } => return Err(self.no_access(response).await),
            _ => return Err(self.unauthorized(response).await),
        };
        tracing::debug!(action = %self.action, "401: renewing authorization once");
        let (header, presented) = self.authorization(&scopes, stale.as_ref()).await?;
        if matches!(presented, Presented::Nothing) {
            return Err(self.unauthorized(response).await);
        }
        let response = self.transmit(call, header.as_ref()).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(match presented {
                Presented::Bearer { .. } => self.no_access(response).await,
                _ => self.unauthorized(response).await,
            });
        }
        Ok(Sent {
            response,
            _permit: permit,
        })
    }

    /// Sends `call`, following redirects by hand; Authorization only on the endpoint's origin.
    async fn transmit(
        &self,
        call: &Call,
        authorization: Option<&HeaderValue>,
    ) -> Result<Response, RegistryError> {
        let mut url = call.url.clone();
        let mut method = call.method.clone();
        let mut payload = call.payload.clone();
        for _ in 0..=MAX_REDIRECTS {
            let same_origin = origin(&url) == origin(&self.endpoint.base);
            let host = if same_origin {
                self.host.clone()
            } else {
                self.client.host_for(&url).await?
            };
            if url.scheme() == "http" && !host.plain_http_allowed() {
                return Err(self.error(ErrorKind::Protocol(format!(
                    "refusing plain HTTP to {} (not loopback, not insecure)",
                    host.authority
                ))));
            }
            let mut request = host
                .http
                .request(method.clone(), url.clone())
                .headers(call.headers.clone());
            if same_origin {
                if let Some(value) = authorization {
                    request = request.header(AUTHORIZATION, value.clone());
                }
            }
            if let Some((body, len)) = self.body(&payload).await? {
                request = request.header(CONTENT_LENGTH, len).body(body);
            }
            let response = request
                .send()
                .await
                .map_err(|e| self.error(network(e, &host.limits)))?;
            let status = response.status();
            if !status.is_redirection() || status == StatusCode::NOT_MODIFIED {
                return Ok(response);
            }
            let Some(location) = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
            else {
                return Ok(response);
            };
            let next = url.join(location).map_err(|e| {
                self.error(ErrorKind::Protocol(format!("bad redirect Location: {e}")))
            })?;
            if !matches!(next.scheme(), "http" | "https") {
                return Err(self.error(ErrorKind::Protocol(format!(
                    "redirect to unsupported scheme {}",
                    next.scheme()
                ))));
            }
            tracing::debug!(action = %self.action, status = status.as_u16(), to = %redacted(&next), "following redirect");
            if matches!(status.as_u16(), 301..=303) && method != Method::HEAD {
                method = Method::GET;
                payload = Payload::Empty;
            }
            url = next;
        }
        Err(self.error(ErrorKind::Protocol(format!(
            "more than {MAX_REDIRECTS} redirects"
        ))))
    }

    async fn body(&self, payload: &Payload) -> Result<Option<(reqwest::Body, u64)>, RegistryError> {
        match payload {
            Payload::Empty => Ok(None),
            Payload::Bytes(bytes) => Ok(Some((
                reqwest::Body::from(bytes.clone()),
                bytes.len() as u64,
            ))),
            Payload::Stream { body, len } => match body.take() {
                Some(stream) => Ok(Some((reqwest::Body::wrap_stream(stream), *len))),
                None => Err(self.error(ErrorKind::Protocol(
                    "a streamed upload body cannot be sent twice".into(),
                ))),
            },
            Payload::File { path, offset, len } => {
                let io = |e: std::io::Error| {
                    self.error(ErrorKind::Io(format!("reading {}: {e}", path.display())))
                };
                let mut file = tokio::fs::File::open(path).await.map_err(io)?;
                file.seek(std::io::SeekFrom::Start(*offset))
                    .await
                    .map_err(io)?;
                let stream = tokio_util::io::ReaderStream::new(file.take(*len));
                Ok(Some((reqwest::Body::wrap_stream(stream), *len)))
            }
        }
    }

    /// The error for an unexpected status, with the OCI envelope and `Retry-After`.
    pub(crate) async fn status_error(&self, response: Response) -> RegistryError {
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()));
        let body = read_capped(response, MAX_ERROR_BODY).await;
        self.error(ErrorKind::Status {
            status,
            errors: self.envelope(&body).await,
            retry_after,
        })
    }

    /// The OCI error envelope of `body`, with this repository's password or token redacted
    /// wherever the registry echoed it.
    async fn envelope(&self, body: &[u8]) -> Vec<OciError> {
        let mut errors = parse_envelope(body);
        if let Ok(Some(credentials)) = self.credentials().await {
            for error in &mut errors {
                error.code = credentials.redact(&error.code);
                error.message = credentials.redact(&error.message);
            }
        }
        errors
    }

    /// A 401 that a freshly issued token did not cure: the account has no access here. An
    /// anonymous token proves nothing about an account: then it stays "unauthorized".
    async fn no_access(&self, response: Response) -> RegistryError {
        if !matches!(self.credentials().await, Ok(Some(_))) {
            return self.unauthorized(response).await;
        }
        let detail = self.first_message(response, "unauthorized").await;
        self.error(ErrorKind::NoAccess {
            place: format!(
                "{}/{}",
                self.reference.registry(),
                self.reference.repository()
            ),
            push: self.client.side == Side::Target,
            detail,
        })
    }

    async fn unauthorized(&self, response: Response) -> RegistryError {
        let detail = self
            .first_message(response, "authentication required")
            .await;
        self.error(ErrorKind::Unauthorized(detail))
    }

    /// The first message of an error answer's envelope, or `otherwise`.
    async fn first_message(&self, response: Response, otherwise: &str) -> String {
        let body = read_capped(response, MAX_ERROR_BODY).await;
        self.envelope(&body)
            .await
            .first()
            .map(|e| e.message.clone())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| otherwise.into())
    }
}

/// 429 answers in a row after which a host is asked nothing more in the run (two
/// requests' worth of retries): jobs side by side must not go on hammering a registry that
/// throttles (Docker Hub's abuse limit), each with its own five attempts.
pub(crate) const THROTTLED_AFTER: u32 = 10;

/// Reads at most `cap` bytes of a body (errors give what was read).
pub(crate) async fn read_capped(mut response: Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = cap.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= cap {
            break;
        }
    }
    body
}

/// Scheme, host and port: what decides whether credentials may be attached.
pub(crate) fn origin(url: &Url) -> (String, String, Option<u16>) {
    (
        url.scheme().to_owned(),
        url.host_str().unwrap_or_default().to_ascii_lowercase(),
        url.port_or_known_default(),
    )
}

/// A URL without its query (signed storage URLs carry secrets there), for logs.
pub(crate) fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    shown.to_string()
}

#[cfg(test)]
mod tests {
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, ResponseTemplate};

    use crate::registry::tests::{bearer_registry, client, envelope, reference};
    use crate::registry::ErrorKind;

    /// A registry whose token service grants anyone a token the registry then refuses.
    async fn refusing_registry() -> wiremock::MockServer {
        let server = bearer_registry().await;
        Mock::given(method("GET"))
            .and(path("/token"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "t-1"})),
            )
            .mount(&server)
            .await;
        let challenge = format!(
            r#"Bearer realm="{}/token",service="test",scope="repository:team/app:pull""#,
            server.uri()
        );
        Mock::given(method("GET"))
            .and(path("/v2/team/app/manifests/1"))
            .respond_with(
                ResponseTemplate::new(401)
                    .insert_header("WWW-Authenticate", challenge.as_str())
                    .set_body_json(envelope(
                        "UNAUTHORIZED",
                        "unauthorized to access repository: team/app, action: pull",
                    )),
            )
            .mount(&server)
            .await;
        server
    }

    #[tokio::test]
    async fn a_fresh_token_refused_names_the_missing_access_of_an_account() {
        let server = refusing_registry().await;
        let error = client(&server, true)
            .get_manifest(&reference(&server, "team/app:1"))
            .await
            .expect_err("refused");
        assert!(
            matches!(error.kind(), ErrorKind::NoAccess { push: false, .. }),
            "{error}"
        );
        let line = error.to_string();
        assert!(
            line.contains(&format!(
                "repository missing or no pull permission on {}/team/app (UNAUTHORIZED: unauthorized to access repository",
                server.address()
            )),
            "{line}"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn an_anonymous_token_refused_stays_unauthorized() {
        let server = refusing_registry().await;
        let error = client(&server, false)
            .get_manifest(&reference(&server, "team/app:1"))
            .await
            .expect_err("refused");
        assert!(
            matches!(error.kind(), ErrorKind::Unauthorized(_)),
            "{error}"
        );
        assert!(!error.is_retryable());
    }
}
