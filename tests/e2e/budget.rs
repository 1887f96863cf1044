//! Pulls spent and the Docker Hub pull budget (SPEC section 12), against a real registry:
//! "pulls spent" in the report is the source's own count of manifest GETs, a no-op spends
//! none, and behind a front that keeps a budget as Docker Hub does, ferry stops at its
//! `rate_floor` with one deferred line per image and a summary line, exit 1.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::HeaderValue;

use crate::harness::{ferry, project, text};
use crate::support::server::{respond, Handler, HttpRequest, HttpResponse, HttpServer};
use crate::support::{require_daemon, unique, Fixture, ImageCleanup, MediaKind, Registry};

/// Manifest GETs the registry answered 200 since request `from` of its log.
fn manifest_gets(registry: &Registry, from: usize) -> usize {
    registry.requests()[from..]
        .iter()
        .filter(|r| r.method == "GET" && r.uri.contains("/manifests/") && r.status == 200)
        .count()
}

fn report(dir: &std::path::Path) -> serde_json::Value {
    let bytes = std::fs::read(dir.join("report.json")).expect("report written");
    serde_json::from_slice(&bytes).expect("report JSON")
}

/// `pulls_spent` of `registry` in a report: (pulls, remaining, deferred).
fn spent(report: &serde_json::Value, registry: &str) -> (u64, Option<u64>, u64) {
    let entry = report["pulls_spent"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["registry"] == registry))
        .unwrap_or_else(|| panic!("pulls_spent of {registry}: {report}"));
    (
        entry["pulls"].as_u64().expect("pulls"),
        entry["remaining"].as_u64(),
        entry["deferred"].as_u64().expect("deferred"),
    )
}

#[tokio::test]
async fn pulls_spent_is_the_sources_count_of_manifest_gets_and_a_no_op_spends_none() {
    require_daemon();
    let cleanup = ImageCleanup::default();
    for transport in ["registry", "docker"] {
        let src = Registry::anonymous();
        let dst = Registry::anonymous();
        cleanup.track_registry(src.host());
        cleanup.track_registry(dst.host());
        let repo = format!("team/{}", unique("pulls"));
        let one = Fixture::image(&src, &repo, "1").tiny().push().await;
        let two = Fixture::image(&src, &repo, "2").tiny().push().await;
        let multi = Fixture::index(&src, &format!("{repo}-multi"), "1", MediaKind::Docker)
            .layer_text("multi")
            .push()
            .await;
        cleanup.track(one.pinned());
        cleanup.track(two.pinned());
        let images = format!(
            "\"{}:1,2\": {}/mirror/app\n\"{}\": {}/mirror/multi\n",
            src.host().to_owned() + "/" + &repo,
            dst.host(),
            multi.reference(),
            dst.host()
        );
        let dir = project(&[("config/images.yaml", &images)]);
        let sync = || {
            ferry(
                dir.path(),
                &["sync", "--transport", transport, "--report", "report.json"],
                &[],
            )
        };
        let before = src.requests().len();
        let first = sync();
        let out = text(&first.stdout);
        assert!(
            first.status.success(),
            "{transport}: {out}{}",
            text(&first.stderr)
        );
        let (pulls, remaining, deferred) = spent(&report(dir.path()), &src.host());
        let logged = manifest_gets(&src, before) as u64;
        eprintln!("{transport}: {pulls} pulls counted, {logged} manifest GETs in the source's log");
        match transport {
            // Every manifest GET the source saw is ferry's, and counted: one per platform
            // image copied (2 + 2 Linux children) plus one per index.
            "registry" => assert_eq!((pulls, logged), (5, 5), "{transport}: {out}"),
            // ferry's own GETs, one per tag (the daemon reads the children itself), and
            // the daemon's pulls by digest (2 images, 2 children), counted when ferry asks
            // for them: an upper bound, as the daemon may find a manifest it already has.
            _ => assert!(
                pulls == 7 && (5..=7).contains(&logged),
                "{transport}: {pulls} counted, {logged} in the log: {out}"
            ),
        }
        assert_eq!((remaining, deferred), (None, 0), "no budget announced");
        assert!(
            out.contains("pulls spent") && out.contains(&src.host()),
            "{transport}: the end table shows the pulls: {out}"
        );

        let before = src.requests().len();
        let again = sync();
        let out = text(&again.stdout);
        assert!(
            again.status.success(),
            "{transport}: {out}{}",
            text(&again.stderr)
        );
        assert_eq!(
            manifest_gets(&src, before),
            0,
            "{transport}: a no-op GETs no manifest on the source: {out}"
        );
        assert_eq!(spent(&report(dir.path()), &src.host()).0, 0, "{transport}");
    }
}

