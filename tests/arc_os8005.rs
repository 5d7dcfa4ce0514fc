//! The OS-8005 hosts, rebuilt from the `::memstat` tables in the ticket
//! (tests/fixtures/arc/*.memstat, verbatim), run through the guard and the
//! ARC target with the numbers derived by hand.
//!
//! Conventions of the derivations: 1 page = 4096 bytes; "MiB"/"GiB" are
//! binary. physmem is the Total row. arc_c_min/arc_c_max are the illumos
//! defaults (arc.c `arc_init()`), with the classic `swapfs_minfree` = 1/8
//! of physmem unless said otherwise. The VMM memory a host already has is
//! taken as its existing reservation (on the fixed PI those VMs were
//! started through the same path). A VM's demand is its guest RAM plus the
//! VMM memory beyond guest RAM the "after" table shows for it.

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

use std::path::PathBuf;

use vmmresv::arc::{
    desfree_slack, guard, illumos_arc_limits, read_memstat_file, target, Admitted, ArcLimits,
    Ceiling, Clamp, GuardInputs, HostSnapshot, Memstat, MemstatRow, Refusal, SwapfsMinfree,
    TargetInputs, TargetReport, VmDemand,
};
use vmmresv::pages::{btop, PageSize};

const P: u64 = 4096;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/arc")
        .join(name)
}

