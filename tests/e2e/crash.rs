//! Crash safety (SPEC section 9): `ferry sync` killed with SIGKILL at 10 different moments
//! (both transports, single- and multi-platform sources), picked by the number of writes
//! the target registry has answered. Right after each kill, and after a rerun to
//! completion, every tag of the real target registry is complete: its manifest parses,
//! every child of an index exists, and every config and layer they name is there.

use std::process::Stdio;
use std::time::Duration;

use crate::harness::{ferry, ferry_command, project, text};
use crate::support::{
    require_daemon, unique, Fixture, ImageCleanup, MediaKind, Registry, RegistryClient,
};

/// Writes (POST, PUT, PATCH) the target has answered.
fn writes(target: &Registry) -> usize {
    target
        .requests()
        .iter()
        .filter(|r| matches!(r.method.as_str(), "POST" | "PUT" | "PATCH"))
        .count()
}

/// Every problem with `repo:reference` and what it names: a missing manifest, child or blob.
async fn incomplete(client: &RegistryClient, repo: &str, reference: &str) -> Vec<String> {
    let Some(manifest) = client.manifest(repo, reference).await else {
        return vec![format!("{repo}:{reference}: no manifest")];
    };
    let json = manifest.json();
    let mut problems = Vec::new();
    if let Some(children) = json["manifests"].as_array() {
        for child in children {
            let digest = child["digest"].as_str().expect("a child digest");
            problems.extend(Box::pin(incomplete(client, repo, digest)).await);
        }
        return problems;
    }
    let layers = json["layers"].as_array().cloned().unwrap_or_default();
    let named = layers.iter().chain([&json["config"]]);
    for digest in named.filter_map(|d| d["digest"].as_str()) {
        if !client.has_blob(repo, digest).await {
            problems.push(format!("{repo}:{reference}: blob {digest} missing"));
        }
    }
    if json["config"]["digest"].as_str().is_none() {
        problems.push(format!("{repo}:{reference}: neither an index nor an image"));
    }
    problems
}

/// The tags of `repos` on `target`, each checked complete; the tags that are not staging.
async fn complete_tags(target: &Registry, repos: &[&str], moment: &str) -> Vec<String> {
    let client = RegistryClient::new(target);
    let mut tags = Vec::new();
    for repo in repos {
        for tag in client.tags(repo).await {
            let problems = incomplete(&client, repo, &tag).await;
            assert!(problems.is_empty(), "{moment}: half-written: {problems:#?}");
            if !tag.starts_with("ferry-staging") {
                tags.push(format!("{repo}:{tag}"));
            }
        }
    }
    tags.sort();
    tags
}

#[tokio::test]
async fn a_sync_killed_at_ten_moments_leaves_no_half_written_tag_and_reruns_to_completion() {
    require_daemon();
    let cleanup = ImageCleanup::default();
    let src = Registry::anonymous();
    cleanup.track_registry(src.host());
    let repo = format!("team/{}", unique("crash"));
    let multi = format!("{repo}-multi");
    for tag in ["1", "2", "3"] {
        let pushed = Fixture::image(&src, &repo, tag)
            .layer_text(&format!("crash {tag}"))
            .push()
            .await;
        cleanup.track(pushed.pinned());
    }
    for tag in ["1", "2"] {
        let index = Fixture::index(&src, &multi, tag, MediaKind::Oci)
            .layer_text(&format!("crash multi {tag}"))
            .push()
            .await;
        for child in &index.children {
            cleanup.track(child.pinned());
        }
    }
    let wanted = [
        "mirror/app:1",
        "mirror/app:2",
        "mirror/app:3",
        "mirror/multi:1",
        "mirror/multi:2",
    ];
    // (transport, kill once the target answered this many writes)
    // (transport, kill once the target answered this many writes): a whole run writes
    // about 40 times (registry) or 55 (docker), so these spread over each run.
    let moments = [
        ("registry", 2),
        ("registry", 8),
        ("registry", 16),
        ("registry", 24),
        ("registry", 32),
        ("docker", 3),
        ("docker", 12),
        ("docker", 24),
        ("docker", 36),
        ("docker", 46),
    ];
    let mut killed = 0;
    for (transport, after) in moments {
        let dst = Registry::anonymous();
        cleanup.track_registry(dst.host());
        let images = format!(
            "\"{src}/{repo}:1,2,3\": {dst}/mirror/app\n\"{src}/{multi}:1,2\": {dst}/mirror/multi\n",
            src = src.host(),
            dst = dst.host()
        );
        let dir = project(&[("config/images.yaml", &images)]);
        let args = ["sync", "--jobs", "2", "--transport", transport];
        let mut child = ferry_command(dir.path(), &args, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ferry starts");
        let moment = format!("{transport}, killed after {after} writes");
        loop {
            if child.try_wait().expect("poll ferry").is_some() {
                break;
            }
            if writes(&dst) >= after {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
                killed += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let at_kill = writes(&dst);
        // dockerd finishes (or drops) a push it had started after its client died: the
        // target is checked once nothing has reached it for three looks in a row.
        let (mut seen, mut quiet) = (usize::MAX, 0);
        while quiet < 3 {
            std::thread::sleep(Duration::from_millis(250));
            let now = dst.requests().len();
            quiet = if now == seen { quiet + 1 } else { 0 };
            seen = now;
        }
        let settled = writes(&dst);
        let partial = complete_tags(&dst, &["mirror/app", "mirror/multi"], &moment).await;
        let rerun = ferry(dir.path(), &args, &[]);
        assert_eq!(
            rerun.status.code(),
            Some(0),
            "{moment}: the rerun finishes: {}{}",
            text(&rerun.stdout),
            text(&rerun.stderr)
        );
        let all = complete_tags(&dst, &["mirror/app", "mirror/multi"], &moment).await;
        assert_eq!(all, wanted, "{moment}: every tag after the rerun");
        assert!(
            partial.iter().all(|t| all.contains(t)),
            "{moment}: {partial:?}"
        );
        eprintln!(
            "{moment}: {at_kill} writes when killed, {settled} when settled with {} tags, {} in all",
            partial.len(),
            writes(&dst)
        );
    }
    // A moment past the end of a run is no kill: most of them must be real.
    assert!(killed >= 8, "only {killed} of 10 runs were killed mid-way");
}
