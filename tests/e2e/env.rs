//! Self-tests of the e2e environment: registries in all three auth modes, the token
//! issuer, fixtures as seen by skopeo and dockerd, and tag listing. Tests ferry nothing.

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::support::{
    challenge_params, Credentials, Docker, Fixture, MediaKind, Platform, Registry, RegistryClient,
    TokenOptions, TRICKY_PASSWORD,
};

const PULL_APP: &str = "repository:team/app:pull";

fn basic(credentials: &Credentials) -> String {
    let pair = format!("{}:{}", credentials.user, credentials.pass);
    format!("Basic {}", STANDARD.encode(pair))
}

/// Without it distribution 2.8 rewrites a schema 2 manifest to a signed schema 1 (another
/// digest) and answers 404 for OCI ones.
const ACCEPT: &str = "application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.oci.image.manifest.v1+json";

/// `GET registry.url() + path` accepting single-platform manifests, with an
/// `Authorization` value if given.
async fn get(registry: &Registry, path: &str, authorization: Option<&str>) -> Response {
    let url = format!("{}{path}", registry.url());
    let mut request = reqwest::Client::new().get(url).header("accept", ACCEPT);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    request.send().await.expect("the registry answers")
}

fn header(response: &Response, name: &str) -> String {
    let value = response.headers().get(name);
    let value = value.unwrap_or_else(|| panic!("no {name} header in {response:?}"));
    value.to_str().expect("an ASCII header").to_string()
}

/// Asks the registry's issuer (found through the `/v2/` challenge) for a token.
async fn token_answer(registry: &Registry, scopes: &[&str], as_: Option<&Credentials>) -> Response {
    let challenge = header(&get(registry, "/v2/", None).await, "www-authenticate");
    let params = challenge_params(&challenge);
    let mut query = vec![("service", params["service"].as_str())];
    query.extend(scopes.iter().map(|s| ("scope", *s)));
    let mut request = reqwest::Client::new().get(&params["realm"]).query(&query);
    if let Some(credentials) = as_ {
        request = request.header("authorization", basic(credentials));
    }
    request.send().await.expect("the token issuer answers")
}

/// A granted token for the registry's own account, as an `Authorization` value.
async fn bearer(registry: &Registry, scopes: &[&str]) -> String {
    let answer = token_answer(registry, scopes, registry.credentials()).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("token JSON");
    format!("Bearer {}", body["token"].as_str().expect("a token field"))
}

#[tokio::test]
async fn anonymous_registry_serves_v2() {
    let registry = Registry::anonymous();
    assert!(registry.host().starts_with("127.0.0.1:"));
    let answer = get(&registry, "/v2/", None).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        header(&answer, "docker-distribution-api-version"),
        "registry/2.0"
    );
}

#[tokio::test]
async fn basic_registry_rejects_without_credentials_and_accepts_with() {
    let registry = Registry::basic("alice", TRICKY_PASSWORD);
    let bare = get(&registry, "/v2/", None).await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&bare, "www-authenticate");
    assert!(challenge.starts_with("Basic realm="), "{challenge}");
    let wrong = basic(&Credentials::new("alice", "nope"));
    let wrong = get(&registry, "/v2/", Some(&wrong)).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = basic(
        registry
            .credentials()
            .expect("a Basic registry has an account"),
    );
    assert_eq!(
        get(&registry, "/v2/", Some(&right)).await.status(),
        StatusCode::OK
    );

    let pushed = Fixture::image(&registry, "team/app", "1.0")
        .tiny()
        .push()
        .await;
    let client = RegistryClient::new(&registry);
    let manifest = client.manifest("team/app", "1.0").await.expect("pushed");
    assert_eq!(manifest.bytes, pushed.manifest);
    assert_eq!(manifest.digest, pushed.digest);
    assert_eq!(manifest.media_type, MediaKind::Docker.manifest_type());
}

#[tokio::test]
async fn token_registry_does_the_bearer_dance_and_scopes_tokens_per_repo() {
    let registry = Registry::token(TokenOptions::default());
    let app = Fixture::image(&registry, "team/app", "1.0")
        .tiny()
        .push()
        .await;
    Fixture::image(&registry, "team/other", "1.0")
        .tiny()
        .push()
        .await;
    let issued_by_fixtures = registry.token_requests();
    assert_eq!(issued_by_fixtures, 2, "one token per fixture repository");

    let path = "/v2/team/app/manifests/1.0";
    let bare = get(&registry, path, None).await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    let challenge = header(&bare, "www-authenticate");
    assert!(challenge.starts_with("Bearer "), "{challenge}");
    let params = challenge_params(&challenge);
    assert!(
        params["realm"].starts_with("http://127.0.0.1:"),
        "{challenge}"
    );
    assert_eq!(params["service"], TokenOptions::default().service);
    assert_eq!(params["scope"], PULL_APP);

    let answer = token_answer(&registry, &[PULL_APP], registry.credentials()).await;
    let body: Value = answer.json().await.expect("token JSON");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["token"], body["access_token"]);
    assert!(
        body["issued_at"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{body}"
    );
    let token = format!("Bearer {}", body["token"].as_str().expect("a token"));
    let granted = get(&registry, path, Some(&token)).await;
    assert_eq!(granted.status(), StatusCode::OK, "{}", registry.log_tail());
    assert_eq!(header(&granted, "docker-content-digest"), app.digest);

    let other = get(&registry, "/v2/team/other/manifests/1.0", Some(&token)).await;
    assert_eq!(
        other.status(),
        StatusCode::UNAUTHORIZED,
        "a team/app token opens team/other"
    );
    let challenge = header(&other, "www-authenticate");
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );

    let wrong = Credentials::new("ferry", "wrong");
    let refused = token_answer(&registry, &[PULL_APP], Some(&wrong)).await;
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let anonymous = token_answer(&registry, &[PULL_APP], None).await;
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(registry.token_requests(), issued_by_fixtures + 1);
    let log = registry.token_log();
    assert_eq!(log.len(), 5);
    assert_eq!(log.iter().filter(|r| !r.granted).count(), 2);
    assert_eq!(log[2].scopes, [PULL_APP]);
}

