//! The policy layer's pure functions on arbitrary numbers and text: the
//! reclaim planner, the overhead models and their recalculation, the
//! minFree memory states, the EWMA, the headroom and the peers' sizing
//! rules, the capacity report, the host memory readers' parsers and the
//! boot setting / config parsers. None of them does I/O, so every input
//! runs in microseconds.
//!
//! Input: `SEL BODY`. `SEL % 6` picks the part; `BODY` is read with
//! [`Input`] (little-endian, zeros once exhausted, sizes via
//! `Input::size`). The layouts are in the `decode_*` functions and in
//! make-seeds.py.
//!
//! Invariants (each is documented in the library; `why` comments at the
//! assertions say why it holds):
//! - 0 `planner::plan`: `gives.len() == consumers.len()`; each give ≤
//!   size − floor (saturating); Σ gives = total = min(demand, Σ givable)
//!   (u128) and unmet = demand − total; a consumer gives only if every
//!   strictly greedier consumer (lower score) gives all it can; per tier,
//!   in score order, a tier with less givable than the demand left gives
//!   all of it, the tier that covers the rest gives exactly the rest, each
//!   member ⌊left·g/G⌋ or one byte more (only with a remainder, the larger
//!   remainders first, ties to the earlier index), and later tiers nothing;
//!   the plan is a pure function (two calls agree).
//! - 1 `OverheadModel::overhead` and `recalculate`: never panic; the
//!   overhead equals an independent oracle of each model's formula and
//!   errors (InvalidArgument for a basis-point field above 10000, a pool
//!   that does not include the VM or a vmadm cap below the guest; Overflow
//!   past 64 bits); `recalculate` fails exactly when the oracle finds an
//!   error, with its status, and otherwise returns a limit per running VM
//!   that is max(wanted, usage) (never below usage), `stuck` = exactly the
//!   VMs with usage > wanted, in order, with their figures, `stuck_bytes` =
//!   Σ excess, the new VM's overhead; under the pooled model the shares
//!   never add up to more than the pool.
//! - 2 `states`: thresholds high = minFree ≥ soft ≥ hard ≥ low, each the
//!   rounded-up share of minFree; `state` is monotone in free memory (more
//!   free → same or better), free meets the state's threshold and not the
//!   next better one; `room_above` = free − threshold, saturating.
//!   `Ewma::observe`: the first sample seeds the value, a zero interval
//!   changes nothing, every other step lands between the old value and the
//!   sample.
//! - 3 `headroom`: safe_max ≤ physmem, a multiple of 4096, and equal to
//!   physmem − ⌈1.2·unlockable⌉ − the other deductions (u128, 0 if
//!   negative) rounded down to the page; short and the echoed figures
//!   exact. `unlockable_from_limit` gives pages_pp_maximum back from a
//!   limit computed as the kernel does. `sizing` never panics, fails
//!   (InvalidArgument) exactly for its profile's percentage above 100, and
//!   gives RFD 185 ≤ the kernel limit and page-aligned (= the library's
//!   default target at 75%), omicron ≤ physmem and 2 MiB-aligned, CNAPI ≤
//!   physmem. `Fraction::new` refuses exactly a zero denominator and a
//!   fraction above 1; `sizing_fraction` never fails with a fraction,
//!   keeps those bounds (CNAPI exactly ⌊physmem·n/d⌋ − caps) and with a
//!   whole percentage is `sizing`. `limit_from_unlockable` is the kernel's
//!   formula and `unlockable_from_limit` undoes it up to physmem / 1.2.
//! - 4 `report::build` with any reservoir query, pending claims, policy
//!   (any model kind and parameters, scale, floor) and inputs: an `Err` is
//!   InvalidArgument, Unaligned or Overflow (and free > physmem is always
//!   InvalidArgument); an `Ok` report's `to_json()` is text serde_json
//!   parses back to exactly `to_value()`, with the schema name; both
//!   largest-VM figures are 4 KiB multiples; with the reservoir the guest
//!   fits reservoir free less pending claims and page_t + overhead fit host
//!   free less pending host claims less the floor's threshold; without
//!   it the guest fits the transient limit's room (and the ARC guard's) and
//!   guest + page_t + overhead fit that host room plus what the ARC can give
//!   back; thresholds and state are `states`'.
//! - 5 text, given (lossily as UTF-8) to `host::parse_meminfo`,
//!   `host::parse_system_pages`, `boot::BootSetting::parse` and
//!   `boot::parse_config`: never panic; a parsed `HostMemory` has free ≤
//!   physmem (in kB for meminfo, in whole pages for kstat); errors are
//!   MalformedInput or Overflow; a parsed setting is a percentage ≤ 100 or a
//!   size, and its `Display` parses back to the same setting; a setting
//!   error is ParseSize or Overflow; `boot_target` of it (and of a raw
//!   percentage) on any limit and chunk is Unaligned exactly for an
//!   unaligned chunk, InvalidArgument for a percentage above 100, and
//!   otherwise ≤ the limit, aligned to the chunk (or page), clamped exactly
//!   when a size exceeds the limit, and `Percent(75)` is
//!   `default_target_for`; a config error names a line that exists (1-based)
//!   and keeps at most 120 characters of it.

#![no_main]

