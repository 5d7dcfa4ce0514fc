//! libvmmresv: the memory decision a bhyve host makes when a VM starts.
//!
//! Modules, one per concept:
//! - [`pages`]: page arithmetic, size strings, `page_t` overhead (pure).
//! - [`sys`]: the kernel's `repr(C)` structs and ioctl numbers.
//! - [`reservoir`]: the VMM reservoir behind `/dev/vmmctl`.
//! - [`admission`]: VM admission, the claim ledgers (shared and in-process).
//! - [`status`]: the status enum shared with the C ABI.
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
pub mod status;
/// cbindgen:ignore
pub mod sys;

pub mod ffi;

pub use reservoir::{OnSignal, Progress, Reservoir, ReservoirQuery, ResizeError, ResizeOp};
pub use status::{Error, Status};