#[tokio::test]
async fn anonymous_token_requests_get_pull_only_when_allowed() {
    let options = TokenOptions {
        allow_anonymous: true,
        ..TokenOptions::default()
    };
    let registry = Registry::token(options);
    let pushed = Fixture::image(&registry, "team/app", "1.0")
        .tiny()
        .push()
        .await;
    let answer = token_answer(&registry, &["repository:team/app:pull,push"], None).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let body: Value = answer.json().await.expect("token JSON");
    let token = format!("Bearer {}", body["token"].as_str().expect("a token"));
    let manifest = get(&registry, "/v2/team/app/manifests/1.0", Some(&token)).await;
    assert_eq!(header(&manifest, "docker-content-digest"), pushed.digest);
    let client = reqwest::Client::new();
    let upload = format!("{}/v2/team/app/blobs/uploads/", registry.url());
    let upload = client
        .post(upload)
        .header("authorization", &token)
        .send()
        .await;
    let upload = upload.expect("the registry answers");
    assert_eq!(upload.status(), StatusCode::UNAUTHORIZED, "anonymous push");
}

#[tokio::test]
async fn cross_repo_mount_needs_pull_on_the_source_in_the_same_token() {
    let registry = Registry::token(TokenOptions::default());
    let source = Fixture::image(&registry, "src/app", "1.0")
        .tiny()
        .push()
        .await;
    let layer = &source.layer_digests[0];
    let mount = format!(
        "{}/v2/dst/app/blobs/uploads/?mount={layer}&from=src/app",
        registry.url()
    );
    let client = reqwest::Client::new();

    let push_only = bearer(&registry, &["repository:dst/app:pull,push"]).await;
    let denied = client
        .post(&mount)
        .header("authorization", &push_only)
        .send()
        .await;
    let denied = denied.expect("the registry answers");
    assert_eq!(
        denied.status(),
        StatusCode::UNAUTHORIZED,
        "mount without pull on src/app"
    );
    let challenge = header(&denied, "www-authenticate");
    let scope = &challenge_params(&challenge)["scope"];
    assert!(scope.contains("repository:src/app:pull"), "{challenge}");

    let scopes = ["repository:dst/app:pull,push", "repository:src/app:pull"];
    let both = bearer(&registry, &scopes).await;
    let mounted = client
        .post(&mount)
        .header("authorization", &both)
        .send()
        .await;
    let mounted = mounted.expect("the registry answers");
    assert_eq!(
        mounted.status(),
        StatusCode::CREATED,
        "{}",
        registry.log_tail()
    );
    assert_eq!(header(&mounted, "docker-content-digest"), *layer);
    assert!(
        RegistryClient::new(&registry)
            .has_blob("dst/app", layer)
            .await
    );
}

