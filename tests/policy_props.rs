//! Property tests for `vmmresv::policy`: the reclaim planner's guarantees,
//! the recalculation's "never below usage", monotonicity of the overhead
//! models and memory states, and the headroom's accounting.
//!
//! Expected values are recomputed here in u128 from the definitions, so a
//! wrapping or rounding bug in the library cannot hide behind the same bug
//! in the test.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions
)]

use std::time::Duration;

use proptest::prelude::*;
use vmmresv::policy::default_target_for;
use vmmresv::policy::headroom::GIMLET_EARMARK_BYTES;
use vmmresv::policy::*;

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig::with_cases(cases)
}

/// Byte counts biased to the interesting places: small, page-ish, host-ish
/// and near `u64::MAX`.
fn bytes() -> impl Strategy<Value = u64> {
    prop_oneof![
        0u64..=10_000,
        0u64..=(1 << 40),
        any::<u64>(),
        (u64::MAX - 10_000)..=u64::MAX,
    ]
}

fn consumer() -> impl Strategy<Value = Consumer> {
    (bytes(), bytes(), -3i32..=3).prop_map(|(size_bytes, floor_bytes, score)| Consumer {
        size_bytes,
        floor_bytes,
        score,
    })
}

fn givable(c: &Consumer) -> u128 {
    u128::from(c.size_bytes.saturating_sub(c.floor_bytes))
}

proptest! {
    #![proptest_config(config(10_000))]

    /// Every guarantee `plan` documents, checked against the definition.
    #[test]
    fn planner_invariants(
        consumers in prop::collection::vec(consumer(), 0..12),
        demand in bytes(),
    ) {
        let p = plan(&consumers, demand);
        prop_assert_eq!(p.gives.len(), consumers.len());
        let all: u128 = consumers.iter().map(givable).sum();
        let want = all.min(u128::from(demand));
        let sum: u128 = p.gives.iter().map(|g| u128::from(*g)).sum();
        prop_assert_eq!(sum, want);
        prop_assert_eq!(u128::from(p.total_bytes), want);
        prop_assert_eq!(u128::from(p.unmet_bytes), u128::from(demand) - want);

        for (c, g) in consumers.iter().zip(&p.gives) {
            // Never below a floor.
            prop_assert!(u128::from(*g) <= givable(c));
        }

        // Tier by tier, greediest first.
        let mut scores: Vec<i32> = consumers.iter().map(|c| c.score).collect();
        scores.sort_unstable();
        scores.dedup();
        let mut left = u128::from(demand);
        for s in scores {
            let members: Vec<usize> = (0..consumers.len())
                .filter(|i| consumers[*i].score == s)
                .collect();
            let g_tier: u128 = members.iter().map(|i| givable(&consumers[*i])).sum();
            let given: u128 = members.iter().map(|i| u128::from(p.gives[*i])).sum();
            if g_tier <= left {
                // Drained completely (a tier is touched only if every
                // greedier one is drained: this holds for each in turn).
                for i in &members {
                    prop_assert_eq!(u128::from(p.gives[*i]), givable(&consumers[*i]));
                }
            } else if left > 0 {
                // The partial tier: each within one byte of its exact share
                // left × g_i / G, i.e. |give × G − left × g_i| < G.
                prop_assert_eq!(given, left);
                for i in &members {
                    let exact = left * givable(&consumers[*i]);
                    let scaled = u128::from(p.gives[*i]) * g_tier;
                    prop_assert!(scaled.abs_diff(exact) < g_tier,
                        "consumer {} gives {} of {} (tier {} left {})",
                        i, p.gives[*i], givable(&consumers[*i]), g_tier, left);
                }
            } else {
                // Every greedier tier met the demand: untouched.
                prop_assert_eq!(given, 0);
            }
            left -= given;
        }
        prop_assert_eq!(left, u128::from(p.unmet_bytes));
    }
}

fn kind() -> impl Strategy<Value = OverheadKind> {
    prop::sample::select(OverheadKind::ALL.to_vec())
}

/// Parameters with every basis-point field valid and byte fields small
/// enough that sums fit (so the properties see results, not errors).
fn params() -> impl Strategy<Value = OverheadParams> {
    (
        (0u64..1 << 40, 0u32..=10_000, 0u32..=10_000, 0u64..1 << 40),
        (0u64..1 << 40, 0u64..1 << 40, 0u32..=10_000, 0u64..1 << 40),
        (0u64..1 << 30, 0u32..=10_000),
    )
        .prop_map(
            |((f, p, pool, v), (vmin, base, ram, extra), (vcpu, mmio))| OverheadParams {
                fixed_bytes: f,
                proportional_bp: p,
                pool_bp: pool,
                vmadm_bytes: v,
                vmadm_min_bytes: vmin,
                eve_base_bytes: base,
                eve_ram_bp: ram,
                eve_extra_bytes: extra,
                eve_per_vcpu_bytes: vcpu,
                eve_mmio_bp: mmio,
            },
        )
}