use std::path::Path;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vmmresv::admission::vm::AdmissionPolicy;
use vmmresv::admission::ArcHost;
use vmmresv::arc::reserve::ArcPolicy;
use vmmresv::arc::{ArcLimits, Ceiling};
use vmmresv::boot::{self, BootSetting};
use vmmresv::host::{self, HostMemory};
use vmmresv::pages::{self, PAGESIZE, PAGESIZE_2M};
use vmmresv::policy::headroom::{
    headroom, limit_from_unlockable, sizing, sizing_fraction, unlockable_from_limit, Fraction,
    HeadroomInputs, Profile, ProfileInputs,
};
use vmmresv::policy::overhead::{
    recalculate, OverheadKind, OverheadModel, OverheadParams, PoolShare, RunningVm, VmSpec,
};
use vmmresv::policy::planner::{plan, Consumer};
use vmmresv::policy::states::{room_above, state, thresholds, MemState, MinFreeBand, MinFreeScale};
use vmmresv::policy::{default_target_for, Ewma, BP_ONE};
use vmmresv::report::{self, Pending, ReportInputs, SCHEMA};
use vmmresv::reservoir::ReservoirQuery;
use vmmresv::{Error, Status};
use vmmresv_fuzz::Input;

const BP: u128 = BP_ONE as u128;

// ------------------------------------------------------------ decoders

/// A basis-point field: mostly the documents' values or 0..=10000, at
/// times above 100% (which the models must refuse) or any u32.
fn bp(inp: &mut Input<'_>) -> u32 {
    const EDGES: [u32; 10] = [0, 1, 100, 250, 2500, 3000, 6400, 9999, 10_000, 10_001];
    match inp.u8() % 4 {
        0 => EDGES[usize::from(inp.u8()) % EDGES.len()],
        1 | 2 => u32::from(inp.u16()) % (BP_ONE + 1),
        _ => inp.u32(),
    }
}

/// A percentage field (sizing rules): 0..=100 mostly, 101 or any u32 at
/// times.
fn pct(inp: &mut Input<'_>) -> u32 {
    match inp.u8() % 4 {
        0 => [0, 1, 75, 85, 91, 100, 101, u32::MAX][usize::from(inp.u8()) % 8],
        1 | 2 => u32::from(inp.u8()) % 101,
        _ => inp.u32(),
    }
}

/// A vCPU count: small, or any u32.
fn vcpus(inp: &mut Input<'_>) -> u32 {
    match inp.u8() {
        0..=239 => u32::from(inp.u8()),
        _ => inp.u32(),
    }
}

fn kind(inp: &mut Input<'_>) -> OverheadKind {
    OverheadKind::ALL[usize::from(inp.u8()) % OverheadKind::ALL.len()]
}

/// `FLAGS` then one value per flagged field; unflagged fields keep the
/// documents' defaults, so seeds stay short.
fn params(inp: &mut Input<'_>) -> OverheadParams {
    let mut p = OverheadParams::default();
    let flags = inp.u16();
    let on = |bit: u16| flags & (1 << bit) != 0;
    if on(0) {
        p.fixed_bytes = inp.size();
    }
    if on(1) {
        p.proportional_bp = bp(inp);
    }
    if on(2) {
        p.pool_bp = bp(inp);
    }
    if on(3) {
        p.vmadm_bytes = inp.size();
    }
    if on(4) {
        p.vmadm_min_bytes = inp.size();
    }
    if on(5) {
        p.eve_base_bytes = inp.size();
    }
    if on(6) {
        p.eve_ram_bp = bp(inp);
    }
    if on(7) {
        p.eve_extra_bytes = inp.size();
    }
    if on(8) {
        p.eve_per_vcpu_bytes = inp.size();
    }
    if on(9) {
        p.eve_mmio_bp = bp(inp);
    }
    p
}

/// `GUEST VCPUS FLAGS [MMIO] [CAP]`.
fn vm_spec(inp: &mut Input<'_>) -> VmSpec {
    let guest_bytes = inp.size();
    let vcpus = vcpus(inp);
    let flags = inp.u8();
    VmSpec {
        guest_bytes,
        vcpus,
        mmio_bytes: if flags & 1 != 0 { inp.size() } else { 0 },
        cap_bytes: if flags & 2 != 0 { inp.size() } else { 0 },
    }
}

/// `FLAGS` then `UPTO BP` for each flagged band (others: the default).
fn scale(inp: &mut Input<'_>) -> MinFreeScale {
    let mut s = MinFreeScale::default();
    let flags = inp.u8();
    for (i, band) in s.bands.iter_mut().enumerate() {
        if flags & (1 << i) != 0 {
            *band = MinFreeBand {
                upto_bytes: inp.size(),
                bp: bp(inp),
            };
        }
    }
    s
}

fn mem_state(inp: &mut Input<'_>) -> MemState {
    MemState::ALL[usize::from(inp.u8()) % MemState::ALL.len()]
}

fn status(r: &Result<impl Sized, Error>) -> Option<Status> {
    r.as_ref().err().map(|e| e.status())
}

// ------------------------------------------------------------ 0 planner

