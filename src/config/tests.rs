//! Table tests of whole configuration directories: malformed files give one-line errors
//! at the right file:line:col; the shipped config loads; hop 2 round-trips.

use std::path::{Path, PathBuf};

use super::*;
use crate::platform::Platform;
use crate::rules::{hop2, Mapping, Stage};

const NSTL: (&str, &str) = ("rules.yaml", "preset: nstl\n");

/// A project directory: `config/` with `files`, and `dockerfiles/` with fixtures.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("config");
        std::fs::create_dir_all(&config).expect("config dir");
        for (name, text) in files {
            std::fs::write(config.join(name), text).expect("write config file");
        }
        let dockerfiles: &[(&str, &str)] = &[
            (
                "ok",
                "# ext\nARG BASE_IMAGE\nFROM --platform=$TARGETPLATFORM ${BASE_IMAGE}\nRUN true\n",
            ),
            ("no-arg", "FROM ${BASE_IMAGE}\n"),
            ("fixed-from", "ARG BASE_IMAGE\nFROM nginx:1.25\n"),
        ];
        for (name, text) in dockerfiles {
            let context = dir.path().join("dockerfiles").join(name);
            std::fs::create_dir_all(&context).expect("context dir");
            std::fs::write(context.join("Dockerfile"), text).expect("write Dockerfile");
        }
        Project { dir }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config")
    }

    fn load(&self) -> Result<Mapping, ConfigError> {
        Config::load_with_env(self.config(), &env).and_then(Mapping::new)
    }

    /// An error message with the temp directory cut off: `config/images.yaml:1:1: …`.
    fn relative(&self, error: &ConfigError) -> String {
        error
            .to_string()
            .replace(&format!("{}/", self.dir.path().display()), "")
    }
}

fn env(name: &str) -> Option<String> {
    name.strip_suffix("_USERNAME")
        .or(name.strip_suffix("_PASSWORD"))
        .map(|prefix| format!("{}-hunter2", prefix.to_lowercase()))
}

/// (files, expected `file:line:col`, what the message must say)
type Case = (
    Vec<(&'static str, &'static str)>,
    &'static str,
    &'static str,
);

