//! `make install` as a distribution runs it, and programs built against the
//! result as a distribution builds them.
//!
//! Each test installs with `make install PREFIX=... DESTDIR=<scratch>` into
//! its own scratch directory and ends with `make uninstall`, after which the
//! directory must hold no file (empty directories may stay).
//!
//! Consumers are compiled with nothing but what `pkg-config` prints. The
//! installed `vmmresv.pc` says `prefix=/usr` (the real prefix: it is what a
//! package ships), so the test points pkg-config into the DESTDIR the way a
//! sysroot build does: `PKG_CONFIG_LIBDIR=<destdir>/usr/lib/pkgconfig`
//! (only our .pc is visible) and `PKG_CONFIG_SYSROOT_DIR=<destdir>`, which
//! prefixes the `-I` and `-L` paths with the DESTDIR. Installing with
//! `PREFIX=<scratch>` instead would test a configuration no package uses
//! and could not catch a .pc that hard-codes the staging directory; with
//! the sysroot the .pc is checked to be relocatable (`${prefix}`-relative,
//! no DESTDIR inside). `PKG_CONFIG_ALLOW_SYSTEM_CFLAGS/LIBS` keep a
//! pkg-config that filters `/usr/include` and `/usr/lib` before applying
//! the sysroot (freedesktop pkg-config does) from dropping the flags.
//!
//! Needs `make`, `cc`, `readelf` and `pkg-config` (CI installs the Debian
//! package), and the built library: `make test` builds it first. The
//! tests never rebuild the Rust library (`make -o target/release/
//! libvmmresv.a`): cargo holds its build lock while tests run.

// Tests are not the library: a panic is how a check fails, and their
// arithmetic, casts and indexing are on values they chose. The strict
// lints of Cargo.toml are for the library; their unsafe calls (system
// calls and the C ABI, as a C caller makes them) carry SAFETY comments.
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

use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;

/// `make install` compiles rsrvrctl into target/install; one at a time.
static MAKE: Mutex<()> = Mutex::new(());

/// Variables of the Makefile's install section, removed from the
/// environment of `make` so that only what a test passes counts.
const INSTALL_VARS: &[&str] = &[
    "DESTDIR",
    "PREFIX",
    "LIBDIR",
    "INCLUDEDIR",
    "PKGCONFIGDIR",
    "BINDIR",
    "SBINDIR",
    "MANDIR",
    "MAN3LIBDIR",
    "MAN3DIR",
    "MAN8DIR",
    "MANIFEST",
    "INSTALL_RPATH",
    "SMF",
    "SMFMANIFESTDIR",
    "SMFMETHODDIR",
];

fn show(what: &str, o: &Output) -> String {
    format!(
        "{}: {:?}\nstdout:\n{}\nstderr:\n{}",
        what,
        o.status,
        stdout(o),
        stderr(o)
    )
}

fn need_tool(tool: &str, debian_package: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {}", tool)])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{}` is not installed: this test builds and inspects consumers of the installed \
         library with it, as a distribution would (Debian: apt-get install {})",
        tool, debian_package
    );
}

fn make(target: &str, vars: &[(&str, String)]) -> Output {
    need_tool("make", "make");
    // The artifacts `make install` copies; `-o` keeps make from asking
    // cargo to rebuild the staticlib (see the module comment).
    artifact("release/libvmmresv.a");
    libdir();
    let _guard = MAKE.lock().unwrap_or_else(|e| e.into_inner());
    let mut c = Command::new("make");
    c.current_dir(root()).args([
        "--no-print-directory",
        "-o",
        "target/release/libvmmresv.a",
        target,
    ]);
    for v in INSTALL_VARS {
        c.env_remove(v);
    }
    for (k, v) in vars {
        c.arg(format!("{}={}", k, v));
    }
    c.output().expect("cannot run make")
}

/// `make install` with these variables; must succeed.
fn install(vars: &[(&str, String)]) {
    let o = make("install", vars);
    assert!(o.status.success(), "{}", show("make install", &o));
}

/// `make uninstall` with these variables; must succeed and leave no file
/// under `destdir`.
fn uninstall_leaves_nothing(destdir: &Path, vars: &[(&str, String)]) {
    let o = make("uninstall", vars);
    assert!(o.status.success(), "{}", show("make uninstall", &o));
    let left = files_under(destdir);
    assert!(
        left.is_empty(),
        "make uninstall left files behind: {:?}",
        left
    );
    // A second uninstall has nothing to go by and says so.
    let o = make("uninstall", vars);
    assert!(!o.status.success(), "{}", show("second make uninstall", &o));
    assert!(
        stderr(&o).contains("nothing installed there"),
        "{}",
        show("second make uninstall", &o)
    );
}

