//! The machine's hugetlb pool, borrowed by a test: the pool is global, so
//! a test that resizes it records the original size in a file first,
//! restores it when done (also on a panic), and a run that was killed
//! before it could is undone at the start of the next one.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The 2 MiB pool's directory.
pub const POOL_2M: &str = "/sys/kernel/mm/hugepages/hugepages-2048kB";

/// One test at a time per test binary (cargo runs binaries one by one).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Where the original size is kept while a test holds the pool.
fn saved_file() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("hugetlb-2M-nr_hugepages.saved")
}

fn read_u64(p: &Path) -> u64 {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The pool's persistent size: nr_hugepages less its surplus.
fn persistent() -> u64 {
    let d = Path::new(POOL_2M);
    read_u64(&d.join("nr_hugepages")) - read_u64(&d.join("surplus_hugepages"))
}

fn set(pages: u64) -> std::io::Result<()> {
    std::fs::write(Path::new(POOL_2M).join("nr_hugepages"), pages.to_string())
}

/// The 2 MiB pool, held by one test; restored to its original size on
/// drop.
pub struct BorrowedPool {
    original: u64,
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
    // A killed run's leftover: put the pool back first.
    let saved = saved_file();
    if saved.exists() {
        let original = read_u64(&saved);
        set(original)
            .unwrap_or_else(|e| panic!("restoring {original} pages from {}: {e}", saved.display()));
        eprintln!("restored the hugetlb pool to {original} pages, left by a killed run");
        std::fs::remove_file(&saved).unwrap();
    }
    let original = persistent();
    if let Err(e) = set(original) {
        eprintln!("\n!!!!!!!!\nSKIPPED: {test}: the hugetlb pool cannot be resized here ({POOL_2M}/nr_hugepages: {e}; needs root and a writable /sys)\n!!!!!!!!");
        return None;
    }
    std::fs::create_dir_all(saved.parent().unwrap()).unwrap();
    std::fs::write(&saved, original.to_string()).unwrap();
    Some(BorrowedPool {
        original,
        _one: one,
    })
}

impl Drop for BorrowedPool {
    fn drop(&mut self) {
        match set(self.original) {
            Ok(()) => {
                let _ = std::fs::remove_file(saved_file());
            }
            // The file stays: the next run restores it.
            Err(e) => eprintln!(
                "could not restore the hugetlb pool to {} pages: {e}",
                self.original
            ),
        }
    }
}
