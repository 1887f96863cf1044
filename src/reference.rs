//! Image references, parsed and normalized exactly as the docker CLI does.
//!
//! Owns the grammar of `[registry[:port]/]path[:tag][@digest]`; it must not do I/O.
//! A [`Reference`] can only be built by parsing, so an invalid one cannot exist.

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// Registry host of Docker Hub in canonical form.
pub const DOCKER_HUB: &str = "docker.io";
/// Host that actually serves the Docker Hub registry API.
pub const DOCKER_HUB_API: &str = "registry-1.docker.io";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
const TAG_LENGTH_MAX: usize = 128;

/// Why a string is not a valid image reference.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid image reference {input:?}: {kind}")]
pub struct ReferenceError {
    input: String,
    kind: ReferenceErrorKind,
}

impl ReferenceError {
    /// The specific rule the input broke.
    pub fn kind(&self) -> &ReferenceErrorKind {
        &self.kind
    }
}

/// The specific rule a reference broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferenceErrorKind {
    /// Empty input.
    #[error("reference is empty")]
    Empty,
    /// Upper-case letters in the repository path.
    #[error("repository name must be lowercase")]
    Uppercase,
    /// A path component or separator outside the grammar.
    #[error("invalid repository name")]
    InvalidName,
    /// A registry host that is not a valid domain, IP or `host:port`.
    #[error("invalid registry host {0:?}")]
    InvalidRegistry(String),
    /// A registry port outside 1–65535.
    #[error("invalid registry port in {0:?} (1-65535)")]
    InvalidPort(String),
    /// A lone registry host (`127.0.0.1:5000`, `registry.example.com`): docker would read
    /// it as a Docker Hub repository, which is never what was meant.
    #[error("{0:?} names a registry but no repository (write {0}/REPOSITORY)")]
    MissingRepository(String),
    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid tag {0:?}")]
    InvalidTag(String),
    /// A digest that is not `algorithm:hex` of the right length.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
    /// A well-formed digest of an algorithm ferry cannot verify (only sha256).
    #[error("unsupported digest algorithm in {0:?} (only sha256)")]
    UnsupportedDigest(String),
    /// Registry plus path longer than 255 characters.
    #[error("repository name longer than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
}

/// A fully qualified image reference: registry, repository path, optional tag and digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl Reference {
    /// Registry host in canonical form (`docker.io`, `ghcr.io`, `127.0.0.1:5000`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// Host to contact for the registry API (`registry-1.docker.io` for Docker Hub).
    pub fn api_host(&self) -> &str {
        if self.registry == DOCKER_HUB {
            DOCKER_HUB_API
        } else {
            &self.registry
        }
    }

    /// Repository path inside the registry (`library/nginx`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// Last path component (`nginx` for `library/nginx`).
    pub fn name(&self) -> &str {
        self.repository
            .rsplit('/')
            .next()
            .unwrap_or(&self.repository)
    }

    /// The tag, if one was given.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest (`sha256:…`), if one was given.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// What to ask the registry for: the digest when pinned, else the tag, else `latest`.
    pub fn manifest_reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }

    /// `registry/repository` without tag or digest.
    pub fn repository_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository with no tag and no digest.
    pub fn without_tag(&self) -> Reference {
        Reference {
            tag: None,
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository with this tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag).map_err(|kind| self.error(kind))?;
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository pinned to this digest (keeping the tag for display).
    pub fn with_digest(&self, digest: &str) -> Result<Reference, ReferenceError> {
        validate_digest(digest).map_err(|kind| self.error(kind))?;
        Ok(Reference {
            digest: Some(digest.to_owned()),
            ..self.clone()
        })
    }

    /// This reference with `latest` when it has neither tag nor digest, as `docker pull` does.
    pub fn or_latest(&self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            Reference {
                tag: Some("latest".to_owned()),
                ..self.clone()
            }
        } else {
            self.clone()
        }
    }

    /// Token scope for this repository, e.g. `repository:library/nginx:pull,push`.
    pub fn scope(&self, actions: &[&str]) -> String {
        format!("repository:{}:{}", self.repository, actions.join(","))
    }

    fn error(&self, kind: ReferenceErrorKind) -> ReferenceError {
        ReferenceError {
            input: self.to_string(),
            kind,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        parse(input).map_err(|kind| ReferenceError {
            input: input.to_owned(),
            kind,
        })
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

fn parse(input: &str) -> Result<Reference, ReferenceErrorKind> {
    if input.is_empty() {
        return Err(ReferenceErrorKind::Empty);
    }
    let (rest, digest) = match input.split_once('@') {
        Some((rest, digest)) => {
            validate_digest(digest)?;
            (rest, Some(digest.to_owned()))
        }
        None => (input, None),
    };
    // A tag is after the last ':' that comes after the last '/', so `host:5000/x` has none.
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => {
            let tag = &rest[last_slash + i + 1..];
            validate_tag(tag)?;
            (&rest[..last_slash + i], Some(tag.to_owned()))
        }
        None => (rest, None),
    };
    if name.is_empty() {
        return Err(ReferenceErrorKind::InvalidName);
    }
    let (registry, path) = split_registry(name);
    if looks_like_host(name, &tag) {
        let host = match &tag {
            Some(port) => format!("{name}:{port}"),
            None => name.to_owned(),
        };
        return Err(ReferenceErrorKind::MissingRepository(host));
    }
    validate_registry(registry)?;
    let mut repository = path.to_owned();
    let registry = match registry {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB,
        other => other,
    };
    if registry == DOCKER_HUB && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    validate_path(&repository)?;
    if registry.len() + 1 + repository.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceErrorKind::NameTooLong);
    }
    Ok(Reference {
        registry: registry.to_owned(),
        repository,
        tag,
        digest,
    })
}

