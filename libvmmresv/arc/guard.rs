//! The arc_c_min guard, the ARC target, and the ARC's default limits.
//!
//! **Guard** (OS-8005, illumos-joyent PR #354, `arc_virt_machine_reserve()`):
//! a VM's memory is reserved against the ARC, and a reservation that would
//! leave less than `arc_c_min` under the ceiling is refused:
//!
//! ```c
//! newv = atomic_add_64_nv(&arc_virt_machine_reserved, pages);
//! if (newv + arc_c_min > arc_c_max) { /* undo */ return (ENOMEM); }
//! ```
//!
//! `arc_virt_machine_reserved` counts **pages** while `arc_c_min` and
//! `arc_c_max` are **bytes**, so as merged the guard only fires when the
//! page count alone exceeds `arc_c_max - arc_c_min` read as a number —
//! practically never. Here every quantity is converted to pages once, at
//! the boundary ([`GuardInputs::new`]), and the comparison is pages against
//! pages.
//!
//! **Target**: a reservation "effectively lowers arc_c_max" (the OS-8005
//! comment), so the ARC should shrink to the ceiling less what VMs have
//! reserved, less a slack — never below `arc_c_min` (the ARC will not go
//! there: `arc_reduce_target_size()` stops at it) and never above the
//! configured `arc_c_max`.
//!
//! **Defaults**: how illumos and OpenZFS/Linux derive `arc_c_min` and
//! `arc_c_max` from memory, for when only physmem is known.
//!
//! Everything here is pure integer arithmetic; overflow is checked, and
//! each saturating operation says why it may saturate.

use std::fmt;

use super::snapshot::HostSnapshot;
use crate::pages::{self, btop, btopr, PageSize};
use crate::status::{Error, Status};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The ARC's floor and ceiling, in bytes (arcstats `c_min`, `c_max`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcLimits {
    /// `arc_c_min`: the ARC never targets less.
    pub arc_c_min: u64,
    /// `arc_c_max`: the ARC never targets more.
    pub arc_c_max: u64,
}

impl ArcLimits {
    /// The limits a host reports (arcstats `c_min`, `c_max`), if it shows
    /// both.
    pub fn from_snapshot(s: &HostSnapshot) -> Option<ArcLimits> {
        Some(ArcLimits {
            arc_c_min: s.arc_c_min?,
            arc_c_max: s.arc_c_max?,
        })
    }
}

/// What a reservation is checked against (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceiling {
    /// `arc_c_max`, as the illumos-joyent OS-8005 code does (the default).
    ArcCMax,
    /// Physical memory, as the library's guard is stated (docs/kernel.md,
    /// "The library's ARC guard").
    Physmem(u64),
    /// Any budget the caller sets, e.g.
    /// [`super::snapshot::HostSnapshot::vm_and_arc_budget`].
    Budget(u64),
}

impl Ceiling {
    /// The ceiling in bytes, given the ARC's limits.
    pub fn bytes(self, limits: &ArcLimits) -> u64 {
        match self {
            Ceiling::ArcCMax => limits.arc_c_max,
            Ceiling::Physmem(b) | Ceiling::Budget(b) => b,
        }
    }
}

/// The guard's inputs, all in **pages** (4 KiB).
///
/// Build it with [`GuardInputs::new`], which converts bytes once and rounds
/// so that the guard errs on the side of refusing: what is *demanded*
/// (`arc_c_min`, the request) is rounded **up**, what is *supplied* (the
/// ceiling) is rounded **down**.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuardInputs {
    /// `arc_c_min` in pages (rounded up: a demand).
    pub arc_c_min: u64,
    /// The ceiling in pages (rounded down: a supply).
    pub ceiling: u64,
    /// Which ceiling it is (for reports).
    pub ceiling_kind: Ceiling,
    /// VMM memory already reserved (the ledger's total), in pages — the
    /// OS-8005 `arc_virt_machine_reserved`, kept in pages as that code did.
    pub arc_virt_machine_reserved: u64,
    /// This request, in pages (rounded up: a demand).
    pub request: u64,
}

