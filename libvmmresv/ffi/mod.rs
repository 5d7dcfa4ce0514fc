//! The C ABI: every `extern "C"` item of libvmmresv.so, and nothing else.
//!
//! Thin by design: check pointers, convert, call the Rust API, map errors.
//! Every exported body runs inside [`boundary`], which catches a panic and
//! turns it into the return type's fallback (`VMMRESV_STATUS_PANIC` for a
//! status): since Rust 1.81 a panic reaching `extern "C"` would abort the
//! caller's process instead. The OS errno of the last failed call is kept
//! per thread for `vmmresv_last_errno()`.
//!
//! `include/vmmresv.h` is generated from this file by cbindgen; the doc
//! comments below are the header's documentation.

#![allow(non_camel_case_types)]
// The exports are called from C, where `unsafe` means nothing; each one
// checks its pointers and every dereference carries a SAFETY note instead.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use core::ffi::{c_char, c_int, c_void, CStr};
use std::cell::Cell;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use crate::admission::local::LocalLedger;
use crate::admission::{Admission, ArcHost, Decision, Preference, Reason, Verdict};
use crate::arc::guard::{ArcLimits, Ceiling, Refusal};
use crate::arc::reserve::{Applied, ArcPolicy, Reservation};
use crate::arc::snapshot::HostSnapshot;
use crate::arc::wait::{wait_for_reader, Flow, WaitOptions, WaitOutcome};
use crate::arc::{desfree_slack, ArcReader, LinuxArcFacts};
use crate::ledger::Pool;
use crate::pages::{self, PageSize};
use crate::reservoir::{Progress, Reservoir, ReservoirQuery, ResizeError};
use crate::status::{Error, Status};
use std::time::Duration;

mod admit_vm;
mod boot;
mod handle;
mod handoff;
mod policy;
mod report;
mod reservoir;

pub use reservoir::*;

/// Major version of the C ABI. Functions of version node VMMRESV_1.0 keep
/// their signature and meaning for every 1.x release.
pub const VMMRESV_VERSION_MAJOR: u32 = 1;
/// Minor version: grows when functions are added (in a new version node).
pub const VMMRESV_VERSION_MINOR: u32 = 2;
/// Patch version: fixes only.
pub const VMMRESV_VERSION_PATCH: u32 = 0;

/// Reported as a size when the library could not learn it (a resize failed
/// and the reservoir could not even be queried afterwards).
pub const VMMRESV_SIZE_UNKNOWN: u64 = u64::MAX;
/// The base page size (illumos PAGESIZE on amd64): every reservoir size and
/// chunk must be a multiple of it.
pub const VMMRESV_PAGESIZE: u64 = 4096;
/// The 2 MiB large page size.
pub const VMMRESV_PAGESIZE_2M: u64 = 2_097_152;
/// The 1 GiB huge page size.
pub const VMMRESV_PAGESIZE_1G: u64 = 1_073_741_824;
/// Size of the buffer vmmresv_size_format() may need, NUL included.
pub const VMMRESV_SIZE_FORMAT_BUFSIZE: usize = 23;
/// Bytes of kernel memory one illumos `page_t` costs per 4 KiB page (amd64).
pub const VMMRESV_PAGE_T_SIZE: u64 = 120;

// Keep the C-visible constants tied to the Rust ones.
static_assertions::const_assert_eq!(VMMRESV_PAGESIZE, pages::PAGESIZE);
static_assertions::const_assert_eq!(VMMRESV_PAGESIZE_2M, pages::PAGESIZE_2M);
static_assertions::const_assert_eq!(VMMRESV_PAGESIZE_1G, pages::PAGESIZE_1G);
static_assertions::const_assert_eq!(VMMRESV_PAGE_T_SIZE, pages::PAGE_T_SIZE);
static_assertions::const_assert_eq!(VMMRESV_SIZE_FORMAT_BUFSIZE, pages::FORMAT_SIZE_MAX_LEN + 1);

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

/// Progress callback of a resize, called after each step the kernel
/// interrupted (EINTR) with the size reached so far, the target, and the
/// caller's `arg`. Return 0 to resume, nonzero to stop: the call then
/// returns `VMMRESV_STATUS_INTERRUPTED` with the size reached. Called on the
/// calling thread, while the library holds the resize lock.
pub type vmmresv_progress_fn =
    Option<unsafe extern "C" fn(reached_bytes: u64, target_bytes: u64, arg: *mut c_void) -> c_int>;

/// An open vmm control device. Opaque: create with
/// `vmmresv_reservoir_open()`, free with `vmmresv_reservoir_close()`. One
/// handle may be used by several threads at once.
pub struct vmmresv_reservoir {
    inner: Reservoir,
}

thread_local! {
    static LAST_ERRNO: Cell<c_int> = const { Cell::new(0) };
}

fn set_errno(e: c_int) {
    LAST_ERRNO.with(|c| c.set(e));
}

/// What an export returns if its body panicked.
trait Fallback {
    fn fallback() -> Self;
}

impl Fallback for Status {
    fn fallback() -> Self {
        Status::Panic
    }
}

impl Fallback for u32 {
    fn fallback() -> Self {
        0
    }
}

impl Fallback for c_int {
    fn fallback() -> Self {
        0
    }
}

impl Fallback for () {
    fn fallback() {}
}

impl Fallback for *const c_char {
    fn fallback() -> Self {
        Status::Panic.message_nul().as_ptr().cast()
    }
}

/// The panic boundary every export body runs in.
fn boundary<T: Fallback>(f: impl FnOnce() -> T) -> T {
    // AssertUnwindSafe: on a panic the only state we hand back is the
    // fallback value; a handle involved is documented as suspect.
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            set_errno(0);
            T::fallback()
        }
    }
}

/// Record an error's errno and return its status.
fn fail(e: Error) -> Status {
    set_errno(e.errno().unwrap_or(0));
    e.status()
}

fn ok() -> Status {
    set_errno(0);
    Status::Ok
}

/// Write `v` through `out` (checked non-null by the caller).
fn put<T>(out: *mut T, v: T) {
    // SAFETY: every caller has checked `out` for NULL; the C contract of
    // each function says `out` points to writable storage for one T.
    unsafe { out.write(v) }
}

/// Copy `text` and a NUL into `buf`. Callers have checked `buf` non-null
/// and its length (`buf_len >= text.len() + 1` by their C contract).
fn put_nul_terminated(text: &[u8], buf: *mut c_char) {
    // SAFETY: `buf` is non-null and holds text.len() + 1 bytes (checked by
    // every caller against the length the C caller gave); `text` is ours
    // and does not overlap it.
    unsafe {
        core::ptr::copy_nonoverlapping(text.as_ptr(), buf.cast::<u8>(), text.len());
        buf.add(text.len()).write(0);
    }
}

/// The opaque handle types. A handle given to C names a slot of its
/// type's table (handle.rs), never the object's address: a freed, stale,
/// foreign or wrong-typed handle is refused with a status without reading
/// memory the library has freed, and its free is a no-op.
trait Handle: Sized + Send + Sync + 'static {
    fn table() -> &'static handle::Table<Self>;
}

static RESERVOIRS: handle::Table<vmmresv_reservoir> = handle::Table::new(handle::TAG_RESERVOIR);
static ADMISSIONS: handle::Table<vmmresv_admission> = handle::Table::new(handle::TAG_ADMISSION);
static LEDGERS: handle::Table<vmmresv_ledger> = handle::Table::new(handle::TAG_LEDGER);

