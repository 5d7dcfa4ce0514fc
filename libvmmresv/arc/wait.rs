//! Waiting for the ARC to shrink to its target.
//!
//! The ARC shrinks asynchronously: on illumos the reap thread runs once a
//! second and cuts `arc_c` a step at a time, then eviction catches up; on
//! Linux lowering `zfs_arc_max` caps `c` and eviction follows. OS-8005
//! measured about 3 s for a 64 GiB VM on a 128 GiB host. Meanwhile others
//! allocate, which is why the goal should include a slack (the target from
//! [`super::guard::target`] already does).
//!
//! [`wait`] is the pure core: generic over a sampler (`FnMut() -> Result<u64,
//! E>`, the ARC size in bytes) and a [`Clock`], so tests run without
//! sleeping. It stops when the ARC is at or below the goal
//! ([`WaitOutcome::Reached`]), when the deadline passes
//! ([`WaitOutcome::Deadline`]), or when the progress callback says
//! [`Flow::Cancel`] ([`WaitOutcome::Cancelled`]). Each progress report
//! carries a smoothed shrink rate and the time it predicts is left.
//!
//! [`wait_for_reader`] is the real-time convenience: it samples an
//! [`ArcReader`] every `poll` with the system's monotonic clock.

use std::time::{Duration, Instant};

use super::arcstats::ArcReader;
use super::error::ArcError;
use crate::policy::ewma::Ewma;

const NANOS_PER_SEC: i128 = 1_000_000_000;

/// The shortest poll period; a zero poll would spin.
pub const MIN_POLL: Duration = Duration::from_millis(1);
/// The default poll period: four samples per illumos reap cycle (1 s).
pub const DEFAULT_POLL: Duration = Duration::from_millis(250);
/// The default smoothing time constant of the shrink rate (see
/// [`ShrinkRate`]).
pub const DEFAULT_TAU: Duration = Duration::from_secs(2);

/// A monotonic clock the wait can be driven by.
///
/// `sleep(d)` must let at least `d` pass on `now()` (as
/// `std::thread::sleep` does); the wait also bounds its number of samples by
/// `deadline / poll`, so a clock that breaks this cannot make it loop for
/// ever.
pub trait Clock {
    /// Time since an arbitrary fixed origin.
    fn now(&mut self) -> Duration;
    /// Waits `d`.
    fn sleep(&mut self, d: Duration);
}

/// The real clock: `Instant` and `std::thread::sleep`.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A clock whose origin is now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> SystemClock {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now(&mut self) -> Duration {
        self.origin.elapsed()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A smoothed estimate of how fast the ARC shrinks (bytes per second,
/// positive when shrinking), as an exponentially weighted moving average.
///
/// **Weight**: each new interval of length Δt gets α = Δt / (Δt + τ), with
/// τ = 2 s by default — α ≈ 0.11 at the default 250 ms poll, 0.33 at a 1 s
/// poll. Why:
/// - The ARC shrinks in steps: illumos's reap thread wakes once a second
///   (`arc_reap_zthr`, a 1 s timer, plus `arc_kmem_cache_reap_retry_ms` =
///   1000 ms) and cuts `arc_c` by a deficit plus `arc_c >> 7`. Sampled every
///   250 ms, the instant rate swings between zero and a burst; τ = 2 s
///   averages about two reap cycles, so the predicted time does not jump
///   fourfold from one sample to the next.
/// - It still follows a real change within a few seconds, which matters
///   when the whole wait is a few seconds (OS-8005: ~3 s).
/// - α depends on Δt, not on a sample count, so the estimate means the same
///   whatever the poll period, and an irregular sample (a late wakeup)
///   weighs as much as the time it covers. Δt/(Δt+τ) is the first-order
///   (Padé) form of the exact 1 − e^(−Δt/τ), in integers: no floating point
///   to produce NaN or infinity.
///
/// The first interval seeds the estimate. The smoothing is
/// [`crate::policy::ewma::Ewma`]: arithmetic is i128 and checked; a weight
/// product too large for i128 (an interval of centuries) means α is 1 to
/// any precision, so the instant rate is taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShrinkRate {
    last: Option<(Duration, u64)>,
    rate: Ewma,
}

impl ShrinkRate {
    /// An estimator with time constant `tau`.
    pub fn new(tau: Duration) -> ShrinkRate {
        ShrinkRate {
            last: None,
            rate: Ewma::new(tau),
        }
    }

