//! Signing keys: an unknown key id refetches the key set once (then rate
//! limits), and a rotation picks up the new key while the old one lasts.

use super::*;

#[tokio::test]
async fn unknown_kids_refetch_once_then_rate_limit() {
    let key = es256_key("k1");
    let h = harness(&[&key], |_| {});
    let stranger = es256_key("k9");
    for _ in 0..20 {
        refused(&h, &sign(&stranger, &claims()), "key id").await;
    }
    assert_eq!(
        h.jwks.fetches.load(Ordering::SeqCst),
        1,
        "one fetch, then the minimum interval holds"
    );
}

#[tokio::test]
async fn rotation_picks_up_the_new_key_and_keeps_the_old() {
    let old = es256_key("old");
    let h = harness(&[&old], |c| {
        c.issuers[0].jwks_min_refetch_interval = crate::duration::ConfigDuration(Duration::ZERO);
    });
    let (status, _, _) = send_bearer(&h, &old, &claims()).await;
    assert_eq!(status, StatusCode::OK);
    let new = es256_key("new");
    *h.jwks.keys.lock().expect("lock") = vec![new.jwk.clone()];
    let (status, _, _) = send_bearer(&h, &new, &claims()).await;
    assert_eq!(status, StatusCode::OK, "new kid triggers a refetch");
    let (status, _, _) = send_bearer(&h, &old, &claims()).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the retired key stays through the rotation"
    );
}

/// Two first requests at once: the second waits for the first's key fetch
/// instead of refusing a good token (it did: "no signing key matches").
#[tokio::test]
async fn concurrent_first_requests_share_one_fetch() {
    let key = es256_key("k1");
    let h = harness(&[&key], |_| {});
    let bearer = format!("Bearer {}", sign(&key, &claims()));
    let (first, second) = tokio::join!(
        send(&h, "authorization", &bearer),
        send(&h, "authorization", &bearer),
    );
    assert_eq!((first.0, second.0), (StatusCode::OK, StatusCode::OK));
    assert_eq!(h.jwks.fetches.load(Ordering::SeqCst), 1);
}