/// `DEMAND N (SIZE FLOOR SCORE)*N`, N ≤ 16. Scores are mostly -3..=3 so
/// that tiers have several members.
fn check_planner(inp: &mut Input<'_>) {
    let demand = inp.size();
    let n = usize::from(inp.u8() % 17);
    let consumers: Vec<Consumer> = (0..n)
        .map(|_| {
            let size_bytes = inp.size();
            let floor_bytes = match inp.u8() % 4 {
                0 => 0,
                1 => size_bytes.saturating_sub(u64::from(inp.u16())),
                _ => inp.size(),
            };
            let score = match inp.u8() {
                0..=247 => i32::from(inp.u8() % 7) - 3,
                _ => inp.u32() as i32,
            };
            Consumer {
                size_bytes,
                floor_bytes,
                score,
            }
        })
        .collect();
    let p = plan(&consumers, demand);
    assert_eq!(p, plan(&consumers, demand), "plan is not a pure function");
    assert_eq!(p.gives.len(), consumers.len(), "one give per consumer");

    let g = |c: &Consumer| c.size_bytes.saturating_sub(c.floor_bytes);
    for (c, give) in consumers.iter().zip(&p.gives) {
        // Never below a floor: nobody gives more than size − floor.
        assert!(*give <= g(c), "{c:?} gives {give} > its givable");
    }
    // Σ givable in u128: sixteen values near 2^64 must not wrap.
    let givable: u128 = consumers.iter().map(|c| u128::from(g(c))).sum();
    let given: u128 = p.gives.iter().map(|x| u128::from(*x)).sum();
    let want = givable.min(u128::from(demand));
    assert_eq!(given, want, "Σ gives != min(demand, Σ givable)");
    assert_eq!(
        u128::from(p.total_bytes),
        want,
        "total != min(demand, Σ givable)"
    );
    assert_eq!(
        p.unmet_bytes,
        demand - p.total_bytes,
        "unmet != demand − total"
    );

    // Greediest first: if a consumer gives anything, every strictly
    // greedier one (lower score) has been drained to its floor.
    for (i, ci) in consumers.iter().enumerate() {
        if p.gives[i] == 0 {
            continue;
        }
        for (j, cj) in consumers.iter().enumerate() {
            if cj.score < ci.score {
                assert_eq!(
                    p.gives[j],
                    g(cj),
                    "consumer {i} (score {}) gives while greedier {j} (score {}) is not drained",
                    ci.score,
                    cj.score
                );
            }
        }
    }

    // Tier by tier, as documented: the demand left when a tier is reached
    // is what greedier tiers could not cover.
    let mut scores: Vec<i32> = consumers.iter().map(|c| c.score).collect();
    scores.sort_unstable();
    scores.dedup();
    let mut left = u128::from(demand);
    for s in scores {
        let tier: Vec<usize> = (0..n).filter(|i| consumers[*i].score == s).collect();
        let tier_g: u128 = tier.iter().map(|i| u128::from(g(&consumers[*i]))).sum();
        let tier_given: u128 = tier.iter().map(|i| u128::from(p.gives[*i])).sum();
        if left == 0 {
            assert_eq!(tier_given, 0, "tier {s} gives after the demand is met");
        } else if tier_g <= left {
            // Drained completely (covered by the per-consumer check too).
            for i in &tier {
                assert_eq!(p.gives[*i], g(&consumers[*i]), "tier {s} not drained");
            }
        } else {
            // The partial tier: exactly the rest, shared by largest
            // remainder. Each share is ⌊left·g_i/G⌋ plus at most one byte,
            // and the extra byte only goes with a nonzero remainder.
            assert_eq!(
                tier_given, left,
                "partial tier {s} gives {tier_given} of {left}"
            );
            let shares: Vec<(usize, u128, u128, bool)> = tier
                .iter()
                .map(|i| {
                    let num = left * u128::from(g(&consumers[*i]));
                    let (q, r) = (num / tier_g, num % tier_g);
                    let give = u128::from(p.gives[*i]);
                    assert!(
                        give == q || (give == q + 1 && r > 0),
                        "consumer {i}: give {give}, proportional share {q} rem {r}/{tier_g}"
                    );
                    (*i, q, r, give == q + 1)
                })
                .collect();
            // Largest remainders first, ties to the earlier consumer: no
            // one without the extra byte outranks one with it.
            for (i, _, ri, extra_i) in &shares {
                for (j, _, rj, extra_j) in &shares {
                    if *extra_i && !*extra_j && *rj > 0 {
                        assert!(
                            ri > rj || (ri == rj && i < j),
                            "extra byte to {i} (rem {ri}) over {j} (rem {rj})"
                        );
                    }
                }
            }
        }
        left = left.saturating_sub(tier_g);
    }
}

// ------------------------------------------------------------ 1 overhead

/// ⌈x·bp/10000⌉ in u128.
fn bp_ceil(x: u64, bp: u32) -> u128 {
    (u128::from(x) * u128::from(bp)).div_ceil(BP)
}

/// An independent reading of each model's documented formula.
/// Every basis-point field must be at most 100%, whatever the model.
fn params_valid(p: &OverheadParams) -> Result<(), Status> {
    if [p.proportional_bp, p.pool_bp, p.eve_ram_bp, p.eve_mmio_bp]
        .iter()
        .any(|b| *b > BP_ONE)
    {
        return Err(Status::InvalidArgument);
    }
    Ok(())
}

