//! Errors of Docker Engine operations: one line, naming the image and the registry.
//!
//! Owns `DockerError` and the classification of daemon messages (not found, unauthorized,
//! rate limited, transient); it must never hold a password: callers redact before building.

use std::fmt;

use thiserror::Error;

use crate::refusal;

/// The operation that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Connecting to the daemon.
    Connect,
    /// `POST /images/create`.
    Pull,
    /// `POST /images/{name}/push`.
    Push,
    /// `POST /images/{name}/tag`.
    Tag,
    /// `GET /images/{name}/json`.
    Inspect,
    /// `GET /images/json`.
    List,
    /// `DELETE /images/{name}`.
    Remove,
    /// `POST /build`.
    Build,
}

/// What kind of failure a registry or daemon message describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The image, tag, digest or repository does not exist.
    NotFound,
    /// Credentials missing or refused, or access denied.
    Unauthorized,
    /// HTTP 429 / `toomanyrequests`.
    RateLimited,
    /// Network trouble or a 5xx: worth another try.
    Transient,
    /// Anything else: a bad request, a failed build step.
    Other,
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DockerErrorKind {
    /// The daemon cannot be reached at all (socket missing, connection refused).
    #[error("cannot reach the Docker daemon at {host}: {reason}")]
    Unreachable {
        /// `unix:///var/run/docker.sock` or `tcp://host:port`.
        host: String,
        /// The innermost cause.
        reason: String,
    },
    /// The daemon or, through it, the registry refused (an HTTP error or an `errorDetail`).
    #[error("{message}")]
    Refused {
        /// What the message means.
        class: ErrorClass,
        /// The message, on one line, passwords redacted.
        message: String,
    },
    /// The connection to the daemon broke, or its answer ended before the result line.
    #[error("the daemon's answer broke off: {0}")]
    Interrupted(String),
    /// A pull or push stream said nothing for the registry's idle timeout: the daemon is
    /// waiting on a registry that stalls (it never gives up on its own).
    #[error("no progress from the daemon for {seconds}s while it talks to {registry} (limit idle_timeout in auth.yaml)")]
    Stalled {
        /// The registry pulled from or pushed to.
        registry: String,
        /// The idle timeout, in seconds.
        seconds: u64,
    },
    /// The daemon answered something that is not its JSON stream.
    #[error("unreadable answer from the daemon: {0}")]
    Protocol(String),
    /// A platform-specific pull got an image of another platform.
    #[error("wanted platform {wanted}, the daemon has {actual}")]
    PlatformMismatch {
        /// The platform asked for.
        wanted: String,
        /// The platform of the image the daemon now holds.
        actual: String,
    },
    /// The request cannot be made as asked (no tag to push, unreadable build context).
    #[error("{0}")]
    Invalid(String),
}

/// A failed Docker Engine operation. Its message is one line and never contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub struct DockerError {
    operation: Operation,
    subject: String,
    registry: Option<String>,
    kind: DockerErrorKind,
}

impl DockerError {
    /// An error of `operation` on `subject` (an image reference, id or `a as b`).
    pub fn new(operation: Operation, subject: impl Into<String>, kind: DockerErrorKind) -> Self {
        DockerError {
            operation,
            subject: subject.into(),
            registry: None,
            kind,
        }
    }

    /// The same error, naming the registry involved.
    pub fn with_registry(mut self, registry: impl Into<String>) -> Self {
        self.registry = Some(registry.into());
        self
    }

    /// The operation that failed.
    pub fn operation(&self) -> Operation {
        self.operation
    }

    /// The image (or `source as target`) the operation was about.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The registry involved, for pulls and pushes.
    pub fn registry(&self) -> Option<&str> {
        self.registry.as_deref()
    }

    /// Why it failed.
    pub fn kind(&self) -> &DockerErrorKind {
        &self.kind
    }

    /// The class of a refusal; `None` for the other kinds.
    pub fn class(&self) -> Option<ErrorClass> {
        match &self.kind {
            DockerErrorKind::Refused { class, .. } => Some(*class),
            _ => None,
        }
    }

    /// True when trying the same operation again may succeed: rate limits, network trouble
    /// and 5xx between daemon and registry, an answer that broke off. A missing image,
    /// refused credentials, an unreachable daemon or a failed build step are not retried.
    pub fn is_retryable(&self) -> bool {
        match &self.kind {
            DockerErrorKind::Refused { class, message } => {
                matches!(class, ErrorClass::RateLimited | ErrorClass::Transient)
                    && !refusal::is_pull_limit(message)
            }
            DockerErrorKind::Interrupted(_) => true,
            _ => false,
        }
    }
}