/// True for a lone name that can only be a registry host: `localhost`, a dotted name with
/// a numeric "tag" (`127.0.0.1:5000`, `registry.local:5000`), or an IPv4 address. Docker
/// Hub's own names (`library/…`) never hold an address.
fn looks_like_host(name: &str, tag: &Option<String>) -> bool {
    if name.contains('/') {
        return false;
    }
    let port = tag
        .as_deref()
        .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()));
    name == "localhost"
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || (name.contains('.') && port)
}

/// Splits off the registry the way the docker CLI does: the first component is a registry
/// when it has a `.` or `:`, is `localhost`, or has upper-case letters.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            (first, rest)
        }
        _ => (DOCKER_HUB, name),
    }
}

fn validate_registry(registry: &str) -> Result<(), ReferenceErrorKind> {
    let invalid = || ReferenceErrorKind::InvalidRegistry(registry.to_owned());
    let (host, port) = if let Some(v6) = registry.strip_prefix('[') {
        let (addr, after) = v6.split_once(']').ok_or_else(invalid)?;
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(invalid());
        }
        match after {
            "" => ("", None),
            p => (
                "",
                Some(p.strip_prefix(':').ok_or_else(invalid)?.to_owned()),
            ),
        }
    } else {
        match registry.split_once(':') {
            Some((host, port)) => (host, Some(port.to_owned())),
            None => (registry, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        if !port.parse::<u16>().is_ok_and(|p| p > 0) {
            return Err(ReferenceErrorKind::InvalidPort(registry.to_owned()));
        }
    }
    if !registry.starts_with('[') {
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        if !host.split('.').all(label_ok) {
            return Err(invalid());
        }
    }
    Ok(())
}

/// Path components: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, separated by `/`.
fn validate_path(path: &str) -> Result<(), ReferenceErrorKind> {
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(ReferenceErrorKind::Uppercase);
    }
    for component in path.split('/') {
        if !component_ok(component) {
            return Err(ReferenceErrorKind::InvalidName);
        }
    }
    Ok(())
}

fn component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// True when `tag` is a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`).
pub fn is_valid_tag(tag: &str) -> bool {
    validate_tag(tag).is_ok()
}

fn validate_tag(tag: &str) -> Result<(), ReferenceErrorKind> {
    let bytes = tag.as_bytes();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = !bytes.is_empty()
        && bytes.len() <= TAG_LENGTH_MAX
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceErrorKind::InvalidTag(tag.to_owned()))
    }
}

/// Validates `algorithm:encoded`: only sha256 (64 lowercase hex digits) is accepted, the
/// one algorithm ferry verifies; other well-formed digests are unsupported.
pub fn validate_digest(digest: &str) -> Result<(), ReferenceErrorKind> {
    let invalid = || ReferenceErrorKind::InvalidDigest(digest.to_owned());
    let (algorithm, encoded) = digest.split_once(':').ok_or_else(invalid)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let hex_len = match algorithm {
        "sha256" => Some(64),
        "sha512" => Some(128),
        _ => None,
    };
    let encoded_ok = match hex_len {
        Some(len) => {
            encoded.len() == len
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }
        None => {
            !encoded.is_empty()
                && encoded
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"=_-".contains(&b))
        }
    };
    if !(algorithm_ok && encoded_ok) {
        Err(invalid())
    } else if algorithm != "sha256" {
        Err(ReferenceErrorKind::UnsupportedDigest(digest.to_owned()))
    } else {
        Ok(())
    }
}

mod parse;

pub use parse::{normalize_registry, parse_reference};

#[cfg(test)]
mod tests;
