//! Built-in rule sets: `nstl` (the seed's Aliyun mirror + nstl private registry) and
//! `ferryman` (Ferryman's Aliyun namespaces). Data only; must not read files.

use super::{Pattern, Rule, RuleSet, StageRules, Template};

/// Names accepted by `preset:` in rules.yaml.
pub const PRESETS: &[&str] = &["nstl", "ferryman"];

type Table = &'static [(&'static str, &'static str)];

const NSTL_MIRROR: &str = "registry.cn-beijing.aliyuncs.com";
const NSTL_MIRROR_RULES: Table = &[
    // kubeadm --image-repository needs every registry.k8s.io image flat in one namespace.
    ("registry.k8s.io/**", "nstl_google_containers/{name}"),
    ("**", "public-image-mirror/{registry}_{flat}"),
];

const NSTL_PRIVATE: &str = "docker-hosted.nstl-dev.com";
const NSTL_PRIVATE_RULES: Table = &[
    ("registry.k8s.io/**", "google_containers/{name}"),
    // Docker Hub has only a few recent elastic versions; elastic's own registry is the
    // source, but users pull them as library/ images.
    ("docker.elastic.co/**", "library/{name}"),
    ("docker.io/**", "{repository}"),
    ("**", "{registry}/{repository}"),
];

const FERRYMAN_MIRROR: &str = "registry.cn-shenzhen.aliyuncs.com";
const FERRYMAN_MIRROR_RULES: Table = &[
    ("k8s.gcr.io/**", "kubernetes_aliyun/{name}"),
    ("gcr.io/google_containers/**", "kubernetes_aliyun/{name}"),
    ("quay.io/**", "quayio_aliyun/{name}"),
    ("docker.io/**", "dockerio_aliyun/{name}"),
];

/// The preset called `name`, or `None` when there is no such preset.
pub fn preset(name: &str) -> Option<RuleSet> {
    let origin = format!("preset {name}");
    match name {
        "nstl" => Some(RuleSet::new(
            Some(stage(NSTL_MIRROR, NSTL_MIRROR_RULES, &origin)),
            Some(stage(NSTL_PRIVATE, NSTL_PRIVATE_RULES, &origin)),
        )),
        "ferryman" => Some(RuleSet::new(
            Some(stage(FERRYMAN_MIRROR, FERRYMAN_MIRROR_RULES, &origin)),
            None,
        )),
        _ => None,
    }
}

