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
    /// A tag outside `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
    #[error("invalid tag {0:?}")]
    InvalidTag(String),
    /// A digest that is not `algorithm:hex` of the right length.
    #[error("invalid digest {0:?}")]
    InvalidDigest(String),
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

/// Validates `algorithm:encoded`; sha256 and sha512 must have the exact hex length.
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
    if algorithm_ok && encoded_ok {
        Ok(())
    } else {
        Err(invalid())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// input, registry, repository, tag, digest
    type ValidCase = (
        String,
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<String>,
    );
    /// input, a check on the error kind
    type InvalidCase = (String, fn(&ReferenceErrorKind) -> bool);

    const D: &str = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn valid_references_normalize_like_docker() {
        let d = |s: &str| s.replace("{D}", D);
        let cases: Vec<ValidCase> = vec![
            ("nginx".into(), "docker.io", "library/nginx", None, None),
            (
                "nginx:1.25".into(),
                "docker.io",
                "library/nginx",
                Some("1.25"),
                None,
            ),
            (
                "library/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                None,
            ),
            (
                "docker.io/nginx:1.17.4".into(),
                "docker.io",
                "library/nginx",
                Some("1.17.4"),
                None,
            ),
            (
                "docker.io/library/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                None,
            ),
            (
                "index.docker.io/nginx".into(),
                "docker.io",
                "library/nginx",
                None,
                None,
            ),
            (
                "index.docker.io/library/redis:7".into(),
                "docker.io",
                "library/redis",
                Some("7"),
                None,
            ),
            (
                "registry-1.docker.io/bitnami/redis".into(),
                "docker.io",
                "bitnami/redis",
                None,
                None,
            ),
            (
                "adoptopenjdk/openjdk11:latest".into(),
                "docker.io",
                "adoptopenjdk/openjdk11",
                Some("latest"),
                None,
            ),
            (
                "ghcr.io/kube-vip/kube-vip:v0.5.0".into(),
                "ghcr.io",
                "kube-vip/kube-vip",
                Some("v0.5.0"),
                None,
            ),
            (
                "registry.k8s.io/kube-proxy:v1.28.0".into(),
                "registry.k8s.io",
                "kube-proxy",
                Some("v1.28.0"),
                None,
            ),
            (
                "registry.k8s.io/coredns/coredns:v1.10.1".into(),
                "registry.k8s.io",
                "coredns/coredns",
                Some("v1.10.1"),
                None,
            ),
            ("localhost/foo".into(), "localhost", "foo", None, None),
            (
                "localhost:5000/foo/bar:1".into(),
                "localhost:5000",
                "foo/bar",
                Some("1"),
                None,
            ),
            ("127.0.0.1:5000/x".into(), "127.0.0.1:5000", "x", None, None),
            ("[::1]:5000/x:y".into(), "[::1]:5000", "x", Some("y"), None),
            (
                "myhost:5000/team/app".into(),
                "myhost:5000",
                "team/app",
                None,
                None,
            ),
            ("Foo.example/app".into(), "Foo.example", "app", None, None),
            ("a.b/c/d/e/f:t".into(), "a.b", "c/d/e/f", Some("t"), None),
            (
                d("nginx@{D}"),
                "docker.io",
                "library/nginx",
                None,
                Some(D.into()),
            ),
            (
                d("nginx:1.25@{D}"),
                "docker.io",
                "library/nginx",
                Some("1.25"),
                Some(D.into()),
            ),
            (
                d("localhost:5000/x@{D}"),
                "localhost:5000",
                "x",
                None,
                Some(D.into()),
            ),
            (
                "a__b/c--d/e.f_g:T_9.-x".into(),
                "docker.io",
                "a__b/c--d/e.f_g",
                Some("T_9.-x"),
                None,
            ),
            (
                "quay.io/coreos/flannel:v0.15.1".into(),
                "quay.io",
                "coreos/flannel",
                Some("v0.15.1"),
                None,
            ),
            (
                "docker.elastic.co/beats/filebeat:8.11.1".into(),
                "docker.elastic.co",
                "beats/filebeat",
                Some("8.11.1"),
                None,
            ),
            (
                "k8s.gcr.io/pause:2.0".into(),
                "k8s.gcr.io",
                "pause",
                Some("2.0"),
                None,
            ),
            (
                "busybox:_x".into(),
                "docker.io",
                "library/busybox",
                Some("_x"),
                None,
            ),
        ];
        for (input, registry, repository, tag, digest) in cases {
            let r: Reference = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.registry(), registry, "{input}");
            assert_eq!(r.repository(), repository, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest(), digest.as_deref(), "{input}");
            let again: Reference = r.to_string().parse().expect("display reparses");
            assert_eq!(again, r, "{input} round-trips through Display");
        }
    }

    #[test]
    fn invalid_references_are_rejected_with_the_rule() {
        use ReferenceErrorKind as K;
        let long_tag = "a".repeat(129);
        let long_name = format!("x.io/{}", "a".repeat(260));
        let cases: Vec<InvalidCase> = vec![
            ("".into(), |k| *k == K::Empty),
            ("Nginx".into(), |k| *k == K::Uppercase),
            ("docker.io/Library/nginx".into(), |k| *k == K::Uppercase),
            ("ghcr.io/Kube-vip/x".into(), |k| *k == K::Uppercase),
            ("nginx:".into(), |k| matches!(k, K::InvalidTag(_))),
            ("nginx:-dash".into(), |k| matches!(k, K::InvalidTag(_))),
            ("nginx:a/b".into(), |k| matches!(k, K::InvalidRegistry(_))),
            (format!("nginx:{long_tag}"), |k| {
                matches!(k, K::InvalidTag(_))
            }),
            ("nginx:t@sha256:abc".into(), |k| {
                matches!(k, K::InvalidDigest(_))
            }),
            (
                "nginx@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
                    .into(),
                |k| matches!(k, K::InvalidDigest(_)),
            ),
            ("nginx@md5".into(), |k| matches!(k, K::InvalidDigest(_))),
            ("nginx@".into(), |k| matches!(k, K::InvalidDigest(_))),
            ("/nginx".into(), |k| matches!(k, K::InvalidName)),
            ("nginx/".into(), |k| matches!(k, K::InvalidName)),
            ("a//b".into(), |k| matches!(k, K::InvalidName)),
            ("-nginx".into(), |k| matches!(k, K::InvalidName)),
            ("nginx-".into(), |k| matches!(k, K::InvalidName)),
            ("ng..inx".into(), |k| matches!(k, K::InvalidName)),
            ("ng___inx".into(), |k| matches!(k, K::InvalidName)),
            ("ng inx".into(), |k| matches!(k, K::InvalidName)),
            ("host:port/x".into(), |k| matches!(k, K::InvalidRegistry(_))),
            ("host:/x".into(), |k| matches!(k, K::InvalidRegistry(_))),
            ("-bad.io/x".into(), |k| matches!(k, K::InvalidRegistry(_))),
            ("bad_host.io/x".into(), |k| {
                matches!(k, K::InvalidRegistry(_))
            }),
            ("[zz::1]:5000/x".into(), |k| {
                matches!(k, K::InvalidRegistry(_))
            }),
            ("x.io/a/B:1".into(), |k| *k == K::Uppercase),
            (":tag".into(), |k| matches!(k, K::InvalidName)),
            (long_name, |k| *k == K::NameTooLong),
        ];
        for (input, expected) in cases {
            match input.parse::<Reference>() {
                Ok(r) => panic!("{input:?} parsed as {r}"),
                Err(e) => assert!(expected(e.kind()), "{input:?} gave {:?}", e.kind()),
            }
        }
    }

    #[test]
    fn derived_forms() {
        let r: Reference = "ghcr.io/kube-vip/kube-vip:v0.5.0".parse().unwrap();
        assert_eq!(r.name(), "kube-vip");
        assert_eq!(
            r.scope(&["pull", "push"]),
            "repository:kube-vip/kube-vip:pull,push"
        );
        assert_eq!(r.without_tag().to_string(), "ghcr.io/kube-vip/kube-vip");
        assert_eq!(
            r.with_tag("v1").unwrap().to_string(),
            "ghcr.io/kube-vip/kube-vip:v1"
        );
        assert!(r.with_tag("bad tag").is_err());
        let hub: Reference = "nginx".parse().unwrap();
        assert_eq!(hub.api_host(), "registry-1.docker.io");
        assert_eq!(
            hub.or_latest().to_string(),
            "docker.io/library/nginx:latest"
        );
        assert_eq!(hub.manifest_reference(), "latest");
        let pinned = hub.with_digest(D).unwrap();
        assert_eq!(pinned.manifest_reference(), D);
        let err = "Nginx".parse::<Reference>().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid image reference \"Nginx\": repository name must be lowercase"
        );
    }
}
