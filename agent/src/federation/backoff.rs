//! Bounded, jittered exponential back-off for retrying the local
//! nats-server: 100 ms doubling to a 5 s ceiling, each delay drawn
//! uniformly from its upper half, so agents that lost the server together
//! do not retry in lock-step.

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first delay's upper bound.
const FIRST: Duration = Duration::from_millis(100);
/// No delay is longer than this.
const CEILING: Duration = Duration::from_secs(5);

/// Retry delays; [`Backoff::reset`] after a success.
#[derive(Debug, Default)]
pub(crate) struct Backoff {
    failures: u32,
}

impl Backoff {
    /// The delay before the next attempt, and counts one more failure.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let cap = delay_cap(self.failures);
        self.failures = self.failures.saturating_add(1);
        let half = cap / 2;
        let span = u64::try_from((cap - half).as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        half + Duration::from_millis(random() % span)
    }

    /// Forgets the failures after a success.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }
}

/// The upper bound of the delay after `failures` failures.
fn delay_cap(failures: u32) -> Duration {
    FIRST
        .checked_mul(2u32.saturating_pow(failures.min(16)))
        .map_or(CEILING, |d| d.min(CEILING))
}

/// A random number from the standard library's per-process hash keys and the
/// clock: enough for jitter, no dependency.
fn random() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_are_jittered_and_bounded() {
        let mut b = Backoff::default();
        let first = b.next_delay();
        assert!(first >= FIRST / 2 && first <= FIRST, "{first:?}");
        for _ in 0..100 {
            let d = b.next_delay();
            assert!(
                d <= CEILING && d >= CEILING / 2 || b.failures() < 8,
                "{d:?}"
            );
            assert!(d <= CEILING, "{d:?}");
        }
        assert_eq!(delay_cap(u32::MAX), CEILING);
        b.reset();
        assert_eq!(b.failures(), 0);
        assert!(b.next_delay() <= FIRST);
    }
}
