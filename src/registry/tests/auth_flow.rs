//! Bearer tokens: scope, multi-scope for mounts, renewal on expiry, no endless 401 loop,
//! and no credentials for a realm on another host.

use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::credentials::Side;
use crate::registry::manifest::OCI_MANIFEST;
use crate::registry::{MountOutcome, RegistryError};

const BODY: &[u8] =
    br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;

fn token(value: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(serde_json::json!({"token": value, "expires_in": 300}))
}

/// The manifest `team/app:v1`, served `times` times to requests carrying `Bearer token`.
async fn manifest_for_bearer(server: &MockServer, token: &str, times: u64) {
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/v1"))
        .and(header("authorization", format!("Bearer {token}").as_str()))
        .respond_with(manifest_ok())
        .expect(times)
        .mount(server)
        .await;
}

fn manifest_ok() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(BODY.to_vec(), OCI_MANIFEST)
}

fn rejected(server: &MockServer) -> ResponseTemplate {
    let challenge = format!(
        r#"Bearer realm="{}/token",service="test",scope="repository:team/app:pull""#,
        server.uri()
    );
    ResponseTemplate::new(401)
        .insert_header("WWW-Authenticate", challenge.as_str())
        .set_body_json(envelope("UNAUTHORIZED", "token expired"))
}

#[tokio::test]
async fn bearer_flow_asks_for_the_scope_with_basic_credentials() {
    let server = bearer_registry().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("service", "test"))
        .and(query_param("scope", "repository:team/app:pull"))
        .and(header("authorization", BASIC))
        .respond_with(token(TOKEN_1))
        .expect(1)
        .mount(&server)
        .await;
    manifest_for_bearer(&server, TOKEN_1, 2).await;
    // Target side: the source side pulls a reference once a run, and this reads it twice.
    let client = client(&server, true).for_side(Side::Target);
    for _ in 0..2 {
        let manifest = client
            .get_manifest(&reference(&server, "team/app:v1"))
            .await
            .expect("token works");
        assert_eq!(manifest.bytes.as_ref(), BODY);
    }
}

#[tokio::test]
async fn mount_asks_one_token_for_both_repositories() {
    let server = bearer_registry().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .and(query_param("scope", "repository:team/app:pull,push"))
        .and(query_param("scope", "repository:other/base:pull"))
        .respond_with(token(TOKEN_1))
        .expect(1)
        .mount(&server)
        .await;
    let digest = crate::registry::manifest::sha256_digest(b"layer");
    Mock::given(method("POST"))
        .and(path("/v2/team/app/blobs/uploads/"))
        .and(query_param("mount", digest.as_str()))
        .and(query_param("from", "other/base"))
        .and(header(
            "authorization",
            format!("Bearer {TOKEN_1}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(201).insert_header("Docker-Content-Digest", digest.as_str()),
        )
        .expect(1)
        .mount(&server)
        .await;
    let outcome = client(&server, true)
        .mount_blob(&reference(&server, "team/app"), "other/base", &digest)
        .await
        .expect("mounted");
    assert!(matches!(outcome, MountOutcome::Mounted));
    let token_request = &received(&server, "/token").await[0];
    let scopes: Vec<String> = token_request
        .url
        .query_pairs()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(
        scopes,
        [
            "repository:other/base:pull",
            "repository:team/app:pull,push"
        ]
    );
}

/// A registry whose first token works once and is then rejected; `second` is what the
/// registry does with the renewed token.
async fn expiring_token_registry(second_rejected: bool) -> MockServer {
    let server = bearer_registry().await;
    let second = if second_rejected {
        rejected(&server)
    } else {
        manifest_ok()
    };
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(token(TOKEN_1))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(token(TOKEN_2))
        .mount(&server)
        .await;
    let manifest = "/v2/team/app/manifests/v1";
    Mock::given(method("GET"))
        .and(path(manifest))
        .and(header(
            "authorization",
            format!("Bearer {TOKEN_1}").as_str(),
        ))
        .respond_with(manifest_ok())
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest))
        .and(header(
            "authorization",
            format!("Bearer {TOKEN_2}").as_str(),
        ))
        .respond_with(second)
        .with_priority(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(manifest))
        .respond_with(rejected(&server))
        .with_priority(3)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn expired_token_is_renewed_once() {
    let server = expiring_token_registry(false).await;
    // Target side: the source side pulls a reference once a run.
    let client = client(&server, true).for_side(Side::Target);
    let r = reference(&server, "team/app:v1");
    client.get_manifest(&r).await.expect("first token");
    client.get_manifest(&r).await.expect("renewed token");
    assert_eq!(received(&server, "/token").await.len(), 2);
    assert_eq!(
        received(&server, "/v2/team/app/manifests/v1").await.len(),
        3
    );
}

pub(super) async fn unauthorized_after_fresh_token() -> (RegistryError, MockServer) {
    let server = expiring_token_registry(true).await;
    // Target side: the source side pulls a reference once a run.
    let client = client(&server, true).for_side(Side::Target);
    let r = reference(&server, "team/app:v1");
    client.get_manifest(&r).await.expect("first token");
    let err = client
        .get_manifest(&r)
        .await
        .expect_err("renewed token rejected too");
    (err, server)
}

#[tokio::test]
async fn second_401_after_a_fresh_token_is_final() {
    let (err, server) = unauthorized_after_fresh_token().await;
    assert_eq!(err.status(), Some(401));
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("UNAUTHORIZED"), "{err}");
    assert_eq!(received(&server, "/token").await.len(), 2);
    assert_eq!(
        received(&server, "/v2/team/app/manifests/v1").await.len(),
        3,
        "cached, then one fresh try"
    );
}

