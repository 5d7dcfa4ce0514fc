//! A time-weighted exponentially weighted moving average, for noisy rates
//! (the KVM Forum talk smooths its working-set estimates with a "moving
//! average"; the ARC wait smooths the shrink rate with this).
//!
//! Each sample covers an interval Δt and gets the weight α = Δt / (Δt + τ):
//! the first-order (Padé) form of the exact 1 − e^(−Δt/τ), computed in
//! integers so there is no floating point to produce NaN or infinity.
//! Because α follows the time a sample covers, not a sample count, the
//! average means the same whatever the sampling period, and a late sample
//! weighs as much as the time it stands for. τ = 0 follows the last sample.

use core::time::Duration;

/// Nanoseconds of a duration as i128 (every `Duration` fits: < 2^95).
fn nanos(d: Duration) -> i128 {
    i128::try_from(d.as_nanos()).unwrap_or(i128::MAX)
}

/// The smoothed value of an integer signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ewma {
    tau: Duration,
    value: Option<i64>,
}

impl Ewma {
    /// An empty average with time constant `tau`.
    pub fn new(tau: Duration) -> Ewma {
        Ewma { tau, value: None }
    }

    /// Adds `sample`, which stands for the last `dt`.
    ///
    /// The first sample seeds the average whatever `dt`. After that an
    /// interval of zero length carries no weight and is ignored. The step
    /// `(sample − value) × Δt / (Δt + τ)` is exact in i128 and truncates
    /// toward zero; if the product does not fit (an interval of centuries)
    /// α is 1 to any precision and the sample is taken as it is.
    pub fn observe(&mut self, dt: Duration, sample: i64) {
        let Some(v) = self.value else {
            self.value = Some(sample);
            return;
        };
        let dt = nanos(dt);
        if dt == 0 {
            return;
        }
        let v = i128::from(v);
        let step = i128::from(sample)
            .checked_sub(v)
            .and_then(|d| d.checked_mul(dt))
            .and_then(|p| p.checked_div(dt.checked_add(nanos(self.tau))?));
        let next = match step {
            // |step| <= |sample − v|: the result lies between v and sample.
            Some(s) => v.saturating_add(s),
            None => i128::from(sample),
        };
        self.value = Some(i64::try_from(next).unwrap_or(sample));
    }

    /// The average, once a sample has been seen.
    pub fn value(&self) -> Option<i64> {
        self.value
    }

    /// The time constant.
    pub fn tau(&self) -> Duration {
        self.tau
    }

    /// Forgets every sample (the time constant stays).
    pub fn reset(&mut self) {
        self.value = None;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::arithmetic_side_effects)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn seeds_then_weights_by_time() {
        let mut e = Ewma::new(2 * S);
        assert_eq!(e.value(), None);
        e.observe(S, 900);
        assert_eq!(e.value(), Some(900));
        // 1 s against τ = 2 s: a third of the way to the sample.
        e.observe(S, 0);
        assert_eq!(e.value(), Some(600));
        // 2 s: half way.
        e.observe(2 * S, 1200);
        assert_eq!(e.value(), Some(900));
        // Zero interval: no weight.
        e.observe(Duration::ZERO, -5_000);
        assert_eq!(e.value(), Some(900));
        e.reset();
        assert_eq!(e.value(), None);
        assert_eq!(e.tau(), 2 * S);
    }

    #[test]
    fn truncates_toward_zero_both_ways() {
        let mut up = Ewma::new(2 * S);
        up.observe(S, 0);
        up.observe(S, 10);
        assert_eq!(up.value(), Some(3));
        let mut down = Ewma::new(2 * S);
        down.observe(S, 0);
        down.observe(S, -10);
        assert_eq!(down.value(), Some(-3));
    }

    #[test]
    fn noise_is_damped_and_tau_zero_follows() {
        // Alternating 0 / 1000 every 250 ms with τ = 2 s stays near 500.
        let mut e = Ewma::new(2 * S);
        for k in 0..200 {
            e.observe(
                Duration::from_millis(250),
                if k % 2 == 0 { 0 } else { 1000 },
            );
        }
        let v = e.value().unwrap();
        assert!((440..=560).contains(&v), "{v}");
        let mut z = Ewma::new(Duration::ZERO);
        z.observe(S, 7);
        z.observe(Duration::from_nanos(1), -7);
        assert_eq!(z.value(), Some(-7));
    }

    #[test]
    fn extremes_do_not_panic() {
        let mut e = Ewma::new(Duration::MAX);
        e.observe(S, i64::MAX);
        e.observe(Duration::MAX, i64::MIN);
        // Product overflows i128: the sample is taken.
        assert_eq!(e.value(), Some(i64::MIN));
        e.observe(Duration::from_nanos(1), i64::MAX);
        assert_eq!(
            e.value(),
            Some(i64::MIN),
            "1 ns against τ = MAX moves nothing"
        );
        assert_eq!(e.tau(), Duration::MAX);
    }
}
