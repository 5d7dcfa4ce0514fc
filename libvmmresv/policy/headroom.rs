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

use super::sat_u64;
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

/// The kernel's reservoir limit for `physmem_bytes` of memory of which
/// `unlockable_bytes` (`pages_pp_maximum` in bytes) can never be locked:
/// `(physmem·10 − unlockable·12) / 10`, rounded down, 0 if 1.2 ×
/// unlockable exceeds physmem (docs/kernel.md, "The reservoir limit").
///
/// `vmmr_init()` computes `((physmem·10 − pp·12) · PAGESIZE) / 10` with both
/// counts in pages: the same number as this in bytes, since the multiplication
/// by `PAGESIZE` comes before the division. The inverse of
/// [`unlockable_from_limit`]: for any `unlockable_bytes` with 1.2 × it at
/// most `physmem_bytes`, `unlockable_from_limit(physmem, limit_from_unlockable(physmem, u)) == u`.
pub fn limit_from_unlockable(physmem_bytes: u64, unlockable_bytes: u64) -> u64 {
    let p10 = u128::from(physmem_bytes).saturating_mul(10);
    let u12 = u128::from(unlockable_bytes).saturating_mul(12);
    // At most physmem: fits a u64.
    sat_u64(p10.saturating_sub(u12).checked_div(10).unwrap_or(0))
}

/// An exact fraction `numerator / denominator`, at most 1: a sizing rule's
/// share in the units operators write it (omicron's 86.3% is 863/1000 or
/// 8630 basis points, 8630/10000).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fraction {
    numerator: u64,
    denominator: u64,
}

impl Fraction {
    /// `numerator / denominator`; `InvalidArgument` for a zero denominator
    /// or a fraction above 1.
    pub fn new(numerator: u64, denominator: u64) -> Result<Fraction, Error> {
        if denominator == 0 || numerator > denominator {
            return Err(Error::new(Status::InvalidArgument));
        }
        Ok(Fraction {
            numerator,
            denominator,
        })
    }

    /// `pct` percent; `InvalidArgument` above 100.
    pub fn percent(pct: u32) -> Result<Fraction, Error> {
        Fraction::new(u64::from(pct), 100)
    }

    /// `bp` basis points (10000 = 100%); `InvalidArgument` above 10000.
    pub fn basis_points(bp: u32) -> Result<Fraction, Error> {
        Fraction::new(u64::from(bp), u64::from(super::BP_ONE))
    }

    /// The numerator.
    pub fn numerator(self) -> u64 {
        self.numerator
    }

    /// The denominator (never 0).
    pub fn denominator(self) -> u64 {
        self.denominator
    }

    /// `x` × the fraction, rounded down; exact, at most `x`.
    pub fn of(self, x: u64) -> u64 {
        // Below 2^128 (both factors are below 2^64): the product is exact.
        let p = u128::from(x).saturating_mul(u128::from(self.numerator));
        sat_u64(p.checked_div(u128::from(self.denominator)).unwrap_or(0))
    }
}

/// The share each sizing profile takes, as exact fractions: what the
/// capacity report applies. By default the percentages of
/// [`ProfileInputs::default`]: 75/100, 91/100, 85/100.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProfileFractions {
    /// RFD 185's share of the kernel limit.
    pub rfd185: Fraction,
    /// omicron's share of the eligible memory.
    pub omicron: Fraction,
    /// CNAPI's share of physical memory.
    pub cnapi: Fraction,
}

impl Default for ProfileFractions {
    fn default() -> Self {
        let d = ProfileInputs::default();
        let pct = |p: u32| Fraction {
            numerator: u64::from(p),
            denominator: 100,
        };
        ProfileFractions {
            rfd185: pct(d.rfd185_pct),
            omicron: pct(d.omicron_pct),
            cnapi: pct(d.cnapi_pct),
        }
    }
}

impl ProfileFractions {
    /// The share of `p`.
    pub fn get(&self, p: Profile) -> Fraction {
        match p {
            Profile::Rfd185 => self.rfd185,
            Profile::Omicron => self.omicron,
            Profile::Cnapi => self.cnapi,
        }
    }