#[tokio::test]
async fn realm_on_another_host_gets_no_credentials() {
    let registry = MockServer::start().await;
    let realm = MockServer::start().await;
    let challenge = format!(
        r#"Bearer realm="http://localhost:{}/token",service="test""#,
        realm.address().port()
    );
    Mock::given(method("GET"))
        .and(path("/v2/"))
        .respond_with(
            ResponseTemplate::new(401).insert_header("WWW-Authenticate", challenge.as_str()),
        )
        .mount(&registry)
        .await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(token(TOKEN_1))
        .mount(&realm)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/v1"))
        .and(header(
            "authorization",
            format!("Bearer {TOKEN_1}").as_str(),
        ))
        .respond_with(manifest_ok())
        .mount(&registry)
        .await;
    client(&registry, true)
        .get_manifest(&reference(&registry, "team/app:v1"))
        .await
        .expect("anonymous token works");
    let asked = received(&realm, "/token").await;
    assert_eq!(asked.len(), 1);
    assert_eq!(
        authorization(&asked[0]),
        None,
        "credentials leaked to another host"
    );
}

pub(super) async fn token_service_refuses() -> RegistryError {
    let server = bearer_registry().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(
            ResponseTemplate::new(401).set_body_json(envelope("UNAUTHORIZED", "bad password")),
        )
        .mount(&server)
        .await;
    client(&server, true)
        .list_tags(&reference(&server, "team/app"), None)
        .await
        .expect_err("token refused")
}

#[tokio::test]
async fn token_refusal_is_final() {
    let err = token_service_refuses().await;
    assert!(!err.is_retryable());
    // Named with its port: labs run several token services on one host.
    assert!(
        err.to_string().contains("token service 127.0.0.1:"),
        "{err}"
    );
}

#[tokio::test]
async fn identity_token_is_exchanged_with_an_oauth2_post() {
    let server = bearer_registry().await;
    let config = crate::credentials::DockerConfig::parse(&format!(
        r#"{{"auths": {{"{}": {{"identitytoken": "{PASSWORD}"}}}}}}"#,
        server.address()
    ))
    .expect("config");
    Mock::given(method("POST"))
        .and(path("/token"))
        .and(wiremock::matchers::body_string_contains(
            "grant_type=refresh_token",
        ))
        .and(wiremock::matchers::body_string_contains(
            format!("refresh_token={PASSWORD}").as_str(),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"access_token": TOKEN_1})),
        )
        .expect(1)
        .mount(&server)
        .await;
    manifest_for_bearer(&server, TOKEN_1, 1).await;
    let store = CredentialStore::new(vec![], Some(config), None);
    RegistryClient::new(store, fast(ClientOptions::default()))
        .get_manifest(&reference(&server, "team/app:v1"))
        .await
        .expect("refresh token exchanged");
}

#[tokio::test]
async fn an_absurd_token_lifetime_is_capped_not_a_panic() {
    let server = bearer_registry().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            serde_json::json!({"token": TOKEN_1, "expires_in": 10_000_000_000_000_000_000_u64}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/v1"))
        .respond_with(manifest_ok())
        .mount(&server)
        .await;
    let manifest = client(&server, true)
        .get_manifest(&reference(&server, "team/app:v1"))
        .await
        .expect("the token is used, for at most a day");
    assert_eq!(manifest.bytes.as_ref(), BODY);
}