impl GuardInputs {
    /// Converts byte quantities to pages, once.
    ///
    /// - `arc_c_min`: `btopr` — the ARC keeps at least this much; a partial
    ///   page is still memory the VMs cannot have.
    /// - ceiling: `btop` — a partial page at the top cannot hold a VM page.
    /// - `request_bytes`: `btopr` — the VM's memory is allocated in whole
    ///   pages, as `vm_arc_resv()` rounded it (`roundup2(len, PAGE_SIZE)`).
    ///
    /// `arc_virt_machine_reserved` is already in pages (the ledger keeps
    /// pages, each reservation rounded up when it was made).
    pub fn new(
        limits: &ArcLimits,
        ceiling: Ceiling,
        arc_virt_machine_reserved: u64,
        request_bytes: u64,
    ) -> GuardInputs {
        GuardInputs {
            arc_c_min: btopr(limits.arc_c_min, PageSize::Base4K),
            ceiling: btop(ceiling.bytes(limits), PageSize::Base4K),
            ceiling_kind: ceiling,
            arc_virt_machine_reserved,
            request: btopr(request_bytes, PageSize::Base4K),
        }
    }
}

/// A reservation the guard admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admitted {
    /// The new `arc_virt_machine_reserved` (pages), request included.
    pub arc_virt_machine_reserved: u64,
    /// Pages still free under the ceiling after `arc_c_min` and every
    /// reservation.
    pub headroom: u64,
}

/// Why the guard refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `arc_c_min + reserved + request` would exceed the ceiling.
    Shortfall {
        /// By how much, in bytes (what would have to be freed or given up).
        /// Saturates at `u64::MAX`, which only a request of more than the
        /// address space can reach; the refusal stands either way.
        shortfall_bytes: u64,
        /// The same in pages.
        shortfall_pages: u64,
        /// `arc_c_min + reserved + request`, in pages.
        need: u64,
        /// The ceiling, in pages.
        ceiling: u64,
    },
    /// The page counts themselves do not add up in 64 bits (only possible
    /// with page counts no byte count can produce).
    Overflow,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Shortfall {
                shortfall_bytes,
                need,
                ceiling,
                ..
            } => write!(
                f,
                "refused: arc_c_min + VMM reservations + request = {need} pages, \
                 above the ceiling of {ceiling} pages by {shortfall_bytes} bytes"
            ),
            Refusal::Overflow => write!(f, "refused: page counts overflow 64 bits"),
        }
    }
}

impl std::error::Error for Refusal {}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Error {
        match r {
            Refusal::Shortfall { .. } => Error::new(Status::Refused),
            Refusal::Overflow => Error::new(Status::Overflow),
        }
    }
}

/// The arc_c_min guard: admit `request` if `arc_c_min + reserved + request
/// <= ceiling` (all pages), else refuse with the shortfall.
///
/// Pure: it does not record anything; the ledger adds the request to its
/// total only on `Ok` (and must do so atomically with this check).
pub fn guard(inputs: &GuardInputs) -> Result<Admitted, Refusal> {
    // Checked, not saturating: a saturated need could compare equal to a
    // ceiling of u64::MAX and be admitted.
    let reserved = inputs
        .arc_virt_machine_reserved
        .checked_add(inputs.request)
        .ok_or(Refusal::Overflow)?;
    let need = reserved
        .checked_add(inputs.arc_c_min)
        .ok_or(Refusal::Overflow)?;
    match inputs.ceiling.checked_sub(need) {
        Some(headroom) => Ok(Admitted {
            arc_virt_machine_reserved: reserved,
            headroom,
        }),
        None => {
            // need > ceiling here, so the subtraction cannot fail.
            let shortfall_pages = need.saturating_sub(inputs.ceiling);
            Err(Refusal::Shortfall {
                shortfall_bytes: pages::ptob(shortfall_pages, PageSize::Base4K).unwrap_or(u64::MAX),
                shortfall_pages,
                need,
                ceiling: inputs.ceiling,
            })
        }
    }
}

