//! `ferry generate --stage private`: writes the hop-2 images.yaml (mirror ref -> private ref).
//!
//! Owns where the text goes (stdout or a file, written atomically). The text itself is
//! `rules::hop2`'s.

use std::io::Write;

use super::{io, CommandError, EXIT_OK};
use crate::cli::GenerateArgs;
use crate::rules::Mapping;
use crate::rules::{hop2, Stage};

/// Writes the hop-2 config to `--output` or `out`.
pub fn run(
    config: &Mapping,
    args: &GenerateArgs,
    out: &mut (dyn Write + Send),
) -> Result<u8, CommandError> {
    if args.stage != Stage::Private {
        return Err(CommandError::Usage(
            "only --stage private can be generated: hop 1 reads images.yaml itself".to_owned(),
        ));
    }
    let text = hop2::generate(config)?;
    match &args.output {
        None => out.write_all(text.as_bytes()).map_err(io)?,
        Some(path) => write_atomically(path, &text)
            .map_err(|e| CommandError::Usage(format!("cannot write {}: {e}", path.display())))?,
    }
    Ok(EXIT_OK)
}

/// A reader of `path` sees the old file or the whole new one, never a part.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    file.persist(path).map_err(|e| e.error)?;
    Ok(())
}
