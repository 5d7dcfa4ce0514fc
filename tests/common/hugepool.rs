//! The machine's hugetlb pool, borrowed by a test. The pool is global, so
//! a test that resizes it takes a machine-wide lock (any checkout, any
//! test binary), records the pool's original settings in a machine-wide
//! file first, restores them when done (also on a panic), and a borrower
//! killed before it could is undone by the next one. Overcommitted huge
//! pages (`nr_overcommit_hugepages`) are held at 0 meanwhile: with them a
//! mapping can take surplus pages beyond the pool, and no count is exact.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The 2 MiB pool's directory.
pub const POOL_2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";

/// One test at a time within a test binary; the file lock below orders
/// test binaries and checkouts.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Machine-wide state: a tmpfs that outlives a run (not a reboot, which
/// resets the pool anyway).
fn state_dir() -> PathBuf {
    ["/run/lock", "/run"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.is_dir())
        .unwrap_or_else(std::env::temp_dir)
}

/// The original settings while a test holds the pool:
/// "<nr_hugepages> <nr_overcommit_hugepages>".
fn saved_file() -> PathBuf {
    state_dir().join("vmmresv-test-hugetlb-2M.saved")
}

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn pool_file(name: &str) -> PathBuf {
    Path::new(POOL_2M).join(name)
}

/// The pool's settings now: its persistent size (nr_hugepages less its
/// surplus) and its overcommit.
fn settings() -> String {
    let persistent =
        read_u64(&pool_file("nr_hugepages")) - read_u64(&pool_file("surplus_hugepages"));
    format!(
        "{persistent} {}",
        read_u64(&pool_file("nr_overcommit_hugepages"))
    )
}

/// Put the pool back as `saved` says.
fn restore(saved: &str) -> std::io::Result<()> {
    let w: Vec<&str> = saved.split_whitespace().collect();
    if let [nr, over] = w.as_slice() {
        std::fs::write(pool_file("nr_hugepages"), nr)?;
        std::fs::write(pool_file("nr_overcommit_hugepages"), over)?;
    }
    Ok(())
}

/// The 2 MiB pool, held by one test; restored on drop.
pub struct BorrowedPool {
    original: String,
    _machine: File,
    _one: MutexGuard<'static, ()>,
}

/// Borrow the pool, or None (after a loud SKIPPED line naming `test`)
/// where it cannot be resized: not root, no hugetlb, read-only sysfs.
pub fn borrow(test: &str) -> Option<BorrowedPool> {
    let one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !Path::new(POOL_2M).is_dir() {
        eprintln!("\n!!!!!!!!\nSKIPPED: {test}: no 2 MiB hugetlb pool ({POOL_2M})\n!!!!!!!!");
        return None;
    }
    // Writing the size the pool has changes nothing, and says whether it
    // can be written at all.
    let nr = read_u64(&pool_file("nr_hugepages")) - read_u64(&pool_file("surplus_hugepages"));
    if let Err(e) = std::fs::write(pool_file("nr_hugepages"), nr.to_string()) {
        eprintln!("\n!!!!!!!!\nSKIPPED: {test}: the hugetlb pool cannot be resized here ({POOL_2M}/nr_hugepages: {e}; needs root and a writable /sys)\n!!!!!!!!");
        return None;
    }
    // Every borrower on the machine, one at a time; the kernel releases the
    // lock when the file is closed, also by a killed process.
    let lock_path = state_dir().join("vmmresv-test-hugetlb.lock");
    let machine = File::options()
        .create(true)
        .append(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    // SAFETY: flock(2) on a descriptor this function owns.
    let rc = unsafe { libc::flock(machine.as_raw_fd(), libc::LOCK_EX) };
    assert_eq!(rc, 0, "flock {}", lock_path.display());
    // A killed borrower's leftover: put the pool back first.
    let saved = saved_file();
    // No file is no leftover; any other error while reading it is an
    // error, not "nothing to restore".
    let left = match std::fs::read_to_string(&saved) {
        Ok(left) => Some(left),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => panic!("{}: {e}", saved.display()),
    };
    if let Some(left) = left {
        restore(&left)
            .unwrap_or_else(|e| panic!("restoring the pool from {}: {e}", saved.display()));
        eprintln!(
            "restored the hugetlb pool to \"{}\" (nr_hugepages, overcommit), left by a killed run",
            left.trim()
        );
    }
    let original = settings();
    std::fs::write(&saved, &original).unwrap();
    std::fs::write(pool_file("nr_overcommit_hugepages"), "0").unwrap();
    Some(BorrowedPool {
        original,
        _machine: machine,
        _one: one,
    })
}

impl Drop for BorrowedPool {
    fn drop(&mut self) {
        match restore(&self.original) {
            Ok(()) => {
                let _ = std::fs::remove_file(saved_file());
            }
            // The file stays: the next borrower restores it.
            Err(e) => eprintln!(
                "could not restore the hugetlb pool to \"{}\": {e}",
                self.original
            ),
        }
    }
}
