//! The one status enum shared by the Rust API and the C ABI.
//!
//! Discriminants are part of the frozen ABI: they are never renumbered or
//! reused. Errors start at 7000 (as rustls-ffi does) so a status can never be
//! mistaken for an errno; the OS errno, where there is one, travels
//! separately (`Error::errno`, `vmmresv_last_errno()`).

use core::fmt;

/// Result of every `vmmresv_*` call that can fail.
///
/// `VMMRESV_STATUS_OK` is 0; every error is >= 7000 and has a fixed value that a
/// later version of the library will never change or reuse.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// Success.
    Ok = 0,
    /// A required pointer argument was NULL.
    NullArgument = 7001,
    /// An argument is out of its documented range (bad flag, unsupported
    /// page size, zero alignment, path not UTF-8, ...).
    InvalidArgument = 7002,
    /// The library caught an internal panic at the C boundary; the handle
    /// involved may be inconsistent and should be closed.
    Panic = 7003,
    /// A caller-supplied buffer is too small; the needed size was reported.
    BufferTooSmall = 7004,
    /// A size computation would overflow 64 bits (or the kernel reported
    /// EOVERFLOW).
    Overflow = 7005,
    /// A size string could not be parsed ("64G", "512M", "75%", ...).
    ParseSize = 7006,
    /// The caller lacks the privilege for this operation (kernel EPERM:
    /// resizing needs `sys_config`).
    Permission = 7010,
    /// Another reservoir resize is already running (kernel EALREADY).
    ResizeInProgress = 7011,
    /// Growth would pass the reservoir limit, or a shrink asked for more
    /// than the free part of the reservoir (kernel ENOSPC).
    NoSpace = 7012,
    /// A size or chunk is not a multiple of the 4 KiB page, or the target
    /// is the kernel's reserved SIZE_MAX (kernel EINVAL).
    Unaligned = 7013,
    /// The kernel could not find the pages to grow the reservoir (kernel
    /// ENOMEM); the size reached is still reported.
    OutOfMemory = 7014,
    /// A resize was interrupted (kernel EINTR) and the progress callback
    /// asked to stop, or the operation was cancelled.
    Interrupted = 7015,
    /// No vmm device at the path (ENOENT / ENXIO): bhyve's vmm driver is not
    /// installed or not loaded.
    NoDevice = 7016,
    /// The path is not a vmm control device (ENOTTY).
    NotVmmDevice = 7017,
    /// The kernel's vmm interface is older than version 9 and has no
    /// VMM_RESV_SET_TARGET; resizing is refused because the same ioctl
    /// number then takes a size by value and a pointer could panic it.
    InterfaceTooOld = 7018,
    /// Any other operating-system error; see `vmmresv_last_errno()`.
    Io = 7019,
    /// A claim was refused: not enough room (the shortfall is reported).
    Refused = 7020,
    /// The admission ledger file is damaged or not a ledger (bad magic,
    /// version, size, check or slot contents). Nothing was admitted.
    LedgerCorrupt = 7021,
    /// The admission ledger file is not a regular file owned by this user,
    /// is a symlink, or others can write it. Nothing was admitted.
    LedgerUnsafe = 7022,
    /// Every slot of the admission ledger holds a claim.
    LedgerFull = 7023,
    /// This process holds no claim for that VM.
    NotFound = 7024,
    /// The ledger changed on every try of a check (claims flowing), or a
    /// claim was adopted by another process already; retry.
    Busy = 7025,
    /// Not possible on this platform (e.g. setting the ARC's size on an
    /// illumos kernel without a per-VM ARC reservation ioctl).
    Unsupported = 7026,
    /// ARC statistics, kstat or ::memstat text is malformed (the Rust
    /// error names the line).
    MalformedInput = 7027,
    /// A deadline passed first (the ARC did not shrink to the target in
    /// time).
    Timeout = 7028,
    /// The admission ledger file was renamed over, replaced or removed
    /// while in use: the path no longer names the file this handle (or
    /// its anchor) holds. Nothing was admitted. (Since 1.2.)
    LedgerReplaced = 7029,
    /// The admission ledger file has another layout version and claims
    /// in use; it is neither read nor replaced. (Since 1.2.)
    LedgerVersion = 7030,
    /// Another process holds this VM's claim: only a holder (the process
    /// that admitted it, or one that adopted it) can commit or abort it.
    /// (Since 1.2.)
    NotHolder = 7031,
}

const ALL_STATUSES: [Status; 29] = [
    Status::Ok,
    Status::NullArgument,
    Status::InvalidArgument,
    Status::Panic,
    Status::BufferTooSmall,
    Status::Overflow,
    Status::ParseSize,
    Status::Permission,
    Status::ResizeInProgress,
    Status::NoSpace,
    Status::Unaligned,
    Status::OutOfMemory,
    Status::Interrupted,
    Status::NoDevice,
    Status::NotVmmDevice,
    Status::InterfaceTooOld,
    Status::Io,
    Status::Refused,
    Status::LedgerCorrupt,
    Status::LedgerUnsafe,
    Status::LedgerFull,
    Status::NotFound,
    Status::Busy,
    Status::Unsupported,
    Status::MalformedInput,
    Status::Timeout,
    Status::LedgerReplaced,
    Status::LedgerVersion,
    Status::NotHolder,
];

