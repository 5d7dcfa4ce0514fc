//! One picture of a host's memory, from whichever sources are at hand.
//!
//! Linux arcstats, illumos `kstat -p zfs:0:arcstats` and `mdb -k ::memstat`
//! each see part of the picture; every field is an `Option` so a snapshot
//! says what its source did not show instead of inventing a zero.
//! [`HostSnapshot::merge`] combines sources (on illumos: kstat for the ARC's
//! own counters, `::memstat` for where the pages are).
//!
//! Every size is in **bytes**. `::memstat` counts pages; its reader converts
//! them once with `pages::ptob`, so a byte count here is an exact multiple
//! of `PAGESIZE` and converts back with `btop` without loss.

use crate::status::{Error, Status};

/// A host's memory as one or more sources saw it (bytes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HostSnapshot {
    /// Memory the kernel manages: `::memstat` "Total" (illumos `physmem`,
    /// which `memory.c` prints in the Total row), or Linux arcstats
    /// `memory_all_bytes` (`arc_all_memory()`: total RAM less highmem).
    pub physmem: Option<u64>,
    /// `::memstat` "Physical" (illumos `total_pages`; mdb prints it only
    /// when it differs from `physmem`, so it defaults to Total).
    pub physical: Option<u64>,
    /// ARC size (arcstats `size`).
    pub arc_size: Option<u64>,
    /// ARC target size (arcstats `c`).
    pub arc_c: Option<u64>,
    /// ARC floor (arcstats `c_min`).
    pub arc_c_min: Option<u64>,
    /// ARC ceiling (arcstats `c_max`).
    pub arc_c_max: Option<u64>,
    /// Linux arcstats `memory_available_bytes` (`arc_available_memory()`;
    /// negative when the ARC should shrink). Not on illumos.
    pub arc_available: Option<i64>,
    /// `::memstat` "Kernel".
    pub kernel: Option<u64>,
    /// `::memstat` "Boot pages" (0 when mdb omits the row).
    pub boot_pages: Option<u64>,
    /// `::memstat` "ZFS File Data": ARC data buffers (ARC metadata is
    /// counted under Kernel). 0 when mdb omits the row.
    pub zfs_file_data: Option<u64>,
    /// `::memstat` "VMM Memory": memory bhyve VMs hold. 0 when mdb omits the
    /// row.
    pub vmm: Option<u64>,
    /// `::memstat` "Anon".
    pub anon: Option<u64>,
    /// `::memstat` "Exec and libs".
    pub exec_and_libs: Option<u64>,
    /// `::memstat` "Page cache".
    pub page_cache: Option<u64>,
    /// `::memstat` "Free (cachelist)": free pages that still hold their old
    /// contents (`PP_ISFREE` in `memstat_callback()`), reusable at once.
    pub free_cachelist: Option<u64>,
    /// `::memstat` "Free (freelist)".
    pub free_freelist: Option<u64>,
    /// `::memstat` "Balloon" (Xen guests only; 0 when absent).
    pub balloon: Option<u64>,
    /// Free memory: cachelist + freelist on illumos (the kernel's `freemem`
    /// counts both), Linux arcstats `memory_free_bytes`
    /// (`arc_free_memory()`: free + inactive file pages).
    pub free: Option<u64>,
}

impl HostSnapshot {
    /// `self` with every missing field taken from `other` (fields `self`
    /// has win).
    pub fn merge(self, other: HostSnapshot) -> HostSnapshot {
        HostSnapshot {
            physmem: self.physmem.or(other.physmem),
            physical: self.physical.or(other.physical),
            arc_size: self.arc_size.or(other.arc_size),
            arc_c: self.arc_c.or(other.arc_c),
            arc_c_min: self.arc_c_min.or(other.arc_c_min),
            arc_c_max: self.arc_c_max.or(other.arc_c_max),
            arc_available: self.arc_available.or(other.arc_available),
            kernel: self.kernel.or(other.kernel),
            boot_pages: self.boot_pages.or(other.boot_pages),
            zfs_file_data: self.zfs_file_data.or(other.zfs_file_data),
            vmm: self.vmm.or(other.vmm),
            anon: self.anon.or(other.anon),
            exec_and_libs: self.exec_and_libs.or(other.exec_and_libs),
            page_cache: self.page_cache.or(other.page_cache),
            free_cachelist: self.free_cachelist.or(other.free_cachelist),
            free_freelist: self.free_freelist.or(other.free_freelist),
            balloon: self.balloon.or(other.balloon),
            free: self.free.or(other.free),
        }
    }

    /// The memory VMs and the ARC can share on this host: what is free, ARC
    /// file data, or already VMM memory (`::memstat` rows).
    ///
    /// This is a budget for [`super::guard::Ceiling::Budget`]: it assumes the
    /// kernel, processes and the page cache keep what they hold while a VM
    /// starts, which is what makes the ARC target computed from it free
    /// enough (OS-8005: on the 128 GiB hosts the kernel alone held
    /// 16–23 GiB, which an `arc_c_max` ceiling does not see).
    ///
    /// `Ok(None)` if the snapshot lacks one of the three (a Linux arcstats
    /// snapshot has no VMM row); `Overflow` if the sum does not fit in a
    /// `u64` (checked rather than saturating: a saturated budget would admit
    /// against memory that does not exist).
    pub fn vm_and_arc_budget(&self) -> Result<Option<u64>, Error> {
        let (Some(free), Some(zfs), Some(vmm)) = (self.free, self.zfs_file_data, self.vmm) else {
            return Ok(None);
        };
        free.checked_add(zfs)
            .and_then(|v| v.checked_add(vmm))
            .map(Some)
            .ok_or(Error::new(Status::Overflow))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn merge_prefers_self() {
        let a = HostSnapshot {
            arc_size: Some(1),
            physmem: None,
            ..HostSnapshot::default()
        };
        let b = HostSnapshot {
            arc_size: Some(2),
            physmem: Some(3),
            ..HostSnapshot::default()
        };
        let m = a.merge(b);
        assert_eq!((m.arc_size, m.physmem), (Some(1), Some(3)));
    }

    #[test]
    fn budget_needs_all_three_and_is_checked() {
        let mut s = HostSnapshot {
            free: Some(1),
            zfs_file_data: Some(2),
            ..HostSnapshot::default()
        };
        assert_eq!(s.vm_and_arc_budget(), Ok(None));
        s.vmm = Some(3);
        assert_eq!(s.vm_and_arc_budget(), Ok(Some(6)));
        s.vmm = Some(u64::MAX);
        assert_eq!(
            s.vm_and_arc_budget().unwrap_err().status(),
            Status::Overflow
        );
    }
}
