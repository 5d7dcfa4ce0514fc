//! Real QEMU against the real hugetlb pool: `tests/c/qlaunch.c`, a C
//! launcher built against the header and the `.so`, admits a VM and starts
//! `qemu-system-x86_64` (TCG, paused, no devices) with its RAM from a
//! hugetlbfs mount and preallocated when the decision is USE_RESERVOIR,
//! with ordinary memory when it is NO_RESERVOIR; it commits once QEMU
//! answers on its QMP socket (after preallocation).
//!
//! Six VMs of 32 MiB start at once against a 96 MiB pool (room for three),
//! every launcher deciding before any QEMU starts (they wait on stdin):
//!
//! - with the library, preference "prefer": three QEMUs start with huge
//!   pages, three without, none fails;
//! - with the library, "require": three start, three are refused;
//! - without it (query-then-launch): all six see the pool free, all six
//!   try, and three QEMUs fail with "Cannot allocate memory".
//!
//! Needs root and QEMU (Debian's qemu-system-x86); prints a loud SKIPPED
//! line otherwise. The pool's size is restored afterwards (and at the
//! start of the next run if this one is killed), the hugetlbfs it mounts
//! is unmounted (leftovers of a killed run at the start of the next).

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

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use vmmresv::reservoir::hugetlb::HugetlbPool;

const QEMU: &str = "qemu-system-x86_64";
const MB2: u64 = 2 << 20;
const VMS: usize = 6;
const VM_MIB: u64 = 32;

fn qemu() -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(QEMU))
        .find(|p| p.is_file())
}

/// This test's mounts live under here; a killed run's are unmounted first.
fn mount_root() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hugetlbfs")
}

fn umount(p: &Path) {
    let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; umount2 only reads it.
    unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
}

/// A hugetlbfs of 2 MiB pages mounted for this test, unmounted on drop.
struct HugetlbFs(PathBuf);

