//! VMware's minFree sliding scale and its memory states.
//!
//! ESXi keeps some physical memory free ("MinFreePct reserved: 6% (to as low
//! as 1% for large VMs)", in the VMware talk "Overcommitment, VMTrack, and
//! Preallocation"; docs/sources.md, "Memory states (minFree)") and reacts
//! as free memory falls through fractions of that reserve: high (≥ 100%),
//! soft (64%, ballooning), hard (32%, swapping to compression, SSD, disk),
//! low (16%, "repeatedly swap"; allocations block below it). A host planner
//! can use the same ladder to say how tight memory is before it admits
//! another VM. vSphere 6 added a "clear" state above high; the talk and the
//! write-ups describe the 5.x ladder, which is what is modelled here.

use super::{bp_ceil, sat_u64, BP_ONE};

const GIB: u64 = 1 << 30;

/// One band of the sliding scale: `bp` basis points of the physical memory
/// between the previous band's end and `upto_bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinFreeBand {
    /// The band ends at this amount of physical memory; `u64::MAX` for the last.
    pub upto_bytes: u64,
    /// Basis points of the memory in the band kept free.
    pub bp: u32,
}

/// The minFree sliding scale: four bands, each a percentage of the memory
/// that falls in it (like income tax brackets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MinFreeScale {
    /// Bands in ascending `upto_bytes`; a band ending at or before the
    /// previous one covers nothing, and memory past the last band's end is
    /// not counted.
    pub bands: [MinFreeBand; 4],
}

/// 6% of the first 4 GiB, 4% of 4–12 GiB, 2% of 12–28 GiB, 1% of the rest.
///
/// Why these breakpoints: vSphere 5 replaced the flat 6% of older ESX
/// (which kept 6 GB idle on a 100 GB host) with this scale, as the public
/// VMware community write-ups give it (docs/sources.md, "Memory states
/// (minFree)"); the VMware talk "Overcommitment, VMTrack, and Preallocation"
/// says the same in short: "6% (to as low as 1% for large VMs)". The bands
/// double in width (4, 8, 16 GiB) as the rate halves, so the reserve grows
/// with the host but ever more slowly: a 100 GiB host keeps 0.24 + 0.32 +
/// 0.32 + 0.72 = 1.6 GiB, the "about 1.6 GB" the write-ups quote.
impl Default for MinFreeScale {
    fn default() -> Self {
        MinFreeScale {
            bands: [
                MinFreeBand {
                    upto_bytes: 4 * GIB,
                    bp: 600,
                },
                MinFreeBand {
                    upto_bytes: 12 * GIB,
                    bp: 400,
                },
                MinFreeBand {
                    upto_bytes: 28 * GIB,
                    bp: 200,
                },
                MinFreeBand {
                    upto_bytes: u64::MAX,
                    bp: 100,
                },
            ],
        }
    }
}

impl MinFreeScale {
    /// The memory to keep free on a host with `physmem_bytes`: each band's
    /// rate applied to the part of physical memory inside it, summed exactly
    /// and rounded down once. Saturates at `u64::MAX` (only possible with
    /// rates above 100%).
    pub fn min_free(&self, physmem_bytes: u64) -> u64 {
        let mut start: u64 = 0;
        // Σ width × bp: each term < 2^96, four of them: fits u128.
        let mut scaled: u128 = 0;
        for band in &self.bands {
            let end = band.upto_bytes.min(physmem_bytes);
            let width = end.saturating_sub(start);
            scaled = scaled.saturating_add(u128::from(width).saturating_mul(u128::from(band.bp)));
            start = start.max(band.upto_bytes);
        }
        sat_u64(scaled.checked_div(u128::from(BP_ONE)).unwrap_or(0))
    }
}

/// The memory states, best to worst (values are part of the C ABI).
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum MemState {
    /// Free memory at or above minFree: nothing to do.
    High = 1,
    /// At or above 64% of minFree: ESXi balloons.
    Soft = 2,
    /// At or above 32%: ESXi swaps (compression cache, SSD, disk).
    Hard = 3,
    /// At or above 16%: ESXi swaps repeatedly.
    Low = 4,
    /// Below 16% of minFree: ESXi blocks allocations.
    Exhausted = 5,
}

crate::status::c_enum!(MemState, names: c_name -> &'static core::ffi::CStr {
    High => c"high",
    Soft => c"soft",
    Hard => c"hard",
    Low => c"low",
    Exhausted => c"exhausted",
});

impl MemState {
    /// A short stable name.
    pub fn name(self) -> &'static str {
        // One table for Rust and C: the C string without its NUL.
        self.c_name().to_str().unwrap_or_default()
    }

    /// The state's threshold in basis points of minFree (the VMware talk:
    /// "64% of minFreePct, 32%, 16%").
    pub fn threshold_bp(self) -> u32 {
        match self {
            MemState::High => BP_ONE,
            MemState::Soft => 6400,
            MemState::Hard => 3200,
            MemState::Low => 1600,
            MemState::Exhausted => 0,
        }
    }
}