    /// Set the share of `p`.
    pub fn set(&mut self, p: Profile, f: Fraction) {
        match p {
            Profile::Rfd185 => self.rfd185 = f,
            Profile::Omicron => self.omicron = f,
            Profile::Cnapi => self.cnapi = f,
        }
    }
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

impl ProfileInputs {
    /// The percentage of `p` (`rfd185_pct`, `omicron_pct`, `cnapi_pct`) as
    /// a fraction; `InvalidArgument` above 100.
    pub fn fraction(&self, p: Profile) -> Result<Fraction, Error> {
        Fraction::percent(match p {
            Profile::Rfd185 => self.rfd185_pct,
            Profile::Omicron => self.omicron_pct,
            Profile::Cnapi => self.cnapi_pct,
        })
    }
}

/// RFD 185: rfd185_pct of the kernel limit rounded down to 4 KiB (with 75 this is [`default_target_for`]`(limit, 0)`);
/// omicron: (physmem − 120 B × physmem/4 KiB pages − earmark) × 91%, aligned down to 2 MiB; CNAPI: physmem × 85% − Σ caps. Saturating at 0.
///
/// `InvalidArgument` for a percentage above 100. omicron and CNAPI compute
/// in floating point; here every step rounds down in integers, which can
/// differ from them by a byte before alignment. [`sizing_fraction`] takes
/// any exact fraction instead of the percentage.
pub fn sizing(p: Profile, i: &ProfileInputs) -> Result<u64, Error> {
    sizing_fraction(p, i, i.fraction(p)?)
}

/// [`sizing`] with `f` in place of the profile's percentage (the other
/// percentages of `i` are not read): omicron's 86.3% is
/// `Fraction::basis_points(8630)`. A whole percentage gives what
/// [`sizing`] gives with it.
pub fn sizing_fraction(p: Profile, i: &ProfileInputs, f: Fraction) -> Result<u64, Error> {
    match p {
        // With 3/4, floor(limit × 3/4) is default_target_for's 75% exactly.
        Profile::Rfd185 => pages::round_down(f.of(i.kernel_limit_bytes), PAGESIZE),
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
            pages::round_down(f.of(eligible), PAGESIZE_2M)
        }
        Profile::Cnapi => Ok(f.of(i.physmem_bytes).saturating_sub(i.vm_caps_bytes)),
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

    /// omicron's gimlet-standalone 86.3% (8630 bp) on a 1 TiB sled with the
    /// Gimlet earmark: eligible 1020054732800 B, × 8630 / 10000 =
    /// 880307234406.4, down to 2 MiB = 880306814976.
    #[test]
    fn omicron_in_basis_points_on_1_tib() {
        let i = ProfileInputs {
            physmem_bytes: TIB,
            omicron_earmark_bytes: 45056 * MIB,
            ..ProfileInputs::default()
        };
        let bp = Fraction::basis_points(8630).unwrap();
        assert_eq!(
            sizing_fraction(Profile::Omicron, &i, bp).unwrap(),
            880_306_814_976
        );
        // The same fraction written as 863/1000.
        let f = Fraction::new(863, 1000).unwrap();
        assert_eq!(
            sizing_fraction(Profile::Omicron, &i, f).unwrap(),
            880_306_814_976
        );
        assert_eq!(880_306_814_976 % (2 * MIB), 0);
        assert_eq!((1_020_054_732_800u64 * 8630 / 10000), 880_307_234_406);
    }

    #[test]
    fn a_whole_percent_fraction_is_the_percentage() {
        let i = ProfileInputs {
            physmem_bytes: TIB + 12345 * 4096 + 7,
            kernel_limit_bytes: 973 * GIB + 4097,
            omicron_earmark_bytes: GIMLET_EARMARK_BYTES,
            vm_caps_bytes: 100 * GIB,
            ..ProfileInputs::default()
        };
        for p in Profile::ALL {
            for pct in [0u32, 1, 60, 75, 85, 91, 99, 100] {
                let by_pct = ProfileInputs {
                    rfd185_pct: pct,
                    omicron_pct: pct,
                    cnapi_pct: pct,
                    ..i
                };
                let want = sizing(p, &by_pct).unwrap();
                let f = Fraction::new(u64::from(pct), 100).unwrap();
                // Whatever the inputs' percentages say.
                assert_eq!(sizing_fraction(p, &i, f).unwrap(), want, "{p:?} {pct}");
                let bp = Fraction::basis_points(pct * 100).unwrap();
                assert_eq!(sizing_fraction(p, &i, bp).unwrap(), want, "{p:?} {pct}");
            }
        }
        // The defaults: 91% on the 1 TiB Gimlet, as omicron_on_a_1_tib_gimlet.
        let g = ProfileInputs {
            physmem_bytes: TIB,
            omicron_earmark_bytes: GIMLET_EARMARK_BYTES,
            ..ProfileInputs::default()
        };
        let f = Fraction::new(91, 100).unwrap();
        assert_eq!(
            sizing_fraction(Profile::Omicron, &g, f).unwrap(),
            864 * GIB + 512 * MIB
        );
        assert_eq!(864 * GIB + 512 * MIB, 928_249_806_848);
    }

    #[test]
    fn fractions_zero_one_and_invalid() {
        let i = ProfileInputs {
            physmem_bytes: 64 * GIB,
            kernel_limit_bytes: 60 * GIB + 5000,
            vm_caps_bytes: GIB,
            ..ProfileInputs::default()
        };
        let zero = Fraction::new(0, 1).unwrap();
        let one = Fraction::new(1, 1).unwrap();
        for p in Profile::ALL {
            assert_eq!(sizing_fraction(p, &i, zero).unwrap(), 0, "{p:?}");
        }
        assert_eq!(
            sizing_fraction(Profile::Rfd185, &i, one).unwrap(),
            60 * GIB + 4096
        );
        assert_eq!(sizing_fraction(Profile::Cnapi, &i, one).unwrap(), 63 * GIB);
        // 64 GiB − 120 B per page = 62.125 GiB, down to 2 MiB.
        assert_eq!(
            sizing_fraction(Profile::Omicron, &i, one).unwrap(),
            62 * GIB + 128 * MIB
        );
        for (n, d) in [(1, 0), (0, 0), (101, 100), (u64::MAX, u64::MAX - 1)] {
            assert_eq!(
                Fraction::new(n, d).unwrap_err().status(),
                Status::InvalidArgument,
                "{n}/{d}"
            );
        }
        assert_eq!(
            Fraction::basis_points(10001).unwrap_err().status(),
            Status::InvalidArgument
        );
        assert_eq!(
            Fraction::percent(101).unwrap_err().status(),
            Status::InvalidArgument
        );
        // No overflow at the top of the range: u64::MAX × (2^64 − 2) /
        // (2^64 − 1) = 2^64 − 2 exactly.
        let f = Fraction::new(u64::MAX - 1, u64::MAX).unwrap();
        assert_eq!(f.of(u64::MAX), u64::MAX - 1);
        assert_eq!(
            Fraction::new(u64::MAX, u64::MAX).unwrap().of(u64::MAX),
            u64::MAX
        );
        assert_eq!((f.numerator(), f.denominator()), (u64::MAX - 1, u64::MAX));
    }

    #[test]
    fn limit_from_unlockable_is_the_kernels_formula() {
        // 128 GiB host, pages_pp_maximum ≈ 4% + 4 MiB, as vmmr_init() sees it.
        let p = 128 * GIB / PAGESIZE;
        let pp = p / 25 + 1024;
        let limit = kernel_limit(p, pp);
        assert_eq!(limit_from_unlockable(p * PAGESIZE, pp * PAGESIZE), limit);
        // The man page's figures.
        assert_eq!((pp, limit), (1_343_201, 130_836_851_916));
        // Not page aligned: 10 × (128 GiB) − 12 × pp bytes is not a
        // multiple of 10 × 4096.
        assert_ne!(limit % PAGESIZE, 0);
        // And back.
        assert_eq!(unlockable_from_limit(p * PAGESIZE, limit), pp * PAGESIZE);
        // 100 bytes of memory, 10 unlockable: 100 − 12 = 88 (the C test's figures).
        assert_eq!(limit_from_unlockable(100, 10), 88);
        assert_eq!(unlockable_from_limit(100, 88), 10);
        // 1 unlockable byte withholds 1.2, i.e. 2 after rounding the limit down.
        assert_eq!(limit_from_unlockable(100, 1), 98);
        assert_eq!(unlockable_from_limit(100, 98), 1);
        // Nothing unlockable: all of memory; 1.2 × unlockable above it: 0.
        assert_eq!(limit_from_unlockable(TIB, 0), TIB);
        assert_eq!(limit_from_unlockable(120, 100), 0);
        assert_eq!(limit_from_unlockable(120, 101), 0);
        assert_eq!(limit_from_unlockable(u64::MAX, u64::MAX), 0);
        assert_eq!(limit_from_unlockable(u64::MAX, 0), u64::MAX);
        // Every unlockable amount up to physmem / 1.2 round-trips, to the byte.
        let physmem = 1_000_003u64;
        for u in 0..=physmem * 10 / 12 {
            let l = limit_from_unlockable(physmem, u);
            assert_eq!(unlockable_from_limit(physmem, l), u, "{u}");
            assert_eq!(
                limit_from_unlockable(physmem, unlockable_from_limit(physmem, l)),
                l
            );
        }
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
