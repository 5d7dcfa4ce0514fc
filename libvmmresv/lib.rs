//! libvmmresv: the memory decision a bhyve host makes when a VM starts.
//!
//! Modules, one per concept (see ../shared/DESIGN.md):
//! - [`pages`]: page arithmetic, size strings, `page_t` overhead (pure).
//! - [`sys`]: the kernel's `repr(C)` structs and ioctl numbers.
//! - [`reservoir`]: the VMM reservoir behind `/dev/vmmctl`.
//! - [`status`]: the status enum shared with the C ABI.
//! - `ffi`: the C ABI (`include/vmmresv.h`).
//!
//! This file only re-exports; there is no logic here.

pub mod admission;
pub mod pages;
pub mod reservoir;
pub mod status;
pub mod sys;

pub mod ffi;

pub use reservoir::{Progress, Reservoir, ReservoirQuery, ResizeError};
pub use status::{Error, Status};
