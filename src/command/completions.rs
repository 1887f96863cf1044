//! `ferry completions bash|zsh|fish|…`: a shell completion script on stdout.
//!
//! Owns nothing but the call into clap_complete; the command line itself is `cli`'s.

use std::io::Write;

use clap::CommandFactory;

use super::{io, CommandError, EXIT_OK};
use crate::cli::{Cli, CompletionsArgs};

/// Prints the completion script of `args.shell`.
pub fn run(args: &CompletionsArgs, out: &mut (dyn Write + Send)) -> Result<u8, CommandError> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "ferry", &mut script);
    out.write_all(&script).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(EXIT_OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap_complete::Shell;

    #[test]
    fn every_shell_script_names_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            run(&CompletionsArgs { shell }, &mut out).expect("writes");
            let script = String::from_utf8(out).expect("utf-8");
            for word in ["sync", "plan", "generate", "completions", "transport"] {
                assert!(script.contains(word), "{shell}: no {word}");
            }
        }
    }
}
