//! Registry errors: one line naming registry, repository, operation and cause, with the OCI
//! error envelope parsed and the retry decision as a method.
//!
//! Owns classification (`is_retryable`); it must never hold credentials, tokens or URLs with
//! their query strings (signed storage URLs carry secrets there).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use super::limits::{seconds, Limit, Limits};
use crate::credentials::CredentialError;
use crate::refusal;

/// Error codes the registry means as final: retrying cannot help.
const PERMANENT_CODES: &[&str] = &[
    "MANIFEST_UNKNOWN",
    "NAME_UNKNOWN",
    "BLOB_UNKNOWN",
    "DENIED",
    "UNAUTHORIZED",
    "NAME_INVALID",
    "TAG_INVALID",
    "MANIFEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "DIGEST_INVALID",
    "SIZE_INVALID",
    "UNSUPPORTED",
];
/// Longest server-provided text kept in a message.
const MAX_SERVER_TEXT: usize = 200;

/// A failed registry operation (boxed: errors stay one pointer wide).
#[derive(Debug, Error)]
pub struct RegistryError(Box<Detail>);

#[derive(Debug)]
struct Detail {
    registry: String,
    repository: Option<String>,
    action: String,
    kind: ErrorKind,
    /// A retry loop already gave up on it: an enclosing loop must not start over.
    exhausted: bool,
}

/// One entry of the OCI error envelope `{"errors":[{"code","message"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OciError {
    /// Machine-readable code, e.g. `MANIFEST_UNKNOWN`.
    #[serde(default)]
    pub code: String,
    /// Human-readable message from the registry (sanitized to one short line).
    #[serde(default)]
    pub message: String,
}

/// What went wrong.
#[derive(Debug, Error)]
pub enum ErrorKind {
    /// Connecting, sending or receiving failed (refused, reset, timeout, TLS).
    #[error("network error: {0}")]
    Network(String),
    /// The registry answered with an unexpected HTTP status.
    #[error("HTTP {status}{}{}", codes_suffix(.errors), retry_after_suffix(.retry_after))]
    Status {
        /// HTTP status code.
        status: u16,
        /// Parsed OCI error envelope (may be empty).
        errors: Vec<OciError>,
        /// `Retry-After` of a 429 or 503, when given.
        retry_after: Option<Duration>,
    },
    /// Still 401 after presenting a freshly issued token (or Basic credentials).
    #[error("UNAUTHORIZED: {0}")]
    Unauthorized(String),
    /// Still 401 with a token the token service has just issued: the credentials are good,
    /// but the account cannot see or write this repository (Harbor: the project does not
    /// exist, or the account has no push permission on it).
    #[error("{} (UNAUTHORIZED: {detail})", crate::refusal::no_access(place, *push))]
    NoAccess {
        /// `host/repository`.
        place: String,
        /// Whether the client was on the push side.
        push: bool,
        /// The registry's message.
        detail: String,
    },
    /// The token service refused or failed to issue a token.
    #[error("token service {host}: {cause}")]
    Token {
        /// Host of the token realm.
        host: String,
        /// Why, without the token or credentials.
        cause: String,
        /// Whether trying again may help (network error, 5xx, 429).
        retryable: bool,
    },
    /// Bytes received do not hash to the requested digest.
    #[error("content does not match digest {expected} (got {actual})")]
    DigestMismatch {
        /// The digest asked for.
        expected: String,
        /// The digest of what arrived.
        actual: String,
    },
    /// The registry broke the protocol (bad header, bad JSON, foreign pagination link, …).
    #[error("{0}")]
    Protocol(String),
    /// A local file could not be read.
    #[error("{0}")]
    Io(String),
    /// A limit of [`super::Limits`] was hit: too many tags or pages, a manifest or config
    /// too large, no connection or no byte in time.
    #[error("{message} (limit {limit} in auth.yaml)")]
    Limit {
        /// Which limit.
        limit: Limit,
        /// What happened, with the limit's value.
        message: String,
    },
    /// The bytes offered or received disagree with the size the manifest declares.
    #[error("{0}")]
    SizeMismatch(String),
    /// Credentials could not be resolved (a failing credential helper, a bad config.json).
    #[error("{0}")]
    Credentials(#[from] CredentialError),
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = &self.0;
        write!(f, "registry {}", detail.registry)?;
        if let Some(repository) = &detail.repository {
            write!(f, ", repository {repository}")?;
        }
        write!(f, ": {}: ", detail.action)?;
        if let Some(cause) = self.named_cause() {
            write!(f, "{cause}: ")?;
        }
        write!(f, "{}", detail.kind)
    }
}

