//! How big the reservoir may safely be, and how peers size it.
//!
//! RFD 185 ("Hazards: available machine memory and other consumers"): the
//! kernel offers the reservoir all of physical memory minus 120% of the
//! unlockable pages, and "the remaining amount MAY be insufficient for
//! normal machine operations": the ZFS ARC, drivers that preallocate DMA
//! memory (i40e with many VNICs), zones' memory caps, the OS itself.
//! [`headroom`] subtracts each of them as a named input and reports them
//! back, so an operator sees why the safe maximum is what it is. The
//! overcommit buffer is the KVM Forum talk's memory "buffer" kept unused by
//! any VM, so a VM can grow before reclaim catches up.
//!
//! [`sizing`] reproduces three peers' rules for the reservoir size
//! (docs/sources.md, "Headroom and peer sizing"): RFD 185's 75% of the
//! kernel limit, omicron's earmark-and-percentage, and Triton CNAPI's
//! provisionable memory. The first is also the library's default target
//! ([`default_target_for`]).

use super::{bp_floor, sat_u64};
use crate::pages::{self, PageSize, PAGESIZE, PAGESIZE_2M, PAGE_T_SIZE};
use crate::status::{Error, Status};

/// What takes memory besides the reservoir, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeadroomInputs {
    /// Physical memory.
    pub physmem_bytes: u64,
    /// `pages_pp_maximum` in bytes: memory that can never be locked; the
    /// kernel keeps 120% of it out of the reservoir.
    pub unlockable_bytes: u64,
    /// The ARC's floor (`arc_c_min`): it will not shrink below it.
    pub arc_floor_bytes: u64,
    /// Driver DMA preallocation (RFD 185: i40e).
    pub driver_dma_bytes: u64,
    /// Σ memory caps of zones that are not VMs.
    pub zone_caps_bytes: u64,
    /// What the operator keeps for the OS.
    pub os_reserve_bytes: u64,
    /// Memory kept free so VMs can grow at once (KVM Forum 2021).
    pub overcommit_buffer_bytes: u64,
}

/// The safe reservoir maximum and how it was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    /// The inputs, echoed.
    pub inputs: HeadroomInputs,
    /// 120% of the unlockable bytes, rounded up (what the kernel withholds).
    pub unlockable_120_bytes: u64,
    /// Σ of every deduction (saturating at `u64::MAX`).
    pub deductions_bytes: u64,
    /// physmem - 120% unlockable - others, aligned down to 4 KiB, 0 if negative.
    pub safe_max_bytes: u64,
    /// By how much deductions exceed physmem, else 0.
    pub short_bytes: u64,
}

/// 120% of `bytes`, rounded up: `physmem − limit` for the kernel's own
/// limit is exactly this of `pages_pp_maximum` in bytes.
fn one_twenty_pct(bytes: u64) -> u128 {
    let p = u128::from(bytes).saturating_mul(12);
    p.div_ceil(10)
}

/// The safe reservoir maximum: physical memory minus every other consumer.
pub fn headroom(i: &HeadroomInputs) -> Headroom {
    let unlockable_120 = one_twenty_pct(i.unlockable_bytes);
    // Seven terms below 2^65 each: the u128 sum is exact.
    let deductions = [
        i.arc_floor_bytes,
        i.driver_dma_bytes,
        i.zone_caps_bytes,
        i.os_reserve_bytes,
        i.overcommit_buffer_bytes,
    ]
    .iter()
    .fold(unlockable_120, |acc, b| acc.saturating_add(u128::from(*b)));
    let physmem = u128::from(i.physmem_bytes);
    let left = sat_u64(physmem.saturating_sub(deductions));
    Headroom {
        inputs: *i,
        unlockable_120_bytes: sat_u64(unlockable_120),
        deductions_bytes: sat_u64(deductions),
        // The reservoir takes only whole pages (EINVAL otherwise).
        safe_max_bytes: pages::round_down(left, PAGESIZE).unwrap_or(0),
        short_bytes: sat_u64(deductions.saturating_sub(physmem)),
    }
}

/// The kernel's limit is physmem − 1.2 × pages_pp_maximum (docs/kernel.md, "The reservoir limit"): recover the unlockable bytes from it.
///
/// The kernel computes `(physmem·10 − pp·12) · PAGESIZE / 10` in pages,
/// rounding down, so `physmem − limit` is 1.2 × pp rounded up, less than a
/// byte above the exact value; × 10 / 12 rounded down gives pp back
/// exactly. A limit above physmem gives 0.
pub fn unlockable_from_limit(physmem_bytes: u64, limit_bytes: u64) -> u64 {
    let withheld = u128::from(physmem_bytes.saturating_sub(limit_bytes));
    sat_u64(withheld.saturating_mul(10).checked_div(12).unwrap_or(0))
}