    /// Records that the ARC was `size` bytes at time `at`. A sample at or
    /// before the previous one's time is ignored (no interval to measure).
    pub fn observe(&mut self, at: Duration, size: u64) {
        let Some((t0, s0)) = self.last else {
            self.last = Some((at, size));
            return;
        };
        let d = match at.checked_sub(t0) {
            Some(d) if !d.is_zero() => d,
            _ => return,
        };
        self.last = Some((at, size));
        let dt = i128::try_from(d.as_nanos()).unwrap_or(i128::MAX);
        // Bytes shrunk over dt, as bytes per second. |shrunk| < 2^64 and
        // 10^9 < 2^30, so the product fits i128; dt > 0.
        let shrunk = i128::from(s0).saturating_sub(i128::from(size));
        let instant = shrunk
            .saturating_mul(NANOS_PER_SEC)
            .checked_div(dt)
            .unwrap_or(0);
        // Clamped to i64 before smoothing: no ARC shrinks by more than
        // 2^63 bytes a second.
        let instant =
            i64::try_from(instant).unwrap_or(if instant < 0 { i64::MIN } else { i64::MAX });
        self.rate.observe(d, instant);
    }

    /// The smoothed rate (bytes/s, positive = shrinking), once two samples
    /// have been seen.
    pub fn rate(&self) -> Option<i64> {
        self.rate.value()
    }

    /// The time left to shrink `remaining` more bytes at the smoothed rate;
    /// `None` while the ARC is not shrinking (or not yet measured).
    /// Saturates at `u64::MAX` ns (584 years): "not in any useful time".
    pub fn eta(&self, remaining: u64) -> Option<Duration> {
        let rate = u128::try_from(self.rate()?).ok().filter(|r| *r > 0)?;
        let ns = u128::from(remaining)
            .saturating_mul(1_000_000_000)
            .checked_div(rate)?;
        Some(Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX)))
    }
}

/// What to wait for, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitOptions {
    /// Wait until the ARC is at or below this many bytes (a target from
    /// [`super::guard::target`], slack included).
    pub goal: u64,
    /// Give up this long after the first sample.
    pub deadline: Duration,
    /// Sample this often (at least [`MIN_POLL`]).
    pub poll: Duration,
    /// The shrink-rate time constant ([`ShrinkRate`]).
    pub tau: Duration,
}

impl WaitOptions {
    /// Waits for `goal` bytes until `deadline`, with the default poll
    /// (250 ms) and smoothing (τ = 2 s).
    pub fn new(goal: u64, deadline: Duration) -> WaitOptions {
        WaitOptions {
            goal,
            deadline,
            poll: DEFAULT_POLL,
            tau: DEFAULT_TAU,
        }
    }
}

/// One progress report (also the final state in a [`WaitOutcome`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitProgress {
    /// Time since the first sample.
    pub elapsed: Duration,
    /// The ARC size just sampled (bytes).
    pub arc_size: u64,
    /// The goal (bytes).
    pub goal: u64,
    /// `arc_size - goal`, 0 once reached.
    pub remaining: u64,
    /// The smoothed shrink rate (bytes/s, positive = shrinking).
    pub rate: Option<i64>,
    /// The predicted time left at that rate.
    pub eta: Option<Duration>,
    /// Samples taken so far (this one included).
    pub samples: u64,
}

/// What the progress callback wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Keep waiting.
    Continue,
    /// Stop now ([`WaitOutcome::Cancelled`]).
    Cancel,
}

/// How a wait ended, with the last progress report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// The ARC is at or below the goal.
    Reached(WaitProgress),
    /// The deadline passed first.
    Deadline(WaitProgress),
    /// The progress callback cancelled.
    Cancelled(WaitProgress),
}

impl WaitOutcome {
    /// The last progress report.
    pub fn progress(&self) -> &WaitProgress {
        match self {
            WaitOutcome::Reached(p) | WaitOutcome::Deadline(p) | WaitOutcome::Cancelled(p) => p,
        }
    }
}