/// A VM's memory demand: guest RAM, optionally its `page_t`s, and a per-VM
/// overhead.
///
/// OS-8005 as merged reserved the guest size alone (bhyve passed `memsize`);
/// the ticket's first comment asks that the reservation be "inclusive of the
/// size of guest RAM, the required number of page_ts, and perhaps other
/// memory used by a bhyve instance". Both are expressible: `page_t` adds
/// `pages::page_t_overhead_bytes(guest_bytes)` (120 bytes per 4 KiB page),
/// `overhead_bytes` whatever the caller's overhead model says (the OS-8005
/// ticket's `::memstat` tables show 17 MiB and 32 MiB of VMM memory beyond
/// guest RAM).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VmDemand {
    /// Guest RAM (bhyve `-m`).
    pub guest_bytes: u64,
    /// Add the `page_t`s of the guest's pages.
    pub page_t: bool,
    /// Other memory the VM will hold (framebuffer, boot ROM, ...).
    pub overhead_bytes: u64,
}

impl VmDemand {
    /// The demand in bytes; `Overflow` if it does not fit a `u64`.
    pub fn bytes(&self) -> Result<u64, Error> {
        let page_t = if self.page_t {
            pages::page_t_overhead_bytes(self.guest_bytes)?
        } else {
            0
        };
        self.guest_bytes
            .checked_add(page_t)
            .and_then(|v| v.checked_add(self.overhead_bytes))
            .ok_or(Error::new(Status::Overflow))
    }
}

/// Inputs of [`target`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetInputs {
    /// The ARC's configured floor and ceiling (bytes).
    pub limits: ArcLimits,
    /// The ceiling reservations are taken from.
    pub ceiling: Ceiling,
    /// The ledger's total (pages), after the admission being served.
    pub arc_virt_machine_reserved: u64,
    /// Extra room to ask for (bytes), because others allocate while the ARC
    /// shrinks (OS-8005: "asking for slightly more than what is needed");
    /// see [`desfree_slack`].
    pub slack: u64,
}

/// Which bound the target was clamped to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clamp {
    /// Raised to `arc_c_min`: the reservations (and slack) leave less than
    /// the ARC's floor under the ceiling; the ARC will not give the rest.
    ArcCMin,
    /// Lowered to `arc_c_max`: the ledger leaves more room than the ARC may
    /// use anyway.
    ArcCMax,
}

/// The ARC target the ledger implies, with the inputs that produced it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetReport {
    /// The target (bytes): a page multiple, unless clamped to a limit.
    pub target_bytes: u64,
    /// The floor used.
    pub arc_c_min: u64,
    /// The ceiling of the ARC used.
    pub arc_c_max: u64,
    /// The ceiling reservations were taken from.
    pub ceiling: Ceiling,
    /// That ceiling in bytes, rounded down to a page.
    pub ceiling_bytes: u64,
    /// VMM reservations (bytes).
    pub reserved_bytes: u64,
    /// The slack (bytes), rounded up to a page.
    pub slack_bytes: u64,
    /// `ceiling - reserved - slack` before clamping; `None` if negative.
    pub unclamped_bytes: Option<u64>,
    /// Which limit, if any, the target was clamped to.
    pub clamped_by: Option<Clamp>,
}

/// The ARC target: `ceiling - reservations - slack`, clamped to
/// `[arc_c_min, arc_c_max]`.
///
/// Computed in pages (ceiling rounded down, slack rounded up, as in the
/// guard) and converted back to bytes once. `InvalidArgument` if
/// `arc_c_min > arc_c_max` (no target satisfies both); `Overflow` if the
/// reservation total is more pages than 64-bit bytes can hold.
pub fn target(inputs: &TargetInputs) -> Result<TargetReport, Error> {
    let ArcLimits {
        arc_c_min,
        arc_c_max,
    } = inputs.limits;
    if arc_c_min > arc_c_max {
        return Err(Error::new(Status::InvalidArgument));
    }
    let ceiling = btop(inputs.ceiling.bytes(&inputs.limits), PageSize::Base4K);
    let slack = btopr(inputs.slack, PageSize::Base4K);
    let reserved = inputs.arc_virt_machine_reserved;
    // Checked: a negative result is meaningful (the ledger leaves no room),
    // and is reported as None rather than wrapped or saturated to 0.
    let unclamped = ceiling
        .checked_sub(reserved)
        .and_then(|v| v.checked_sub(slack));
    let unclamped_bytes = match unclamped {
        Some(p) => Some(pages::ptob(p, PageSize::Base4K)?),
        None => None,
    };
    let (target_bytes, clamped_by) = match unclamped_bytes {
        None => (arc_c_min, Some(Clamp::ArcCMin)),
        Some(b) if b < arc_c_min => (arc_c_min, Some(Clamp::ArcCMin)),
        Some(b) if b > arc_c_max => (arc_c_max, Some(Clamp::ArcCMax)),
        Some(b) => (b, None),
    };
    Ok(TargetReport {
        target_bytes,
        arc_c_min,
        arc_c_max,
        ceiling: inputs.ceiling,
        ceiling_bytes: pages::ptob(ceiling, PageSize::Base4K)?,
        reserved_bytes: pages::ptob(reserved, PageSize::Base4K)?,
        slack_bytes: pages::ptob(slack, PageSize::Base4K)?,
        unclamped_bytes,
        clamped_by,
    })
}

