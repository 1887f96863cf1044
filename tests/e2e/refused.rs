//! What a sync would fail on is refused up front (issue #11): special files as config or
//! plan, values no registry run can use, usage that cannot work, an unwritable state
//! file. Each is exit 2 with one line, without blocking, before anything is pulled.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::harness::{ferry_command, project, text};

/// Nothing listens on 127.0.0.1:1: a run that got as far as the network would exit 1.
const UNREACHABLE: &str = "127.0.0.1:1/team/app:1:\n";
const MIRROR: &str = "stages:\n  mirror:\n    registry: 127.0.0.1:1/mirror\n    rules:\n      - match: '**'\n        target: '{flat}'\n";
const BOTH: &str = "stages:\n  mirror:\n    registry: 127.0.0.1:1/mirror\n    rules:\n      - match: '**'\n        target: '{flat}'\n  private:\n    registry: 127.0.0.1:1/private\n    rules:\n      - match: '**'\n        target: '{name}'\n";

/// Runs ferry in `dir`, killing it after 20 s (a FIFO read would block forever).
fn run(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = ferry_command(dir, args, &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferry starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{args:?} still running after 20 s: it blocks");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// Replaces whatever is at `path` with a FIFO.
fn mkfifo(path: &Path) {
    let _ = std::fs::remove_file(path);
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("mkfifo runs");
    assert!(made.success(), "mkfifo {}", path.display());
}

/// Replaces whatever is at `link` with a symlink to `target`.
fn symlink(target: &str, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link).expect("symlink");
}

/// (what to set up in the project dir, arguments, what the one line must say)
type Case = (Box<dyn Fn(&Path)>, Vec<&'static str>, &'static str);

fn write(name: &'static str, text: &'static str) -> Box<dyn Fn(&Path)> {
    Box::new(move |dir| std::fs::write(dir.join(name), text).expect("write"))
}

/// A config of an empty auth.yaml alone: no rules, no images.
fn auth_only(dir: &Path) {
    for name in ["rules.yaml", "images.yaml", "build-images.yaml"] {
        std::fs::remove_file(dir.join("config").join(name)).expect("rm");
    }
    std::fs::write(dir.join("config/auth.yaml"), "").expect("write");
}

fn cases() -> Vec<Case> {
    let none: fn(&Path) = |_| {};
    vec![
        // Local files.
        (
            Box::new(|d| symlink("/dev/zero", &d.join("config/images.yaml"))),
            vec!["sync"],
            "config/images.yaml: not a regular file but a character device",
        ),
        (
            Box::new(|d| symlink("/dev/urandom", &d.join("config/auth.yaml"))),
            vec!["plan", "--offline"],
            "config/auth.yaml: not a regular file but a character device",
        ),
        (
            Box::new(|d| mkfifo(&d.join("config/images.yaml"))),
            vec!["sync"],
            "config/images.yaml: not a regular file but a FIFO",
        ),
        (
            Box::new(|d| symlink("gone.yaml", &d.join("config/images.yaml"))),
            vec!["sync"],
            "config/images.yaml: dangling symlink",
        ),
        (
            Box::new(none),
            vec!["sync", "--plan", "/dev/zero"],
            "plan /dev/zero: not a regular file but a character device",
        ),
        (
            Box::new(|d| mkfifo(&d.join("plan.json"))),
            vec!["sync", "--plan", "plan.json"],
            "plan plan.json: not a regular file but a FIFO",
        ),
        (
            Box::new(none),
            vec!["plan", "-c", "/dev/zero"],
            "/dev/zero: not a regular file but a character device",
        ),
        // Values a sync would fail on.
        (
            write("config/images.yaml", "127.0.0.1:0/team/app:1:\n"),
            vec!["sync"],
            "config/images.yaml:1:1: invalid registry port in \"127.0.0.1:0\"",
        ),
        (
            write("config/images.yaml", "127.0.0.1:65536/team/app:1:\n"),
            vec!["sync"],
            "config/images.yaml:1:1: invalid registry port",
        ),
        (
            write("config/images.yaml", "nginx:1.25: 127.0.0.1:99999/x\n"),
            vec!["sync"],
            "config/images.yaml:1:13: invalid registry port",
        ),
        (
            write("config/images.yaml", "nginx@md5:0123456789abcdef:\n"),
            vec!["sync"],
            "config/images.yaml:1:1: unsupported digest algorithm",
        ),
        (
            write("config/images.yaml", "nginx:1.25: 127.0.0.1:5402\n"),
            vec!["sync"],
            "config/images.yaml:1:13: \"127.0.0.1:5402\" names a registry but no repository",
        ),
        (
            write("config/images.yaml", "\"127.0.0.1:1/team/app:1 \":\n"),
            vec!["sync"],
            "config/images.yaml:1:1: whitespace or a control character at the ends of the key",
        ),
        (
            write("config/images.yaml", "\"127.0.0.1:1/team/app:1\\n\":\n"),
            vec!["sync"],
            "config/images.yaml:1:1: whitespace or a control character at the ends of the key",
        ),
        (
            write(
                "config/auth.yaml",
                "127.0.0.1:1:\n  ca_file: config/rules.yaml\n",
            ),
            vec!["sync"],
            "config/auth.yaml:2:12: ca_file holds no PEM certificate",
        ),
        (
            write(
                "config/auth.yaml",
                "127.0.0.1:1:\n  limits:\n    idle_timeout: forever\n",
            ),
            vec!["sync"],
            "config/auth.yaml:3:19: idle_timeout: invalid duration",
        ),
        // Usage.
        (
            Box::new(none),
            vec!["sync", "--jobs", "0"],
            "--jobs <JOBS>': must be a whole number from 1 to 1024",
        ),
        (
            Box::new(none),
            vec!["sync", "--platform", "windows/amd64"],
            "only linux platforms can be copied",
        ),
        (
            Box::new(none),
            vec!["plan", "--platform", "linux/amd64,windows/amd64"],
            "only linux platforms can be copied",
        ),
        (
            Box::new(|d| std::fs::create_dir(d.join("state")).expect("dir")),
            vec!["sync", "--state", "state"],
            "cannot write state file state: not a regular file",
        ),
        (
            Box::new(none),
            vec!["sync", "--state", "/proc"],
            "cannot write state file /proc: not a regular file",
        ),
        (
            Box::new(none),
            vec!["sync", "--state", "/proc/ferry/state.json"],
            "cannot write state file /proc/ferry/state.json",
        ),
        (
            Box::new(none),
            vec!["build", "--state", "/proc"],
            "cannot write state file /proc: not a regular file",
        ),
        // Exit codes that were 1.
        (
            Box::new(auth_only),
            vec!["sync", "busybox:1"],
            "command line: no mirror stage is configured",
        ),
        (
            Box::new(none),
            vec!["sync", "--stage", "private"],
            "config/images.yaml:1:1: no private stage is configured",
        ),
        (
            write("config/rules.yaml", BOTH),
            vec!["generate", "-o", "/proc/hop2.yaml"],
            "cannot write /proc/hop2.yaml",
        ),
    ]
}

#[test]
fn refused_up_front_with_exit_2_and_one_line() {
    let build = "- name: x\n  base: 127.0.0.1:1/team/base:1\n  context: config/ctx\n";
    for (setup, args, says) in cases() {
        let dir = project(&[
            ("config/images.yaml", UNREACHABLE),
            ("config/rules.yaml", MIRROR),
            ("config/build-images.yaml", build),
            (
                "config/ctx/Dockerfile",
                "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n",
            ),
        ]);
        setup(dir.path());
        let (code, stdout, stderr) = run(dir.path(), &args);
        let stderr = stderr.replace(&format!("{}/", dir.path().display()), "");
        assert_eq!(code, Some(2), "{args:?}: {stdout}{stderr}");
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: one line: {stderr}"
        );
        assert!(stderr.contains(says), "{args:?}: want {says:?} in {stderr}");
        assert!(stdout.is_empty(), "{args:?}: nothing done: {stdout}");
        assert!(!dir.path().join(".ferry/state.json").exists(), "{args:?}");
    }
}