fn overhead_oracle(m: &OverheadModel, vm: &VmSpec, pool: &PoolShare) -> Result<u64, Status> {
    let p = &m.params;
    params_valid(p)?;
    let fit = |v: u128| u64::try_from(v).map_err(|_| Status::Overflow);
    match m.kind {
        OverheadKind::Fixed => Ok(p.fixed_bytes),
        OverheadKind::Proportional => fit(bp_ceil(vm.guest_bytes, p.proportional_bp)),
        OverheadKind::Pooled => {
            if pool.total_guest_bytes < vm.guest_bytes {
                return Err(Status::InvalidArgument);
            }
            if pool.total_guest_bytes == 0 {
                return Ok(0);
            }
            let pool_bytes = u128::from(pool.host_bytes) * u128::from(p.pool_bp) / BP;
            fit(pool_bytes * u128::from(vm.guest_bytes) / u128::from(pool.total_guest_bytes))
        }
        OverheadKind::Vmadm => {
            if vm.cap_bytes == 0 {
                Ok(p.vmadm_bytes)
            } else if vm.cap_bytes < vm.guest_bytes {
                Err(Status::InvalidArgument)
            } else {
                Ok((vm.cap_bytes - vm.guest_bytes).max(p.vmadm_min_bytes))
            }
        }
        OverheadKind::EvePillar => fit(u128::from(p.eve_base_bytes)
            + bp_ceil(vm.guest_bytes, p.eve_ram_bp)
            + u128::from(p.eve_extra_bytes)
            + u128::from(p.eve_per_vcpu_bytes) * u128::from(vm.vcpus)
            + bp_ceil(vm.mmio_bytes, p.eve_mmio_bp)),
    }
}

/// `KIND PARAMS HOST N (VMSPEC LIMIT USAGE)*N NEWFLAG [VMSPEC]`, N ≤ 8.
fn check_overhead(inp: &mut Input<'_>) {
    let model = OverheadModel {
        kind: kind(inp),
        params: params(inp),
    };
    let host_bytes = inp.size();
    let n = usize::from(inp.u8() % 9);
    let running: Vec<RunningVm> = (0..n)
        .map(|_| RunningVm {
            spec: vm_spec(inp),
            limit_bytes: inp.size(),
            usage_bytes: inp.size(),
        })
        .collect();
    let new_vm = if inp.u8() & 1 != 0 {
        Some(vm_spec(inp))
    } else {
        None
    };

    // The models alone, on each VM with the pool recalculate would form.
    let total: u128 = running
        .iter()
        .map(|r| u128::from(r.spec.guest_bytes))
        .chain(new_vm.map(|v| u128::from(v.guest_bytes)))
        .sum();
    let pool = PoolShare {
        host_bytes,
        total_guest_bytes: u64::try_from(total).unwrap_or(u64::MAX),
    };
    for vm in running.iter().map(|r| &r.spec).chain(new_vm.as_ref()) {
        let got = model.overhead(vm, &pool);
        assert_eq!(
            got.map_err(|e| e.status()),
            overhead_oracle(&model, vm, &pool),
            "overhead of {vm:?} under {model:?} with {pool:?}"
        );
    }
    // Also a pool that does not include the VM, and no pool at all.
    if let Some(vm) = &new_vm {
        for pool in [
            PoolShare::default(),
            PoolShare {
                host_bytes,
                total_guest_bytes: vm.guest_bytes.saturating_sub(1),
            },
        ] {
            assert_eq!(
                model.overhead(vm, &pool).map_err(|e| e.status()),
                overhead_oracle(&model, vm, &pool),
                "overhead of {vm:?} under {model:?} with {pool:?}"
            );
        }
    }

    // recalculate, against the same oracle, in its order of failure: Σ
    // guest past 64 bits, the new VM (or the parameters), then the running
    // VMs one by one.
    let got = recalculate(&model, host_bytes, &running, new_vm.as_ref());
    let expect: Result<(u64, Vec<u64>), Status> = (|| {
        if total > u128::from(u64::MAX) {
            return Err(Status::Overflow);
        }
        let new = match &new_vm {
            Some(v) => overhead_oracle(&model, v, &pool)?,
            // No VM to compute: the parameters are still checked.
            None => params_valid(&model.params).map(|_| 0)?,
        };
        // The running VMs in order, each one's excess added as it is
        // found: the first failure (its model, or Σ excess passing 2^64)
        // is the answer.
        let mut wanted = Vec::with_capacity(running.len());
        let mut excess: u128 = 0;
        for r in &running {
            let w = overhead_oracle(&model, &r.spec, &pool)?;
            excess += u128::from(r.usage_bytes.saturating_sub(w));
            if excess > u128::from(u64::MAX) {
                return Err(Status::Overflow);
            }
            wanted.push(w);
        }
        Ok((new, wanted))
    })();
    match (got, expect) {
        (Err(e), Err(s)) => assert_eq!(e.status(), s, "recalculate fails with the wrong status"),
        (Err(e), Ok(_)) => panic!("recalculate failed ({e}) where every model answers"),
        (Ok(r), Err(s)) => panic!("recalculate succeeded where the oracle fails ({s:?}): {r:?}"),
        (Ok(r), Ok((new, wanted))) => {
            assert_eq!(r.model, model.kind);
            assert_eq!(r.new_vm_overhead, new, "new VM's overhead");
            assert_eq!(r.limits.len(), running.len(), "one limit per running VM");
            let mut stuck_idx = Vec::new();
            let mut stuck_bytes: u64 = 0;
            for (i, (vm, w)) in running.iter().zip(&wanted).enumerate() {
                // A limit is never below usage (cgroups refuse it with
                // EBUSY): the model's figure, raised to usage if short.
                assert!(r.limits[i] >= vm.usage_bytes, "limit {i} below usage");
                assert_eq!(r.limits[i], (*w).max(vm.usage_bytes), "limit {i}");
                if vm.usage_bytes > *w {
                    stuck_idx.push(i);
                    stuck_bytes += vm.usage_bytes - w;
                }
            }
            // Stuck: exactly the VMs whose usage exceeds what the model
            // now gives them, in order, with their figures.
            let got_idx: Vec<usize> = r.stuck.iter().map(|s| s.index).collect();
            assert_eq!(got_idx, stuck_idx, "stuck lists the wrong VMs");
            for s in &r.stuck {
                let vm = &running[s.index];
                assert_eq!(s.wanted_bytes, wanted[s.index]);
                assert_eq!(s.usage_bytes, vm.usage_bytes);
                assert_eq!(s.excess_bytes, vm.usage_bytes - wanted[s.index]);
            }
            assert_eq!(r.stuck_bytes, stuck_bytes, "stuck_bytes != Σ excess");
            if model.kind == OverheadKind::Pooled {
                // Each share rounds down and Σ guest_i = total, so the
                // shares never add up to more than the pool.
                let pool_bytes = u128::from(host_bytes) * u128::from(model.params.pool_bp) / BP;
                let shares: u128 = wanted.iter().map(|w| u128::from(*w)).sum::<u128>()
                    + u128::from(r.new_vm_overhead);
                assert!(
                    shares <= pool_bytes,
                    "pooled shares {shares} > pool {pool_bytes}"
                );
            }
        }
    }
}

