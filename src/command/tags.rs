//! `ferry tags REPO`: the tags of a repository as a selection would see them, newest first,
//! with the Linux platforms each one offers.
//!
//! Owns the listing format. Filtering is `select`'s; reading manifests the client's.

use std::io::Write;

use regex::Regex;
use semver::VersionReq;

use super::resolve::RegistryTags;
use super::{client, io, CommandError, EXIT_OK};
use crate::cli::TagsArgs;
use crate::config::selection::{TagOrder, TagSelection, TagSet};
use crate::config::Config;
use crate::manifest::{self, Parsed};
use crate::plan::TagSource;
use crate::reference::Reference;
use crate::registry::{ClientOptions, RegistryClient};
use crate::select;

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
    let tags = RegistryTags(&client);
    let listed = tags.tags(&repository).await.map_err(CommandError::Failed)?;
    let mut chosen: Vec<String> = select::by_name(&selection, &listed)
        .into_iter()
        .map(str::to_owned)
        .collect();
    if select::needs_created(&selection) {
        let mut created = Vec::new();
        for tag in &chosen {
            let image = repository.with_tag(tag).map_err(|e| usage(&e))?;
            created.push((
                tag.as_str(),
                tags.created(&image)
                    .await
                    .map_err(CommandError::Failed)?
                    .unwrap_or(i64::MIN),
            ));
        }
        chosen = select::newest_by_created(created, selection.limit())
            .into_iter()
            .map(str::to_owned)
            .collect();
    }
    for tag in &chosen {
        let image = repository.with_tag(tag).map_err(|e| usage(&e))?;
        let platforms = match linux_platforms(&client, &image).await {
            Ok(platforms) if platforms.is_empty() => {
                if !args.all_platforms {
                    continue;
                }
                "(no Linux platform)".to_owned()
            }
            Ok(platforms) => platforms.join(","),
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

/// The Linux platforms of `image` (`linux/amd64`, …); empty for Windows-only images.
async fn linux_platforms(
    client: &RegistryClient,
    image: &Reference,
) -> Result<Vec<String>, CommandError> {
    let failed = |e: &dyn std::fmt::Display| CommandError::Failed(e.to_string());
    let top = client.get_manifest(image).await.map_err(|e| failed(&e))?;
    match manifest::parse(&top.media_type, &top.bytes).map_err(|e| failed(&e))? {
        Parsed::Index(children) => Ok(children
            .iter()
            .filter_map(|c| c.platform.as_ref())
            .filter(|p| p.is_linux())
            .map(|p| p.to_string())
            .collect()),
        Parsed::Image(_) => {
            let config = client.image_config(image).await.map_err(|e| failed(&e))?;
            Ok(config
                .as_deref()
                .and_then(manifest::config_platform)
                .filter(|p| p.is_linux())
                .map(|p| vec![p.to_string()])
                .unwrap_or_default())
        }
    }
}
