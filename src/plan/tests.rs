use std::collections::HashMap;

use super::*;
use crate::config::Config;

/// Tags and creation times served from memory.
struct FakeTags(HashMap<String, Vec<(String, i64)>>);

impl FakeTags {
    fn new(repos: &[(&str, &[(&str, i64)])]) -> Self {
        FakeTags(
            repos
                .iter()
                .map(|(repo, tags)| {
                    let tags = tags.iter().map(|(t, at)| (t.to_string(), *at)).collect();
                    (repo.to_string(), tags)
                })
                .collect(),
        )
    }
}

impl TagSource for FakeTags {
    async fn tags(&self, repository: &Reference) -> Result<Vec<String>, String> {
        self.0
            .get(&repository.repository_name())
            .map(|tags| tags.iter().map(|(t, _)| t.clone()).collect())
            .ok_or_else(|| format!("{repository}: name unknown"))
    }

    async fn has_linux(&self, image: &Reference) -> Result<bool, String> {
        Ok(!image.tag().is_some_and(|t| t.contains("windows")))
    }

    async fn created(&self, image: &Reference) -> Result<Option<i64>, String> {
        let tags = self.0.get(&image.repository_name());
        Ok(tags.and_then(|tags| {
            tags.iter()
                .find(|(t, _)| Some(t.as_str()) == image.tag())
                .map(|(_, at)| *at)
        }))
    }
}

fn config(images: &str) -> (tempfile::TempDir, Mapping) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).expect("mkdir");
    std::fs::write(config_dir.join("images.yaml"), images).expect("write");
    std::fs::write(config_dir.join("rules.yaml"), "preset: nstl\n").expect("write");
    let config = Config::load_with_env(&config_dir, &|_| None)
        .and_then(Mapping::new)
        .expect("valid config");
    (dir, config)
}

async fn plan(
    config: &Mapping,
    stage: Stage,
    request: &Request,
    tags: &FakeTags,
) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for route in routes(config, stage, request).expect("routes") {
        let resolved = resolve_tags(&route, tags).await.expect("tags");
        all.extend(jobs(config, &route, stage, &resolved).expect("jobs"));
    }
    finish(all)
        .into_iter()
        .map(|j| (j.source.to_string(), j.target.to_string()))
        .collect()
}

const MIRROR: &str = "registry.cn-beijing.aliyuncs.com";
const PRIVATE: &str = "docker-hosted.nstl-dev.com";

#[tokio::test]
async fn both_stages_of_explicit_tags_follow_the_golden_table() {
    let (_dir, config) =
        config("docker.io/nginx:1.17.4:\nregistry.k8s.io/coredns/coredns:latest:\n");
    let none = FakeTags::new(&[]);
    let mirror = plan(&config, Stage::Mirror, &Request::default(), &none).await;
    assert_eq!(
        mirror,
        [
            (
                "docker.io/library/nginx:1.17.4".to_owned(),
                format!("{MIRROR}/public-image-mirror/docker.io_nginx:1.17.4")
            ),
            (
                "registry.k8s.io/coredns/coredns:latest".to_owned(),
                format!("{MIRROR}/nstl_google_containers/coredns:latest")
            ),
        ]
    );
    let private = plan(&config, Stage::Private, &Request::default(), &none).await;
    assert_eq!(
        private,
        [
            (
                format!("{MIRROR}/nstl_google_containers/coredns:latest"),
                format!("{PRIVATE}/google_containers/coredns:latest")
            ),
            (
                format!("{MIRROR}/public-image-mirror/docker.io_nginx:1.17.4"),
                format!("{PRIVATE}/library/nginx:1.17.4")
            ),
        ],
        "hop 2 reads from the mirror, ordered by source repository"
    );
}