/// The free memory each state needs on one host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Thresholds {
    /// minFree for this host.
    pub min_free_bytes: u64,
    /// High: 100% of minFree.
    pub high_bytes: u64,
    /// Soft: 64%.
    pub soft_bytes: u64,
    /// Hard: 32%.
    pub hard_bytes: u64,
    /// Low: 16%.
    pub low_bytes: u64,
}

/// The thresholds of a host with `physmem_bytes`. Each is rounded up, so
/// `free >= soft_bytes` holds exactly when free is at least 64% of minFree.
pub fn thresholds(scale: &MinFreeScale, physmem_bytes: u64) -> Thresholds {
    let min_free = scale.min_free(physmem_bytes);
    let at = |s: MemState| sat_u64(bp_ceil(min_free, s.threshold_bp()));
    Thresholds {
        min_free_bytes: min_free,
        high_bytes: at(MemState::High),
        soft_bytes: at(MemState::Soft),
        hard_bytes: at(MemState::Hard),
        low_bytes: at(MemState::Low),
    }
}

impl Thresholds {
    /// The free memory state `s` needs (Exhausted → 0).
    pub fn bytes_for(&self, s: MemState) -> u64 {
        match s {
            MemState::High => self.high_bytes,
            MemState::Soft => self.soft_bytes,
            MemState::Hard => self.hard_bytes,
            MemState::Low => self.low_bytes,
            MemState::Exhausted => 0,
        }
    }
}

/// The state of a host with `free_bytes` free: the best state whose threshold free memory meets (High ≥100% of minFree, Soft ≥64%, Hard ≥32%, Low ≥16%); below the low threshold: Exhausted (VMware blocks allocations there).
pub fn state(t: &Thresholds, free_bytes: u64) -> MemState {
    MemState::ALL
        .iter()
        .copied()
        .find(|s| free_bytes >= t.bytes_for(*s))
        .unwrap_or(MemState::Exhausted)
}

/// How much memory may be handed out (to a VM) while the host stays in
/// state `s` or better: free − that state's threshold, 0 if already worse.
pub fn room_above(t: &Thresholds, free_bytes: u64, s: MemState) -> u64 {
    free_bytes.saturating_sub(t.bytes_for(s))
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]
mod tests {
    use super::*;

    #[test]
    fn min_free_of_the_documents() {
        let s = MinFreeScale::default();
        // docs/sources.md, "Memory states (minFree)": a 100 GB host keeps
        // about 1.6 GB free.
        let m = s.min_free(100 * GIB);
        assert_eq!(m, 16 * GIB / 10);
        assert_eq!(m / 1_000_000, 1717, "1.6 GiB is 1.7 decimal GB");
        // 4 GiB host: a flat 6%.
        assert_eq!(s.min_free(4 * GIB), 4 * GIB * 6 / 100);
        // 12 GiB: 0.24 + 0.32 GiB.
        assert_eq!(s.min_free(12 * GIB), (4 * GIB * 6 + 8 * GIB * 4) / 100);
        assert_eq!(s.min_free(0), 0);
        // 1% of the rest never overflows, even at u64::MAX.
        assert!(s.min_free(u64::MAX) < u64::MAX / 99);
    }

    #[test]
    fn states_by_free_memory() {
        let t = thresholds(&MinFreeScale::default(), 100 * GIB);
        let mf = t.min_free_bytes;
        assert_eq!(t.high_bytes, mf);
        assert_eq!(state(&t, mf), MemState::High);
        assert_eq!(state(&t, mf - 1), MemState::Soft);
        assert_eq!(state(&t, t.soft_bytes), MemState::Soft);
        assert_eq!(state(&t, t.soft_bytes - 1), MemState::Hard);
        assert_eq!(state(&t, t.hard_bytes - 1), MemState::Low);
        assert_eq!(state(&t, t.low_bytes), MemState::Low);
        assert_eq!(state(&t, t.low_bytes - 1), MemState::Exhausted);
        assert_eq!(state(&t, 0), MemState::Exhausted);
        // Soft at 64% of 1.6 GiB.
        assert_eq!(u128::from(t.soft_bytes), bp_ceil(mf, 6400));
        assert_eq!(t.bytes_for(MemState::Exhausted), 0);
        assert_eq!(room_above(&t, mf + 5, MemState::High), 5);
        assert_eq!(room_above(&t, 0, MemState::Low), 0);
    }

    #[test]
    fn state_names_and_order() {
        for s in MemState::ALL {
            assert_eq!(MemState::from_u32(s as u32), Some(s));
            assert_eq!(s.to_u32(), s as u32);
        }
        assert_eq!(MemState::from_u32(0), None);
        assert!(MemState::High < MemState::Exhausted);
        assert_eq!(MemState::Exhausted.name(), "exhausted");
        assert_eq!(MemState::Soft.threshold_bp(), 6400);
    }

    #[test]
    fn out_of_order_bands_cover_nothing() {
        let mut s = MinFreeScale::default();
        s.bands[1].upto_bytes = GIB; // ends before band 0: empty
        assert_eq!(s.min_free(12 * GIB), (4 * GIB * 6 + 8 * GIB * 2) / 100);
        s.bands = [MinFreeBand {
            upto_bytes: u64::MAX,
            bp: u32::MAX,
        }; 4];
        assert_eq!(s.min_free(u64::MAX), u64::MAX);
    }
}
