//! The Linux hugetlb pool as a reservoir (vmmresv_hugetlb(3VMMRESV),
//! docs/hugetlb.md): open a reservoir handle on it, tell the two backends
//! apart, read the pool's own counters. Every reservoir function (query,
//! resizes, admission) works on such a handle. ABI 1.2.

use core::ffi::c_char;

use super::boundary::{c_values, checked, export, new_handle, opt_path, out, vmmresv_reservoir};
use crate::ledger::file::Backend;
use crate::reservoir::Reservoir;
use crate::status::{Error, Status};

/// `vmmresv_reservoir_backend()`: the illumos VMM reservoir (`/dev/vmmctl`).
pub const VMMRESV_BACKEND_VMM_RESERVOIR: u32 = 1;
/// `vmmresv_reservoir_backend()`: a Linux hugetlb pool.
pub const VMMRESV_BACKEND_LINUX_HUGETLB: u32 = 2;
/// `vmmresv_reservoir_open_hugetlb()`: the pool of the whole machine, not
/// of one NUMA node.
pub const VMMRESV_NODE_ANY: i32 = -1;

c_values!(Backend {
    VmmReservoir = VMMRESV_BACKEND_VMM_RESERVOIR,
    LinuxHugetlb = VMMRESV_BACKEND_LINUX_HUGETLB,
});

/// A hugetlb pool's own counters, in bytes (the kernel counts pages of
/// `page_size_bytes`).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct vmmresv_hugetlb_counts {
    /// Bytes per huge page.
    pub page_size_bytes: u64,
    /// Every page of the pool, surplus included (`nr_hugepages`).
    pub total_bytes: u64,
    /// Pages no mapping holds (`free_hugepages`).
    pub free_bytes: u64,
    /// Free pages promised to mappings that have not touched them yet
    /// (`resv_hugepages`; the whole machine's for a node's pool). Free −
    /// reserved is what a new VM can take.
    pub reserved_bytes: u64,
    /// Pages beyond the persistent size (`surplus_hugepages`): in use
    /// after a shrink below what VMs held, freed as they let go.
    pub surplus_bytes: u64,
}

/// Open a reservoir handle on the Linux hugetlb pool of `page_size` bytes
/// (0 for 2 MiB; 2 MiB or 1 GiB) of NUMA node `node` (VMMRESV_NODE_ANY
/// for the whole machine). `run_dir` is as for vmmresv_reservoir_open():
/// the pool's resize lock and admission ledger live there, one per pool.
/// Reading needs no privilege; resizing needs root. `*out` receives the
/// handle (free with vmmresv_reservoir_close()), or NULL.
///
/// Errors: NULL_ARGUMENT (`out` NULL), INVALID_ARGUMENT (another page
/// size, a node below -1), NO_DEVICE (no hugetlb pool of that size or
/// node: not Linux, no hugetlb support, or the CPU lacks the size), IO.
/// Since 1.2.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_open_hugetlb(
    page_size: u64,
    node: i32,
    run_dir: *const c_char,
    out: *mut *mut vmmresv_reservoir,
) -> Status {
    export(|| {
        let out = out!(out)?;
        out.set(core::ptr::null_mut());
        let node = match node {
            VMMRESV_NODE_ANY => None,
            n => Some(u32::try_from(n).map_err(|_| Error::new(Status::InvalidArgument))?),
        };
        let inner = Reservoir::open_hugetlb(page_size, node, opt_path!(run_dir))?;
        out.set(new_handle(vmmresv_reservoir { inner })?);
        Ok(())
    })
}

/// Which kernel pool `reservoir` is: VMMRESV_BACKEND_VMM_RESERVOIR or
/// VMMRESV_BACKEND_LINUX_HUGETLB, into `*out`. Since 1.2.
#[no_mangle]
pub extern "C" fn vmmresv_reservoir_backend(
    reservoir: *const vmmresv_reservoir,
    out: *mut u32,
) -> Status {
    export(|| {
        let r = checked(reservoir)?;
        out!(out)?.set(r.inner.pool_id().backend.to_u32());
        Ok(())
    })
}

/// Read a hugetlb pool's own counters into `*out`. (vmmresv_reservoir_query()
/// gives them in the reservoir's terms: free is free − reserved.)
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (not a reservoir handle),
/// UNSUPPORTED (a vmm reservoir, not a hugetlb pool), IO. Since 1.2.
#[no_mangle]
pub extern "C" fn vmmresv_hugetlb_query(
    reservoir: *const vmmresv_reservoir,
    out: *mut vmmresv_hugetlb_counts,
) -> Status {
    export(|| {
        let r = checked(reservoir)?;
        let out = out!(out)?;
        let pool = r.inner.hugetlb().ok_or(Error::new(Status::Unsupported))?;
        let q = pool.query()?;
        out.set(vmmresv_hugetlb_counts {
            page_size_bytes: q.page_size,
            total_bytes: q.bytes(q.total_pages),
            free_bytes: q.bytes(q.free_pages),
            reserved_bytes: q.bytes(q.reserved_pages),
            surplus_bytes: q.bytes(q.surplus_pages),
        });
        Ok(())
    })
}