/// A front for a registry that keeps a pull budget as Docker Hub does for anonymous pulls:
/// `ratelimit-limit`/`ratelimit-remaining: N;w=21600` on manifest answers (GET and HEAD),
/// each manifest GET spends one, and with nothing left a GET answers 429 `TOOMANYREQUESTS`.
struct BudgetFront {
    server: HttpServer,
    remaining: Arc<AtomicU64>,
    gets: Arc<AtomicU64>,
}

impl BudgetFront {
    fn start(registry: &Registry, remaining: u64) -> BudgetFront {
        let upstream = registry.url();
        let left = Arc::new(AtomicU64::new(remaining));
        let gets = Arc::new(AtomicU64::new(0));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("HTTP client");
        let (budget, counted) = (left.clone(), gets.clone());
        let handler: Handler = Arc::new(move |request: HttpRequest| {
            let (upstream, client) = (upstream.clone(), client.clone());
            let (budget, counted) = (budget.clone(), counted.clone());
            Box::pin(async move {
                let manifest = request.uri().path().contains("/manifests/");
                let get = request.method() == hyper::Method::GET;
                if manifest && get {
                    counted.fetch_add(1, Ordering::SeqCst);
                    let spent = budget
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
                    if spent.is_err() {
                        let body = r#"{"errors":[{"code":"TOOMANYREQUESTS","message":"You have reached your pull rate limit."}]}"#;
                        return with_budget(respond(429, body), 0);
                    }
                }
                let answer = forward(&client, &upstream, request).await;
                match manifest {
                    true => with_budget(answer, budget.load(Ordering::SeqCst)),
                    false => answer,
                }
            })
        });
        BudgetFront {
            server: HttpServer::start(handler),
            remaining: left,
            gets,
        }
    }

    fn host(&self) -> String {
        self.server.addr().to_string()
    }
}

fn with_budget(mut response: HttpResponse, remaining: u64) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert("ratelimit-limit", HeaderValue::from_static("100;w=21600"));
    let left = HeaderValue::from_str(&format!("{remaining};w=21600")).expect("header value");
    headers.insert("ratelimit-remaining", left);
    response
}

async fn forward(client: &reqwest::Client, upstream: &str, request: HttpRequest) -> HttpResponse {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let head = parts.method == hyper::Method::HEAD;
    let mut outgoing = client
        .request(parts.method.clone(), format!("{upstream}{path}"))
        .body(body);
    for (name, value) in parts.headers.iter().filter(|(n, _)| passes(n.as_str())) {
        outgoing = outgoing.header(name, value);
    }
    let Ok(answer) = outgoing.send().await else {
        return respond(502, "registry unreachable");
    };
    let status = answer.status().as_u16();
    let headers = answer.headers().clone();
    let body: Bytes = answer.bytes().await.unwrap_or_default();
    let mut response = hyper::Response::new(Full::new(body));
    *response.status_mut() = hyper::StatusCode::from_u16(status).expect("status");
    for (name, value) in headers
        .iter()
        .filter(|(n, _)| passes(n.as_str()) || (head && n.as_str() == "content-length"))
    {
        response.headers_mut().append(name, value.clone());
    }
    response
}

fn passes(name: &str) -> bool {
    !matches!(
        name,
        "connection" | "keep-alive" | "transfer-encoding" | "te" | "upgrade" | "content-length"
    )
}