impl crate::retry::Retryable for DockerError {
    fn is_retryable(&self) -> bool {
        DockerError::is_retryable(self)
    }
}

impl fmt::Display for DockerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.operation {
            Operation::Connect => return write!(f, "{}", self.kind),
            Operation::Pull => "pull",
            Operation::Push => "push",
            Operation::Tag => "tag",
            Operation::Inspect => "inspect",
            Operation::List => "list",
            Operation::Remove => "remove",
            Operation::Build => "build",
        };
        write!(f, "cannot {verb} {}", self.subject)?;
        match (self.operation, &self.registry) {
            (Operation::Pull, Some(registry)) => write!(f, " from {registry}")?,
            (_, Some(registry)) => write!(f, " to {registry}")?,
            (_, None) => {}
        }
        if let DockerErrorKind::Refused { message, .. } = &self.kind {
            if let Some(cause) = self.named_cause(message) {
                write!(f, ": {cause}")?;
            }
        }
        write!(f, ": {}", self.kind)
    }
}

impl DockerError {
    /// What a registry's refusal means for the person reading it, when its text says it
    /// (Harbor's 401 for a missing project, its quota and immutable-tag answers, Docker
    /// Hub's pull limit): the daemon passes those on without naming them.
    fn named_cause(&self, message: &str) -> Option<String> {
        let m = message.to_ascii_lowercase();
        let registry = self.registry.as_deref().unwrap_or("the registry");
        let repository = repository_of(&self.subject);
        match self.operation {
            // Harbor's words, and Docker Hub's (and ACR's) for the same thing.
            Operation::Push
                if m.contains("unauthorized to access repository")
                    || m.contains("requested access to the resource is denied") =>
            {
                Some(refusal::no_access(repository, true))
            }
            Operation::Push if refusal::is_quota(&m) => Some(refusal::quota(registry)),
            Operation::Push if m.contains("immutable") => Some(refusal::immutable(&self.subject)),
            Operation::Pull if refusal::is_pull_limit(message) => {
                Some(refusal::pull_limit(registry))
            }
            _ => None,
        }
    }
}

/// `host/repository` of `host/repository:tag` (or `@digest`).
fn repository_of(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        Some(at) if !image[at..].contains('/') => &image[..at],
        _ => image,
    }
}

