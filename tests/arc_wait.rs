//! The wait against a real file: a thread rewrites an arcstats file under a
//! temporary root as the "ARC" shrinks, while `wait_for_reader` polls it.
//! No timing is asserted, only outcomes (reached / deadline / cancelled /
//! error) and that the rate estimate and its prediction are sane.

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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use vmmresv::arc::{
    arcstats::LINUX_ARCSTATS, parse_linux, wait_for_reader, ArcError, ArcReader, Arcstats, Flow,
    KstatValue, WaitOptions, WaitOutcome, WaitProgress,
};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

struct TempRoot(PathBuf);

impl TempRoot {
    fn new(tag: &str) -> TempRoot {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let p = std::env::temp_dir().join(format!(
            "vmmresv-arcwait-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(p.join("proc/spl/kstat/zfs")).unwrap();
        TempRoot(p)
    }
}

impl Drop for TempRoot {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The fixture arcstats, to be rewritten with other sizes.
fn template() -> Arcstats {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/arc/linux");
    ArcReader::linux(p).read().unwrap()
}

/// Writes `stats` with `size` under `root`, atomically (write + rename), as
/// procfs gives each reader a whole snapshot.
fn publish(root: &Path, stats: &mut Arcstats, size: u64) {
    for s in &mut stats.stats {
        if s.name == "size" {
            s.value = KstatValue::Unsigned(size);
        }
    }
    let text = stats.to_linux_text();
    assert_eq!(
        parse_linux(&text).unwrap().get_u64("size").unwrap(),
        Some(size)
    );
    let path = root.join(LINUX_ARCSTATS);
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
}

/// A thread that shrinks the "ARC" from `from` by `step` every 10 ms down to
/// `floor`, then holds it there until stopped.
struct Shrinker {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Shrinker {
    fn start(root: &Path, from: u64, step: u64, floor: u64) -> Shrinker {
        let mut stats = template();
        publish(root, &mut stats, from);
        let stop = Arc::new(AtomicBool::new(false));
        let (root, flag) = (root.to_path_buf(), Arc::clone(&stop));
        let handle = std::thread::spawn(move || {
            let mut size = from;
            while !flag.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(10));
                if size > floor {
                    size = size.saturating_sub(step).max(floor);
                    publish(&root, &mut stats, size);
                }
            }
        });
        Shrinker {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for Shrinker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn opts(goal: u64, deadline_ms: u64) -> WaitOptions {
    WaitOptions {
        goal,
        deadline: Duration::from_millis(deadline_ms),
        poll: Duration::from_millis(10),
        tau: Duration::from_millis(200),
    }
}

/// The prediction is what the rate says: remaining / rate.
fn check_estimate(p: &WaitProgress) {
    if let (Some(rate), Some(eta)) = (p.rate, p.eta) {
        if p.remaining > 0 {
            assert!(rate > 0, "an ETA only while shrinking: {p:?}");
            let want = u128::from(p.remaining) * 1_000_000_000 / u128::try_from(rate).unwrap();
            assert_eq!(eta.as_nanos(), want, "{p:?}");
        }
    }
    if let Some(rate) = p.rate {
        // 256 MiB per 10 ms step is 25 GiB/s nominal; anything between a
        // starved thread and many steps landing in one poll fits here.
        assert!(rate < 1 << 40, "implausible rate {rate}: {p:?}");
    }
}

#[test]
fn reaches_the_target_while_a_thread_shrinks_the_arc() {
    let root = TempRoot::new("reach");
    let _shrinker = Shrinker::start(&root.0, 8 * GIB, 256 * MIB, GIB);
    let reader = ArcReader::linux(&root.0);
    let mut seen: Vec<WaitProgress> = Vec::new();
    let out = wait_for_reader(&reader, &opts(2 * GIB, 10_000), |p| {
        check_estimate(p);
        seen.push(*p);
        Flow::Continue
    })
    .unwrap();
    let WaitOutcome::Reached(last) = out else {
        panic!("not reached: {out:?}")
    };
    assert!(last.arc_size <= 2 * GIB);
    assert_eq!(last.remaining, 0);
    assert!(last.samples >= 2, "started at 8 GiB: {last:?}");
    assert_eq!(seen.len() as u64, last.samples);
    // The ARC only shrank, so a measured rate is positive, and at least one
    // report before the end predicted a time left.
    assert!(last.rate.is_some_and(|r| r > 0), "{last:?}");
    assert!(seen.iter().any(|p| p.remaining > 0 && p.eta.is_some()));
    // Sizes never grew between samples.
    assert!(seen.windows(2).all(|w| w[1].arc_size <= w[0].arc_size));
}

#[test]
fn deadline_when_the_arc_stops_short() {
    let root = TempRoot::new("deadline");
    // Shrinks to 3 GiB and stops there; the goal is 2 GiB.
    let _shrinker = Shrinker::start(&root.0, 4 * GIB, 256 * MIB, 3 * GIB);
    let reader = ArcReader::linux(&root.0);
    let out = wait_for_reader(&reader, &opts(2 * GIB, 300), |p| {
        check_estimate(p);
        Flow::Continue
    })
    .unwrap();
    let WaitOutcome::Deadline(last) = out else {
        panic!("expected the deadline: {out:?}")
    };
    assert!(last.arc_size > 2 * GIB);
    assert!(last.remaining >= GIB);
    assert!(last.elapsed >= Duration::from_millis(300));
}

#[test]
fn the_callback_cancels() {
    let root = TempRoot::new("cancel");
    let _shrinker = Shrinker::start(&root.0, 8 * GIB, 64 * MIB, GIB);
    let reader = ArcReader::linux(&root.0);
    let mut n = 0;
    let out = wait_for_reader(&reader, &opts(GIB / 2, 10_000), |_| {
        n += 1;
        if n == 3 {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    })
    .unwrap();
    let WaitOutcome::Cancelled(last) = out else {
        panic!("expected a cancel: {out:?}")
    };
    assert_eq!(last.samples, 3);
    assert!(last.arc_size > GIB / 2);
}

#[test]
fn a_vanished_file_ends_the_wait_with_its_error() {
    let root = TempRoot::new("vanish");
    let mut stats = template();
    publish(&root.0, &mut stats, 8 * GIB);
    let reader = ArcReader::linux(&root.0);
    let path = reader.path().to_path_buf();
    let mut n = 0;
    let r = wait_for_reader(&reader, &opts(GIB, 10_000), |_| {
        n += 1;
        if n == 2 {
            std::fs::remove_file(&path).unwrap();
        }
        Flow::Continue
    });
    assert!(
        matches!(r, Err(ArcError::Io { errno: Some(2), .. })),
        "{r:?}"
    );
}