fn malformed() -> Vec<Case> {
    let images = |text| vec![NSTL, ("images.yaml", text)];
    let auth = |text| vec![("auth.yaml", text)];
    let rules = |text| vec![("rules.yaml", text)];
    let builds = |text| vec![NSTL, ("build-images.yaml", text)];
    vec![
        // images.yaml
        (images("nginx:1:\nNginx:1.25:\n"), "config/images.yaml:2:1", "must be lowercase (Nginx:1.25)"),
        (images("nginx:1.25,-x:\n"), "config/images.yaml:1:1", "invalid tag \"-x\""),
        (images("nginx:1,1:\n"), "config/images.yaml:1:1", "tag 1 listed twice"),
        (images("\"nginx:/(/\":\n"), "config/images.yaml:1:1", "invalid regex: unclosed group (nginx:/(/)"),
        (images("nginx:\n  tgas: x\n"), "config/images.yaml:2:3", "unknown field `tgas`"),
        (images("nginx:\n  semver: '>= one'\n"), "config/images.yaml:2:11", "invalid semver range"),
        (images("nginx:\n  limit: many\n"), "config/images.yaml:2:10", "limit must be a whole number of at least 1 (many)"),
        (images("nginx:\n  limit: 0\n"), "config/images.yaml:2:10", "limit must be a whole number of at least 1 (0)"),
        (images("nginx:1.25:\n  limit: 3\n"), "config/images.yaml:2:10", "the key names its tags explicitly"),
        (images("\"nginx:/^1/\":\n  tags: '^2'\n"), "config/images.yaml:2:9", "tags given twice"),
        (images("nginx:\n  limit: 2\n  order: newest\n"), "config/images.yaml:3:10", "unknown variant `newest`"),
        (images("nginx:\n  order: created\n"), "config/images.yaml:2:10", "order only matters with limit"),
        (images("nginx:\n  exclude: ['(']\n"), "config/images.yaml:2:13", "invalid regex"),
        (images("nginx:\n  platforms: [linux/amd64, windows/amd64]\n"), "config/images.yaml:2:28", "only linux"),
        (images("nginx:\n  immutable: '^v(\\d+'\n"), "config/images.yaml:2:14", "invalid regex"),
        (images("nginx:\n  immutable: ''\n"), "config/images.yaml:2:14", "an empty pattern would make every tag immutable"),
        (images("nginx:\nredis:\nnginx:\n"), "config/images.yaml:3:1", "duplicate mapping key `nginx`"),
        (images("nginx:1,2: r.io/x:3\n"), "config/images.yaml:1:12", "a destination tag needs exactly one tag"),
        (images("nginx: [r.io/x, r.io/x]\n"), "config/images.yaml:1:17", "destination listed twice"),
        (images("nginx: r.io/x@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"), "config/images.yaml:1:8", "cannot have a digest"),
        (images("nginx: 5\n"), "config/images.yaml:1:1", "invalid type"),
        (images("nginx:\n\tto: x\n"), "config/images.yaml:2:", "tabs"),
        (images("localhost:5000/app:1:\n"), "config/images.yaml:1:1", "maps localhost:5000/app:1 to an invalid reference"),
        (
            images("registry.k8s.io/coredns/coredns:\nregistry.k8s.io/coredns:\n"),
            "config/images.yaml:2:1",
            "registry.k8s.io/coredns and registry.k8s.io/coredns/coredns (config/images.yaml:1) both map to \
             registry.cn-beijing.aliyuncs.com/nstl_google_containers/coredns in stage mirror",
        ),
        (
            images("docker.elastic.co/kibana/kibana:8.11.1:\nkibana:\n"),
            "config/images.yaml:2:1",
            "both map to docker-hosted.nstl-dev.com/library/kibana in stage private",
        ),
        (vec![("images.yaml", "nginx:\n")], "config/images.yaml:1:1", "no mirror stage is configured"),
        // auth.yaml: never a value in the message
        (auth("ghcr.io:\n  username: u\n  pasword: hunter2\n"), "config/auth.yaml:3:3", "unknown field `pasword`"),
        (auth("ghcr.io:\n  insecure: hunter2\n"), "config/auth.yaml:2:13", "invalid boolean"),
        (auth("myregistry:\n  insecure: true\n"), "config/auth.yaml:1:1", "must start with a registry host"),
        (auth("ghcr.io:\n  username: u\n  password: hunter2${X\n"), "config/auth.yaml:3:13", "password: '${' without '}'"),
        (auth("ghcr.io:\n  username: u\n"), "config/auth.yaml:1:1", "username and password must be given together"),
        (auth("ghcr.io:\n"), "config/auth.yaml:1:1", "empty auth entry"),
        (auth("ghcr.io:\n  limits:\n    idle_timeout: soon\n"), "config/auth.yaml:3:19", "idle_timeout: invalid duration \"soon\""),
        (auth("ghcr.io:\n  limits:\n    tags_per_repository: 0\n"), "config/auth.yaml:3:26", "tags_per_repository must be a whole number of at least 1 (0)"),
        (auth("ghcr.io:\n  limits:\n    manifest_size: 0B\n"), "config/auth.yaml:3:20", "manifest_size must be at least 1 byte"),
        (auth("ghcr.io:\n  limits:\n    tags: 5\n"), "config/auth.yaml:3:5", "unknown field `tags`"),
        (auth("ghcr.io/team:\n  limits:\n    idle_timeout: 2s\n"), "config/auth.yaml:3:5", "limits apply to a whole registry: set them under ghcr.io"),
        (auth("docker.io:\n  limits:\n    rate_floor: -1\n"), "config/auth.yaml:3:17", "rate_floor must be a whole number of pulls"),
        // rules.yaml
        (rules("preset: nstI\n"), "config/rules.yaml:1:9", "unknown preset, expected one of nstl, ferryman (nstI)"),
        (rules("presets: nstl\n"), "config/rules.yaml:1:1", "unknown field `presets`"),
        (rules("preset: nstl\nimmutable: '[v'\n"), "config/rules.yaml:2:12", "invalid regex"),
        (rules("preset: nstl\nimmutable: ' '\n"), "config/rules.yaml:2:12", "an empty pattern would make every tag immutable"),
        (rules("preset: nstl\nrate_floor: ten\n"), "config/rules.yaml:2:13", "rate_floor must be a whole number of pulls (0 keeps none back) (ten)"),
        (rules("preset: nstl\nstages:\n  mirror:\n    rules:\n      - match: '**'\n        target: x/{nam}\n"), "config/rules.yaml:6:17", "unknown placeholder {nam}"),
        (rules("stages:\n  mirror:\n    registry: r.io\n    rules:\n      - match: 'a/[b'\n        target: x\n"), "config/rules.yaml:5:16", "invalid glob"),
        (rules("stages:\n  mirror:\n    registry: r.io\n    rules:\n      - match: '/(/'\n        target: x\n"), "config/rules.yaml:5:16", "invalid regex"),
        (rules("stages:\n  private:\n    rules:\n      - match: '**'\n        target: x\n"), "config/rules.yaml:3:5", "stage needs a registry"),
        (rules("stages:\n  mirror:\n    registry: r.io\n    rules:\n      - match: '**'\n"), "config/rules.yaml:5:9", "missing field `target`"),
        (rules("stages:\n  mirror:\n    registry: r.io\n    rules:\n      - match: '**'\n        target: Mirror/{name}\n"), "config/rules.yaml:6:17", "target gives invalid references"),
        (rules("stages:\n  mirror:\n    registry: mirror\n"), "config/rules.yaml:3:15", "invalid registry"),
        (rules("stages:\n  mirror:\n    registry: r.io\n    rules:\n      - match: '**'\n        target: x/{tag}\n"), "config/rules.yaml:6:17", "{tag} can only follow ':'"),
        // build-images.yaml
        (builds("- name: ok\n  base: nginx:1.25\n  mode: sometimes\n"), "config/build-images.yaml:3:9", "unknown variant `sometimes`"),
        (builds("- name: gone\n  base: nginx:1.25\n"), "config/build-images.yaml:1:9", "context directory does not exist (dockerfiles/gone)"),
        (builds("- name: x\n  base: nginx:1.25\n  context: dockerfiles/no-arg\n"), "config/build-images.yaml:3:12", "must declare ARG BASE_IMAGE"),
        (builds("- name: x\n  base: nginx:1.25\n  context: dockerfiles/fixed-from\n"), "config/build-images.yaml:3:12", "FROM must use ${BASE_IMAGE}"),
        (builds("- name: ok\n  base: nginx\n"), "config/build-images.yaml:2:9", "no tags to build on"),
        (builds("- name: ok\n  base: nginx:1\n  tags: [2]\n"), "config/build-images.yaml:2:9", "not both"),
        (builds("- name: ok\n  base: nginx:1.25\n- name: ok\n  base: redis:7\n"), "config/build-images.yaml:3:9", "name already used at"),
        (
            builds("- name: ok\n  base: nginx:1.25\n- name: other\n  base: docker.io/library/nginx\n  tags: ['1.24', '1.25']\n  context: dockerfiles/ok\n"),
            "config/build-images.yaml:3:9",
            "ok builds the same image at config/build-images.yaml:1 (docker.io/library/nginx:1.25-n-ext)",
        ),
        (builds("- name: ok\n  base: nginx\n  tags: ['1', '1']\n"), "config/build-images.yaml:3:15", "tag listed twice (1)"),
        (builds("- name: ok\n  base: nginx:1.25\n  build_args: {BASE_IMAGE: x}\n"), "config/build-images.yaml:1:9", "must not set BASE_IMAGE"),
        (builds("- name: ok\n  base: nginx\n  tags: [1.25]\n  kind: ext\n"), "config/build-images.yaml:4:3", "unknown field `kind`"),
        // the directory itself
        (vec![], "config", "no configuration files"),
    ]
}

