//! Pull, push and build: the daemon endpoints that answer with a JSON progress stream.
//!
//! Owns these three requests, sent with reqwest over the daemon's socket because bollard
//! 0.21's typed push stream drops the layer `id` and the `aux` digest; it must not decide
//! what to pull or push, nor print.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use reqwest::Body;
use tokio_util::io::ReaderStream;

use super::api::{BuildContext, BuildRequest, Pulled};
use super::auth::{registry_auth_header, registry_config_header, RegistryAuth};
use super::error::{classify, one_line, DockerError, DockerErrorKind, Operation};
use super::events::EventSink;
use super::stream::{JsonStream, Outcome, Progress};
use crate::platform::Platform;
use crate::reference::Reference;

/// Streaming requests to one daemon, at the negotiated API version.
#[derive(Debug, Clone)]
pub(crate) struct Streams {
    /// A client bound to the daemon's socket (or TCP address), proxies off.
    pub http: reqwest::Client,
    /// `http://docker/v1.41` or `http://host:2375/v1.41`.
    pub base: String,
    /// The daemon's address as the user wrote it, for messages.
    pub host: String,
    /// Longest silence of a pull or push stream, per registry (and for the others).
    pub idle: IdleTimeouts,
}

/// How long a pull or push stream may say nothing, by the registry it talks to: dockerd
/// waits forever on a registry that stalls, so ferry gives up for it. Builds have none
/// (a build step may rightly be silent for long).
#[derive(Debug, Clone)]
pub struct IdleTimeouts {
    /// For registries not in `per_registry`.
    pub default: Duration,
    /// By registry host as in `Reference::registry`.
    pub per_registry: HashMap<String, Duration>,
}

impl Default for IdleTimeouts {
    fn default() -> Self {
        IdleTimeouts {
            default: crate::registry::Limits::default().idle_timeout,
            per_registry: HashMap::new(),
        }
    }
}

impl IdleTimeouts {
    fn of(&self, registry: &str) -> Duration {
        self.per_registry
            .get(registry)
            .copied()
            .unwrap_or(self.default)
    }
}

/// The daemon's JSON error body (`{"message": "…"}`).
#[derive(serde::Deserialize)]
struct ServerMessage {
    message: String,
}

impl Streams {
    /// `POST /images/create`; the platform check is the caller's.
    pub(crate) async fn pull(
        &self,
        image: &Reference,
        platform: Option<&Platform>,
        auth: Option<&RegistryAuth>,
        events: &dyn EventSink,
    ) -> Result<Pulled, DockerError> {
        let fail = |kind| {
            DockerError::new(Operation::Pull, image.to_string(), kind)
                .with_registry(image.registry())
        };
        let mut query = vec![
            ("fromImage", image.repository_name()),
            ("tag", image.manifest_reference().to_owned()),
        ];
        query.extend(platform.map(|p| ("platform", p.to_string())));
        let mut request = self.http.post(self.url("/images/create")).query(&query);
        if auth.is_some() {
            request = request.header("X-Registry-Auth", registry_auth_header(auth));
        }
        let idle = Some(image.registry());
        let outcome = self
            .run(request, image.to_string(), auth.as_slice(), events, idle)
            .await
            .map_err(fail)?;
        if !outcome.pull_finished {
            return Err(fail(DockerErrorKind::Interrupted(
                "the stream ended before the final status line".into(),
            )));
        }
        Ok(Pulled {
            digest: outcome.digest,
            downloaded: outcome.downloaded,
        })
    }

    /// `POST /images/{name}/push`; returns the pushed manifest digest.
    pub(crate) async fn push(
        &self,
        target: &Reference,
        auth: Option<&RegistryAuth>,
        events: &dyn EventSink,
    ) -> Result<String, DockerError> {
        let fail = |kind| {
            DockerError::new(Operation::Push, target.to_string(), kind)
                .with_registry(target.registry())
        };
        let tag = target
            .tag()
            .ok_or_else(|| fail(DockerErrorKind::Invalid("a push needs a tag".into())))?;
        let path = format!("/images/{}/push", target.repository_name());
        // The daemon answers 400 to a push without the header: anonymous is `{}`.
        let request = self
            .http
            .post(self.url(&path))
            .query(&[("tag", tag)])
            .header("X-Registry-Auth", registry_auth_header(auth));
        let idle = Some(target.registry());
        let outcome = self
            .run(request, target.to_string(), auth.as_slice(), events, idle)
            .await
            .map_err(fail)?;
        outcome.digest.ok_or_else(|| {
            fail(DockerErrorKind::Interrupted(
                "the stream ended without the pushed digest".into(),
            ))
        })
    }