impl Status {
    /// Every status, in discriminant order (for tests and documentation).
    pub fn all() -> &'static [Status] {
        &ALL_STATUSES
    }

    /// The status for a raw value coming from C; unknown values are `None`.
    pub fn from_u32(v: u32) -> Option<Status> {
        Status::all().iter().copied().find(|s| *s as u32 == v)
    }

    /// A short, stable, human-readable description (NUL-terminated so the
    /// C ABI can hand out the same static bytes).
    pub const fn message_nul(self) -> &'static str {
        match self {
            Status::Ok => "success\0",
            Status::NullArgument => "a required pointer argument is NULL\0",
            Status::InvalidArgument => "invalid argument\0",
            Status::Panic => "internal error in libvmmresv (panic caught)\0",
            Status::BufferTooSmall => "buffer too small\0",
            Status::Overflow => "size arithmetic would overflow\0",
            Status::ParseSize => "invalid size string\0",
            Status::Permission => {
                "permission denied (resizing the reservoir needs sys_config; an admission ledger needs write access to it and its run directory)\0"
            }
            Status::ResizeInProgress => "a reservoir resize is already in progress\0",
            Status::NoSpace => {
                "not enough space: beyond the reservoir limit, more than its free memory, or a full file system (ENOSPC)\0"
            }
            Status::Unaligned => "size or chunk is not page-aligned\0",
            Status::OutOfMemory => "the kernel could not find enough memory\0",
            Status::Interrupted => "interrupted or cancelled\0",
            Status::NoDevice => "no vmm device (is the vmm driver loaded?)\0",
            Status::NotVmmDevice => "not a vmm control device\0",
            Status::InterfaceTooOld => {
                "vmm interface older than version 9: reservoir resize not supported\0"
            }
            Status::Io => "operating-system error\0",
            Status::Refused => "not enough room: the claim was refused\0",
            Status::LedgerCorrupt => "the admission ledger file is corrupt or not a ledger\0",
            Status::LedgerUnsafe => {
                "the admission ledger file is not owned by this user, is a symlink, or others can write it\0"
            }
            Status::LedgerFull => "the admission ledger has no free slot\0",
            Status::NotFound => "this process holds no claim for that VM\0",
            Status::Busy => "the admission ledger kept changing or is in use; try again\0",
            Status::Unsupported => "not supported on this platform\0",
            Status::MalformedInput => "malformed ARC statistics, kstat or ::memstat input\0",
            Status::Timeout => "the deadline passed first\0",
            Status::LedgerReplaced => {
                "the admission ledger file was replaced, renamed or removed while in use\0"
            }
            Status::LedgerVersion => {
                "the admission ledger file is of another layout (version 1 with claims in use, or newer) than this library's version 2\0"
            }
            Status::NotHolder => "another process holds this VM's claim\0",
        }
    }

    /// The description without the trailing NUL.
    pub fn message(self) -> &'static str {
        let m = self.message_nul();
        &m[..m.len() - 1]
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// An error of the Rust API: a status plus the OS errno behind it, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    status: Status,
    errno: Option<i32>,
}

impl Error {
    /// An error with no OS errno behind it.
    pub const fn new(status: Status) -> Error {
        Error {
            status,
            errno: None,
        }
    }

    /// An error caused by an OS call that failed with `errno`.
    pub const fn with_errno(status: Status, errno: i32) -> Error {
        Error {
            status,
            errno: Some(errno),
        }
    }

    /// The named status.
    pub const fn status(&self) -> Status {
        self.status
    }

    /// The OS errno behind the status, if an OS call failed.
    pub const fn errno(&self) -> Option<i32> {
        self.errno
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            Some(e) => write!(
                f,
                "{} ({})",
                self.status,
                std::io::Error::from_raw_os_error(e)
            ),
            None => write!(f, "{}", self.status),
        }
    }
}

impl std::error::Error for Error {}

impl From<Status> for Error {
    fn from(s: Status) -> Error {
        Error::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discriminants_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for s in Status::all().iter().filter(|s| **s != Status::Ok) {
            assert!(seen.insert(*s as u32), "duplicate discriminant {:?}", s);
            assert!(*s as u32 >= 7000, "{:?} could be mistaken for an errno", s);
            assert_eq!(Status::from_u32(*s as u32), Some(*s));
        }
        assert_eq!(Status::from_u32(0), Some(Status::Ok));
        assert_eq!(Status::from_u32(1), None);
        assert_eq!(Status::from_u32(u32::MAX), None);
    }

    #[test]
    fn messages_are_nul_terminated_once() {
        for s in Status::all().iter().copied() {
            let m = s.message_nul();
            assert!(m.ends_with('\0'));
            assert!(!s.message().contains('\0'));
            assert!(!s.message().is_empty());
        }
    }
}
