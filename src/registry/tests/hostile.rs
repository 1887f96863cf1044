//! Hostile and broken registries (issue #11): every read bounded in count, size and time,
//! every body checked against its announced length, its declared size and its digest.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use super::hostile_server::{ok, HostileServer, Reply};
use super::*;
use crate::registry::manifest::{sha256_digest, OCI_MANIFEST};
use crate::registry::{ErrorKind, Limit, Limits, RegistryError};

/// A client with fast retries and the given limits.
fn limited(limits: Limits) -> RegistryClient {
    let options = fast(ClientOptions {
        limits,
        ..ClientOptions::default()
    });
    RegistryClient::new(CredentialStore::default(), options)
}

/// Limits with one-second timeouts, so stalls fail fast.
fn quick() -> Limits {
    Limits {
        idle_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

fn at(server: &HostileServer, rest: &str) -> Reference {
    format!("{}/{rest}", server.addr)
        .parse()
        .expect("test reference parses")
}

fn limit_of(error: &RegistryError) -> Option<Limit> {
    match error.kind() {
        ErrorKind::Limit { limit, .. } => Some(*limit),
        _ => None,
    }
}

/// Every page holds `per_page` new tags and links to yet another page.
async fn endless_tag_pages(per_page: usize) -> HostileServer {
    let page = Arc::new(AtomicUsize::new(0));
    HostileServer::start(move |_, _| {
        let n = page.fetch_add(1, Ordering::SeqCst);
        let tags: Vec<String> = (0..per_page).map(|i| format!("p{n}-{i}")).collect();
        let link = format!(r#"Link: </v2/team/app/tags/list?page={n}>; rel="next""#);
        ok(&[link], serde_json::json!({ "tags": tags }).to_string())
    })
    .await
}

#[tokio::test]
async fn endless_tag_pages_stop_at_the_tag_limit_with_one_line() {
    let server = endless_tag_pages(100_000).await;
    let error = limited(Limits::default())
        .list_tags(&at(&server, "team/app"), None)
        .await
        .expect_err("100,000 tags a page forever");
    assert_eq!(limit_of(&error), Some(Limit::TagsPerRepository), "{error}");
    assert!(
        error.to_string().ends_with(
            "list tags: more than 100000 tags in team/app (limit tags_per_repository in auth.yaml)"
        ),
        "{error}"
    );
    assert_eq!(
        server.hits("tags/list"),
        2,
        "stops on the page that overflows"
    );
    let small = limited(Limits {
        tags_per_repository: 250,
        ..Limits::default()
    });
    let error = small
        .list_tags(&at(&server, "team/app"), None)
        .await
        .expect_err("over 250");
    assert!(error.to_string().contains("more than 250 tags"), "{error}");
}

#[tokio::test]
async fn a_link_back_to_the_same_page_stops_at_once() {
    let server = HostileServer::start(|_, _| {
        let link = r#"Link: </v2/team/app/tags/list?n=5>; rel="next""#.to_owned();
        ok(&[link], r#"{"tags":["a"]}"#)
    })
    .await;
    let error = limited(Limits::default())
        .list_tags(&at(&server, "team/app"), Some(5))
        .await
        .expect_err("a loop");
    assert!(
        error.to_string().ends_with("pagination links loop"),
        "{error}"
    );
    assert_eq!(server.hits("tags/list"), 1);
}

#[tokio::test]
async fn empty_pages_forever_stop_at_the_page_limit() {
    let server = endless_tag_pages(0).await;
    let client = limited(Limits {
        pages_per_listing: 7,
        ..Limits::default()
    });
    let error = client
        .list_tags(&at(&server, "team/app"), None)
        .await
        .expect_err("pages without end");
    assert_eq!(limit_of(&error), Some(Limit::PagesPerListing), "{error}");
    assert!(error.to_string().contains("more than 7 pages"), "{error}");
    assert_eq!(server.hits("tags/list"), 7);
}

#[tokio::test]
async fn a_manifest_over_the_size_limit_fails_before_its_body() {
    // Announces 100 MB and sends nothing: the announcement alone fails it, at once.
    let server = HostileServer::start(|_, _| Reply::Stall {
        announced: 100_000_000,
        prefix: Bytes::new(),
    })
    .await;
    let started = Instant::now();
    let error = limited(Limits::default())
        .get_manifest(&at(&server, "team/app:1"))
        .await
        .expect_err("too large");
    assert_eq!(limit_of(&error), Some(Limit::ManifestSize), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "no wait for a body"
    );
    assert_eq!(server.hits("/manifests/"), 1, "a limit hit is not retried");
    // No Content-Length: read until the limit, then stop.
    let server = HostileServer::start(|_, _| Reply::Cut {
        headers: vec![format!("Content-Type: {OCI_MANIFEST}")],
        announced: None,
        body: Bytes::from(vec![b' '; 300_000]),
    })
    .await;
    let error = limited(Limits {
        manifest_size: 100_000,
        ..Limits::default()
    })
    .get_manifest(&at(&server, "team/app:1"))
    .await
    .expect_err("too large");
    assert!(
        error
            .to_string()
            .contains("manifest of more than 100000 bytes is larger than 100000 bytes (limit manifest_size in auth.yaml)"),
        "{error}"
    );
}

fn manifest_body() -> Bytes {
    Bytes::from_static(br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[]}"#)
}

#[tokio::test]
async fn a_manifest_shorter_than_its_content_length_is_never_accepted() {
    let body = manifest_body();
    let announced = body.len() + 40;
    let server = HostileServer::start(move |_, _| Reply::Cut {
        headers: vec![format!("Content-Type: {OCI_MANIFEST}")],
        announced: Some(announced),
        body: body.clone(),
    })
    .await;
    let error = limited(quick())
        .get_manifest(&at(&server, "team/app:1"))
        .await
        .expect_err("the body is short and no digest vouches for it");
    assert!(matches!(error.kind(), ErrorKind::Network(_)), "{error}");
    assert_eq!(server.hits("/manifests/"), 4, "retried, then failed");
}

#[tokio::test]
async fn a_stalled_manifest_fails_after_two_idle_timeouts() {
    let body = manifest_body();
    let server = HostileServer::start(move |_, _| Reply::Stall {
        announced: body.len(),
        prefix: body.slice(..10),
    })
    .await;
    let started = Instant::now();
    let error = limited(quick())
        .get_manifest(&at(&server, "team/app:1"))
        .await
        .expect_err("stalls");
    assert_eq!(limit_of(&error), Some(Limit::IdleTimeout), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("no byte within 1s (limit idle_timeout in auth.yaml)"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(server.hits("/manifests/"), 2, "a stall is retried once");
}

/// A blob whose digest is right and whose size is not what its descriptor declares.
async fn blob_server(blob: Bytes, announce: bool) -> (HostileServer, String) {
    let digest = sha256_digest(&blob);
    let server = HostileServer::start(move |_, _| Reply::Cut {
        headers: vec![],
        announced: announce.then_some(blob.len()),
        body: blob.clone(),
    })
    .await;
    (server, digest)
}

#[tokio::test]
async fn a_blob_larger_than_its_descriptor_fails_at_its_content_length() {
    let (server, digest) = blob_server(Bytes::from(vec![7u8; 2_000_000]), true).await;
    let error = limited(quick())
        .get_blob(&at(&server, "team/app"), &digest, Some(1000))
        .await
        .expect_err("Content-Length says 2,000,000, the manifest 1000");
    assert!(
        matches!(error.kind(), ErrorKind::SizeMismatch(_)),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .ends_with("blob has 2000000 bytes, its manifest declares 1000"),
        "{error}"
    );
    assert_eq!(server.hits("/blobs/"), 1, "not retried");
}

#[tokio::test]
async fn a_blob_larger_than_its_descriptor_stops_at_the_first_byte_too_many() {
    let (server, digest) = blob_server(Bytes::from(vec![7u8; 2_000_000]), false).await;
    let mut stream = limited(quick())
        .get_blob(&at(&server, "team/app"), &digest, Some(1000))
        .await
        .expect("no Content-Length to check up front");
    let mut passed = 0;
    let mut failure = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => passed += chunk.len(),
            Err(error) => failure = Some(error),
        }
    }
    let error = failure.expect("the stream ends in an error");
    assert!(
        error.to_string().contains("blob has more than 1000 bytes"),
        "{error}"
    );
    assert!(passed <= 1000, "never more than declared: {passed}");
}

#[tokio::test]
async fn a_blob_shorter_than_its_descriptor_fails() {
    let (server, digest) = blob_server(Bytes::from(vec![7u8; 500]), true).await;
    let error = limited(quick())
        .get_blob(&at(&server, "team/app"), &digest, Some(1000))
        .await
        .expect_err("500 bytes where 1000 are declared");
    assert!(
        error
            .to_string()
            .ends_with("blob has 500 bytes, its manifest declares 1000"),
        "{error}"
    );
}

#[tokio::test]
async fn a_blob_that_stalls_after_its_headers_fails_after_one_resume() {
    let blob = Bytes::from(vec![3u8; 5000]);
    let digest = sha256_digest(&blob);
    let server = HostileServer::start(move |_, _| Reply::Stall {
        announced: blob.len(),
        prefix: blob.slice(..100),
    })
    .await;
    let started = Instant::now();
    let mut stream = limited(quick())
        .get_blob(&at(&server, "team/app"), &digest, Some(5000))
        .await
        .expect("headers arrive");
    let mut failure = None;
    while let Some(item) = stream.next().await {
        if let Err(error) = item {
            failure = Some(error);
        }
    }
    let error = failure.expect("the stream ends in an error");
    assert_eq!(limit_of(&error), Some(Limit::IdleTimeout), "{error}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        server.hits("/blobs/"),
        2,
        "one resume, then the image fails"
    );
}

#[tokio::test]
async fn a_registry_that_accepts_and_never_answers_fails_within_two_connect_timeouts() {
    let server = HostileServer::silent().await;
    let started = Instant::now();
    let limits = Limits {
        idle_timeout: Duration::from_secs(3),
        ..quick()
    };
    let error = limited(limits)
        .head_manifest(&at(&server, "team/app:1"))
        .await
        .expect_err("silence");
    assert_eq!(limit_of(&error), Some(Limit::ConnectTimeout), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("ping /v2/: no connection within 1s (limit connect_timeout in auth.yaml)"),
        "{error}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        2,
        "HTTPS twice, and no second wait over plain HTTP"
    );
}

#[tokio::test]
async fn a_token_answer_is_read_within_a_bound() {
    let server = HostileServer::start(|_, path| {
        if path.starts_with("/token") {
            Reply::Cut {
                headers: vec![],
                announced: None,
                body: Bytes::from(vec![b'x'; 2 * 1024 * 1024]),
            }
        } else {
            Reply::Full {
                status: "401 Unauthorized",
                headers: vec![r#"WWW-Authenticate: Bearer realm="/token",service="t""#.into()],
                body: Bytes::new(),
            }
        }
    })
    .await;
    let error = limited(quick())
        .list_tags(&at(&server, "team/app"), None)
        .await
        .expect_err("a 2 MiB token answer");
    assert!(
        error.to_string().contains("token answer of more than"),
        "{error}"
    );
}