    /// `POST /build` with the classic builder; returns the image id.
    pub(crate) async fn build(
        &self,
        build: &BuildRequest,
        events: &dyn EventSink,
    ) -> Result<String, DockerError> {
        let subject = build
            .tags
            .first()
            .map_or_else(|| "<untagged>".to_owned(), ToString::to_string);
        let fail = |kind| DockerError::new(Operation::Build, subject.clone(), kind);
        let json = |map| serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned());
        let mut query: Vec<(&str, String)> =
            build.tags.iter().map(|t| ("t", t.to_string())).collect();
        query.extend([
            ("dockerfile", build.dockerfile.clone()),
            ("buildargs", json(&build.build_args)),
            ("labels", json(&build.labels)),
            ("rm", "1".to_owned()),
            ("forcerm", "1".to_owned()),
            ("version", "1".to_owned()),
        ]);
        if build.no_cache {
            query.push(("nocache", "1".to_owned()));
        }
        query.extend(build.platform.as_ref().map(|p| ("platform", p.to_string())));
        let body = match &build.context {
            BuildContext::Tar(bytes) => Body::from(bytes.clone()),
            BuildContext::TarFile(path) => {
                let file = tokio::fs::File::open(path).await.map_err(|e| {
                    fail(DockerErrorKind::Invalid(format!(
                        "build context {}: {e}",
                        path.display()
                    )))
                })?;
                Body::wrap_stream(ReaderStream::new(file))
            }
        };
        let mut request = self
            .http
            .post(self.url("/build"))
            .query(&query)
            .header(CONTENT_TYPE, "application/x-tar")
            .body(body);
        if !build.registry_auths.is_empty() {
            request = request.header(
                "X-Registry-Config",
                registry_config_header(&build.registry_auths),
            );
        }
        let auths: Vec<&RegistryAuth> = build.registry_auths.iter().collect();
        let outcome = self
            .run(request, subject.clone(), &auths, events, None)
            .await
            .map_err(fail)?;
        outcome.image_id.ok_or_else(|| {
            fail(DockerErrorKind::Interrupted(
                "the stream ended without the image id".into(),
            ))
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends `request` and reads its whole stream; any `errorDetail` becomes an error.
    /// With `idle_for` (the registry the daemon talks to), a stream silent for that
    /// registry's idle timeout is given up (dropping it cancels the daemon's work).
    async fn run(
        &self,
        request: reqwest::RequestBuilder,
        image: String,
        auths: &[&RegistryAuth],
        events: &dyn EventSink,
        idle_for: Option<&str>,
    ) -> Result<Outcome, DockerErrorKind> {
        let redact = |text: &str| {
            auths
                .iter()
                .fold(one_line(text), |text, auth| auth.redact(&text))
        };
        let mut response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<ServerMessage>(&body)
                .map(|m| m.message)
                .unwrap_or(body);
            return Err(DockerErrorKind::Refused {
                class: classify(Some(status.as_u16()), &message),
                message: redact(&message),
            });
        }
        let mut progress = Progress::new(image, events);
        let mut decoder = JsonStream::default();
        let idle = idle_for.map(|registry| (registry, self.idle.of(registry)));
        loop {
            let chunk = match idle {
                Some((registry, limit)) => tokio::time::timeout(limit, response.chunk())
                    .await
                    .map_err(|_| DockerErrorKind::Stalled {
                        registry: registry.to_owned(),
                        seconds: limit.as_secs().max(1),
                    })?,
                None => response.chunk().await,
            };
            match chunk {
                Ok(Some(chunk)) => {
                    let messages = decoder
                        .push(&chunk)
                        .map_err(|e| DockerErrorKind::Protocol(redact(&e)))?;
                    messages.into_iter().for_each(|m| progress.observe(m));
                }
                Ok(None) => break,
                Err(e) => return Err(DockerErrorKind::Interrupted(redact(&root_cause(&e)))),
            }
        }
        let truncated = decoder.finish();
        let outcome = progress.finish();
        if let Some(error) = &outcome.error {
            return Err(DockerErrorKind::Refused {
                class: classify(None, error),
                message: redact(error),
            });
        }
        truncated.map_err(|e| DockerErrorKind::Interrupted(redact(&e)))?;
        Ok(outcome)
    }

    fn transport_error(&self, e: &reqwest::Error) -> DockerErrorKind {
        if e.is_connect() {
            DockerErrorKind::Unreachable {
                host: self.host.clone(),
                reason: root_cause(e),
            }
        } else {
            DockerErrorKind::Interrupted(root_cause(e))
        }
    }
}

/// The innermost cause of an error chain, on one line: what actually went wrong
/// (`No such file or directory (os error 2)`), not the wrappers around it.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    one_line(&cause.to_string())
}
