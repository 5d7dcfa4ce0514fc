//! The boundary: the one way every export crosses between C and Rust,
//! and the ABI's version and errors (vmmresv_misc(3VMMRESV)).
//!
//! An export is thin: check its pointers, convert, call the Rust API and
//! turn the result into a status, always with the tools of this module:
//!
//! - [`export`] runs a body returning `Result<(), Error>` inside the panic
//!   [`boundary`] and turns the result into a status ([`IntoStatus`]),
//!   recording the errno for `vmmresv_last_errno()`.
//! - [`checked`] takes a handle from C (NULL: NULL_ARGUMENT; anything but a
//!   live handle of its type: INVALID_ARGUMENT).
//! - `out!(p)?` checks an out-pointer (NULL: NULL_ARGUMENT), `opt_out!(p)`
//!   takes one that may be NULL; both give an [`Out`] to `set`.
//! - `read_in!(p)?` copies a caller's struct (NULL: NULL_ARGUMENT),
//!   `opt_read!(p)` one that may be NULL; `read_array!`/`write_array!` for
//!   arrays; `c_str!`, `opt_path!` and `uuid_arg!` for strings.
//! - [`TextBuf`] (`text_buf!`, boundary/text.rs) writes text into a
//!   caller's buffer with the needed-size protocol, described there once.
//! - C-facing enums get their list and conversions from one table,
//!   `crate::status::c_enum!`, and `c_values!` ties them to the header's
//!   `VMMRESV_*` constants. `export`'s panic fallbacks for other return
//!   types are the [`Fallback`] impls (the `*_name` and version exports run
//!   in [`boundary`] directly).
//!
//! The macros hold the `unsafe`: each export's C contract (the header and
//! its man page) is that a pointer argument is NULL or valid for the use
//! documented, for the duration of the call, and that is all they assume.
//!
//! Destructors: a handle type added from now on is freed by
//! `vmmresv_<type>_free()` (as `vmmresv_ledger_free()`). The older
//! `vmmresv_reservoir_close()` and `vmmresv_admission_close()` predate the
//! rule and keep their names (exported names never change).

use core::ffi::{c_char, c_int, CStr};
use core::ptr::NonNull;
use std::cell::Cell;
use std::os::unix::ffi::OsStrExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::handle;
use crate::admission::local::LocalLedger;
use crate::admission::Admission;
use crate::arc::reservations::ArcReservations;
use crate::reservoir::Reservoir;
use crate::status::{Error, Status};

mod text;
mod types;

pub(super) use text::{NullBuf, TextBuf};
pub use types::*;

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

/// This thread's `vmmresv_last_errno()`. One thread-local that gives its
/// count back itself when the thread ends: on targets without native
/// thread-locals (illumos) std keeps every thread-local behind a pthread
/// key, destroyed in key order, so a second thread-local's destructor
/// could not rely on this one still being there.
struct ErrnoSlot(Cell<c_int>);