#[test]
fn malformed_configs_fail_with_one_located_line() {
    let cases = malformed();
    assert!(cases.len() >= 20);
    let mut wrong = Vec::new();
    for (files, at, says) in cases {
        let project = Project::new(&files);
        let text = match project.load() {
            Ok(_) => "loaded fine".to_owned(),
            Err(error) => project.relative(&error),
        };
        let ok = !text.contains('\n')
            && !text.contains("hunter2")
            && text.starts_with(at)
            && text.contains(says);
        if !ok {
            wrong.push(format!(
                "{files:?}\n    expected {at} … {says}\n    got      {text}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn items_yml_reads_both_ferryman_forms() {
    let dir = tempfile::tempdir().expect("temp dir");
    let map = "pause:\n  source: k8s.gcr.io/\n  target: registry.cn-shenzhen.aliyuncs.com/kubernetes_aliyun/\n  limit: 5\n\
               flannel:\n  source: quay.io/coreos/\n  target: registry.cn-shenzhen.aliyuncs.com/quayio_aliyun/\n";
    let list = "- {name: coredns, source: k8s.gcr.io/, target: r.io/k8s/}\n\
                - {name: coredns, source: docker.io/coredns/, target: r.io/hub/}\n";
    type Item = (&'static str, &'static str, Option<u32>);
    let cases: &[(&str, &[Item])] = &[
        (
            map,
            &[
                (
                    "k8s.gcr.io/pause",
                    "registry.cn-shenzhen.aliyuncs.com/kubernetes_aliyun/pause",
                    Some(5),
                ),
                (
                    "quay.io/coreos/flannel",
                    "registry.cn-shenzhen.aliyuncs.com/quayio_aliyun/flannel",
                    None,
                ),
            ],
        ),
        (
            list,
            &[
                ("k8s.gcr.io/coredns", "r.io/k8s/coredns", None),
                ("docker.io/coredns/coredns", "r.io/hub/coredns", None),
            ],
        ),
    ];
    for (text, expected) in cases {
        let path = dir.path().join("items.yml");
        std::fs::write(&path, text).expect("write items.yml");
        let config = Mapping::load(&path).expect("loads");
        let got: Vec<(String, String, Option<u32>)> = config
            .images()
            .iter()
            .map(|e| {
                (
                    e.source.to_string(),
                    e.destinations[0].to_string(),
                    e.selection.limit(),
                )
            })
            .collect();
        let want: Vec<(String, String, Option<u32>)> = expected
            .iter()
            .map(|(s, t, l)| (s.to_string(), t.to_string(), *l))
            .collect();
        assert_eq!(got, want);
        let pause: crate::reference::Reference = "k8s.gcr.io/pause:2.0".parse().expect("valid");
        let mapped = config
            .rules()
            .target(&pause, Stage::Mirror)
            .expect("ferryman preset");
        assert_eq!(
            mapped.to_string(),
            "registry.cn-shenzhen.aliyuncs.com/kubernetes_aliyun/pause:2.0"
        );
    }
    std::fs::write(
        dir.path().join("bad.yml"),
        "pause:\n  source: k8s.gcr.io/\n  target: r.io/Up/\n",
    )
    .expect("write");
    let e = Mapping::load(dir.path().join("bad.yml")).expect_err("uppercase target");
    assert!(
        e.to_string()
            .ends_with("bad.yml:3:11: repository name must be lowercase (r.io/Up/pause)"),
        "{e}"
    );
    let e = Mapping::load("config/images.yaml").expect_err("a file of a config directory");
    assert_eq!(
        e.to_string(),
        "config/images.yaml: a configuration file: give the directory that holds it"
    );
}

#[test]
fn value_forms_and_targets() {
    let project = Project::new(&[
        NSTL,
        (
            "images.yaml",
            "nginx:1.25:\nredis:7: r.io/cache/redis:stable\nbusybox: [r.io/a/busybox, r.io/b/busybox]\n\
             \"ghcr.io/x/y:/^v1/\":\n  to: r.io/y\n  semver: '>=1.2'\n  exclude: rc\n  platforms: linux/arm64/v8\n",
        ),
    ]);
    let config = project.load().expect("loads");
    let images = config.images();
    let mirror = |i: usize, tag: &str| -> Vec<String> {
        let source = images[i].source.with_tag(tag).expect("tag");
        let targets = config
            .targets(&images[i], &source, Stage::Mirror)
            .expect("maps");
        targets.iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        mirror(0, "1.25"),
        ["registry.cn-beijing.aliyuncs.com/public-image-mirror/docker.io_nginx:1.25"]
    );
    assert_eq!(mirror(1, "7"), ["r.io/cache/redis:stable"]);
    assert_eq!(
        mirror(2, "1.36"),
        ["r.io/a/busybox:1.36", "r.io/b/busybox:1.36"]
    );
    let private = config.targets(
        &images[1],
        &images[1].source.with_tag("7").expect("tag"),
        Stage::Private,
    );
    assert_eq!(
        private.expect("maps")[0].to_string(),
        "docker-hosted.nstl-dev.com/library/redis:7"
    );
    let y = &images[3];
    assert!(
        y.selection.admits("v1.2.0")
            && !y.selection.admits("v1.3.0-rc1")
            && !y.selection.admits("v0.9")
    );
    assert_eq!(y.platforms, [Platform::new("linux", "arm64", Some("v8"))]);
    assert_eq!(y.location.line(), 4);
}

#[test]
fn disjoint_explicit_tags_may_share_a_target() {
    let rules = "stages:\n  mirror:\n    registry: r.io\n    rules:\n      - match: '**'\n        target: m/{name}\n";
    let ok = Project::new(&[
        ("rules.yaml", rules),
        ("images.yaml", "quay.io/a/app:1,2:\nghcr.io/b/app:3:\n"),
    ]);
    ok.load().expect("disjoint explicit tags");
    let clash = Project::new(&[
        ("rules.yaml", rules),
        ("images.yaml", "quay.io/a/app:1,2:\nghcr.io/b/app:2:\n"),
    ]);
    let e = clash.load().expect_err("tag 2 twice");
    assert_eq!(
        clash.relative(&e),
        "config/images.yaml:2:1: ghcr.io/b/app and quay.io/a/app (config/images.yaml:1) both map to r.io/m/app in stage mirror"
    );
}

fn shipped() -> Mapping {
    Config::load_with_env(Path::new("config"), &env)
        .and_then(Mapping::new)
        .expect("the shipped config loads")
}

#[test]
fn shipped_config_loads() {
    let config = shipped();
    assert!(config.images().len() >= 20);
    assert_eq!(config.builds().len(), 2);
    let auth = config.auth().entries().expect("all variables set");
    assert_eq!(auth[0].username.as_deref(), Some("aliyun-hunter2"));
    let without_env =
        Config::load_with_env(Path::new("config"), &|_| None).expect("loads without secrets");
    let e = without_env
        .auth()
        .entries_for(["docker-hosted.nstl-dev.com"])
        .expect_err("NSTL_* unset");
    assert!(
        e.to_string()
            .starts_with("config/auth.yaml:16:13: username needs"),
        "{e}"
    );
    assert!(without_env
        .auth()
        .entries_for(["ghcr.io"])
        .expect("no entry")
        .is_empty());
}

#[test]
fn hop2_round_trips_through_images_yaml() {
    let config = shipped();
    let hop2 = hop2::expand(&config).expect("expands");
    let nginx_ext = hop2
        .iter()
        .find(|e| {
            e.selection.explicit_tags()
                == Some(&["1.17.4-n-ext".to_owned(), "1.25.3-n-ext".to_owned()])
        })
        .expect("nginx-ext tags");
    assert_eq!(
        nginx_ext.source.to_string(),
        "registry.cn-beijing.aliyuncs.com/public-image-mirror/docker.io_nginx"
    );
    assert_eq!(
        nginx_ext.destinations[0].to_string(),
        "docker-hosted.nstl-dev.com/library/nginx"
    );
    let text = hop2::generate(&config).expect("writes");
    let project = Project::new(&[("images.yaml", text.as_str())]);
    let again = project.load().expect("generated config loads");
    assert_eq!(again.images(), hop2.as_slice());
    assert!(
        hop2.len() > config.images().len(),
        "extension tags are included"
    );
}

/// The Ferryman-shaped fixture: 32 items over k8s.gcr.io, quay.io and docker.io, nested
/// `tag: {limit}` in block and flow style.
#[test]
fn ferryman_items_yml_in_its_real_form_loads_unchanged() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ferryman/items.yml");
    let config = Mapping::load(&path).expect("the Ferryman-shaped items.yml loads");
    let entries = config.images();
    assert_eq!(entries.len(), 32);
    let prefixes: std::collections::BTreeSet<&str> =
        entries.iter().map(|e| e.source.registry()).collect();
    assert_eq!(
        prefixes.into_iter().collect::<Vec<_>>(),
        ["docker.io", "k8s.gcr.io", "quay.io"]
    );
    let find = |source: &str| {
        entries
            .iter()
            .find(|e| e.source.to_string() == source)
            .unwrap_or_else(|| panic!("{source} missing"))
    };
    let proxy = find("k8s.gcr.io/kube-proxy");
    assert_eq!(
        proxy.destinations[0].to_string(),
        "registry.cn-shenzhen.aliyuncs.com/kubernetes_aliyun/kube-proxy"
    );
    assert_eq!(proxy.selection.limit(), Some(9999));
    assert_eq!(proxy.selection.order(), TagOrder::Created);
    let flow = find("k8s.gcr.io/coredns");
    assert_eq!(
        flow.selection.limit(),
        Some(9999),
        "flow-style tag: {{limit}}"
    );
    assert_eq!(find("k8s.gcr.io/hyperkube").selection.limit(), Some(3));
    assert_eq!(
        find("docker.io/jenkins/jenkins").selection.limit(),
        Some(10)
    );
    assert_eq!(
        find("quay.io/coreos/flannel").destinations[0].to_string(),
        "registry.cn-shenzhen.aliyuncs.com/quayio_aliyun/flannel"
    );
    assert_eq!(
        find("docker.io/library/traefik").destinations[0].to_string(),
        "registry.cn-shenzhen.aliyuncs.com/dockerio_aliyun/traefik"
    );
}

#[test]
fn ferryman_limit_forms_and_their_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let load = |text: &str| {
        let path = dir.path().join("items.yml");
        std::fs::write(&path, text).expect("write items.yml");
        Mapping::load(&path).map(|c| c.images()[0].selection.limit())
    };
    let item = "pause:\n  source: k8s.gcr.io/\n  target: r.io/k8s/\n";
    assert_eq!(
        load(&format!("{item}  tag:\n    limit: 7\n")).ok(),
        Some(Some(7))
    );
    assert_eq!(load(&format!("{item}  limit: 5\n")).ok(), Some(Some(5)));
    assert_eq!(load(&format!("{item}  tag: {{}}\n")).ok(), Some(None));
    assert_eq!(
        load("- {name: pause, source: k8s.gcr.io/, target: r.io/k8s/, tag: {limit: 2}}\n").ok(),
        Some(Some(2))
    );
    let cases = [
        (
            format!("{item}  tag:\n    limit: 7\n    order: created\n"),
            "items.yml:6:5",
            "order",
        ),
        (
            format!("{item}  tag:\n    limit: 0\n"),
            "items.yml:5:12",
            "from 1 to 4294967295, not 0",
        ),
        (
            format!("{item}  tag:\n    limit: many\n"),
            "items.yml:5:12",
            "not \"many\"",
        ),
        (
            format!("{item}  tag:\n    limit: -1\n"),
            "items.yml:5:12",
            "not -1",
        ),
        (
            format!("{item}  tag:\n    limit: 1.5\n"),
            "items.yml:5:12",
            "not 1.5",
        ),
        (
            format!("{item}  limit: 99999999999\n"),
            "items.yml:4:10",
            "not 99999999999",
        ),
        (
            "pause:\n  source: quay.io\n  target: r.io/k8s/\n".to_owned(),
            "items.yml:2:11",
            "ends with '/'",
        ),
        (
            "pause:\n  source: k8s.gcr.io/\n  target: r.io/x:/\n".to_owned(),
            "items.yml:3:11",
            "not a tag or digest",
        ),
        (
            format!("{item}  limit: 1\n  tag: {{limit: 2}}\n"),
            "items.yml:5:16",
            "limit given twice",
        ),
        (
            format!("{item}  tags: {{limit: 2}}\n"),
            "items.yml:4:3",
            "tags",
        ),
        (format!("{item}  tag: 9999\n"), "items.yml:4:8", ""),
    ];
    for (text, at, says) in cases {
        let error = load(&text).expect_err(&text).to_string();
        let place = error.split(": ").next().unwrap_or_default();
        assert!(
            place.ends_with(at) && error.contains(says) && !error.contains('\n'),
            "{text}\n-> {error}"
        );
    }
}

/// (key, destination) pairs of an images.yaml text, in file order.
fn pairs(text: &str) -> Vec<(String, String)> {
    let yaml::Entries(entries) =
        serde_saphyr::from_str::<yaml::Entries<serde_json::Value>>(text).expect("valid YAML");
    let mut out = Vec::new();
    for (key, value) in entries {
        let destinations = match value {
            serde_json::Value::String(one) => vec![one],
            serde_json::Value::Array(many) => many
                .into_iter()
                .map(|d| d.as_str().expect("a destination").to_owned())
                .collect(),
            other => panic!("{}: unexpected value {other}", key.value),
        };
        for destination in destinations {
            out.push((key.value.clone(), destination));
        }
    }
    out
}

/// The golden test of the origin project's setup: its config/ (explicit mirror destinations,
/// /regex/ tags, `${VAR}` auth per namespace, build-images.yaml as an image-syncer mapping)
/// plus `preset: nstl` gives the hop-2 pairs the origin's generator wrote, the carried
/// entries last and exactly as written.
#[test]
fn origin_config_dir_generates_the_hop2_file_of_the_origin_generator() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/origin");
    let config = Config::load_with_env(fixture.join("config"), &env)
        .and_then(Mapping::new)
        .expect("origin config/ loads");
    assert_eq!(config.images().len(), 15);
    assert_eq!(config.carried().len(), 3);
    assert!(config.builds().is_empty());
    let generated = hop2::generate(&config).expect("generates");
    let expected = std::fs::read_to_string(fixture.join("hop2-by-origin-generator.yaml"))
        .expect("read the expected hop-2 file");
    let (got, want) = (pairs(&generated), pairs(&expected));
    let sorted = |mut v: Vec<(String, String)>| {
        v.sort();
        v
    };
    assert_eq!(sorted(got.clone()), sorted(want.clone()), "{generated}");
    assert_eq!(
        got[got.len() - 3..],
        want[want.len() - 3..],
        "carried entries last"
    );
    let verbatim = "\"registry.cn-beijing.aliyuncs.com/public-image-mirror/docker.io_elasticsearch:/^(.*)(-n-ext)$/\":\n  - \"docker-hosted.nstl-dev.com/library/elasticsearch\"\n";
    assert!(
        generated.contains(verbatim),
        "written as it stands: {generated}"
    );
    // The generated file is itself a valid configuration directory's images.yaml.
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("images.yaml"), &generated).expect("write hop 2");
    let hop2 = Mapping::load(dir.path()).expect("the hop-2 file loads");
    assert_eq!(hop2.images().len(), want.len());
}