impl Handle for vmmresv_reservoir {
    fn table() -> &'static handle::Table<Self> {
        &RESERVOIRS
    }
}

impl Handle for vmmresv_admission {
    fn table() -> &'static handle::Table<Self> {
        &ADMISSIONS
    }
}

impl Handle for vmmresv_ledger {
    fn table() -> &'static handle::Table<Self> {
        &LEDGERS
    }
}

/// A handle from C: NULL gives NULL_ARGUMENT, anything but a live handle
/// of type T (a freed one included) INVALID_ARGUMENT.
fn checked<'a, T: Handle>(h: *const T) -> Result<&'a T, Status> {
    T::table().get(h)
}

/// A new handle for C, owning `obj`.
fn new_handle<T: Handle>(obj: T) -> Result<*mut T, Status> {
    T::table().insert(Box::new(obj))
}

/// Free a handle from C: NULL, a freed or a foreign handle is a no-op.
fn free_handle<T: Handle>(h: *mut T) {
    T::table().free(h)
}

/// A path argument: NULL means "the default".
fn opt_path<'a>(p: *const c_char) -> Option<&'a Path> {
    if p.is_null() {
        None
    } else {
        // SAFETY: non-null; the C contract is a NUL-terminated string that
        // lives for the duration of the call.
        let c = unsafe { CStr::from_ptr(p) };
        Some(Path::new(std::ffi::OsStr::from_bytes(c.to_bytes())))
    }
}

/// The ABI version as `(MAJOR << 16) | (MINOR << 8) | PATCH`, matching the
/// `VMMRESV_VERSION_*` macros of the header the caller compiled against
/// when the library is the same release.
#[no_mangle]
pub extern "C" fn vmmresv_abi_version() -> u32 {
    boundary(|| {
        (VMMRESV_VERSION_MAJOR << 16) | (VMMRESV_VERSION_MINOR << 8) | VMMRESV_VERSION_PATCH
    })
}

/// A static, NUL-terminated English description of `status`. Never NULL;
/// an unknown value gives "unknown vmmresv status". The string must not be
/// freed.
#[no_mangle]
pub extern "C" fn vmmresv_strerror(status: u32) -> *const c_char {
    boundary(|| match Status::from_u32(status) {
        Some(s) => s.message_nul().as_ptr().cast(),
        None => c"unknown vmmresv status".as_ptr(),
    })
}

/// The OS errno behind the last status this thread got from the library,
/// or 0 if that status had no OS error behind it (or was OK).
#[no_mangle]
pub extern "C" fn vmmresv_last_errno() -> c_int {
    boundary(|| LAST_ERRNO.with(|c| c.get()))
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
    boundary(|| {
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put(out, core::ptr::null_mut());
        let dev = opt_path(device).unwrap_or(Path::new(crate::sys::VMM_CTL_DEV));
        match Reservoir::open_at(dev, opt_path(run_dir)) {
            Ok(inner) => match new_handle(vmmresv_reservoir { inner }) {
                Ok(h) => {
                    put(out, h);
                    ok()
                }
                Err(s) => fail(Error::new(s)),
            },
            Err(e) => fail(e),
        }
    })
}

/// Close a handle from `vmmresv_reservoir_open()` and free it. NULL is a
/// no-op, and so is a handle already closed; every later call with the
/// handle returns INVALID_ARGUMENT. Closing it while another thread still
/// uses it is the caller's bug.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_close(reservoir: *mut vmmresv_reservoir) {
    boundary(|| free_handle(reservoir))
}

