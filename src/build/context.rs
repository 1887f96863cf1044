//! The build context of an extension image: its files (minus `.dockerignore`), their
//! hash for the `io.ferry.context.sha256` label, and the tar the daemon builds from.
//!
//! Owns walking, hashing and packing a context directory deterministically; it must not
//! talk to the daemon or a registry, and must not depend on mtimes or walk order.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dockerignore::Ignore;

/// A context that cannot be read or packed.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// A file or directory of the context cannot be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        cause: io::Error,
    },
    /// A `.dockerignore` line is not a valid pattern.
    #[error("{path}: bad pattern {pattern:?}: {cause}")]
    Pattern {
        /// The `.dockerignore` file.
        path: PathBuf,
        /// The pattern as written.
        pattern: String,
        /// Why it is invalid.
        cause: String,
    },
}

/// What one context entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
}

/// One entry of a context, by its path relative to the context directory.
#[derive(Debug, Clone)]
struct Entry {
    relative: PathBuf,
    kind: Kind,
    /// Permission bits (`0o755`).
    mode: u32,
}

/// A context read once: its hash and the tar of exactly what was hashed.
#[derive(Debug, Clone)]
pub struct Packed {
    /// As [`hash`] gives it.
    pub hash: String,
    /// The context as a tar: sorted, mtime 0, owner 0:0, `.dockerignore` applied.
    pub tar: Vec<u8>,
}

/// Hashes the context `dir` (minus what `.dockerignore` excludes) together with
/// `build_args`, which change the image as much as a file does: `sha256:…` over the sorted
/// relative paths, kinds, permission bits and contents, then the build args. Modification
/// times and owners never count.
pub fn hash(dir: &Path, build_args: &BTreeMap<String, String>) -> Result<String, ContextError> {
    Ok(snapshot(dir, build_args, false)?.0)
}

/// Reads the context `dir` once: its hash (as [`hash`]) and its tar.
pub fn pack(dir: &Path, build_args: &BTreeMap<String, String>) -> Result<Packed, ContextError> {
    let (hash, tar) = snapshot(dir, build_args, true)?;
    Ok(Packed {
        hash,
        tar: tar.unwrap_or_default(),
    })
}

fn snapshot(
    dir: &Path,
    build_args: &BTreeMap<String, String>,
    with_tar: bool,
) -> Result<(String, Option<Vec<u8>>), ContextError> {
    let ignore = Ignore::load(dir)?;
    let mut entries = Vec::new();
    walk(dir, Path::new(""), &ignore, &mut entries)?;
    entries.sort_by(|a, b| a.relative.as_os_str().cmp(b.relative.as_os_str()));

    let mut hasher = Sha256::new();
    let mut tar = with_tar.then(|| tar::Builder::new(Vec::new()));
    for entry in &entries {
        let read = |e: io::Error| read_error(&dir.join(&entry.relative), e);
        let (tag, payload): (&[u8], Vec<u8>) = match &entry.kind {
            Kind::Dir => (b"dir", Vec::new()),
            Kind::File => (b"file", fs::read(dir.join(&entry.relative)).map_err(read)?),
            Kind::Symlink(target) => (b"symlink", target.as_os_str().as_bytes().to_vec()),
        };
        for field in [
            tag,
            entry.relative.as_os_str().as_bytes(),
            format!("{:o}", entry.mode).as_bytes(),
            payload.len().to_string().as_bytes(),
        ] {
            hasher.update(field);
            hasher.update([0]);
        }
        hasher.update(&payload);
        if let Some(tar) = &mut tar {
            append(tar, entry, &payload).map_err(read)?;
        }
    }
    for (name, value) in build_args {
        for field in [b"build-arg".as_slice(), name.as_bytes(), value.as_bytes()] {
            hasher.update(field);
            hasher.update([0]);
        }
    }
    let tar = match tar {
        Some(tar) => Some(tar.into_inner().map_err(|e| read_error(dir, e))?),
        None => None,
    };
    Ok((format!("sha256:{}", hex::encode(hasher.finalize())), tar))
}

