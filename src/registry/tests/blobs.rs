//! Blob downloads (digest check, resume, redirects) and uploads (monolithic, chunked,
//! mount fallback, foreign Location, restart after a failure).

use bytes::Bytes;
use futures::StreamExt;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::registry::manifest::sha256_digest;
use crate::registry::{BlobPush, BlobSource, RegistryError};

const LAYER: &[u8] = b"layer bytes that are long enough to be split in two halves";

async fn collect(
    client: &RegistryClient,
    r: &Reference,
    digest: &str,
) -> Result<Vec<u8>, RegistryError> {
    let mut stream = client.get_blob(r, digest, None).await?;
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk?);
    }
    Ok(out)
}

pub(super) async fn blob_with_wrong_bytes() -> (RegistryError, usize) {
    let server = open_registry().await;
    let digest = sha256_digest(LAYER);
    Mock::given(method("GET"))
        .and(path(format!("/v2/team/app/blobs/{digest}")))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"tampered".to_vec()))
        .mount(&server)
        .await;
    let client = client(&server, false);
    let mut stream = client
        .get_blob(&reference(&server, "team/app"), &digest, None)
        .await
        .expect("starts");
    let mut good = 0;
    let mut error = None;
    while let Some(item) = stream.next().await {
        match item {
            Ok(_) => good += 1,
            Err(e) => error = Some(e),
        }
    }
    (error.expect("the stream ends with an error"), good)
}

#[tokio::test]
async fn wrong_bytes_never_pass_as_the_blob() {
    let (err, good_chunks) = blob_with_wrong_bytes().await;
    assert_eq!(
        good_chunks, 0,
        "the only chunk was held back and replaced by the error"
    );
    assert!(err.to_string().contains("does not match digest"), "{err}");
}

#[tokio::test]
async fn broken_download_resumes_with_range() {
    for honour_range in [true, false] {
        let digest = sha256_digest(LAYER);
        let server = raw_server::start(
            Bytes::from_static(LAYER),
            format!("/v2/team/app/blobs/{digest}"),
            honour_range,
        )
        .await;
        let client =
            RegistryClient::new(CredentialStore::default(), fast(ClientOptions::default()));
        let r: Reference = format!("{}/team/app", server.addr)
            .parse()
            .expect("reference");
        let bytes = collect(&client, &r, &digest)
            .await
            .expect("resumed download");
        assert_eq!(bytes, LAYER, "honour_range={honour_range}");
        let log = server
            .requests
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default();
        let blob_requests: Vec<&String> = log.iter().filter(|h| h.contains("/blobs/")).collect();
        assert_eq!(blob_requests.len(), 2, "{log:?}");
        let half = LAYER.len() / 2;
        assert!(
            blob_requests[1]
                .to_ascii_lowercase()
                .contains(&format!("range: bytes={half}-")),
            "{log:?}"
        );
    }
}

/// A Basic-auth registry whose blob GET redirects to `to`.
async fn redirecting(to: &str) -> (MockServer, String) {
    let server = basic_registry().await;
    let digest = sha256_digest(LAYER);
    Mock::given(method("GET"))
        .and(path(format!("/v2/team/app/blobs/{digest}")))
        .respond_with(ResponseTemplate::new(307).insert_header("Location", to))
        .mount(&server)
        .await;
    (server, digest)
}

#[tokio::test]
async fn redirect_to_another_host_drops_credentials() {
    let storage = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/bucket/layer"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(LAYER.to_vec()))
        .mount(&storage)
        .await;
    let (server, digest) = redirecting(&format!(
        "{}/bucket/layer?X-Signature=sig-secret",
        storage.uri()
    ))
    .await;
    let bytes = collect(
        &client(&server, true),
        &reference(&server, "team/app"),
        &digest,
    )
    .await
    .expect("followed");
    assert_eq!(bytes, LAYER);
    let at_registry = received(&server, &format!("/v2/team/app/blobs/{digest}")).await;
    assert_eq!(authorization(&at_registry[0]).as_deref(), Some(BASIC));
    let at_storage = received(&storage, "/bucket/layer").await;
    assert_eq!(at_storage.len(), 1);
    assert_eq!(
        authorization(&at_storage[0]),
        None,
        "credentials leaked to the redirect host"
    );
}

#[tokio::test]
async fn a_redirect_target_cannot_pick_the_token_realm() {
    // The storage host answers 401 with a challenge of its own; following it would send the
    // registry's Basic credentials to a realm that host chose.
    let storage = MockServer::start().await;
    let realm = format!("{}/token", storage.uri());
    Mock::given(method("GET"))
        .and(path("/bucket/layer"))
        .respond_with(ResponseTemplate::new(401).insert_header(
            "WWW-Authenticate",
            format!("Bearer realm=\"{realm}\",service=\"evil\"").as_str(),
        ))
        .mount(&storage)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": "t"})))
        .mount(&storage)
        .await;
    let (server, digest) = redirecting(&format!("{}/bucket/layer", storage.uri())).await;
    let client = client(&server, true);
    let target = reference(&server, "team/app");
    let error = collect(&client, &target, &digest)
        .await
        .expect_err("a 401 from storage");
    assert!(!error.to_string().contains(BASIC), "{error}");
    // A second request to the registry must still use its own Basic challenge.
    let _ = collect(&client, &target, &digest).await;
    assert!(
        received(&storage, "/token").await.is_empty(),
        "no token request to the foreign realm"
    );
    for request in storage.received_requests().await.unwrap_or_default() {
        assert_eq!(
            authorization(&request),
            None,
            "credentials reached {}",
            request.url
        );
    }
    for request in received(&server, &format!("/v2/team/app/blobs/{digest}")).await {
        assert_eq!(authorization(&request).as_deref(), Some(BASIC));
    }
}

