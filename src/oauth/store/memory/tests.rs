//! The in-memory store's semantics, which the Valkey store shares.
use super::*;
use crate::oauth::store::UserInfo;

fn grant(family: &str) -> RefreshGrant {
    RefreshGrant {
        family: family.into(),
        client_id: "c".into(),
        scope: String::new(),
        resource: "r".into(),
        user: UserInfo {
            subject: "alice".into(),
            groups: vec![],
            email: None,
        },
        upstream: None,
        upstream_refresh_at: 0,
        used_at: None,
        started_at: 0,
    }
}

const TTL: Duration = Duration::from_secs(60);
const GRACE: Duration = Duration::from_secs(30);

fn rotation<'a>(old: &'a str, new: &'a str, grant: &'a RefreshGrant, now_ms: u64) -> Rotation<'a> {
    Rotation {
        old_hash: old,
        new_hash: new,
        new: grant,
        ttl: TTL,
        now_ms,
        grace: GRACE,
    }
}

#[tokio::test]
async fn rotation_race_and_reuse() {
    let store = MemoryStore::default();
    store.put_refresh("a", &grant("f"), TTL).await.expect("put");
    // (old, new, now_ms, expected outcome, why), in order.
    let steps = [
        ("a", "b", 1_000_000, "Done", "a first rotation"),
        (
            "a",
            "b2",
            1_010_000,
            "Raced",
            "within the grace window the family survives",
        ),
        (
            "b",
            "c",
            1_011_000,
            "Done",
            "the winner's token still works",
        ),
        (
            "a",
            "x",
            2_000_000,
            "Reused",
            "a spent token after the grace window",
        ),
        (
            "c",
            "d",
            2_001_000,
            "Revoked",
            "reuse revoked the whole family",
        ),
        ("nope", "e", 2_002_000, "Unknown", "a token never issued"),
    ];
    for (old, new, now_ms, expected, why) in steps {
        let outcome = store
            .rotate_refresh(rotation(old, new, &grant("f"), now_ms))
            .await
            .expect("rotates");
        assert_eq!(format!("{outcome:?}"), expected, "{why}");
    }
}

#[tokio::test]
async fn codes_are_single_use() {
    let store = MemoryStore::default();
    let code = CodeGrant {
        client_id: "c".into(),
        redirect_uri: "https://x/cb".into(),
        code_challenge: "ch".into(),
        scope: String::new(),
        resource: "r".into(),
        user: grant("f").user,
        upstream: None,
        family: "f".into(),
        redeemed: false,
    };
    store.put_code("k", &code, TTL).await.expect("put");
    assert!(matches!(
        store.redeem_code("k").await.expect("first"),
        Redeemed::Fresh(_)
    ));
    assert!(matches!(
        store.redeem_code("k").await.expect("second"),
        Redeemed::Replayed { family } if family == "f"
    ));
    assert!(matches!(
        store.redeem_code("other").await.expect("unknown"),
        Redeemed::Unknown
    ));
    assert!(store.take_pending("p").await.expect("none").is_none());
}

#[tokio::test(start_paused = true)]
async fn the_timer_sweep_drops_expired_records_and_idle_clients() {
    let store = MemoryStore::default();
    let client = ClientRecord {
        client_id: "c".into(),
        secret_hash: None,
        redirect_uris: vec![],
        client_name: None,
        auth_method: "none".into(),
        scope: None,
    };
    store.put_client(&client, TTL).await.expect("put");
    store.put_refresh("r", &grant("f"), TTL).await.expect("put");
    store.remember_consent("k", TTL).await.expect("put");
    tokio::time::advance(TTL / 2).await;
    assert!(store.client("c", TTL).await.expect("get").is_some());
    tokio::time::advance(TTL * 3 / 4).await;
    store.sweep();
    assert!(
        store.client("c", TTL).await.expect("get").is_some(),
        "use restarts the idle clock"
    );
    let maps = store.maps.lock().expect("lock");
    assert!(maps.refresh.is_empty() && maps.consents.is_empty());
}
