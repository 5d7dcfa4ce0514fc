//! The C ABI: every `extern "C"` item of libvmmresv.so, and nothing else.
//!
//! One file per area, as the man pages group the functions; every export
//! crosses the boundary the one way `boundary.rs` describes, and an area
//! uses nothing of another: what several pass comes through the boundary.
//!
//! `include/vmmresv.h` is generated from these files by cbindgen, in the
//! order it reads them: the modules in the order declared below, each
//! file top to bottom and then its own modules. That order is the
//! header's (constants and functions; structs follow the functions that
//! use them), so it stays: an
//! area whose functions came in a later ABI version sits where the header
//! has them (admission's policy functions in admit_vm.rs, its ledger
//! origin in handoff.rs, the reservoir's ABI 1.2 resize in resize.rs, its
//! hugetlb backend in hugetlb.rs, the ARC handle of ABI 1.2 in arc_hold.rs).
//! The doc comments are the header's documentation.

#![allow(non_camel_case_types)]
// The exports are called from C, where `unsafe` means nothing; each one
// checks its pointers through the boundary's tools instead.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

// One module per group, blank lines between them: rustfmt would sort a
// group, and the header follows this order.
mod boundary;

mod reservoir;

mod pages;

mod admission;

mod arc;

mod ledger;

mod admit_vm;

mod boot;

mod handoff;

mod policy;

mod report;

mod resize;

mod hugetlb;

mod arc_hold;

// handle.rs packs a tag, an index and a generation into a pointer-sized
// handle with fixed-width shifts and masks (every value bounded by its
// mask), and indexes its slot tables only with indices it bounds first.
#[allow(
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    clippy::cast_possible_truncation,
    clippy::indexing_slicing
)]
mod handle;

pub use admission::*;
pub use admit_vm::*;
pub use arc::*;
pub use arc_hold::*;
pub use boot::*;
pub use boundary::{
    vmmresv_abi_version, vmmresv_admission, vmmresv_arc, vmmresv_arc_host, vmmresv_decision,
    vmmresv_host_memory, vmmresv_last_errno, vmmresv_ledger, vmmresv_overhead_params,
    vmmresv_progress_fn, vmmresv_reservoir, vmmresv_strerror, vmmresv_vm, VMMRESV_SIZE_UNKNOWN,
    VMMRESV_VERSION_MAJOR, VMMRESV_VERSION_MINOR, VMMRESV_VERSION_PATCH,
};
pub use handoff::*;
pub use hugetlb::*;
pub use ledger::*;
pub use pages::*;
pub use policy::*;
pub use report::*;
pub use reservoir::*;
pub use resize::*;

#[cfg(test)]
mod tests;
