//! Resolving a requested file name inside a served directory.
//!
//! TFTP and HTTP take file names from the network. [`FileRoot::resolve`]
//! turns such a name into a path that is certainly inside the root: the name
//! is checked as text first (no NUL or other control characters, not
//! absolute, no `..` component), then the joined path is canonicalized, which
//! follows every symlink, and must still lie under the canonical root. A
//! symlink inside the root that points inside it is fine (Debian's ipxe
//! package has some); one that points out is refused like `..`.

use std::io;
use std::path::{Path, PathBuf};

/// Longest name accepted; longer ones are refused before touching the disk.
pub const MAX_NAME: usize = 1024;

/// Why a requested name was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The name is empty (or only slashes and dots).
    #[error("empty file name")]
    Empty,
    /// The name is longer than [`MAX_NAME`].
    #[error("file name longer than {MAX_NAME} bytes")]
    TooLong,
    /// The name contains NUL or another control character.
    #[error("file name contains a control character")]
    ControlChar,
    /// The name is absolute.
    #[error("absolute paths are not served; ask for a name relative to the root")]
    Absolute,
    /// The name has a `..` component.
    #[error("\"..\" is not allowed in file names")]
    Parent,
    /// The name resolves (through a symlink) to a place outside the root.
    #[error("the file is outside the served directory")]
    Outside,
    /// No such file.
    #[error("file not found")]
    NotFound,
    /// The name is a directory or something else that is not a regular file.
    #[error("not a regular file")]
    NotAFile,
    /// The root directory itself is missing or unreadable.
    #[error("the served directory {root} is not available")]
    Root {
        /// The configured root.
        root: PathBuf,
        /// What the file system said.
        #[source]
        source: io::Error,
    },
    /// Another file system error.
    #[error("cannot read the file")]
    Io(#[source] io::Error),
}

impl PathError {
    /// True for refusals caused by the name itself (security-relevant), as
    /// opposed to a file that simply is not there.
    pub fn is_violation(&self) -> bool {
        matches!(
            self,
            PathError::ControlChar | PathError::Absolute | PathError::Parent | PathError::Outside
        )
    }
}

/// A directory whose regular files are served read-only.
#[derive(Debug, Clone)]
pub struct FileRoot {
    dir: PathBuf,
}

/// A resolved file: its canonical path and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Canonical path, inside the root.
    pub path: PathBuf,
    /// Size in bytes.
    pub len: u64,
}

impl FileRoot {
    /// Serves files under `dir`. The directory need not exist yet; requests
    /// fail with [`PathError::Root`] until it does.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FileRoot { dir: dir.into() }
    }

    /// The configured directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Checks `name` as text and returns its relative components.
    pub fn check_name(name: &str) -> Result<Vec<&str>, PathError> {
        if name.len() > MAX_NAME {
            return Err(PathError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(PathError::ControlChar);
        }
        if name.starts_with('/') || name.starts_with('\\') {
            return Err(PathError::Absolute);
        }
        let mut parts = Vec::new();
        for part in name.split('/') {
            match part {
                "" | "." => {}
                ".." => return Err(PathError::Parent),
                // A Windows-style `..\` is a literal name on Linux, but no
                // firmware file is called that; refuse it as what it means.
                p if p.split('\\').any(|s| s == "..") => return Err(PathError::Parent),
                p => parts.push(p),
            }
        }
        if parts.is_empty() {
            return Err(PathError::Empty);
        }
        Ok(parts)
    }

    /// Resolves `name` to a regular file inside the root. Blocking: call it
    /// from `spawn_blocking` on async paths.
    pub fn resolve(&self, name: &str) -> Result<Resolved, PathError> {
        let parts = Self::check_name(name)?;
        let root = self.dir.canonicalize().map_err(|source| PathError::Root {
            root: self.dir.clone(),
            source,
        })?;
        let mut joined = root.clone();
        joined.extend(parts);
        let path = joined.canonicalize().map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => PathError::NotFound,
            _ => PathError::Io(e),
        })?;
        if !path.starts_with(&root) {
            return Err(PathError::Outside);
        }
        let meta = std::fs::metadata(&path).map_err(PathError::Io)?;
        if !meta.is_file() {
            return Err(PathError::NotAFile);
        }
        Ok(Resolved {
            path,
            len: meta.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn root() -> (tempfile::TempDir, FileRoot) {
        let dir = tempfile::tempdir().unwrap();
        let served = dir.path().join("root");
        std::fs::create_dir_all(served.join("sub")).unwrap();
        std::fs::write(served.join("a.bin"), b"abc").unwrap();
        std::fs::write(served.join("sub/b.bin"), b"b").unwrap();
        std::fs::write(dir.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), served.join("out")).unwrap();
        std::os::unix::fs::symlink("sub/b.bin", served.join("in")).unwrap();
        (dir, FileRoot::new(served))
    }

    #[test]
    fn serves_files_and_inner_symlinks() {
        let (_d, root) = root();
        assert_eq!(root.resolve("a.bin").unwrap().len, 3);
        assert_eq!(root.resolve("sub//./b.bin").unwrap().len, 1);
        assert!(root.resolve("in").unwrap().path.ends_with("sub/b.bin"));
    }

    #[test]
    fn refuses_every_way_out() {
        let (_d, root) = root();
        for (name, want) in [
            ("../secret", "Parent"),
            ("sub/../../secret", "Parent"),
            ("/etc/passwd", "Absolute"),
            ("out", "Outside"),
            ("a.bin\0x", "ControlChar"),
            ("..\\secret", "Parent"),
            ("missing", "NotFound"),
            ("a.bin/x", "NotFound"),
            ("sub", "NotAFile"),
            ("", "Empty"),
            ("./", "Empty"),
        ] {
            let err = root.resolve(name).unwrap_err();
            assert!(format!("{err:?}").starts_with(want), "{name:?}: {err:?}");
        }
    }

    proptest! {
        #[test]
        fn any_name_resolves_inside_or_not_at_all(name in "[a-z./\\\\\0-]{0,24}") {
            let (_d, root) = root();
            if let Ok(found) = root.resolve(&name) {
                let canon = root.dir().canonicalize().unwrap();
                prop_assert!(found.path.starts_with(canon));
            }
        }
    }
}