/// A default slack: 1/128 of physical memory.
///
/// The OS-8005 kernel change shrinks the ARC until `availrmem - reserved -
/// desfree >= 0` ("We add desfree to keep us out of particularly dire
/// circumstances"), and the ticket gives desfree as 1/128 of RAM by default.
/// Newer illumos clamps lotsfree (so desfree) to 8 MiB..1 GiB; 1/128 is the
/// older, larger margin (docs/sources.md, "ARC"; the clamp is UNVERIFIED).
pub fn desfree_slack(physmem_bytes: u64) -> u64 {
    physmem_bytes / 128
}

/// `swapfs_minfree`, the memory illumos keeps from swapfs, which its ARC
/// subtracts from physmem (`allmem = ptob(physmem - swapfs_minfree)`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapfsMinfree {
    /// `MAX(btopr(2 MiB), physmem >> 3)`: 1/8 of memory, at least 2 MiB —
    /// the long-standing default (`swapinit()` in illumos `swap_subr.c`;
    /// Solaris Tunable Parameters manual: "the larger of 2 Mbytes and 1/8th
    /// of physical memory").
    Classic,
    /// `MIN(btopr(512 MiB), physmem >> 3)`: 1/8 of memory, at most 512 MiB —
    /// current illumos-gate (`swapfs_recalc()` in `swap_subr.c` @ d5a81659).
    /// When illumos-joyent (SmartOS) took this change is UNVERIFIED.
    Capped512M,
    /// A value set in /etc/system, in pages.
    Pages(u64),
}

impl SwapfsMinfree {
    /// `swapfs_minfree` in pages for a host of `physmem` pages.
    pub fn pages(self, physmem: u64) -> u64 {
        let eighth = physmem >> 3;
        match self {
            SwapfsMinfree::Classic => eighth.max(btopr(2 * MIB, PageSize::Base4K)),
            SwapfsMinfree::Capped512M => eighth.min(btopr(512 * MIB, PageSize::Base4K)),
            SwapfsMinfree::Pages(p) => p,
        }
    }
}

/// Default ARC limits and the memory they were computed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArcDefaults {
    /// The "all memory" figure the ARC sizes itself from (bytes).
    pub allmem: u64,
    /// The resulting `arc_c_min` / `arc_c_max`.
    pub limits: ArcLimits,
}

/// `a * num / den` exactly (u128 intermediate: `a * num` can exceed 64 bits
/// where the C code's `allmem * 3 / 4` would wrap); `den` is a nonzero
/// constant and the result is at most `a`, so it always fits.
fn fraction(a: u64, num: u64, den: u64) -> u64 {
    let v = u128::from(a)
        .checked_mul(u128::from(num))
        .and_then(|v| v.checked_div(u128::from(den)))
        .unwrap_or(0);
    u64::try_from(v).unwrap_or(u64::MAX)
}