pub(super) fn read_error(path: &Path, cause: io::Error) -> ContextError {
    ContextError::Read {
        path: path.to_owned(),
        cause,
    }
}

/// Collects the entries under `dir/relative`, skipping ignored ones and special files.
fn walk(
    dir: &Path,
    relative: &Path,
    ignore: &Ignore,
    entries: &mut Vec<Entry>,
) -> Result<(), ContextError> {
    let here = dir.join(relative);
    let listing = fs::read_dir(&here).map_err(|e| read_error(&here, e))?;
    for item in listing {
        let item = item.map_err(|e| read_error(&here, e))?;
        let path = relative.join(item.file_name());
        let full = dir.join(&path);
        let meta = fs::symlink_metadata(&full).map_err(|e| read_error(&full, e))?;
        let kind = if meta.is_dir() {
            Kind::Dir
        } else if meta.is_file() {
            Kind::File
        } else if meta.file_type().is_symlink() {
            Kind::Symlink(fs::read_link(&full).map_err(|e| read_error(&full, e))?)
        } else {
            continue; // sockets, fifos, devices: never part of a build context
        };
        let is_dir = kind == Kind::Dir;
        if !ignore.excludes(&path) {
            entries.push(Entry {
                relative: path.clone(),
                kind,
                mode: meta.permissions().mode() & 0o7777,
            });
        }
        // An excluded directory may still hold re-included (`!`) files.
        if is_dir && (!ignore.excludes(&path) || ignore.has_exceptions()) {
            walk(dir, &path, ignore, entries)?;
        }
    }
    Ok(())
}