/// Every non-directory under `dir` (files and symlinks), as absolute
/// install paths (`dir` stripped, a leading '/').
fn files_under(dir: &Path) -> BTreeSet<String> {
    fn walk(base: &Path, d: &Path, out: &mut BTreeSet<String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(base, &e.path(), out);
            } else {
                let rel = e.path().strip_prefix(base).unwrap().display().to_string();
                out.insert(format!("/{}", rel));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(dir, dir, &mut out);
    out
}

fn under(destdir: &Path, install_path: &str) -> PathBuf {
    destdir.join(install_path.trim_start_matches('/'))
}

fn readelf_dynamic(bin: &Path) -> String {
    need_tool("readelf", "binutils");
    let o = Command::new("readelf")
        .args(["-d", "-W"])
        .arg(bin)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("readelf -d", &o));
    stdout(&o)
}

fn needed(bin: &Path) -> Vec<String> {
    readelf_dynamic(bin)
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| {
            l.split('[')
                .nth(1)
                .map(|s| s.trim_end_matches(']').to_string())
        })
        .collect()
}

/// The RPATH/RUNPATH entries of `bin`, if any.
fn runpath(bin: &Path) -> Vec<String> {
    readelf_dynamic(bin)
        .lines()
        .filter(|l| l.contains("(RUNPATH)") || l.contains("(RPATH)"))
        .filter_map(|l| {
            l.split('[')
                .nth(1)
                .map(|s| s.trim_end_matches(']').to_string())
        })
        .collect()
}

/// Cargo.toml's version, the one the header's macros and the library must
/// report.
fn cargo_version() -> (u32, u32, u32) {
    let p = |s: &str| s.parse::<u32>().unwrap();
    (
        p(env!("CARGO_PKG_VERSION_MAJOR")),
        p(env!("CARGO_PKG_VERSION_MINOR")),
        p(env!("CARGO_PKG_VERSION_PATCH")),
    )
}

/// rustc's native-static-libs of this build, as the Makefile captured them.
fn native_static_libs() -> String {
    std::fs::read_to_string(root().join("target/native-static-libs"))
        .expect("target/native-static-libs is missing: run make lib")
        .trim()
        .to_string()
}

/// `key=value` or `Key: value` of a .pc file.
fn pc_field(pc: &str, key: &str) -> Option<String> {
    pc.lines().find_map(|l| {
        l.strip_prefix(key)
            .and_then(|r| r.strip_prefix('=').or_else(|| r.strip_prefix(": ")))
            .map(|v| v.trim().to_string())
    })
}