// ------------------------------------------------------------ 2 states, EWMA

/// `SCALE PHYSMEM FREE_A FREE_B TAU_NS N (DT_NS SAMPLE)*N`, N ≤ 16.
fn check_states(inp: &mut Input<'_>) {
    let s = scale(inp);
    let physmem = inp.size();
    let t = thresholds(&s, physmem);
    // Each threshold is ⌈minFree·bp/10000⌉ of a smaller bp, and that is
    // monotone in bp: the ladder is ordered.
    assert_eq!(t.high_bytes, t.min_free_bytes, "high is 100% of minFree");
    assert!(
        t.high_bytes >= t.soft_bytes && t.soft_bytes >= t.hard_bytes && t.hard_bytes >= t.low_bytes,
        "thresholds out of order: {t:?}"
    );
    for st in MemState::ALL {
        let want = u64::try_from(bp_ceil(t.min_free_bytes, st.threshold_bp())).unwrap();
        assert_eq!(
            t.bytes_for(st),
            if st == MemState::Exhausted { 0 } else { want }
        );
    }
    let (a, b) = (inp.size(), inp.size());
    let (lo, hi) = (a.min(b), a.max(b));
    // More free memory never gives a worse state (MemState orders best
    // first: High < Exhausted).
    assert!(
        state(&t, hi) <= state(&t, lo),
        "state not monotone: {lo} vs {hi} under {t:?}"
    );
    for free in [
        a,
        b,
        t.low_bytes,
        t.hard_bytes.saturating_sub(1),
        t.high_bytes,
    ] {
        let st = state(&t, free);
        // The best state whose threshold free memory meets.
        assert!(
            free >= t.bytes_for(st),
            "{free} below its state's threshold"
        );
        if let Some(better) = MemState::ALL.iter().rev().find(|x| **x < st) {
            assert!(
                free < t.bytes_for(*better),
                "{free} meets the better {better:?}"
            );
        }
        for x in MemState::ALL {
            assert_eq!(room_above(&t, free, x), free.saturating_sub(t.bytes_for(x)));
        }
    }

    let tau = Duration::from_nanos(inp.u64());
    let mut e = Ewma::new(tau);
    assert_eq!(e.value(), None);
    for _ in 0..inp.u8() % 17 {
        let dt = match inp.u8() % 4 {
            0 => Duration::ZERO,
            1 => Duration::new(inp.u64(), inp.u32() % 1_000_000_000),
            _ => Duration::from_nanos(inp.u64()),
        };
        let sample = inp.u64() as i64;
        let before = e.value();
        e.observe(dt, sample);
        let after = e.value().expect("a sample was seen");
        match before {
            None => assert_eq!(after, sample, "the first sample seeds the average"),
            Some(v) if dt.is_zero() => assert_eq!(after, v, "a zero interval carries weight"),
            // |step| ≤ |sample − v|: the new value lies between them.
            Some(v) => assert!(
                v.min(sample) <= after && after <= v.max(sample),
                "EWMA left [{v}, {sample}]: {after} (dt {dt:?}, tau {tau:?})"
            ),
        }
    }
    assert_eq!(e.tau(), tau);
    e.reset();
    assert_eq!(e.value(), None);
}

// ------------------------------------------------------------ 3 headroom