#[test]
fn build_images_yaml_shapes_and_their_errors() {
    let carried = "\"r.io/mirror/x:/^(.*)(-n-ext)$/\": [\"p.io/library/x\"]\n";
    let project = Project::new(&[NSTL, ("build-images.yaml", carried)]);
    let config = project.load().expect("mapping form loads");
    assert_eq!(config.carried()[0].key, "r.io/mirror/x:/^(.*)(-n-ext)$/");
    assert_eq!(config.carried()[0].destinations, ["p.io/library/x"]);
    let cases: &[(&str, &str, &str)] = &[
        (
            "\"Not An Image\": [p.io/x]\n",
            "config/build-images.yaml:1:1",
            "Not An Image",
        ),
        (
            "r.io/mirror/x:\n",
            "config/build-images.yaml:1:1",
            "needs its private destination",
        ),
        (
            "r.io/mirror/x: []\n",
            "config/build-images.yaml:1:1",
            "needs its private destination",
        ),
        (
            "nginx-ext:\n  base: nginx\n  tags: [1.25]\n",
            "config/build-images.yaml:2:3",
            "build entries are a YAML list",
        ),
        (
            "r.io/mirror/x: [\"p.io/UP\"]\n",
            "config/build-images.yaml:1:17",
            "lowercase",
        ),
        (
            "42\n",
            "config/build-images.yaml: ",
            "a list of build entries, or a mapping",
        ),
        (
            "name: es\nbase: docker.io/elasticsearch\ntags: [8.11.1]\n",
            "config/build-images.yaml:1:1",
            "`name` is a key of a build entry",
        ),
        (
            "1: [r.io/x]\n",
            "config/build-images.yaml:1:1",
            "mirror registry",
        ),
        (
            "nginx: [r.io/x]\n",
            "config/build-images.yaml:1:1",
            "mirror registry",
        ),
        (
            "r.io/m/x:1: [library/x]\n",
            "config/build-images.yaml:1:14",
            "its registry",
        ),
        (
            "r.io/m/x:1: nginx\n",
            "config/build-images.yaml:1:13",
            "its registry",
        ),
    ];
    for (text, at, says) in cases {
        let project = Project::new(&[NSTL, ("build-images.yaml", text)]);
        let error = project.relative(&project.load().expect_err(text));
        assert!(
            error.starts_with(at) && error.contains(says) && !error.contains('\n'),
            "{text}\n-> {error}"
        );
    }
}

