//! Tags pagination, manifests, and the retry behaviour seen through them.

use std::time::{Duration, Instant};

use wiremock::matchers::{method, path, path_regex, query_param};
use wiremock::{Mock, ResponseTemplate};

use super::*;
use crate::registry::manifest::{sha256_digest, OCI_INDEX, OCI_MANIFEST};
use crate::registry::RegistryError;

#[tokio::test]
async fn tags_follow_link_pagination_over_three_pages() {
    let server = open_registry().await;
    let list = "/v2/team/app/tags/list";
    Mock::given(method("GET"))
        .and(path(list))
        .and(query_param("n", "2"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"name": "team/app", "tags": ["a", "b"]}))
                .insert_header("Link", r#"</v2/team/app/tags/list?last=b&n=2>; rel="next""#),
        )
        .with_priority(10)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(list))
        .and(query_param("last", "b"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"tags": ["c", "d"]}))
                .insert_header(
                    "Link",
                    format!(r#"<{}{list}?last=d&n=2>; rel="next""#, server.uri()).as_str(),
                ),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(list))
        .and(query_param("last", "d"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"tags": ["e"]})))
        .mount(&server)
        .await;
    let tags = client(&server, false)
        .list_tags(&reference(&server, "team/app"), Some(2))
        .await
        .expect("three pages");
    assert_eq!(tags, ["a", "b", "c", "d", "e"]);
    assert_eq!(received(&server, list).await.len(), 3);
}

pub(super) async fn tags_link_to_another_host() -> RegistryError {
    let server = open_registry().await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/tags/list"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"tags": ["a"]}))
                .insert_header(
                    "Link",
                    r#"<https://elsewhere.example/v2/team/app/tags/list?last=a>; rel="next""#,
                ),
        )
        .mount(&server)
        .await;
    client(&server, false)
        .list_tags(&reference(&server, "team/app"), None)
        .await
        .expect_err("a link to another host is refused")
}

#[tokio::test]
async fn tags_pagination_stays_on_the_registry_host() {
    let err = tags_link_to_another_host().await;
    assert!(err.to_string().contains("another host"), "{err}");
}

pub(super) async fn manifest_unknown(server: &wiremock::MockServer) -> RegistryError {
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/missing"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(envelope("MANIFEST_UNKNOWN", "manifest unknown")),
        )
        .mount(server)
        .await;
    client(server, true)
        .get_manifest(&reference(server, "team/app:missing"))
        .await
        .expect_err("404")
}

#[tokio::test]
async fn manifest_unknown_is_not_retried() {
    let server = open_registry().await;
    let err = manifest_unknown(&server).await;
    assert!(err.to_string().contains("MANIFEST_UNKNOWN"), "{err}");
    assert!(err.is_not_found() && !err.is_retryable());
    assert_eq!(
        received(&server, "/v2/team/app/manifests/missing")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let server = open_registry().await;
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
    let p = "/v2/team/app/manifests/v1";
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "1")
                .set_body_json(envelope("TOOMANYREQUESTS", "slow down")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body.to_vec(), OCI_MANIFEST))
        .mount(&server)
        .await;
    let started = Instant::now();
    let manifest = client(&server, false)
        .get_manifest(&reference(&server, "team/app:v1"))
        .await
        .expect("second try succeeds");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(manifest.media_type, OCI_MANIFEST);
    assert_eq!(manifest.digest, sha256_digest(body));
    assert_eq!(received(&server, p).await.len(), 2);
}

#[tokio::test]
async fn server_error_then_success() {
    let server = open_registry().await;
    let body = br#"{"schemaVersion":2,"manifests":[]}"#;
    let digest = sha256_digest(body);
    let p = format!("/v2/team/app/manifests/{digest}");
    Mock::given(method("GET"))
        .and(path(p.as_str()))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(p.as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(body.to_vec(), OCI_INDEX)
                .insert_header("Docker-Content-Digest", digest.as_str()),
        )
        .mount(&server)
        .await;
    let pinned = reference(&server, &format!("team/app@{digest}"));
    let manifest = client(&server, false)
        .get_manifest(&pinned)
        .await
        .expect("retried");
    assert_eq!(
        (manifest.digest.as_str(), manifest.bytes.as_ref()),
        (digest.as_str(), &body[..])
    );
    assert_eq!(received(&server, &p).await.len(), 2);
}

pub(super) async fn manifest_with_wrong_bytes() -> RegistryError {
    let server = open_registry().await;
    let digest = sha256_digest(b"the real manifest");
    Mock::given(method("GET"))
        .and(path(format!("/v2/team/app/manifests/{digest}")))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"{\"layers\":[]}".to_vec(), OCI_MANIFEST),
        )
        .mount(&server)
        .await;
    client(&server, false)
        .get_manifest(&reference(&server, &format!("team/app@{digest}")))
        .await
        .expect_err("bytes do not match the digest")
}

#[tokio::test]
async fn manifest_by_digest_is_verified() {
    let err = manifest_with_wrong_bytes().await;
    assert!(err.to_string().contains("does not match digest"), "{err}");
}

#[tokio::test]
async fn manifest_head_and_put() {
    let server = basic_registry().await;
    let body = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
    let digest = sha256_digest(body);
    Mock::given(method("HEAD"))
        .and(path("/v2/team/app/manifests/v1"))
        .respond_with(
            ResponseTemplate::new(200).insert_header("Docker-Content-Digest", digest.as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/team/app/manifests/v2"))
        .and(wiremock::matchers::header("content-type", OCI_MANIFEST))
        .and(wiremock::matchers::header("authorization", BASIC))
        .respond_with(
            ResponseTemplate::new(201).insert_header("Docker-Content-Digest", digest.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let client = client(&server, true);
    let head = client
        .head_manifest(&reference(&server, "team/app:v1"))
        .await
        .expect("head");
    assert_eq!(head.and_then(|h| h.digest), Some(digest.clone()));
    assert_eq!(
        client
            .head_manifest(&reference(&server, "team/app:nope"))
            .await
            .expect("404 is None"),
        None
    );
    let put = client
        .put_manifest(
            &reference(&server, "team/app:v2"),
            bytes::Bytes::from_static(body),
            OCI_MANIFEST,
        )
        .await
        .expect("put");
    assert_eq!(put, digest);
    let put_request = &received(&server, "/v2/team/app/manifests/v2").await[0];
    assert_eq!(put_request.body, body);
}

/// A registry answering a bare 429 to everything (an abuse limit): each request of each job
/// would otherwise make its own attempts; after 10 in a row the run asks it nothing more,
/// and an answer of another kind resets the count.
#[tokio::test]
async fn a_registry_that_only_answers_429_is_left_alone_after_ten_in_a_row() {
    let server = open_registry().await;
    Mock::given(method("HEAD"))
        .and(path_regex("^/v2/team/app/manifests/"))
        .respond_with(ResponseTemplate::new(429))
        .mount(&server)
        .await;
    let client = client(&server, false);
    let mut errors = Vec::new();
    for tag in ["1", "2", "3", "4", "5", "6"] {
        let head = client
            .head_manifest(&reference(&server, &format!("team/app:{tag}")))
            .await;
        errors.push(head.expect_err("429").to_string());
    }
    let asked = server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.method.as_str() == "HEAD")
        .count();
    // 4 attempts per request (the test policy): 4 + 4 + 2, then nothing.
    assert_eq!(asked, 10, "{errors:#?}");
    assert!(
        errors[3].contains("HTTP 429") && errors[3].contains("not asked again in this run"),
        "{}",
        errors[3]
    );
    assert!(!errors[0].contains("not asked again"), "{}", errors[0]);
}