/// `PHYSMEM UNLOCKABLE ARC DMA ZONES OS BUFFER  KLIMIT RFD OMI EARMARK CNAPI
/// CAPS  PHYS_PAGES PP_PAGES  NUM DEN UNLOCKABLE2`.
fn check_headroom(inp: &mut Input<'_>) {
    let i = HeadroomInputs {
        physmem_bytes: inp.size(),
        unlockable_bytes: inp.size(),
        arc_floor_bytes: inp.size(),
        driver_dma_bytes: inp.size(),
        zone_caps_bytes: inp.size(),
        os_reserve_bytes: inp.size(),
        overcommit_buffer_bytes: inp.size(),
    };
    let h = headroom(&i);
    assert_eq!(h.inputs, i);
    // The kernel withholds 120% of the unlockable bytes, rounded up.
    let u120 = (u128::from(i.unlockable_bytes) * 12).div_ceil(10);
    let ded = u120
        + [
            i.arc_floor_bytes,
            i.driver_dma_bytes,
            i.zone_caps_bytes,
            i.os_reserve_bytes,
            i.overcommit_buffer_bytes,
        ]
        .iter()
        .map(|b| u128::from(*b))
        .sum::<u128>();
    let phys = u128::from(i.physmem_bytes);
    let sat = |v: u128| u64::try_from(v).unwrap_or(u64::MAX);
    assert_eq!(h.unlockable_120_bytes, sat(u120));
    assert_eq!(h.deductions_bytes, sat(ded));
    assert_eq!(h.short_bytes, sat(ded.saturating_sub(phys)));
    // The reservoir takes whole pages of what the others leave, never more
    // than the machine has.
    assert!(
        h.safe_max_bytes <= i.physmem_bytes,
        "safe max above physmem: {h:?}"
    );
    assert_eq!(
        h.safe_max_bytes % PAGESIZE,
        0,
        "safe max not page-aligned: {h:?}"
    );
    let left = phys.saturating_sub(ded) as u64; // ≤ physmem
    assert_eq!(h.safe_max_bytes, left - left % PAGESIZE, "safe max: {h:?}");

    let pin = ProfileInputs {
        physmem_bytes: i.physmem_bytes,
        kernel_limit_bytes: inp.size(),
        rfd185_pct: pct(inp),
        omicron_pct: pct(inp),
        omicron_earmark_bytes: inp.size(),
        cnapi_pct: pct(inp),
        vm_caps_bytes: inp.size(),
    };
    for p in Profile::ALL {
        let r = sizing(p, &pin);
        let pct = match p {
            Profile::Rfd185 => pin.rfd185_pct,
            Profile::Omicron => pin.omicron_pct,
            Profile::Cnapi => pin.cnapi_pct,
        };
        // The only documented failure: a percentage above 100.
        assert_eq!(
            status(&r),
            (pct > 100).then_some(Status::InvalidArgument),
            "{p:?} with {pin:?}: {r:?}"
        );
        let Ok(v) = r else { continue };
        match p {
            Profile::Rfd185 => {
                assert!(
                    v <= pin.kernel_limit_bytes && v % PAGESIZE == 0,
                    "rfd185 {v}"
                );
                if pct == 75 {
                    assert_eq!(Ok(v), default_target_for(pin.kernel_limit_bytes, 0));
                }
            }
            Profile::Omicron => {
                assert!(
                    v <= pin.physmem_bytes && v % PAGESIZE_2M == 0,
                    "omicron {v}"
                );
            }
            Profile::Cnapi => assert!(v <= pin.physmem_bytes, "cnapi {v}"),
        }
    }

    // The kernel's limit, (physmem·10 − pp·12)·PAGESIZE/10 in pages, gives
    // pp back exactly (any physmem whose ·10 in bytes fits 64 bits).
    let phys_pages = inp.u64() % (u64::MAX / (10 * PAGESIZE));
    let pp_pages = inp.u64() % (phys_pages * 10 / 12 + 1);
    let limit = (phys_pages * 10 - pp_pages * 12) * PAGESIZE / 10;
    assert_eq!(
        unlockable_from_limit(phys_pages * PAGESIZE, limit),
        pp_pages * PAGESIZE,
        "pp back from the kernel limit ({phys_pages} pages, pp {pp_pages})"
    );
    assert_eq!(unlockable_from_limit(limit, limit.saturating_add(1)), 0);
    assert_eq!(
        limit_from_unlockable(phys_pages * PAGESIZE, pp_pages * PAGESIZE),
        limit,
        "the kernel's limit ({phys_pages} pages, pp {pp_pages})"
    );

    // A profile's share as an exact fraction.
    let (num, den) = (inp.size(), inp.size());
    let f = Fraction::new(num, den);
    assert_eq!(f.is_err(), den == 0 || num > den, "{num}/{den}: {f:?}");
    if let Ok(f) = f {
        for p in Profile::ALL {
            let v = sizing_fraction(p, &pin, f).expect("a fraction at most 1");
            match p {
                Profile::Rfd185 => {
                    assert!(v <= pin.kernel_limit_bytes && v % PAGESIZE == 0)
                }
                Profile::Omicron => assert!(v <= pin.physmem_bytes && v % PAGESIZE_2M == 0),
                Profile::Cnapi => {
                    let share = u128::from(pin.physmem_bytes) * u128::from(num) / u128::from(den);
                    assert_eq!(
                        u128::from(v),
                        share.saturating_sub(u128::from(pin.vm_caps_bytes))
                    );
                }
            }
        }
    }
    for p in Profile::ALL {
        if let (Ok(pf), Ok(v)) = (pin.fraction(p), sizing(p, &pin)) {
            assert_eq!(sizing_fraction(p, &pin, pf), Ok(v), "{p:?}");
        }
    }

    // The kernel's limit from any physmem and unlockable bytes.
    let u = inp.size();
    let pb = i.physmem_bytes;
    let l = limit_from_unlockable(pb, u);
    let p10 = u128::from(pb) * 10;
    let u12 = u128::from(u) * 12;
    assert_eq!(u128::from(l), p10.saturating_sub(u12) / 10);
    if u12 <= p10 {
        assert_eq!(unlockable_from_limit(pb, l), u, "{pb} {u}");
    }
}

// ------------------------------------------------------------ 4 report