/// Carried entries meet the synced ones in hop 2: a duplicate key or a second source for a
/// private target is an error naming both places, never a hop-2 file that cannot load.
#[test]
fn carried_entries_are_checked_against_the_synced_ones() {
    let mirror = "registry.cn-beijing.aliyuncs.com/public-image-mirror";
    let images = ("images.yaml", "docker.io/nginx:latest:\n");
    let duplicate =
        format!("\"{mirror}/docker.io_nginx:latest\": [docker-hosted.nstl-dev.com/other/nginx]\n");
    let project = Project::new(&[NSTL, images, ("build-images.yaml", &duplicate)]);
    let config = project.load().expect("loads: the targets differ");
    let error = project.relative(&hop2::generate(&config).expect_err("duplicate key"));
    assert!(
        error.starts_with("config/build-images.yaml:1:1: ")
            && error.contains("config/images.yaml:1")
            && error.contains("same key"),
        "{error}"
    );
    let second_source = format!(
        "\"{mirror}/docker.io_redis:latest\": [docker-hosted.nstl-dev.com/library/nginx]\n"
    );
    let project = Project::new(&[NSTL, images, ("build-images.yaml", &second_source)]);
    let error = project.relative(&project.load().expect_err("two sources, one target"));
    assert!(
        error.contains("both map to docker-hosted.nstl-dev.com/library/nginx in stage private"),
        "{error}"
    );
    // The origin's own pairing: synced tags and carried -n-ext tags of one mirror repository
    // into one private repository.
    let ext = format!("\"{mirror}/docker.io_nginx:/^(.*)(-n-ext)$/\": [docker-hosted.nstl-dev.com/library/nginx]\n");
    let project = Project::new(&[NSTL, images, ("build-images.yaml", &ext)]);
    let config = project.load().expect("one mirror source");
    hop2::generate(&config).expect("generates");
}

