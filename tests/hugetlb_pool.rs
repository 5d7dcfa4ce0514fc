//! The hugetlb backend against the real kernel: grow the 2 MiB pool in
//! chunks, take pages the way QEMU does (a hugetlb memfd, mapped shared
//! and touched), shrink below what is in use, and read every counter
//! against /proc/meminfo's HugePages_* lines (an independent reading).
//! Needs root; prints a loud SKIPPED line where the pool cannot be resized.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library; their unsafe calls (system
// calls and the C ABI, as a C caller makes them) carry SAFETY comments.
// The Linux hugetlb pool: nothing to test elsewhere.
#![cfg(target_os = "linux")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::unreachable,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    unsafe_code
)]

mod common;
#[path = "common/hugepool.rs"]
mod hugepool;

use vmmresv::reservoir::hugetlb::{HugetlbPool, HugetlbQuery};
use vmmresv::Progress;

const MB2: u64 = 2 << 20;

/// HugePages_Total, _Free, _Rsvd, _Surp from /proc/meminfo (the default
/// page size's pool, 2 MiB on x86-64).
fn meminfo() -> (u64, u64, u64, u64) {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    let get = |k: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("no {k} in /proc/meminfo"))
            .trim()
            .parse()
            .unwrap()
    };
    (
        get("HugePages_Total:"),
        get("HugePages_Free:"),
        get("HugePages_Rsvd:"),
        get("HugePages_Surp:"),
    )
}

fn agrees(q: &HugetlbQuery) {
    // /proc/meminfo counts the default page size's pool: compare only
    // where that is the 2 MiB one (not with default_hugepagesz=1G).
    let text = std::fs::read_to_string("/proc/meminfo").unwrap();
    if !text
        .lines()
        .any(|l| l.split_whitespace().eq(["Hugepagesize:", "2048", "kB"]))
    {
        return;
    }
    assert_eq!(
        (
            q.total_pages,
            q.free_pages,
            q.reserved_pages,
            q.surplus_pages
        ),
        meminfo(),
        "the pool's counters and /proc/meminfo disagree"
    );
}

/// `pages` huge pages from a hugetlb memfd, mapped shared; touched (taken)
/// or only reserved.
struct Taken {
    addr: *mut libc::c_void,
    len: usize,
    fd: libc::c_int,
}

fn take(pages: u64, touch: bool) -> Taken {
    let len = (pages * MB2) as usize;
    // SAFETY: a fresh memfd, sized, mapped shared over exactly its length;
    // every touched address is inside the mapping.
    unsafe {
        let fd = libc::memfd_create(c"vmmresv-test".as_ptr(), libc::MFD_HUGETLB);
        assert!(
            fd >= 0,
            "memfd_create(MFD_HUGETLB): {}",
            std::io::Error::last_os_error()
        );
        assert_eq!(libc::ftruncate(fd, len as libc::off_t), 0);
        let addr = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd,
            0,
        );
        assert_ne!(
            addr,
            libc::MAP_FAILED,
            "mmap: {}",
            std::io::Error::last_os_error()
        );
        if touch {
            for i in 0..pages as usize {
                addr.cast::<u8>().add(i * MB2 as usize).write_volatile(1);
            }
        }
        Taken { addr, len, fd }
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        // SAFETY: the mapping and descriptor made by `take`, released once.
        unsafe {
            libc::munmap(self.addr, self.len);
            libc::close(self.fd);
        }
    }
}

