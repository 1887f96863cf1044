//! image-syncer's command line (v1.5.4), for `ferry` invoked as `image-syncer` (a symlink
//! or copy) or as `ferry image-syncer`: its flags, defaults and spellings.
//!
//! Owns the argument syntax of that mode and its one-line usage errors. It must not load
//! files or run anything: `command::image_syncer` does.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Parser, ValueEnum};

/// A docker registry image synchronization tool (image-syncer's command line, run by ferry
/// over its registry transport).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "image-syncer",
    version = concat!("(ferry ", env!("CARGO_PKG_VERSION"), ")"),
    about,
    long_about = None
)]
pub struct ImageSyncerArgs {
    /// Config file path (auth and images in one file). Deprecated in image-syncer: use
    /// --auth and --images.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Auth file path (registry or registry/namespace -> username, password, insecure).
    #[arg(long, value_name = "FILE")]
    pub auth: Option<PathBuf>,

    /// Images file path (source -> destination or list of destinations).
    #[arg(long, value_name = "FILE")]
    pub images: Option<PathBuf>,

    /// Log file path (default: stderr).
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,

    /// Images copied at once.
    #[arg(long, short = 'p', default_value_t = 5, value_name = "N", value_parser = super::at_least_one)]
    pub proc: usize,

    /// Times a failed request is tried again.
    #[arg(long, short = 'r', default_value_t = 2, value_name = "N")]
    pub retries: u32,

    /// Only platforms of this OS (repeatable); ferry copies Linux platforms only.
    #[arg(long = "os", value_name = "OS")]
    pub os: Vec<String>,

    /// Only platforms of this architecture, `arch` or `arch:variant` (repeatable).
    #[arg(long = "arch", value_name = "ARCH")]
    pub arch: Vec<String>,

    /// Copy even when the destination already serves the image (`--force` or `--force=BOOL`).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true",
          default_value = "false", value_name = "BOOL", action = clap::ArgAction::Set)]
    pub force: bool,

    /// Write the images copied in this run to this file (image-syncer's images format).
    #[arg(long, value_name = "FILE")]
    pub output_success_images: Option<PathBuf>,

    /// Write the images that failed to this file, each with its cause (ferry's addition).
    #[arg(long, value_name = "FILE")]
    pub output_failed_images: Option<PathBuf>,

    /// Format of the --output-*-images files.
    #[arg(long, value_enum, default_value = "yaml", value_name = "FORMAT")]
    pub output_images_format: ImagesFormat,
}

/// `--output-images-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImagesFormat {
    /// `"source": ["destination", …]` as YAML.
    Yaml,
    /// The same map as one line of JSON.
    Json,
}

/// True when the program was started under image-syncer's name (`./bin/image-syncer`,
/// `image-syncer-v1.5.4`, `image-syncer.exe`).
pub fn invoked_as_image_syncer(argv0: &Path) -> bool {
    argv0
        .file_name()
        .and_then(|name| name.to_str())
        .is_some_and(|name| name.starts_with("image-syncer"))
}

/// The image-syncer arguments of this command line, when it is one: started as
/// `image-syncer`, or `ferry image-syncer ARGS`. The name is kept as `argv[0]`.
pub fn image_syncer_args(args: &[OsString]) -> Option<Vec<OsString>> {
    let argv0 = Path::new(args.first()?);
    if invoked_as_image_syncer(argv0) {
        return Some(args.to_vec());
    }
    if args.get(1).is_some_and(|a| a == "image-syncer") {
        let mut rest = vec![OsString::from("image-syncer")];
        rest.extend(args[2..].iter().cloned());
        return Some(rest);
    }
    None
}

/// What a failed image-syncer parse means for the process.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseExit {
    /// `--help` or `--version`: print this on stdout, exit 0.
    Print(String),
    /// A usage error: this one line on stderr, exit 2.
    Usage(String),
}

impl ImageSyncerArgs {
    /// Parses image-syncer's flags; a usage error is one line naming the flag.
    pub fn parse_args(args: &[OsString]) -> Result<ImageSyncerArgs, ParseExit> {
        ImageSyncerArgs::try_parse_from(args).map_err(|error| parse_exit(&error))
    }
}