/// The functions include/vmmresv.h declares (as .ci/check-exports.sh
/// finds them: identifiers followed by '(' outside comments).
fn header_functions() -> BTreeSet<String> {
    let text = std::fs::read_to_string(root().join("include/vmmresv.h")).unwrap();
    let mut out = BTreeSet::new();
    let mut in_comment = false;
    for line in text.lines() {
        let t = line.trim_start();
        if in_comment {
            if t.contains("*/") {
                in_comment = false;
            }
            continue;
        }
        if t.starts_with("/*") {
            in_comment = !t.contains("*/");
            continue;
        }
        if t.starts_with("typedef") || t.starts_with('*') {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("vmmresv_") {
            rest = &rest[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if rest[end..].starts_with('(') {
                out.insert(rest[..end].to_string());
            }
            rest = &rest[end..];
        }
    }
    assert!(out.len() > 10, "found only {:?} in the header", out);
    out
}

#[test]
fn install_layout_manifest_and_uninstall() {
    let dest = Scratch::new("install-layout");
    let d = dest.path();
    let vars = [
        ("PREFIX", "/usr".to_string()),
        ("DESTDIR", d.display().to_string()),
    ];
    install(&vars);
    let (maj, min, pat) = cargo_version();
    let real = format!("libvmmresv.so.{}.{}.{}", maj, min, pat);

    // The library, its two links, the archive.
    let lib = under(d, "/usr/lib");
    let so = lib.join(&real);
    let meta = std::fs::symlink_metadata(&so).unwrap();
    assert!(
        meta.file_type().is_file(),
        "{} is not a regular file",
        so.display()
    );
    assert_eq!(
        std::fs::read(&so).unwrap(),
        std::fs::read(root().join("target/lib").join(&real)).unwrap(),
        "the installed .so is not the one make linked"
    );
    assert_eq!(
        std::fs::read_link(lib.join(format!("libvmmresv.so.{}", maj))).unwrap(),
        PathBuf::from(&real)
    );
    assert_eq!(
        std::fs::read_link(lib.join("libvmmresv.so")).unwrap(),
        PathBuf::from(format!("libvmmresv.so.{}", maj))
    );
    let soname = format!("Library soname: [libvmmresv.so.{}]", maj);
    assert!(readelf_dynamic(&so).contains(&soname), "no {}", soname);
    assert_eq!(
        std::fs::read(lib.join("libvmmresv.a")).unwrap(),
        std::fs::read(root().join("target/release/libvmmresv.a")).unwrap()
    );

    // The header, as committed.
    assert_eq!(
        std::fs::read(under(d, "/usr/include/vmmresv.h")).unwrap(),
        std::fs::read(root().join("include/vmmresv.h")).unwrap()
    );

    // The .pc: the real prefix, ${prefix}-relative directories, the build's
    // Libs.private, Cargo.toml's version, nothing of the staging directory.
    let pc = std::fs::read_to_string(lib.join("pkgconfig/vmmresv.pc")).unwrap();
    assert_eq!(pc_field(&pc, "prefix").as_deref(), Some("/usr"), "{}", pc);
    assert_eq!(
        pc_field(&pc, "libdir").as_deref(),
        Some("${prefix}/lib"),
        "{}",
        pc
    );
    assert_eq!(
        pc_field(&pc, "includedir").as_deref(),
        Some("${prefix}/include"),
        "{}",
        pc
    );
    assert_eq!(
        pc_field(&pc, "Version"),
        Some(format!("{}.{}.{}", maj, min, pat)),
        "{}",
        pc
    );
    assert_eq!(
        pc_field(&pc, "Libs").as_deref(),
        Some("-L${libdir} -lvmmresv"),
        "{}",
        pc
    );
    assert_eq!(
        pc_field(&pc, "Libs.private"),
        Some(native_static_libs()),
        "{}",
        pc
    );
    assert_eq!(
        pc_field(&pc, "Cflags").as_deref(),
        Some("-I${includedir}"),
        "{}",
        pc
    );
    assert!(
        !pc.contains('@'),
        "an unsubstituted @VAR@ in the .pc:\n{}",
        pc
    );
    let dstr = d.display().to_string();
    assert!(!pc.contains(&dstr), "the .pc names the DESTDIR:\n{}", pc);

    // rsrvrctl: a program linked against the installed SONAME, with no
    // RUNPATH at all (LIBDIR=/usr/lib is the loader's own), certainly not
    // the build tree's.
    let rsrvrctl = under(d, "/usr/lib/vmmresv/rsrvrctl");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&rsrvrctl).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o755);
    assert!(needed(&rsrvrctl).contains(&format!("libvmmresv.so.{}", maj)));
    assert_eq!(
        runpath(&rsrvrctl),
        Vec::<String>::new(),
        "the installed rsrvrctl has a RUNPATH"
    );

    // vmmresvadm: an operator's command, on PATH in $(PREFIX)/sbin, linked
    // like rsrvrctl (the installed SONAME, no RUNPATH).
    let adm = under(d, "/usr/sbin/vmmresvadm");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&adm).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o755);
    assert!(needed(&adm).contains(&format!("libvmmresv.so.{}", maj)));
    assert_eq!(
        runpath(&adm),
        Vec::<String>::new(),
        "the installed vmmresvadm has a RUNPATH"
    );
    assert!(
        under(d, "/usr/share/man/man8/vmmresvadm.8").is_file(),
        "vmmresvadm(8) not installed"
    );

    // Man pages: every page of man/, and a page or link for every function
    // of the header, so `man vmmresv_admit` finds it. The directories are
    // the system's (the Makefile's MAN3DIR): illumos's section directories
    // there, man3/ elsewhere (make check-man-install asks man -w).
    let man = under(d, "/usr/share/man");
    let (man3lib, man3) = if cfg!(target_os = "illumos") {
        ("man3lib", "man3vmmresv")
    } else {
        ("man3", "man3")
    };
    for e in std::fs::read_dir(root().join("man")).unwrap() {
        let name = e.unwrap().file_name().into_string().unwrap();
        let sub = match name.rsplit_once('.').unwrap().1 {
            "3lib" => man3lib,
            "3vmmresv" => man3,
            "8" => "man8",
            other => panic!("man/{}: unexpected section {}", name, other),
        };
        assert_eq!(
            std::fs::read(man.join(sub).join(&name)).unwrap(),
            std::fs::read(root().join("man").join(&name)).unwrap(),
            "{} not installed as is",
            name
        );
    }
    let mut dirs: Vec<String> = std::fs::read_dir(&man)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    dirs.sort();
    let mut want = vec![man3lib.to_string(), man3.to_string(), "man8".to_string()];
    want.sort();
    want.dedup();
    assert_eq!(dirs, want, "the man directories installed");
    for f in header_functions() {
        let p = man.join(man3).join(format!("{}.3vmmresv", f));
        let text = std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("no man page or link for {} ({}): {}", f, p.display(), e));
        // In the page's NAME, as man(1) and makewhatis index it.
        let in_name = text
            .lines()
            .skip_while(|l| *l != ".Sh NAME")
            .skip(1)
            .take_while(|l| !l.starts_with(".Sh "))
            .any(|l| l.trim_end_matches(" ,") == format!(".Nm {}", f));
        assert!(
            in_name,
            "{} does not document {} in its NAME",
            p.display(),
            f
        );
        // A link is relative and beside its page, as illumos's MANLINKS.
        if let Ok(target) = std::fs::read_link(&p) {
            assert!(
                target.components().count() == 1,
                "{} -> {}: not a link to a page beside it",
                p.display(),
                target.display()
            );
        }
    }

    // The manifest lists exactly what is there.
    let manifest = std::fs::read_to_string(under(d, "/usr/lib/vmmresv/install.manifest")).unwrap();
    let listed: BTreeSet<String> = manifest.lines().map(String::from).collect();
    let there = files_under(d);
    assert!(
        listed == there,
        "the manifest and the files installed differ: only listed {:?}, only installed {:?}",
        listed.difference(&there).collect::<Vec<_>>(),
        there.difference(&listed).collect::<Vec<_>>()
    );
    assert!(!manifest.contains(&dstr), "the manifest names the DESTDIR");

    // Installing again over it changes nothing in the list.
    install(&vars);
    assert_eq!(files_under(d), listed);

    uninstall_leaves_nothing(d, &vars);
}