#[tokio::test]
async fn redirect_on_the_same_host_keeps_credentials() {
    let (server, digest) = redirecting("/storage/layer").await;
    Mock::given(method("GET"))
        .and(path("/storage/layer"))
        .and(header("authorization", BASIC))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(LAYER.to_vec()))
        .expect(1)
        .mount(&server)
        .await;
    let bytes = collect(
        &client(&server, true),
        &reference(&server, "team/app"),
        &digest,
    )
    .await
    .expect("followed");
    assert_eq!(bytes, LAYER);
}

fn accepted(location: &str) -> ResponseTemplate {
    ResponseTemplate::new(202).insert_header("Location", location)
}

#[tokio::test]
async fn small_blob_is_one_put_and_a_failed_put_restarts_the_session() {
    let server = basic_registry().await;
    let digest = sha256_digest(LAYER);
    Mock::given(method("POST"))
        .and(path("/v2/team/app/blobs/uploads/"))
        .respond_with(accepted("/v2/team/app/blobs/uploads/u1?_state=abc"))
        .mount(&server)
        .await;
    let put = || {
        Mock::given(method("PUT"))
            .and(path("/v2/team/app/blobs/uploads/u1"))
            .and(query_param("digest", digest.as_str()))
    };
    put()
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    put()
        .and(query_param("_state", "abc"))
        .respond_with(ResponseTemplate::new(201))
        .mount(&server)
        .await;
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), LAYER).expect("write");
    client(&server, true)
        .upload_blob(
            &reference(&server, "team/app"),
            &digest,
            &BlobSource::File(file.path().to_owned()),
            None,
        )
        .await
        .expect("uploaded on the second session");
    assert_eq!(
        received(&server, "/v2/team/app/blobs/uploads/").await.len(),
        2,
        "a new session per attempt"
    );
    let puts = received(&server, "/v2/team/app/blobs/uploads/u1").await;
    assert_eq!(puts.len(), 2);
    assert!(
        puts.iter().all(|p| p.body == LAYER),
        "the file is read again for the retry"
    );
}

#[tokio::test]
async fn large_blob_goes_in_patch_chunks() {
    let server = open_registry().await;
    let digest = sha256_digest(LAYER);
    Mock::given(method("POST"))
        .respond_with(accepted("/up/1"))
        .mount(&server)
        .await;
    Mock::given(method("PATCH"))
        .and(path("/up/1"))
        .respond_with(accepted("/up/1"))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/up/1"))
        .and(query_param("digest", digest.as_str()))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let options = ClientOptions {
        monolithic_limit: 16,
        chunk_size: 25,
        ..ClientOptions::default()
    };
    let client = client_with(&server, false, options);
    client
        .upload_blob(
            &reference(&server, "team/app"),
            &digest,
            &BlobSource::Bytes(Bytes::from_static(LAYER)),
            None,
        )
        .await
        .expect("chunked upload");
    let patches = received(&server, "/up/1")
        .await
        .into_iter()
        .filter(|r| r.method.as_str() == "PATCH")
        .collect::<Vec<_>>();
    let ranges: Vec<&str> = patches
        .iter()
        .filter_map(|p| p.headers.get("content-range")?.to_str().ok())
        .collect();
    assert_eq!(
        ranges,
        ["0-24", "25-49", format!("50-{}", LAYER.len() - 1).as_str()]
    );
    let joined: Vec<u8> = patches.iter().flat_map(|p| p.body.clone()).collect();
    assert_eq!(joined, LAYER);
}

#[tokio::test]
async fn refused_mount_falls_back_to_upload_in_the_returned_session() {
    let server = basic_registry().await;
    let digest = sha256_digest(LAYER);
    Mock::given(method("POST"))
        .and(path("/v2/team/app/blobs/uploads/"))
        .and(query_param("mount", digest.as_str()))
        .respond_with(accepted("/v2/team/app/blobs/uploads/m1"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/v2/team/app/blobs/uploads/m1"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&server)
        .await;
    let pushed = client(&server, true)
        .push_blob(
            &reference(&server, "team/app"),
            &digest,
            &BlobSource::Bytes(Bytes::from_static(LAYER)),
            Some("other/base"),
        )
        .await
        .expect("uploaded");
    assert_eq!(pushed, BlobPush::Uploaded);
    assert_eq!(
        received(&server, "/v2/team/app/blobs/uploads/").await.len(),
        1,
        "no second session"
    );
}

#[tokio::test]
async fn upload_location_on_another_host_gets_no_credentials() {
    let server = basic_registry().await;
    let elsewhere = MockServer::start().await;
    let digest = sha256_digest(LAYER);
    Mock::given(method("POST"))
        .respond_with(accepted(&format!("{}/upload/x", elsewhere.uri())))
        .mount(&server)
        .await;
    Mock::given(method("PUT"))
        .and(path("/upload/x"))
        .respond_with(ResponseTemplate::new(201))
        .expect(1)
        .mount(&elsewhere)
        .await;
    client(&server, true)
        .upload_blob(
            &reference(&server, "team/app"),
            &digest,
            &BlobSource::Bytes(Bytes::from_static(LAYER)),
            None,
        )
        .await
        .expect("uploaded");
    let posts = received(&server, "/v2/team/app/blobs/uploads/").await;
    assert_eq!(authorization(&posts[0]).as_deref(), Some(BASIC));
    let puts = received(&elsewhere, "/upload/x").await;
    assert_eq!(
        authorization(&puts[0]),
        None,
        "credentials leaked to the upload host"
    );
}