#[tokio::test]
async fn listed_tags_are_filtered_and_limited_and_private_lists_the_mirror() {
    let (_dir, config) = config("ghcr.io/kube-vip/kube-vip:\n  tags: '^v'\n  limit: 2\n");
    let listing: &[(&str, i64)] = &[("v0.5.0", 1), ("v0.6.1", 2), ("latest", 3), ("v0.6.0", 4)];
    let mirror_repo = format!("{MIRROR}/public-image-mirror/ghcr.io_kube-vip_kube-vip");
    let tags = FakeTags::new(&[
        ("ghcr.io/kube-vip/kube-vip", listing),
        (&mirror_repo, &listing[..2]),
    ]);
    let mirror = plan(&config, Stage::Mirror, &Request::default(), &tags).await;
    let sources: Vec<&str> = mirror.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        sources,
        [
            "ghcr.io/kube-vip/kube-vip:v0.6.0",
            "ghcr.io/kube-vip/kube-vip:v0.6.1"
        ]
    );
    let private = plan(&config, Stage::Private, &Request::default(), &tags).await;
    let targets: Vec<&str> = private.iter().map(|(_, t)| t.as_str()).collect();
    assert_eq!(
        targets,
        [
            format!("{PRIVATE}/ghcr.io/kube-vip/kube-vip:v0.5.0"),
            format!("{PRIVATE}/ghcr.io/kube-vip/kube-vip:v0.6.1")
        ],
        "the private stage selects among the tags the mirror has"
    );
}

#[tokio::test]
async fn newest_by_creation_time_reads_each_candidate() {
    let (_dir, config) = config("quay.io/coreos/flannel:\n  limit: 1\n  order: created\n");
    let tags = FakeTags::new(&[("quay.io/coreos/flannel", &[("v0.9", 50), ("v0.10", 40)])]);
    let mirror = plan(&config, Stage::Mirror, &Request::default(), &tags).await;
    assert_eq!(mirror.len(), 1);
    assert_eq!(
        mirror[0].0, "quay.io/coreos/flannel:v0.9",
        "created later, though older by semver"
    );
}

#[tokio::test]
async fn command_line_images_restrict_or_extend_the_config() {
    let (_dir, config) = config("docker.io/nginx:1.17.4:\n");
    let none = FakeTags::new(&[]);
    let request = Request {
        images: vec!["nginx".into(), "quay.io/coreos/flannel:v0.15.1".into()],
        ..Request::default()
    };
    let jobs = plan(&config, Stage::Mirror, &request, &none).await;
    let sources: Vec<&str> = jobs.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        sources,
        [
            "docker.io/library/nginx:latest",
            "quay.io/coreos/flannel:v0.15.1"
        ]
    );
    let bad = Request {
        images: vec!["Nginx:1".into()],
        ..Request::default()
    };
    let error = routes(&config, Stage::Mirror, &bad).expect_err("invalid reference");
    assert!(error.to_string().starts_with("command line: "), "{error}");
}

#[tokio::test]
async fn shards_split_the_work_without_overlap() {
    let images: String = (0..12)
        .map(|i| format!("docker.io/team/app{i}:1.0:\n"))
        .collect();
    let (_dir, config) = config(&images);
    let none = FakeTags::new(&[]);
    let mut seen = Vec::new();
    for i in 1..=3 {
        let request = Request {
            shard: Some(format!("{i}/3").parse().expect("shard")),
            ..Request::default()
        };
        seen.extend(plan(&config, Stage::Mirror, &request, &none).await);
    }
    seen.sort();
    let all = plan(&config, Stage::Mirror, &Request::default(), &none).await;
    let mut all_sorted = all.clone();
    all_sorted.sort();
    assert_eq!(seen, all_sorted);
}

