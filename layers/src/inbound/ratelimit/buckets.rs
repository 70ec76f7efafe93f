//! Token buckets by key with a bound on the keys kept: governor's keyed
//! GCRA limiter, its idle buckets evicted as they refill, and when more
//! callers than `max_keys` are active at once, the newcomers share one
//! overflow bucket while callers already known keep their own (memory
//! stays bounded; nobody is let through unlimited, nobody pushed out).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::{InMemoryState, StateStore};
use governor::{Quota, RateLimiter};

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
    /// The slowest rate: one call a day.
    pub const MIN_PER_SECOND: f64 = 1.0 / 86_400.0;
    /// The longest a full bucket may take to refill (governor multiplies
    /// the period by the burst in 64-bit nanoseconds).
    pub const MAX_REFILL_SECS: f64 = 366.0 * 86_400.0;

    /// Whether governor can represent it without overflow (checked by the
    /// config builder).
    pub fn is_valid(&self) -> bool {
        self.per_second.is_finite()
            && self.per_second >= Self::MIN_PER_SECOND
            && self.per_second <= Self::MAX
            && self.burst >= 1
            && f64::from(self.burst) <= Self::MAX
            && f64::from(self.burst) / self.per_second <= Self::MAX_REFILL_SECS
    }

    fn quota(&self) -> Option<Quota> {
        let period = Duration::try_from_secs_f64(1.0 / self.per_second).ok()?;
        Some(Quota::with_period(period)?.allow_burst(NonZeroU32::new(self.burst)?))
    }
}

/// governor's DashMap store, shared so [`Buckets`] can ask whether a key
/// is already held.
#[derive(Clone, Debug, Default)]
struct SharedStore(Arc<DashMap<String, InMemoryState>>);

impl StateStore for SharedStore {
    type Key = String;

    fn measure_and_replace<T, F, E>(&self, key: &String, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        self.0.measure_and_replace(key, f)
    }
}

impl ShrinkableKeyedStateStore<String> for SharedStore {
    fn retain_recent(&self, drop_below: Nanos) {
        ShrinkableKeyedStateStore::retain_recent(&*self.0, drop_below);
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Buckets of one rate, by key.
#[derive(Debug)]
pub struct Buckets {
    limiter: RateLimiter<String, SharedStore, DefaultClock>,
    store: SharedStore,
    clock: DefaultClock,
    max_keys: usize,
    checks: AtomicU64,
}

impl Buckets {
    /// `None` when `rate` is not valid (see [`Rate::is_valid`]).
    pub fn new(rate: Rate, max_keys: usize) -> Option<Self> {
        let clock = DefaultClock::default();
        let store = SharedStore::default();
        Some(Self {
            limiter: RateLimiter::new(rate.quota()?, store.clone(), clock.clone()),
            store,
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
        let newcomer_when_full =
            self.store.0.len() >= self.max_keys && !self.store.0.contains_key(key);
        let key = if newcomer_when_full {
            OVERFLOW_KEY
        } else {
            key
        };
        let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        let key = key.to_owned();
        match self.limiter.check_key_n(&key, n) {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(not_until)) => Err(not_until.wait_time_from(self.clock.now())),
            // More than the burst at once can never conform; callers ask
            // for one call at a time, so this is a bucket of burst 0.
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
    fn known_callers_keep_their_bucket_when_the_table_is_full() {
        let buckets = Buckets::new(
            Rate {
                per_second: 1.0,
                burst: 5,
            },
            3,
        )
        .expect("valid");
        assert!(buckets.take("alice", 1).is_ok());
        for i in 0..50 {
            let _ = buckets.take(&format!("stranger-{i}"), 1);
        }
        for _ in 0..4 {
            assert!(
                buckets.take("alice", 1).is_ok(),
                "alice keeps her own burst"
            );
        }
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
