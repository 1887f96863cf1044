//! The `ferry` binary: parses the command line, runs the command, maps the outcome to an
//! exit code (0 done, 1 some images failed, 2 bad config or usage). Nothing else.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use ferry::cli::image_syncer::{image_syncer_args, ImageSyncerArgs, ParseExit};
use ferry::cli::Cli;
use ferry::command::{execute, execute_image_syncer, CommandError, EXIT_FAILED, EXIT_USAGE};

fn main() -> ExitCode {
    // A bug must still read as one line (no backtrace, nothing but the panic's own text).
    std::panic::set_hook(Box::new(|info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!("ferry: internal error{at}: {}", message.replace('\n', " "));
    }));
    // Started as `image-syncer` (or `ferry image-syncer`): image-syncer's command line.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mode = match image_syncer_args(&argv) {
        Some(args) => match ImageSyncerArgs::parse_args(&args) {
            Ok(args) => Mode::ImageSyncer(args),
            Err(ParseExit::Print(text)) => {
                print!("{text}");
                return ExitCode::SUCCESS;
            }
            Err(ParseExit::Usage(line)) => {
                eprintln!("{line}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => match parse_ferry(argv) {
            Ok(cli) => Mode::Ferry(cli),
            Err(code) => return code,
        },
    };
    let verbose = match &mode {
        Mode::Ferry(cli) => cli.verbose,
        Mode::ImageSyncer(_) => 0,
    };
    let filter = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferry: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    let mut stdout = std::io::stdout();
    let (name, result) = match mode {
        Mode::Ferry(cli) => ("ferry", runtime.block_on(execute(cli, &mut stdout))),
        Mode::ImageSyncer(args) => (
            "image-syncer",
            runtime.block_on(execute_image_syncer(args, &mut stdout)),
        ),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(CommandError::OutputClosed) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{name}: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}

/// Whose command line this run speaks.
enum Mode {
    Ferry(Cli),
    ImageSyncer(ImageSyncerArgs),
}

/// ferry's own command line. `--help`, `--version` and a bare `ferry` print clap's text;
/// a usage error is one line (clap's first, without its usage block) and exit 2.
fn parse_ferry(argv: Vec<std::ffi::OsString>) -> Result<Cli, ExitCode> {
    let syncer_later = argv.iter().skip(2).any(|a| a == "image-syncer");
    match Cli::try_parse_from(argv) {
        Ok(cli) => Ok(cli),
        Err(error)
            if !error.use_stderr()
                || error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            error.exit()
        }
        Err(error) => {
            let text = error.to_string();
            let line = text.lines().next().unwrap_or_default();
            let hint = if syncer_later && error.kind() == ErrorKind::InvalidSubcommand {
                " (image-syncer mode takes image-syncer's flags only: `ferry image-syncer FLAGS`)"
            } else {
                ""
            };
            eprintln!("ferry: {}{hint}", line.trim_start_matches("error: "));
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}