#[tokio::test]
async fn short_lived_tokens_stop_working_after_their_lifetime() {
    let options = TokenOptions {
        lifetime: Duration::from_secs(2),
        ..TokenOptions::default()
    };
    let registry = Registry::token(options);
    let token = bearer(&registry, &[]).await;
    assert_eq!(
        get(&registry, "/v2/", Some(&token)).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let expired = get(&registry, "/v2/", Some(&token)).await;
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn skopeo_sees_three_platforms_in_pushed_indexes() {
    let registry = Registry::anonymous();
    for (repo, kind) in [
        ("multi", MediaKind::Oci),
        ("multi-docker", MediaKind::Docker),
    ] {
        let index = Fixture::index(&registry, repo, "1.0", kind).push().await;
        let output = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(format!("docker://{}", index.reference()))
            .output()
            .expect("run skopeo (missing? run scripts/setup)");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        assert_eq!(
            output.stdout, index.manifest,
            "skopeo --raw shows the bytes pushed"
        );
        let raw: Value = serde_json::from_slice(&output.stdout).expect("index JSON");
        assert_eq!(raw["mediaType"], kind.index_type());
        let entries = raw["manifests"].as_array().expect("a manifests array");
        let platforms: BTreeSet<String> = entries
            .iter()
            .map(|m| &m["platform"])
            .map(|p| format!("{}/{}", p["os"].as_str().unwrap_or("?"), p["architecture"]))
            .collect();
        let want = ["linux/\"amd64\"", "linux/\"arm64\"", "windows/\"amd64\""];
        assert_eq!(platforms, BTreeSet::from(want.map(String::from)));
        let windows = index.child(&Platform::windows_amd64());
        assert_eq!(entries[2]["digest"], windows.digest.as_str());
        assert_eq!(entries[2]["platform"]["os.version"], "10.0.17763.5122");
        assert_eq!(entries[1]["platform"]["variant"], "v8");
    }
}

#[tokio::test]
async fn docker_pulls_and_runs_fixture_images() {
    let registry = Registry::anonymous();
    let docker = Docker::new();
    for (tag, kind) in [("1.0", MediaKind::Docker), ("1.0-oci", MediaKind::Oci)] {
        let motd = format!("fixture {tag}\n");
        let pushed = Fixture::image(&registry, "team/app", tag)
            .kind(kind)
            .layer_file("etc/motd", motd.as_bytes())
            .push()
            .await;
        let reference = pushed.reference();
        docker.ok(&["pull", &reference]);
        assert_eq!(
            docker.ok(&["run", "--rm", &reference, "echo", "hi"]),
            "hi\n"
        );
        assert_eq!(
            docker.ok(&["run", "--rm", &reference, "cat", "/etc/motd"]),
            motd
        );
        let format = "{{json .RepoDigests}}";
        let digests = docker.ok(&["image", "inspect", "--format", format, &reference]);
        assert!(
            digests.contains(&pushed.pinned()),
            "{digests} lacks {}",
            pushed.pinned()
        );
        docker.remove_images(&[&reference]);
    }
}

#[tokio::test]
async fn docker_logs_in_and_pulls_from_basic_and_token_registries() {
    let docker = Docker::new();
    let basic = Registry::basic("bob", TRICKY_PASSWORD);
    let token = Registry::token(TokenOptions::with_credentials("carol", TRICKY_PASSWORD));
    for registry in [&basic, &token] {
        let pushed = Fixture::image(registry, "team/app", "1.0").push().await;
        let reference = pushed.reference();
        let refused = docker.run(&["pull", &reference]);
        assert!(
            !refused.status.success(),
            "pulled {reference} without login"
        );
        let credentials = registry.credentials().expect("the registry has an account");
        docker.login(&registry.host(), &credentials.user, &credentials.pass);
        docker.ok(&["pull", &reference]);
        assert_eq!(
            docker.ok(&["run", "--rm", &reference, "echo", "hi"]),
            "hi\n"
        );
        docker.remove_images(&[&reference]);
    }
    let log = token.token_log();
    assert!(
        log.iter().any(|r| r.user.as_deref() == Some("carol")),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_repository_with_120_tags_lists_them_all_in_one_page() {
    let registry = Registry::anonymous();
    let many = Fixture::many_tags(&registry, "many", 120).await;
    let want: BTreeSet<String> = many.tags.iter().cloned().collect();
    // Distribution 2.8 ignores `n` and `last`: every query answers all tags, no Link.
    for query in ["", "?n=10", "?n=10&last=1.0.5"] {
        let answer = get(&registry, &format!("/v2/many/tags/list{query}"), None).await;
        assert!(
            answer.headers().get("link").is_none(),
            "2.8 now pages {query}"
        );
        let body: Value = answer.json().await.expect("tags JSON");
        let tags: BTreeSet<String> = serde_json::from_value(body["tags"].clone()).expect("tags");
        assert_eq!(tags, want, "query {query:?}");
    }
}

#[tokio::test]
async fn the_tag_pager_serves_link_pagination() {
    let registry = Registry::anonymous().with_tag_pages(50);
    let many = Fixture::many_tags(&registry, "many", 120).await;
    let mut sorted = many.tags.clone();
    sorted.sort();
    assert_eq!(RegistryClient::new(&registry).tags("many").await, sorted);

    let first = get(&registry, "/v2/many/tags/list", None).await;
    let next = format!(
        "</v2/many/tags/list?n=50&last={}>; rel=\"next\"",
        sorted[49]
    );
    assert_eq!(header(&first, "link"), next);
    let small = get(&registry, "/v2/many/tags/list?n=7", None).await;
    let next = "</v2/many/tags/list?n=7&last=1.0.103>; rel=\"next\"";
    assert_eq!(header(&small, "link"), next);
    let path = format!("/v2/many/tags/list?last={}", sorted[99]);
    let last = get(&registry, &path, None).await;
    assert!(
        last.headers().get("link").is_none(),
        "the last page links on"
    );
    let body: Value = last.json().await.expect("tags JSON");
    assert_eq!(body["tags"].as_array().map(Vec::len), Some(20));

    // Upload URLs name the front, so a client never bypasses it.
    let upload = format!("{}/v2/many/blobs/uploads/", registry.url());
    let upload = reqwest::Client::new().post(upload).send().await;
    let location = header(&upload.expect("the front answers"), "location");
    assert!(location.starts_with(&registry.url()), "{location}");
}
