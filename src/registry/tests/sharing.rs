//! The client as shared state: `Clone + Send + Sync`, the per-registry request cap across
//! tasks, and host settings (a bad `ca_file` is a clear error).
//!
//! Owns these properties only; protocol behaviour is tested in the sibling modules.

use std::time::{Duration, Instant};

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use super::*;
use crate::credentials::CredentialStore;
use crate::registry::BlobStream;

#[test]
fn client_and_streams_cross_tasks() {
    fn shareable<T: Clone + Send + Sync + 'static>() {}
    fn sendable<T: Send + 'static>() {}
    shareable::<RegistryClient>();
    sendable::<BlobStream>();
    sendable::<crate::registry::RegistryError>();
}

#[tokio::test]
async fn requests_per_registry_are_capped() {
    let server = open_registry().await;
    Mock::given(method("HEAD"))
        .and(path_regex("^/v2/team/app/manifests/"))
        .respond_with(ResponseTemplate::new(404).set_delay(Duration::from_millis(300)))
        .mount(&server)
        .await;
    let mut options = ClientOptions::default();
    options.limits.max_concurrency = 2;
    let client = client_with(&server, false, options);
    client
        .head_manifest(&reference(&server, "team/app:warmup"))
        .await
        .expect("ping and head");
    let started = Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let client = client.clone();
            let r = reference(&server, &format!("team/app:t{i}"));
            tokio::spawn(async move { client.head_manifest(&r).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.expect("task").expect("head"), None);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "6 requests, 2 at a time, 300 ms each: {elapsed:?}"
    );
}

#[tokio::test]
async fn unreadable_ca_file_is_named_in_the_error() {
    let server = open_registry().await;
    let entry = crate::config::auth::AuthEntry {
        key: server.address().to_string(),
        username: None,
        password: None,
        insecure: false,
        ca_file: Some("/nonexistent/ca.pem".into()),
        limits: Default::default(),
    };
    let client = RegistryClient::new(
        CredentialStore::new(vec![entry], None, None),
        fast(ClientOptions::default()),
    );
    let err = client
        .list_tags(&reference(&server, "team/app"), None)
        .await
        .expect_err("no CA file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn loopback_hosts() {
    use crate::registry::is_loopback;
    for host in [
        "localhost",
        "localhost:5000",
        "127.0.0.1",
        "127.8.9.1:80",
        "[::1]:5000",
        "[::1]",
    ] {
        assert!(is_loopback(host), "{host}");
    }
    for host in [
        "10.0.0.1:5000",
        "example.com",
        "localhost.example.com",
        "[::2]:5000",
        "128.0.0.1",
    ] {
        assert!(!is_loopback(host), "{host}");
    }
}

#[tokio::test]
async fn plain_http_redirect_to_a_public_host_is_refused() {
    let server = open_registry().await;
    Mock::given(method("GET"))
        .and(path_regex("^/v2/team/app/blobs/"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("Location", "http://storage.example/layer"),
        )
        .mount(&server)
        .await;
    let digest = crate::registry::manifest::sha256_digest(b"x");
    let err = client(&server, false)
        .get_blob(&reference(&server, "team/app"), &digest, None)
        .await
        .expect_err("no plain HTTP to a non-loopback host");
    assert!(
        err.to_string()
            .contains("refusing plain HTTP to storage.example"),
        "{err}"
    );
}