/// A peer's reservoir sizing rule (values are part of the C ABI).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    /// RFD 185: 75% of the limit the vmm subsystem reports.
    Rfd185 = 1,
    /// Oxide omicron sled-agent: 91% of (RAM − page_t − earmark), 2 MiB aligned.
    Omicron = 2,
    /// Triton CNAPI: RAM × 85% − Σ VM caps (no reservoir; what it would provision).
    Cnapi = 3,
}

crate::status::c_enum!(Profile, names: c_name -> &'static core::ffi::CStr {
    Rfd185 => c"rfd185",
    Omicron => c"omicron",
    Cnapi => c"triton-cnapi",
});

impl Profile {
    /// A short stable name.
    pub fn name(self) -> &'static str {
        // One table for Rust and C: the C string without its NUL.
        self.c_name().to_str().unwrap_or_default()
    }
}

/// The control-plane earmark omicron's sled-agent ships for Gimlets
/// (`smf/sled-agent/gimlet/config.toml`, 45056 MiB = 44 GiB). RFD 413's
/// sum: NIC buffers 18 GiB + kernel heap 20 GiB + ZFS ARC minimum 5 GiB +
/// sled-agent 0.5 + mgd 0.25 + NTP 0.25 GiB. Not the default of
/// [`ProfileInputs`]: it describes Oxide's hardware, not a bhyve host.
pub const GIMLET_EARMARK_BYTES: u64 = 45056 << 20;

/// What the sizing rules read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileInputs {
    /// Physical memory.
    pub physmem_bytes: u64,
    /// The reservoir limit the kernel reports (`vrq_limit`).
    pub kernel_limit_bytes: u64,
    /// RFD 185: percent of the limit (75).
    pub rfd185_pct: u32,
    /// omicron: percent of the eligible memory (91, `vmm_reservoir_percentage`
    /// on Gimlets since omicron PR #10791).
    pub omicron_pct: u32,
    /// omicron: control-plane earmark (0 by default; Gimlets ship
    /// [`GIMLET_EARMARK_BYTES`], non-Gimlet sleds 6144 MiB).
    pub omicron_earmark_bytes: u64,
    /// CNAPI: percent of RAM provisionable (85 = 1 − `reservation_ratio` 0.15).
    pub cnapi_pct: u32,
    /// CNAPI: Σ `max_physical_memory` of the VMs on the server.
    pub vm_caps_bytes: u64,
}

impl Default for ProfileInputs {
    fn default() -> Self {
        ProfileInputs {
            physmem_bytes: 0,
            kernel_limit_bytes: 0,
            rfd185_pct: 75,
            omicron_pct: 91,
            omicron_earmark_bytes: 0,
            cnapi_pct: 85,
            vm_caps_bytes: 0,
        }
    }
}

/// RFD 185's boot-time default: 75% of the maximum the kernel reports
/// (docs/sources.md, "Reservoir size").
pub const DEFAULT_TARGET_PERCENT: u64 = 75;

/// The RFD 185 default reservoir target for a kernel limit: 75% of it,
/// rounded down to `chunk` (a multiple of the page size; 0 = the page).
/// `Unaligned` for any other chunk.
pub fn default_target_for(limit: u64, chunk: u64) -> Result<u64, Error> {
    if !pages::is_aligned(chunk, PAGESIZE) && chunk != 0 {
        return Err(Error::new(Status::Unaligned));
    }
    let align = if chunk == 0 { PAGESIZE } else { chunk };
    // Exact in u128: limit × 75 cannot overflow it, and the share is below
    // the limit, so it fits a u64.
    let share = u128::from(limit)
        .saturating_mul(u128::from(DEFAULT_TARGET_PERCENT))
        .checked_div(100)
        .unwrap_or(0);
    pages::round_down(sat_u64(share), align)
}

/// `pct` percent of `x`, rounded down; `InvalidArgument` above 100.
fn percent(x: u64, pct: u32) -> Result<u64, Error> {
    if pct > 100 {
        return Err(Error::new(Status::InvalidArgument));
    }
    // pct% = pct × 100 bp; the result is <= x.
    Ok(sat_u64(bp_floor(x, pct.saturating_mul(100))))
}

