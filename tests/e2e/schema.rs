//! The JSON Schemas of the config files (schema/): editors find them through the
//! `# yaml-language-server: $schema=` line of each shipped file; the shipped config, the
//! origin fixtures and the e2e tests' configs validate, and typical mistakes do not.

use std::path::Path;

use serde_json::Value;

use crate::harness::repo_root;

const FILES: [&str; 4] = ["images", "auth", "rules", "build-images"];

fn validator(name: &str) -> jsonschema::Validator {
    let path = repo_root().join(format!("schema/{name}.schema.json"));
    let text = std::fs::read_to_string(&path).expect("schema file");
    let schema: Value = serde_json::from_str(&text).expect("schema is JSON");
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{name}: invalid schema: {e}"))
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str::<Option<Value>>(text)
        .expect("YAML")
        .unwrap_or(Value::Null)
}

fn errors(name: &str, text: &str) -> Vec<String> {
    validator(name)
        .iter_errors(&yaml(text))
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

fn assert_valid(name: &str, path: &Path) {
    let text = std::fs::read_to_string(path).expect("config file");
    let found = errors(name, &text);
    assert!(found.is_empty(), "{}: {found:?}", path.display());
}

#[test]
fn shipped_files_name_their_schema_and_validate() {
    for name in FILES {
        let path = repo_root().join(format!("config/{name}.yaml"));
        let text = std::fs::read_to_string(&path).expect("shipped file");
        let first = text.lines().next().unwrap_or_default();
        let target = first
            .strip_prefix("# yaml-language-server: $schema=")
            .unwrap_or_else(|| panic!("{name}.yaml: first line is {first:?}"));
        assert_eq!(target, format!("../schema/{name}.schema.json"));
        assert!(path.parent().expect("config/").join(target).is_file());
        assert_valid(name, &path);
    }
}

#[test]
fn the_origin_fixtures_and_e2e_configs_validate() {
    for name in FILES {
        assert_valid(
            name,
            &repo_root().join(format!("tests/fixtures/origin/config/{name}.yaml")),
        );
    }
    // Shapes the e2e tests write (tests/e2e/*.rs).
    let cases = [
        ("images", "127.0.0.1:1/team/app:1.0:\n127.0.0.1:1/team/b:\n"),
        ("images", "\"127.0.0.1:1/team/a:1.0\": \"127.0.0.1:2/mirror/a\"\n"),
        ("images", "127.0.0.1:1/team/a:\n  tags: '^1\\.'\n  limit: 2\n  order: created\n  platforms: [linux/arm64/v8]\n  exclude: rc\n  to: [127.0.0.1:2/m/a]\n"),
        ("images", "127.0.0.1:1/team/a:\n  platforms: all\n"),
        ("images", "127.0.0.1:1/team/a:\n  immutable: '^v?\\d+\\.\\d+\\.\\d+$'\n"),
        ("auth", "docker.io:\n  limits:\n    rate_floor: 20\n"),
        ("rules", "preset: nstl\nimmutable: '^\\d+\\.\\d+$'\nrate_floor: 0\n"),
        ("auth", "127.0.0.1:1:\n  username: u\n  password: ${FERRY_TEST_SECRET}\n  insecure: true\n"),
        ("rules", "stages:\n  mirror:\n    registry: 127.0.0.1:2/mirror\n    rules:\n      - match: '**'\n        target: '{flat}'\n"),
        ("build-images", "- name: x\n  base: 127.0.0.1:1/team/base\n  tags: ['1.0']\n  mode: continuous\n  build_args: {TZ: UTC}\n"),
    ];
    for (name, text) in cases {
        assert_eq!(errors(name, text), Vec::<String>::new(), "{name}: {text}");
    }
}

#[test]
fn typical_mistakes_are_flagged() {
    let cases = [
        ("images", "nginx:\n  colour: blue\n"),
        ("images", "nginx:\n  limit: 0\n"),
        ("images", "nginx:\n  platforms: [windows/amd64]\n"),
        ("images", "nginx:\n  order: newest\n"),
        ("images", "nginx:\n  immutable: [v1]\n"),
        ("auth", "docker.io:\n  limits:\n    rate_floor: -1\n"),
        ("rules", "preset: nstl\nrate_floor: ten\n"),
        ("auth", "ghcr.io:\n  username: u\n  pasword: p\n"),
        ("auth", "ghcr.io:\n  username: u\n"),
        ("rules", "preset: nowhere\n"),
        (
            "rules",
            "stages:\n  mirror:\n    rules:\n      - match: '**'\n",
        ),
        (
            "build-images",
            "- name: x\n  base: nginx\n  mode: sometimes\n",
        ),
        ("build-images", "\"mirror/x:/^(.*)(-n-ext)$/\": []\n"),
    ];
    for (name, text) in cases {
        assert!(!errors(name, text).is_empty(), "{name} accepted: {text}");
    }
}
