//! Capped exponential backoff with full jitter, for every retry loop of the
//! agent (downloads now; manifest polls and proof-of-play uploads later).
//!
//! Hand-written rather than a crate (`backon`, `backoff`): it is the dozen
//! lines below, and the retry loops need to decide per error whether to
//! retry at all and whether a partial download survives, which a crate's
//! retry combinator would hide.

use std::time::Duration;

use rand::Rng;

/// Delays `random(0 ..= min(cap, base · 2^failures))` ("full jitter"), so a
/// fleet of boxes that lost the server at the same moment does not come back
/// in lockstep.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// A backoff that starts at `base` and never waits longer than `cap`.
    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap,
            failures: 0,
        }
    }

    /// The ceiling of the next delay, before jitter.
    pub fn ceiling(&self) -> Duration {
        // 2^20 · base is past any sensible cap already; clamping the exponent
        // keeps the multiplication from overflowing after months offline.
        let factor = 1u32 << self.failures.min(20);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// Records a failure and returns how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
    }

    /// Failures recorded since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Back to `base` after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_up_to_the_cap_and_delays_stay_under_it() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
        let mut ceilings = Vec::new();
        for _ in 0..6 {
            let ceiling = backoff.ceiling();
            ceilings.push(ceiling.as_millis());
            assert!(backoff.next_delay() <= ceiling);
        }
        assert_eq!(ceilings, [100, 200, 400, 800, 1000, 1000]);
        for _ in 0..1000 {
            backoff.next_delay();
        }
        assert_eq!(
            backoff.ceiling(),
            Duration::from_secs(1),
            "no overflow after many failures"
        );
        backoff.reset();
        assert_eq!(backoff.ceiling(), Duration::from_millis(100));
    }

    #[test]
    fn delays_are_jittered() {
        let mut backoff = Backoff::new(Duration::from_secs(10), Duration::from_secs(10));
        let delays: std::collections::HashSet<_> = (0..20).map(|_| backoff.next_delay()).collect();
        assert!(
            delays.len() > 10,
            "full jitter spreads the delays: {delays:?}"
        );
    }
}