/// illumos `arc_init()` defaults for `allmem` bytes
/// (omniosorg/illumos-omnios and TritonDataCenter/illumos-joyent
/// `usr/src/uts/common/fs/zfs/arc.c`; docs/kernel.md, "ARC limits"):
///
/// - `arc_c_min = MIN(MAX(allmem / 64, 64 MiB), 1 GiB)`
/// - `arc_c_max = MAX(allmem * 3 / 4, allmem >= 1 GiB ? allmem - 1 GiB :
///   arc_c_min)`
///
/// (`zfs_arc_min` / `zfs_arc_max` from /etc/system are not applied.)
pub fn illumos_arc_limits_for_allmem(allmem: u64) -> ArcDefaults {
    // MAX(allmem / 64, 64 MiB) then MIN(.., 1 GiB); clamp's bounds are
    // constants in order, so it cannot panic.
    let arc_c_min = (allmem / 64).clamp(64 * MIB, GIB);
    let less_1g = allmem.checked_sub(GIB).unwrap_or(arc_c_min);
    let arc_c_max = fraction(allmem, 3, 4).max(less_1g);
    ArcDefaults {
        allmem,
        limits: ArcLimits {
            arc_c_min,
            arc_c_max,
        },
    }
}

/// illumos defaults for a host of `physmem_bytes`:
/// `allmem = ptob(physmem - swapfs_minfree)`, then
/// [`illumos_arc_limits_for_allmem`]. physmem is taken in whole pages
/// (`btop`), as the kernel counts it.
pub fn illumos_arc_limits(physmem_bytes: u64, swapfs_minfree: SwapfsMinfree) -> ArcDefaults {
    let physmem = btop(physmem_bytes, PageSize::Base4K);
    // swapfs_minfree > physmem panics illumos at boot ("swapfs_minfree(%lu)
    // > physmem(%lu)"); here it leaves no memory for the ARC: saturating.
    let pages = physmem.saturating_sub(swapfs_minfree.pages(physmem));
    // physmem < 2^52 pages, so ptob cannot fail; 0 would only hide a bug.
    let allmem = pages::ptob(pages, PageSize::Base4K).unwrap_or(0);
    illumos_arc_limits_for_allmem(allmem)
}

/// OpenZFS on Linux, 2.3 and later (`arc_set_limits()` in
/// `module/zfs/arc.c`, `arc_default_max()` in
/// `module/os/linux/zfs/arc_os.c` since openzfs/zfs#15437, commit
/// 6a629f3234):
///
/// - `arc_c_min = MAX(allmem / 32, 2 << SPA_MAXBLOCKSHIFT = 32 MiB)`
/// - `arc_c_max = MAX(allmem * 5 / 8, allmem >= 1 GiB ? allmem - 1 GiB :
///   arc_c_min)`
///
/// `allmem` is `arc_all_memory()` (arcstats `memory_all_bytes`).
pub fn openzfs_linux_arc_limits(allmem: u64) -> ArcDefaults {
    let arc_c_min = (allmem / 32).max(32 * MIB);
    let less_1g = allmem.checked_sub(GIB).unwrap_or(arc_c_min);
    let arc_c_max = fraction(allmem, 5, 8).max(less_1g);
    ArcDefaults {
        allmem,
        limits: ArcLimits {
            arc_c_min,
            arc_c_max,
        },
    }
}

