//! image-syncer mode: `image-syncer --auth=… --images=… --proc=10 --retries=2` run by
//! ferry's registry transport, with image-syncer's files, outputs and final lines.
//!
//! Owns the mapping of image-syncer's flags onto a registry run (destinations as written,
//! `--proc` as jobs, `--retries` as request retries, `--os`/`--arch` as platforms). It must
//! not copy anything itself: the registry transport does.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::sync::{cache_budget, human, push_ci_reporters, RegistryCopy};
use super::{client, resolve, CommandError, EXIT_FAILED, EXIT_OK};
use crate::cli::image_syncer::{ImageSyncerArgs, ImagesFormat as FormatArg};
use crate::config::Config;
use crate::event::Outcome;
use crate::plan::Request;
use crate::platform::Platform;
use crate::registry::ClientOptions;
use crate::report::{ImagesFormat, ImagesReporter, Reporters};
use crate::retry::RetryPolicy;
use crate::rules::Mapping;
use crate::rules::Stage;

/// The line image-syncer prints on stdout when any image failed; scripts grep for it.
pub const FAILED_LINE: &str = "failed tasks exist";

/// Runs image-syncer's command line; exit 1 (and [`FAILED_LINE`] on `out`) when any image
/// failed, 2 for bad flags or files.
pub async fn run(args: &ImageSyncerArgs, out: &mut (dyn Write + Send)) -> Result<u8, CommandError> {
    let started = Instant::now();
    let request = Request {
        platforms: platforms(&args.os, &args.arch)?,
        ..Request::default()
    };
    let max_cache = cache_budget()?;
    let config = load(args)?;
    let options = ClientOptions {
        retry: RetryPolicy {
            max_attempts: args.retries.saturating_add(1),
            ..RetryPolicy::default()
        },
        ..ClientOptions::default()
    };
    let touched = resolve::touched(&config, Stage::Mirror, &request)?;
    let client = client(Some(&config), &touched, options)?;
    let mut reporters = reporters(args)?;
    let (planned, earlier) = super::planning(resolve::jobs(
        &config,
        Stage::Mirror,
        &request,
        &client,
        None,
    ))
    .await;
    let (jobs, unresolved) = planned?;
    // image-syncer writes nothing but its log and output files: the state and the blob
    // cache of this run live in a directory removed at the end.
    let scratch = tempfile::tempdir()
        .map_err(|e| CommandError::Failed(format!("cannot create a scratch directory: {e}")))?;
    // The same bounds as a sync: --proc at once, max_concurrency per target registry.
    let run_options = super::run_options(args.proc, &jobs, &client);
    let copy = RegistryCopy {
        client,
        state: &scratch.path().join("state.json"),
        force: args.force,
        max_cache,
    };
    let outcomes = copy
        .run(&jobs, &unresolved, earlier, &run_options, &mut reporters)
        .await;
    super::sync::warn_reporter_failures(&mut reporters);
    drop(reporters);
    let failed = unresolved.len()
        + outcomes
            .iter()
            .filter(|o| matches!(o, Outcome::Failed { .. }))
            .count();
    let finished = format!(
        "Synchronization finished, {failed} tasks failed, cost {:.1}s.",
        started.elapsed().as_secs_f64()
    );
    log_line(args.log.as_deref(), &finished);
    if failed == 0 {
        return Ok(EXIT_OK);
    }
    writeln!(out, "{FAILED_LINE}").map_err(super::io)?;
    Ok(EXIT_FAILED)
}

/// The files of the command line: `--config` (which wins, as in image-syncer), else
/// `--images` with an optional `--auth`.
fn load(args: &ImageSyncerArgs) -> Result<Mapping, CommandError> {
    Ok(Mapping::new(load_config(args)?)?)
}