/// The kernel's vmm interface version, read when the handle was opened.
/// Resizing needs version 9 or later.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_interface_version(
    reservoir: *const vmmresv_reservoir,
    out: *mut u32,
) -> Status {
    boundary(|| {
        let r = match checked(reservoir) {
            Ok(r) => r,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put(out, r.inner.interface_version());
        ok()
    })
}

/// Read the reservoir's counters into `*out`. Needs no privilege.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_query(
    reservoir: *const vmmresv_reservoir,
    out: *mut vmmresv_query,
) -> Status {
    boundary(|| {
        let r = match checked(reservoir) {
            Ok(r) => r,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        match r.inner.query() {
            Ok(q) => {
                put(out, q.into());
                ok()
            }
            Err(e) => fail(e),
        }
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
) -> Status {
    if !reached.is_null() {
        put(reached, VMMRESV_SIZE_UNKNOWN);
    }
    let r = match checked(reservoir) {
        Ok(r) => r,
        Err(s) => return fail(Error::new(s)),
    };
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
            if !reached.is_null() {
                put(reached, size);
            }
            ok()
        }
        Err(ResizeError { error, reached: at }) => {
            if !reached.is_null() {
                put(reached, at.unwrap_or(VMMRESV_SIZE_UNKNOWN));
            }
            fail(error)
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
/// Errors: PERMISSION, RESIZE_IN_PROGRESS (a resizer outside the library),
/// NO_SPACE (beyond the limit / more than the free part), UNALIGNED,
/// OUT_OF_MEMORY, INTERRUPTED (cancelled), INTERFACE_TOO_OLD, IO.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_set_target(
    reservoir: *const vmmresv_reservoir,
    target_bytes: u64,
    chunk_bytes: u64,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    reached: *mut u64,
) -> Status {
    boundary(|| {
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
    boundary(|| {
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
    boundary(|| {
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
    boundary(|| {
        let r = match checked(reservoir) {
            Ok(r) => r,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        match r.inner.default_target(chunk_bytes) {
            Ok(v) => {
                put(out, v);
                ok()
            }
            Err(e) => fail(e),
        }
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
    boundary(|| {
        out_result(
            out,
            crate::policy::default_target_for(limit_bytes, chunk_bytes),
        )
    })
}

/// Store a pure function's result through `out`.
fn out_result<T>(out: *mut T, r: Result<T, Error>) -> Status {
    if out.is_null() {
        return fail(Error::new(Status::NullArgument));
    }
    match r {
        Ok(v) => {
            put(out, v);
            ok()
        }
        Err(e) => fail(e),
    }
}

fn page_size(bytes: u64) -> Result<PageSize, Error> {
    PageSize::from_bytes(bytes)
}

/// Bytes to pages of `page_size` bytes (4096, 2 MiB or 1 GiB), rounding
/// down (illumos btop). INVALID_ARGUMENT for any other page size.
#[no_mangle]
pub extern "C" fn vmmresv_btop(bytes: u64, page_size_bytes: u64, out: *mut u64) -> Status {
    boundary(|| {
        out_result(
            out,
            page_size(page_size_bytes).map(|ps| pages::btop(bytes, ps)),
        )
    })
}

/// Bytes to pages of `page_size` bytes, rounding up (illumos btopr). Never
/// wraps, even for sizes near UINT64_MAX.
#[no_mangle]
pub extern "C" fn vmmresv_btopr(bytes: u64, page_size_bytes: u64, out: *mut u64) -> Status {
    boundary(|| {
        out_result(
            out,
            page_size(page_size_bytes).map(|ps| pages::btopr(bytes, ps)),
        )
    })
}

/// Pages of `page_size` bytes to bytes (illumos ptob). OVERFLOW if the
/// result does not fit in 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_ptob(pages_count: u64, page_size_bytes: u64, out: *mut u64) -> Status {
    boundary(|| {
        out_result(
            out,
            page_size(page_size_bytes).and_then(|ps| pages::ptob(pages_count, ps)),
        )
    })
}

/// Round `bytes` up to a multiple of `align` (any nonzero value: a page
/// or a chunk). INVALID_ARGUMENT for 0, OVERFLOW if it does not fit.
#[no_mangle]
pub extern "C" fn vmmresv_round_up(bytes: u64, align: u64, out: *mut u64) -> Status {
    boundary(|| out_result(out, pages::round_up(bytes, align)))
}

/// Round `bytes` down to a multiple of `align` (nonzero).
#[no_mangle]
pub extern "C" fn vmmresv_round_down(bytes: u64, align: u64, out: *mut u64) -> Status {
    boundary(|| out_result(out, pages::round_down(bytes, align)))
}

/// Kernel memory the `page_t` structures of `pages_count` 4 KiB pages take
/// (VMMRESV_PAGE_T_SIZE each): memory that can never go to a VM.
#[no_mangle]
pub extern "C" fn vmmresv_page_t_overhead(pages_count: u64, out: *mut u64) -> Status {
    boundary(|| out_result(out, pages::page_t_overhead(pages_count)))
}

/// Parse a size as rsrvrctl and vmadm users type it: "4096" (bytes),
/// "512M", "64G", "1.5T", "64GiB" (binary units K M G T P E), or a
/// percentage of `base` ("75%"). `base` 0 means there is none: a
/// percentage is then INVALID_ARGUMENT. PARSE_SIZE for anything else,
/// OVERFLOW beyond 64 bits.
#[no_mangle]
pub extern "C" fn vmmresv_size_parse(text: *const c_char, base: u64, out: *mut u64) -> Status {
    boundary(|| {
        if text.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        // SAFETY: non-null; the C contract is a NUL-terminated string.
        let c = unsafe { CStr::from_ptr(text) };
        let r = match c.to_str() {
            Ok(s) => pages::parse_size(s, if base == 0 { None } else { Some(base) }),
            Err(_) => Err(Error::new(Status::ParseSize)),
        };
        out_result(out, r)
    })
}

/// Format `bytes` as the shortest exact size string ("64G", "1.5T",
/// "4K", "1000"), which vmmresv_size_parse() reads back to the same value.
/// Writes it NUL-terminated into `buf` of `buf_len` bytes. `*needed` (may
/// be NULL) receives the bytes required including the NUL; if `buf_len` is
/// smaller, nothing is written and BUFFER_TOO_SMALL is returned. `buf` may
/// be NULL when `buf_len` is 0 (to ask for the size).
/// VMMRESV_SIZE_FORMAT_BUFSIZE bytes always suffice.
#[no_mangle]
pub extern "C" fn vmmresv_size_format(
    bytes: u64,
    buf: *mut c_char,
    buf_len: usize,
    needed: *mut usize,
) -> Status {
    boundary(|| {
        let mut tmp = [0u8; 32];
        let len = match pages::format_size_into(bytes, &mut tmp) {
            Ok(n) => n,
            // 32 bytes hold any u64 in any format; refuse rather than panic.
            Err(_) => return fail(Error::new(Status::Overflow)),
        };
        if !needed.is_null() {
            put(needed, len + 1);
        }
        if buf_len < len + 1 {
            return fail(Error::new(Status::BufferTooSmall));
        }
        if buf.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put_nul_terminated(&tmp[..len], buf);
        ok()
    })
}

// ---------------------------------------------------------------------
// Admission

/// `preference` of vmmresv_admit(): use the reservoir or refuse the VM.
pub const VMMRESV_RESERVOIR_REQUIRE: u32 = 1;
/// `preference`: use the reservoir if it has room, else run without it.
pub const VMMRESV_RESERVOIR_PREFER: u32 = 2;
/// `preference`: do not use the reservoir.
pub const VMMRESV_RESERVOIR_NEVER: u32 = 3;

/// `decision`: create the VM with VCF_RESERVOIR_MEM; a claim is held until
/// vmmresv_commit() or vmmresv_abort().
pub const VMMRESV_DECISION_USE_RESERVOIR: u32 = 1;
/// `decision`: create the VM without the reservoir flag; a claim on the
/// room the kernel leaves for transient memory is held until
/// vmmresv_commit() or vmmresv_abort().
pub const VMMRESV_DECISION_NO_RESERVOIR: u32 = 2;
/// `decision`: do not start the VM.
pub const VMMRESV_DECISION_REFUSE: u32 = 3;

/// `reason`: the reservoir has room; the claim is held.
pub const VMMRESV_REASON_OK: u32 = 0;
/// `reason`: this VM already holds a claim (a retried admit); nothing was
/// charged twice.
pub const VMMRESV_REASON_ALREADY_ADMITTED: u32 = 1;
/// `reason`: reservoir free memory less other pending claims is short by
/// `shortfall_bytes`.
pub const VMMRESV_REASON_RESERVOIR_FULL: u32 = 2;
/// `reason`: the caller asked not to use the reservoir.
pub const VMMRESV_REASON_RESERVOIR_NOT_WANTED: u32 = 3;
/// `reason`: without the reservoir the VM would pass the kernel's limit on
/// reservoir plus transient memory, by `shortfall_bytes`.
pub const VMMRESV_REASON_TRANSIENT_LIMIT: u32 = 4;
/// `reason`: without the reservoir the VM's memory would have to come out
/// of the ARC below `arc_c_min` (OS-8005's guard: arc_c_min + VMM
/// reservations + request > ceiling), by `shortfall_bytes`.
pub const VMMRESV_REASON_ARC_GUARD: u32 = 5;
/// `reason` (vmmresv_admit_vm() only, ABI 1.1): the start would leave the
/// host's free memory below the configured memory state, by
/// `shortfall_bytes`.
pub const VMMRESV_REASON_MEMORY_STATE: u32 = 6;
/// `reason` (ABI 1.2): another process holds this VM's claim (it is
/// starting this VM now); nothing was claimed. That process commits or
/// aborts it, or hands it over (vmmresv_handoff()).
pub const VMMRESV_REASON_HELD_ELSEWHERE: u32 = 7;

static_assertions::const_assert_eq!(VMMRESV_RESERVOIR_REQUIRE, Preference::Require as u32);
static_assertions::const_assert_eq!(VMMRESV_RESERVOIR_PREFER, Preference::Prefer as u32);
static_assertions::const_assert_eq!(VMMRESV_RESERVOIR_NEVER, Preference::Never as u32);
static_assertions::const_assert_eq!(
    VMMRESV_DECISION_USE_RESERVOIR,
    Decision::UseReservoir as u32
);
static_assertions::const_assert_eq!(VMMRESV_DECISION_NO_RESERVOIR, Decision::NoReservoir as u32);
static_assertions::const_assert_eq!(VMMRESV_DECISION_REFUSE, Decision::Refuse as u32);
static_assertions::const_assert_eq!(VMMRESV_REASON_OK, Reason::Ok as u32);
static_assertions::const_assert_eq!(
    VMMRESV_REASON_ALREADY_ADMITTED,
    Reason::AlreadyAdmitted as u32
);
static_assertions::const_assert_eq!(VMMRESV_REASON_RESERVOIR_FULL, Reason::ReservoirFull as u32);
static_assertions::const_assert_eq!(
    VMMRESV_REASON_RESERVOIR_NOT_WANTED,
    Reason::ReservoirNotWanted as u32
);
static_assertions::const_assert_eq!(
    VMMRESV_REASON_TRANSIENT_LIMIT,
    Reason::TransientLimit as u32
);
static_assertions::const_assert_eq!(VMMRESV_REASON_ARC_GUARD, Reason::ArcGuard as u32);
static_assertions::const_assert_eq!(VMMRESV_REASON_MEMORY_STATE, Reason::MemoryState as u32);
static_assertions::const_assert_eq!(VMMRESV_REASON_HELD_ELSEWHERE, Reason::HeldElsewhere as u32);

/// An admission decision and the figures behind it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_decision {
    /// VMMRESV_DECISION_*.
    pub decision: u32,
    /// VMMRESV_REASON_*.
    pub reason: u32,
    /// Bytes the claim holds (guest memory rounded up to 4 KiB pages); 0
    /// when nothing is claimed.
    pub charged_bytes: u64,
    /// Bytes missing when the reservoir (or the transient limit) was
    /// short; else 0.
    pub shortfall_bytes: u64,
    /// Reservoir free bytes at the decision.
    pub free_bytes: u64,
    /// Bytes claimed by other admissions not yet committed.
    pub pending_bytes: u64,
    /// NO_RESERVOIR with an ARC host set (vmmresv_admission_set_arc()):
    /// bytes reserved for the VM in the ARC ledger; else 0.
    pub arc_reserved_bytes: u64,
    /// The ARC target that follows (to apply and wait for); else 0.
    pub arc_target_bytes: u64,
    /// The ARC's size in the host reading given; else 0.
    pub arc_size_bytes: u64,
    /// Expected milliseconds until the ARC is at the target: 0 if it is (or
    /// no reservation was made), else one ARC reap cycle (1000 ms;
    /// OS-8005). Wait for it with vmmresv_arc_wait_linux() rather than
    /// trust this.
    pub arc_expected_wait_ms: u64,
}

impl From<Verdict> for vmmresv_decision {
    fn from(v: Verdict) -> Self {
        vmmresv_decision {
            decision: v.decision as u32,
            reason: v.reason as u32,
            charged_bytes: v.charged_bytes,
            shortfall_bytes: v.shortfall_bytes,
            free_bytes: v.free_bytes,
            pending_bytes: v.pending_bytes,
            arc_reserved_bytes: v.arc.map(|a| a.reserved_bytes).unwrap_or(0),
            arc_target_bytes: v.arc.map(|a| a.target_bytes).unwrap_or(0),
            arc_size_bytes: v.arc.map(|a| a.arc_size_bytes).unwrap_or(0),
            arc_expected_wait_ms: v.arc.map(|a| a.expected_wait_ms).unwrap_or(0),
        }
    }
}

/// What vmmresv_reconcile() found and repaired.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_reconcile_report {
    /// Pending reservoir claims in the ledger before, in bytes.
    pub reservoir_claimed_before_bytes: u64,
    /// After: the sum of the live reservoir claims.
    pub reservoir_claimed_after_bytes: u64,
    /// Pending transient (no-reservoir) claims before, in bytes.
    pub transient_claimed_before_bytes: u64,
    /// After: the sum of the live transient claims.
    pub transient_claimed_after_bytes: u64,
    /// Live claims counted.
    pub live_claims: u64,
    /// Claims of dead processes removed.
    pub reclaimed_claims: u64,
    /// Bytes those dead claims held.
    pub reclaimed_bytes: u64,
    /// Reservoir free bytes, queried after the repair.
    pub reservoir_free_bytes: u64,
    /// Reservoir size (free + allocated), queried after the repair.
    pub reservoir_size_bytes: u64,
    /// Pending claims beyond what the kernel says is free: memory left the
    /// reservoir outside admission (an operator shrank it, a VM allocated
    /// without a claim, a resize stopped part-way). 0 when they agree.
    pub claims_beyond_free_bytes: u64,
}

/// An admission point: the reservoir plus the cross-process claim ledger.
/// Opaque: create with vmmresv_admission_open(), free with
/// vmmresv_admission_close(). One handle may be used by several threads.
pub struct vmmresv_admission {
    inner: Admission,
}

fn uuid_arg(p: *const c_char) -> Result<[u8; 16], Error> {
    if p.is_null() {
        return Err(Error::new(Status::NullArgument));
    }
    // SAFETY: non-null; the C contract is a NUL-terminated string.
    let c = unsafe { CStr::from_ptr(p) };
    let s = c
        .to_str()
        .map_err(|_| Error::new(Status::InvalidArgument))?;
    crate::admission::parse_uuid(s)
}

/// Open the cross-process claim ledger for admissions against
/// `reservoir`'s device. `ledger_path`: NULL for `admission.ledger` in the
/// run directory `reservoir` was opened with (by default
/// `$VMMRESV_RUNDIR`, else /var/run/vmmresv). The file is created 0600 if
/// missing; an existing one must be a regular file owned by the effective
/// uid, writable by nobody else (else LEDGER_UNSAFE), and a valid ledger
/// (else LEDGER_CORRUPT). The handle keeps its own descriptor of the
/// device: `reservoir` may be closed first. `*out` receives a handle to
/// free with vmmresv_admission_close(), or NULL on failure.
#[no_mangle]
pub extern "C" fn vmmresv_admission_open(
    reservoir: *const vmmresv_reservoir,
    ledger_path: *const c_char,
    out: *mut *mut vmmresv_admission,
) -> Status {
    boundary(|| {
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put(out, core::ptr::null_mut());
        let r = match checked(reservoir) {
            Ok(r) => r,
            Err(s) => return fail(Error::new(s)),
        };
        let res = r
            .inner
            .try_clone()
            .and_then(|own| Admission::open(own, opt_path(ledger_path)));
        match res {
            Ok(inner) => match new_handle(vmmresv_admission { inner }) {
                Ok(h) => {
                    put(out, h);
                    ok()
                }
                Err(s) => fail(Error::new(s)),
            },
            Err(e) => fail(e),
        }
    })
}

/// Close an admission handle and free it; NULL or a handle already closed
/// is a no-op, and every later call with it returns INVALID_ARGUMENT
/// (closing it while another thread still uses it is the caller's bug).
/// Claims this process holds stay in the ledger (they belong to the
/// process, not the handle) until committed, aborted, or the process exits.
#[no_mangle]
pub extern "C" fn vmmresv_admission_close(admission_handle: *mut vmmresv_admission) {
    boundary(|| free_handle(admission_handle))
}

/// Admit one VM start: `guest_bytes` of memory for the VM whose UUID is
/// `vm_uuid` (canonical 36-character text), with `preference`
/// (VMMRESV_RESERVOIR_*). `*out` receives the decision.
///
/// USE_RESERVOIR and NO_RESERVOIR hold a claim for this process until
/// vmmresv_commit() or vmmresv_abort(), or until the process dies (ABI 1.2:
/// the kernel's record lock says so, in any zone; a claim can be handed to
/// another program with vmmresv_handoff()) — an admission that needs the
/// memory, or a reconcile, then reclaims it. Commit
/// only after bhyve allocated the VM's memory. A reservoir claim is checked
/// against the reservoir's free memory, a no-reservoir claim against the
/// room the kernel leaves for transient memory (limit - free - allocated -
/// transient), each read after every other claim it competes with, so
/// concurrent admissions, in any process, never over-admit. Admitting a
/// UUID whose claim this process holds returns ALREADY_ADMITTED and charges
/// nothing twice; one another process holds is REFUSE with
/// VMMRESV_REASON_HELD_ELSEWHERE (ABI 1.2).
///
/// Errors: INVALID_ARGUMENT (bad UUID, preference or a zero size),
/// LEDGER_CORRUPT, LEDGER_FULL, LEDGER_REPLACED (the path no longer names
/// the ledger this handle opened), BUSY (the ledger's totals changed on
/// every try of a check), and the reservoir query's errors.
#[no_mangle]
pub extern "C" fn vmmresv_admit(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    guest_bytes: u64,
    preference: u32,
    out: *mut vmmresv_decision,
) -> Status {
    boundary(|| {
        let a = match checked(admission_handle) {
            Ok(a) => a,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        let uuid = match uuid_arg(vm_uuid) {
            Ok(u) => u,
            Err(e) => return fail(e),
        };
        let pref = match Preference::from_u32(preference) {
            Some(p) => p,
            None => return fail(Error::new(Status::InvalidArgument)),
        };
        match a.inner.admit(&uuid, guest_bytes, pref) {
            Ok(v) => {
                put(out, v.into());
                ok()
            }
            Err(e) => fail(e),
        }
    })
}

fn release(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released: *mut u64,
    commit: bool,
) -> Status {
    let a = match checked(admission_handle) {
        Ok(a) => a,
        Err(s) => return fail(Error::new(s)),
    };
    let uuid = match uuid_arg(vm_uuid) {
        Ok(u) => u,
        Err(e) => return fail(e),
    };
    let res = if commit {
        a.inner.commit(&uuid)
    } else {
        a.inner.abort(&uuid)
    };
    match res {
        Ok(b) => {
            if !released.is_null() {
                put(released, b);
            }
            ok()
        }
        Err(e) => fail(e),
    }
}

/// The VM now holds its reservoir memory (bhyve allocated it): drop its
/// claim. `*released_bytes` (may be NULL) receives what the claim held.
/// NOT_FOUND if this process holds no claim for `vm_uuid`.
#[no_mangle]
pub extern "C" fn vmmresv_commit(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released_bytes: *mut u64,
) -> Status {
    boundary(|| release(admission_handle, vm_uuid, released_bytes, true))
}

/// The VM will not start, or did not get its memory: drop its claim.
/// `*released_bytes` (may be NULL) receives what the claim held. NOT_FOUND
/// if this process holds no claim for `vm_uuid`.
#[no_mangle]
pub extern "C" fn vmmresv_abort(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released_bytes: *mut u64,
) -> Status {
    boundary(|| release(admission_handle, vm_uuid, released_bytes, false))
}

/// Bytes claimed by admissions not yet committed or aborted, by all
/// processes: `*reservoir_bytes` for VMs admitted to the reservoir,
/// `*transient_bytes` for VMs admitted without it. Either may be NULL.
#[no_mangle]
pub extern "C" fn vmmresv_admission_pending(
    admission_handle: *const vmmresv_admission,
    reservoir_bytes: *mut u64,
    transient_bytes: *mut u64,
) -> Status {
    boundary(|| match checked(admission_handle) {
        Ok(a) => {
            if !reservoir_bytes.is_null() {
                put(reservoir_bytes, a.inner.pending_bytes(Pool::Reservoir));
            }
            if !transient_bytes.is_null() {
                put(transient_bytes, a.inner.pending_bytes(Pool::Transient));
            }
            ok()
        }
        Err(s) => fail(Error::new(s)),
    })
}

/// Reclaim the claims of dead processes, check each total against the
/// live claims (repairing one that does not add up) and compare the result
/// with a fresh reservoir query; `*out` receives the findings. Admission
/// does the same by itself when a claim would otherwise be refused; this
/// is for operators and periodic checks. Nothing waits for anyone: BUSY
/// only if a total changed on every one of many tries (claims flowing).
#[no_mangle]
pub extern "C" fn vmmresv_reconcile(
    admission_handle: *mut vmmresv_admission,
    out: *mut vmmresv_reconcile_report,
) -> Status {
    boundary(|| {
        let a = match checked(admission_handle) {
            Ok(a) => a,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        match a.inner.reconcile() {
            Ok(r) => {
                let b = |p: u64| p.saturating_mul(pages::PAGESIZE);
                put(
                    out,
                    vmmresv_reconcile_report {
                        reservoir_claimed_before_bytes: b(r.ledger.claimed_before[0]),
                        reservoir_claimed_after_bytes: b(r.ledger.claimed_after[0]),
                        transient_claimed_before_bytes: b(r.ledger.claimed_before[1]),
                        transient_claimed_after_bytes: b(r.ledger.claimed_after[1]),
                        live_claims: r.ledger.live_claims,
                        reclaimed_claims: r.ledger.reclaimed_slots,
                        reclaimed_bytes: b(r.ledger.reclaimed_pages),
                        reservoir_free_bytes: r.reservoir.free,
                        reservoir_size_bytes: r.reservoir.size(),
                        claims_beyond_free_bytes: r.claims_beyond_free_bytes,
                    },
                );
                ok()
            }
            Err(e) => fail(e),
        }
    })
}

// ---------------------------------------------------------------------
// ARC (OS-8005)

/// What the ARC looks like and what reservations are checked against, in
/// bytes. Fill it with vmmresv_arc_read_linux() or vmmresv_arc_read_kstat(),
/// then adjust `ceiling_bytes` and `slack_bytes` if wanted.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_arc_host {
    /// `arc_c_min`: the ARC never shrinks below it.
    pub arc_c_min_bytes: u64,
    /// `arc_c_max`: the ARC never grows above it.
    pub arc_c_max_bytes: u64,
    /// The ARC's size now (arcstats `size`).
    pub arc_size_bytes: u64,
    /// Memory the ARC knows of (Linux arcstats `memory_all_bytes`); 0 if
    /// unknown (illumos arcstats has no such field).
    pub physmem_bytes: u64,
    /// What reservations are checked against: 0 for `arc_c_max` (as the
    /// illumos-joyent OS-8005 code does), else a budget in bytes (physical
    /// memory, or free + ZFS file data + VMM memory from ::memstat).
    pub ceiling_bytes: u64,
    /// Extra room the target asks for, because others allocate while the
    /// ARC shrinks; the readers set physmem/128 (OS-8005's desfree), or 0
    /// when physmem is unknown.
    pub slack_bytes: u64,
}

impl vmmresv_arc_host {
    fn policy(&self) -> Result<ArcPolicy, Error> {
        if self.arc_c_min_bytes > self.arc_c_max_bytes {
            return Err(Error::new(Status::InvalidArgument));
        }
        Ok(ArcPolicy {
            limits: ArcLimits {
                arc_c_min: self.arc_c_min_bytes,
                arc_c_max: self.arc_c_max_bytes,
            },
            ceiling: if self.ceiling_bytes == 0 {
                Ceiling::ArcCMax
            } else {
                Ceiling::Budget(self.ceiling_bytes)
            },
            slack: self.slack_bytes,
        })
    }

    fn from_snapshot(s: &HostSnapshot) -> Result<vmmresv_arc_host, Error> {
        let missing = || Error::new(Status::MalformedInput);
        let physmem = s.physmem.unwrap_or(0);
        Ok(vmmresv_arc_host {
            arc_c_min_bytes: s.arc_c_min.ok_or_else(missing)?,
            arc_c_max_bytes: s.arc_c_max.ok_or_else(missing)?,
            arc_size_bytes: s.arc_size.ok_or_else(missing)?,
            physmem_bytes: physmem,
            ceiling_bytes: 0,
            slack_bytes: desfree_slack(physmem),
        })
    }
}

/// An ARC reservation's outcome.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_arc_reservation {
    /// 1 if the VM holds a reservation now, 0 if it was refused.
    pub reserved: u32,
    /// 1 if it already held one (nothing charged twice).
    pub already: u32,
    /// Bytes the VM holds (its request rounded up to 4 KiB pages).
    pub bytes: u64,
    /// When refused: how much arc_c_min + reservations + request exceed
    /// the ceiling by.
    pub shortfall_bytes: u64,
    /// The ARC target that follows from the ledger now.
    pub target_bytes: u64,
    /// All VMs' ARC reservations (OS-8005's arc_virt_machine_reserved).
    pub total_reserved_bytes: u64,
}

fn arc_host_arg(host: *const vmmresv_arc_host) -> Result<ArcPolicy, Error> {
    if host.is_null() {
        return Err(Error::new(Status::NullArgument));
    }
    // SAFETY: non-null; the C contract is a readable vmmresv_arc_host.
    unsafe { *host }.policy()
}

/// Read Linux OpenZFS's `<root>/proc/spl/kstat/zfs/arcstats` (`root` NULL
/// for "/") into `*out`. MALFORMED_INPUT if the file is not arcstats or
/// lacks `c_min`, `c_max` or `size`; IO if it cannot be read.
#[no_mangle]
pub extern "C" fn vmmresv_arc_read_linux(
    root: *const c_char,
    out: *mut vmmresv_arc_host,
) -> Status {
    boundary(|| {
        let root = opt_path(root).unwrap_or(Path::new("/"));
        let r = ArcReader::linux(root)
            .snapshot()
            .map_err(Error::from)
            .and_then(|s| vmmresv_arc_host::from_snapshot(&s));
        out_result(out, r)
    })
}

/// Read a file of illumos `kstat -p zfs:0:arcstats` output into `*out`
/// (the library does not run kstat). `physmem_bytes` and `slack_bytes`
/// are 0: illumos arcstats has no memory total.
#[no_mangle]
pub extern "C" fn vmmresv_arc_read_kstat(
    path: *const c_char,
    out: *mut vmmresv_arc_host,
) -> Status {
    boundary(|| {
        let Some(p) = opt_path(path) else {
            return fail(Error::new(Status::NullArgument));
        };
        let r = ArcReader::kstat_p_file(p)
            .snapshot()
            .map_err(Error::from)
            .and_then(|s| vmmresv_arc_host::from_snapshot(&s));
        out_result(out, r)
    })
}

/// Use `host` for this handle's NO_RESERVOIR decisions (NULL: stop): each
/// then also reserves the VM's memory in the ARC ledger, is refused with
/// VMMRESV_REASON_ARC_GUARD if the ARC would have to go below arc_c_min,
/// and reports the ARC target and expected wait in its decision. Call it
/// again with a fresh reading to update the ARC's size.
#[no_mangle]
pub extern "C" fn vmmresv_admission_set_arc(
    admission_handle: *const vmmresv_admission,
    host: *const vmmresv_arc_host,
) -> Status {
    boundary(|| {
        let a = match checked(admission_handle) {
            Ok(a) => a,
            Err(s) => return fail(Error::new(s)),
        };
        let setting = if host.is_null() {
            None
        } else {
            match arc_host_arg(host) {
                Ok(policy) => Some(ArcHost {
                    policy,
                    // SAFETY: arc_host_arg checked it non-null; readable
                    // by the C contract.
                    arc_size: unsafe { (*host).arc_size_bytes },
                }),
                Err(e) => return fail(e),
            }
        };
        a.inner.set_arc(setting);
        ok()
    })
}

/// Reserve `bytes` of ARC room for VM `vm_uuid` (OS-8005's per-VM
/// reservation), held by this process until vmmresv_arc_release() or its
/// exit. Idempotent per VM. Refused (`reserved` 0, with the shortfall)
/// when arc_c_min + all reservations + `bytes` would pass the ceiling —
/// compared in pages, one unit, unlike the original kernel code.
#[no_mangle]
pub extern "C" fn vmmresv_arc_reserve(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    bytes: u64,
    host: *const vmmresv_arc_host,
    out: *mut vmmresv_arc_reservation,
) -> Status {
    boundary(|| {
        let a = match checked(admission_handle) {
            Ok(a) => a,
            Err(s) => return fail(Error::new(s)),
        };
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        let (uuid, policy) = match uuid_arg(vm_uuid).and_then(|u| Ok((u, arc_host_arg(host)?))) {
            Ok(v) => v,
            Err(e) => return fail(e),
        };
        match a.inner.arc_reserve(&uuid, bytes, &policy) {
            Ok(Reservation::Reserved(r)) => {
                put(
                    out,
                    vmmresv_arc_reservation {
                        reserved: 1,
                        already: u32::from(r.already),
                        bytes: r.bytes,
                        shortfall_bytes: 0,
                        target_bytes: r.target.target_bytes,
                        total_reserved_bytes: r.target.reserved_bytes,
                    },
                );
                ok()
            }
            Ok(Reservation::Refused(refusal)) => {
                let shortfall = match refusal {
                    Refusal::Shortfall {
                        shortfall_bytes, ..
                    } => shortfall_bytes,
                    Refusal::Overflow => u64::MAX,
                };
                let t = a
                    .inner
                    .arc_target(&policy)
                    .map(|t| (t.target_bytes, t.reserved_bytes));
                let (target, total) = t.unwrap_or((0, 0));
                put(
                    out,
                    vmmresv_arc_reservation {
                        reserved: 0,
                        already: 0,
                        bytes: 0,
                        shortfall_bytes: shortfall,
                        target_bytes: target,
                        total_reserved_bytes: total,
                    },
                );
                ok()
            }
            Err(e) => fail(e),
        }
    })
}

/// Release VM `vm_uuid`'s ARC reservation (on destroy). Idempotent: a VM
/// without one releases 0 bytes. `*released_bytes` may be NULL. NOT_FOUND
/// if another live process holds it.
#[no_mangle]
pub extern "C" fn vmmresv_arc_release(
    admission_handle: *mut vmmresv_admission,
    vm_uuid: *const c_char,
    released_bytes: *mut u64,
) -> Status {
    boundary(|| {
        let a = match checked(admission_handle) {
            Ok(a) => a,
            Err(s) => return fail(Error::new(s)),
        };
        match uuid_arg(vm_uuid).and_then(|u| a.inner.arc_release(&u)) {
            Ok(b) => {
                if !released_bytes.is_null() {
                    put(released_bytes, b);
                }
                ok()
            }
            Err(e) => fail(e),
        }
    })
}

/// Make Linux OpenZFS follow the ARC ledger: write the target to
/// `<root>/sys/module/zfs/parameters/zfs_arc_max` (`root` NULL for "/")
/// while any VM holds a reservation, remembering the original in the run
/// directory, and write the original back once none does. `*written_bytes`
/// (may be NULL) receives the value written, or 0 if nothing was. REFUSED
/// for a target OpenZFS would ignore (below 64 MiB, not above arc_c_min,
/// not below all memory); UNSUPPORTED when the original was 0 (the module
/// default cannot be written back on a running system).
#[no_mangle]
pub extern "C" fn vmmresv_arc_apply_linux(
    admission_handle: *mut vmmresv_admission,
    root: *const c_char,
    host: *const vmmresv_arc_host,
    written_bytes: *mut u64,
) -> Status {
    boundary(|| {
        if !written_bytes.is_null() {
            put(written_bytes, 0);
        }
        let a = match checked(admission_handle) {
            Ok(a) => a,
            Err(s) => return fail(Error::new(s)),
        };
        let policy = match arc_host_arg(host) {
            Ok(p) => p,
            Err(e) => return fail(e),
        };
        // SAFETY: arc_host_arg checked `host` non-null and readable.
        let h = unsafe { *host };
        let facts = LinuxArcFacts {
            all_memory: h.physmem_bytes,
            arc_c_min: h.arc_c_min_bytes,
        };
        let root = opt_path(root).unwrap_or(Path::new("/"));
        match a.inner.arc_apply_linux(&policy, &facts, root) {
            Ok(Applied::Limited { zfs_arc_max, .. }) | Ok(Applied::Restored { zfs_arc_max }) => {
                if !written_bytes.is_null() {
                    put(written_bytes, zfs_arc_max);
                }
                ok()
            }
            Ok(Applied::Unchanged) => ok(),
            Ok(Applied::CannotRestoreDefault) => fail(Error::new(Status::Unsupported)),
            Err(e) => fail(e),
        }
    })
}

/// illumos: apply VM `vm_name`'s ARC reservation of `bytes` with OS-8005's
/// per-VM ioctl (VM_ARC_RESV on /dev/vmm/`vm_name`), where the kernel has
/// it (illumos-joyent, in either of its two encodings: by value, or a
/// pointer to a size_t, chosen by the kernel's interface version or else
/// by trying each). UNSUPPORTED on every other kernel (the ioctl answers
/// ENOTTY): illumos has no run-time zfs_arc_max, and the
/// library reports that rather than pretend. NO_DEVICE if the VM does not
/// exist; OUT_OF_MEMORY if that kernel's own guard refuses.
#[no_mangle]
pub extern "C" fn vmmresv_arc_apply_illumos(vm_name: *const c_char, bytes: u64) -> Status {
    boundary(|| {
        if vm_name.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        // SAFETY: non-null; the C contract is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr(vm_name) }.to_bytes();
        if name.is_empty() || name.contains(&b'/') || name.len() >= crate::sys::VM_MAX_NAMELEN {
            return fail(Error::new(Status::InvalidArgument));
        }
        let dev = Path::new("/dev/vmm").join(std::ffi::OsStr::from_bytes(name));
        match crate::arc::reserve::apply_illumos(&dev, bytes) {
            Ok(_) => ok(),
            Err(e) => fail(e),
        }
    })
}

/// Wait until Linux OpenZFS's ARC (`<root>/proc/spl/kstat/zfs/arcstats`,
/// `root` NULL for "/") is at or below `goal_bytes` (a target plus its
/// slack), sampling every 250 ms, for at most `deadline_ms`. `progress`
/// (may be NULL) is called after each sample with the ARC's size and the
/// goal, and may cancel (nonzero). `*arc_size_bytes` (may be NULL)
/// receives the last size seen. OK when reached; TIMEOUT at the deadline;
/// INTERRUPTED when cancelled.
#[no_mangle]
pub extern "C" fn vmmresv_arc_wait_linux(
    root: *const c_char,
    goal_bytes: u64,
    deadline_ms: u32,
    progress: vmmresv_progress_fn,
    arg: *mut c_void,
    arc_size_bytes: *mut u64,
) -> Status {
    boundary(|| {
        let root = opt_path(root).unwrap_or(Path::new("/"));
        let reader = ArcReader::linux(root);
        let opts = WaitOptions::new(goal_bytes, Duration::from_millis(u64::from(deadline_ms)));
        let res = wait_for_reader(&reader, &opts, |p| match progress {
            // SAFETY: the caller's callback, called as documented.
            Some(f) if unsafe { f(p.arc_size, p.goal, arg) } != 0 => Flow::Cancel,
            _ => Flow::Continue,
        });
        match res {
            Ok(outcome) => {
                if !arc_size_bytes.is_null() {
                    put(arc_size_bytes, outcome.progress().arc_size);
                }
                match outcome {
                    WaitOutcome::Reached(_) => ok(),
                    WaitOutcome::Deadline(_) => fail(Error::new(Status::Timeout)),
                    WaitOutcome::Cancelled(_) => fail(Error::new(Status::Interrupted)),
                }
            }
            Err(e) => fail(e.into()),
        }
    })
}

// ---------------------------------------------------------------------
// In-process ledger

/// An in-process claim ledger: a capacity and claims in pages, claimed and
/// released lock-free (atomics only: no lock, no system call, no
/// allocation) by any number of threads, never over-admitting. Only
/// vmmresv_ledger_set_capacity() takes a lock (changes of capacity are
/// serialized, as memcg requires). For a
/// process that admits many things itself (a VM manager with its own
/// budget); admissions across processes use vmmresv_admit(). Create with
/// vmmresv_ledger_new(), free with vmmresv_ledger_free().
pub struct vmmresv_ledger {
    inner: LocalLedger,
}

/// Create an in-process ledger of `capacity_pages` pages (at most 2^48 - 1).
/// `*out` receives a handle to free with vmmresv_ledger_free(), or NULL on
/// failure (INVALID_ARGUMENT for a capacity too large).
#[no_mangle]
pub extern "C" fn vmmresv_ledger_new(capacity_pages: u64, out: *mut *mut vmmresv_ledger) -> Status {
    boundary(|| {
        if out.is_null() {
            return fail(Error::new(Status::NullArgument));
        }
        put(out, core::ptr::null_mut());
        match LocalLedger::new(capacity_pages) {
            Ok(inner) => match new_handle(vmmresv_ledger { inner }) {
                Ok(h) => {
                    put(out, h);
                    ok()
                }
                Err(s) => fail(Error::new(s)),
            },
            Err(e) => fail(e),
        }
    })
}

/// Free a ledger; NULL or a ledger already freed is a no-op, and every
/// later call with it returns INVALID_ARGUMENT. Freeing it while another
/// thread still uses it is the caller's bug.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_free(ledger: *mut vmmresv_ledger) {
    boundary(|| free_handle(ledger))
}

/// Claim `pages` pages. OK, or REFUSED when claimed + `pages` would pass
/// the capacity: nothing is claimed and `*shortfall_pages` (may be NULL)
/// receives by how much it would (otherwise 0). Exact: a claim is refused
/// only if it does not fit at the instant it is decided. 0 pages always
/// succeeds.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_claim(
    ledger: *const vmmresv_ledger,
    pages_count: u64,
    shortfall_pages: *mut u64,
) -> Status {
    boundary(|| {
        if !shortfall_pages.is_null() {
            put(shortfall_pages, 0);
        }
        let l = match checked(ledger) {
            Ok(l) => l,
            Err(s) => return fail(Error::new(s)),
        };
        match l.inner.try_claim(pages_count) {
            Ok(()) => ok(),
            Err(r) => {
                if !shortfall_pages.is_null() {
                    put(shortfall_pages, r.shortfall);
                }
                fail(r.into())
            }
        }
    })
}

/// Release `pages` pages claimed earlier. Releasing more than is claimed is
/// a caller bug: a release build clamps the count at 0 rather than wrap
/// it; a debug build of the library reports it as VMMRESV_STATUS_PANIC.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_release(
    ledger: *const vmmresv_ledger,
    pages_count: u64,
) -> Status {
    boundary(|| match checked(ledger) {
        Ok(l) => {
            l.inner.release(pages_count);
            ok()
        }
        Err(s) => fail(Error::new(s)),
    })
}

/// Change the capacity to `capacity_pages`; `*old_pages` (may be NULL)
/// receives the previous one. Lowering it below what is claimed is refused
/// with NO_SPACE and changes nothing (as Linux memcg refuses a limit under
/// usage); a claim racing the change is checked against exactly one of the
/// two capacities.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_set_capacity(
    ledger: *const vmmresv_ledger,
    capacity_pages: u64,
    old_pages: *mut u64,
) -> Status {
    boundary(|| {
        let l = match checked(ledger) {
            Ok(l) => l,
            Err(s) => return fail(Error::new(s)),
        };
        match l.inner.set_capacity(capacity_pages) {
            Ok(old) => {
                if !old_pages.is_null() {
                    put(old_pages, old);
                }
                ok()
            }
            Err(e) => fail(e),
        }
    })
}

/// The claimed pages and the capacity at one instant. Either pointer may be
/// NULL.
#[no_mangle]
pub extern "C" fn vmmresv_ledger_usage(
    ledger: *const vmmresv_ledger,
    claimed_pages: *mut u64,
    capacity_pages: *mut u64,
) -> Status {
    boundary(|| match checked(ledger) {
        Ok(l) => {
            let u = l.inner.usage();
            if !claimed_pages.is_null() {
                put(claimed_pages, u.claimed);
            }
            if !capacity_pages.is_null() {
                put(capacity_pages, u.capacity);
            }
            ok()
        }
        Err(s) => fail(Error::new(s)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export-shaped function that panics, run through the same
    /// boundary as every real export.
    extern "C" fn panicking_export() -> Status {
        boundary(|| -> Status { panic!("deliberate panic to test the C boundary") })
    }

    #[test]
    fn panic_becomes_a_status() {
        assert_eq!(panicking_export(), Status::Panic);
        // And the boundary's other fallbacks are well-formed.
        let p: *const c_char = boundary(|| -> *const c_char { panic!("x") });
        // SAFETY: the fallback is a static NUL-terminated string.
        let s = unsafe { CStr::from_ptr(p) };
        assert!(s.to_str().unwrap().contains("panic"));
    }

    #[test]
    fn null_arguments_are_refused() {
        assert_eq!(
            vmmresv_reservoir_open(core::ptr::null(), core::ptr::null(), core::ptr::null_mut()),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_reservoir_query(core::ptr::null(), core::ptr::null_mut()),
            Status::NullArgument
        );
        let mut reached = 0u64;
        assert_eq!(
            vmmresv_reservoir_add(
                core::ptr::null(),
                4096,
                0,
                None,
                core::ptr::null_mut(),
                &mut reached
            ),
            Status::NullArgument
        );
        assert_eq!(reached, VMMRESV_SIZE_UNKNOWN);
        assert_eq!(
            vmmresv_btop(4096, 4096, core::ptr::null_mut()),
            Status::NullArgument
        );
        assert_eq!(
            vmmresv_size_parse(core::ptr::null(), 0, &mut reached),
            Status::NullArgument
        );
        vmmresv_reservoir_close(core::ptr::null_mut());
    }

    #[test]
    fn local_ledger_through_the_c_abi() {
        let mut l: *mut vmmresv_ledger = core::ptr::null_mut();
        assert_eq!(vmmresv_ledger_new(10, &mut l), Status::Ok);
        let mut short = u64::MAX;
        assert_eq!(vmmresv_ledger_claim(l, 7, &mut short), Status::Ok);
        assert_eq!(short, 0);
        assert_eq!(vmmresv_ledger_claim(l, 5, &mut short), Status::Refused);
        assert_eq!(short, 2);
        let (mut c, mut cap) = (0u64, 0u64);
        assert_eq!(vmmresv_ledger_usage(l, &mut c, &mut cap), Status::Ok);
        assert_eq!((c, cap), (7, 10));
        let mut old = 0u64;
        assert_eq!(vmmresv_ledger_set_capacity(l, 6, &mut old), Status::NoSpace);
        assert_eq!(vmmresv_ledger_release(l, 7), Status::Ok);
        assert_eq!(vmmresv_ledger_set_capacity(l, 6, &mut old), Status::Ok);
        assert_eq!(old, 10);
        vmmresv_ledger_free(l);
        assert_eq!(
            vmmresv_ledger_new(u64::MAX, &mut l),
            Status::InvalidArgument
        );
        assert!(l.is_null());
        vmmresv_ledger_free(l);
        assert_eq!(
            vmmresv_ledger_claim(core::ptr::null(), 1, &mut short),
            Status::NullArgument
        );
    }

    #[test]
    fn foreign_handle_is_refused() {
        // Readable memory that is not a handle: no table has it (and the
        // library never reads through it).
        let fake = [0u8; 64];
        let mut q = vmmresv_query::default();
        assert_eq!(
            vmmresv_reservoir_query(fake.as_ptr().cast(), &mut q),
            Status::InvalidArgument
        );
        vmmresv_reservoir_close(fake.as_ptr().cast_mut().cast());
    }

    #[test]
    fn freed_ledger_is_refused_and_free_twice_is_a_no_op() {
        let mut l: *mut vmmresv_ledger = core::ptr::null_mut();
        assert_eq!(vmmresv_ledger_new(10, &mut l), Status::Ok);
        vmmresv_ledger_free(l);
        let mut short = u64::MAX;
        assert_eq!(
            vmmresv_ledger_claim(l, 1, &mut short),
            Status::InvalidArgument
        );
        assert_eq!(vmmresv_ledger_release(l, 1), Status::InvalidArgument);
        vmmresv_ledger_free(l);
        // A ledger created after it is not reached through it.
        let mut l2: *mut vmmresv_ledger = core::ptr::null_mut();
        assert_eq!(vmmresv_ledger_new(3, &mut l2), Status::Ok);
        assert_eq!(
            vmmresv_ledger_claim(l, 1, &mut short),
            Status::InvalidArgument
        );
        vmmresv_ledger_free(l);
        let (mut c, mut cap) = (u64::MAX, 0u64);
        assert_eq!(vmmresv_ledger_usage(l2, &mut c, &mut cap), Status::Ok);
        assert_eq!((c, cap), (0, 3));
        // Nor is a ledger taken for an admission handle.
        assert_eq!(
            vmmresv_admission_pending(l2.cast(), &mut c, &mut cap),
            Status::InvalidArgument
        );
        vmmresv_ledger_free(l2);
    }

    #[test]
    fn strerror_never_null() {
        for v in [0u32, 1, 7001, 7019, 9999, u32::MAX] {
            let p = vmmresv_strerror(v);
            assert!(!p.is_null());
            // SAFETY: static NUL-terminated strings.
            assert!(!unsafe { CStr::from_ptr(p) }.to_bytes().is_empty());
        }
    }

    #[test]
    fn size_format_needed_size_protocol() {
        let mut needed = 0usize;
        assert_eq!(
            vmmresv_size_format(64 << 30, core::ptr::null_mut(), 0, &mut needed),
            Status::BufferTooSmall
        );
        assert_eq!(needed, 4); // "64G" + NUL
        let mut buf = [0x55 as c_char; 4];
        assert_eq!(
            vmmresv_size_format(64 << 30, buf.as_mut_ptr(), buf.len(), &mut needed),
            Status::Ok
        );
        // SAFETY: NUL-terminated by the call above.
        assert_eq!(
            unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(),
            "64G"
        );
    }

    #[test]
    #[cfg_attr(
        miri,
        ignore = "opens the vmm control device (open(2) with O_EXCL), refused by Miri's isolation"
    )]
    fn missing_device_sets_errno() {
        let mut h: *mut vmmresv_reservoir = core::ptr::null_mut();
        let st = vmmresv_reservoir_open(c"/nonexistent/vmmctl".as_ptr(), core::ptr::null(), &mut h);
        assert_eq!(st, Status::NoDevice);
        assert!(h.is_null());
        assert_eq!(vmmresv_last_errno(), libc::ENOENT);
    }
}