#[test]
fn quoted_keys_read_back_as_written() {
    for text in [
        "r.io/m/e:/^a\u{7f}b\u{80}(-n-ext)$/",
        "r.io/m/e:/\\\"'#: \n\t\u{e9}\u{2028}\u{85}\u{9f}/",
        "plain",
    ] {
        let yaml = format!("{}: 1\n", images::quote(text));
        let yaml::Entries(entries) = serde_saphyr::from_str::<yaml::Entries<u32>>(&yaml)
            .unwrap_or_else(|e| panic!("{yaml}: {e}"));
        assert_eq!(entries[0].0.value, text, "{yaml}");
    }
}

/// `immutable:` per entry wins over rules.yaml's default; `rate_floor` is read from
/// rules.yaml and from auth.yaml's `limits:`; hop 2 carries the effective pattern.
#[test]
fn immutable_tags_and_rate_floors() {
    let project = Project::new(&[
        ("images.yaml", "nginx:\n  immutable: '^1\\.'\nredis:\n"),
        (
            "rules.yaml",
            "preset: nstl\nimmutable: '^v?\\d+\\.\\d+\\.\\d+$'\nrate_floor: 25\n",
        ),
        ("auth.yaml", "docker.io:\n  limits:\n    rate_floor: 0\n"),
    ]);
    let config = project.load().expect("loads");
    let [nginx, redis] = config.images() else {
        panic!("two entries: {:?}", config.images());
    };
    let pattern = |entry| config.immutable(entry).map(|p| p.as_str().to_owned());
    assert_eq!(pattern(nginx).as_deref(), Some("^1\\."));
    assert_eq!(pattern(redis).as_deref(), Some("^v?\\d+\\.\\d+\\.\\d+$"));
    assert!(config
        .immutable(redis)
        .is_some_and(|p| p.matches("7.2.4") && !p.matches("latest")));
    assert_eq!(config.rules_file().rate_floor, Some(25));
    let auth = config.auth().entries().expect("auth entries");
    assert_eq!(auth[0].limits.rate_floor, Some(0));
    let hop2 = hop2::expand(&config).expect("expands");
    assert!(
        hop2.iter().all(|e| e.immutable.is_some()),
        "hop 2 carries the effective pattern: {hop2:?}"
    );
    let text = hop2::generate(&config).expect("writes");
    assert!(text.contains("immutable: \"^1\\\\.\""), "{text}");
}