fn vm_spec() -> impl Strategy<Value = VmSpec> {
    (
        0u64..1 << 44,
        0u32..512,
        0u64..1 << 40,
        prop::option::of(0u64..1 << 45),
    )
        .prop_map(|(guest_bytes, vcpus, mmio_bytes, room)| VmSpec {
            guest_bytes,
            vcpus,
            mmio_bytes,
            // A cap, when there is one, is at least the guest (vmadm).
            cap_bytes: room.map_or(0, |r| guest_bytes + r),
        })
}

fn running_vm() -> impl Strategy<Value = RunningVm> {
    (vm_spec(), bytes(), 0u64..1 << 42).prop_map(|(spec, limit_bytes, usage_bytes)| RunningVm {
        spec,
        limit_bytes,
        usage_bytes,
    })
}

proptest! {
    #![proptest_config(config(2_000))]

    /// No limit below usage, and `stuck` lists exactly the VMs whose
    /// model overhead is below their usage, with the right excess.
    #[test]
    fn recalculate_never_below_usage(
        kind in kind(),
        params in params(),
        host in 0u64..1 << 46,
        running in prop::collection::vec(running_vm(), 0..10),
        new_vm in prop::option::of(vm_spec()),
    ) {
        let model = OverheadModel { kind, params };
        let r = recalculate(&model, host, &running, new_vm.as_ref()).unwrap();
        prop_assert_eq!(r.model, kind);
        prop_assert_eq!(r.limits.len(), running.len());
        let total: u64 = running.iter().map(|v| v.spec.guest_bytes).sum::<u64>()
            + new_vm.map_or(0, |v| v.guest_bytes);
        let pool = PoolShare { host_bytes: host, total_guest_bytes: total };
        let mut expect_stuck = Vec::new();
        let mut stuck_bytes = 0u128;
        for (i, vm) in running.iter().enumerate() {
            let wanted = model.overhead(&vm.spec, &pool).unwrap();
            prop_assert!(r.limits[i] >= vm.usage_bytes);
            prop_assert_eq!(r.limits[i], wanted.max(vm.usage_bytes));
            if vm.usage_bytes > wanted {
                expect_stuck.push(Stuck {
                    index: i,
                    wanted_bytes: wanted,
                    usage_bytes: vm.usage_bytes,
                    excess_bytes: vm.usage_bytes - wanted,
                });
                stuck_bytes += u128::from(vm.usage_bytes - wanted);
            }
        }
        prop_assert_eq!(&r.stuck, &expect_stuck);
        prop_assert_eq!(u128::from(r.stuck_bytes), stuck_bytes);
        let new_overhead = match new_vm {
            Some(v) => model.overhead(&v, &pool).unwrap(),
            None => 0,
        };
        prop_assert_eq!(r.new_vm_overhead, new_overhead);
        if kind == OverheadKind::Pooled {
            // The shares never add up to more than the pool.
            let pool_bytes = u128::from(host) * u128::from(params.pool_bp) / 10_000;
            let sum: u128 = running
                .iter()
                .map(|v| u128::from(model.overhead(&v.spec, &pool).unwrap()))
                .sum::<u128>()
                + u128::from(new_overhead);
            prop_assert!(sum <= pool_bytes);
        }
    }

    /// A bigger guest never costs less overhead (without a cap), and
    /// guest + overhead never shrinks even with one (vmadm's overhead
    /// itself falls as the guest eats into a fixed cap).
    #[test]
    fn overhead_monotone_in_guest_size(
        kind in kind(),
        params in params(),
        a in 0u64..1 << 44,
        b in 0u64..1 << 44,
        vcpus in 0u32..512,
        mmio in 0u64..1 << 40,
        host in 0u64..1 << 46,
        others in 0u64..1 << 44,
        cap in 0u64..1 << 46,
    ) {
        let (small, big) = (a.min(b), a.max(b));
        let model = OverheadModel { kind, params };
        let pool = PoolShare { host_bytes: host, total_guest_bytes: big + others };
        let vm = |g: u64, cap_bytes: u64| VmSpec { guest_bytes: g, vcpus, mmio_bytes: mmio, cap_bytes };
        let o_small = model.overhead(&vm(small, 0), &pool).unwrap();
        let o_big = model.overhead(&vm(big, 0), &pool).unwrap();
        prop_assert!(o_small <= o_big, "{:?}: {} -> {}, {} -> {}", kind, small, o_small, big, o_big);
        let cap = big + cap;
        let t_small = small + model.overhead(&vm(small, cap), &pool).unwrap();
        let t_big = big + model.overhead(&vm(big, cap), &pool).unwrap();
        prop_assert!(t_small <= t_big);
    }

    /// More free memory never means a worse state, and each state's
    /// threshold is what `bytes_for` says.
    #[test]
    fn states_monotone_in_free_memory(physmem in bytes(), a in bytes(), b in bytes()) {
        let t = thresholds(&MinFreeScale::default(), physmem);
        let (lo, hi) = (a.min(b), a.max(b));
        prop_assert!(state(&t, lo) >= state(&t, hi));
        let s = state(&t, hi);
        prop_assert!(hi >= t.bytes_for(s));
        // The next better state is out of reach.
        if let Some(better) = MemState::ALL.iter().rev().find(|x| **x < s) {
            prop_assert!(hi < t.bytes_for(*better));
        }
        // thresholds descend, each the rounded-up share of minFree.
        for st in MemState::ALL {
            let exact = u128::from(t.min_free_bytes) * u128::from(st.threshold_bp());
            let got = u128::from(t.bytes_for(st)) * 10_000;
            prop_assert!(got >= exact && got < exact + 10_000);
        }
    }

    /// minFree grows with the host, by at most 6% of the growth.
    #[test]
    fn min_free_grows_slowly(a in bytes(), b in bytes()) {
        let s = MinFreeScale::default();
        let (lo, hi) = (a.min(b), a.max(b));
        let (m_lo, m_hi) = (s.min_free(lo), s.min_free(hi));
        prop_assert!(m_lo <= m_hi);
        prop_assert!(u128::from(m_hi - m_lo) * 100 <= u128::from(hi - lo) * 6 + 100);
    }

    /// Whatever is not deducted is the safe maximum, to the page.
    #[test]
    fn headroom_accounts_for_every_byte(
        physmem in bytes(),
        unlockable in bytes(),
        others in prop::array::uniform5(prop_oneof![0u64..1 << 40, bytes()]),
    ) {
        let i = HeadroomInputs {
            physmem_bytes: physmem,
            unlockable_bytes: unlockable,
            arc_floor_bytes: others[0],
            driver_dma_bytes: others[1],
            zone_caps_bytes: others[2],
            os_reserve_bytes: others[3],
            overcommit_buffer_bytes: others[4],
        };
        let h = headroom(&i);
        let d = (u128::from(unlockable) * 12).div_ceil(10)
            + others.iter().map(|b| u128::from(*b)).sum::<u128>();
        prop_assert_eq!(u128::from(h.deductions_bytes), d.min(u128::from(u64::MAX)));
        prop_assert_eq!(h.safe_max_bytes % 4096, 0);
        if h.short_bytes == 0 {
            // physmem = safe_max + deductions + what the page alignment cut.
            let rest = u64::try_from(d).unwrap();
            prop_assert_eq!(
                h.safe_max_bytes + h.deductions_bytes + (physmem - rest) % 4096,
                physmem
            );
        } else {
            prop_assert_eq!(h.safe_max_bytes, 0);
            prop_assert_eq!(
                u128::from(h.short_bytes),
                (d - u128::from(physmem)).min(u128::from(u64::MAX))
            );
        }
    }

    /// The unlockable bytes come back exactly from the kernel's own limit.
    #[test]
    fn unlockable_round_trips(physmem_pages in 1u64..1 << 40, pct in 0u64..=83) {
        // pages_pp_maximum at most 83% of memory, so 1.2 × it fits.
        let pp = physmem_pages / 100 * pct;
        let limit = (physmem_pages * 10 - pp * 12) * 4096 / 10;
        prop_assert_eq!(unlockable_from_limit(physmem_pages * 4096, limit), pp * 4096);
    }

    /// The kernel's limit from physmem and pages_pp_maximum is the
    /// kernel's formula in pages, and unlockable_from_limit undoes it to
    /// the byte; the other way round for every limit the formula makes.
    #[test]
    fn limit_from_unlockable_round_trips(
        physmem in bytes(),
        share in 0u64..=1_000_000,
        physmem_pages in 1u64..1 << 40,
        pct in 0u64..=83,
    ) {
        // Any byte count up to physmem / 1.2.
        let u = u64::try_from(u128::from(physmem) * 10 / 12 * u128::from(share) / 1_000_000).unwrap();
        let l = limit_from_unlockable(physmem, u);
        prop_assert_eq!(u128::from(l), (u128::from(physmem) * 10 - u128::from(u) * 12) / 10);
        prop_assert_eq!(unlockable_from_limit(physmem, l), u);
        prop_assert_eq!(limit_from_unlockable(physmem, unlockable_from_limit(physmem, l)), l);
        // Above physmem / 1.2: 0.
        let over = u64::try_from(u128::from(physmem) * 10 / 12 + 1).unwrap();
        prop_assert_eq!(limit_from_unlockable(physmem, over), 0);
        // vmmr_init()'s arithmetic in pages.
        let pp = physmem_pages / 100 * pct;
        let kernel = (physmem_pages * 10 - pp * 12) * 4096 / 10;
        prop_assert_eq!(limit_from_unlockable(physmem_pages * 4096, pp * 4096), kernel);
    }

    /// A profile's share as an exact fraction: within what it sizes from,
    /// monotonic in the fraction, and a whole percentage is the percentage.
    #[test]
    fn sizing_fraction_agrees_with_percentages(
        physmem in bytes(),
        limit in bytes(),
        caps in bytes(),
        den in 1u64..=u64::MAX,
        a in any::<u64>(),
        b in any::<u64>(),
        pct in 0u32..=100,
    ) {
        // 0 <= lo <= hi <= den.
        let hi = (u128::from(a) % (u128::from(den) + 1)) as u64;
        let lo = (u128::from(b) % (u128::from(hi) + 1)) as u64;
        let i = ProfileInputs {
            physmem_bytes: physmem,
            kernel_limit_bytes: limit,
            omicron_earmark_bytes: GIMLET_EARMARK_BYTES,
            vm_caps_bytes: caps,
            rfd185_pct: pct,
            omicron_pct: pct,
            cnapi_pct: pct,
        };
        let (flo, fhi) = (Fraction::new(lo, den).unwrap(), Fraction::new(hi, den).unwrap());
        for p in Profile::ALL {
            let x = sizing_fraction(p, &i, flo).unwrap();
            let y = sizing_fraction(p, &i, fhi).unwrap();
            prop_assert!(x <= y, "{:?}: {}/{} gives {} > {}/{} gives {}", p, lo, den, x, hi, den, y);
            let whole = sizing_fraction(p, &i, Fraction::percent(pct).unwrap()).unwrap();
            prop_assert_eq!(whole, sizing(p, &i).unwrap());
        }
        let r = sizing_fraction(Profile::Rfd185, &i, fhi).unwrap();
        prop_assert!(r <= limit && r % 4096 == 0);
        prop_assert!(u128::from(r) * u128::from(den) <= u128::from(limit) * u128::from(hi));
        let c = sizing_fraction(Profile::Cnapi, &i, fhi).unwrap();
        let expect = (u128::from(physmem) * u128::from(hi) / u128::from(den)).saturating_sub(u128::from(caps));
        prop_assert_eq!(u128::from(c), expect);
        // Above 1 (or a zero denominator): refused.
        prop_assert!(Fraction::new(den, den - 1).is_err());
    }

    /// Each profile stays within what it sizes from; RFD 185 at 75% is the
    /// library's default target.
    #[test]
    fn sizing_profiles_bounded(
        physmem in bytes(),
        limit in bytes(),
        pct in 0u32..=100,
        caps in bytes(),
        gimlet in any::<bool>(),
    ) {
        let i = ProfileInputs {
            physmem_bytes: physmem,
            kernel_limit_bytes: limit,
            rfd185_pct: pct,
            omicron_pct: pct,
            omicron_earmark_bytes: if gimlet { GIMLET_EARMARK_BYTES } else { 0 },
            cnapi_pct: pct,
            vm_caps_bytes: caps,
        };
        let r = sizing(Profile::Rfd185, &i).unwrap();
        prop_assert!(r <= limit && r % 4096 == 0);
        prop_assert!(u128::from(r) * 100 <= u128::from(limit) * u128::from(pct));
        let d = ProfileInputs { rfd185_pct: 75, ..i };
        prop_assert_eq!(sizing(Profile::Rfd185, &d).unwrap(), default_target_for(limit, 0).unwrap());
        let o = sizing(Profile::Omicron, &i).unwrap();
        prop_assert!(o <= physmem && o % (2 << 20) == 0);
        let c = sizing(Profile::Cnapi, &i).unwrap();
        let expect = (u128::from(physmem) * u128::from(pct) / 100).saturating_sub(u128::from(caps));
        prop_assert_eq!(u128::from(c), expect);
        let bad = ProfileInputs { omicron_pct: 101, ..i };
        prop_assert!(sizing(Profile::Omicron, &bad).is_err());
    }

    /// The average stays within the range of what it was fed.
    #[test]
    fn ewma_stays_within_its_samples(
        tau_ms in 0u64..10_000,
        samples in prop::collection::vec((0u64..5_000, any::<i64>()), 1..40),
    ) {
        let mut e = Ewma::new(Duration::from_millis(tau_ms));
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        for (dt, s) in samples {
            e.observe(Duration::from_millis(dt), s);
            lo = lo.min(s);
            hi = hi.max(s);
            let v = e.value().unwrap();
            prop_assert!(v >= lo && v <= hi, "{} not in [{}, {}]", v, lo, hi);
        }
    }
}