/// The SMF service (SMF=yes, as a proto area for illumos built elsewhere):
/// the manifest and the method where SMF looks, each told where the other
/// and rsrvrctl went, read-only as illumos delivers them; removed again.
#[test]
fn smf_service_installs_where_smf_looks() {
    let dest = Scratch::new("install-smf");
    let d = dest.path();
    let vars = [
        ("PREFIX", "/usr".to_string()),
        ("BINDIR", "/usr/lib/vmmresv/bin".to_string()),
        ("SMF", "yes".to_string()),
        ("SMFMETHODDIR", "/lib/svc/method/vmm".to_string()),
        ("DESTDIR", d.display().to_string()),
    ];
    install(&vars);
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o777
    };
    let manifest = under(d, "/lib/svc/manifest/system/vmmresv-reservoir.xml");
    let method = under(d, "/lib/svc/method/vmm/vmmresv-reservoir");
    assert_eq!((mode(&manifest), mode(&method)), (0o444, 0o555));
    let xml = std::fs::read_to_string(&manifest).unwrap();
    assert!(
        xml.contains("exec='/lib/svc/method/vmm/vmmresv-reservoir'"),
        "the manifest does not start the installed method:\n{xml}"
    );
    let sh = std::fs::read_to_string(&method).unwrap();
    assert!(
        sh.contains("RSRVRCTL=${RSRVRCTL:-/usr/lib/vmmresv/bin/rsrvrctl}"),
        "the method does not run the installed rsrvrctl"
    );
    assert!(files_under(d).contains("/usr/share/man/man8/vmmresv-reservoir.8"));
    uninstall_leaves_nothing(d, &vars);
    // Without SMF=yes (the default off illumos) nothing of it is installed.
    let vars = [
        ("PREFIX", "/usr".to_string()),
        ("DESTDIR", d.display().to_string()),
    ];
    install(&vars);
    assert!(!files_under(d).iter().any(|p| p.starts_with("/lib/svc")));
    uninstall_leaves_nothing(d, &vars);
}

#[test]
fn install_directories_are_overridable() {
    let dest = Scratch::new("install-dirs");
    let d = dest.path();
    let vars = [
        ("PREFIX", "/opt/vmm".to_string()),
        ("LIBDIR", "/opt/vmm/lib/64".to_string()),
        ("INCLUDEDIR", "/opt/vmm/include/vmmresv".to_string()),
        ("MANDIR", "/opt/vmm/man".to_string()),
        // illumos's section directories, as the Makefile picks them there.
        ("MAN3LIBDIR", "/opt/vmm/man/man3lib".to_string()),
        ("MAN3DIR", "/opt/vmm/man/man3vmmresv".to_string()),
        ("BINDIR", "/opt/vmm/sbin".to_string()),
        ("SBINDIR", "/opt/vmm/admin".to_string()),
        ("DESTDIR", d.display().to_string()),
    ];
    install(&vars);
    let files = files_under(d);
    assert_eq!(
        std::fs::read_link(under(d, "/opt/vmm/man/man3vmmresv/vmmresv_sizing.3vmmresv")).unwrap(),
        PathBuf::from("vmmresv_policy.3vmmresv"),
        "the man link of vmmresv_sizing"
    );
    for p in [
        "/opt/vmm/lib/64/libvmmresv.so.1",
        "/opt/vmm/lib/64/libvmmresv.so",
        "/opt/vmm/lib/64/libvmmresv.a",
        "/opt/vmm/lib/64/pkgconfig/vmmresv.pc",
        "/opt/vmm/lib/64/vmmresv/install.manifest",
        "/opt/vmm/include/vmmresv/vmmresv.h",
        "/opt/vmm/sbin/rsrvrctl",
        "/opt/vmm/admin/vmmresvadm",
        "/opt/vmm/man/man3lib/libvmmresv.3lib",
        "/opt/vmm/man/man3vmmresv/vmmresv_reservoir.3vmmresv",
        "/opt/vmm/man/man8/rsrvrctl.8",
        "/opt/vmm/man/man8/vmmresvadm.8",
    ] {
        assert!(files.contains(p), "{} not installed; got {:?}", p, files);
    }
    assert!(
        files.iter().all(|f| f.starts_with("/opt/vmm/")),
        "something went outside PREFIX: {:?}",
        files
    );
    let pc = std::fs::read_to_string(under(d, "/opt/vmm/lib/64/pkgconfig/vmmresv.pc")).unwrap();
    assert_eq!(pc_field(&pc, "prefix").as_deref(), Some("/opt/vmm"));
    assert_eq!(pc_field(&pc, "libdir").as_deref(), Some("${prefix}/lib/64"));
    assert_eq!(
        pc_field(&pc, "includedir").as_deref(),
        Some("${prefix}/include/vmmresv")
    );
    // A LIBDIR the loader does not search: rsrvrctl finds the library
    // through a RUNPATH of exactly that directory.
    assert_eq!(
        runpath(&under(d, "/opt/vmm/sbin/rsrvrctl")),
        vec!["/opt/vmm/lib/64".to_string()]
    );
    assert_eq!(
        runpath(&under(d, "/opt/vmm/admin/vmmresvadm")),
        vec!["/opt/vmm/lib/64".to_string()]
    );
    uninstall_leaves_nothing(d, &vars);
}

