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

/// A reader of `path` sees the old file or the whole new one, never a part. A symlink is
/// followed (its target is replaced, the link stays); a device or FIFO (`/dev/stdout`) is
/// written to as it is, never replaced by a file; a directory is an error. A new file gets
/// the usual mode (0644 less the umask), a replaced one keeps its mode.
fn write_atomically(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    let path = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(_) => path.to_path_buf(),
    };
    let existing = std::fs::metadata(&path).ok();
    if let Some(meta) = &existing {
        let kind = meta.file_type();
        if kind.is_dir() {
            return Err(std::io::Error::other("it is a directory"));
        }
        if kind.is_char_device() || kind.is_block_device() || kind.is_fifo() || kind.is_socket() {
            let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
            return file.write_all(text.as_bytes());
        }
    }
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(text.as_bytes())?;
    file.as_file().sync_all()?;
    let mode = match &existing {
        Some(meta) => meta.permissions().mode() & 0o7777,
        None => 0o666 & !umask(),
    };
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    file.persist(&path).map_err(|e| e.error)?;
    Ok(())
}

/// The process umask, as the mode a new file gets shows it (`File::create` makes files
/// 0666 less the umask): no libc call, no change to the process.
fn umask() -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let probe = tempfile::tempdir().ok().and_then(|dir| {
        let path = dir.path().join("probe");
        std::fs::File::create(&path).ok()?;
        std::fs::metadata(&path).ok()
    });
    match probe {
        Some(meta) => !meta.permissions().mode() & 0o777,
        None => 0o022,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};

    #[test]
    fn output_files_symlinks_and_devices() {
        let dir = tempfile::tempdir().expect("temp dir");
        let plain = dir.path().join("hop2/images.yaml");
        write_atomically(&plain, "a: b\n").expect("new file");
        let mode = std::fs::metadata(&plain)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(
            mode,
            0o666 & !umask(),
            "a new file gets the usual mode, not 0600"
        );
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomically(&plain, "c: d\n").expect("replace");
        let meta = std::fs::metadata(&plain).expect("meta");
        assert_eq!(
            meta.permissions().mode() & 0o777,
            0o640,
            "a replaced file keeps its mode"
        );

        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&plain, &link).expect("symlink");
        write_atomically(&link, "e: f\n").expect("through the link");
        assert!(std::fs::symlink_metadata(&link)
            .expect("meta")
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_to_string(&plain).expect("read"), "e: f\n");

        write_atomically(std::path::Path::new("/dev/null"), "g: h\n").expect("a device");
        assert!(std::fs::metadata("/dev/null")
            .expect("meta")
            .file_type()
            .is_char_device());

        let error = write_atomically(dir.path(), "x").expect_err("a directory");
        assert_eq!(error.to_string(), "it is a directory");
    }
}