/// A daemon or registry message on one line: whitespace runs, newlines included, become one space.
pub(crate) fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Classifies a refusal by the daemon's HTTP status (when there was one) and its message.
pub(crate) fn classify(status: Option<u16>, message: &str) -> ErrorClass {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    // A bare 429 (Docker Hub's abuse limit) reaches us as the daemon's complaint about its
    // empty body: "error parsing HTTP 429 response body: unexpected end of JSON input".
    if status == Some(429)
        || has(&[
            "toomanyrequests",
            "too many requests",
            "rate limit",
            "http 429",
        ])
    {
        ErrorClass::RateLimited
    } else if matches!(status, Some(401 | 403))
        || has(&[
            "unauthorized",
            "authentication required",
            "no basic auth credentials",
            "denied",
            "incorrect username or password",
        ])
    {
        ErrorClass::Unauthorized
    } else if status == Some(404)
        || has(&[
            "manifest unknown",
            "name unknown",
            "not found",
            "no such image",
            "does not exist",
        ])
    {
        ErrorClass::NotFound
    } else if has(&[
        "500 internal server error",
        "502 bad gateway",
        "503 service unavailable",
        "504 gateway timeout",
        "unexpected http status: 5",
        "error parsing http 5",
        "i/o timeout",
        "timeout exceeded",
        "tls handshake timeout",
        "connection reset",
        "connection refused",
        "broken pipe",
        "unexpected eof",
        ": eof",
        "context deadline exceeded",
        "request canceled",
        "temporary failure",
    ]) {
        ErrorClass::Transient
    } else {
        ErrorClass::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_classified() {
        let table = [
            (Some(404), "manifest for r/x:nope not found: manifest unknown: manifest unknown", ErrorClass::NotFound),
            (None, "manifest unknown: manifest unknown", ErrorClass::NotFound),
            (None, "unauthorized: authentication required", ErrorClass::Unauthorized),
            (None, "no basic auth credentials", ErrorClass::Unauthorized),
            (None, "pull access denied for x, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", ErrorClass::Unauthorized),
            (None, "toomanyrequests: You have reached your pull rate limit.", ErrorClass::RateLimited),
            (None, "error parsing HTTP 429 response body: unexpected end of JSON input: \"\"", ErrorClass::RateLimited),
            (None, "error parsing HTTP 502 response body: invalid character '<' looking for beginning of value: \"<html>\"", ErrorClass::Transient),
            (Some(500), "Get \"https://r/v2/\": dial tcp 10.0.0.1:443: i/o timeout", ErrorClass::Transient),
            (None, "received unexpected HTTP status: 503 Service Unavailable", ErrorClass::Transient),
            (None, "Get \"http://127.0.0.1:1/v2/\": dial tcp 127.0.0.1:1: connect: connection refused", ErrorClass::Transient),
            (None, "The command '/bin/sh -c false' returned a non-zero code: 1", ErrorClass::Other),
        ];
        for (status, message, want) in table {
            assert_eq!(classify(status, message), want, "{message}");
        }
    }

    #[test]
    fn display_is_one_line_naming_image_and_registry() {
        let kind = DockerErrorKind::Refused {
            class: ErrorClass::NotFound,
            message: one_line("manifest unknown:\n  manifest unknown"),
        };
        let err = DockerError::new(Operation::Pull, "127.0.0.1:5000/a/b:nope", kind)
            .with_registry("127.0.0.1:5000");
        assert_eq!(
            err.to_string(),
            "cannot pull 127.0.0.1:5000/a/b:nope from 127.0.0.1:5000: manifest unknown: manifest unknown"
        );
        assert!(!err.is_retryable());

        let err = DockerError::new(
            Operation::Connect,
            "unix:///nope.sock",
            DockerErrorKind::Unreachable {
                host: "unix:///nope.sock".into(),
                reason: "No such file or directory (os error 2)".into(),
            },
        );
        assert_eq!(
            err.to_string(),
            "cannot reach the Docker daemon at unix:///nope.sock: No such file or directory (os error 2)"
        );
    }

    #[test]
    fn harbor_and_hub_refusals_are_named() {
        let refused = |operation, subject: &str, message: &str| {
            let kind = DockerErrorKind::Refused {
                class: classify(None, message),
                message: one_line(message),
            };
            DockerError::new(operation, subject, kind).with_registry("h:5000")
        };
        let push = |message: &str| refused(Operation::Push, "h:5000/lib/app:1.0", message);
        let line = push("unauthorized: unauthorized to access repository: lib/app, action: push")
            .to_string();
        assert!(
            line.contains(
                "to h:5000: project missing or no push permission on h:5000/lib/app: unauthorized"
            ),
            "{line}"
        );
        let line = push("denied: requested access to the resource is denied").to_string();
        assert!(
            line.contains("project missing or no push permission on h:5000/lib/app"),
            "{line}"
        );
        let line = push("denied: adding 1.2 MiB of storage resource, which when updated to current usage of 9.9 MiB will exceed the configured upper limit of 10.0 MiB.").to_string();
        assert!(
            line.contains("to h:5000: quota exceeded on h:5000: denied"),
            "{line}"
        );
        let line =
            push("denied: The tag lib/app:1.0 is immutable, cannot be overwritten.").to_string();
        assert!(
            line.contains("tag is immutable on h:5000/lib/app:1.0"),
            "{line}"
        );
        let spent = refused(Operation::Pull, "h:5000/x:1", "toomanyrequests: You have reached your pull rate limit. You may increase the limit by authenticating and upgrading");
        assert!(
            spent
                .to_string()
                .contains("pull rate limit reached on h:5000"),
            "{spent}"
        );
        assert!(!spent.is_retryable(), "the pull limit lasts hours");
        let abuse = refused(
            Operation::Pull,
            "h:5000/x:1",
            "toomanyrequests: too many requests",
        );
        assert!(abuse.is_retryable());
        assert_eq!(repository_of("h:5000/a/b@sha256:00"), "h:5000/a/b");
        assert_eq!(repository_of("h:5000/a/b"), "h:5000/a/b");
    }

    #[test]
    fn only_transient_trouble_is_retryable() {
        let refused = |class| DockerErrorKind::Refused {
            class,
            message: "m".into(),
        };
        let err = |kind| DockerError::new(Operation::Push, "r/x:1", kind);
        assert!(err(refused(ErrorClass::RateLimited)).is_retryable());
        assert!(err(refused(ErrorClass::Transient)).is_retryable());
        assert!(err(DockerErrorKind::Interrupted("eof".into())).is_retryable());
        assert!(!err(refused(ErrorClass::Unauthorized)).is_retryable());
        assert!(!err(refused(ErrorClass::NotFound)).is_retryable());
        assert!(!err(refused(ErrorClass::Other)).is_retryable());
        assert!(!err(DockerErrorKind::Invalid("no tag".into())).is_retryable());
    }
}
