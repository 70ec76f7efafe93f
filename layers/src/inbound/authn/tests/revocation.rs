//! A revoked login's tokens are refused, also when the verification itself
//! was cached; an unknown revocation status fails closed.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;

use super::*;

/// Revoked sessions in memory; `None` answers as a store outage would.
struct Revoked(Mutex<Option<HashSet<String>>>);

impl RevocationCheck for Revoked {
    fn is_revoked<'a>(
        &'a self,
        principal: &'a Principal,
    ) -> Pin<Box<dyn Future<Output = Result<bool, String>> + Send + 'a>> {
        let answer = match &*self.0.lock().expect("lock") {
            Some(set) => Ok(principal
                .session
                .as_ref()
                .is_some_and(|sid| set.contains(sid))),
            None => Err("store unreachable".to_owned()),
        };
        Box::pin(std::future::ready(answer))
    }
}

#[tokio::test]
async fn a_revoked_session_is_refused_even_after_a_cached_verification() {
    let key = es256_key("k1");
    let revoked = Arc::new(Revoked(Mutex::new(Some(HashSet::new()))));
    let h = harness_with(&[&key], |_| {}, Some(revoked.clone()));
    let mut with_sid = claims();
    with_sid["sid"] = json!("family-1");
    let token = format!("Bearer {}", sign(&key, &with_sid));
    let (status, _, _) = send(&h, "authorization", &token).await;
    assert_eq!(status, StatusCode::OK, "not revoked yet");
    revoked
        .0
        .lock()
        .expect("lock")
        .as_mut()
        .expect("set")
        .insert("family-1".into());
    let (status, challenge, principal) = send(&h, "authorization", &token).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(principal.is_none());
    assert!(challenge.contains("revoked"), "{challenge}");
    let other = format!("Bearer {}", sign(&key, &claims()));
    assert_eq!(send(&h, "authorization", &other).await.0, StatusCode::OK);
    *revoked.0.lock().expect("lock") = None;
    let (status, challenge, _) = send(&h, "authorization", &other).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "unknown status fails closed"
    );
    assert!(
        challenge.contains("cannot check whether the token was revoked"),
        "{challenge}"
    );
}
