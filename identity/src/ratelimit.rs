//! Per-key token buckets (ADR 0013: per principal, and per client address
//! before authentication): governor's keyed GCRA limiter, which is exactly
//! a token bucket of `burst` tokens refilled at `per_second`.
//!
//! Memory stays bounded: once the map holds more than [`MAX_KEYS`] keys,
//! every key whose bucket is full again (idle long enough to be
//! indistinguishable from a fresh one) is dropped; dropping it loses
//! nothing.

use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter as Governor};

/// Keys kept before idle ones are evicted.
pub const MAX_KEYS: usize = 10_000;

/// Why limits could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A zero rate or burst would refuse everything.
    #[error("requests_per_second and burst must be at least 1")]
    Zero,
}

/// A token bucket per key.
#[derive(Debug)]
pub struct RateLimiter {
    limiter: Governor<String, DefaultKeyedStateStore<String>, DefaultClock>,
    clock: DefaultClock,
    max_keys: usize,
}

impl RateLimiter {
    /// `per_second` tokens a second, at most `burst` saved up.
    pub fn new(per_second: u32, burst: u32) -> Result<Self, LimitError> {
        Self::with_max_keys(per_second, burst, MAX_KEYS)
    }

    fn with_max_keys(per_second: u32, burst: u32, max_keys: usize) -> Result<Self, LimitError> {
        let rate = NonZeroU32::new(per_second).ok_or(LimitError::Zero)?;
        let burst = NonZeroU32::new(burst).ok_or(LimitError::Zero)?;
        let clock = DefaultClock::default();
        let quota = Quota::per_second(rate).allow_burst(burst);
        Ok(Self {
            limiter: Governor::dashmap_with_clock(quota, clock.clone()),
            clock,
            max_keys,
        })
    }

    /// Takes one token from `key`'s bucket: `Ok` if there was one, else
    /// how long until there is.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        if self.limiter.len() > self.max_keys {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&key.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// Keys currently tracked.
    pub fn len(&self) -> usize {
        self.limiter.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.limiter.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_refusal_with_a_wait() {
        let l = RateLimiter::new(1, 3).unwrap();
        for _ in 0..3 {
            assert!(l.check("user:a").is_ok());
        }
        let wait = l.check("user:a").unwrap_err();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(1),
            "{wait:?}"
        );
        // Another key has its own bucket.
        assert!(l.check("user:b").is_ok());
    }

    #[test]
    fn zero_is_refused() {
        assert_eq!(RateLimiter::new(0, 1).unwrap_err(), LimitError::Zero);
        assert_eq!(RateLimiter::new(1, 0).unwrap_err(), LimitError::Zero);
    }

    #[test]
    fn idle_keys_are_evicted() {
        // A fast refill: after one check a bucket is full again well
        // before the next round, so every old key is idle.
        let l = RateLimiter::with_max_keys(1_000_000, 1_000_000, 100).unwrap();
        for i in 0..500 {
            assert!(l.check(&format!("ip:{i}")).is_ok());
        }
        assert!(l.len() <= 101, "{} keys kept", l.len());
    }
}