fn parse_exit(error: &clap::Error) -> ParseExit {
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        return ParseExit::Print(error.render().to_string());
    }
    let context = |kind| match error.get(kind) {
        Some(ContextValue::String(text)) => Some(text.clone()),
        Some(ContextValue::Strings(list)) => Some(list.join(", ")),
        _ => None,
    };
    let arg = context(ContextKind::InvalidArg).unwrap_or_default();
    let message = match error.kind() {
        ErrorKind::UnknownArgument if arg.starts_with('-') => {
            format!("unknown flag: {arg} (see image-syncer --help)")
        }
        ErrorKind::UnknownArgument => {
            format!("unexpected argument {arg:?}: image-syncer takes flags only")
        }
        _ => {
            // clap's own first line, without its "error: " prefix and the usage block.
            let text = error.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        }
    };
    ParseExit::Usage(format!("image-syncer: {message}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn args(line: &str) -> Vec<OsString> {
        line.split_whitespace().map(OsString::from).collect()
    }

    #[test]
    fn the_command_line_is_consistent() {
        ImageSyncerArgs::command().debug_assert();
    }

    #[test]
    fn the_origin_invocation_parses_with_image_syncer_defaults() {
        let parsed = ImageSyncerArgs::parse_args(&args(
            "./bin/image-syncer --auth=./config/auth.yaml --images=./issue_images.yaml --proc=10 --retries=2",
        ))
        .expect("parses");
        assert_eq!(
            parsed.auth.as_deref(),
            Some(Path::new("./config/auth.yaml"))
        );
        assert_eq!(
            parsed.images.as_deref(),
            Some(Path::new("./issue_images.yaml"))
        );
        assert_eq!((parsed.proc, parsed.retries, parsed.force), (10, 2, false));
        let defaults =
            ImageSyncerArgs::parse_args(&args("image-syncer --images i.yaml")).expect("parses");
        assert_eq!((defaults.proc, defaults.retries), (5, 2));
        assert_eq!(defaults.output_images_format, ImagesFormat::Yaml);
    }

    #[test]
    fn short_repeatable_and_boolean_forms() {
        let parsed = ImageSyncerArgs::parse_args(&args(
            "image-syncer --config c.json -p 3 -r 0 --os linux --arch amd64 --arch arm64:v8 --force --output-success-images ok.json --output-failed-images bad.json --output-images-format json --log sync.log",
        ))
        .expect("parses");
        assert_eq!((parsed.proc, parsed.retries, parsed.force), (3, 0, true));
        assert_eq!(parsed.arch, ["amd64", "arm64:v8"]);
        assert_eq!(parsed.os, ["linux"]);
        assert_eq!(parsed.output_images_format, ImagesFormat::Json);
        assert_eq!(parsed.log.as_deref(), Some(Path::new("sync.log")));
        let off = ImageSyncerArgs::parse_args(&args("image-syncer --force=false")).expect("parses");
        assert!(!off.force);
    }

    #[test]
    fn unknown_flags_are_one_line_naming_the_flag() {
        for (line, expected) in [
            (
                "image-syncer --namespace=x",
                "image-syncer: unknown flag: --namespace",
            ),
            (
                "image-syncer --images a --registry r",
                "image-syncer: unknown flag: --registry",
            ),
            (
                "image-syncer stray",
                "image-syncer: unexpected argument \"stray\"",
            ),
            (
                "image-syncer --proc ten",
                "image-syncer: invalid value 'ten' for '--proc <N>'",
            ),
        ] {
            match ImageSyncerArgs::parse_args(&args(line)) {
                Err(ParseExit::Usage(message)) => {
                    assert!(message.starts_with(expected), "{line}: {message}");
                    assert_eq!(message.lines().count(), 1, "{message}");
                }
                other => panic!("{line}: {other:?}"),
            }
        }
        assert!(matches!(
            ImageSyncerArgs::parse_args(&args("image-syncer --help")),
            Err(ParseExit::Print(help)) if help.contains("--output-success-images")
        ));
    }

    #[test]
    fn the_mode_is_chosen_by_program_name_or_subcommand() {
        assert!(image_syncer_args(&args("/usr/local/bin/image-syncer --images i.yaml")).is_some());
        assert!(image_syncer_args(&args("./bin/image-syncer-v1.5.4 --images i.yaml")).is_some());
        let sub = image_syncer_args(&args("ferry image-syncer --images i.yaml")).expect("mode");
        assert_eq!(sub, args("image-syncer --images i.yaml"));
        assert!(image_syncer_args(&args("ferry sync --images")).is_none());
        assert!(image_syncer_args(&args("/opt/ferry map nginx")).is_none());
    }
}
