//! The reservoir: open the vmm control device, query and resize the
//! reservoir, its default size (vmmresv_reservoir(3VMMRESV); its ABI 1.2
//! resize entry point is in resize.rs).

use core::ffi::{c_char, c_void};
use std::path::Path;

use super::boundary::{
    boundary, checked, export, free_handle, new_handle, opt_out, opt_path, out,
    vmmresv_progress_fn, vmmresv_reservoir, VMMRESV_SIZE_UNKNOWN,
};
use crate::reservoir::{Progress, Reservoir, ReservoirQuery, ResizeError};
use crate::status::{Error, Status};

/// The reservoir's counters, in bytes, as the kernel reports them
/// (`struct vmm_resv_query`). The reservoir's size is free + alloc.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_query {
    /// Reservoir memory no VM holds.
    pub free_bytes: u64,
    /// Reservoir memory held by VMs created with the reservoir flag.
    pub alloc_bytes: u64,
    /// Memory of VMs running without the reservoir ("transient"); it counts
    /// against the same limit.
    pub alloc_transient_bytes: u64,
    /// The most free + alloc + transient can ever reach on this host.
    pub limit_bytes: u64,
}

impl From<ReservoirQuery> for vmmresv_query {
    fn from(q: ReservoirQuery) -> Self {
        vmmresv_query {
            free_bytes: q.free,
            alloc_bytes: q.alloc,
            alloc_transient_bytes: q.alloc_transient,
            limit_bytes: q.limit,
        }
    }
}

/// Open the vmm control device.
///
/// `device`: path of the device, or NULL for "/dev/vmmctl". `run_dir`:
/// directory for the resize lock file, or NULL for `$VMMRESV_RUNDIR` or
/// else "/var/run/vmmresv". The device is opened O_RDWR | O_EXCL |
/// O_CLOEXEC and its interface version read. On success `*out` receives a
/// handle the caller owns and must pass to `vmmresv_reservoir_close()`; on
/// failure `*out` is set to NULL.
///
/// Errors: NULL_ARGUMENT (`out` NULL), NO_DEVICE (no vmm driver),
/// NOT_VMM_DEVICE (the path is something else), PERMISSION, IO.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_open(
    device: *const c_char,
    run_dir: *const c_char,
    out: *mut *mut vmmresv_reservoir,
) -> Status {
    export(|| {
        let out = out!(out)?;
        out.set(core::ptr::null_mut());
        let dev = opt_path!(device).unwrap_or(Path::new(crate::sys::VMM_CTL_DEV));
        let inner = Reservoir::open_at(dev, opt_path!(run_dir))?;
        out.set(new_handle(vmmresv_reservoir { inner })?);
        Ok(())
    })
}

/// Close a handle from `vmmresv_reservoir_open()` and free it. NULL is a
/// no-op, and so is a handle already closed; every later call with the
/// handle returns INVALID_ARGUMENT. Closing it while another thread still
/// uses it is the caller's bug.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_close(reservoir: *mut vmmresv_reservoir) {
    // SAFETY: this export holds no reference to the object; one another
    // thread still holds is the C caller's bug (documented).
    boundary(|| unsafe { free_handle(reservoir) })
}

/// The kernel's vmm interface version, read when the handle was opened.
/// Resizing needs version 9 or later. A hugetlb pool's handle
/// (vmmresv_reservoir_open_hugetlb()) gives 0, and can be resized.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_interface_version(
    reservoir: *const vmmresv_reservoir,
    out: *mut u32,
) -> Status {
    export(|| {
        let r = checked(reservoir)?;
        let out = out!(out)?;
        out.set(r.inner.interface_version());
        Ok(())
    })
}

/// Read the reservoir's counters into `*out`. Needs no privilege.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_query(
    reservoir: *const vmmresv_reservoir,
    out: *mut vmmresv_query,
) -> Status {
    export(|| {
        let r = checked(reservoir)?;
        let out = out!(out)?;
        let q = r.inner.query()?;
        out.set(q.into());
        Ok(())
    })
}

/// Which relative or absolute resize an export asked for.
enum Resize {
    Target,
    Add,
    Remove,
}

fn resize(
    reservoir: *const vmmresv_reservoir,
    kind: Resize,
    bytes: u64,
    chunk: u64,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    reached: *mut u64,
) -> Result<(), Error> {
    let reached = opt_out!(reached);
    reached.set(VMMRESV_SIZE_UNKNOWN);
    let r = checked(reservoir)?;
    let mut cb = |got: u64, target: u64| -> Progress {
        match progress {
            // SAFETY: the caller passed this function pointer for exactly
            // this purpose, with `arg` as its context.
            Some(f) if unsafe { f(got, target, arg) } != 0 => Progress::Cancel,
            _ => Progress::Continue,
        }
    };
    let cb_opt: Option<crate::reservoir::ProgressFn<'_>> = if progress.is_some() {
        Some(&mut cb)
    } else {
        None
    };
    let res = match kind {
        Resize::Target => r.inner.set_target(bytes, chunk, cb_opt),
        Resize::Add => r.inner.add(bytes, chunk, cb_opt),
        Resize::Remove => r.inner.remove(bytes, chunk, cb_opt),
    };
    match res {
        Ok(size) => {
            reached.set(size);
            Ok(())
        }
        Err(ResizeError { error, reached: at }) => {
            reached.set(at.unwrap_or(VMMRESV_SIZE_UNKNOWN));
            Err(error)
        }
    }
}

