//! The kernel's side of `/dev/vmmctl`: `repr(C)` structs and ioctl numbers
//! exactly as illumos `sys/vmm_dev.h` (interface version 18) defines them.
//!
//! This is the only module that knows vmm_dev.h. Field names are the
//! kernel's own. Layouts are pinned for LP64 (the driver refuses ILP32
//! callers with EFBIG, so nothing else exists) by static assertions, and
//! bytes coming back from the kernel are read with zerocopy, never with
//! pointer casts or hand-written shuffling.
//!
//! Sources: illumos-gate@09ea9c53 `usr/src/uts/intel/sys/vmm_dev.h`,
//! `sys/vmm.h`, `usr/src/uts/intel/io/vmm/vmm_sol_dev.c`; for `VM_ARC_RESV`
//! the two illumos-joyent OS-8005 trees' `usr/src/uts/i86pc/sys/vmm_dev.h`
//! and `vmm_sol_dev.c`. What each ioctl does, how it fails and why the
//! library sends what it sends: docs/kernel.md.

#![allow(non_camel_case_types)]
// The raw ioctl is unsafe by nature, and this is where it lives. Ioctl
// numbers are built in const context (no `From` there) and passed as the
// C types the platforms declare: `as` is the only spelling.
#![allow(unsafe_code, clippy::as_conversions)]

use core::mem::{align_of, offset_of, size_of};
use std::os::fd::{AsRawFd, BorrowedFd};

use static_assertions::const_assert_eq;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Path of the vmm control device.
pub const VMM_CTL_DEV: &str = "/dev/vmmctl";

/// `VMMCTL_IOC_BASE = ('V' << 16) | ('M' << 8)`: the ctl device's ioctls are
/// plain integers, not `_IOW`-style encodings.
pub const VMMCTL_IOC_BASE: i32 = ((b'V' as i32) << 16) | ((b'M' as i32) << 8);
/// Create a VM: `struct vm_create_req`.
pub const VMM_CREATE_VM: i32 = VMMCTL_IOC_BASE | 0x01;
/// Destroy a VM by name: `struct vm_destroy_req` (needs uid 0).
pub const VMM_DESTROY_VM: i32 = VMMCTL_IOC_BASE | 0x02;
/// Whether the host supports VMs.
pub const VMM_VM_SUPPORTED: i32 = VMMCTL_IOC_BASE | 0x03;
/// The interface version, returned as the ioctl's return value.
pub const VMM_INTERFACE_VERSION: i32 = VMMCTL_IOC_BASE | 0x04;
/// Whether an IOMMU is present.
pub const VMM_CHECK_IOMMU: i32 = VMMCTL_IOC_BASE | 0x05;
/// Read the reservoir counters: `struct vmm_resv_query` (out).
pub const VMM_RESV_QUERY: i32 = VMMCTL_IOC_BASE | 0x10;
/// Resize the reservoir: `struct vmm_resv_target` (in/out). Before interface
/// version 9 the same number was `VMM_RESV_ADD`, taking a size by value.
pub const VMM_RESV_SET_TARGET: i32 = VMMCTL_IOC_BASE | 0x11;

/// `VMM_IOC_BASE = ('v' << 16) | ('m' << 8)`: a VM instance device's
/// "other" ioctls (illumos-gate `sys/vmm_dev.h`).
pub const VMM_IOC_BASE: i32 = ((b'v' as i32) << 16) | ((b'm' as i32) << 8);

/// OS-8005's per-VM ARC reservation as the early (2020) illumos-joyent tree
/// defines it: `VM_ARC_RESV = _IOW('v', IOCNUM_ARC_RESV = 258, uint64_t)`
/// on the VM's own device (`/dev/vmm/<name>`), its `vmm_sol_dev.c` handing
/// the ioctl's argument itself to `vm_arc_resv()`: the length goes **by
/// value**. illumos `_IOW(x, y, t)` is `IOC_IN | (sizeof (t) &
/// IOCPARM_MASK) << 16 | x << 8 | y`, and 258 overflows into the 'v' byte
/// (0x7600 | 0x102 = 0x7702), as the kernel computes it too.
pub const VM_ARC_RESV_BY_VALUE: i32 =
    (0x8000_0000u32 | (8 << 16) | ((b'v' as u32) << 8) | 258) as i32;

/// OS-8005's per-VM ARC reservation as the later illumos-joyent tree (the
/// one numbered from `VMM_IOC_BASE`, matching the merged `vmm.c`) defines
/// it: `VM_ARC_RESV (VMM_IOC_BASE | 0xfe)`, whose `vmm_sol_dev.c` case
/// `ddi_copyin`s a `size_t` from the argument: a **pointer** to the length.
/// Neither kernel knows the other's number (ENOTTY), and neither does
/// upstream illumos, where `VMM_IOC_BASE | 0xfe` is unassigned.
pub const VM_ARC_RESV_COPYIN: i32 = VMM_IOC_BASE | 0xfe;

