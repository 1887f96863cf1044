//! `ferry cache ls|prune`: the images ferry keeps in the daemon as a layer cache.
//!
//! Owns the listing format. The policy is `cache::images`'.

use std::io::Write;

use super::sync::{blob_dir, cache_budget};
use super::{io, CommandError, EXIT_OK};
use crate::cache::{self, cached_images, BlobCache};
use crate::cli::{CacheAction, CacheArgs};
use crate::docker::Engine;
use crate::report::human_bytes;
use crate::state::State;

/// Lists or prunes the cache.
pub async fn run(args: &CacheArgs, out: &mut (dyn Write + Send)) -> Result<u8, CommandError> {
    let budget = match &args.action {
        CacheAction::Prune {
            max_size: Some(size),
        } => {
            cache::parse_size(size).map_err(|e| CommandError::Usage(format!("--max-size: {e}")))?
        }
        _ => cache_budget()?,
    };
    let blobs = BlobCache::new(&blob_dir(&args.state));
    let failed_blobs = |e: crate::cache::CacheError| CommandError::Failed(e.to_string());
    match args.action {
        CacheAction::Ls => {
            let listed = blobs.list().map_err(failed_blobs)?;
            let total: u64 = listed.iter().map(|(_, size, _)| size).sum();
            let dir = blob_dir(&args.state);
            writeln!(
                out,
                "blob cache {}: {} blobs, {}",
                dir.display(),
                listed.len(),
                human_bytes(total)
            )
            .map_err(io)?;
        }
        CacheAction::Prune { .. } => {
            let freed = blobs.prune(budget).map_err(failed_blobs)?;
            writeln!(
                out,
                "blob cache: freed {} (budget {})",
                human_bytes(freed),
                human_bytes(budget)
            )
            .map_err(io)?;
        }
    }
    // The daemon part needs a daemon; without one the blob cache alone is handled.
    let engine = match Engine::connect().await {
        Ok(engine) => engine,
        Err(error) => {
            writeln!(out, "layer cache: skipped ({error})").map_err(io)?;
            return Ok(EXIT_OK);
        }
    };
    let (state, _) = State::load(&args.state);
    let failed = |e: crate::docker::DockerError| CommandError::Failed(e.to_string());
    match args.action {
        CacheAction::Ls => {
            let images = cached_images(&engine, &state).await.map_err(failed)?;
            let total: u64 = images.iter().map(|i| i.size).sum();
            for image in &images {
                let id = image.id.trim_start_matches("sha256:");
                writeln!(
                    out,
                    "{:<12} {:>10}  {}",
                    &id[..id.len().min(12)],
                    human_bytes(image.size),
                    image.reference
                )
                .map_err(io)?;
            }
            writeln!(
                out,
                "layer cache: {} images, {} (budget {})",
                images.len(),
                human_bytes(total),
                human_bytes(budget)
            )
            .map_err(io)?;
        }
        CacheAction::Prune { .. } => {
            let freed = cache::prune_images(&engine, &state, budget)
                .await
                .map_err(failed)?;
            writeln!(
                out,
                "layer cache: freed {} (budget {})",
                human_bytes(freed),
                human_bytes(budget)
            )
            .map_err(io)?;
        }
    }
    Ok(EXIT_OK)
}
