//! The in-process store: one replica, lost on restart.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::{
    ApprovalRequest, ClientRecord, CodeGrant, Fut, PendingLogin, Redeemed, RefreshGrant, Rotated,
    Rotation, Store, StoreError,
};

/// Registered clients kept at most (registration is rate-limited per
/// address; this bounds what many addresses together can make us hold).
const MAX_CLIENTS: usize = 100_000;

#[derive(Default)]
struct Maps {
    clients: HashMap<String, (Instant, ClientRecord)>,
    pending: HashMap<String, (Instant, PendingLogin)>,
    approvals: HashMap<String, (Instant, ApprovalRequest)>,
    consents: HashMap<String, (Instant, ())>,
    codes: HashMap<String, (Instant, CodeGrant)>,
    refresh: HashMap<String, (Instant, RefreshGrant)>,
    revoked: HashMap<String, (Instant, ())>,
    singletons: HashMap<String, String>,
}

/// State in a mutex-guarded map; expired entries are dropped as they are
/// met, swept when maps grow, and by [`Store::sweep`] on a timer.
pub struct MemoryStore {
    maps: Mutex<Maps>,
    /// How long a revoked family stays revoked.
    revoked_ttl: Duration,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new(Duration::from_secs(30 * 24 * 3600))
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> Fut<'a, T> {
    Box::pin(std::future::ready(Ok(value)))
}

fn live<T: Clone>(map: &HashMap<String, (Instant, T)>, key: &str) -> Option<T> {
    map.get(key)
        .filter(|(until, _)| *until > Instant::now())
        .map(|(_, v)| v.clone())
}

fn sweep<T>(map: &mut HashMap<String, (Instant, T)>) {
    if map.len() > 10_000 {
        drop_expired(map);
    }
}

fn drop_expired<T>(map: &mut HashMap<String, (Instant, T)>) {
    let now = Instant::now();
    map.retain(|_, (until, _)| *until > now);
}

fn take<T>(map: &mut HashMap<String, (Instant, T)>, key: &str) -> Option<T> {
    map.remove(key)
        .filter(|(until, _)| *until > Instant::now())
        .map(|(_, v)| v)
}

impl MemoryStore {
    /// A store keeping revocations for `revoked_ttl` (at least as long as
    /// any access or refresh token lives).
    pub fn new(revoked_ttl: Duration) -> Self {
        Self {
            maps: Mutex::default(),
            revoked_ttl,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Maps) -> T) -> T {
        let mut maps = self.maps.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut maps)
    }
}

