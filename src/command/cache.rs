//! `ferry cache ls|prune`: the images ferry keeps in the daemon as a layer cache.
//!
//! Owns the listing format. The policy is `cache::images`'.

use std::io::Write;

use super::sync::cache_budget;
use super::{io, CommandError, EXIT_OK};
use crate::cache::{self, cached_images};
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
    let (state, _) = State::load(&args.state);
    let engine = Engine::connect()
        .await
        .map_err(|e| CommandError::Failed(e.to_string()))?;
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
                "{} images, {} (budget {})",
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
                "freed {} (budget {})",
                human_bytes(freed),
                human_bytes(budget)
            )
            .map_err(io)?;
        }
    }
    Ok(EXIT_OK)
}