/// A consumer of the installed library: the version the header says and
/// the library says, then a query, a resize to 2 GiB in 1 GiB chunks and a
/// query again.
const CONSUMER: &str = r#"#include <inttypes.h>
#include <stdio.h>
#include <vmmresv.h>

static int
fail(const char *what, vmmresv_status st)
{
	fprintf(stderr, "%s: %s\n", what, vmmresv_strerror(st));
	return (1);
}

int
main(void)
{
	vmmresv_reservoir *r;
	vmmresv_query q;
	uint64_t reached = VMMRESV_SIZE_UNKNOWN;
	vmmresv_status st;

	printf("header %d.%d.%d\n", VMMRESV_VERSION_MAJOR,
	    VMMRESV_VERSION_MINOR, VMMRESV_VERSION_PATCH);
	printf("library 0x%06" PRIx32 "\n", vmmresv_abi_version());
	if ((st = vmmresv_reservoir_open(NULL, NULL, &r)) != VMMRESV_STATUS_OK)
		return (fail("open", st));
	if ((st = vmmresv_reservoir_query(r, &q)) != VMMRESV_STATUS_OK)
		return (fail("query", st));
	printf("before free=%" PRIu64 " limit=%" PRIu64 "\n", q.free_bytes,
	    q.limit_bytes);
	st = vmmresv_reservoir_set_target(r, 2 * (uint64_t)VMMRESV_PAGESIZE_1G,
	    VMMRESV_PAGESIZE_1G, NULL, NULL, &reached);
	printf("resize %s reached=%" PRIu64 "\n", vmmresv_strerror(st), reached);
	if ((st = vmmresv_reservoir_query(r, &q)) != VMMRESV_STATUS_OK)
		return (fail("query", st));
	printf("after free=%" PRIu64 "\n", q.free_bytes);
	vmmresv_reservoir_close(r);
	return (0);
}
"#;

/// What CONSUMER prints on a fresh emulated host of `physmem` bytes.
fn consumer_expected(physmem: u64) -> String {
    let (maj, min, pat) = cargo_version();
    format!(
        "header {}.{}.{}\nlibrary 0x{:06x}\nbefore free=0 limit={}\nresize success reached={}\nafter free={}\n",
        maj,
        min,
        pat,
        (maj << 16) | (min << 8) | pat,
        kernel_limit(physmem),
        2 * GIB,
        2 * GIB
    )
}

/// pkg-config pointed at the DESTDIR as a sysroot (see the module comment).
fn pkg_config(destdir: &Path, args: &[&str]) -> Vec<String> {
    need_tool("pkg-config", "pkg-config");
    let o = Command::new("pkg-config")
        .args(args)
        .arg("vmmresv")
        .env("PKG_CONFIG_LIBDIR", under(destdir, "/usr/lib/pkgconfig"))
        .env_remove("PKG_CONFIG_PATH")
        .env("PKG_CONFIG_SYSROOT_DIR", destdir)
        .env("PKG_CONFIG_ALLOW_SYSTEM_CFLAGS", "1")
        .env("PKG_CONFIG_ALLOW_SYSTEM_LIBS", "1")
        .output()
        .expect("cannot run pkg-config");
    assert!(
        o.status.success(),
        "{}",
        show(&format!("pkg-config {:?}", args), &o)
    );
    stdout(&o).split_whitespace().map(String::from).collect()
}

fn cc(src: &Path, out: &Path, flags: &[String]) {
    let o = Command::new("cc")
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-o"])
        .arg(out)
        .arg(src)
        .args(flags)
        .output()
        .expect("cannot run the system C compiler `cc`");
    assert!(
        o.status.success(),
        "{}",
        show(&format!("cc {:?}", flags), &o)
    );
}