fn stage(registry: &str, table: Table, origin: &str) -> StageRules {
    let rules = table
        .iter()
        .map(|(pattern, target)| {
            Rule::new(
                Pattern::parse(pattern).expect("built-in preset patterns are valid"),
                Template::parse(target).expect("built-in preset templates are valid"),
                None,
                origin.to_owned(),
            )
        })
        .collect();
    StageRules::new(registry.to_owned(), rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::Reference;
    use crate::rules::{MapError, Stage};

    const M: &str = "registry.cn-beijing.aliyuncs.com";
    const P: &str = "docker-hosted.nstl-dev.com";

    /// SPEC §4: source, stage mirror, stage private.
    const GOLDEN: &[(&str, &str, &str)] = &[
        (
            "docker.io/nginx:1.17.4",
            "{M}/public-image-mirror/docker.io_nginx:1.17.4",
            "{P}/library/nginx:1.17.4",
        ),
        (
            "docker.io/adoptopenjdk/openjdk11:latest",
            "{M}/public-image-mirror/docker.io_adoptopenjdk_openjdk11:latest",
            "{P}/adoptopenjdk/openjdk11:latest",
        ),
        (
            "ghcr.io/kube-vip/kube-vip:v0.5.0",
            "{M}/public-image-mirror/ghcr.io_kube-vip_kube-vip:v0.5.0",
            "{P}/ghcr.io/kube-vip/kube-vip:v0.5.0",
        ),
        (
            "registry.k8s.io/kube-proxy:v1.28.0",
            "{M}/nstl_google_containers/kube-proxy:v1.28.0",
            "{P}/google_containers/kube-proxy:v1.28.0",
        ),
        (
            "registry.k8s.io/coredns/coredns:latest",
            "{M}/nstl_google_containers/coredns:latest",
            "{P}/google_containers/coredns:latest",
        ),
        (
            "docker.elastic.co/elasticsearch/elasticsearch:8.11.1",
            "{M}/public-image-mirror/docker.elastic.co_elasticsearch_elasticsearch:8.11.1",
            "{P}/library/elasticsearch:8.11.1",
        ),
        (
            "docker.elastic.co/beats/filebeat:8.11.1",
            "{M}/public-image-mirror/docker.elastic.co_beats_filebeat:8.11.1",
            "{P}/library/filebeat:8.11.1",
        ),
        (
            "nginx",
            "{M}/public-image-mirror/docker.io_nginx:latest",
            "{P}/library/nginx:latest",
        ),
        // Built as extension: the -n-ext tag maps like its base.
        (
            "docker.io/nginx:1.17.4-n-ext",
            "{M}/public-image-mirror/docker.io_nginx:1.17.4-n-ext",
            "{P}/library/nginx:1.17.4-n-ext",
        ),
    ];

    fn expand(text: &str) -> String {
        text.replace("{M}", M).replace("{P}", P)
    }

    #[test]
    fn nstl_golden_table_both_stages() {
        let rules = preset("nstl").expect("nstl exists");
        for (source, mirror, private) in GOLDEN {
            // `nginx` in the table means `docker pull nginx`, i.e. `nginx:latest`.
            let source: Reference = source.parse::<Reference>().expect("valid").or_latest();
            for (stage, expected) in [(Stage::Mirror, mirror), (Stage::Private, private)] {
                let got = rules.target(&source, stage).expect("maps");
                assert_eq!(got.to_string(), expand(expected), "{source} {stage}");
            }
        }
    }

    #[test]
    fn extension_tag_of_a_golden_base_maps_like_the_base() {
        let rules = preset("nstl").expect("nstl exists");
        let base: Reference = "docker.io/nginx:1.17.4".parse().expect("valid");
        let ext = base
            .with_tag(&crate::config::build::extension_tag("1.17.4"))
            .expect("valid tag");
        let mirror = rules.target(&ext, Stage::Mirror).expect("maps");
        let base_mirror = rules.target(&base, Stage::Mirror).expect("maps");
        assert_eq!(mirror.without_tag(), base_mirror.without_tag());
        assert_eq!(mirror.tag(), Some("1.17.4-n-ext"));
    }

    #[test]
    fn digests_are_kept() {
        let rules = preset("nstl").expect("nstl exists");
        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let source: Reference = format!("nginx:1.25@{d}").parse().expect("valid");
        let got = rules.target(&source, Stage::Private).expect("maps");
        assert_eq!(got.to_string(), format!("{P}/library/nginx:1.25@{d}"));
    }

    #[test]
    fn ferryman_preset() {
        let rules = preset("ferryman").expect("ferryman exists");
        let s = "registry.cn-shenzhen.aliyuncs.com";
        let cases = [
            (
                "k8s.gcr.io/pause:2.0",
                format!("{s}/kubernetes_aliyun/pause:2.0"),
            ),
            (
                "gcr.io/google_containers/etcd:3.4.3",
                format!("{s}/kubernetes_aliyun/etcd:3.4.3"),
            ),
            (
                "quay.io/coreos/flannel:v0.12.0",
                format!("{s}/quayio_aliyun/flannel:v0.12.0"),
            ),
            (
                "jenkins/jenkins:lts",
                format!("{s}/dockerio_aliyun/jenkins:lts"),
            ),
        ];
        for (source, expected) in cases {
            let source: Reference = source.parse().expect("valid");
            let got = rules.target(&source, Stage::Mirror).expect("maps");
            assert_eq!(got.to_string(), expected, "{source}");
        }
        let ghcr: Reference = "ghcr.io/a/b".parse().expect("valid");
        assert!(matches!(
            rules.target(&ghcr, Stage::Mirror),
            Err(MapError::NoRule { .. })
        ));
        assert_eq!(
            rules.target(&ghcr, Stage::Private),
            Err(MapError::NoStage {
                stage: Stage::Private
            })
        );
    }

    #[test]
    fn unknown_preset_is_none() {
        assert!(preset("nstI").is_none());
        for name in PRESETS {
            assert!(preset(name).is_some(), "{name}");
        }
    }
}
