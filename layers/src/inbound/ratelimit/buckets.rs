//! Token buckets by key with a bound on the keys kept: governor's keyed
//! GCRA limiter, its idle buckets evicted as they refill, and when more
//! callers than `max_keys` are active at once, the newcomers share one
//! overflow bucket (memory stays bounded; nobody is let through unlimited).

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often (in checks) idle buckets are evicted even below the bound.
const EVICT_EVERY: u64 = 4096;

/// The key newcomers share once the table is full.
const OVERFLOW_KEY: &str = "\u{0}overflow";

/// A quota: a steady rate and a burst.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// The largest rate and burst accepted (beyond it, switch limits off).
    pub const MAX: f64 = 1_000_000.0;

    /// Whether governor can represent it (checked by the config builder).
    pub fn is_valid(&self) -> bool {
        self.per_second.is_finite()
            && self.per_second > 0.0
            && self.per_second <= Self::MAX
            && self.burst >= 1
            && f64::from(self.burst) <= Self::MAX
    }

    fn quota(&self) -> Option<Quota> {
        let period = Duration::try_from_secs_f64(1.0 / self.per_second).ok()?;
        Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(self.burst)?))
    }
}

/// Buckets of one rate, by key.
#[derive(Debug)]
pub struct Buckets {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
    max_keys: usize,
    checks: AtomicU64,
}

impl Buckets {
    /// `None` when `rate` is not valid (see [`Rate::is_valid`]).
    pub fn new(rate: Rate, max_keys: usize) -> Option<Self> {
        let clock = DefaultClock::default();
        Some(Self {
            limiter: RateLimiter::dashmap_with_clock(rate.quota()?, clock.clone()),
            clock,
            max_keys: max_keys.max(1),
            checks: AtomicU64::new(0),
        })
    }

    /// Takes `n` tokens from `key`'s bucket, or says how long until they
    /// are there (a batch larger than the burst waits for a whole burst).
    pub fn take(&self, key: &str, n: u32) -> Result<(), Duration> {
        let checks = self.checks.fetch_add(1, Ordering::Relaxed);
        // Eviction walks the table: every EVICT_EVERY checks, and more
        // often (never on every check) while it is full.
        let full = self.limiter.len() >= self.max_keys;
        if checks.is_multiple_of(EVICT_EVERY) || (full && checks.is_multiple_of(64)) {
            self.limiter.retain_recent();
        }
        let key = if self.limiter.len() >= self.max_keys {
            OVERFLOW_KEY
        } else {
            key
        };
        let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        let key = key.to_owned();
        match self.limiter.check_key_n(&key, n) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // More than the burst at once can never conform: take a whole
            // burst's worth of waiting as the answer.
            Err(_) => Err(Duration::from_secs(1)),
        }
    }

    /// Keys held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.limiter.len()
    }
}

/// Whole seconds to send in `Retry-After` (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0 || wait.is_zero())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_per_key() {
        let buckets = Buckets::new(
            Rate {
                per_second: 1.0,
                burst: 3,
            },
            100,
        )
        .expect("valid");
        for _ in 0..3 {
            assert!(buckets.take("alice", 1).is_ok());
        }
        let wait = buckets.take("alice", 1).expect_err("over the burst");
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(buckets.take("bob", 1).is_ok(), "another key is unaffected");
    }

    #[test]
    fn keys_are_bounded() {
        let buckets = Buckets::new(
            Rate {
                per_second: 0.001,
                burst: 1,
            },
            10,
        )
        .expect("valid");
        for i in 0..1000 {
            let _ = buckets.take(&format!("caller-{i}"), 1);
        }
        assert!(buckets.len() <= 11, "{} keys held", buckets.len());
        assert!(
            buckets.take("one-more", 1).is_err(),
            "newcomers share the exhausted overflow bucket"
        );
    }

    #[test]
    fn invalid_rates_are_refused() {
        for rate in [
            Rate {
                per_second: 0.0,
                burst: 1,
            },
            Rate {
                per_second: f64::NAN,
                burst: 1,
            },
            Rate {
                per_second: 1.0,
                burst: 0,
            },
            Rate {
                per_second: 1e9,
                burst: 1,
            },
        ] {
            assert!(!rate.is_valid(), "{rate:?}");
        }
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1500)), 2);
        assert_eq!(retry_after_secs(Duration::from_secs(2)), 2);
    }
}