/// `FREE ALLOC TRANSIENT LIMIT  PENDING×3  KIND PARAMS SCALE FLOOR
/// PHYSMEM FREE_SEL FREE  ARC_FLAG [C_MIN C_MAX CEIL_SEL [CEIL] SLACK SIZE]
/// DMA ZONES OS BUFFER EARMARK CAPS CHUNK_SEL [CHUNK] VCPUS`.
fn check_report(inp: &mut Input<'_>) {
    let q = ReservoirQuery {
        free: inp.size(),
        alloc: inp.size(),
        alloc_transient: inp.size(),
        limit: inp.size(),
    };
    let pending = Pending {
        reservoir: inp.size(),
        transient: inp.size(),
        arc_reserved: inp.size(),
        host: inp.size(),
    };
    let policy = AdmissionPolicy {
        overhead: OverheadModel {
            kind: kind(inp),
            params: params(inp),
        },
        scale: scale(inp),
        floor: mem_state(inp),
    };
    let physmem = inp.size();
    let free = match inp.u8() % 4 {
        // Mostly a reading the readers could give (free ≤ physmem).
        0 | 1 => physmem.saturating_sub(inp.size()),
        2 => physmem / 2,
        _ => inp.size(),
    };
    let arc = if inp.u8() & 1 != 0 {
        let limits = ArcLimits {
            arc_c_min: inp.size(),
            arc_c_max: inp.size(),
        };
        let ceiling = match inp.u8() % 3 {
            0 => Ceiling::ArcCMax,
            1 => Ceiling::Physmem(inp.size()),
            _ => Ceiling::Budget(inp.size()),
        };
        Some(ArcHost {
            policy: ArcPolicy {
                limits,
                ceiling,
                slack: inp.size(),
            },
            arc_size: inp.size(),
        })
    } else {
        None
    };
    let inputs = ReportInputs {
        host: HostMemory {
            physmem_bytes: physmem,
            free_bytes: free,
        },
        arc,
        driver_dma_bytes: inp.size(),
        zone_caps_bytes: inp.size(),
        os_reserve_bytes: inp.size(),
        overcommit_buffer_bytes: inp.size(),
        omicron_earmark_bytes: inp.size(),
        vm_caps_bytes: inp.size(),
        chunk_bytes: match inp.u8() % 4 {
            0 => 0,
            1 => PAGESIZE_2M,
            2 => 1 << 30,
            _ => inp.size(),
        },
        reference_vcpus: vcpus(inp),
        // The default shares (the profiles' fractions are checked in 3).
        profile_fractions: None,
    };

    let r = match report::build(&q, &pending, &policy, &inputs) {
        Ok(r) => r,
        Err(e) => {
            // Documented refusals: free above physmem, an unaligned chunk,
            // ARC limits with c_min > c_max, totals past 64 bits.
            assert!(
                matches!(
                    e.status(),
                    Status::InvalidArgument | Status::Unaligned | Status::Overflow
                ),
                "report::build failed with {e}"
            );
            if free > physmem {
                assert_eq!(e.status(), Status::InvalidArgument);
            }
            return;
        }
    };
    assert!(
        free <= physmem,
        "a report for free {free} > physmem {physmem}"
    );

    // The JSON is well-formed and carries exactly the report's values.
    let text = r.to_json();
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("report JSON does not parse ({e}): {text}"),
    };
    assert_eq!(v, r.to_value(), "JSON does not read back to the report");
    assert_eq!(v["schema"], SCHEMA);

    let t = thresholds(&policy.scale, physmem);
    assert_eq!(r.thresholds, t);
    assert_eq!(r.state, state(&t, free));

    let floor_bytes = t.bytes_for(policy.floor);
    // Host memory other starts under a policy hold (the host ledger).
    let host_room = free
        .saturating_sub(pending.host)
        .saturating_sub(floor_bytes);
    // With the reservoir: the guest comes from reservoir free less pending
    // claims (whole pages of it); page_t and overhead from host memory,
    // which stays at the floor.
    let w = r.with_reservoir;
    assert_eq!(
        w.guest_bytes % PAGESIZE,
        0,
        "with_reservoir guest unaligned: {w:?}"
    );
    assert!(
        w.guest_bytes <= q.free.saturating_sub(pending.reservoir),
        "with_reservoir guest {} > reservoir free {} less pending {}",
        w.guest_bytes,
        q.free,
        pending.reservoir
    );
    if w.guest_bytes > 0 {
        assert!(
            u128::from(w.page_t_bytes) + u128::from(w.overhead_bytes) <= u128::from(host_room),
            "with_reservoir side cost exceeds host room {host_room}: {w:?}"
        );
        assert_eq!(
            w.page_t_bytes,
            pages::page_t_overhead(w.guest_bytes / PAGESIZE).unwrap()
        );
    }
    // Without it: the whole VM from host memory (plus what the ARC gives
    // back above its floor), the guest within the kernel's transient room
    // and the ARC guard.
    let o = r.without_reservoir;
    assert_eq!(
        o.guest_bytes % PAGESIZE,
        0,
        "without_reservoir guest unaligned: {o:?}"
    );
    let used = q
        .free
        .saturating_add(q.alloc)
        .saturating_add(q.alloc_transient)
        .saturating_add(pending.transient);
    assert!(
        o.guest_bytes <= q.limit.saturating_sub(used),
        "above the transient limit: {o:?}"
    );
    let mut arc_give = 0;
    if let Some(a) = &r.arc {
        let tr = &a.target;
        let guard = tr
            .ceiling_bytes
            .saturating_sub(tr.arc_c_min)
            .saturating_sub(tr.reserved_bytes);
        assert!(o.guest_bytes <= guard, "above the ARC guard {guard}: {o:?}");
        arc_give = a.size_bytes.saturating_sub(tr.arc_c_min);
    }
    if o.guest_bytes > 0 {
        let need =
            u128::from(o.guest_bytes) + u128::from(o.page_t_bytes) + u128::from(o.overhead_bytes);
        assert!(
            need <= u128::from(host_room.saturating_add(arc_give)),
            "without_reservoir VM exceeds host room {host_room} + ARC {arc_give}: {o:?}"
        );
    }
}

