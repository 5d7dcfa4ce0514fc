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
//! This file only re-exports; there is no logic here. The C header is
//! generated from `ffi` and `status` only: the other modules are marked
//! `cbindgen:ignore`, so their Rust constants never reach C.

/// cbindgen:ignore
pub mod admission;
/// cbindgen:ignore
pub mod arc;
/// cbindgen:ignore
pub mod boot;
/// cbindgen:ignore
pub mod errno;
/// cbindgen:ignore
pub mod files;
/// cbindgen:ignore
pub mod host;
/// cbindgen:ignore
pub mod ledger;
/// cbindgen:ignore
pub mod pages;
/// cbindgen:ignore
pub mod policy;
/// cbindgen:ignore
pub mod report;
/// cbindgen:ignore
pub mod reservoir;
/// cbindgen:ignore
pub mod rundir;
pub mod status;
/// cbindgen:ignore
pub mod sys;

// The C ABI takes raw pointers from C: unsafe is its job.
#[allow(unsafe_code)]
pub mod ffi;

pub use reservoir::{OnSignal, Progress, Reservoir, ReservoirQuery, ResizeError, ResizeOp};
pub use status::{Error, Status};