/// The images and auth files image-syncer's flags name (no rules: destinations as written).
fn load_config(args: &ImageSyncerArgs) -> Result<Config, CommandError> {
    let env = |name: &str| std::env::var(name).ok();
    if let Some(path) = &args.config {
        if args.images.is_some() || args.auth.is_some() {
            tracing::warn!(
                "--config {} is used; --images and --auth are ignored",
                path.display()
            );
        }
        return Ok(Config::load_image_syncer_combined(path, &env)?);
    }
    let Some(images) = &args.images else {
        return Err(CommandError::Usage(
            "neither --config nor --images is given".to_owned(),
        ));
    };
    let config = Config::load_image_syncer(images, args.auth.as_deref(), &env)?;
    if args.auth.is_none() {
        tracing::warn!("no --auth file: registries are read and written anonymously unless ~/.docker/config.json has them");
    }
    Ok(config)
}

/// `--os`/`--arch` as ferry platforms: every Linux platform when neither narrows it,
/// else `linux/<arch>[/<variant>]` for each `--arch` (image-syncer's `arch:variant`).
/// Another OS is a usage error: ferry copies Linux platforms only.
pub fn platforms(os: &[String], arch: &[String]) -> Result<Vec<Platform>, CommandError> {
    if let Some(other) = os.iter().find(|o| !o.is_empty() && o.as_str() != "linux") {
        return Err(CommandError::Usage(format!(
            "--os {other}: ferry copies Linux platforms only (leave --os out, or give --os linux)"
        )));
    }
    arch.iter()
        .filter(|a| !a.is_empty())
        .map(|a| {
            let text = format!("linux/{}", a.replacen(':', "/", 1));
            text.parse::<Platform>()
                .map_err(|e| CommandError::Usage(format!("--arch {a}: {e}")))
        })
        .collect()
}

/// Lines for people on stderr or in `--log`; CI reporters on stdout; the images files.
fn reporters(args: &ImageSyncerArgs) -> Result<Reporters, CommandError> {
    let mut reporters = Reporters::default();
    match &args.log {
        Some(path) => {
            let file = create(path, "--log")?;
            reporters.push_named(
                format!("log {}", path.display()),
                Box::new(crate::report::HumanReporter::plain(file)),
            );
        }
        None => reporters.push_named("stderr", human(std::io::stderr())),
    }
    push_ci_reporters(&mut reporters);
    let format = match args.output_images_format {
        FormatArg::Yaml => ImagesFormat::Yaml,
        FormatArg::Json => ImagesFormat::Json,
    };
    let open = |path: &Option<PathBuf>, flag| path.as_deref().map(|p| create(p, flag)).transpose();
    let success = open(&args.output_success_images, "--output-success-images")?;
    let failed = open(&args.output_failed_images, "--output-failed-images")?;
    if success.is_some() || failed.is_some() {
        reporters.push_named(
            "images files",
            Box::new(ImagesReporter::new(success, failed, format)),
        );
    }
    Ok(reporters)
}

fn create(path: &Path, flag: &str) -> Result<File, CommandError> {
    File::create(path).map_err(|e| CommandError::Usage(format!("{flag} {}: {e}", path.display())))
}

/// One line at the end of the log (stderr, or the `--log` file after the reporters).
fn log_line(log: Option<&Path>, line: &str) {
    let appended = log.map(|path| {
        std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .and_then(|mut file| writeln!(file, "{line}"))
    });
    match appended {
        Some(Ok(())) => {}
        Some(Err(error)) => eprintln!("image-syncer: cannot write the log: {error}"),
        None => eprintln!("{line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn os_and_arch_become_linux_platforms() {
        assert!(platforms(&[], &[]).expect("ok").is_empty());
        assert!(platforms(&strings(&["linux", ""]), &[])
            .expect("ok")
            .is_empty());
        let chosen = platforms(&strings(&["linux"]), &strings(&["amd64", "arm64:v8"])).expect("ok");
        let shown: Vec<String> = chosen.iter().map(Platform::to_string).collect();
        assert_eq!(shown, ["linux/amd64", "linux/arm64/v8"]);
    }

    #[test]
    fn another_os_or_a_bad_arch_is_a_usage_error() {
        let error = platforms(&strings(&["windows"]), &[]).expect_err("windows");
        assert_eq!(error.exit_code(), 2);
        assert!(error.to_string().contains("--os windows"), "{error}");
        let error = platforms(&[], &strings(&["amd 64"])).expect_err("bad arch");
        assert!(error.to_string().contains("--arch amd 64"), "{error}");
    }
}
