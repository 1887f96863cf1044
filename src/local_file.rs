//! Files a user names (configuration, plans, CA bundles, docker's config.json): read only
//! when they are regular files after following symlinks, and only up to a size limit.
//!
//! Owns those checks; it must not interpret contents, and must never open anything but a
//! regular file (opening a FIFO blocks, `/dev/zero` never ends).

use std::fs::FileType;
use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use thiserror::Error;

/// Largest configuration or plan file read (16 MiB).
pub const MAX_CONFIG_FILE: u64 = 16 * 1024 * 1024;

/// Why a file was not read; the message follows the file name (`config/auth.yaml: …`).
#[derive(Debug, Error)]
pub enum LocalFileError {
    /// A symlink whose target does not exist.
    #[error("dangling symlink (its target does not exist)")]
    Dangling,
    /// A directory, FIFO, device or socket.
    #[error("not a regular file but a {0}")]
    NotRegular(&'static str),
    /// More bytes than the limit.
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    /// Not UTF-8 text (for [`read_text`]).
    #[error("not UTF-8 text")]
    NotText,
    /// The file system refused.
    #[error("cannot read: {0}")]
    Io(#[from] std::io::Error),
}

/// The bytes of `path`, or `None` when nothing is there (neither file nor symlink).
pub fn read(path: &Path, limit: u64) -> Result<Option<Vec<u8>>, LocalFileError> {
    let metadata = match std::fs::metadata(path) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return match std::fs::symlink_metadata(path) {
                Ok(link) if link.file_type().is_symlink() => Err(LocalFileError::Dangling),
                _ => Ok(None),
            };
        }
        Err(e) => return Err(e.into()),
    };
    check(metadata.file_type())?;
    if metadata.len() > limit {
        return Err(LocalFileError::TooLarge(limit));
    }
    let file = std::fs::File::open(path)?;
    // What was opened, not what the path named a moment ago.
    check(file.metadata()?.file_type())?;
    let mut bytes = Vec::new();
    // Files such as those in /proc say they have 0 bytes: the limit is enforced on reading.
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(LocalFileError::TooLarge(limit));
    }
    Ok(Some(bytes))
}

/// [`read`] for text files.
pub fn read_text(path: &Path, limit: u64) -> Result<Option<String>, LocalFileError> {
    match read(path, limit)? {
        Some(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| LocalFileError::NotText),
        None => Ok(None),
    }
}

fn check(file_type: FileType) -> Result<(), LocalFileError> {
    let kind = if file_type.is_file() {
        return Ok(());
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_fifo() {
        "FIFO"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_block_device() {
        "block device"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    };
    Err(LocalFileError::NotRegular(kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_up_to_the_limit() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("images.yaml");
        std::fs::write(&file, "nginx:\n").expect("write");
        assert_eq!(
            read_text(&file, 100).expect("ok").as_deref(),
            Some("nginx:\n")
        );
        let link = dir.path().join("link.yaml");
        std::os::unix::fs::symlink(&file, &link).expect("symlink");
        assert!(read(&link, 100).expect("followed").is_some());
        assert!(matches!(read(&file, 3), Err(LocalFileError::TooLarge(3))));
        assert!(read(&dir.path().join("absent"), 100).expect("ok").is_none());

        let dangling = dir.path().join("dangling.yaml");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).expect("symlink");
        assert!(matches!(
            read(&dangling, 100),
            Err(LocalFileError::Dangling)
        ));

        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let error = read(&fifo, 100).expect_err("never opened");
        assert_eq!(error.to_string(), "not a regular file but a FIFO");
        let error = read(Path::new("/dev/zero"), 100).expect_err("a device");
        assert_eq!(
            error.to_string(),
            "not a regular file but a character device"
        );
        assert!(matches!(
            read(dir.path(), 100),
            Err(LocalFileError::NotRegular("directory"))
        ));
        // /proc files claim 0 bytes: the limit holds while reading.
        assert!(matches!(
            read(Path::new("/proc/self/maps"), 10),
            Err(LocalFileError::TooLarge(10))
        ));
        let binary = dir.path().join("binary");
        std::fs::write(&binary, [0xff, 0xfe]).expect("write");
        assert!(matches!(
            read_text(&binary, 100),
            Err(LocalFileError::NotText)
        ));
    }
}