impl Store for MemoryStore {
    fn put_client(&self, client: &ClientRecord, idle: Duration) -> Fut<'_, ()> {
        let result = self.with(|m| {
            if m.clients.len() >= MAX_CLIENTS {
                drop_expired(&mut m.clients);
                if m.clients.len() >= MAX_CLIENTS {
                    return Err(StoreError(format!(
                        "{MAX_CLIENTS} registered clients: no room for more until some expire"
                    )));
                }
            }
            m.clients.insert(
                client.client_id.clone(),
                (Instant::now() + idle, client.clone()),
            );
            Ok(())
        });
        Box::pin(std::future::ready(result))
    }

    fn client(&self, client_id: &str, idle: Duration) -> Fut<'_, Option<ClientRecord>> {
        ready(self.with(|m| {
            let (until, client) = m.clients.get_mut(client_id)?;
            if *until <= Instant::now() {
                return None;
            }
            *until = Instant::now() + idle;
            Some(client.clone())
        }))
    }

    fn put_pending(&self, state_hash: &str, pending: &PendingLogin, ttl: Duration) -> Fut<'_, ()> {
        self.with(|m| {
            sweep(&mut m.pending);
            m.pending
                .insert(state_hash.into(), (Instant::now() + ttl, pending.clone()))
        });
        ready(())
    }

    fn take_pending(&self, state_hash: &str) -> Fut<'_, Option<PendingLogin>> {
        ready(self.with(|m| take(&mut m.pending, state_hash)))
    }

    fn put_approval(
        &self,
        csrf_hash: &str,
        request: &ApprovalRequest,
        ttl: Duration,
    ) -> Fut<'_, ()> {
        self.with(|m| {
            sweep(&mut m.approvals);
            m.approvals
                .insert(csrf_hash.into(), (Instant::now() + ttl, request.clone()))
        });
        ready(())
    }

    fn take_approval(&self, csrf_hash: &str) -> Fut<'_, Option<ApprovalRequest>> {
        ready(self.with(|m| take(&mut m.approvals, csrf_hash)))
    }

    fn remember_consent(&self, consent_hash: &str, ttl: Duration) -> Fut<'_, ()> {
        self.with(|m| {
            sweep(&mut m.consents);
            m.consents
                .insert(consent_hash.into(), (Instant::now() + ttl, ()))
        });
        ready(())
    }

    fn consent_remembered(&self, consent_hash: &str) -> Fut<'_, bool> {
        ready(self.with(|m| live(&m.consents, consent_hash).is_some()))
    }

    fn put_code(&self, code_hash: &str, grant: &CodeGrant, ttl: Duration) -> Fut<'_, ()> {
        self.with(|m| {
            sweep(&mut m.codes);
            m.codes
                .insert(code_hash.into(), (Instant::now() + ttl, grant.clone()))
        });
        ready(())
    }

    fn redeem_code(&self, code_hash: &str) -> Fut<'_, Redeemed> {
        ready(self.with(|m| match m.codes.get_mut(code_hash) {
            Some((until, grant)) if *until > Instant::now() => {
                if grant.redeemed {
                    Redeemed::Replayed {
                        family: grant.family.clone(),
                    }
                } else {
                    grant.redeemed = true;
                    Redeemed::Fresh(Box::new(grant.clone()))
                }
            }
            _ => Redeemed::Unknown,
        }))
    }

    fn put_refresh(&self, token_hash: &str, grant: &RefreshGrant, ttl: Duration) -> Fut<'_, ()> {
        self.with(|m| {
            sweep(&mut m.refresh);
            m.refresh
                .insert(token_hash.into(), (Instant::now() + ttl, grant.clone()))
        });
        ready(())
    }

    fn rotate_refresh(&self, r: Rotation<'_>) -> Fut<'_, Rotated> {
        ready(self.with(|m| {
            let Some(old) = live(&m.refresh, r.old_hash) else {
                return Rotated::Unknown;
            };
            if live(&m.revoked, &old.family).is_some() {
                return Rotated::Revoked;
            }
            if let Some(used) = old.used_at {
                if r.now_ms.saturating_sub(used) <= r.grace.as_millis() as u64 {
                    return Rotated::Raced;
                }
                m.revoked
                    .insert(old.family.clone(), (Instant::now() + self.revoked_ttl, ()));
                return Rotated::Reused;
            }
            if let Some((_, record)) = m.refresh.get_mut(r.old_hash) {
                record.used_at = Some(r.now_ms);
            }
            m.refresh
                .insert(r.new_hash.into(), (Instant::now() + r.ttl, r.new.clone()));
            Rotated::Done
        }))
    }

    fn refresh(&self, token_hash: &str) -> Fut<'_, Option<RefreshGrant>> {
        ready(self.with(|m| live(&m.refresh, token_hash)))
    }

    fn revoke_family(&self, family: &str) -> Fut<'_, ()> {
        let until = Instant::now() + self.revoked_ttl;
        self.with(|m| m.revoked.insert(family.into(), (until, ())));
        ready(())
    }

    fn family_revoked(&self, family: &str) -> Fut<'_, bool> {
        ready(self.with(|m| live(&m.revoked, family).is_some()))
    }

    fn sweep(&self) {
        self.with(|m| {
            drop_expired(&mut m.clients);
            drop_expired(&mut m.pending);
            drop_expired(&mut m.approvals);
            drop_expired(&mut m.consents);
            drop_expired(&mut m.codes);
            drop_expired(&mut m.refresh);
            drop_expired(&mut m.revoked);
        });
    }

    fn get_or_init_singleton(&self, name: &str, value: &str, _ttl: Duration) -> Fut<'_, String> {
        ready(self.with(|m| {
            m.singletons
                .entry(name.into())
                .or_insert_with(|| value.into())
                .clone()
        }))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(error: serde_json::Error) -> Self {
        StoreError(format!("corrupt record: {error}"))
    }
}

#[cfg(test)]
mod tests;
