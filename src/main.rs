//! The `ferry` binary: parses the command line, runs the command, maps the outcome to an
//! exit code (0 done, 1 some images failed, 2 bad config or usage). Nothing else.

use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::Parser;
use ferry::cli::Cli;
use ferry::command::{execute, CommandError, EXIT_FAILED, EXIT_USAGE};

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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version, and a bare `ferry`: clap's own help text.
        Err(error)
            if !error.use_stderr()
                || error.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            error.exit()
        }
        Err(error) => {
            // One line, as every other error: clap's first line without its usage block.
            let text = error.to_string();
            let line = text.lines().next().unwrap_or_default();
            eprintln!("ferry: {}", line.trim_start_matches("error: "));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let filter = match cli.verbose {
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
    match runtime.block_on(execute(cli, &mut stdout)) {
        Ok(code) => ExitCode::from(code),
        Err(CommandError::OutputClosed) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferry: {error}");
            ExitCode::from(error.exit_code())
        }
    }
}
