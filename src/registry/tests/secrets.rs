//! SPEC §9: no credential or token in the `Display` or `Debug` of any error the other tests
//! produce, nor of the client, its options or the credential types.

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::*;
use crate::credentials::{Credentials, DockerConfig};
use crate::registry::RegistryError;

/// Strings that must never be shown.
fn forbidden() -> Vec<&'static str> {
    let basic_payload = BASIC.trim_start_matches("Basic ");
    vec![PASSWORD, TOKEN_1, TOKEN_2, basic_payload, "sig-secret"]
}

fn assert_clean(what: &str, text: &str) {
    for secret in forbidden() {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

async fn rate_limited_for_an_hour() -> RegistryError {
    let server = open_registry().await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/tags/list"))
        .respond_with(ResponseTemplate::new(429).insert_header("Retry-After", "3600"))
        .mount(&server)
        .await;
    client(&server, true)
        .list_tags(&reference(&server, "team/app"), None)
        .await
        .expect_err("not waiting an hour")
}

async fn connection_refused() -> RegistryError {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let options = fast(ClientOptions::default());
    let client = RegistryClient::new(
        CredentialStore::default(),
        ClientOptions {
            retry: RetryPolicy {
                max_attempts: 1,
                ..options.retry.clone()
            },
            ..options
        },
    );
    let r: Reference = format!("{addr}/team/app:v1").parse().expect("reference");
    client.get_manifest(&r).await.expect_err("nothing listens")
}

async fn failing_credential_helper(server: &MockServer) -> RegistryError {
    let config = DockerConfig::parse(&format!(
        r#"{{"credHelpers": {{"{}": "absent-helper"}}}}"#,
        server.address()
    ))
    .expect("config parses");
    let store = CredentialStore::new(vec![], Some(config), None).with_helper_path("/nonexistent");
    RegistryClient::new(store, fast(ClientOptions::default()))
        .list_tags(&reference(server, "team/app"), None)
        .await
        .expect_err("a failing helper is an error, not anonymous access")
}

/// A hostile registry echoes the password it was sent in its error messages: a 403 and a
/// 401 on the registry (Basic auth), and the token service's refusal.
async fn registries_echoing_the_password() -> Vec<RegistryError> {
    let echo = format!("denied for {USER}:{PASSWORD} (x{PASSWORD}x)");
    let basic = basic_registry().await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/manifests/v1"))
        .respond_with(ResponseTemplate::new(403).set_body_json(envelope("DENIED", &echo)))
        .mount(&basic)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/team/app/tags/list"))
        .respond_with(ResponseTemplate::new(401).set_body_json(envelope("UNAUTHORIZED", &echo)))
        .mount(&basic)
        .await;
    let r = reference(&basic, "team/app:v1");
    let denied = client(&basic, true).get_manifest(&r).await;
    let refused = client(&basic, true).list_tags(&r, None).await;
    let bearer = bearer_registry().await;
    Mock::given(method("GET"))
        .and(path("/token"))
        .respond_with(ResponseTemplate::new(401).set_body_json(envelope(PASSWORD, &echo)))
        .mount(&bearer)
        .await;
    let token = client(&bearer, true)
        .list_tags(&reference(&bearer, "team/app"), None)
        .await;
    let errors = vec![
        denied.expect_err("403"),
        refused.expect_err("401"),
        token.expect_err("token refused"),
    ];
    for error in &errors {
        assert!(error.to_string().contains("<redacted>"), "{error}");
    }
    errors
}

#[tokio::test]
async fn no_error_or_debug_output_shows_a_secret() {
    let mut errors: Vec<RegistryError> = Vec::new();
    let open = open_registry().await;
    errors.push(reads::manifest_unknown(&open).await);
    errors.push(reads::manifest_with_wrong_bytes().await);
    errors.push(reads::tags_link_to_another_host().await);
    errors.push(auth_flow::unauthorized_after_fresh_token().await.0);
    errors.push(auth_flow::token_service_refuses().await);
    errors.push(blobs::blob_with_wrong_bytes().await.0);
    errors.push(rate_limited_for_an_hour().await);
    errors.push(connection_refused().await);
    errors.extend(registries_echoing_the_password().await);
    let basic = basic_registry().await;
    let helper_error = failing_credential_helper(&basic).await;
    assert!(
        helper_error.to_string().contains("absent-helper"),
        "{helper_error}"
    );
    errors.push(helper_error);

    let mut kinds = std::collections::BTreeSet::new();
    for error in &errors {
        assert_clean("Display", &error.to_string());
        assert_clean("Debug", &format!("{error:?}"));
        assert!(!error.to_string().contains('\n'), "one line: {error}");
        kinds.insert(
            format!("{:?}", error.kind())
                .split(['(', ' ', '{'])
                .next()
                .unwrap_or_default()
                .to_owned(),
        );
    }
    for kind in [
        "Status",
        "NoAccess",
        "Token",
        "DigestMismatch",
        "Protocol",
        "Network",
        "Credentials",
    ] {
        assert!(
            kinds.contains(kind),
            "no {kind} error was formatted: {kinds:?}"
        );
    }

    let client = client(&basic, true);
    client
        .list_tags(&reference(&basic, "team/app"), None)
        .await
        .ok();
    assert_clean("client Debug", &format!("{client:?}"));
    let credentials = Credentials::Basic {
        username: USER.into(),
        password: crate::secret::Secret::new(PASSWORD),
    };
    assert_clean("Credentials Debug", &format!("{credentials:?}"));
    let store = CredentialStore::new(
        vec![crate::config::auth::AuthEntry {
            key: "x.io".into(),
            username: Some(USER.into()),
            password: Some(crate::secret::Secret::new(PASSWORD)),
            insecure: false,
            ca_file: None,
            limits: Default::default(),
        }],
        None,
        Some(credentials),
    );
    assert_clean("CredentialStore Debug", &format!("{store:?}"));
}