/// Adds one entry with a fixed mtime and owner, so equal contexts give equal tars.
fn append(tar: &mut tar::Builder<Vec<u8>>, entry: &Entry, payload: &[u8]) -> io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_mode(entry.mode);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    match &entry.kind {
        Kind::Dir => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            tar.append_data(&mut header, &entry.relative, io::empty())
        }
        Kind::File => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(payload.len() as u64);
            tar.append_data(&mut header, &entry.relative, payload)
        }
        Kind::Symlink(target) => {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, &entry.relative, target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn context(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join(path);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        }
        dir
    }

    fn no_args() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn tar_names(tar: &[u8]) -> Vec<String> {
        let mut archive = tar::Archive::new(tar);
        archive
            .entries()
            .expect("entries")
            .map(|e| {
                let e = e.expect("entry");
                let path = e.path().expect("path").display().to_string();
                assert_eq!(e.header().mtime().expect("mtime"), 0, "{path}");
                path
            })
            .collect()
    }

    const BASE: [(&str, &str); 3] = [
        ("Dockerfile", "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\n"),
        ("hello.txt", "hello"),
        ("conf/app.conf", "x=1"),
    ];

    #[test]
    fn the_hash_is_stable_and_ignores_mtimes() {
        let dir = context(&BASE);
        let first = hash(dir.path(), &no_args()).expect("hash");
        assert!(first.starts_with("sha256:") && first.len() == 71, "{first}");
        let file = fs::File::options()
            .write(true)
            .open(dir.path().join("hello.txt"))
            .expect("open");
        let past = SystemTime::now() - Duration::from_secs(86_400);
        file.set_modified(past).expect("set mtime");
        assert_eq!(hash(dir.path(), &no_args()).expect("hash"), first);
        // A second directory with the same files, written in another order.
        let twin = context(&[BASE[2], BASE[1], BASE[0]]);
        assert_eq!(hash(twin.path(), &no_args()).expect("hash"), first);
        // Packing hashes the same bytes it tars.
        assert_eq!(pack(dir.path(), &no_args()).expect("pack").hash, first);
    }

    #[test]
    fn the_hash_follows_contents_names_modes_and_build_args() {
        let dir = context(&BASE);
        let before = hash(dir.path(), &no_args()).expect("hash");
        let changed = |change: &dyn Fn(&Path)| {
            let dir = context(&BASE);
            change(dir.path());
            hash(dir.path(), &no_args()).expect("hash")
        };
        let content = changed(&|d| fs::write(d.join("hello.txt"), "hullo").expect("write"));
        let renamed =
            changed(&|d| fs::rename(d.join("hello.txt"), d.join("hi.txt")).expect("rename"));
        let mode = changed(&|d| {
            let perms = fs::Permissions::from_mode(0o755);
            fs::set_permissions(d.join("hello.txt"), perms).expect("chmod")
        });
        let added = changed(&|d| fs::write(d.join("new.txt"), "").expect("write"));
        let args = BTreeMap::from([("TZ".to_owned(), "Asia/Shanghai".to_owned())]);
        let with_args = hash(dir.path(), &args).expect("hash");
        let all = [&before, &content, &renamed, &mode, &added, &with_args];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }

    #[test]
    fn the_tar_is_sorted_with_fixed_times_and_keeps_symlinks() {
        let dir = context(&BASE);
        std::os::unix::fs::symlink("hello.txt", dir.path().join("link")).expect("symlink");
        let packed = pack(dir.path(), &no_args()).expect("pack");
        let tar = packed.tar.clone();
        assert_eq!(
            tar_names(&tar),
            ["Dockerfile", "conf", "conf/app.conf", "hello.txt", "link"]
        );
        let again = pack(dir.path(), &no_args()).expect("pack").tar;
        assert_eq!(tar, again, "byte-identical");
        let mut archive = tar::Archive::new(tar.as_slice());
        let link = archive
            .entries()
            .expect("entries")
            .map(|e| e.expect("entry"))
            .find(|e| e.header().entry_type() == tar::EntryType::Symlink)
            .expect("the symlink stays a symlink");
        let target = link.link_name().expect("link name").expect("a target");
        assert_eq!(target, Path::new("hello.txt"));
        let plain = hash(context(&BASE).path(), &no_args()).expect("hash");
        assert_ne!(packed.hash, plain, "the link is part of the hash");
    }

    #[test]
    fn dockerignore_excludes_from_hash_and_tar_but_never_the_dockerfile() {
        let mut files = BASE.to_vec();
        files.extend([
            (
                ".dockerignore",
                "# build junk\n*.log\ndocs\n!docs/keep.md\nDockerfile\n",
            ),
            ("debug.log", "noise"),
            ("docs/drop.md", "drop"),
            ("docs/keep.md", "keep"),
        ]);
        let dir = context(&files);
        let tar = pack(dir.path(), &no_args()).expect("pack").tar;
        assert_eq!(
            tar_names(&tar),
            [
                ".dockerignore",
                "Dockerfile",
                "conf",
                "conf/app.conf",
                "docs/keep.md",
                "hello.txt"
            ]
        );
        let before = hash(dir.path(), &no_args()).expect("hash");
        fs::write(dir.path().join("debug.log"), "more noise").expect("write");
        fs::write(dir.path().join("docs/drop.md"), "changed").expect("write");
        assert_eq!(hash(dir.path(), &no_args()).expect("hash"), before);
        fs::write(dir.path().join("docs/keep.md"), "changed").expect("write");
        assert_ne!(hash(dir.path(), &no_args()).expect("hash"), before);
    }

    #[test]
    fn errors_name_the_path() {
        let dir = context(&[(".dockerignore", "[z-a]\n")]);
        let err = hash(dir.path(), &no_args()).expect_err("bad pattern");
        assert!(
            err.to_string()
                .contains(".dockerignore: bad pattern \"[z-a]\""),
            "{err}"
        );
        let err = hash(&dir.path().join("gone"), &no_args()).expect_err("missing dir");
        assert!(err.to_string().starts_with("cannot read "), "{err}");
        assert!(err.to_string().contains("gone"), "{err}");
    }
}