#[test]
fn pkg_config_consumers_dynamic_and_static_run_against_the_install() {
    let dest = Scratch::new("install-consumers");
    let d = dest.path();
    let vars = [
        ("PREFIX", "/usr".to_string()),
        ("DESTDIR", d.display().to_string()),
    ];
    install(&vars);
    let work = Scratch::new("install-consumers-build");
    let src = work.path().join("consumer.c");
    std::fs::write(&src, CONSUMER).unwrap();
    let installed_lib = under(d, "/usr/lib");
    let (maj, _, _) = cargo_version();

    // Dynamic: exactly `pkg-config --cflags --libs vmmresv`.
    let flags = pkg_config(d, &["--cflags", "--libs"]);
    assert!(
        flags.contains(&format!("-I{}", under(d, "/usr/include").display()))
            && flags.contains(&format!("-L{}", installed_lib.display()))
            && flags.contains(&"-lvmmresv".to_string()),
        "pkg-config --cflags --libs gave {:?}",
        flags
    );
    let dynamic = work.path().join("consumer-dynamic");
    cc(&src, &dynamic, &flags);
    assert!(needed(&dynamic).contains(&format!("libvmmresv.so.{}", maj)));
    // It loads the installed library, not the build tree's (glibc's
    // loader lists what it would map).
    let o = Command::new(&dynamic)
        .env("LD_TRACE_LOADED_OBJECTS", "1")
        .env("LD_LIBRARY_PATH", &installed_lib)
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    let want = format!(
        "libvmmresv.so.{} => {}/libvmmresv.so.{}",
        maj,
        installed_lib.display(),
        maj
    );
    assert!(
        stdout(&o).contains(&want),
        "expected `{}` in:\n{}",
        want,
        stdout(&o)
    );

    let host = EmuHost::new("install-dynamic", 16 * GIB);
    let o = host
        .command(&dynamic)
        .env("LD_LIBRARY_PATH", &installed_lib)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("consumer-dynamic", &o));
    assert_eq!(
        stdout(&o),
        consumer_expected(16 * GIB),
        "{}",
        show("consumer-dynamic", &o)
    );
    assert_eq!(host.stat("free"), 2 * GIB);

    // Static: `pkg-config --static --cflags --libs vmmresv`, the archive
    // chosen over the .so for -lvmmresv alone (-Bstatic/-Bdynamic, which
    // GNU ld and illumos ld both take): pkg-config prints -lvmmresv for
    // either kind, and with both installed the linker takes the .so.
    let flags = pkg_config(d, &["--static", "--cflags", "--libs"]);
    for lib in native_static_libs().split_whitespace() {
        assert!(
            flags.iter().any(|f| f == lib),
            "--static lacks {} of Libs.private: {:?}",
            lib,
            flags
        );
    }
    let static_flags: Vec<String> = flags
        .iter()
        .flat_map(|f| {
            if f == "-lvmmresv" {
                vec!["-Wl,-Bstatic".into(), f.clone(), "-Wl,-Bdynamic".into()]
            } else {
                vec![f.clone()]
            }
        })
        .collect();
    let statik = work.path().join("consumer-static");
    cc(&src, &statik, &static_flags);
    let n = needed(&statik);
    assert!(
        !n.iter().any(|l| l.starts_with("libvmmresv")),
        "the static consumer still needs {:?}",
        n
    );
    let syms = Command::new("readelf")
        .args(["-s", "-W"])
        .arg(&statik)
        .output()
        .unwrap();
    assert!(
        stdout(&syms)
            .lines()
            .any(|l| l.ends_with(" vmmresv_abi_version") && !l.contains(" UND ")),
        "the static consumer does not contain vmmresv_abi_version"
    );
    let host = EmuHost::new("install-static", 16 * GIB);
    let o = host
        .command(&statik)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("consumer-static", &o));
    assert_eq!(
        stdout(&o),
        consumer_expected(16 * GIB),
        "{}",
        show("consumer-static", &o)
    );

    // The installed rsrvrctl, against the installed library.
    let host = EmuHost::new("install-rsrvrctl", 16 * GIB);
    let rsrvrctl = under(d, "/usr/lib/vmmresv/rsrvrctl");
    let o = host
        .command(&rsrvrctl)
        .env("LD_LIBRARY_PATH", &installed_lib)
        .args(["-s", "3G", "-c", "1G"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("rsrvrctl -s 3G", &o));
    let o = host
        .command(&rsrvrctl)
        .env("LD_LIBRARY_PATH", &installed_lib)
        .arg("-q")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("rsrvrctl -q", &o));
    assert_eq!(
        stdout(&o),
        format!(
            "Free MiB:\t3072\nAllocated MiB:\t0\nTransient Allocated MiB:\t0\nSize limit MiB:\t{}\n",
            kernel_limit(16 * GIB) / MIB
        )
    );

    // The installed vmmresvadm, against the installed library: it sees
    // the 3 GiB rsrvrctl set.
    let o = host
        .command(&under(d, "/usr/sbin/vmmresvadm"))
        .env("LD_LIBRARY_PATH", &installed_lib)
        .args(["status", "-Hp", "-o", "value"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("vmmresvadm status", &o));
    assert_eq!(
        stdout(&o).lines().next(),
        Some((3 * GIB).to_string().as_str()),
        "{}",
        show("vmmresvadm status", &o)
    );

    uninstall_leaves_nothing(d, &vars);
}

