//! Policy from the source documents: pure functions over integers.
//!
//! - [`overhead`]: the memory a VM costs beyond its guest RAM (EVE-OS's
//!   fixed, proportional and pooled models, EVE pillar's estimate, SmartOS
//!   vmadm's 1280 MiB), and the recalculation that never lowers a limit
//!   below current usage.
//! - [`states`]: VMware's minFree sliding scale and its high / soft / hard /
//!   low memory states.
//! - [`headroom`](mod@headroom): RFD 185's other consumers of memory (ARC floor, driver
//!   DMA, zone caps, OS reserve, overcommit buffer), the reservoir sizing
//!   of RFD 185, omicron and Triton CNAPI, and the library's default
//!   target (RFD 185's 75%).
//! - [`planner`]: the KVM Forum needy/greedy reclaim planner.
//! - [`ewma`]: a time-weighted moving average for noisy rates.
//!
//! No I/O, no floating point, no panics: the crate's lints (`Cargo.toml`)
//! make unchecked arithmetic, indexing, `unwrap` and `as` casts errors
//! outside tests. Products of two 64-bit quantities are taken in `u128`; a
//! result that cannot be represented is `Status::Overflow` or, where the
//! function is documented to saturate, the nearest representable value.
//! Percentages are in basis points ([`BP_ONE`] = 100%), so 2.5% is exact.
//!
//! Where every default number comes from (document, file, quote):
//! docs/sources.md.

pub mod ewma;
pub mod headroom;
pub mod overhead;
pub mod planner;
pub mod states;

pub use ewma::Ewma;
pub use headroom::{
    default_target_for, headroom, limit_from_unlockable, sizing, sizing_fraction,
    unlockable_from_limit, Fraction, Headroom, HeadroomInputs, Profile, ProfileFractions,
    ProfileInputs, DEFAULT_TARGET_PERCENT,
};
pub use overhead::{
    recalculate, OverheadKind, OverheadModel, OverheadParams, PoolShare, Recalculation, RunningVm,
    Stuck, VmSpec, MIB,
};
pub use planner::{plan, Consumer, Plan};
pub use states::{state, thresholds, MemState, MinFreeBand, MinFreeScale, Thresholds};

/// One hundred percent in basis points (1 bp = 1/10000).
pub const BP_ONE: u32 = 10_000;

/// `x × bp / 10000`, rounded down, in u128 (cannot overflow: the product is
/// below 2^96).
fn bp_floor(x: u64, bp: u32) -> u128 {
    u128::from(x)
        .saturating_mul(u128::from(bp))
        .checked_div(u128::from(BP_ONE))
        .unwrap_or(0)
}

/// `x × bp / 10000`, rounded up: for limits and thresholds, where a byte too
/// few is the unsafe side.
fn bp_ceil(x: u64, bp: u32) -> u128 {
    let p = u128::from(x).saturating_mul(u128::from(bp));
    let q = p.checked_div(u128::from(BP_ONE)).unwrap_or(0);
    let r = p.checked_rem(u128::from(BP_ONE)).unwrap_or(0);
    q.saturating_add(u128::from(r != 0))
}

/// A u128 back to u64, saturating.
fn sat_u64(v: u128) -> u64 {
    u64::try_from(v).unwrap_or(u64::MAX)
}