/// RFD 185: rfd185_pct of the kernel limit rounded down to 4 KiB (with 75 this is [`default_target_for`]`(limit, 0)`);
/// omicron: (physmem − 120 B × physmem/4 KiB pages − earmark) × 91%, aligned down to 2 MiB; CNAPI: physmem × 85% − Σ caps. Saturating at 0.
///
/// `InvalidArgument` for a percentage above 100. omicron and CNAPI compute
/// in floating point; here every step rounds down in integers, which can
/// differ from them by a byte before alignment.
pub fn sizing(p: Profile, i: &ProfileInputs) -> Result<u64, Error> {
    match p {
        Profile::Rfd185 => {
            let pct = u64::from(i.rfd185_pct);
            if pct == DEFAULT_TARGET_PERCENT {
                // The RFD's own number: the library's default target.
                return default_target_for(i.kernel_limit_bytes, 0);
            }
            pages::round_down(percent(i.kernel_limit_bytes, i.rfd185_pct)?, PAGESIZE)
        }
        Profile::Omicron => {
            // sled-hardware `vmm_eligible()`: usable RAM − a page_t per
            // 4 KiB page − the control-plane earmark. Whole pages, as
            // omicron counts `usable_physical_pages`.
            let page_t = pages::page_t_overhead(pages::btop(i.physmem_bytes, PageSize::Base4K))?;
            let eligible = i
                .physmem_bytes
                .saturating_sub(page_t)
                .saturating_sub(i.omicron_earmark_bytes);
            // "to better enable large pages" (RESERVOIR_SZ_ALIGN).
            pages::round_down(percent(eligible, i.omicron_pct)?, PAGESIZE_2M)
        }
        Profile::Cnapi => {
            let provisionable = percent(i.physmem_bytes, i.cnapi_pct)?;
            Ok(provisionable.saturating_sub(i.vm_caps_bytes))
        }
    }
}