#[tokio::test]
async fn below_the_rate_floor_the_rest_is_deferred_with_a_line_each() {
    require_daemon();
    let cleanup = ImageCleanup::default();
    for transport in ["registry", "docker"] {
        let src = Registry::anonymous();
        let dst = Registry::anonymous();
        // 12 pulls left, rate_floor 10 (the default).
        let front = BudgetFront::start(&src, 12);
        cleanup.track_registry(front.host());
        cleanup.track_registry(dst.host());
        let repo = format!("team/{}", unique("budget"));
        let tags = ["1", "2", "3", "4", "5", "6"];
        for tag in tags {
            let pushed = Fixture::image(&src, &repo, tag)
                .layer_text(&format!("budget {tag}"))
                .push()
                .await;
            cleanup.track(pushed.pinned());
        }
        let images = format!(
            "\"{}/{repo}:{}\": {}/mirror/app\n",
            front.host(),
            tags.join(","),
            dst.host()
        );
        let dir = project(&[("config/images.yaml", &images)]);
        let sync = || {
            ferry(
                dir.path(),
                &[
                    "sync",
                    "--jobs",
                    "1",
                    "--transport",
                    transport,
                    "--report",
                    "report.json",
                ],
                &[],
            )
        };
        let first = sync();
        let out = text(&first.stdout);
        assert_eq!(
            first.status.code(),
            Some(1),
            "{transport}: {out}{}",
            text(&first.stderr)
        );
        let copied = out
            .lines()
            .filter(|l| l.starts_with("copied ") && l.contains(" -> "))
            .count();
        let deferred: Vec<&str> = out
            .lines()
            .filter(|l| l.starts_with("FAILED ") && l.ends_with("): deferred"))
            .collect();
        let left = front.remaining.load(Ordering::SeqCst);
        assert_eq!(copied + deferred.len(), tags.len(), "{transport}: {out}");
        assert!(copied >= 1 && !deferred.is_empty(), "{transport}: {out}");
        // Through the daemon a copy takes two pulls (ferry's GET and the daemon's):
        // the budget is kept at the floor rather than one below it.
        let why = match transport {
            "registry" => format!("pull budget below the floor (remaining {left} < rate_floor 10)"),
            _ => format!("too low for the 2 pulls of this copy (remaining {left}, rate_floor 10)"),
        };
        assert!(deferred[0].contains(&why), "{transport}: {}", deferred[0]);
        let summary = format!(
            "registry {} pull budget below the floor: {} image{} deferred",
            front.host(),
            deferred.len(),
            if deferred.len() == 1 { "" } else { "s" }
        );
        assert!(out.contains(&summary), "{transport}: {summary}\n{out}");
        assert!(
            (8..=10).contains(&left),
            "{transport}: stopped at the floor: {left}"
        );
        let (pulls, remaining, count) = spent(&report(dir.path()), &front.host());
        assert_eq!((remaining, count), (Some(left), deferred.len() as u64));
        match transport {
            // One manifest GET per single-platform image copied, all ferry's.
            "registry" => assert_eq!(pulls, copied as u64, "{out}"),
            // ferry's GET, then the daemon's pull of the same image by digest: two pulls
            // spent per image, both counted.
            _ => assert_eq!(
                (pulls, front.gets.load(Ordering::SeqCst)),
                (2 * copied as u64, 2 * copied as u64),
                "{out}"
            ),
        }

        // `plan` and the next run: what was copied is unchanged (HEADs, free), the rest
        // still deferred, and not one manifest GET.
        let gets = front.gets.load(Ordering::SeqCst);
        let plan = ferry(dir.path(), &["plan", "--transport", transport], &[]);
        let planned = text(&plan.stdout);
        assert_eq!(plan.status.code(), Some(1), "{transport}: {planned}");
        let plan_deferred = planned
            .lines()
            .filter(|l| l.starts_with("error ") && l.ends_with("): deferred"))
            .count();
        assert_eq!(plan_deferred, deferred.len(), "{transport}: {planned}");
        assert!(planned.contains(&summary), "{transport}: {planned}");
        let again = sync();
        let out = text(&again.stdout);
        assert_eq!(again.status.code(), Some(1), "{transport}: {out}");
        assert_eq!(
            out.matches("(unchanged)").count(),
            copied,
            "{transport}: {out}"
        );
        assert!(out.contains(&summary), "{transport}: {out}");
        assert_eq!(
            front.gets.load(Ordering::SeqCst),
            gets,
            "{transport}: no GET"
        );

        // auth.yaml lowers the floor of this registry to 0: the rest is copied.
        let auth = format!("\"{}\":\n  limits:\n    rate_floor: 0\n", front.host());
        std::fs::write(dir.path().join("config/auth.yaml"), auth).expect("auth.yaml");
        let last = sync();
        let out = text(&last.stdout);
        assert_eq!(
            last.status.code(),
            Some(0),
            "{transport}: {out}{}",
            text(&last.stderr)
        );
        assert_eq!(
            out.matches("(unchanged)").count(),
            copied,
            "{transport}: {out}"
        );
        let (pulls, _, deferred) = spent(&report(dir.path()), &front.host());
        let per_copy = if transport == "registry" { 1 } else { 2 };
        assert_eq!(
            (pulls, deferred),
            (per_copy * (tags.len() as u64 - copied as u64), 0),
            "{out}"
        );
    }
}