/// The interface version this library was written against.
pub const VMM_CURRENT_INTERFACE_VERSION: u32 = 18;
/// The first interface version with `VMM_RESV_SET_TARGET` (illumos#15372).
/// Below it, `0x564D11` reads its argument as a byte count and an unaligned
/// one trips `VERIFY3U(sz & PAGEOFFSET, ==, 0)`: a kernel panic.
pub const VMM_RESV_SET_TARGET_MIN_VERSION: u32 = 9;

/// `VM_MAX_NAMELEN` (sys/vmm.h).
pub const VM_MAX_NAMELEN: usize = 128;
/// `vm_create_req.flags`: take guest memory from the reservoir.
pub const VCF_RESERVOIR_MEM: u64 = 1 << 0;
/// `vm_create_req.flags`: track dirty pages.
pub const VCF_TRACK_DIRTY: u64 = 1 << 1;

/// `struct vmm_resv_query`: the reservoir's counters, copied under the
/// kernel's reservoir mutex. "Reservoir size" is free + alloc.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct vmm_resv_query {
    /// Reservoir memory not allocated to any VM.
    pub vrq_free_sz: u64,
    /// Reservoir memory allocated to VMs created with `VCF_RESERVOIR_MEM`.
    pub vrq_alloc_sz: u64,
    /// Memory of VMs created without the reservoir flag ("transient").
    pub vrq_alloc_transient_sz: u64,
    /// Upper limit of free + alloc + transient: physmem less 120% of
    /// `pages_pp_maximum`, computed once at module load.
    pub vrq_limit: u64,
}

/// `struct vmm_resv_target`: a resize request. The kernel copies it back only
/// on success or EINTR, so `vrt_result_sz` is meaningless after any other
/// error.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable,
)]
pub struct vmm_resv_target {
    /// Target size (free + alloc), a multiple of PAGESIZE, not SIZE_MAX.
    pub vrt_target_sz: u64,
    /// Resize in steps of this size; 0 = the whole change in one step.
    pub vrt_chunk_sz: u64,
    /// Size reached: the target, except when interrupted.
    pub vrt_result_sz: u64,
}

/// `struct vm_create_req`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct vm_create_req {
    /// NUL-terminated VM name.
    pub name: [u8; VM_MAX_NAMELEN],
    /// `VCF_*` flags.
    pub flags: u64,
}

// size_t is 64 bits wherever this library can talk to the driver: vmm
// refuses non-LP64 callers (EFBIG), so the structs are pinned for LP64.
const_assert_eq!(size_of::<usize>(), 8);
const_assert_eq!(size_of::<vmm_resv_query>(), 32);
const_assert_eq!(align_of::<vmm_resv_query>(), 8);
const_assert_eq!(offset_of!(vmm_resv_query, vrq_free_sz), 0);
const_assert_eq!(offset_of!(vmm_resv_query, vrq_alloc_sz), 8);
const_assert_eq!(offset_of!(vmm_resv_query, vrq_alloc_transient_sz), 16);
const_assert_eq!(offset_of!(vmm_resv_query, vrq_limit), 24);
const_assert_eq!(size_of::<vmm_resv_target>(), 24);
const_assert_eq!(align_of::<vmm_resv_target>(), 8);
const_assert_eq!(offset_of!(vmm_resv_target, vrt_target_sz), 0);
const_assert_eq!(offset_of!(vmm_resv_target, vrt_chunk_sz), 8);
const_assert_eq!(offset_of!(vmm_resv_target, vrt_result_sz), 16);
const_assert_eq!(size_of::<vm_create_req>(), 136);
const_assert_eq!(offset_of!(vm_create_req, flags), 128);
const_assert_eq!(VMM_RESV_QUERY, 0x564D10);
const_assert_eq!(VMM_RESV_SET_TARGET, 0x564D11);
const_assert_eq!(VMM_INTERFACE_VERSION, 0x564D04);
const_assert_eq!(VMM_CREATE_VM, 0x564D01);
const_assert_eq!(VM_ARC_RESV_BY_VALUE as u32, 0x8008_7702);
const_assert_eq!(VM_ARC_RESV_COPYIN, 0x766DFE);

/// What the query ioctl writes into: larger than `vmm_resv_query` and zeroed,
/// because one public fork (grwilson/oxide-illumos "rawmem") grew the struct
/// to 6 × size_t without bumping the interface version and copies out 48
/// bytes whatever the caller's buffer. 256 bytes leaves room for more.
#[repr(C, align(8))]
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable)]
pub struct QueryBuf(pub [u8; 256]);

impl QueryBuf {
    /// A zeroed buffer.
    pub fn new() -> QueryBuf {
        QueryBuf([0; 256])
    }