/// Waits until `sample()` is at or below `opts.goal`.
///
/// Each round: sample, update the rate, report progress (the callback sees
/// every sample, including the one that reaches the goal, whose answer is
/// then ignored), then stop if reached, cancelled or past the deadline, else
/// sleep `min(poll, time left)`. At most `deadline / poll + 2` samples are
/// taken whatever the clock does. A sampler error ends the wait with that
/// error.
pub fn wait<E, S, C, P>(
    mut sample: S,
    clock: &mut C,
    opts: &WaitOptions,
    mut progress: P,
) -> Result<WaitOutcome, E>
where
    S: FnMut() -> Result<u64, E>,
    C: Clock,
    P: FnMut(&WaitProgress) -> Flow,
{
    let poll = opts.poll.max(MIN_POLL);
    // The ratio of two Durations in nanoseconds; poll >= 1 ms so no
    // division by zero. Saturating: a bound of u128::MAX samples is none.
    let max_samples = opts
        .deadline
        .as_nanos()
        .checked_div(poll.as_nanos())
        .unwrap_or(0)
        .saturating_add(2);
    let start = clock.now();
    let mut rate = ShrinkRate::new(opts.tau);
    let mut samples: u64 = 0;
    loop {
        let size = sample()?;
        // A clock going backwards reads as no time passed.
        let elapsed = clock.now().saturating_sub(start);
        samples = samples.saturating_add(1);
        rate.observe(elapsed, size);
        let remaining = size.saturating_sub(opts.goal);
        let p = WaitProgress {
            elapsed,
            arc_size: size,
            goal: opts.goal,
            remaining,
            rate: rate.rate(),
            eta: if remaining == 0 {
                Some(Duration::ZERO)
            } else {
                rate.eta(remaining)
            },
            samples,
        };
        let flow = progress(&p);
        if remaining == 0 {
            return Ok(WaitOutcome::Reached(p));
        }
        if flow == Flow::Cancel {
            return Ok(WaitOutcome::Cancelled(p));
        }
        let left = opts.deadline.saturating_sub(elapsed);
        if left.is_zero() || u128::from(samples) >= max_samples {
            return Ok(WaitOutcome::Deadline(p));
        }
        clock.sleep(poll.min(left));
    }
}