impl HugetlbFs {
    fn mount() -> HugetlbFs {
        let root = mount_root();
        // Leftovers of a killed run (this test's directory only).
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
        for m in mounts.lines().filter_map(|l| l.split(' ').nth(1)) {
            if Path::new(m).starts_with(&root) {
                umount(Path::new(m));
            }
        }
        let dir = root.join(std::process::id().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        let st = Command::new("mount")
            .args(["-t", "hugetlbfs", "-o", "pagesize=2M", "none"])
            .arg(&dir)
            .status()
            .unwrap();
        assert!(st.success(), "mount -t hugetlbfs {}", dir.display());
        HugetlbFs(dir)
    }
}

impl Drop for HugetlbFs {
    fn drop(&mut self) {
        umount(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// One launcher: its process, its stdout lines (read by a thread, so a
/// test never blocks on a silent one), and the QEMU it reported.
struct Launcher {
    child: Child,
    lines: mpsc::Receiver<String>,
    qemu_pid: Option<i32>,
}

fn reader(out: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// A launcher that a failed check leaves behind is killed; its QEMU dies
/// with it (qlaunch sets PR_SET_PDEATHSIG), so no paused QEMU keeps pool
/// pages after the test.
impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Launcher {
    fn next(&self, what: &str) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("no {what} from a launcher: {e}"))
    }
}

/// What became of the six starts.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    huge: usize,
    plain: usize,
    refused: usize,
    failed: usize,
}

fn start_six(scratch: &Path, fs: &HugetlbFs, args: &[&str]) -> (Outcome, String) {
    let qlaunch = common::program("qlaunch");
    let qemu = qemu().unwrap();
    let run_dir = scratch.join("run");
    std::fs::create_dir_all(&run_dir).unwrap();
    let mut ls: Vec<Launcher> = (0..VMS)
        .map(|i| {
            let mut c = Command::new(qlaunch)
                .args(args)
                .args(["-w", "-H"])
                .arg(&fs.0)
                .arg("-r")
                .arg(&run_dir)
                .args(["-u", &format!("5e1f0000-0000-4000-8000-0000000000{i:02}")])
                .args(["-m", &VM_MIB.to_string(), "-s"])
                .arg(scratch.join(format!("qmp{i}.sock")))
                .arg(&qemu)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let lines = reader(c.stdout.take().unwrap());
            Launcher {
                child: c,
                lines,
                qemu_pid: None,
            }
        })
        .collect();
    // Every launcher decides before any QEMU starts.
    for l in &ls {
        assert_eq!(l.next("decision"), "decided");
    }
    for l in &mut ls {
        let _ = l.child.stdin.as_mut().unwrap().write_all(b"x");
    }
    let mut o = Outcome::default();
    for l in &mut ls {
        let line = l.next("result");
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["qlaunch:", "started", pid, huge] => {
                l.qemu_pid = Some(pid.trim_start_matches("pid=").parse().unwrap());
                if *huge == "hugepages=1" {
                    o.huge += 1;
                } else {
                    o.plain += 1;
                }
            }
            ["qlaunch:", "refused", ..] => o.refused += 1,
            ["qlaunch:", "qemu", "failed", ..] => o.failed += 1,
            _ => panic!("unexpected launcher output: {line}"),
        }
    }
    // The pool while they all run: the started ones hold their pages.
    let q = HugetlbPool::open(0, None).unwrap().query().unwrap();
    assert_eq!(
        q.in_use_pages(),
        o.huge as u64 * VM_MIB * (1 << 20) / MB2,
        "{o:?} {q:?}"
    );
    // Stop every QEMU; collect what the launchers said on stderr.
    let mut stderr = String::new();
    for l in &mut ls {
        if let Some(pid) = l.qemu_pid {
            // SAFETY: kill(2) of a process this test's launcher started.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
    for mut l in ls {
        let st = l.child.wait().unwrap();
        l.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let code = st.code().unwrap_or(-1);
        assert!(
            [0, 3, 4].contains(&code),
            "a launcher failed ({st:?}):\n{stderr}"
        );
    }
    (o, stderr)
}

#[test]
fn more_vms_at_once_than_the_pool_holds() {
    if qemu().is_none() {
        eprintln!("\n!!!!!!!!\nSKIPPED: hugetlb QEMU test: no {QEMU} on PATH (Debian: apt-get install qemu-system-x86)\n!!!!!!!!");
        return;
    }
    let Some(_pool) = hugepool::borrow("hugetlb QEMU test") else {
        return;
    };
    let pool = HugetlbPool::open(0, None).unwrap();
    assert_eq!(pool.resize(48 * MB2, 0, None), Ok(48 * MB2));
    let fs = HugetlbFs::mount();

    let scratch = common::Scratch::new("hugetlb-qemu");
    let (prefer, _) = start_six(&scratch.0.join("prefer"), &fs, &["-p", "prefer"]);
    println!("with the library, prefer: {prefer:?}");
    assert_eq!(
        prefer,
        Outcome {
            huge: 3,
            plain: 3,
            refused: 0,
            failed: 0
        }
    );

    let (require, _) = start_six(&scratch.0.join("require"), &fs, &["-p", "require"]);
    println!("with the library, require: {require:?}");
    assert_eq!(
        require,
        Outcome {
            huge: 3,
            plain: 0,
            refused: 3,
            failed: 0
        }
    );

    let (none, stderr) = start_six(&scratch.0.join("none"), &fs, &["-n", "-p", "prefer"]);
    println!("without it (query-then-launch): {none:?}");
    assert_eq!(
        none,
        Outcome {
            huge: 3,
            plain: 0,
            refused: 0,
            failed: 3
        }
    );
    let why = "unable to map backing store for guest RAM: Cannot allocate memory";
    assert_eq!(stderr.matches(why).count(), 3, "QEMU's messages:\n{stderr}");
    println!("QEMU said (three times): {why}");

    let q = pool.query().unwrap();
    assert_eq!((q.free_pages, q.reserved_pages), (48, 0), "{q:?}");
}
