//! libvmmresv: the memory decision a bhyve host makes when a VM starts.
//!
//! Modules, one per concept, from the ground up (each uses only those
//! listed before it):
//! - [`status`]: the status enum shared with the C ABI.
//! - [`sys`]: the kernel's `repr(C)` structs and ioctl numbers.
//! - [`pages`]: page arithmetic, size strings, `page_t` overhead (pure).
//! - [`errno`]: the one place errno values become statuses.
//! - [`files`]: bounded reads of text inputs and lock files, with their
//!   own error.
//! - [`policy`]: pure sizing and admission policy, the default target.
//! - [`ledger`]: the shared claim ledger (file, protocol, pools).
//! - [`boot`]: the boot-time setting and the host's config file.
//! - [`rundir`]: the run directory and where its setting came from.
//! - [`host`]: the host's memory from the platform's counters.
//! - [`reservoir`]: the VMM reservoir behind `/dev/vmmctl`, or a Linux
//!   hugetlb pool ([`reservoir::hugetlb`]).
//! - [`arc`]: the ZFS ARC and its per-VM reservations (in the ledger).
//! - [`admission`]: VM admission, and the in-process claim ledger.
//! - [`report`]: the host capacity report (JSON).
//! - [`ffi`]: the C ABI (`include/vmmresv.h`).
//!
//! This file only declares and re-exports; there is no logic here. The C
//! header is generated from `ffi` and `status` only: cbindgen is told to
//! skip the other modules, so their Rust constants never reach C.

#![warn(missing_docs)]

// The modules the C header must not see. cbindgen reads this file as text
// and skips a `mod` line whose doc comment is `cbindgen:ignore`. rustdoc,
// though, would show that comment as each module's summary and resolve the
// links in the module's own docs from the crate root. So rustdoc (`cfg(doc)`)
// gets the same modules through a macro, which cbindgen does not expand, and
// every other build the marked lines. Keep the two lists the same: the
// links above name every module, and `make check-doc` fails on one missing.
#[cfg(doc)]
macro_rules! rust_only_modules {
    ($($name:ident)*) => { $(pub mod $name;)* };
}
#[cfg(doc)]
rust_only_modules!(
    admission arc boot errno files host ledger pages policy report reservoir rundir sys
);
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod admission;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod arc;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod boot;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod errno;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod files;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod host;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod ledger;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod pages;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod policy;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod report;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod reservoir;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod rundir;
pub mod status;
/// cbindgen:ignore
#[cfg(not(doc))]
pub mod sys;

// The C ABI takes raw pointers from C: unsafe is its job.
#[allow(unsafe_code)]
pub mod ffi;

pub use reservoir::{OnSignal, Progress, Reservoir, ReservoirQuery, ResizeError, ResizeOp};
pub use status::{Error, Status};
