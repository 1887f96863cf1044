//! The daemon as a layer cache: images ferry pulled stay, pruned least recently used first
//! down to a size budget.
//!
//! Owns the pruning policy. It must never remove an image ferry did not pull: only images
//! recorded in the state file are candidates.

use crate::docker::{DockerApi, DockerError};
use crate::state::State;

/// One image ferry keeps in the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedImage {
    /// Daemon image id.
    pub id: String,
    /// The reference ferry pulled it as.
    pub reference: String,
    /// Size the daemon reported.
    pub size: u64,
    /// Unix seconds of last use.
    pub last_used: u64,
}

/// Images ferry pulled that the daemon still has, least recently used first. Records of
/// images removed by someone else are dropped from the state.
pub async fn cached_images<D: DockerApi>(
    docker: &D,
    state: &State,
) -> Result<Vec<CachedImage>, DockerError> {
    let mut images = Vec::new();
    for (id, record) in state.cached() {
        if docker.inspect(&id).await?.is_none() {
            let _ = state.forget_cached(&id);
            continue;
        }
        images.push(CachedImage {
            id,
            reference: record.reference,
            size: record.size,
            last_used: record.last_used,
        });
    }
    images.sort_by_key(|i| (i.last_used, i.id.clone()));
    Ok(images)
}

/// Removes least recently used images until the cache fits `max_size`; returns bytes freed.
/// Sizes count every image whole (shared layers once per image), so the budget errs on the
/// side of keeping less.
pub async fn prune_images<D: DockerApi>(
    docker: &D,
    state: &State,
    max_size: u64,
) -> Result<u64, DockerError> {
    let images = cached_images(docker, state).await?;
    let mut total: u64 = images.iter().map(|i| i.size).sum();
    let mut freed = 0;
    for image in images {
        if total <= max_size {
            break;
        }
        docker.remove(&image.id).await?;
        let _ = state.forget_cached(&image.id);
        total = total.saturating_sub(image.size);
        freed += image.size;
    }
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::fake::FakeDocker;

    #[tokio::test]
    async fn prunes_least_recently_used_and_never_foreign_images() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (state, _) = State::load(&dir.path().join("state.json"));
        let docker = FakeDocker::default();
        for (id, size) in [("old", 40), ("mid", 30), ("new", 20), ("theirs", 500)] {
            docker.add_image(id, size);
        }
        for id in ["old", "mid", "new"] {
            state
                .touch_cached(
                    id,
                    &format!("src/{id}:1"),
                    docker
                        .inspect(id)
                        .await
                        .expect("fake")
                        .map_or(0, |i| i.size),
                )
                .expect("save");
            std::thread::sleep(std::time::Duration::from_millis(1100));
        }
        state.touch_cached("gone", "src/gone:1", 10).expect("save");

        let cached = cached_images(&docker, &state).await.expect("list");
        let ids: Vec<&str> = cached.iter().map(|i| i.id.as_str()).collect();
        assert_eq!(
            ids,
            ["old", "mid", "new"],
            "LRU order; a record of a vanished image is dropped"
        );
        assert!(!state.cached().contains_key("gone"));

        let freed = prune_images(&docker, &state, 50).await.expect("prune");
        assert_eq!(freed, 40, "the oldest alone brings 90 down to 50");
        assert_eq!(
            docker.image_ids(),
            ["mid", "new", "theirs"],
            "never an image ferry did not pull"
        );
        assert_eq!(prune_images(&docker, &state, 0).await.expect("prune"), 50);
        assert_eq!(docker.image_ids(), ["theirs"]);
    }
}