/// Registry transport, behind the budget front: one source to two targets is pulled once
/// (an image: 1 GET, an index of 2 Linux platforms: 3 GETs, whatever the targets), and an
/// index whose platforms would take the budget below the floor is deferred before its copy.
#[tokio::test]
async fn a_source_for_two_targets_is_one_pull_and_an_index_keeps_the_floor() {
    let src = Registry::anonymous();
    let dst = Registry::anonymous();
    let repo = format!("team/{}", unique("twice"));
    Fixture::image(&src, &repo, "1").tiny().push().await;
    let multi = Fixture::index(&src, &format!("{repo}-multi"), "1", MediaKind::Docker)
        .layer_text("twice")
        .push()
        .await;
    let front = BudgetFront::start(&src, 100);
    let host = front.host();
    let images = format!(
        "\"{host}/{repo}:1\": [{d}/a/app, {d}/b/app]\n\"{host}/{repo}-multi:1\": [{d}/a/multi, {d}/b/multi]\n",
        d = dst.host()
    );
    let dir = project(&[("config/images.yaml", &images)]);
    let args = ["sync", "--transport", "registry", "--report", "report.json"];
    let first = ferry(dir.path(), &args, &[]);
    let out = text(&first.stdout);
    assert!(first.status.success(), "{out}{}", text(&first.stderr));
    let copied = out
        .lines()
        .filter(|l| l.starts_with("copied ") && l.contains(" -> "))
        .count();
    assert_eq!(copied, 4, "{out}");
    // Before: every target paid for its own reads (8 GETs).
    assert_eq!(front.gets.load(Ordering::SeqCst), 4, "{out}");
    assert_eq!(spent(&report(dir.path()), &host).0, 4, "{out}");

    // 11 left, floor 10: the index's GET leaves 10, its 2 platforms would leave 8.
    let front = BudgetFront::start(&src, 11);
    let images = format!(
        "\"{}/{}:1\": {}/c/multi\n",
        front.host(),
        multi.repo,
        dst.host()
    );
    let dir = project(&[("config/images.yaml", &images)]);
    let deferred = ferry(dir.path(), &args, &[]);
    let out = text(&deferred.stdout);
    assert_eq!(deferred.status.code(), Some(1), "{out}");
    assert!(
        out.contains(
            "pull budget too low for the 2 platform manifests of this index \
             (remaining 10, rate_floor 10): deferred"
        ),
        "{out}"
    );
    assert_eq!(front.gets.load(Ordering::SeqCst), 1, "the index's GET only");
    assert_eq!(
        front.remaining.load(Ordering::SeqCst),
        10,
        "the floor holds"
    );

    // `plan` decides as sync does: a copy's manifest GET is a pull, and it says so.
    let front = BudgetFront::start(&src, 100);
    let images = format!("\"{}/{repo}:1\": {}/d/app\n", front.host(), dst.host());
    let dir = project(&[("config/images.yaml", &images)]);
    let plan = ferry(dir.path(), &["plan", "--transport", "registry"], &[]);
    let said = text(&plan.stderr);
    assert!(plan.status.success(), "{said}");
    assert_eq!(front.gets.load(Ordering::SeqCst), 1, "{said}");
    assert!(
        said.contains(&format!(
            "this plan spent 1 pull(s) on registry {}",
            front.host()
        )),
        "{said}"
    );
}
