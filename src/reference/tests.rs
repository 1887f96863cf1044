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
        ("r.io:65535/x".into(), "r.io:65535", "x", None, None),
        ("r.io:1/x:5000".into(), "r.io:1", "x", Some("5000"), None),
        (
            "ubuntu:22.04".into(),
            "docker.io",
            "library/ubuntu",
            Some("22.04"),
            None,
        ),
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
            "nginx@sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789".into(),
            |k| matches!(k, K::InvalidDigest(_)),
        ),
        ("nginx@md5".into(), |k| matches!(k, K::InvalidDigest(_))),
        ("nginx@md5:abcdef".into(), |k| {
            matches!(k, K::UnsupportedDigest(_))
        }),
        (format!("nginx@sha512:{}", "a".repeat(128)), |k| {
            matches!(k, K::UnsupportedDigest(_))
        }),
        ("127.0.0.1:0/x:1".into(), |k| matches!(k, K::InvalidPort(_))),
        ("127.0.0.1:65536/x".into(), |k| {
            matches!(k, K::InvalidPort(_))
        }),
        ("r.io:99999/x".into(), |k| matches!(k, K::InvalidPort(_))),
        ("127.0.0.1:5402".into(), |k| {
            matches!(k, K::MissingRepository(_))
        }),
        ("registry.local:5000".into(), |k| {
            matches!(k, K::MissingRepository(_))
        }),
        ("localhost".into(), |k| matches!(k, K::MissingRepository(_))),
        ("10.0.0.1".into(), |k| matches!(k, K::MissingRepository(_))),
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