    /// The upstream struct: the first 32 bytes.
    pub fn query(&self) -> vmm_resv_query {
        match vmm_resv_query::read_from_prefix(&self.0) {
            Ok((q, _rest)) => q,
            // 256 >= 32: cannot happen; zeroes rather than a panic.
            Err(_) => vmm_resv_query::default(),
        }
    }
}

impl Default for QueryBuf {
    fn default() -> Self {
        QueryBuf::new()
    }
}

/// The raw ioctl. Returns the ioctl's non-negative return value, or the
/// errno it failed with.
///
/// # Safety
/// `arg` must be null or point to memory valid for reads and writes of the
/// size the kernel uses for `req` (for `VMM_RESV_QUERY`: at least 48 bytes,
/// see [`QueryBuf`]), and nothing else may access it during the call.
pub unsafe fn ioctl(fd: BorrowedFd<'_>, req: i32, arg: *mut libc::c_void) -> Result<i32, i32> {
    // The request parameter is c_int on illumos and c_ulong in glibc. Go
    // through u32 so an `_IOW` number with the top bit set (0x80087702)
    // is zero-extended into a c_ulong, not sign-extended; on illumos the
    // round trip gives the same int back.
    // SAFETY: the caller guarantees `arg` is valid for `req` (see # Safety);
    // `fd` is a live descriptor for the duration of the borrow.
    let rv = unsafe { libc::ioctl(fd.as_raw_fd(), req as u32 as _, arg) };
    if rv < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO))
    } else {
        Ok(rv)
    }
}

/// `VMM_INTERFACE_VERSION` on any vmm descriptor (ctl or instance): the
/// version the kernel answers (the ioctl's return value), or the errno.
/// Kernels before interface version 6 answer it on the ctl device only,
/// and kernels older than the version itself (OS-8005's 2020 tree) not at
/// all: ENOTTY.
pub fn interface_version(fd: BorrowedFd<'_>) -> Result<i32, i32> {
    loop {
        // SAFETY: VMM_INTERFACE_VERSION takes no argument and reads none;
        // a null pointer is what the kernel ignores. `fd` is live for the
        // borrow.
        match unsafe { ioctl(fd, VMM_INTERFACE_VERSION, core::ptr::null_mut()) } {
            Err(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// OS-8005's per-VM ARC reservation on the early kernel
/// ([`VM_ARC_RESV_BY_VALUE`]): the length in the argument's place, as that
/// tree's `vm_arc_resv()` in libvmmapi passes it. The errno on failure;
/// ENOTTY where the kernel has no such ioctl.
pub fn vm_arc_resv_by_value(fd: BorrowedFd<'_>, bytes: u64) -> Result<(), i32> {
    // An integer in the pointer's place: this kernel reads the argument
    // as the length and never dereferences it.
    let arg = bytes as usize as *mut libc::c_void;
    // SAFETY: VM_ARC_RESV_BY_VALUE reads its argument as a number; `fd` is
    // live for the borrow. Callers send it only to a kernel that may be
    // the by-value one (see arc::reserve::apply_illumos).
    unsafe { ioctl(fd, VM_ARC_RESV_BY_VALUE, arg) }.map(|_| ())
}

/// OS-8005's per-VM ARC reservation on the later kernel
/// ([`VM_ARC_RESV_COPYIN`]): a pointer to a `size_t` holding the length,
/// which that kernel `ddi_copyin`s. The errno on failure; ENOTTY where
/// the kernel has no such ioctl.
pub fn vm_arc_resv_copyin(fd: BorrowedFd<'_>, bytes: u64) -> Result<(), i32> {
    // size_t is 64 bits here (LP64 asserted above).
    let mut len: u64 = bytes;
    // SAFETY: `len` is a live, aligned size_t on this frame for the whole
    // call; the kernel reads (at most) those 8 bytes. `fd` is live.
    unsafe { ioctl(fd, VM_ARC_RESV_COPYIN, (&mut len as *mut u64).cast()) }.map(|_| ())
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
    fn query_buf_reads_first_32_bytes_only() {
        let mut b = QueryBuf::new();
        for (i, v) in [1u64, 2, 3, 4, 0xdead, 0xbeef].iter().enumerate() {
            b.0[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        let q = b.query();
        assert_eq!(
            q,
            vmm_resv_query {
                vrq_free_sz: 1,
                vrq_alloc_sz: 2,
                vrq_alloc_transient_sz: 3,
                vrq_limit: 4
            }
        );
    }

    #[test]
    fn target_round_trips_through_bytes() {
        let t = vmm_resv_target {
            vrt_target_sz: 1 << 30,
            vrt_chunk_sz: 4096,
            vrt_result_sz: 7,
        };
        let back = vmm_resv_target::read_from_bytes(t.as_bytes()).unwrap();
        assert_eq!(t, back);
    }
}