/// The header's VMMRESV_VERSION_* are Cargo.toml's version, and
/// vmmresv_abi_version() of the installed .so agrees, checked from C (a
/// compile-time check of the macros and a run-time one of the library).
#[test]
fn version_macros_match_cargo_toml_and_the_installed_library() {
    let dest = Scratch::new("install-version");
    let d = dest.path();
    let vars = [
        ("PREFIX", "/usr".to_string()),
        ("DESTDIR", d.display().to_string()),
    ];
    install(&vars);
    let (maj, min, pat) = cargo_version();
    let src = format!(
        r#"#include <stdio.h>
#include <vmmresv.h>

#if VMMRESV_VERSION_MAJOR != {maj} || VMMRESV_VERSION_MINOR != {min} || \
    VMMRESV_VERSION_PATCH != {pat}
#error "vmmresv.h's VMMRESV_VERSION_* differ from Cargo.toml's {maj}.{min}.{pat}"
#endif

int
main(void)
{{
	uint32_t want = ((uint32_t)VMMRESV_VERSION_MAJOR << 16) |
	    ((uint32_t)VMMRESV_VERSION_MINOR << 8) | VMMRESV_VERSION_PATCH;
	uint32_t got = vmmresv_abi_version();

	if (got != want) {{
		fprintf(stderr, "vmmresv_abi_version() = %#x, header %#x\n",
		    (unsigned)got, (unsigned)want);
		return (1);
	}}
	printf("%#x\n", (unsigned)got);
	return (0);
}}
"#
    );
    let work = Scratch::new("install-version-build");
    let c = work.path().join("version.c");
    std::fs::write(&c, src).unwrap();
    let bin = work.path().join("version");
    cc(&c, &bin, &pkg_config(d, &["--cflags", "--libs"]));
    let o = Command::new(&bin)
        .env("LD_LIBRARY_PATH", under(d, "/usr/lib"))
        .env_remove("LD_PRELOAD")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("version", &o));
    assert_eq!(
        stdout(&o),
        format!("{:#x}\n", (maj << 16) | (min << 8) | pat)
    );
    uninstall_leaves_nothing(d, &vars);
}

/// The README's "Threads, fork and exec" promises, from C through the
/// installed library: every descriptor the library holds is close-on-exec;
/// a forked child can use the inherited reservoir handle, cannot commit its
/// parent's claim (NOT_HOLDER), owns the claims it makes, and works on a
/// copy of an in-process ledger; a claim handed off before exec
/// (vmmresv_handoff) survives it, and the new image adopts and commits it.
const FORK_EXEC: &str = r#"#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vmmresv.h>

#define	VM_A	"6f1c2a9e-8a1e-4f5e-9a55-1d2f3e4a5b6c"
#define	VM_B	"0b7d3c1a-2e4f-4a6b-8c9d-0e1f2a3b4c5d"
#define	MIB	((uint64_t)1 << 20)

static int
check(const char *what, vmmresv_status st, vmmresv_status want)
{
	if (st == want)
		return (1);
	printf("FAIL %s: %s\n", what, vmmresv_strerror(st));
	return (0);
}

/* Open descriptors above 2, as a bitmap of the first 1024. */
static void
open_fds(unsigned char *set)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	memset(set, 0, 1024);
	while (d != NULL && (e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd > 2 && fd < 1024 && fd != dirfd(d))
			set[fd] = 1;
	}
	if (d != NULL)
		(void) closedir(d);
}

