//! `ferry tags REPO`: the tags of a repository as a selection would see them, newest first,
//! with the Linux platforms each one offers.
//!
//! Owns the listing format. Filtering is `select`'s; reading manifests the client's.

use std::io::Write;

use regex::Regex;
use semver::VersionReq;

use super::resolve::{linux_platforms, RegistryTags};
use super::{client, io, CommandError, EXIT_OK};
use crate::cli::TagsArgs;
use crate::config::selection::{TagOrder, TagSelection, TagSet};
use crate::config::Config;
use crate::plan::select_tags;
use crate::platform::Platform;
use crate::reference::Reference;
use crate::registry::ClientOptions;

/// Lists the selected tags of `args.repository`.
pub async fn run(
    config: &Option<Config>,
    args: &TagsArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    let usage = |e: &dyn std::fmt::Display| CommandError::Usage(e.to_string());
    let repository: Reference = args
        .repository
        .parse::<Reference>()
        .map_err(|e| usage(&e))?;
    let selection = selection(args).map_err(|e| usage(&e))?;
    let client = client(config.as_ref(), [&repository], ClientOptions::default())?;
    // Without a limit every listed tag is shown (Windows-only ones marked with
    // --all-platforms); with one, the newest N that have a Linux platform.
    let chosen = select_tags(&selection, &repository, &RegistryTags::new(&client))
        .await
        .map_err(CommandError::Failed)?;
    for tag in &chosen {
        let image = repository.with_tag(tag).map_err(|e| usage(&e))?;
        let platforms = match linux_platforms(&client, &image).await {
            Ok(platforms) if platforms.is_empty() => {
                if !args.all_platforms {
                    continue;
                }
                "(no Linux platform)".to_owned()
            }
            Ok(platforms) => {
                let names: Vec<String> = platforms.iter().map(Platform::to_string).collect();
                names.join(",")
            }
            Err(error) => format!("(unreadable: {error})"),
        };
        writeln!(out, "{tag}  {platforms}").map_err(io)?;
    }
    Ok(EXIT_OK)
}

fn selection(args: &TagsArgs) -> Result<TagSelection, String> {
    let tags = match &args.tags {
        Some(regex) => TagSet::Regex(Regex::new(regex).map_err(|e| format!("--tags: {e}"))?),
        None => TagSet::All,
    };
    let semver = args
        .semver
        .as_deref()
        .map(VersionReq::parse)
        .transpose()
        .map_err(|e| format!("--semver: {e}"))?;
    let exclude = args
        .exclude
        .iter()
        .map(|e| Regex::new(e).map_err(|e| format!("--exclude: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let order = match args.order.as_str() {
        "semver" => TagOrder::Semver,
        "created" => TagOrder::Created,
        other => return Err(format!("--order: {other:?} is not semver or created")),
    };
    let limit = args.limit.map(|l| u32::try_from(l).unwrap_or(u32::MAX));
    TagSelection::new(tags).with_filters(semver, exclude, limit, order)
}