impl RegistryError {
    /// An error of `kind` while doing `action` against `registry` (and `repository`).
    pub fn new(
        registry: impl Into<String>,
        repository: Option<&str>,
        action: impl Into<String>,
        kind: ErrorKind,
    ) -> Self {
        RegistryError(Box::new(Detail {
            registry: registry.into(),
            repository: repository.map(str::to_owned),
            action: action.into(),
            kind,
            exhausted: false,
        }))
    }

    /// The same error, marked as given up on by a retry loop (see [`Self::is_retryable`]).
    pub(crate) fn exhausted(mut self) -> Self {
        self.0.exhausted = true;
        self
    }

    /// True for a stall: no connection or no byte within the registry's timeout.
    pub fn is_stall(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::Limit {
                limit: Limit::IdleTimeout | Limit::ConnectTimeout,
                ..
            }
        )
    }

    /// The registry host.
    pub fn registry(&self) -> &str {
        &self.0.registry
    }

    /// The repository, when the operation had one.
    pub fn repository(&self) -> Option<&str> {
        self.0.repository.as_deref()
    }

    /// What the client was doing (`GET manifest latest`, `upload blob sha256:…`).
    pub fn action(&self) -> &str {
        &self.0.action
    }

    /// The cause.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// HTTP status of the registry's answer, when the error is one.
    pub fn status(&self) -> Option<u16> {
        match &self.0.kind {
            ErrorKind::Status { status, .. } => Some(*status),
            ErrorKind::Unauthorized(_) | ErrorKind::NoAccess { .. } => Some(401),
            _ => None,
        }
    }

    /// True when the registry says the thing does not exist (404 or an `*_UNKNOWN` code).
    pub fn is_not_found(&self) -> bool {
        match &self.0.kind {
            ErrorKind::Status { status, errors, .. } => {
                *status == 404 || errors.iter().any(|e| e.code.ends_with("_UNKNOWN"))
            }
            _ => false,
        }
    }

    /// Whether retrying the same operation may succeed: network errors, stalls, 408, 429
    /// and 5xx, unless the registry gave a permanent error code or a retry loop already
    /// gave up on this error (loops nested in one another must not multiply attempts).
    pub fn is_retryable(&self) -> bool {
        if self.0.exhausted {
            return false;
        }
        match &self.0.kind {
            ErrorKind::Network(_) => true,
            ErrorKind::Limit { .. } => self.is_stall(),
            ErrorKind::Status { status, errors, .. } => {
                let permanent = errors
                    .iter()
                    .any(|e| PERMANENT_CODES.contains(&e.code.as_str()));
                !permanent
                    && !self.is_pull_limit()
                    && matches!(status, 408 | 429 | 500 | 502 | 503 | 504 | 520..=599)
            }
            ErrorKind::Token { retryable, .. } => *retryable,
            ErrorKind::Unauthorized(_)
            | ErrorKind::NoAccess { .. }
            | ErrorKind::DigestMismatch { .. }
            | ErrorKind::Protocol(_)
            | ErrorKind::Io(_)
            | ErrorKind::SizeMismatch(_)
            | ErrorKind::Credentials(_) => false,
        }
    }

    /// What the answer means for the person reading it, when the registry's status and
    /// text say it (Harbor's quota and immutable tags, Docker Hub's pull limit).
    fn named_cause(&self) -> Option<String> {
        let ErrorKind::Status { status, errors, .. } = &self.0.kind else {
            return None;
        };
        let detail = &self.0;
        let says = |test: fn(&str) -> bool| errors.iter().any(|e| test(&said(e)));
        let place = match &detail.repository {
            Some(repository) => format!("{}/{repository}", detail.registry),
            None => detail.registry.clone(),
        };
        let tag = detail.action.strip_prefix("PUT manifest ");
        let immutable = |text: &str| text.to_ascii_lowercase().contains("immutable");
        match status {
            403 if says(refusal::is_quota) => Some(refusal::quota(&detail.registry)),
            412 | 403 if tag.is_some() && (*status == 412 || says(immutable)) => Some(
                refusal::immutable(&format!("{place}:{}", tag.unwrap_or_default())),
            ),
            429 if self.is_pull_limit() => Some(refusal::pull_limit(&detail.registry)),
            _ => None,
        }
    }

    /// Docker Hub's pull limit: 429 `toomanyrequests` naming the pull rate limit (the abuse
    /// limit is a bare 429, and other registries' throttling 429s are retried as any other). It lasts until the window turns, hours
    /// away, so it is final at once: asking again within a run only hammers the registry.
    pub(crate) fn is_pull_limit(&self) -> bool {
        match &self.0.kind {
            ErrorKind::Status {
                status: 429,
                errors,
                ..
            } => errors.iter().any(|e| refusal::is_pull_limit(&said(e))),
            _ => false,
        }
    }

    /// How long the registry asked us to wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        match &self.0.kind {
            ErrorKind::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Parses the OCI error envelope; anything else gives an empty list.
