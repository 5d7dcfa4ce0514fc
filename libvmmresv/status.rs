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

/// The list, the conversions to and from the `u32` C sees and (optionally)
/// the names of a C-facing enum, from one table: the variants, each once,
/// with its name. The enum itself stays a plain `#[repr(u32)]` item (cbindgen
/// reads `Status`; docs and derives stay where they are).
///
/// Generates `ALL` (declaration order), `to_u32`, `from_u32` and, with
/// `names: f -> T`, the `const fn f(self) -> T` naming each variant. A
/// variant left out of the table is a compile error (the generated match
/// has no wildcard), so `ALL` cannot fall behind the enum.
macro_rules! c_enum {
    ($ty:ident, names: $names:ident -> $nty:ty { $($var:ident => $name:expr),+ $(,)? }) => {
        $crate::status::c_enum!($ty { $($var),+ });

        impl $ty {
            /// The variant's name.
            pub const fn $names(self) -> $nty {
                match self {
                    $($ty::$var => $name),+
                }
            }
        }
    };
    ($ty:ident { $($var:ident),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: [$ty; [$($ty::$var),+].len()] = [$($ty::$var),+];

            /// The value C sees.
            // A fieldless #[repr(u32)] enum: the cast is its discriminant.
            #[allow(clippy::as_conversions)]
            pub const fn to_u32(self) -> u32 {
                self as u32
            }

            /// The variant for a raw value from C; unknown values are `None`.
            pub fn from_u32(v: u32) -> Option<$ty> {
                $ty::ALL.iter().copied().find(|x| x.to_u32() == v)
            }
        }

        // Every variant is in the table: this match has no wildcard.
        const _: fn($ty) = |v| match v {
            $($ty::$var => ()),+
        };
    };
}
pub(crate) use c_enum;

c_enum!(Status, names: message_nul -> &'static str {
    Ok => "success\0",
    NullArgument => "a required pointer argument is NULL\0",
    InvalidArgument => "invalid argument\0",
    Panic => "internal error in libvmmresv (panic caught)\0",
    BufferTooSmall => "buffer too small\0",
    Overflow => "size arithmetic would overflow\0",
    ParseSize => "invalid size string\0",
    Permission => "permission denied (resizing the reservoir needs sys_config; an admission ledger needs write access to it and its run directory)\0",
    ResizeInProgress => "a reservoir resize is already in progress\0",
    NoSpace => "not enough space: beyond the reservoir limit, more than its free memory, or a full file system (ENOSPC)\0",
    Unaligned => "size or chunk is not page-aligned\0",
    OutOfMemory => "the kernel could not find enough memory\0",
    Interrupted => "interrupted or cancelled\0",
    NoDevice => "no vmm device (is the vmm driver loaded?)\0",
    NotVmmDevice => "not a vmm control device\0",
    InterfaceTooOld => "vmm interface older than version 9: reservoir resize not supported\0",
    Io => "operating-system error\0",
    Refused => "not enough room: the claim was refused\0",
    LedgerCorrupt => "the admission ledger file is corrupt or not a ledger\0",
    LedgerUnsafe => "the admission ledger file is not owned by this user, is a symlink, or others can write it\0",
    LedgerFull => "the admission ledger has no free slot\0",
    NotFound => "this process holds no claim for that VM\0",
    Busy => "the admission ledger kept changing or is in use; try again\0",
    Unsupported => "not supported on this platform\0",
    MalformedInput => "malformed ARC statistics, kstat or ::memstat input\0",
    Timeout => "the deadline passed first\0",
    LedgerReplaced => "the admission ledger file was replaced, renamed or removed while in use\0",
    LedgerVersion => "the admission ledger file is of another layout (version 1 with claims in use, or newer) than this library's version 2\0",
    NotHolder => "another process holds this VM's claim\0",
});

impl Status {
    /// Every status, in discriminant order (for tests and documentation).
    pub fn all() -> &'static [Status] {
        &Status::ALL
    }

    /// The description without the trailing NUL.
    pub fn message(self) -> &'static str {
        let m = self.message_nul();
        m.strip_suffix('\0').unwrap_or(m)
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
            assert!(seen.insert(s.to_u32()), "duplicate discriminant {:?}", s);
            assert!(s.to_u32() >= 7000, "{:?} could be mistaken for an errno", s);
            assert_eq!(Status::from_u32(s.to_u32()), Some(*s));
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