/// [`wait`] in real time on an [`ArcReader`]: reads the ARC size (`size`)
/// from the reader's file every `opts.poll`.
pub fn wait_for_reader<P>(
    reader: &ArcReader,
    opts: &WaitOptions,
    progress: P,
) -> Result<WaitOutcome, ArcError>
where
    P: FnMut(&WaitProgress) -> Flow,
{
    let mut clock = SystemClock::new();
    wait(|| reader.arc_size(), &mut clock, opts, progress)
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::arithmetic_side_effects,
    clippy::as_conversions,
    clippy::panic
)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// A clock that advances only when slept on.
    struct FakeClock {
        now: Duration,
        slept: Vec<Duration>,
    }

    impl FakeClock {
        fn new() -> FakeClock {
            FakeClock {
                now: Duration::ZERO,
                slept: Vec::new(),
            }
        }
    }

    impl Clock for FakeClock {
        fn now(&mut self) -> Duration {
            self.now
        }
        fn sleep(&mut self, d: Duration) {
            self.slept.push(d);
            self.now += d;
        }
    }

    /// A sampler that returns `sizes` in turn, then repeats the last.
    fn sizes(v: Vec<u64>) -> impl FnMut() -> Result<u64, ()> {
        let mut i = 0;
        move || {
            let s = v[i.min(v.len() - 1)];
            i += 1;
            Ok(s)
        }
    }

    #[test]
    fn ewma_weights_by_time() {
        let mut r = ShrinkRate::new(Duration::from_secs(2));
        r.observe(Duration::ZERO, 10 * GIB);
        assert_eq!(r.rate(), None);
        assert_eq!(r.eta(GIB), None);
        // 1 GiB in 1 s seeds the rate.
        r.observe(Duration::from_secs(1), 9 * GIB);
        assert_eq!(r.rate(), Some(GIB as i64));
        // Nothing for 1 s: alpha = 1/(1+2) pulls it down by a third.
        r.observe(Duration::from_secs(2), 9 * GIB);
        assert_eq!(r.rate(), Some((GIB - GIB / 3) as i64));
        // Same time again: ignored.
        r.observe(Duration::from_secs(2), 0);
        assert_eq!(r.rate(), Some((GIB - GIB / 3) as i64));
        // ETA for 2/3 GiB... at 2/3 GiB/s is about a second.
        let eta = r.eta(GIB - GIB / 3).unwrap();
        assert!(eta >= Duration::from_millis(999) && eta <= Duration::from_millis(1001));
        // Growing ARC: negative rate, no ETA.
        let mut g = ShrinkRate::new(Duration::from_secs(2));
        g.observe(Duration::ZERO, GIB);
        g.observe(Duration::from_millis(500), 2 * GIB);
        assert_eq!(g.rate(), Some(-2 * GIB as i64));
        assert_eq!(g.eta(1), None);
    }

    #[test]
    fn ewma_extremes_do_not_panic() {
        let mut r = ShrinkRate::new(Duration::MAX);
        r.observe(Duration::ZERO, u64::MAX);
        r.observe(Duration::from_nanos(1), 0);
        assert_eq!(r.rate(), Some(i64::MAX));
        r.observe(Duration::MAX, u64::MAX);
        r.observe(Duration::from_nanos(2), 5);
        let _ = r.eta(u64::MAX);
        let mut z = ShrinkRate::new(Duration::ZERO);
        z.observe(Duration::ZERO, 5);
        z.observe(Duration::from_secs(1), 4);
        z.observe(Duration::from_secs(2), 2);
        assert_eq!(z.rate(), Some(2), "tau 0: the last instant rate");
        assert_eq!(z.eta(u64::MAX).unwrap(), Duration::from_nanos(u64::MAX));
    }

    #[test]
    fn reaches_the_goal() {
        let mut clock = FakeClock::new();
        let opts = WaitOptions {
            goal: 4 * GIB,
            deadline: Duration::from_secs(10),
            poll: Duration::from_millis(250),
            tau: DEFAULT_TAU,
        };
        let mut seen = Vec::new();
        let out = wait(
            sizes(vec![8 * GIB, 7 * GIB, 6 * GIB, 5 * GIB, 4 * GIB]),
            &mut clock,
            &opts,
            |p| {
                seen.push(*p);
                Flow::Continue
            },
        )
        .unwrap();
        let WaitOutcome::Reached(p) = out else {
            panic!("{out:?}")
        };
        assert_eq!((p.samples, p.remaining, p.arc_size), (5, 0, 4 * GIB));
        assert_eq!(p.elapsed, Duration::from_secs(1));
        // 1 GiB per 250 ms = 4 GiB/s, steadily.
        assert_eq!(p.rate, Some(4 * GIB as i64));
        assert_eq!(seen.len(), 5);
        assert_eq!(seen[1].eta, Some(Duration::from_millis(750)));
        assert_eq!(clock.slept, vec![Duration::from_millis(250); 4]);
    }

    #[test]
    fn already_there_takes_one_sample() {
        let mut clock = FakeClock::new();
        let out = wait(
            sizes(vec![GIB]),
            &mut clock,
            &WaitOptions::new(GIB, Duration::ZERO),
            |_| Flow::Cancel,
        )
        .unwrap();
        assert!(matches!(out, WaitOutcome::Reached(p) if p.samples == 1));
        assert!(clock.slept.is_empty());
    }

    #[test]
    fn deadline_and_its_last_short_sleep() {
        let mut clock = FakeClock::new();
        let opts = WaitOptions {
            goal: GIB,
            deadline: Duration::from_millis(600),
            poll: Duration::from_millis(250),
            tau: DEFAULT_TAU,
        };
        let out = wait(sizes(vec![2 * GIB]), &mut clock, &opts, |_| Flow::Continue).unwrap();
        let WaitOutcome::Deadline(p) = out else {
            panic!("{out:?}")
        };
        assert_eq!(p.elapsed, Duration::from_millis(600));
        assert_eq!(p.rate, Some(0));
        assert_eq!(p.eta, None);
        assert_eq!(
            clock.slept,
            vec![
                Duration::from_millis(250),
                Duration::from_millis(250),
                Duration::from_millis(100)
            ]
        );
    }

    #[test]
    fn cancel_and_errors() {
        let mut clock = FakeClock::new();
        let mut n = 0;
        let out = wait(
            sizes(vec![9 * GIB, 8 * GIB, 7 * GIB]),
            &mut clock,
            &WaitOptions::new(GIB, Duration::from_secs(60)),
            |_| {
                n += 1;
                if n == 2 {
                    Flow::Cancel
                } else {
                    Flow::Continue
                }
            },
        )
        .unwrap();
        assert!(matches!(out, WaitOutcome::Cancelled(p) if p.arc_size == 8 * GIB));
        let mut calls = 0;
        let r: Result<WaitOutcome, &str> = wait(
            || {
                calls += 1;
                if calls < 3 {
                    Ok(9 * GIB)
                } else {
                    Err("gone")
                }
            },
            &mut clock,
            &WaitOptions::new(GIB, Duration::from_secs(60)),
            |_| Flow::Continue,
        );
        assert_eq!(r, Err("gone"));
    }

    /// A clock that never advances cannot make the wait loop for ever.
    #[test]
    fn a_stuck_clock_still_terminates() {
        struct Stuck;
        impl Clock for Stuck {
            fn now(&mut self) -> Duration {
                Duration::ZERO
            }
            fn sleep(&mut self, _: Duration) {}
        }
        let opts = WaitOptions {
            goal: 0,
            deadline: Duration::from_secs(1),
            poll: Duration::ZERO, // raised to 1 ms
            tau: DEFAULT_TAU,
        };
        let out = wait(sizes(vec![MIB]), &mut Stuck, &opts, |_| Flow::Continue).unwrap();
        assert!(matches!(out, WaitOutcome::Deadline(p) if p.samples == 1002));
    }
}
