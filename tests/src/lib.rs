//! Helpers shared by Dataverket's end-to-end tests: child processes that are
//! always stopped, bounded polling, and a minimal HTTP client.
//!
//! Cross-cutting end-to-end tests live in `tests/tests/`; test-only programs
//! they drive (such as the store crash writer) in `tests/src/bin/`. Tests of
//! one binary against real peers live beside it (`agent/tests/`, where Cargo
//! hands them the freshly built `dv-agent`) and use these helpers.

pub mod agent;
pub mod api;
pub mod http;
pub mod hub;
pub mod ipmi;
pub mod lab;
pub mod nats;
pub mod netns;
pub mod oidc;
pub mod openapi;
pub mod ovs;
pub mod process;
pub mod proxy;
pub mod qemu;
pub mod sushy;

use std::time::{Duration, Instant};

/// Polls `f` every 20 ms until it returns `Some`, for at most `limit`.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A small xorshift generator: reproducible randomness for fault injection
/// without a dependency. Seed it from the test's printed seed to replay a run.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed` (0 is replaced, xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    /// A seed from the clock; print it so a failing run can be replayed.
    pub fn seed_from_clock() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A value in `lo..hi` (`hi` > `lo`).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }
}
