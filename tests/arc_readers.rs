//! The ARC readers against fixture files: Linux arcstats under a root,
//! illumos `kstat -p` output, `::memstat` tables, and the Linux
//! `zfs_arc_max` parameter (written only in a temporary copy).

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

use std::path::{Path, PathBuf};

use vmmresv::arc::{
    apply::ZFS_ARC_MAX_PARAM, read_memstat_file, ArcError, ArcMaxRejection, ArcReader,
    HostSnapshot, KstatValue, LinuxArcFacts, MemstatRow, Platform, ZfsArcMax,
};
use vmmresv::files::MAX_INPUT_BYTES;
use vmmresv::status::{Error, Status};

const GIB: u64 = 1 << 30;
const MIB: u64 = 1 << 20;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arc")
}

/// A temporary directory, removed on drop.
struct TempRoot(PathBuf);

impl TempRoot {
    fn new(tag: &str) -> TempRoot {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p =
            std::env::temp_dir().join(format!("vmmresv-arc-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempRoot(p)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_file(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::copy(from, to).unwrap();
}

#[test]
fn linux_arcstats_under_a_root() {
    let r = ArcReader::linux(fixtures().join("linux"));
    assert!(r.path().ends_with("proc/spl/kstat/zfs/arcstats"));
    let a = r.read().unwrap();
    assert_eq!(a.header.unwrap().ndata, 44);
    assert_eq!(a.stats.len(), 44);
    assert!(a.get("p").is_none(), "OpenZFS 2.2+ has no p");
    let s = r.snapshot().unwrap();
    assert_eq!(s.arc_c_min, Some(2 * GIB));
    assert_eq!(s.arc_c_max, Some(63 * GIB));
    assert_eq!(s.arc_c, Some(41 * GIB));
    assert_eq!(s.physmem, Some(64 * GIB));
    assert_eq!(s.arc_available, Some(-174_063_616));
    assert_eq!(r.arc_size().unwrap(), 40 * GIB + 123 * MIB + 7 * 4096);
    // The file renders back byte for byte.
    let text = std::fs::read_to_string(r.path()).unwrap();
    assert_eq!(a.to_linux_text(), text);
    // Its c_min/c_max are the OpenZFS 2.3 defaults for its memory_all_bytes.
    let d = vmmresv::arc::openzfs_linux_arc_limits(s.physmem.unwrap()).limits;
    assert_eq!(
        (Some(d.arc_c_min), Some(d.arc_c_max)),
        (s.arc_c_min, s.arc_c_max)
    );
}

#[test]
fn missing_and_oversized_files_are_errors_not_panics() {
    let root = TempRoot::new("readers");
    let r = ArcReader::linux(&root.0);
    let e = r.read().unwrap_err();
    assert!(matches!(e, ArcError::Io { errno: Some(2), .. }), "{e:?}");
    let err: Error = e.into();
    assert_eq!((err.status(), err.errno()), (Status::Io, Some(2)));

    let big = root.0.join("proc/spl/kstat/zfs/arcstats");
    std::fs::create_dir_all(big.parent().unwrap()).unwrap();
    std::fs::write(
        &big,
        vec![b'x'; usize::try_from(MAX_INPUT_BYTES).unwrap() + 1],
    )
    .unwrap();
    assert!(matches!(r.read(), Err(ArcError::TooLarge { .. })));

    // A malformed file: the error names the line.
    std::fs::write(&big, "9 1 0x01 1 0 0 0\nname type data\nsize 4 lots\n").unwrap();
    let ArcError::Parse(p) = r.read().unwrap_err() else {
        panic!("expected a parse error")
    };
    assert_eq!((p.line, p.text.as_str()), (3, "size 4 lots"));
    assert_eq!(
        Error::from(ArcError::Parse(p)).status(),
        Status::MalformedInput
    );

    // No size statistic: arc_size() says so.
    std::fs::write(&big, "9 1 0x01 1 0 0 0\nname type data\nc 4 5\n").unwrap();
    assert!(matches!(r.arc_size(), Err(ArcError::Parse(_))));
}

#[test]
fn illumos_kstat_and_memstat_merge_into_one_snapshot() {
    let k = ArcReader::kstat_p_file(fixtures().join("illumos/arcstats.kstat"));
    let a = k.read().unwrap();
    assert_eq!(a.instance, Some(0));
    assert_eq!(
        a.get("class").unwrap().value,
        KstatValue::Text("misc".into())
    );
    let ks = a.snapshot().unwrap();
    assert_eq!(ks.arc_size, Some(454 * MIB));
    assert_eq!(ks.arc_c, Some(358 * MIB));
    assert_eq!(ks.physmem, None, "illumos arcstats has no memory_* fields");

    let m = read_memstat_file(fixtures().join("os8005-4g-arcfill.memstat")).unwrap();
    let host = ks.merge(m.snapshot());
    assert_eq!(host.physmem, Some(1_045_110 * 4096));
    assert_eq!(host.arc_c_min, Some(64 * MIB));
    assert_eq!(host.zfs_file_data, Some(118_101 * 4096));
    // The fixture's kstat data_size was built as the ZFS File Data row.
    assert_eq!(a.get_u64("data_size").unwrap(), host.zfs_file_data);
}

#[test]
fn every_os8005_table_parses_and_renders_back_exactly() {
    let names = [
        ("os8005-4g-arcfill.memstat", true, 1_045_110),
        ("os8005-4g-vm-started.memstat", true, 1_045_110),
        ("os8005-home-before.memstat", true, 33_524_986),
        ("os8005-home-after.memstat", true, 33_524_986),
        ("os8005-old-pi.memstat", false, 33_526_026),
        ("os8005-fix-before.memstat", true, 33_526_026),
        ("os8005-fix-after.memstat", true, 33_526_026),
    ];
    for (name, aligned, total) in names {
        let path = fixtures().join(name);
        let m = read_memstat_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(m.pages(MemstatRow::Total), Some(total), "{name}");
        assert_eq!(m.pages(MemstatRow::Physical), Some(total - 1), "{name}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(m.to_text(aligned), text, "{name}");
        let s: HostSnapshot = m.snapshot();
        assert_eq!(s.physmem, Some(total * 4096));
    }
}

#[test]
fn zfs_arc_max_read_and_checked_write() {
    let root = TempRoot::new("apply");
    let param = root.0.join(ZFS_ARC_MAX_PARAM);
    copy_file(&fixtures().join("linux").join(ZFS_ARC_MAX_PARAM), &param);
    let z = ZfsArcMax::for_platform(Platform::Linux, &root.0).unwrap();
    assert_eq!(z.read().unwrap(), 0);

    let s = ArcReader::linux(fixtures().join("linux"))
        .snapshot()
        .unwrap();
    let facts = LinuxArcFacts::from_snapshot(&s).unwrap();
    assert_eq!(
        facts,
        LinuxArcFacts {
            all_memory: 64 * GIB,
            arc_c_min: 2 * GIB
        }
    );
    z.write(24 * GIB, &facts).unwrap();
    assert_eq!(
        std::fs::read_to_string(&param).unwrap(),
        format!("{}\n", 24 * GIB)
    );
    assert_eq!(z.read().unwrap(), 24 * GIB);
    // Values OpenZFS would ignore are refused and nothing is written.
    for (v, want) in [
        (0, ArcMaxRejection::Zero),
        (
            2 * GIB,
            ArcMaxRejection::NotAboveArcCMin {
                value: 2 * GIB,
                arc_c_min: 2 * GIB,
            },
        ),
        (
            64 * GIB,
            ArcMaxRejection::NotBelowAllMemory {
                value: 64 * GIB,
                all_memory: 64 * GIB,
            },
        ),
    ] {
        assert_eq!(z.write(v, &facts), Err(ArcError::ArcMaxRejected(want)));
        assert_eq!(z.read().unwrap(), 24 * GIB);
    }
    // The file is never created.
    std::fs::remove_file(&param).unwrap();
    assert!(matches!(
        z.write(24 * GIB, &facts),
        Err(ArcError::Io { .. })
    ));
    assert!(!param.exists());
    // Garbage in the parameter file names the line.
    std::fs::write(&param, "lots\n").unwrap();
    assert!(matches!(z.read(), Err(ArcError::Parse(p)) if p.line == 1));
    std::fs::write(&param, "5\n6\n").unwrap();
    assert!(matches!(z.read(), Err(ArcError::Parse(p)) if p.line == 2));

    // illumos: unsupported.
    let e = ZfsArcMax::for_platform(Platform::Illumos, "/").unwrap_err();
    assert!(matches!(
        e,
        ArcError::Unsupported {
            platform: Platform::Illumos,
            ..
        }
    ));
    assert_eq!(Error::from(e).status(), Status::Unsupported);
}

/// `vmmresv_arc_read_memstat` through the C ABI: the OS-8005 table with a
/// VM started, row by row in bytes, and the budget the guard can use.
#[test]
fn memstat_through_the_c_abi() {
    use std::os::unix::ffi::OsStrExt;
    use vmmresv::ffi::{vmmresv_arc_read_memstat, vmmresv_memstat};
    let p = fixtures().join("os8005-4g-vm-started.memstat");
    let c = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut m = vmmresv_memstat::default();
    assert_eq!(vmmresv_arc_read_memstat(c.as_ptr(), &mut m), Status::Ok);
    let pg = 4096u64;
    assert_eq!(m.physmem_bytes, 1_045_110 * pg);
    assert_eq!(m.physical_bytes, 1_045_109 * pg);
    assert_eq!(m.kernel_bytes, 386_634 * pg);
    assert_eq!(m.vmm_bytes, 476_416 * pg);
    assert_eq!(m.zfs_file_data_bytes, 86_311 * pg);
    assert_eq!(m.free_bytes, (9_007 + 3_702) * pg);
    assert_eq!(m.balloon_bytes, 0);
    assert_eq!(
        m.vm_and_arc_budget_bytes,
        (9_007 + 3_702 + 86_311 + 476_416) * pg
    );
    // Not a ::memstat table: refused, and *out left alone.
    let k = fixtures().join("illumos/arcstats.kstat");
    let c = std::ffi::CString::new(k.as_os_str().as_bytes()).unwrap();
    let mut n = vmmresv_memstat::default();
    assert_eq!(
        vmmresv_arc_read_memstat(c.as_ptr(), &mut n),
        Status::MalformedInput
    );
    assert_eq!(n.physmem_bytes, 0);
    assert_eq!(
        vmmresv_arc_read_memstat(std::ptr::null(), &mut n),
        Status::NullArgument
    );
}

/// `vmmresv_arc_guard_check`: the guard alone, at its boundary, in pages.
#[test]
fn pure_guard_through_the_c_abi() {
    use vmmresv::ffi::{vmmresv_arc_guard, vmmresv_arc_guard_check, vmmresv_arc_host};
    let host = vmmresv_arc_host {
        arc_c_min_bytes: 2 * GIB,
        arc_c_max_bytes: 30 * GIB,
        arc_size_bytes: 20 * GIB,
        ..vmmresv_arc_host::default()
    };
    let mut g = vmmresv_arc_guard::default();
    // 2 + 12 + 16 = 30 GiB: exactly at the ceiling, admitted, no headroom.
    assert_eq!(
        vmmresv_arc_guard_check(&host, 12 * GIB, 16 * GIB, &mut g),
        Status::Ok
    );
    assert_eq!(
        (g.admitted, g.reserved_after_bytes, g.headroom_bytes),
        (1, 28 * GIB, 0)
    );
    assert_eq!((g.need_bytes, g.ceiling_bytes), (30 * GIB, 30 * GIB));
    // One byte more is a whole page more: refused by one page.
    assert_eq!(
        vmmresv_arc_guard_check(&host, 12 * GIB, 16 * GIB + 1, &mut g),
        Status::Ok
    );
    assert_eq!((g.admitted, g.shortfall_bytes), (0, 4096));
    assert_eq!(g.reserved_after_bytes, 0);
    // A budget ceiling replaces arc_c_max.
    let budget = vmmresv_arc_host {
        ceiling_bytes: 10 * GIB,
        ..host
    };
    assert_eq!(
        vmmresv_arc_guard_check(&budget, 0, 9 * GIB, &mut g),
        Status::Ok
    );
    assert_eq!((g.admitted, g.shortfall_bytes), (0, GIB));
    // Totality: a zero request, inverted limits, NULLs and overflow.
    assert_eq!(
        vmmresv_arc_guard_check(&host, 0, 0, &mut g),
        Status::InvalidArgument
    );
    let bad = vmmresv_arc_host {
        arc_c_min_bytes: 31 * GIB,
        ..host
    };
    assert_eq!(
        vmmresv_arc_guard_check(&bad, 0, GIB, &mut g),
        Status::InvalidArgument
    );
    assert_eq!(
        vmmresv_arc_guard_check(std::ptr::null(), 0, GIB, &mut g),
        Status::NullArgument
    );
    assert_eq!(
        vmmresv_arc_guard_check(&host, 0, GIB, std::ptr::null_mut()),
        Status::NullArgument
    );
    let huge = vmmresv_arc_host {
        arc_c_max_bytes: u64::MAX,
        ..host
    };
    let r = vmmresv_arc_guard_check(&huge, u64::MAX, u64::MAX, &mut g);
    assert_eq!(r, Status::Ok, "{r:?}");
    assert_eq!(g.admitted, 0);
}
