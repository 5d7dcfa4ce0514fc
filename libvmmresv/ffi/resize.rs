//! The reservoir's C ABI added in VMMRESV_1.2: one resize entry point that
//! says what a signal does.
//!
//! VMMRESV_1.0's `vmmresv_reservoir_set_target/add/remove` resume after
//! every EINTR unless a progress callback cancels. rsrvrctl -a and -r (and
//! any caller that wants ^C to end a resize without writing a callback)
//! want the kernel's EINTR to end the call: that is the
//! `VMMRESV_RESIZE_STOP_ON_SIGNAL` flag here.

use core::ffi::c_void;

use super::boundary::{
    checked, export, opt_out, vmmresv_progress_fn, vmmresv_reservoir, VMMRESV_SIZE_UNKNOWN,
};
use crate::reservoir::{OnSignal, Progress, ProgressFn, ResizeError, ResizeOp};
use crate::status::{Error, Status};

/// `vmmresv_reservoir_resize()` op: resize to `bytes` (free + alloc), as
/// `vmmresv_reservoir_set_target()`.
pub const VMMRESV_RESIZE_TARGET: u32 = 0;
/// `vmmresv_reservoir_resize()` op: grow by `bytes`, as
/// `vmmresv_reservoir_add()`.
pub const VMMRESV_RESIZE_ADD: u32 = 1;
/// `vmmresv_reservoir_resize()` op: shrink by `bytes` (clamped to the
/// size), as `vmmresv_reservoir_remove()`.
pub const VMMRESV_RESIZE_REMOVE: u32 = 2;
/// `vmmresv_reservoir_resize()` flag: the first time the kernel stops the
/// resize for a signal (EINTR), return VMMRESV_STATUS_INTERRUPTED with the
/// size reached instead of resuming. Without it a signal never ends the
/// call (only a progress callback's nonzero answer does).
pub const VMMRESV_RESIZE_STOP_ON_SIGNAL: u32 = 1;

/// Every flag this version knows; others are INVALID_ARGUMENT, so a flag
/// added later is never silently ignored by an older library.
const KNOWN_FLAGS: u32 = VMMRESV_RESIZE_STOP_ON_SIGNAL;

/// Resize the reservoir: `op` VMMRESV_RESIZE_TARGET (to `bytes`),
/// VMMRESV_RESIZE_ADD (by `bytes`) or VMMRESV_RESIZE_REMOVE (by `bytes`,
/// clamped to the size), in steps of `chunk_bytes` (0 = one step; for add
/// and remove at most `bytes`), exactly as `vmmresv_reservoir_set_target()`,
/// `_add()` and `_remove()` do — except for what a signal does.
///
/// The kernel stops a resize with EINTR when a signal is pending: before
/// its first step too (nothing done, even with `chunk_bytes` 0), and in
/// the middle of a step that waits for memory (that step is undone). Steps
/// completed stay. With `flags` VMMRESV_RESIZE_STOP_ON_SIGNAL the call
/// then returns VMMRESV_STATUS_INTERRUPTED (vmmresv_last_errno() EINTR)
/// and `*reached` says where the reservoir stands, which may be where it
/// started; `progress` (may be NULL) is still called first, and its answer
/// does not matter. With `flags` 0 the resize resumes, after calling
/// `progress`, which may cancel — the VMMRESV_1.0 functions' behaviour.
///
/// Errors: INVALID_ARGUMENT (unknown `op` or `flags` bit), INTERRUPTED,
/// and those of `vmmresv_reservoir_set_target()`.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_resize(
    reservoir: *const vmmresv_reservoir,
    op: u32,
    bytes: u64,
    chunk_bytes: u64,
    flags: u32,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    reached: *mut u64,
) -> Status {
    export(|| {
        let reached = opt_out!(reached);
        reached.set(VMMRESV_SIZE_UNKNOWN);
        let r = checked(reservoir)?;
        let op = match op {
            VMMRESV_RESIZE_TARGET => ResizeOp::Target(bytes),
            VMMRESV_RESIZE_ADD => ResizeOp::Add(bytes),
            VMMRESV_RESIZE_REMOVE => ResizeOp::Remove(bytes),
            _ => return Err(Error::new(Status::InvalidArgument)),
        };
        if flags & !KNOWN_FLAGS != 0 {
            return Err(Error::new(Status::InvalidArgument));
        }
        let on_signal = if flags & VMMRESV_RESIZE_STOP_ON_SIGNAL != 0 {
            OnSignal::Stop
        } else {
            OnSignal::Resume
        };
        let mut cb = |got: u64, target: u64| -> Progress {
            match progress {
                // SAFETY: the caller passed this function pointer for
                // exactly this purpose, with `arg` as its context.
                Some(f) if unsafe { f(got, target, arg) } != 0 => Progress::Cancel,
                _ => Progress::Continue,
            }
        };
        let cb_opt: Option<ProgressFn<'_>> = if progress.is_some() {
            Some(&mut cb)
        } else {
            None
        };
        match r.inner.resize(op, chunk_bytes, on_signal, cb_opt) {
            Ok(size) => {
                reached.set(size);
                Ok(())
            }
            Err(ResizeError { error, reached: at }) => {
                reached.set(at.unwrap_or(VMMRESV_SIZE_UNKNOWN));
                Err(error)
            }
        }
    })
}