impl Drop for ErrnoSlot {
    fn drop(&mut self) {
        if self.0.replace(0) != 0 {
            NONZERO_ERRNO_THREADS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

thread_local! {
    static LAST_ERRNO: ErrnoSlot = const { ErrnoSlot(Cell::new(0)) };
}

/// How many threads hold a nonzero LAST_ERRNO. A thread-local of a shared
/// library is reached through a call to `__tls_get_addr`, which cost about
/// as much as the rest of a successful in-process ledger call
/// (benches/README.md, "c_abi"); while no thread holds an errno, a call
/// that succeeds skips it: its own slot is 0 already. A thread reads its
/// own increment (coherence of one atomic), so it never skips while its
/// own slot is nonzero; other threads' counts only make it take the slow,
/// always correct path (one thread that keeps an errno, say a failed open
/// at start-up, keeps every thread there). A forked child inherits the
/// counts of parent threads it does not have: it stays on the slow path,
/// never a wrong one. A call made while this thread's slot is already
/// destroyed (from another thread-local's destructor) records nothing.
static NONZERO_ERRNO_THREADS: AtomicUsize = AtomicUsize::new(0);

#[inline]
pub(super) fn set_errno(e: c_int) {
    if e == 0 && NONZERO_ERRNO_THREADS.load(Ordering::Relaxed) == 0 {
        return;
    }
    let _ = LAST_ERRNO.try_with(|s| {
        let was = s.0.replace(e);
        if was == 0 && e != 0 {
            NONZERO_ERRNO_THREADS.fetch_add(1, Ordering::Relaxed);
        } else if was != 0 && e == 0 {
            NONZERO_ERRNO_THREADS.fetch_sub(1, Ordering::Relaxed);
        }
    });
}

/// This thread's last errno (0 once its slot is gone, at thread exit).
fn last_errno() -> c_int {
    LAST_ERRNO.try_with(|s| s.0.get()).unwrap_or(0)
}

/// What an export returns if its body panicked.
pub(super) trait Fallback {
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
#[inline]
pub(super) fn boundary<T: Fallback>(f: impl FnOnce() -> T) -> T {
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
#[inline]
pub(super) fn fail(e: Error) -> Status {
    set_errno(e.errno().unwrap_or(0));
    e.status()
}

#[inline]
pub(super) fn ok() -> Status {
    set_errno(0);
    Status::Ok
}

/// A body's result as the status C gets, recording the errno behind it
/// for `vmmresv_last_errno()` (0 on success or when there is none).
pub(super) trait IntoStatus {
    fn into_status(self) -> Status;
}

impl IntoStatus for Result<(), Error> {
    #[inline]
    fn into_status(self) -> Status {
        match self {
            Ok(()) => ok(),
            Err(e) => fail(e),
        }
    }
}

/// The body of an export returning a status: run inside [`boundary`],
/// its result turned into the status with [`IntoStatus`].
#[inline]
pub(super) fn export(f: impl FnOnce() -> Result<(), Error>) -> Status {
    boundary(|| f().into_status())
}

/// A caller's out-pointer, checked: `set` writes through it, or does
/// nothing for an optional one the caller left NULL. Made only by
/// `out!` and `opt_out!`.
pub(super) struct Out<T>(Option<NonNull<T>>);

impl<T> Out<T> {
    /// A pointer the caller must give: NULL is NULL_ARGUMENT.
    ///
    /// # Safety
    /// `p` is NULL or valid for writing one `T` until the export returns.
    #[inline]
    pub(super) unsafe fn required(p: *mut T) -> Result<Out<T>, Error> {
        match NonNull::new(p) {
            Some(p) => Ok(Out(Some(p))),
            None => Err(Error::new(Status::NullArgument)),
        }
    }

    /// A pointer the caller may leave NULL ("not wanted").
    ///
    /// # Safety
    /// As [`Out::required`].
    #[inline]
    pub(super) unsafe fn optional(p: *mut T) -> Out<T> {
        Out(NonNull::new(p))
    }

    /// Write `v` (a plain write: the old value is not dropped, C owns it).
    #[inline]
    pub(super) fn set(&self, v: T) {
        if let Some(p) = self.0 {
            // SAFETY: non-null and writable for one T (the constructor's
            // contract); T is a C type or a handle pointer, nothing to drop.
            unsafe { p.as_ptr().write(v) }
        }
    }
}

/// Check an out-pointer the caller must give: `Result<Out<T>, Error>`.
macro_rules! out {
    ($p:expr) => {
        // SAFETY: the export's C contract: the pointer is NULL or writable
        // for one T for the duration of the call.
        unsafe { $crate::ffi::boundary::Out::required($p) }
    };
}

/// An out-pointer the caller may leave NULL: `Out<T>`.
macro_rules! opt_out {
    ($p:expr) => {
        // SAFETY: as in out!.
        unsafe { $crate::ffi::boundary::Out::optional($p) }
    };
}

/// Copy a caller's struct (NULL: NULL_ARGUMENT). A copy, read without
/// assuming alignment: no Rust reference ever points into caller memory.
///
/// # Safety
/// `p` is NULL or points to a readable, initialized `T`.
#[inline]
pub(super) unsafe fn read_struct<T: Copy>(p: *const T) -> Result<T, Error> {
    if p.is_null() {
        return Err(Error::new(Status::NullArgument));
    }
    // SAFETY: non-null, and readable by the function's contract.
    Ok(unsafe { p.read_unaligned() })
}

/// Copy a caller's struct the caller may leave NULL.
///
/// # Safety
/// As [`read_struct`].
#[inline]
pub(super) unsafe fn read_opt_struct<T: Copy>(p: *const T) -> Option<T> {
    // SAFETY: the function's contract.
    unsafe { read_struct(p) }.ok()
}

/// `read_in(p)` under the export's C contract: `Result<T, Error>`.
macro_rules! read_in {
    ($p:expr) => {
        // SAFETY: the export's C contract: the pointer is NULL or points to
        // a readable, initialized struct for the duration of the call.
        unsafe { $crate::ffi::boundary::read_struct($p) }
    };
}

/// `opt_read(p)` under the export's C contract: `Option<T>`.
macro_rules! opt_read {
    ($p:expr) => {
        // SAFETY: as in read_in!.
        unsafe { $crate::ffi::boundary::read_opt_struct($p) }
    };
}

/// An array of `n` T must fit in the address space (pointer offsets are
/// bounded by isize::MAX bytes).
fn check_array_len<T>(n: usize) -> Result<(), Error> {
    match n.checked_mul(core::mem::size_of::<T>()) {
        Some(b) if b <= isize::MAX.unsigned_abs() => Ok(()),
        _ => Err(Error::new(Status::InvalidArgument)),
    }
}

/// An array of `n` T from C, copied (so no Rust reference ever aliases
/// caller memory the outputs may share). NULL is accepted only for n == 0.
///
/// # Safety
/// `p` is NULL or points to `n` readable, initialized T.
pub(super) unsafe fn read_c_array<T: Copy>(p: *const T, n: usize) -> Result<Vec<T>, Error> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if p.is_null() {
        return Err(Error::new(Status::NullArgument));
    }
    check_array_len::<T>(n)?;
    Ok((0..n)
        // SAFETY: non-null and holding `n` T (the contract); i < n, and n T
        // fit in isize (checked), so the offset is in bounds.
        .map(|i| unsafe { p.add(i).read_unaligned() })
        .collect())
}

/// Write `vals` to the caller's array of `vals.len()` T. NULL is
/// NULL_ARGUMENT unless `vals` is empty; nothing is written then.
///
/// # Safety
/// `p` is NULL or points to `vals.len()` writable T.
pub(super) unsafe fn write_c_array<T: Copy>(p: *mut T, vals: &[T]) -> Result<(), Error> {
    if vals.is_empty() {
        return Ok(());
    }
    if p.is_null() {
        return Err(Error::new(Status::NullArgument));
    }
    check_array_len::<T>(vals.len())?;
    for (i, v) in vals.iter().enumerate() {
        // SAFETY: non-null and holding vals.len() T (the contract), whose
        // byte size fits isize (checked).
        unsafe { p.add(i).write_unaligned(*v) }
    }
    Ok(())
}

/// `read_array(p, n)` under the export's C contract.
macro_rules! read_array {
    ($p:expr, $n:expr) => {
        // SAFETY: the export's C contract: the pointer is NULL or holds
        // `n` readable elements for the duration of the call.
        unsafe { $crate::ffi::boundary::read_c_array($p, $n) }
    };
}

/// `write_array(p, vals)` under the export's C contract.
macro_rules! write_array {
    ($p:expr, $vals:expr) => {
        // SAFETY: the export's C contract: the pointer is NULL or holds as
        // many writable elements as the caller said (`n`), and `vals` has
        // that many.
        unsafe { $crate::ffi::boundary::write_c_array($p, $vals) }
    };
}

/// A C string argument (NULL: NULL_ARGUMENT).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string that lives for `'a`.
#[inline]
pub(super) unsafe fn c_str_arg<'a>(p: *const c_char) -> Result<&'a CStr, Error> {
    if p.is_null() {
        return Err(Error::new(Status::NullArgument));
    }
    // SAFETY: non-null; NUL-terminated and alive by the contract.
    Ok(unsafe { CStr::from_ptr(p) })
}

/// A path argument: NULL means "the default".
///
/// # Safety
/// As [`c_str_arg`].
#[inline]
pub(super) unsafe fn path_arg<'a>(p: *const c_char) -> Option<&'a Path> {
    // SAFETY: the function's contract.
    let c = unsafe { c_str_arg(p) }.ok()?;
    Some(Path::new(std::ffi::OsStr::from_bytes(c.to_bytes())))
}

/// `c_str(p)` under the export's C contract: `Result<&CStr, Error>`.
macro_rules! c_str {
    ($p:expr) => {
        // SAFETY: the export's C contract: a string argument is NULL or
        // NUL-terminated and alive for the duration of the call.
        unsafe { $crate::ffi::boundary::c_str_arg($p) }
    };
}

/// `opt_path(p)` under the export's C contract: `Option<&Path>`.
macro_rules! opt_path {
    ($p:expr) => {
        // SAFETY: as in c_str!.
        unsafe { $crate::ffi::boundary::path_arg($p) }
    };
}

/// A VM's UUID as C passes it: canonical 36-character text.
///
/// # Safety
/// As [`c_str_arg`].
#[inline]
pub(super) unsafe fn uuid_text(p: *const c_char) -> Result<[u8; 16], Error> {
    // SAFETY: the function's contract.
    let s = unsafe { c_str_arg(p) }?
        .to_str()
        .map_err(|_| Error::new(Status::InvalidArgument))?;
    crate::admission::parse_uuid(s)
}

/// `uuid_arg(p)` under the export's C contract.
macro_rules! uuid_arg {
    ($p:expr) => {
        // SAFETY: as in c_str!.
        unsafe { $crate::ffi::boundary::uuid_text($p) }
    };
}

/// Ties a C-facing enum (its list and conversions come from
/// `crate::status::c_enum!`) to the header's `VMMRESV_*` constants, which
/// stay literal items because cbindgen reads them with their docs. Every
/// variant names its constant (a variant without one does not compile:
/// the match has no wildcard) and each constant must equal the variant's
/// value (checked at compile time).
macro_rules! c_values {
    ($ty:ident { $($var:ident = $c:ident),+ $(,)? }) => {
        const _: () = {
            const fn c_value(v: $ty) -> u32 {
                match v {
                    $($ty::$var => $c),+
                }
            }
            $(assert!(
                c_value($ty::$var) == $ty::$var.to_u32(),
                concat!(stringify!($c), " is not ", stringify!($ty), "::", stringify!($var))
            );)+
        };
    };
}

pub(super) use text::text_buf;
pub(super) use {
    c_str, c_values, opt_out, opt_path, opt_read, out, read_array, read_in, uuid_arg, write_array,
};

/// The opaque handle types. A handle given to C names a slot of its
/// type's table (handle.rs), never the object's address: a freed, stale,
/// foreign or wrong-typed handle is refused with a status without reading
/// memory the library has freed, and its free is a no-op.
pub(super) trait Handle: Sized + Send + Sync + 'static {
    fn table() -> &'static handle::Table<Self>;
}

static RESERVOIRS: handle::Table<vmmresv_reservoir> = handle::Table::new(handle::TAG_RESERVOIR);
static ADMISSIONS: handle::Table<vmmresv_admission> = handle::Table::new(handle::TAG_ADMISSION);
static LEDGERS: handle::Table<vmmresv_ledger> = handle::Table::new(handle::TAG_LEDGER);
static ARCS: handle::Table<vmmresv_arc> = handle::Table::new(handle::TAG_ARC);

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

impl Handle for vmmresv_arc {
    fn table() -> &'static handle::Table<Self> {
        &ARCS
    }
}

/// A handle from C: NULL gives NULL_ARGUMENT, anything but a live handle
/// of type T (a freed one included) INVALID_ARGUMENT.
#[inline]
pub(super) fn checked<'a, T: Handle>(h: *const T) -> Result<&'a T, Status> {
    T::table().get(h)
}

/// A new handle for C, owning `obj`.
#[inline]
pub(super) fn new_handle<T: Handle>(obj: T) -> Result<*mut T, Status> {
    T::table().insert(obj)
}

/// Free a handle from C: NULL, a freed or a foreign handle is a no-op.
///
/// # Safety
///
/// As [`handle::Table::free`]: nothing from [`checked`] for `h` in use.
#[inline]
pub(super) unsafe fn free_handle<T: Handle>(h: *mut T) {
    // SAFETY: passed on from the caller.
    unsafe { T::table().free(h) }
}

/// An open vmm control device. Opaque: create with
/// `vmmresv_reservoir_open()`, free with `vmmresv_reservoir_close()`. One
/// handle may be used by several threads at once.
pub struct vmmresv_reservoir {
    pub(super) inner: Reservoir,
}

/// An admission point: the reservoir plus the cross-process claim ledger.
/// Opaque: create with vmmresv_admission_open(), free with
/// vmmresv_admission_close(). One handle may be used by several threads.
pub struct vmmresv_admission {
    pub(super) inner: Admission,
}

/// An in-process claim ledger: a capacity and claims in pages, claimed and
/// released lock-free (atomics only: no lock, no system call, no
/// allocation) by any number of threads, never over-admitting. Only
/// vmmresv_ledger_set_capacity() takes a lock (changes of capacity are
/// serialized, as memcg requires). For a
/// process that admits many things itself (a VM manager with its own
/// budget); admissions across processes use vmmresv_admit(). Create with
/// vmmresv_ledger_new(), free with vmmresv_ledger_free().
pub struct vmmresv_ledger {
    pub(super) inner: LocalLedger,
}

/// The ARC pool of a claim ledger, without a reservoir (ABI 1.2): durable
/// per-VM ARC reservations for hosts with ZFS but no /dev/vmmctl, and for
/// short-lived programs. Opaque: create with vmmresv_arc_open(), free
/// with vmmresv_arc_free(). One handle may be used by several threads.
pub struct vmmresv_arc {
    pub(super) inner: ArcReservations,
}

/// A UUID's canonical text (lower case, 36 characters).
pub(super) fn uuid_canonical(u: &[u8; 16]) -> String {
    let mut s = String::with_capacity(36);
    for (i, b) in u.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            s.push('-');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
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
    boundary(last_errno)
}

#[cfg(test)]
// Test code: C-sized literals and unwraps are the point.
#[allow(
    clippy::as_conversions,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;

    #[test]
    fn out_pointers() {
        let mut v = 0u64;
        assert_eq!(
            out!(core::ptr::null_mut::<u64>()).err().map(|e| e.status()),
            Some(Status::NullArgument)
        );
        opt_out!(core::ptr::null_mut::<u64>()).set(1);
        out!(&mut v as *mut u64).map(|o| o.set(7)).ok();
        assert_eq!(v, 7);
    }
}
