//! `ferry map IMAGE...`: the chain of each image, source -> mirror -> private.
//!
//! Owns the one-line chain format. It must not contact any registry.

use std::io::Write;

use super::{io, CommandError, EXIT_OK};
use crate::cli::MapArgs;
use crate::config::build::extension_tag;
use crate::reference::Reference;
use crate::rules::Mapping;
use crate::rules::{MapError, Stage};

/// Prints `source -> mirror -> private` for each image.
pub fn run(
    config: &Mapping,
    args: &MapArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    for image in &args.images {
        let mut source: Reference = image
            .parse::<Reference>()
            .map_err(|e| CommandError::Usage(e.to_string()))?
            .or_latest();
        if args.ext {
            let tag = source.tag().unwrap_or("latest").to_owned();
            source = source
                .with_tag(&extension_tag(&tag))
                .map_err(|e| CommandError::Usage(e.to_string()))?;
        }
        let mut chain = vec![source.to_string()];
        for stage in Stage::ALL {
            chain.push(match target(config, &source, stage) {
                Ok(target) => target.to_string(),
                Err(MapError::NoStage { .. }) => format!("(no {stage} stage)"),
                Err(error) => return Err(CommandError::Usage(format!("{source}: {error}"))),
            });
        }
        writeln!(out, "{}", chain.join(" -> ")).map_err(io)?;
    }
    Ok(EXIT_OK)
}

/// The entry's own destination when images.yaml names one, else the rules.
fn target(config: &Mapping, source: &Reference, stage: Stage) -> Result<Reference, MapError> {
    let entry = config
        .images()
        .iter()
        .find(|e| e.source == source.without_tag());
    match entry {
        Some(entry) => config
            .targets(entry, source, stage)?
            .into_iter()
            .next()
            .ok_or(MapError::NoStage { stage }),
        None => config.rules().target(source, stage),
    }
}

#[cfg(test)]
mod tests {
    use crate::command::output_of;

    /// The sources of SPEC §4's golden table; the extension row is asked with `--ext`.
    const GOLDEN: &[&str] = &[
        "docker.io/nginx:1.17.4",
        "docker.io/adoptopenjdk/openjdk11:latest",
        "ghcr.io/kube-vip/kube-vip:v0.5.0",
        "registry.k8s.io/kube-proxy:v1.28.0",
        "registry.k8s.io/coredns/coredns:latest",
        "docker.elastic.co/elasticsearch/elasticsearch:8.11.1",
        "docker.elastic.co/beats/filebeat:8.11.1",
        "nginx",
    ];

    #[tokio::test]
    async fn the_golden_rows_on_the_shipped_config() {
        let mut shown = String::new();
        for line in [
            format!("-c config map {}", GOLDEN.join(" ")),
            "-c config map --ext docker.io/nginx:1.17.4".to_owned(),
        ] {
            shown += &format!("$ ferry {line}\n{}", output_of(&line).await);
        }
        insta::assert_snapshot!(shown);
    }
}
