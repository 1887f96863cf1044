//! What a sync would fail on is refused when the config loads (issue #11): special files in
//! place of config files, and values no registry run can use, each with one located line.

use std::path::Path;

use super::*;

const RULES: &str = "stages:\n  mirror:\n    registry: 127.0.0.1:5402/mirror\n    rules:\n      - match: '**'\n        target: '{flat}'\n";

/// A `config/` directory with `files` (name, text) and the mirror rules.
fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(config.join("rules.yaml"), RULES).expect("rules");
    for (name, text) in files {
        std::fs::write(config.join(name), text).expect("write config file");
    }
    dir
}

/// The load error with the temp directory cut off (`config/images.yaml: …`).
fn load_error(dir: &Path, config: &Path) -> String {
    match Config::load_with_env(config, &|_| None).and_then(crate::rules::Mapping::new) {
        Ok(_) => "loaded fine".to_owned(),
        Err(error) => error
            .to_string()
            .replace(&format!("{}/", dir.display()), ""),
    }
}

fn mkfifo(path: &Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Puts something at a path.
type Make = Box<dyn Fn(&Path)>;

#[test]
fn config_files_must_be_regular_files() {
    let cases: Vec<(&str, Make, &str)> = vec![
        (
            "images.yaml",
            Box::new(|p| std::os::unix::fs::symlink("/dev/zero", p).expect("link")),
            "config/images.yaml: not a regular file but a character device",
        ),
        (
            "auth.yaml",
            Box::new(|p| std::os::unix::fs::symlink("/dev/urandom", p).expect("link")),
            "config/auth.yaml: not a regular file but a character device",
        ),
        (
            "images.yaml",
            Box::new(mkfifo),
            "config/images.yaml: not a regular file but a FIFO",
        ),
        (
            "images.yaml",
            Box::new(|p| std::os::unix::fs::symlink("nowhere.yaml", p).expect("link")),
            "config/images.yaml: dangling symlink (its target does not exist)",
        ),
        (
            "build-images.yaml",
            Box::new(|p| std::fs::create_dir(p).expect("dir")),
            "config/build-images.yaml: not a regular file but a directory",
        ),
        (
            "images.yaml",
            Box::new(|p| {
                let big = "# padding\n".repeat(1_700_000);
                std::fs::write(p, big).expect("write");
            }),
            "config/images.yaml: larger than 16777216 bytes",
        ),
    ];
    for (name, make, expected) in cases {
        let dir = project(&[]);
        make(&dir.path().join("config").join(name));
        let got = load_error(dir.path(), &dir.path().join("config"));
        assert_eq!(got, expected, "{name}");
    }
    // `-c` naming something that is neither a directory nor a regular items.yml.
    let dir = project(&[]);
    let fifo = dir.path().join("items.yml");
    mkfifo(&fifo);
    assert_eq!(
        load_error(dir.path(), &fifo),
        "items.yml: not a regular file but a FIFO"
    );
    assert_eq!(
        load_error(dir.path(), Path::new("/dev/zero")),
        "/dev/zero: not a regular file but a character device"
    );
    assert_eq!(
        load_error(dir.path(), &dir.path().join("absent")),
        "absent: no such configuration directory or items.yml file"
    );
}

#[test]
fn values_a_sync_would_fail_on_are_load_errors() {
    let not_pem = "this is not a certificate\n";
    let cases: &[(&str, &str, &str)] = &[
        ("images.yaml", "127.0.0.1:0/x:1:\n", "config/images.yaml:1:1: invalid registry port in \"127.0.0.1:0\" (1-65535) (127.0.0.1:0/x:1)"),
        ("images.yaml", "127.0.0.1:65536/x:\n", "config/images.yaml:1:1: invalid registry port"),
        ("images.yaml", "nginx:1.25: 127.0.0.1:99999/x\n", "config/images.yaml:1:13: invalid registry port"),
        ("images.yaml", "nginx@md5:abcdef:\n", "config/images.yaml:1:1: unsupported digest algorithm in \"md5:abcdef\" (only sha256)"),
        ("images.yaml", "nginx:1.25: \"127.0.0.1:5402\"\n", "config/images.yaml:1:13: \"127.0.0.1:5402\" names a registry but no repository"),
        ("images.yaml", "\"nginx:1.25 \":\n", "config/images.yaml:1:1: whitespace or a control character at the ends of the key (keys are not trimmed) (nginx:1.25 )"),
        ("images.yaml", "\"nginx:1.25\\n\":\n", "config/images.yaml:1:1: whitespace or a control character at the ends of the key (keys are not trimmed) (nginx:1.25\\n)"),
        ("auth.yaml", "\"127.0.0.1:5402 \":\n  insecure: true\n", "config/auth.yaml:1:1: invalid auth key"),
        ("auth.yaml", "127.0.0.1:99999:\n  insecure: true\n", "config/auth.yaml:1:1: invalid auth key: invalid registry port"),
        ("auth.yaml", "127.0.0.1:5402:\n  ca_file: config/rules.yaml\n", "config/auth.yaml:2:12: ca_file holds no PEM certificate (config/rules.yaml)"),
        ("auth.yaml", "127.0.0.1:5402:\n  ca_file: /dev/zero\n", "config/auth.yaml:2:12: ca_file: not a regular file but a character device (/dev/zero)"),
    ];
    for (name, text, expected) in cases {
        let dir = project(&[(name, text), ("ca.txt", not_pem)]);
        let got = load_error(dir.path(), &dir.path().join("config"));
        assert!(
            got.starts_with(expected),
            "{text:?}\n  want {expected}\n  got  {got}"
        );
        assert!(!got.contains('\n'), "one line: {got}");
    }
    let rules = RULES.replace("127.0.0.1:5402/mirror", "127.0.0.1:0/mirror");
    let dir = project(&[("images.yaml", "nginx:1.25:\n"), ("rules.yaml", &rules)]);
    let got = load_error(dir.path(), &dir.path().join("config"));
    assert!(
        got.starts_with("config/rules.yaml:3:15: invalid registry: invalid registry port"),
        "{got}"
    );
}

#[test]
fn a_missing_ca_file_still_fails_only_the_run_that_needs_it() {
    let dir = project(&[("auth.yaml", "127.0.0.1:5402:\n  ca_file: absent.pem\n")]);
    let config = Config::load_with_env(dir.path().join("config"), &|_| None).expect("loads");
    let error = config.auth().entries().expect_err("needed by a run");
    assert!(
        error.to_string().contains("ca_file does not exist"),
        "{error}"
    );
}