pub(crate) fn parse_envelope(body: &[u8]) -> Vec<OciError> {
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(default)]
        errors: Vec<OciError>,
    }
    serde_json::from_slice::<Envelope>(body)
        .map(|envelope| {
            envelope
                .errors
                .into_iter()
                .map(|e| OciError {
                    code: one_line(&e.code),
                    message: one_line(&e.message),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a failed request or body read means: a stall (a timeout, named as the limit of
/// `limits` it hit) or another network error.
pub(crate) fn network(error: reqwest::Error, limits: &Limits) -> ErrorKind {
    if !error.is_timeout() {
        return ErrorKind::Network(describe_network(error));
    }
    if error.is_connect() {
        ErrorKind::Limit {
            limit: Limit::ConnectTimeout,
            message: format!("no connection within {}", seconds(limits.connect_timeout)),
        }
    } else {
        ErrorKind::Limit {
            limit: Limit::IdleTimeout,
            message: format!("no byte within {}", seconds(limits.idle_timeout)),
        }
    }
}

/// A network error described without its URL, with its chain of causes, on one line.
pub(crate) fn describe_network(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    one_line(&text)
}

/// Server text squeezed to one short line.
pub(crate) fn one_line(text: &str) -> String {
    let mut line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() > MAX_SERVER_TEXT {
        line = line.chars().take(MAX_SERVER_TEXT).collect::<String>() + "…";
    }
    line
}

fn codes_suffix(errors: &[OciError]) -> String {
    errors
        .iter()
        .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
            (false, false) => format!(": {} {}", e.code, e.message),
            (false, true) => format!(": {}", e.code),
            (true, false) => format!(": {}", e.message),
            (true, true) => String::new(),
        })
        .collect()
}

/// What an error of the envelope says: its code and message.
fn said(error: &OciError) -> String {
    format!("{} {}", error.code, error.message)
}

fn retry_after_suffix(retry_after: &Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {}s)", d.as_secs()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16, body: &str) -> RegistryError {
        RegistryError::new(
            "ghcr.io",
            Some("team/app"),
            "GET manifest v1",
            ErrorKind::Status {
                status: code,
                errors: parse_envelope(body.as_bytes()),
                retry_after: None,
            },
        )
    }

    #[test]
    fn envelope_and_message() {
        let e = status(
            404,
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest\nunknown","detail":{"x":1}}]}"#,
        );
        assert_eq!(
            e.to_string(),
            "registry ghcr.io, repository team/app: GET manifest v1: HTTP 404: MANIFEST_UNKNOWN manifest unknown"
        );
        assert!(e.is_not_found());
        assert!(!e.is_retryable());
    }

    #[test]
    fn retry_classification() {
        let table = [
            (500, "", true),
            (502, "not json", true),
            (503, r#"{"errors":[{"code":"UNAVAILABLE"}]}"#, true),
            (429, r#"{"errors":[{"code":"TOOMANYREQUESTS"}]}"#, true),
            (408, "", true),
            (501, "", false),
            (400, "", false),
            (403, r#"{"errors":[{"code":"DENIED"}]}"#, false),
            (404, r#"{"errors":[{"code":"NAME_UNKNOWN"}]}"#, false),
            (500, r#"{"errors":[{"code":"BLOB_UNKNOWN"}]}"#, false),
        ];
        for (code, body, retryable) in table {
            assert_eq!(
                status(code, body).is_retryable(),
                retryable,
                "{code} {body}"
            );
        }
        let unauthorized =
            RegistryError::new("r", None, "GET", ErrorKind::Unauthorized("x".into()));
        assert!(!unauthorized.is_retryable());
        assert!(
            RegistryError::new("r", None, "GET", ErrorKind::Network("reset".into())).is_retryable()
        );
    }

    #[test]
    fn harbor_and_hub_refusals_are_named_and_final() {
        let put = |code: u16, body: &str| {
            RegistryError::new(
                "harbor.example",
                Some("lib/app"),
                "PUT manifest 1.0",
                ErrorKind::Status {
                    status: code,
                    errors: parse_envelope(body.as_bytes()),
                    retry_after: None,
                },
            )
        };
        let quota = put(
            403,
            r#"{"errors":[{"code":"DENIED","message":"adding 1.2 MiB of storage resource, which when updated to current usage of 9.9 MiB will exceed the configured upper limit of 10.0 MiB."}]}"#,
        );
        assert!(
            quota.to_string().contains(
                ": PUT manifest 1.0: quota exceeded on harbor.example: HTTP 403: DENIED adding"
            ),
            "{quota}"
        );
        assert!(!quota.is_retryable());
        let immutable = put(
            412,
            r#"{"errors":[{"code":"PRECONDITION","message":"configured as immutable"}]}"#,
        );
        assert!(
            immutable
                .to_string()
                .contains("tag is immutable on harbor.example/lib/app:1.0: HTTP 412"),
            "{immutable}"
        );
        assert!(!immutable.is_retryable());
        let denied = put(
            403,
            r#"{"errors":[{"code":"DENIED","message":"The tag lib/app:1.0 is immutable, cannot be overwritten."}]}"#,
        );
        assert!(
            denied
                .to_string()
                .contains("tag is immutable on harbor.example/lib/app:1.0"),
            "{denied}"
        );
        let plain = put(
            403,
            r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#,
        );
        assert!(
            !plain.to_string().contains("immutable") && !plain.to_string().contains("quota"),
            "{plain}"
        );
        let spent = status(
            429,
            r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit. You may increase the limit by authenticating and upgrading"}]}"#,
        );
        assert!(!spent.is_retryable(), "the pull limit lasts hours");
        assert!(
            spent
                .to_string()
                .contains("pull rate limit reached on ghcr.io"),
            "{spent}"
        );
        let abuse = status(429, "");
        assert!(abuse.is_retryable(), "the bare 429 is retried");
    }

    #[test]
    fn long_server_text_is_cut() {
        let long = "x".repeat(500);
        assert!(one_line(&long).chars().count() <= MAX_SERVER_TEXT + 1);
    }
}