// ------------------------------------------------------------ 5 text

/// The setting parser's documented contract on one piece of text.
fn check_setting(text: &str) -> Option<BootSetting> {
    match BootSetting::parse(text) {
        Ok(s) => {
            if let BootSetting::Percent(p) = s {
                assert!(p <= 100, "{text:?} parsed to {p}%");
            }
            // Display writes what parse reads back to the same setting.
            let shown = s.to_string();
            assert_eq!(
                BootSetting::parse(&shown),
                Ok(s),
                "{text:?} → {s:?} → {shown:?}"
            );
            Some(s)
        }
        Err(e) => {
            assert!(
                matches!(e.status(), Status::ParseSize | Status::Overflow),
                "setting {text:?}: {e}"
            );
            None
        }
    }
}

fn check_boot_target(setting: BootSetting, limit: u64, chunk: u64) {
    let r = boot::boot_target(setting, limit, chunk);
    if chunk % PAGESIZE != 0 {
        assert_eq!(status(&r), Some(Status::Unaligned), "chunk {chunk}: {r:?}");
        return;
    }
    if let BootSetting::Percent(p) = setting {
        if p > 100 {
            assert_eq!(status(&r), Some(Status::InvalidArgument), "{p}%: {r:?}");
            return;
        }
    }
    let t = match r {
        Ok(t) => t,
        Err(e) => panic!("boot_target({setting:?}, {limit}, {chunk}) failed: {e}"),
    };
    let align = if chunk == 0 { PAGESIZE } else { chunk };
    let (requested, clamped) = match setting {
        BootSetting::Percent(p) => ((u128::from(limit) * u128::from(p) / 100) as u64, false),
        BootSetting::Size(b) => (b, b > limit),
    };
    assert_eq!(t.setting, setting);
    assert_eq!(t.limit_bytes, limit);
    assert_eq!(t.requested_bytes, requested, "{t:?}");
    assert_eq!(t.clamped, clamped, "{t:?}");
    // Clamped to the limit, then whole chunks (so whole pages).
    let m = requested.min(limit);
    assert_eq!(t.target_bytes, m - m % align, "{t:?}");
    assert!(t.target_bytes <= limit && t.target_bytes % PAGESIZE == 0);
    if setting == BootSetting::Percent(75) {
        assert_eq!(Ok(t.target_bytes), default_target_for(limit, chunk));
    }
}

/// `LIMIT CHUNK_SEL [CHUNK] PCT TEXT...`.
fn check_text(inp: &mut Input<'_>) {
    let limit = inp.size();
    let chunk = match inp.u8() % 4 {
        0 => 0,
        1 => PAGESIZE_2M,
        2 => 1 << 30,
        _ => inp.size(),
    };
    let raw_pct = u32::from(inp.u8());
    let text = String::from_utf8_lossy(inp.rest());

    match host::parse_meminfo(&text) {
        // MemTotal and MemAvailable in kB, available ≤ total.
        Ok(h) => {
            assert!(
                h.free_bytes <= h.physmem_bytes,
                "meminfo: free > physmem: {h:?}"
            );
            assert!(
                h.physmem_bytes % 1024 == 0 && h.free_bytes % 1024 == 0,
                "{h:?}"
            );
        }
        Err(e) => assert!(
            matches!(e.status(), Status::MalformedInput | Status::Overflow),
            "meminfo: {e}"
        ),
    }
    match host::parse_system_pages(&text) {
        // physmem and freemem in whole 4 KiB pages, freemem ≤ physmem.
        Ok(h) => {
            assert!(
                h.free_bytes <= h.physmem_bytes,
                "system_pages: free > physmem: {h:?}"
            );
            assert!(
                h.physmem_bytes % PAGESIZE == 0 && h.free_bytes % PAGESIZE == 0,
                "{h:?}"
            );
        }
        Err(e) => assert!(
            matches!(e.status(), Status::MalformedInput | Status::Overflow),
            "system_pages: {e}"
        ),
    }

    let setting = check_setting(&text).unwrap_or_default();
    check_boot_target(setting, limit, chunk);
    check_boot_target(BootSetting::Percent(raw_pct), limit, chunk);
    check_boot_target(BootSetting::Size(limit.rotate_left(raw_pct)), limit, chunk);

    match boot::parse_config(Path::new("/fuzz.conf"), &text) {
        Ok(cfg) => {
            if let Some(s) = cfg.reservoir_size {
                assert_eq!(BootSetting::parse(&s.to_string()), Ok(s));
            }
            let _ = cfg.chunk_size;
        }
        Err(e) => {
            // The line exists (1-based) and its text is a bounded prefix.
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                e.line >= 1 && e.line <= lines.len(),
                "config error names line {}",
                e.line
            );
            assert!(
                e.text.chars().count() <= 120,
                "config error text not bounded"
            );
            assert!(
                lines[e.line - 1].starts_with(&e.text),
                "config error text not the line's"
            );
            assert!(
                matches!(
                    e.error.status(),
                    Status::InvalidArgument | Status::ParseSize | Status::Overflow
                ),
                "config: {e}"
            );
            let _ = e.to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut inp = Input::new(data);
    match inp.u8() % 6 {
        0 => check_planner(&mut inp),
        1 => check_overhead(&mut inp),
        2 => check_states(&mut inp),
        3 => check_headroom(&mut inp),
        4 => check_report(&mut inp),
        _ => check_text(&mut inp),
    }
});