/// Resize the reservoir to `target_bytes` (free + alloc), in steps of
/// `chunk_bytes` (0 = one step). Both must be multiples of
/// VMMRESV_PAGESIZE. Needs the `sys_config` privilege and interface
/// version >= 9.
///
/// When the kernel is interrupted (EINTR) the resize resumes from the size
/// it reached, after calling `progress` (may be NULL) which may cancel.
/// `*reached` (may be NULL) receives the reservoir's size when the call
/// returns — on errors too, queried afresh where the kernel does not say;
/// VMMRESV_SIZE_UNKNOWN only if that query failed. Resizes made through
/// this library are serialized across threads and processes.
///
/// On a hugetlb pool (vmmresv_reservoir_open_hugetlb()) sizes and chunks
/// are multiples of the huge page, `progress` is called after every chunk
/// but the last, the size is the pool's persistent size, and a shrink
/// below the pages in use succeeds (they become surplus): see
/// vmmresv_hugetlb(3VMMRESV).
///
/// Errors: PERMISSION, RESIZE_IN_PROGRESS (a resizer outside the library),
/// NO_SPACE (beyond the limit / more than the free part), UNALIGNED,
/// OUT_OF_MEMORY, INTERRUPTED (cancelled), INTERFACE_TOO_OLD, REFUSED (it
/// would take memory pending admissions were admitted against), IO.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_set_target(
    reservoir: *const vmmresv_reservoir,
    target_bytes: u64,
    chunk_bytes: u64,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    reached: *mut u64,
) -> Status {
    export(|| {
        resize(
            reservoir,
            Resize::Target,
            target_bytes,
            chunk_bytes,
            progress,
            arg,
            reached,
        )
    })
}

/// Grow the reservoir by `bytes` (rsrvrctl -a), in steps of
/// min(`chunk_bytes`, `bytes`). Unlike rsrvrctl's query-then-set, two
/// concurrent additions through this library both take effect. Otherwise
/// as `vmmresv_reservoir_set_target()`; OVERFLOW if the sum does not fit.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_add(
    reservoir: *const vmmresv_reservoir,
    bytes: u64,
    chunk_bytes: u64,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    reached: *mut u64,
) -> Status {
    export(|| {
        resize(
            reservoir,
            Resize::Add,
            bytes,
            chunk_bytes,
            progress,
            arg,
            reached,
        )
    })
}

/// Shrink the reservoir by `bytes` (rsrvrctl -r), clamped to its current
/// size; an empty reservoir is left alone (OK). Only free reservoir memory
/// can leave: asking for more than is free gives NO_SPACE after whole
/// chunks that fit were removed, and `*reached` says where it stopped.
/// Otherwise as `vmmresv_reservoir_set_target()`.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_remove(
    reservoir: *const vmmresv_reservoir,
    bytes: u64,
    chunk_bytes: u64,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    reached: *mut u64,
) -> Status {
    export(|| {
        resize(
            reservoir,
            Resize::Remove,
            bytes,
            chunk_bytes,
            progress,
            arg,
            reached,
        )
    })
}

/// RFD 185's boot-time default reservoir size for this host: 75% of the
/// limit the kernel reports, rounded down to `chunk_bytes` (a multiple of
/// VMMRESV_PAGESIZE; 0 = the page).
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_default_target(
    reservoir: *const vmmresv_reservoir,
    chunk_bytes: u64,
    out: *mut u64,
) -> Status {
    export(|| {
        let r = checked(reservoir)?;
        let out = out!(out)?;
        out.set(r.inner.default_target(chunk_bytes)?);
        Ok(())
    })
}

/// The same default computed from a limit the caller already has: 75% of
/// `limit_bytes`, rounded down to `chunk_bytes` (0 = the page). UNALIGNED
/// if `chunk_bytes` is not a multiple of VMMRESV_PAGESIZE.
#[no_mangle]
pub extern "C" fn vmmresv_default_target_for(
    limit_bytes: u64,
    chunk_bytes: u64,
    out: *mut u64,
) -> Status {
    export(|| {
        out!(out)?.set(crate::policy::default_target_for(limit_bytes, chunk_bytes)?);
        Ok(())
    })
}
