//! The one place errno values become statuses (what each errno means per
//! ioctl: docs/kernel.md, "Errno semantics").
//!
//! The same number means different things depending on what answered it,
//! so there is one table per source, side by side here:
//!
//! - the vmm device ([`status_of_errno`]): what its ioctls and its open
//!   mean by each errno, and what the interface version query's answer
//!   means ([`status_of_version_errno`]); the lock files of the run
//!   directory are mapped the same way;
//! - the shared ledger's files ([`status_of_ledger_errno`]): a symlink
//!   where the ledger should be is unsafe, a full file system is no space;
//! - any other file the library reads or writes (config, `/proc`,
//!   arcstats, `zfs_arc_max`, kstat): [`Status::Io`], whatever the number.
//!
//! The errno itself always travels with the status ([`Error::errno`]).

use crate::status::{Error, Status};

/// What the vmm device means by an errno.
///
/// EINVAL means "unaligned": the only EINVAL this library can provoke from
/// vmm is SET_TARGET's alignment / SIZE_MAX check (open always passes
/// O_EXCL, whose absence is the driver's other EINVAL).
pub fn status_of_errno(errno: i32) -> Status {
    match errno {
        libc::EPERM | libc::EACCES => Status::Permission,
        libc::EALREADY => Status::ResizeInProgress,
        libc::ENOSPC => Status::NoSpace,
        libc::EINVAL => Status::Unaligned,
        libc::ENOMEM => Status::OutOfMemory,
        libc::EINTR => Status::Interrupted,
        libc::ENOENT | libc::ENXIO | libc::ENODEV => Status::NoDevice,
        libc::ENOTTY => Status::NotVmmDevice,
        libc::EOVERFLOW => Status::Overflow,
        _ => Status::Io,
    }
}

/// What the answer to `VMM_INTERFACE_VERSION` at open means: other
/// drivers reject the unknown request in different words, all of which say
/// "not a vmm device"; any other errno means what the device table says.
pub fn status_of_version_errno(errno: i32) -> Status {
    match errno {
        libc::ENOTTY | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP => Status::NotVmmDevice,
        e => status_of_errno(e),
    }
}

/// What an errno from a hugetlb pool's sysfs files means
/// (`mm/hugetlb.c`): EINVAL from a write of `nr_hugepages` is a page size
/// the kernel cannot resize at run time (gigantic pages without runtime
/// support), not an alignment; a missing file is no pool.
pub fn status_of_sysfs_errno(errno: i32) -> Status {
    match errno {
        libc::EPERM | libc::EACCES => Status::Permission,
        libc::EINVAL | libc::EOPNOTSUPP => Status::Unsupported,
        libc::ENOMEM => Status::OutOfMemory,
        libc::ENOENT | libc::ENXIO | libc::ENODEV => Status::NoDevice,
        _ => Status::Io,
    }
}

/// What an errno from the shared ledger's files means.
pub fn status_of_ledger_errno(errno: i32) -> Status {
    match errno {
        // O_NOFOLLOW met a symlink: someone planted it.
        libc::ELOOP => Status::LedgerUnsafe,
        libc::EACCES | libc::EPERM => Status::Permission,
        libc::ENOSPC | libc::EDQUOT => Status::NoSpace,
        _ => Status::Io,
    }
}

/// The errno of an I/O error (EIO when the OS gave none).
pub fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// A vmm device error (or a run-directory lock file's).
pub fn device_error(errno: i32) -> Error {
    Error::with_errno(status_of_errno(errno), errno)
}

/// A vmm device's (or a run-directory lock file's) I/O error.
pub fn device_io_error(e: &std::io::Error) -> Error {
    device_error(errno_of(e))
}

/// A shared ledger file's error.
pub fn ledger_error(e: &std::io::Error) -> Error {
    let errno = errno_of(e);
    Error::with_errno(status_of_ledger_errno(errno), errno)
}

/// Reading or writing any other file failed: `Io`, with the errno when
/// the OS gave one.
pub fn file_error(errno: Option<i32>) -> Error {
    match errno {
        Some(n) => Error::with_errno(Status::Io, n),
        None => Error::new(Status::Io),
    }
}

/// Reading or writing any other file failed: `Io`, with the errno (EIO
/// when the OS gave none).
pub fn file_io_error(e: &std::io::Error) -> Error {
    file_error(Some(errno_of(e)))
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
    fn errno_mapping_is_one_status_per_kernel_meaning() {
        let cases = [
            (libc::EPERM, Status::Permission),
            (libc::EALREADY, Status::ResizeInProgress),
            (libc::ENOSPC, Status::NoSpace),
            (libc::EINVAL, Status::Unaligned),
            (libc::ENOMEM, Status::OutOfMemory),
            (libc::EINTR, Status::Interrupted),
            (libc::ENOENT, Status::NoDevice),
            (libc::ENXIO, Status::NoDevice),
            (libc::ENOTTY, Status::NotVmmDevice),
            (libc::EOVERFLOW, Status::Overflow),
            (libc::EFAULT, Status::Io),
        ];
        for (errno, want) in cases {
            assert_eq!(status_of_errno(errno), want, "errno {}", errno);
        }
        // Any driver's way of saying "unknown request" is not vmm.
        for errno in [libc::ENOTTY, libc::EINVAL, libc::ENOSYS, libc::EOPNOTSUPP] {
            assert_eq!(status_of_version_errno(errno), Status::NotVmmDevice);
        }
        assert_eq!(status_of_version_errno(libc::EACCES), Status::Permission);
    }

    #[test]
    fn ledger_files_have_their_own_table() {
        let cases = [
            (libc::ELOOP, Status::LedgerUnsafe),
            (libc::EACCES, Status::Permission),
            (libc::EPERM, Status::Permission),
            (libc::ENOSPC, Status::NoSpace),
            (libc::EDQUOT, Status::NoSpace),
            (libc::ENOENT, Status::Io),
            (libc::EINVAL, Status::Io),
        ];
        for (errno, want) in cases {
            assert_eq!(status_of_ledger_errno(errno), want, "errno {}", errno);
        }
        let e = file_error(Some(libc::EACCES));
        assert_eq!((e.status(), e.errno()), (Status::Io, Some(libc::EACCES)));
        assert_eq!(file_error(None).errno(), None);
    }
}
