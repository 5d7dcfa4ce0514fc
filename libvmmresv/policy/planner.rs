//! The needy/greedy reclaim planner of the KVM Forum 2021 talk ("Lessons
//! learned building a production memory-overcommit solution";
//! docs/sources.md, "Reclaim planner and smoothing"): "a VM can be needy: (significant) swapping → needs more memory ... or
//! greedy: has unused memory"; "reclaim proportionally from greedy VMs".
//!
//! Here a consumer (a VM, the ARC, a cache) has a size it may shrink from,
//! a floor it must keep, and a score: negative for greedy (more negative =
//! more unused memory), positive for needy. Consumers with the same score
//! form a tier. The greediest tier gives first, and completely, before the
//! next is asked: a needy VM is touched only when every greedier one is at
//! its floor. Within the one tier that covers the rest of the demand, each
//! gives in proportion to what it can give, so no VM of the tier is singled
//! out; largest-remainder rounding makes the bytes add up exactly.

use super::sat_u64;

/// Something memory can be taken back from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Consumer {
    /// What it holds now.
    pub size_bytes: u64,
    /// What it must keep (a VM's working set, the ARC's `arc_c_min`).
    pub floor_bytes: u64,
    /// < 0 greedy (has unused memory; more negative = greedier), > 0 needy.
    pub score: i32,
}

impl Consumer {
    /// What it can give: size − floor, 0 if already at or under its floor.
    pub fn givable(&self) -> u64 {
        self.size_bytes.saturating_sub(self.floor_bytes)
    }
}

/// How much each consumer gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// What each consumer gives, in the order given.
    pub gives: Vec<u64>,
    /// Σ gives = min(demand, Σ givable).
    pub total_bytes: u64,
    /// demand − total: what no consumer can give.
    pub unmet_bytes: u64,
}

/// How much each consumer gives to meet `demand`: tiers by score, greediest tier first; a tier is drained completely before the next is touched; within the tier that meets the rest of the demand each gives in proportion to what it can give (size − floor), largest-remainder rounding so the sum is exact; never below a floor; total = min(demand, Σ givable).
///
/// Ties in the rounding go to the earlier consumer, so the plan is a pure
/// function of its input.
pub fn plan(consumers: &[Consumer], demand: u64) -> Plan {
    let mut gives = vec![0u64; consumers.len()];
    // Indices by score, greediest first; stable, so equal scores keep
    // their order (which the rounding tie-break relies on).
    let mut order: Vec<usize> = (0..consumers.len()).collect();
    order.sort_by_key(|i| consumers.get(*i).map_or(0, |c| c.score));

    let mut left = demand;
    for tier in order.chunk_by(|a, b| score_of(consumers, *a) == score_of(consumers, *b)) {
        if left == 0 {
            break;
        }
        // Σ givable of the tier in u128: many consumers near 2^64 do not wrap.
        let tier_givable: u128 = tier
            .iter()
            .map(|i| u128::from(givable_of(consumers, *i)))
            .sum();
        if tier_givable <= u128::from(left) {
            // Drain the whole tier.
            for i in tier {
                set(&mut gives, *i, givable_of(consumers, *i));
            }
            // tier_givable <= left < 2^64.
            left = left.saturating_sub(sat_u64(tier_givable));
            continue;
        }
        share_out(consumers, tier, tier_givable, left, &mut gives);
        left = 0;
    }
    let total = demand.saturating_sub(left);
    Plan {
        gives,
        total_bytes: total,
        unmet_bytes: left,
    }
}

/// The partial tier: each gets ⌊left × g_i / G⌋, then the bytes still
/// missing go one each to the largest fractional remainders. There are
/// never more of them than consumers with a nonzero remainder (the
/// fractions add up to exactly the missing bytes, each below 1), and such a
/// consumer's floor + 1 is still at most its givable (left < G), so no one
/// is pushed below its floor.
fn share_out(consumers: &[Consumer], tier: &[usize], g_total: u128, left: u64, gives: &mut [u64]) {
    let mut given: u128 = 0;
    // (remainder, index) of each consumer with a fractional share.
    let mut rems: Vec<(u128, usize)> = Vec::with_capacity(tier.len());
    for i in tier {
        // left < 2^64, g < 2^64: the product is below 2^128.
        let num = u128::from(left).saturating_mul(u128::from(givable_of(consumers, *i)));
        let q = num.checked_div(g_total).unwrap_or(0);
        let r = num.checked_rem(g_total).unwrap_or(0);
        set(gives, *i, sat_u64(q));
        given = given.saturating_add(q);
        if r > 0 {
            rems.push((r, *i));
        }
    }
    let missing = u128::from(left).saturating_sub(given);
    // Largest remainder first; equal remainders by index.
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in rems
        .iter()
        .take(usize::try_from(missing).unwrap_or(usize::MAX))
    {
        if let Some(g) = gives.get_mut(*i) {
            *g = g.saturating_add(1);
        }
    }
}