int
main(int argc, char **argv)
{
	vmmresv_reservoir *r;
	vmmresv_admission *a;
	vmmresv_ledger *l;
	vmmresv_decision dec;
	uint64_t reached, released = 0, pending = 0, claimed = 0;
	unsigned char before[1024], after[1024];
	int fd, status, ok = 1;
	pid_t pid;

	if ((argc == 2 && strcmp(argv[1], "exec") == 0)) {
		/* The new image: its own handles; the claim is still ours. */
		ok &= check("open after exec", vmmresv_reservoir_open(NULL, NULL, &r), 0);
		ok &= check("admission_open after exec", vmmresv_admission_open(r, NULL, &a), 0);
		ok &= getenv("VMMRESV_HANDOFF") != NULL;
		ok &= check("adopt after exec", vmmresv_adopt(a, getenv("VMMRESV_HANDOFF")), 0);
		ok &= check("commit after exec", vmmresv_commit(a, VM_A, &released), 0);
		printf("exec commit released=%" PRIu64 "\n", released);
		vmmresv_admission_close(a);
		vmmresv_reservoir_close(r);
		return (ok ? 0 : 1);
	}

	open_fds(before);
	ok &= check("open", vmmresv_reservoir_open(NULL, NULL, &r), 0);
	ok &= check("set_target", vmmresv_reservoir_set_target(r, 64 * MIB, 0,
	    NULL, NULL, &reached), 0);
	ok &= check("admission_open", vmmresv_admission_open(r, NULL, &a), 0);
	ok &= check("admit A", vmmresv_admit(a, VM_A, MIB,
	    VMMRESV_RESERVOIR_PREFER, &dec), 0);
	ok &= dec.decision == VMMRESV_DECISION_USE_RESERVOIR;
	ok &= check("ledger_new", vmmresv_ledger_new(10, &l), 0);
	ok &= check("ledger_claim", vmmresv_ledger_claim(l, 5, NULL), 0);
	open_fds(after);
	for (fd = 3; fd < 1024; fd++) {
		if (after[fd] && !before[fd]) {
			int fl = fcntl(fd, F_GETFD);

			printf("fd %d cloexec=%d\n", fd, fl >= 0 && (fl & FD_CLOEXEC));
			ok &= fl >= 0 && (fl & FD_CLOEXEC);
		}
	}
	if (!ok)
		return (1);

	(void) fflush(stdout);
	if ((pid = fork()) == 0) {
		vmmresv_query q;
		int cok = 1;

		cok &= check("child query", vmmresv_reservoir_query(r, &q), 0);
		cok &= check("child resize", vmmresv_reservoir_add(r, 4096, 0,
		    NULL, NULL, &reached), 0);
		cok &= check("child commit of the parent's claim",
		    vmmresv_commit(a, VM_A, NULL), VMMRESV_STATUS_NOT_HOLDER);
		cok &= check("child admit B", vmmresv_admit(a, VM_B, MIB,
		    VMMRESV_RESERVOIR_PREFER, &dec), 0);
		cok &= check("child abort B", vmmresv_abort(a, VM_B, &released), 0);
		/* The in-process ledger is the child's own copy. */
		cok &= check("child ledger claim", vmmresv_ledger_claim(l, 5, NULL), 0);
		cok &= check("child ledger full", vmmresv_ledger_claim(l, 1, NULL),
		    VMMRESV_STATUS_REFUSED);
		printf("child ok=%d released=%" PRIu64 "\n", cok, released);
		(void) fflush(stdout);
		_exit(cok ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		printf("FAIL child\n");
		return (1);
	}
	ok &= check("pending", vmmresv_admission_pending(a, &pending, NULL), 0);
	ok &= check("ledger_usage", vmmresv_ledger_usage(l, &claimed, NULL), 0);
	printf("parent pending=%" PRIu64 " ledger=%" PRIu64 "\n", pending, claimed);
	(void) fflush(stdout);
	if (!ok)
		return (1);
	/*
	 * Handles are not closed: exec must not leak their descriptors, except
	 * the ledger's, which the hand-off keeps open so the claim survives.
	 */
	{
		char token[VMMRESV_HANDOFF_BUFSIZE];

		ok &= check("handoff", vmmresv_handoff(a, VM_A, token,
		    sizeof (token), NULL), 0);
		if (!ok || setenv("VMMRESV_HANDOFF", token, 1) != 0)
			return (1);
	}
	(void) execl(argv[0], argv[0], "exec", (char *)NULL);
	printf("FAIL exec\n");
	return (1);
}
"#;

#[test]
fn readme_threads_fork_exec_promises_hold() {
    let dest = Scratch::new("install-forkexec");
    let d = dest.path();
    let vars = [
        ("PREFIX", "/usr".to_string()),
        ("DESTDIR", d.display().to_string()),
    ];
    install(&vars);
    let work = Scratch::new("install-forkexec-build");
    let c = work.path().join("forkexec.c");
    std::fs::write(&c, FORK_EXEC).unwrap();
    let bin = work.path().join("forkexec");
    cc(&c, &bin, &pkg_config(d, &["--cflags", "--libs"]));
    let host = EmuHost::new("install-forkexec", 16 * GIB);
    let o = host
        .command(&bin)
        .env("LD_LIBRARY_PATH", under(d, "/usr/lib"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", show("forkexec", &o));
    let out = stdout(&o);
    let fds = out.lines().filter(|l| l.starts_with("fd ")).count();
    // The device, its duplicate in the admission handle, the ledger.
    assert!(fds >= 3, "expected the library's descriptors:\n{}", out);
    assert!(
        out.lines()
            .filter(|l| l.starts_with("fd "))
            .all(|l| l.ends_with("cloexec=1")),
        "{}",
        out
    );
    assert!(
        out.contains(&format!("child ok=1 released={}\n", MIB)),
        "{}",
        out
    );
    assert!(
        out.contains(&format!("parent pending={} ledger=5\n", MIB)),
        "{}",
        out
    );
    assert!(
        out.contains(&format!("exec commit released={}\n", MIB)),
        "{}",
        out
    );
    uninstall_leaves_nothing(d, &vars);
}