/// OpenZFS on Linux before 2.3 (0.7 – 2.2): the same `arc_c_min`, and
/// `arc_c_max = MAX(allmem / 2, arc_c_min)` (½ RAM).
pub fn openzfs_linux_arc_limits_pre_2_3(allmem: u64) -> ArcDefaults {
    let arc_c_min = (allmem / 32).max(32 * MIB);
    ArcDefaults {
        allmem,
        limits: ArcLimits {
            arc_c_min,
            arc_c_max: (allmem / 2).max(arc_c_min),
        },
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    fn limits(min: u64, max: u64) -> ArcLimits {
        ArcLimits {
            arc_c_min: min,
            arc_c_max: max,
        }
    }

    #[test]
    fn rounding_is_conservative() {
        // A demand of one byte is a page; a ceiling one byte short of a page
        // is no page.
        let i = GuardInputs::new(&limits(1, 2 * P - 1), Ceiling::ArcCMax, 0, 1);
        assert_eq!((i.arc_c_min, i.ceiling, i.request), (1, 1, 1));
        assert!(matches!(
            guard(&i),
            Err(Refusal::Shortfall {
                shortfall_pages: 1,
                shortfall_bytes: P,
                need: 2,
                ceiling: 1
            })
        ));
        // Exactly at the ceiling is admitted.
        let i = GuardInputs::new(&limits(P, 2 * P), Ceiling::ArcCMax, 0, P);
        assert_eq!(
            guard(&i),
            Ok(Admitted {
                arc_virt_machine_reserved: 1,
                headroom: 0
            })
        );
    }

    /// The OS-8005 unit mix-up would pass this: 97 GiB of pages plus 4 GiB
    /// of bytes is far below 100 GiB of bytes. In like units it is 1 GiB
    /// over.
    #[test]
    fn pages_are_never_compared_with_bytes() {
        let l = limits(4 * GIB, 100 * GIB);
        let i = GuardInputs::new(&l, Ceiling::ArcCMax, 0, 97 * GIB);
        let as_merged_refuses = i.request + l.arc_c_min > l.arc_c_max;
        assert!(!as_merged_refuses);
        assert_eq!(
            guard(&i),
            Err(Refusal::Shortfall {
                shortfall_bytes: GIB,
                shortfall_pages: GIB / P,
                need: 101 * GIB / P,
                ceiling: 100 * GIB / P,
            })
        );
        assert_eq!(
            Error::from(guard(&i).unwrap_err()).status(),
            Status::Refused
        );
    }

    #[test]
    fn ceilings_and_overflow() {
        let l = limits(GIB, 8 * GIB);
        let i = GuardInputs::new(&l, Ceiling::Physmem(16 * GIB), 0, 12 * GIB);
        assert_eq!(i.ceiling, 16 * GIB / P);
        assert!(guard(&i).is_ok());
        let i = GuardInputs::new(&l, Ceiling::Budget(2 * GIB), 0, 12 * GIB);
        assert!(guard(&i).is_err());
        let mut i = GuardInputs::new(&l, Ceiling::ArcCMax, u64::MAX, 1);
        assert_eq!(guard(&i), Err(Refusal::Overflow));
        assert_eq!(Error::from(Refusal::Overflow).status(), Status::Overflow);
        i.arc_virt_machine_reserved = u64::MAX - 1;
        assert_eq!(guard(&i), Err(Refusal::Overflow));
        // The largest shortfall saturates instead of failing.
        let i = GuardInputs {
            arc_c_min: 0,
            ceiling: 0,
            ceiling_kind: Ceiling::ArcCMax,
            arc_virt_machine_reserved: u64::MAX - 5,
            request: 5,
        };
        assert!(matches!(
            guard(&i),
            Err(Refusal::Shortfall {
                shortfall_bytes: u64::MAX,
                ..
            })
        ));
    }

    #[test]
    fn target_clamps_and_reports() {
        let l = limits(GIB, 10 * GIB);
        let t = |ceiling, reserved_bytes: u64, slack| {
            target(&TargetInputs {
                limits: l,
                ceiling,
                arc_virt_machine_reserved: reserved_bytes / P,
                slack,
            })
            .unwrap()
        };
        let r = t(Ceiling::ArcCMax, 4 * GIB, 0);
        assert_eq!((r.target_bytes, r.clamped_by), (6 * GIB, None));
        assert_eq!(r.unclamped_bytes, Some(6 * GIB));
        let r = t(Ceiling::ArcCMax, 4 * GIB, 1);
        assert_eq!(r.target_bytes, 6 * GIB - P, "slack rounds up to a page");
        assert_eq!(r.slack_bytes, P);
        let r = t(Ceiling::ArcCMax, 9 * GIB + P, 0);
        assert_eq!((r.target_bytes, r.clamped_by), (GIB, Some(Clamp::ArcCMin)));
        let r = t(Ceiling::ArcCMax, 11 * GIB, 0);
        assert_eq!(
            (r.unclamped_bytes, r.clamped_by),
            (None, Some(Clamp::ArcCMin))
        );
        let r = t(Ceiling::Physmem(64 * GIB), 4 * GIB, 0);
        assert_eq!(
            (r.target_bytes, r.clamped_by),
            (10 * GIB, Some(Clamp::ArcCMax))
        );
        assert_eq!(r.ceiling_bytes, 64 * GIB);
        let bad = TargetInputs {
            limits: limits(2, 1),
            ceiling: Ceiling::ArcCMax,
            arc_virt_machine_reserved: 0,
            slack: 0,
        };
        assert_eq!(target(&bad).unwrap_err().status(), Status::InvalidArgument);
        let huge = TargetInputs {
            limits: l,
            ceiling: Ceiling::ArcCMax,
            arc_virt_machine_reserved: u64::MAX,
            slack: 0,
        };
        assert_eq!(target(&huge).unwrap_err().status(), Status::Overflow);
    }

    #[test]
    fn demand_goes_through_the_page_module() {
        let d = VmDemand {
            guest_bytes: 64 * GIB,
            page_t: true,
            overhead_bytes: 32 * MIB,
        };
        // 64 GiB = 2^24 pages of 120-byte page_t = 1.875 GiB.
        assert_eq!(d.bytes().unwrap(), 64 * GIB + (1 << 24) * 120 + 32 * MIB);
        let d = VmDemand {
            guest_bytes: u64::MAX,
            page_t: true,
            overhead_bytes: 0,
        };
        assert_eq!(d.bytes().unwrap_err().status(), Status::Overflow);
    }

    #[test]
    fn illumos_defaults() {
        // 16 GiB, classic swapfs_minfree: allmem = 14 GiB;
        // c_min = 14 GiB / 64 = 224 MiB; c_max = max(10.5 GiB, 13 GiB).
        let d = illumos_arc_limits(16 * GIB, SwapfsMinfree::Classic);
        assert_eq!(d.allmem, 14 * GIB);
        assert_eq!(d.limits, limits(224 * MIB, 13 * GIB));
        // Capped: swapfs_minfree = 512 MiB.
        let d = illumos_arc_limits(16 * GIB, SwapfsMinfree::Capped512M);
        assert_eq!(d.allmem, 16 * GIB - 512 * MIB);
        // Floors and caps of c_min; tiny hosts.
        assert_eq!(
            illumos_arc_limits_for_allmem(GIB).limits,
            limits(64 * MIB, 768 * MIB)
        );
        assert_eq!(
            illumos_arc_limits_for_allmem(256 * GIB).limits.arc_c_min,
            GIB
        );
        assert_eq!(
            illumos_arc_limits_for_allmem(32 * MIB).limits,
            limits(64 * MIB, 64 * MIB)
        );
        assert_eq!(
            illumos_arc_limits_for_allmem(0).limits,
            limits(64 * MIB, 64 * MIB)
        );
        // No overflow at the top: 3/4 of u64::MAX computed exactly.
        let d = illumos_arc_limits_for_allmem(u64::MAX);
        assert_eq!(d.limits.arc_c_max, u64::MAX - GIB);
        assert_eq!(SwapfsMinfree::Classic.pages(100), 512);
        assert_eq!(SwapfsMinfree::Pages(7).pages(100), 7);
        assert_eq!(
            illumos_arc_limits(GIB, SwapfsMinfree::Pages(u64::MAX)).allmem,
            0
        );
    }

    #[test]
    fn openzfs_defaults() {
        // 64 GiB: c_min = 2 GiB; 2.3+: c_max = max(40 GiB, 63 GiB);
        // before: 32 GiB.
        let d = openzfs_linux_arc_limits(64 * GIB);
        assert_eq!(d.limits, limits(2 * GIB, 63 * GIB));
        let d = openzfs_linux_arc_limits_pre_2_3(64 * GIB);
        assert_eq!(d.limits, limits(2 * GIB, 32 * GIB));
        // 512 MiB: c_min = 32 MiB floor; c_max = max(320 MiB, c_min).
        assert_eq!(
            openzfs_linux_arc_limits(512 * MIB).limits,
            limits(32 * MIB, 320 * MIB)
        );
        assert_eq!(
            openzfs_linux_arc_limits_pre_2_3(0).limits,
            limits(32 * MIB, 32 * MIB)
        );
        assert_eq!(
            openzfs_linux_arc_limits(u64::MAX).limits.arc_c_max,
            u64::MAX - GIB
        );
    }
}