// The page_t size omicron uses is the library's.
static_assertions::const_assert_eq!(PAGE_T_SIZE, 120);

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    const TIB: u64 = 1 << 40;

    /// The kernel's limit, as vmm_reservoir.c computes it, in pages.
    fn kernel_limit(physmem_pages: u64, pp_pages: u64) -> u64 {
        (physmem_pages * 10 - pp_pages * 12) * PAGESIZE / 10
    }

    #[test]
    fn unlockable_round_trips_through_the_kernel_limit() {
        // 128 GiB host, pages_pp_maximum ≈ 4% + 4 MiB.
        let p = 128 * GIB / PAGESIZE;
        let pp = p / 25 + 1024;
        let limit = kernel_limit(p, pp);
        assert_eq!(unlockable_from_limit(p * PAGESIZE, limit), pp * PAGESIZE);
        // And headroom withholds exactly what the kernel did.
        let h = headroom(&HeadroomInputs {
            physmem_bytes: p * PAGESIZE,
            unlockable_bytes: pp * PAGESIZE,
            ..HeadroomInputs::default()
        });
        assert_eq!(h.unlockable_120_bytes, p * PAGESIZE - limit);
        assert_eq!(h.safe_max_bytes, limit / PAGESIZE * PAGESIZE);
        // About 95% of RAM (docs/kernel.md, "The reservoir limit").
        assert_eq!(limit * 100 / (p * PAGESIZE), 95);
        assert_eq!(unlockable_from_limit(GIB, 2 * GIB), 0);
    }

    #[test]
    fn headroom_names_every_consumer() {
        let i = HeadroomInputs {
            physmem_bytes: 256 * GIB,
            unlockable_bytes: 10 * GIB,
            arc_floor_bytes: 4 * GIB,
            driver_dma_bytes: 3 * GIB,
            zone_caps_bytes: 16 * GIB,
            os_reserve_bytes: 2 * GIB,
            overcommit_buffer_bytes: 8 * GIB,
        };
        let h = headroom(&i);
        assert_eq!(h.inputs, i);
        assert_eq!(h.unlockable_120_bytes, 12 * GIB);
        assert_eq!(h.deductions_bytes, 45 * GIB);
        assert_eq!(h.safe_max_bytes, 211 * GIB);
        assert_eq!(h.short_bytes, 0);
        // More consumers than memory: nothing safe, and by how much.
        let tight = headroom(&HeadroomInputs {
            zone_caps_bytes: 250 * GIB,
            ..i
        });
        assert_eq!((tight.safe_max_bytes, tight.short_bytes), (0, 23 * GIB));
        // Saturation instead of wrapping.
        let huge = headroom(&HeadroomInputs {
            physmem_bytes: 1,
            unlockable_bytes: u64::MAX,
            arc_floor_bytes: u64::MAX,
            ..HeadroomInputs::default()
        });
        assert_eq!(huge.deductions_bytes, u64::MAX);
        assert_eq!(huge.short_bytes, u64::MAX);
        // An unaligned remainder is rounded down to the page.
        let odd = headroom(&HeadroomInputs {
            physmem_bytes: GIB + 5000,
            ..HeadroomInputs::default()
        });
        assert_eq!(odd.safe_max_bytes, GIB + 4096);
    }

    #[test]
    fn default_target_is_75_percent_rounded_down() {
        assert_eq!(default_target_for(16 * GIB, 0).unwrap(), 12 * GIB);
        // Rounded down to the chunk.
        assert_eq!(default_target_for(10 * GIB, GIB).unwrap(), 7 * GIB);
        // Rounded down to the page when there is no chunk.
        let limit = 15_237_394_432; // not a multiple of 4 pages
        let t = default_target_for(limit, 0).unwrap();
        assert_eq!(t % PAGESIZE, 0);
        assert!(t <= limit / 4 * 3 + 3 && limit / 4 * 3 - t < PAGESIZE + 3);
        // No overflow at the top of the range.
        let t = default_target_for(u64::MAX, 0).unwrap();
        assert_eq!(
            t,
            (u128::from(u64::MAX) * 75 / 100) as u64 / PAGESIZE * PAGESIZE
        );
        assert_eq!(
            default_target_for(GIB, 4095).unwrap_err().status(),
            Status::Unaligned
        );
        assert_eq!(default_target_for(0, 0).unwrap(), 0);
    }

    #[test]
    fn rfd185_is_the_default_target() {
        let i = ProfileInputs {
            kernel_limit_bytes: 121 * GIB + 12345,
            ..ProfileInputs::default()
        };
        let t = sizing(Profile::Rfd185, &i).unwrap();
        assert_eq!(t, default_target_for(i.kernel_limit_bytes, 0).unwrap());
        // 90% takes the general path: page aligned, 90% rounded down.
        let n = sizing(
            Profile::Rfd185,
            &ProfileInputs {
                rfd185_pct: 90,
                ..i
            },
        )
        .unwrap();
        assert_eq!(n % PAGESIZE, 0);
        assert!(n <= i.kernel_limit_bytes / 10 * 9 && n + PAGESIZE > i.kernel_limit_bytes / 10 * 9);
    }

    /// A 1 TiB Gimlet: page_t 30 GiB, earmark 44 GiB, eligible 950 GiB,
    /// 91% = 864.5 GiB (already 2 MiB aligned).
    #[test]
    fn omicron_on_a_1_tib_gimlet() {
        let i = ProfileInputs {
            physmem_bytes: TIB,
            omicron_earmark_bytes: GIMLET_EARMARK_BYTES,
            ..ProfileInputs::default()
        };
        assert_eq!(GIMLET_EARMARK_BYTES, 44 * GIB);
        assert_eq!(sizing(Profile::Omicron, &i).unwrap(), 864 * GIB + 512 * MIB);
        // Without the earmark: 994 GiB × 91% = 904.54 GiB, down to 2 MiB.
        let bare = sizing(
            Profile::Omicron,
            &ProfileInputs {
                omicron_earmark_bytes: 0,
                ..i
            },
        )
        .unwrap();
        assert_eq!(bare % (2 * MIB), 0);
        assert_eq!(bare, (994 * GIB / 100 * 91) / (2 * MIB) * (2 * MIB));
        // An earmark above RAM saturates at 0.
        let none = ProfileInputs {
            omicron_earmark_bytes: 2 * TIB,
            ..i
        };
        assert_eq!(sizing(Profile::Omicron, &none).unwrap(), 0);
    }

    #[test]
    fn cnapi_85_percent_minus_caps() {
        let i = ProfileInputs {
            physmem_bytes: 100 * GIB,
            vm_caps_bytes: 40 * GIB,
            ..ProfileInputs::default()
        };
        assert_eq!(sizing(Profile::Cnapi, &i).unwrap(), 45 * GIB);
        let full = ProfileInputs {
            vm_caps_bytes: 90 * GIB,
            ..i
        };
        assert_eq!(sizing(Profile::Cnapi, &full).unwrap(), 0);
        let bad = ProfileInputs {
            cnapi_pct: 101,
            ..i
        };
        assert_eq!(
            sizing(Profile::Cnapi, &bad).unwrap_err().status(),
            Status::InvalidArgument
        );
    }

    #[test]
    fn profiles_round_trip() {
        for p in Profile::ALL {
            assert_eq!(Profile::from_u32(p as u32), Some(p));
            assert_eq!(p.to_u32(), p as u32);
        }
        assert_eq!(Profile::from_u32(4), None);
        assert_eq!(Profile::Cnapi.name(), "triton-cnapi");
    }
}
