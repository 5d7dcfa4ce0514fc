//! Plain files: bounded reads of the library's text inputs and lock files
//! that serialize work across threads and processes, with [`FileError`]
//! naming the file.
//!
//! Every text input (the config file, `/proc/meminfo`, arcstats, `kstat`
//! and `::memstat` output, the `zfs_arc_max` parameter) is read through
//! [`read_limited`], so a path pointed at something endless (`/dev/zero`)
//! cannot exhaust memory. The shared ledger's file is not a plain file: it
//! has its own layer (`crate::ledger::file`).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::errno;
use crate::status::{Error, Status};

/// The largest text input the library reads. A real arcstats is about
/// 8 KiB (OpenZFS 2.2: ~150 lines of at most ~60 bytes), a `::memstat`
/// table under 1 KiB, a module parameter or the config file a few bytes;
/// 1 MiB is far above all of them.
pub const MAX_INPUT_BYTES: u64 = 1 << 20;

/// A file that could not be read, written or locked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileError {
    /// Opening, reading or writing `path` failed (`errno` when the OS gave
    /// one), or a lock file is not a regular file.
    Io {
        /// The file involved.
        path: PathBuf,
        /// The OS error number, if any.
        errno: Option<i32>,
    },
    /// The file is larger than [`MAX_INPUT_BYTES`]; it was not read whole.
    TooLarge {
        /// The file involved.
        path: PathBuf,
    },
    /// Creating, opening or locking the lock file `path` (or its
    /// directory) failed.
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The OS error number.
        errno: i32,
    },
}

impl FileError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, e: &std::io::Error) -> FileError {
        FileError::Io {
            path: path.to_path_buf(),
            errno: e.raw_os_error(),
        }
    }

    fn lock(path: &Path, e: &std::io::Error) -> FileError {
        FileError::Lock {
            path: path.to_path_buf(),
            errno: errno::errno_of(e),
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Io {
                path,
                errno: Some(n),
            } => write!(
                f,
                "{}: {}",
                path.display(),
                std::io::Error::from_raw_os_error(*n)
            ),
            FileError::Io { path, errno: None } => write!(f, "{}: I/O error", path.display()),
            FileError::TooLarge { path } => write!(
                f,
                "{}: larger than {} bytes",
                path.display(),
                MAX_INPUT_BYTES
            ),
            FileError::Lock { path, errno } => write!(
                f,
                "{}: cannot lock: {}",
                path.display(),
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for FileError {}

impl From<FileError> for Error {
    fn from(e: FileError) -> Error {
        match e {
            FileError::Io { errno, .. } => errno::file_error(errno),
            // Not a file any input of the library can be: the caller named
            // the wrong one.
            FileError::TooLarge { .. } => Error::new(Status::InvalidArgument),
            FileError::Lock { errno, .. } => errno::device_error(errno),
        }
    }
}

/// Reads at most [`MAX_INPUT_BYTES`] of `path`. procfs and sysfs report a
/// size of 0, so the length is found by reading, not by `metadata()`.
pub fn read_limited(path: &Path) -> Result<Vec<u8>, FileError> {
    let file = File::open(path).map_err(|e| FileError::io(path, &e))?;
    let mut buf = Vec::new();
    // One byte more than allowed tells "exactly the limit" from "more".
    file.take(MAX_INPUT_BYTES.saturating_add(1))
        .read_to_end(&mut buf)
        .map_err(|e| FileError::io(path, &e))?;
    if u64::try_from(buf.len()).map_or(true, |n| n > MAX_INPUT_BYTES) {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    Ok(buf)
}

/// Take an exclusive `flock(2)` on `path` (created 0600 in a directory
/// created if missing): a fresh open file description, so threads exclude
/// each other like processes; released when the file is dropped or the
/// process dies.
pub fn lock_file(path: &Path) -> Result<File, FileError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
                .map_err(|e| FileError::lock(path, &e))?;
        }
    }
    // O_NOFOLLOW: a planted symlink must not redirect a root process's
    // create; O_NONBLOCK: a planted FIFO must not hang the open.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| FileError::lock(path, &e))?;
    let meta = file.metadata().map_err(|e| FileError::lock(path, &e))?;
    if !meta.file_type().is_file() {
        return Err(FileError::Io {
            path: path.to_path_buf(),
            errno: Some(libc::EINVAL),
        });
    }
    loop {
        // SAFETY: flock on a descriptor owned by `file` for this call.
        #[allow(unsafe_code)]
        let rv = unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&file), libc::LOCK_EX) };
        if rv == 0 {
            return Ok(file);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            return Err(FileError::lock(path, &e));
        }
    }
}

#[cfg(test)]
// Tests may panic, index and compute freely: a failure is a test failure.
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "reads and writes the file system")]
    fn reads_are_bounded_and_errors_name_the_file() {
        let d = std::env::temp_dir().join(format!("vmmresv-files-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let p = d.join("exact");
        std::fs::write(&p, vec![b'x'; 1 << 20]).unwrap();
        assert_eq!(read_limited(&p).unwrap().len(), 1 << 20);
        std::fs::write(&p, vec![b'x'; (1 << 20) + 1]).unwrap();
        let e = read_limited(&p).unwrap_err();
        assert_eq!(e, FileError::TooLarge { path: p.clone() });
        assert_eq!(Error::from(e).status(), Status::InvalidArgument);
        let e = read_limited(&d.join("missing")).unwrap_err();
        assert!(e.to_string().contains("missing"), "{e}");
        let e = Error::from(e);
        assert_eq!((e.status(), e.errno()), (Status::Io, Some(libc::ENOENT)));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads and writes the file system")]
    fn lock_files_are_created_with_their_directory() {
        let d = std::env::temp_dir().join(format!("vmmresv-lock-{}", std::process::id()));
        let lock = d.join("sub/x.lock");
        drop(lock_file(&lock).unwrap());
        // A directory where the lock file should be: no lock, an error.
        std::fs::create_dir_all(d.join("dir.lock")).unwrap();
        let e = Error::from(lock_file(&d.join("dir.lock")).unwrap_err());
        assert_eq!((e.status(), e.errno()), (Status::Io, Some(libc::EISDIR)));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