#[tokio::test]
async fn a_plan_round_trips_through_json_and_a_listing_failure_is_reported() {
    let (_dir, config) = config("docker.io/library/redis:\n  semver: '>=7'\n");
    let routes = routes(&config, Stage::Mirror, &Request::default()).expect("routes");
    let error = resolve_tags(&routes[0], &FakeTags::new(&[]))
        .await
        .expect_err("no such repo");
    assert!(error.contains("name unknown"));
    let job = Job::new(
        "redis:7".parse().expect("ref"),
        "mirror.io/redis:7".parse().expect("ref"),
        vec!["linux/arm64".parse().expect("platform")],
    );
    let text = serde_json::to_string(std::slice::from_ref(&job)).expect("json");
    assert_eq!(from_json(&text).expect("plan"), [job]);
    assert!(from_json("{}").is_err());
}

#[tokio::test]
async fn newest_n_counts_only_tags_with_a_linux_platform() {
    let (_dir, config) = config("docker.io/team/app:\n  limit: 2\n");
    let listing: &[(&str, i64)] = &[("1.0.0", 1), ("2.0.0", 2), ("3.0.0-windows", 3)];
    let tags = FakeTags::new(&[("docker.io/team/app", listing)]);
    let mirror = plan(&config, Stage::Mirror, &Request::default(), &tags).await;
    let sources: Vec<&str> = mirror.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        sources,
        ["docker.io/team/app:1.0.0", "docker.io/team/app:2.0.0"],
        "not 3.0.0-windows and one other"
    );
}

#[test]
fn a_stage_without_rules_is_a_config_error_before_any_work() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_dir = dir.path().join("config");
    std::fs::create_dir(&config_dir).expect("mkdir");
    let mirror_only =
        "stages:\n  mirror:\n    registry: r.io/m\n    rules:\n      - match: '**'\n        target: '{flat}'\n";
    std::fs::write(config_dir.join("rules.yaml"), mirror_only).expect("write");
    std::fs::write(config_dir.join("images.yaml"), "nginx:1.25:\n").expect("write");
    let config = Config::load_with_env(&config_dir, &|_| None)
        .and_then(Mapping::new)
        .expect("valid config");
    let error = routes(&config, Stage::Private, &Request::default()).expect_err("no private stage");
    assert!(
        error.to_string().contains("no private stage is configured"),
        "{error}"
    );
    let no_rules_dir = tempfile::tempdir().expect("temp dir");
    let no_rules = no_rules_dir.path().join("config");
    std::fs::create_dir(&no_rules).expect("mkdir");
    std::fs::write(no_rules.join("auth.yaml"), "").expect("write");
    let config = Config::load_with_env(&no_rules, &|_| None)
        .and_then(Mapping::new)
        .expect("valid config");
    let one_off = Request {
        images: vec!["busybox:1".to_owned()],
        ..Request::default()
    };
    let error = routes(&config, Stage::Mirror, &one_off).expect_err("no mirror stage");
    assert_eq!(
        error.to_string(),
        "command line: no mirror stage is configured (rules.yaml: preset or stages.mirror) (docker.io/library/busybox)"
    );
}

#[test]
fn a_plan_file_gets_the_checks_of_a_configuration() {
    let job = |source: &str, target: &str, platforms: &str| {
        format!(r#"{{"source":"{source}","target":"{target}","platforms":[{platforms}]}}"#)
    };
    let ok = format!("[{}]", job("a.io/x:1", "b.io/x:1", r#""linux/arm64""#));
    assert_eq!(from_json(&ok).expect("valid").len(), 1);
    for (text, says) in [
        ("[]".to_owned(), "no jobs"),
        (
            format!("[{}]", job("a.io/x:1", "b.io/x:1", r#""windows/amd64""#)),
            "only linux platforms",
        ),
        (
            format!(
                "[{},{}]",
                job("a.io/x:1", "b.io/x:1", ""),
                job("a.io/y:1", "b.io/x:1", "")
            ),
            "b.io/x:1 is the target of an earlier job too",
        ),
        ("{".to_owned(), "not a ferry plan"),
    ] {
        let error = from_json(&text).expect_err(&text);
        assert!(error.contains(says), "{text}: {error}");
    }
}