fn table(name: &str) -> Memstat {
    read_memstat_file(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn pages(bytes: Option<u64>) -> u64 {
    btop(bytes.expect("field present"), PageSize::Base4K)
}

/// The OS-8005 guard as merged (illumos-joyent PR #354):
/// `newv + arc_c_min > arc_c_max` with `newv` in pages and the limits in
/// bytes. Returns whether it refuses.
fn os8005_as_merged_refuses(reserved_pages: u64, request_pages: u64, limits: &ArcLimits) -> bool {
    let newv = reserved_pages + request_pages;
    newv + limits.arc_c_min > limits.arc_c_max
}

/// Everything one admission on one host produces.
struct Case {
    host: HostSnapshot,
    limits: ArcLimits,
    budget: u64,
    demand: u64,
    reserved: u64,
    slack: u64,
}

impl Case {
    fn new(before: &str, guest: u64, overhead: u64) -> Case {
        let host = table(before).snapshot();
        let physmem = host.physmem.unwrap();
        let limits = illumos_arc_limits(physmem, SwapfsMinfree::Classic).limits;
        let demand = VmDemand {
            guest_bytes: guest,
            page_t: false,
            overhead_bytes: overhead,
        }
        .bytes()
        .unwrap();
        Case {
            host,
            limits,
            budget: host.vm_and_arc_budget().unwrap().unwrap(),
            demand,
            reserved: pages(host.vmm),
            slack: desfree_slack(physmem),
        }
    }

    fn guard(&self, ceiling: Ceiling) -> Result<Admitted, Refusal> {
        guard(&GuardInputs::new(
            &self.limits,
            ceiling,
            self.reserved,
            self.demand,
        ))
    }

    fn target(&self, ceiling: Ceiling, reserved_after: u64) -> TargetReport {
        target(&TargetInputs {
            limits: self.limits,
            ceiling,
            arc_virt_machine_reserved: reserved_after,
            slack: self.slack,
        })
        .unwrap()
    }

    /// Pages free once the ARC's file data is down to `target_bytes`:
    /// free now + what the ARC gives up. ZFS File Data is ARC data only
    /// (metadata is under Kernel), and the ARC's size includes both, so
    /// shrinking the ARC to the target frees at least this much.
    fn free_after_shrink(&self, target_bytes: u64) -> u64 {
        pages(self.host.free) + pages(self.host.zfs_file_data)
            - btop(target_bytes, PageSize::Base4K).min(pages(self.host.zfs_file_data))
    }
}

/// The fixed PI, 128 GiB host, 64 GiB VM: admitted, and the target from the
/// memstat budget frees exactly enough (slack included).
#[test]
fn fixed_pi_64g_vm_is_admitted_with_a_target_that_frees_enough() {
    let c = Case::new("os8005-fix-before.memstat", 64 * GIB, 32 * MIB);

    // physmem = 33526026 pages = 137322602496 bytes.
    // swapfs_minfree = 33526026 >> 3 = 4190753 pages;
    // allmem = (33526026 - 4190753) * 4096 = 120157278208.
    // arc_c_min = min(max(allmem / 64 = 1877457472, 64 MiB), 1 GiB) = 1 GiB.
    // arc_c_max = max(allmem * 3 / 4 = 90117958656, allmem - 1 GiB)
    //           = 119083536384 = 29073129 pages.
    assert_eq!(c.host.physmem, Some(33_526_026 * P));
    assert_eq!(c.limits.arc_c_min, GIB);
    assert_eq!(c.limits.arc_c_max, 119_083_536_384);

    // The VM: bhyve -m 65536; the after table's VMM Memory is 22040576 =
    // 5255168 + 16785408, i.e. 64 GiB (16777216 pages) + 8192 pages (32 MiB).
    let after = table("os8005-fix-after.memstat");
    let grew = after.pages(MemstatRow::VmmMemory).unwrap() - c.reserved;
    assert_eq!(c.demand, 64 * GIB + 32 * MIB);
    assert_eq!(grew, c.demand / P);
    assert_eq!(c.reserved, 5_255_168);

    // Budget = free (414516 + 5116476 = 5530992) + ZFS File Data 18077431
    //        + VMM 5255168 = 28863591 pages.
    assert_eq!(c.budget, 28_863_591 * P);

    // Guard: need = 262144 (c_min) + 5255168 + 16785408 = 22302720 pages.
    // Budget ceiling: headroom 28863591 - 22302720 = 6560871.
    // arc_c_max ceiling: 29073129 - 22302720 = 6770409.
    let admitted = c.guard(Ceiling::Budget(c.budget)).unwrap();
    assert_eq!(
        admitted,
        Admitted {
            arc_virt_machine_reserved: 22_040_576,
            headroom: 6_560_871
        }
    );
    assert_eq!(c.guard(Ceiling::ArcCMax).unwrap().headroom, 6_770_409);

    // Target (budget): slack = physmem / 128 = 1072832832 bytes = 261922.08
    // pages, rounded up to 261923. 28863591 - 22040576 - 261923 = 6561092
    // pages = 26874232832 bytes (25.03 GiB), inside [c_min, c_max].
    let t = c.target(
        Ceiling::Budget(c.budget),
        admitted.arc_virt_machine_reserved,
    );
    assert_eq!(t.target_bytes, 6_561_092 * P);
    assert_eq!(t.clamped_by, None);
    assert_eq!(t.slack_bytes, 261_923 * P);
    assert_eq!(t.reserved_bytes, 22_040_576 * P);

    // Frees enough: 5530992 free + (18077431 - 6561092) from the ARC
    // = 17047331 = demand 16785408 + slack 261923, exactly.
    assert_eq!(c.free_after_shrink(t.target_bytes), c.demand / P + 261_923);

    // What the host did: ZFS File Data fell to 1994417 pages, below target.
    assert!(after.pages(MemstatRow::ZfsFileData).unwrap() * P <= t.target_bytes);

    // With the arc_c_max ceiling the target is 29073129 - 22040576 - 261923
    // = 6770630 pages: frees 5530992 + 11306801 = 16837793, enough for the
    // VM (16785408) but 209538 pages short of its slack. With the current
    // illumos-gate swapfs_minfree (capped at 512 MiB) arc_c_max is
    // 135711989760 (33132810 pages) and the target 10830311 pages leaves
    // 12778112 free: short by 4269219 pages (16.3 GiB). arc_c_max does not
    // see the 16 GiB the kernel holds; the memstat budget does.
    let tc = c.target(Ceiling::ArcCMax, admitted.arc_virt_machine_reserved);
    assert_eq!(tc.target_bytes, 6_770_630 * P);
    assert_eq!(c.free_after_shrink(tc.target_bytes), 16_837_793);
    let capped = illumos_arc_limits(c.host.physmem.unwrap(), SwapfsMinfree::Capped512M).limits;
    assert_eq!(capped.arc_c_max, 135_711_989_760);
    let tcap = target(&TargetInputs {
        limits: capped,
        ceiling: Ceiling::ArcCMax,
        arc_virt_machine_reserved: admitted.arc_virt_machine_reserved,
        slack: c.slack,
    })
    .unwrap();
    assert_eq!(tcap.target_bytes, 10_830_311 * P);
    assert_eq!(c.free_after_shrink(tcap.target_bytes), 12_778_112);
}

/// The unmodified PI, same host and VM (the collapsed table): the VM sat in
/// "Unable to allocate memory" for minutes; through the ARC path it is
/// admitted and the target frees enough.
#[test]
fn old_pi_64g_vm_is_admitted_with_a_target_that_frees_enough() {
    let c = Case::new("os8005-old-pi.memstat", 64 * GIB, 32 * MIB);
    // Same physmem (33526026 pages), so the same limits and slack.
    assert_eq!(c.limits.arc_c_min, GIB);
    assert_eq!(c.limits.arc_c_max, 119_083_536_384);
    // Free 737205 + 3776029 = 4513234 (17.2 GiB: less than the 64 GiB VM);
    // ZFS File Data 17147676 (65.4 GiB); budget 4513234 + 17147676 +
    // 5255168 = 26916078 pages.
    assert_eq!(c.budget, 26_916_078 * P);
    // need = 262144 + 5255168 + 16785408 = 22302720; headroom 4613358.
    let admitted = c.guard(Ceiling::Budget(c.budget)).unwrap();
    assert_eq!(admitted.headroom, 4_613_358);
    assert_eq!(admitted.arc_virt_machine_reserved, 22_040_576);
    // Target = 26916078 - 22040576 - 261923 = 4613579 pages (17.6 GiB).
    let t = c.target(
        Ceiling::Budget(c.budget),
        admitted.arc_virt_machine_reserved,
    );
    assert_eq!(t.target_bytes, 4_613_579 * P);
    assert_eq!(t.clamped_by, None);
    // 4513234 + (17147676 - 4613579) = 17047331 = 16785408 + 261923.
    assert_eq!(c.free_after_shrink(t.target_bytes), 17_047_331);
    // The arc_c_max ceiling's target (6770630 pages) would leave 14890280
    // free: short of the VM itself by 1895128 pages (7.2 GiB). On this PI
    // the kernel held 23 GiB.
    let tc = c.target(Ceiling::ArcCMax, admitted.arc_virt_machine_reserved);
    assert_eq!(c.free_after_shrink(tc.target_bytes), 14_890_280);
    assert!(c.free_after_shrink(tc.target_bytes) < c.demand / P);
}

/// The home system (arc-testing branch): a 70 GiB VM next to 28 GiB of VMs,
/// with 60 GiB free. Admitted; the after table matches the demand.
#[test]
fn home_system_70g_vm() {
    let c = Case::new("os8005-home-before.memstat", 70 * GIB, 17 * MIB);
    // physmem 33524986 pages; swapfs_minfree 4190623; allmem 120153550848;
    // c_min 1 GiB; c_max = allmem - 1 GiB = 119079809024.
    assert_eq!(c.limits.arc_c_max, 119_079_809_024);
    // After: VMM 25699328 = 7344896 + 18354432 = 70 GiB + 4352 pages (17 MiB).
    let after = table("os8005-home-after.memstat");
    assert_eq!(
        after.pages(MemstatRow::VmmMemory).unwrap() - c.reserved,
        c.demand / P
    );
    // need = 262144 + 7344896 + 18354432 = 25961472; budget = 15818554 free
    // + 7250662 ZFS + 7344896 VMM = 30414112; headroom 4452640.
    let admitted = c.guard(Ceiling::Budget(c.budget)).unwrap();
    assert_eq!(admitted.headroom, 4_452_640);
    // slack = 33524986 * 4096 / 128 = 1072799552 bytes -> 261914 pages.
    // Target = 30414112 - 25699328 - 261914 = 4452870 pages (16.99 GiB);
    // the host went down to 1276298 pages of ZFS File Data.
    let t = c.target(
        Ceiling::Budget(c.budget),
        admitted.arc_virt_machine_reserved,
    );
    assert_eq!(t.target_bytes, 4_452_870 * P);
    assert!(after.pages(MemstatRow::ZfsFileData).unwrap() * P <= t.target_bytes);
    assert_eq!(c.free_after_shrink(t.target_bytes), 18_354_432 + 261_914);
}

/// The 4 GiB test VM: an 1844 MiB bhyve VM against an ARC filled by arcfill.
#[test]
fn four_gib_host_behaves_as_the_numbers_say() {
    // "Unable to allocate memory (1933574144)": 1844 MiB = 472064 pages.
    // The after table's VMM Memory is 476416 = 472064 + 4352 (17 MiB).
    let c = Case::new("os8005-4g-arcfill.memstat", 1_933_574_144, 17 * MIB);
    let after = table("os8005-4g-vm-started.memstat");
    assert_eq!(after.pages(MemstatRow::VmmMemory), Some(476_416));
    assert_eq!(c.demand / P, 476_416);
    // No VMM row before: mdb omits zero rows, so nothing is reserved.
    assert_eq!(c.reserved, 0);

    // physmem 1045110 pages; swapfs_minfree = 130638 (either variant: 1/8
    // is under 512 MiB); allmem = 914472 pages = 3745677312 bytes.
    // c_min = max(3745677312 / 64 = 58526208, 64 MiB) = 64 MiB = 16384 pages.
    // c_max = max(3745677312 * 3 / 4 = 2809257984, allmem - 1 GiB =
    // 2671935488) = 2809257984 = 685854 pages.
    assert_eq!(
        c.limits,
        ArcLimits {
            arc_c_min: 64 * MIB,
            arc_c_max: 2_809_257_984
        }
    );
    assert_eq!(
        illumos_arc_limits(c.host.physmem.unwrap(), SwapfsMinfree::Capped512M).limits,
        c.limits
    );

    // Why the VM could not start: free = 31806 + 408399 = 440205 pages,
    // short of 476416 by 36211 pages (141 MiB); the ARC had to give that.
    assert_eq!(pages(c.host.free), 440_205);

    // Guard: need = 16384 + 0 + 476416 = 492800. Budget = 440205 + 118101
    // (ZFS) + 0 = 558306 -> headroom 65506. arc_c_max: 685854 - 492800 =
    // 193054.
    assert_eq!(c.budget, 558_306 * P);
    let admitted = c.guard(Ceiling::Budget(c.budget)).unwrap();
    assert_eq!(admitted.headroom, 65_506);
    assert_eq!(c.guard(Ceiling::ArcCMax).unwrap().headroom, 193_054);

    // Target (budget): slack = 1045110 * 4096 / 128 = 33443520 bytes =
    // 8164.9 -> 8165 pages. 558306 - 476416 - 8165 = 73725 pages
    // (288 MiB): arcstat showed c = 358M, so the ARC must go lower than
    // its own target of the moment.
    let t = c.target(
        Ceiling::Budget(c.budget),
        admitted.arc_virt_machine_reserved,
    );
    assert_eq!(t.target_bytes, 73_725 * P);
    assert_eq!(c.free_after_shrink(t.target_bytes), 476_416 + 8_165);

    // The arc_c_max ceiling's target is 685854 - 476416 - 8165 = 201273
    // pages (786 MiB): above the 118101 pages the ARC holds, so it asks for
    // no shrink at all and the VM would stay short.
    let tc = c.target(Ceiling::ArcCMax, admitted.arc_virt_machine_reserved);
    assert_eq!(tc.target_bytes, 201_273 * P);
    assert!(tc.target_bytes > c.host.zfs_file_data.unwrap());
    assert_eq!(c.free_after_shrink(tc.target_bytes), 440_205);

    // What happened: ZFS File Data ended at 86311 pages, above our target,
    // yet the VM started, because killing arcfill also returned Anon
    // (14558 -> 5431) and the kernel shrank (392116 -> 386634). The pages
    // the VM got are exactly what the other rows lost.
    let before = table("os8005-4g-arcfill.memstat");
    let lost: u64 = [
        MemstatRow::Kernel,
        MemstatRow::ZfsFileData,
        MemstatRow::Anon,
        MemstatRow::ExecAndLibs,
        MemstatRow::PageCache,
        MemstatRow::FreeCachelist,
        MemstatRow::FreeFreelist,
    ]
    .iter()
    .map(|r| before.pages(*r).unwrap() - after.pages(*r).unwrap())
    .sum();
    assert_eq!(lost, 476_416);
    assert_eq!(after.pages(MemstatRow::ZfsFileData), Some(86_311));
}

/// Requests that would push the ARC under arc_c_min are refused, with the
/// shortfall; the OS-8005 code as merged admits them.
#[test]
fn requests_below_arc_c_min_are_refused() {
    let c = Case::new("os8005-fix-before.memstat", 90 * GIB, 0);
    // 90 GiB = 23592960 pages. need = 262144 + 5255168 + 23592960 =
    // 29110272. Budget 28863591: short 246681 pages = 1010405376 bytes.
    // arc_c_max 29073129: short 37143 pages = 152137728 bytes.
    assert_eq!(
        c.guard(Ceiling::Budget(c.budget)),
        Err(Refusal::Shortfall {
            shortfall_bytes: 1_010_405_376,
            shortfall_pages: 246_681,
            need: 29_110_272,
            ceiling: 28_863_591,
        })
    );
    assert!(matches!(
        c.guard(Ceiling::ArcCMax),
        Err(Refusal::Shortfall {
            shortfall_bytes: 152_137_728,
            ..
        })
    ));
    // As merged: 5255168 + 23592960 pages + 1073741824 bytes = 1102589952,
    // far below 119083536384: admitted. It refuses only once the page count
    // passes arc_c_max - arc_c_min = 118009794560 "pages" (440 TiB).
    assert!(!os8005_as_merged_refuses(c.reserved, 23_592_960, &c.limits));
    assert!(!os8005_as_merged_refuses(
        c.reserved,
        (1 << 40) / P,
        &c.limits
    ));
    assert!(os8005_as_merged_refuses(0, 118_009_794_561, &c.limits));

    // The edge: the largest request the budget admits is 28863591 - 262144
    // - 5255168 = 23346279 pages, with no headroom left; its target,
    // 28863591 - 28601447 - 261923 = 221 pages, is below c_min and is
    // clamped to arc_c_min (the ARC keeps its floor; the slack cannot be
    // honoured). One byte more is a page more: refused, one page short.
    let edge = Case::new("os8005-fix-before.memstat", 23_346_279 * P, 0);
    let a = edge.guard(Ceiling::Budget(edge.budget)).unwrap();
    assert_eq!(a.headroom, 0);
    let t = edge.target(Ceiling::Budget(edge.budget), a.arc_virt_machine_reserved);
    assert_eq!(t.unclamped_bytes, Some(221 * P));
    assert_eq!((t.target_bytes, t.clamped_by), (GIB, Some(Clamp::ArcCMin)));
    let over = Case::new("os8005-fix-before.memstat", 23_346_279 * P + 1, 0);
    assert!(matches!(
        over.guard(Ceiling::Budget(over.budget)),
        Err(Refusal::Shortfall {
            shortfall_bytes: P,
            ..
        })
    ));

    // 4 GiB host, a 2.5 GiB VM (+17 MiB): 655360 + 4352 = 659712 pages;
    // need 16384 + 659712 = 676096. Budget 558306: short 117790 pages =
    // 482467840 bytes. Under arc_c_max (685854) it would be admitted with
    // 9758 pages to spare — the ARC could never give that much back while
    // the kernel holds 1.5 GiB of the 4.
    let small = Case::new("os8005-4g-arcfill.memstat", 2560 * MIB, 17 * MIB);
    assert!(matches!(
        small.guard(Ceiling::Budget(small.budget)),
        Err(Refusal::Shortfall {
            shortfall_bytes: 482_467_840,
            shortfall_pages: 117_790,
            ..
        })
    ));
    assert_eq!(small.guard(Ceiling::ArcCMax).unwrap().headroom, 9_758);
    // Physical memory as the ceiling (docs/kernel.md, "The library's ARC
    // guard"): 1045110 pages, admitted too — physmem alone does not see
    // what the kernel holds.
    let phys = small.host.physmem.unwrap();
    assert!(small.guard(Ceiling::Physmem(phys)).is_ok());
}

/// page_t and the per-VM overhead come through the page module.
#[test]
fn demand_with_page_t() {
    // 64 GiB guest: 16777216 pages x 120 bytes = 2013265920 bytes of
    // page_t; with 32 MiB of overhead the demand is 16785408 + 491520 =
    // 17276928 pages. On the fixed PI: need = 262144 + 5255168 + 17276928 =
    // 22794240 <= 28863591, headroom 6069351.
    let c = Case::new("os8005-fix-before.memstat", 0, 0);
    let demand = VmDemand {
        guest_bytes: 64 * GIB,
        page_t: true,
        overhead_bytes: 32 * MIB,
    }
    .bytes()
    .unwrap();
    assert_eq!(demand, 64 * GIB + 2_013_265_920 + 32 * MIB);
    let a = guard(&GuardInputs::new(
        &c.limits,
        Ceiling::Budget(c.budget),
        c.reserved,
        demand,
    ))
    .unwrap();
    assert_eq!(a.headroom, 6_069_351);
}