#[test]
fn resize_query_and_surplus_on_the_real_pool() {
    let Some(_borrowed) = hugepool::borrow("hugetlb pool (real kernel)") else {
        return;
    };
    let pool = HugetlbPool::open(0, None).unwrap();
    // Start from an empty pool (the original is restored on drop).
    assert_eq!(pool.resize(0, 0, None), Ok(0));

    // Grow to 64 pages (128 MiB), 16 at a time.
    let mut steps = Vec::new();
    let mut cb = |r: u64, t: u64| {
        steps.push((r / MB2, t / MB2));
        Progress::Continue
    };
    assert_eq!(pool.resize(64 * MB2, 16 * MB2, Some(&mut cb)), Ok(64 * MB2));
    assert_eq!(steps, vec![(16, 64), (32, 64), (48, 64)]);
    let q = pool.query().unwrap();
    agrees(&q);
    assert_eq!(
        (q.persistent_pages(), q.free_pages, q.available_pages()),
        (64, 64, 64)
    );

    // A mapping reserves its pages at mmap; touching takes them.
    let reserved = take(6, false);
    let q = pool.query().unwrap();
    agrees(&q);
    assert_eq!(
        (q.free_pages, q.reserved_pages, q.available_pages()),
        (64, 6, 58)
    );
    let touched = take(10, true);
    let q = pool.query().unwrap();
    agrees(&q);
    assert_eq!((q.in_use_pages(), q.available_pages()), (10, 48));

    // Shrinking below the pages in use reaches the target; the rest is
    // surplus, given back as its users let go.
    assert_eq!(pool.resize(4 * MB2, 0, None), Ok(4 * MB2));
    let q = pool.query().unwrap();
    agrees(&q);
    assert_eq!(q.persistent_pages(), 4);
    assert!(q.surplus_pages > 0, "{q:?}");
    drop(touched);
    drop(reserved);
    let q = pool.query().unwrap();
    agrees(&q);
    assert_eq!((q.total_pages, q.surplus_pages, q.free_pages), (4, 0, 4));

    // The 1 GiB pool, where the CPU has one: its own counters, read the
    // same way (not resized here: 1 GiB pages are rarely free at run time).
    if std::path::Path::new("/sys/kernel/mm/hugepages/hugepages-1048576kB").is_dir() {
        let giant = HugetlbPool::open(1 << 30, None).unwrap();
        let g = giant.query().unwrap();
        assert_eq!(g.page_size, 1 << 30);
        assert!(g.free_pages <= g.total_pages, "{g:?}");
    }

    // Cancel from the callback stops at the first step.
    let mut cancel = |_: u64, _: u64| Progress::Cancel;
    let e = pool
        .resize(40 * MB2, 8 * MB2, Some(&mut cancel))
        .unwrap_err();
    assert_eq!(
        (e.error.status(), e.reached),
        (vmmresv::Status::Interrupted, Some(12 * MB2))
    );
    assert_eq!(pool.resize(0, 0, None), Ok(0));
}