fn score_of(consumers: &[Consumer], i: usize) -> i32 {
    consumers.get(i).map_or(0, |c| c.score)
}

fn givable_of(consumers: &[Consumer], i: usize) -> u64 {
    consumers.get(i).map_or(0, Consumer::givable)
}

fn set(gives: &mut [u64], i: usize, v: u64) {
    if let Some(g) = gives.get_mut(i) {
        *g = v;
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects
)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn c(size: u64, floor: u64, score: i32) -> Consumer {
        Consumer {
            size_bytes: size,
            floor_bytes: floor,
            score,
        }
    }

    #[test]
    fn greediest_tier_drains_first() {
        let cs = [
            c(8 * GIB, 4 * GIB, 5),   // needy: 4 GiB givable
            c(6 * GIB, 2 * GIB, -10), // greediest: 4 GiB
            c(4 * GIB, GIB, -3),      // 3 GiB
        ];
        let p = plan(&cs, 5 * GIB);
        assert_eq!(p.gives, vec![0, 4 * GIB, GIB]);
        assert_eq!((p.total_bytes, p.unmet_bytes), (5 * GIB, 0));
        // Demand past every greedy one reaches the needy VM last.
        let p = plan(&cs, 9 * GIB);
        assert_eq!(p.gives, vec![2 * GIB, 4 * GIB, 3 * GIB]);
        // More than anyone can give: all drained, the rest unmet.
        let p = plan(&cs, 20 * GIB);
        assert_eq!(p.gives, vec![4 * GIB, 4 * GIB, 3 * GIB]);
        assert_eq!((p.total_bytes, p.unmet_bytes), (11 * GIB, 9 * GIB));
    }

    #[test]
    fn proportional_within_a_tier() {
        // Givable 3 GiB and 1 GiB: 2 GiB demand splits 3:1.
        let cs = [c(4 * GIB, GIB, -1), c(2 * GIB, GIB, -1)];
        let p = plan(&cs, 2 * GIB);
        assert_eq!(p.gives, vec![3 * GIB / 2, GIB / 2]);
    }

    #[test]
    fn largest_remainder_makes_the_sum_exact() {
        // 10 bytes over three equal givers: 4, 3, 3 (tie to the first).
        let cs = [c(100, 0, -1), c(100, 0, -1), c(100, 0, -1)];
        let p = plan(&cs, 10);
        assert_eq!(p.gives, vec![4, 3, 3]);
        assert_eq!(p.total_bytes, 10);
        // Givable 1 and 2, demand 2: shares 2/3 and 4/3; the larger
        // remainder (2/3) gets the missing byte.
        let p = plan(&[c(1, 0, -1), c(2, 0, -1)], 2);
        assert_eq!(p.gives, vec![1, 1]);
    }

    #[test]
    fn floors_and_edges() {
        // At or under the floor: gives nothing.
        let cs = [c(GIB, 2 * GIB, -9), c(GIB, GIB, -9), c(3, 0, 0)];
        let p = plan(&cs, 5);
        assert_eq!(p.gives, vec![0, 0, 3]);
        assert_eq!(p.unmet_bytes, 2);
        assert_eq!(plan(&[], 7).unmet_bytes, 7);
        assert_eq!(plan(&cs, 0).gives, vec![0, 0, 0]);
        // Σ givable above 2^64 does not wrap.
        let big = [c(u64::MAX, 0, -1), c(u64::MAX, 0, -1)];
        let p = plan(&big, u64::MAX);
        assert_eq!(p.total_bytes, u64::MAX);
        assert_eq!(p.gives[0].abs_diff(p.gives[1]), 1);
    }
}
