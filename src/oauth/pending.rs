//! A bound on logins waiting at the provider: in total and per client
//! address, per replica. Each one holds a store record until it returns or
//! expires, and starting one needs no credential, so a stranger must not be
//! able to make us (or Valkey) hold an unbounded number.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Why a login cannot start now.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BudgetError {
    #[error(
        "too many logins from this address are waiting at the identity provider: finish or abandon one, then try again in a few minutes"
    )]
    Address,
    #[error("too many logins are waiting at the identity provider: try again in a few minutes")]
    Total,
}

#[derive(Default)]
struct Entries {
    /// Store key of each login → when it expires and who started it.
    logins: HashMap<String, (Instant, IpAddr)>,
    per_address: HashMap<IpAddr, usize>,
}

/// Counts the logins this replica started that are neither back nor
/// expired; memory is bounded by `max_total`.
pub struct PendingBudget {
    max_total: usize,
    max_per_address: usize,
    ttl: Duration,
    entries: Mutex<Entries>,
}

impl PendingBudget {
    /// A budget whose logins count for `ttl` unless released earlier.
    pub fn new(max_total: usize, max_per_address: usize, ttl: Duration) -> Self {
        Self {
            max_total,
            max_per_address,
            ttl,
            entries: Mutex::default(),
        }
    }

    /// Counts a new login of `address` under `key`, or says why not.
    pub fn admit(&self, key: &str, address: IpAddr) -> Result<(), BudgetError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let used = entries.per_address.get(&address).copied().unwrap_or(0);
        if used >= self.max_per_address || entries.logins.len() >= self.max_total {
            Self::expire(&mut entries, now);
        }
        if entries.per_address.get(&address).copied().unwrap_or(0) >= self.max_per_address {
            return Err(BudgetError::Address);
        }
        if entries.logins.len() >= self.max_total {
            return Err(BudgetError::Total);
        }
        entries
            .logins
            .insert(key.to_owned(), (now + self.ttl, address));
        *entries.per_address.entry(address).or_default() += 1;
        Ok(())
    }

    /// The login under `key` came back (or was refused): it no longer counts.
    pub fn release(&self, key: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, address)) = entries.logins.remove(key) {
            Self::forget(&mut entries, address);
        }
    }

    /// Drops expired logins (also run on a timer).
    pub fn sweep(&self) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        Self::expire(&mut entries, Instant::now());
    }

    fn expire(entries: &mut Entries, now: Instant) {
        let expired: Vec<(String, IpAddr)> = entries
            .logins
            .iter()
            .filter(|(_, (until, _))| *until <= now)
            .map(|(key, (_, address))| (key.clone(), *address))
            .collect();
        for (key, address) in expired {
            entries.logins.remove(&key);
            Self::forget(entries, address);
        }
    }

    fn forget(entries: &mut Entries, address: IpAddr) {
        if let Some(count) = entries.per_address.get_mut(&address) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                entries.per_address.remove(&address);
            }
        }
    }

    /// Logins counted now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.logins.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(600);

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([203, 0, 113, last])
    }

    #[tokio::test(start_paused = true)]
    async fn per_address_and_total_caps_until_released_or_expired() {
        let budget = PendingBudget::new(3, 2, TTL);
        assert_eq!(budget.admit("a1", ip(1)), Ok(()));
        assert_eq!(budget.admit("a2", ip(1)), Ok(()));
        assert_eq!(budget.admit("a3", ip(1)), Err(BudgetError::Address));
        assert_eq!(budget.admit("b1", ip(2)), Ok(()));
        assert_eq!(budget.admit("c1", ip(3)), Err(BudgetError::Total));
        budget.release("a1");
        assert_eq!(
            budget.admit("a3", ip(1)),
            Ok(()),
            "a returned login frees its slot"
        );
        budget.release("unknown");
        assert_eq!(budget.len(), 3);
        tokio::time::advance(TTL).await;
        assert_eq!(
            budget.admit("c1", ip(3)),
            Ok(()),
            "expired logins stop counting"
        );
        budget.sweep();
        assert_eq!(budget.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_from_many_addresses_stays_within_the_total() {
        let budget = PendingBudget::new(100, 5, TTL);
        let admitted = (0..10_000u32)
            .filter(|i| {
                let address = IpAddr::from(i.to_be_bytes());
                budget.admit(&format!("k{i}"), address).is_ok()
            })
            .count();
        assert_eq!(admitted, 100);
        assert_eq!(budget.len(), 100);
    }
}