/// The pool through the reservoir API: resized in chunks by a `Reservoir`
/// (lock and ledger hold as on illumos), a shrink into pages a pending
/// admission counts on refused, the admission ledger named for the pool,
/// and the capacity report naming the backend.
#[test]
fn the_pool_as_a_reservoir() {
    use vmmresv::admission::{Admission, Decision, Preference};
    use vmmresv::{Reservoir, Status};

    let Some(_borrowed) = hugepool::borrow("hugetlb reservoir API (real kernel)") else {
        return;
    };
    let run = std::env::temp_dir().join(format!("vmmresv-hugetlb-api-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    let r = Reservoir::open_hugetlb(0, None, Some(&run)).unwrap();
    assert_eq!(r.interface_version(), 0);
    assert!(r.can_resize());
    let mut steps = Vec::new();
    let mut cb = |got: u64, _: u64| {
        steps.push(got / MB2);
        Progress::Continue
    };
    assert_eq!(r.set_target(32 * MB2, 8 * MB2, Some(&mut cb)), Ok(32 * MB2));
    assert_eq!(steps, vec![8, 16, 24]);
    let q = r.query().unwrap();
    assert_eq!((q.free, q.alloc, q.alloc_transient), (32 * MB2, 0, 0));
    assert!(
        q.limit > 32 * MB2,
        "the limit adds the host's available memory"
    );

    let adm = Admission::open(r.try_clone().unwrap(), None).unwrap();
    assert_eq!(adm.ledger_path(), run.join("hugetlb-2048kB.ledger"));
    let uuid = [7u8; 16];
    let v = adm.admit(&uuid, 24 * MB2, Preference::Require).unwrap();
    assert_eq!(v.decision, Decision::UseReservoir);
    // 24 of the pool's 32 pages are promised: shrinking it to 16 would
    // take 8 of them.
    let e = r.set_target(16 * MB2, 0, None).unwrap_err();
    assert_eq!(
        (e.error.status(), e.reached),
        (Status::Refused, Some(32 * MB2))
    );
    // Another admission finds only what is left.
    let v2 = adm.admit(&[8u8; 16], 24 * MB2, Preference::Prefer).unwrap();
    assert_eq!(v2.decision, Decision::NoReservoir);
    adm.abort(&[8u8; 16]).unwrap();

    let rep = adm
        .report(&vmmresv::report::ReportInputs::default())
        .unwrap()
        .to_value();
    assert_eq!(rep["ledger"]["backend"], "linux-hugetlb", "{rep}");

    adm.abort(&uuid).unwrap();
    assert_eq!(r.set_target(0, 0, None), Ok(0));
    std::fs::remove_dir_all(&run).unwrap();
}

/// Resizing the pool without root is PERMISSION (EACCES from the kernel's
/// file), not success and not another error: `tests/c/hadmit.c` run as
/// `nobody` (setpriv), against a run directory it may write.
#[test]
fn resizing_without_root_is_permission() {
    let Some(_borrowed) = hugepool::borrow("hugetlb resize as nobody") else {
        return;
    };
    if !std::path::Path::new("/usr/bin/setpriv").exists() {
        eprintln!(
            "\n!!!!!!!!\nSKIPPED: hugetlb resize as nobody: no setpriv (util-linux)\n!!!!!!!!"
        );
        return;
    }
    let pool = HugetlbPool::open(0, None).unwrap();
    let before = pool.query().unwrap().persistent_pages();
    let hadmit = common::program("hadmit");
    let run = common::Scratch::new("hugetlb-nobody");
    std::fs::set_permissions(&run.0, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let out = std::process::Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(hadmit)
        .arg("-r")
        .arg(&run.0)
        .args(["-s", "8", "-m", "2", "-n", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("vmmresv_reservoir_set_target") && err.contains("(status 7010, errno 13)"),
        "not PERMISSION with EACCES: {err}"
    );
    // Nothing moved.
    assert_eq!(pool.query().unwrap().persistent_pages(), before);
}

/// What an earlier review found, each pinned: relative resizes and the
/// ledger hold count the persistent size (not surplus pages still in use),
/// a shrink below what is in use is not refused for pages it does not
/// take, claims are whole huge pages, the default target is whole huge
/// pages, and a node's pool shares the ledger of its page size.
#[test]
fn surplus_rounding_and_nodes() {
    use vmmresv::admission::{Admission, Decision, Preference};
    use vmmresv::Reservoir;

    let Some(_borrowed) = hugepool::borrow("hugetlb surplus, rounding, nodes") else {
        return;
    };
    let run = std::env::temp_dir().join(format!("vmmresv-hugetlb-srn-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    let r = Reservoir::open_hugetlb(0, None, Some(&run)).unwrap();
    let pool = HugetlbPool::open(0, None).unwrap();
    assert_eq!(r.set_target(10 * MB2, 0, None), Ok(10 * MB2));
    // A ledger exists, with nothing pending.
    let adm = Admission::open(r.try_clone().unwrap(), None).unwrap();

    // 6 pages in use; shrinking to 2 takes the 4 free ones, the rest
    // becomes surplus: not refused although the pool's free pages cannot
    // cover 8.
    let vm = take(6, true);
    assert_eq!(r.set_target(2 * MB2, 0, None), Ok(2 * MB2));
    let q = pool.query().unwrap();
    assert_eq!((q.persistent_pages(), q.surplus_pages), (2, 4), "{q:?}");
    // The reservoir's size is the persistent size: a remove shrinks it, an
    // add grows it, from 2 pages.
    assert_eq!(r.query().unwrap().size(), 2 * MB2);
    assert_eq!(r.remove(MB2, 0, None), Ok(MB2));
    assert_eq!(pool.query().unwrap().persistent_pages(), 1);
    assert_eq!(r.add(2 * MB2, 0, None), Ok(3 * MB2));
    assert_eq!(pool.query().unwrap().persistent_pages(), 3);
    drop(vm);
    let q = pool.query().unwrap();
    assert_eq!(
        (q.total_pages, q.surplus_pages, q.free_pages),
        (3, 0, 3),
        "{q:?}"
    );

    // Claims are whole huge pages: a 3 MiB VM takes two, so a 3-page pool
    // holds one of them, not two.
    let a = adm.admit(&[1; 16], 3 << 20, Preference::Require).unwrap();
    assert_eq!(
        (a.decision, a.charged_bytes),
        (Decision::UseReservoir, 2 * MB2)
    );
    let b = adm.admit(&[2; 16], 3 << 20, Preference::Require).unwrap();
    assert_eq!(b.decision, Decision::Refuse, "{b:?}");

    // A node's pool shares the ledger: its admissions see the pending
    // claim above.
    if std::path::Path::new("/sys/devices/system/node/node0/hugepages/hugepages-2048kB").is_dir() {
        let node = Reservoir::open_hugetlb(0, Some(0), Some(&run)).unwrap();
        let nadm = Admission::open(node, None).unwrap();
        assert_eq!(nadm.ledger_path(), adm.ledger_path());
        let c = nadm.admit(&[3; 16], 4 << 20, Preference::Require).unwrap();
        assert_eq!(c.decision, Decision::Refuse, "{c:?}");
    }
    adm.abort(&[1; 16]).unwrap();

    // The default target is whole huge pages (75% of the pool and the
    // host's available memory), for any chunk.
    for chunk in [0, 4096, 3 << 20] {
        let t = r.default_target(chunk).unwrap();
        assert_eq!(t % MB2, 0, "chunk {chunk}: {t}");
    }
    assert_eq!(r.set_target(0, 0, None), Ok(0));
    std::fs::remove_dir_all(&run).unwrap();
}

/// The host has one ARC, so a hugetlb pool's admission keeps its ARC
/// reservations where every other one is: `admission.ledger` in the run
/// directory, not the pool's ledger. An ARC handle there (a hook, or
/// `vmmresvadm arc`) and the admission then see one guard, and the
/// hand-off carries that file's descriptor and slot. No resize: the pool
/// is only read (a NEVER start is NO_RESERVOIR whatever its size).
#[test]
fn a_hugetlb_admissions_arc_reservations_are_the_hosts() {
    use std::os::unix::fs::MetadataExt;
    use vmmresv::admission::handoff::Token;
    use vmmresv::admission::{Admission, ArcHost, Decision, Preference};
    use vmmresv::arc::guard::{ArcLimits, Ceiling};
    use vmmresv::arc::reservations::ArcReservations;
    use vmmresv::arc::reserve::{ArcPolicy, Reservation};
    use vmmresv::ledger::file::LedgerFile;
    use vmmresv::ledger::Pool;
    use vmmresv::Reservoir;

    const GIB: u64 = 1 << 30;
    let run = std::env::temp_dir().join(format!("vmmresv-hugetlb-arc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run);
    std::fs::create_dir_all(&run).unwrap();
    let r = match Reservoir::open_hugetlb(0, None, Some(&run)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("SKIPPED: hugetlb ARC ledger: no hugetlb pool here ({e:?})");
            println!("SKIPPED: a_hugetlb_admissions_arc_reservations_are_the_hosts");
            return;
        }
    };
    let adm = Admission::open(r, None).unwrap();
    let policy = ArcPolicy {
        limits: ArcLimits {
            arc_c_min: GIB,
            arc_c_max: 8 * GIB,
        },
        ceiling: Ceiling::ArcCMax,
        slack: 0,
    };
    adm.set_arc(Some(ArcHost {
        policy,
        arc_size: 0,
    }));
    let u1 = [0x31u8; 16];
    let v = adm.admit(&u1, 2 * GIB, Preference::Never).unwrap();
    assert_eq!(v.decision, Decision::NoReservoir);
    assert_eq!(v.arc.unwrap().reserved_bytes, 2 * GIB);

    // In admission.ledger, not in the pool's ledger.
    let host_arc = run.join("admission.ledger");
    let pool_ledger = LedgerFile::already_open(adm.ledger_path()).unwrap();
    assert_eq!(pool_ledger.ledger().claimed(Pool::Arc), 0);
    assert_eq!(
        pool_ledger.ledger().claimed(Pool::Transient),
        2 * GIB / 4096
    );
    let arc = ArcReservations::open(&host_arc).unwrap();
    assert_eq!(arc.reserved_bytes(), 2 * GIB);
    assert_eq!(adm.arc_pending_bytes().unwrap(), 2 * GIB);
    // The pool's own ledger is no ARC ledger.
    assert_eq!(
        ArcReservations::open(adm.ledger_path())
            .unwrap_err()
            .status(),
        vmmresv::Status::InvalidArgument
    );

    // One guard: 1 GiB floor + 2 + 6 > 8 is refused, + 5 fits.
    let vm = run.join("vm2.pid");
    std::fs::write(&vm, "1\n").unwrap();
    let refused = arc.hold(&[0x32; 16], 6 * GIB, &policy, &vm).unwrap();
    assert!(matches!(refused, Reservation::Refused(_)), "{refused:?}");
    let held = arc.hold(&[0x32; 16], 5 * GIB, &policy, &vm).unwrap();
    assert!(matches!(held, Reservation::Reserved(_)), "{held:?}");
    let v = adm.admit(&[0x33; 16], GIB, Preference::Never).unwrap();
    assert_eq!(v.decision, Decision::Refuse, "{v:?}");
    assert_eq!(adm.arc_pending_bytes().unwrap(), 7 * GIB);
    let rep = adm
        .report(&vmmresv::report::ReportInputs::default())
        .unwrap()
        .to_value();
    assert_eq!(rep["arc"]["reserved_bytes"], 7 * GIB, "{rep}");
    let listed = adm.claims_listing().unwrap();
    assert_eq!(
        listed.iter().filter(|c| c.info.pool == Pool::Arc).count(),
        2,
        "{listed:?}"
    );

    // The hand-off names the ARC claim in its own file.
    let t = Token::parse(&adm.handoff(&u1).unwrap()).unwrap();
    assert_eq!((t.ledger.len(), t.arc.len(), t.host_fd), (1, 1, -1));
    let fd = std::fs::metadata(format!("/proc/self/fd/{}", t.arc_fd)).unwrap();
    let file = std::fs::metadata(&host_arc).unwrap();
    assert_eq!((fd.dev(), fd.ino()), (file.dev(), file.ino()));

    // Commit drops the start's claim; the ARC reservation stays until the
    // VM is destroyed.
    adm.commit(&u1).unwrap();
    assert_eq!(pool_ledger.ledger().claimed(Pool::Transient), 0);
    assert_eq!(arc.reserved_bytes(), 7 * GIB);
    assert_eq!(adm.arc_release(&u1).unwrap(), 2 * GIB);
    assert_eq!(arc.drop_hold(&[0x32; 16]).unwrap(), 5 * GIB);
    assert_eq!(arc.reserved_bytes(), 0);

    // admission.ledger replaced by another file: this handle must not go
    // on reserving in the old one, which no one else reads.
    let other = run.join("other.ledger");
    drop(LedgerFile::open_or_create(&other).unwrap());
    std::fs::rename(&other, &host_arc).unwrap();
    assert_eq!(
        adm.arc_reserve(&[0x34; 16], GIB, &policy)
            .unwrap_err()
            .status(),
        vmmresv::Status::LedgerReplaced
    );
    std::fs::remove_dir_all(&run).unwrap();
}
