//! The resolver against a fake Kubernetes API server speaking list + watch
//! (no kube-apiserver can run here): resources are added, changed and
//! deleted live; the API then fails and the state goes stale, then closed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::sync::broadcast;

use super::*;

#[derive(Clone)]
struct Fake {
    objects: Arc<Mutex<Vec<Value>>>,
    events: broadcast::Sender<Option<String>>,
    failing: Arc<AtomicBool>,
    version: Arc<Mutex<u64>>,
}

impl Fake {
    fn bump(&self) -> String {
        let mut version = self.version.lock().expect("lock");
        *version += 1;
        version.to_string()
    }

    fn emit(&self, kind: &str, mut object: Value) {
        object["metadata"]["resourceVersion"] = json!(self.bump());
        let mut objects = self.objects.lock().expect("lock");
        let name = object["metadata"]["name"].clone();
        objects.retain(|o| o["metadata"]["name"] != name);
        if kind != "DELETED" {
            objects.push(object.clone());
        }
        let _ = self
            .events
            .send(Some(json!({"type": kind, "object": object}).to_string()));
    }
}

async fn list_or_watch(
    State(fake): State<Fake>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if fake.failing.load(Ordering::SeqCst) {
        return (StatusCode::INTERNAL_SERVER_ERROR, "etcd is down").into_response();
    }
    if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
        let receiver = fake.events.subscribe();
        let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
            match receiver.recv().await {
                Ok(Some(line)) => Some((Ok::<_, std::io::Error>(format!("{line}\n")), receiver)),
                _ => None,
            }
        });
        return Response::new(Body::from_stream(stream));
    }
    let version = fake.version.lock().expect("lock").to_string();
    let items = fake.objects.lock().expect("lock").clone();
    axum::Json(json!({
        "apiVersion": "observability.giantswarm.io/v1alpha2",
        "kind": "GrafanaOrganizationList",
        "metadata": {"resourceVersion": version},
        "items": items,
    }))
    .into_response()
}

fn org(name: &str, tenants: Value, rbac: Value) -> Value {
    json!({
        "apiVersion": "observability.giantswarm.io/v1alpha2",
        "kind": "GrafanaOrganization",
        "metadata": {"name": name, "resourceVersion": "0"},
        "spec": {"displayName": name, "tenants": tenants, "rbac": rbac},
    })
}

async fn start(max_staleness: Duration) -> (Fake, Arc<GrafanaOrgResolver>) {
    let (events, _) = broadcast::channel(64);
    let fake = Fake {
        objects: Arc::default(),
        events,
        failing: Arc::default(),
        version: Arc::new(Mutex::new(1)),
    };
    // v1alpha1 shape: tenants are plain strings
    fake.objects.lock().expect("lock").push(org(
        "team-a",
        json!(["tenant-a"]),
        json!({"viewers": ["team-a"]}),
    ));
    let router = Router::new()
        .route(
            "/apis/observability.giantswarm.io/v1alpha2/grafanaorganizations",
            get(list_or_watch),
        )
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    let resolver = GrafanaOrgResolver::start_probing(
        client,
        "v1alpha2",
        max_staleness,
        &mut Registry::default(),
        Duration::from_millis(300),
    );
    (fake, resolver)
}

async fn tenants(resolver: &GrafanaOrgResolver, groups: &[&str]) -> Result<Vec<String>, String> {
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    resolver
        .resolve(&groups)
        .await
        .map(|set| set.as_slice().to_vec())
        .map_err(|e| e.to_string())
}

/// Polls until `check` holds (the watch is asynchronous), for at most 5 s.
async fn eventually(mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 5 s");
}

#[tokio::test]
async fn follows_resources_live() {
    let (fake, resolver) = start(Duration::from_secs(60)).await;
    eventually(async || resolver.health().is_ok()).await;
    assert_eq!(
        tenants(&resolver, &["team-a"]).await,
        Ok(vec!["tenant-a".into()])
    );
    assert_eq!(
        tenants(&resolver, &["team"]).await,
        Ok(vec![]),
        "groups match exactly"
    );

    // v1alpha2 shape: tenants are {name, types}
    fake.emit(
        "ADDED",
        org(
            "team-b",
            json!([{"name": "tenant-b", "types": ["data"]}, {"name": "tenant-c", "types": ["alerting"]}]),
            json!({"editors": ["team-b"], "admins": ["platform"]}),
        ),
    );
    eventually(async || {
        tenants(&resolver, &["team-b"]).await == Ok(vec!["tenant-b".into(), "tenant-c".into()])
    })
    .await;
    assert_eq!(
        tenants(&resolver, &["platform", "team-a"]).await,
        Ok(vec![
            "tenant-a".into(),
            "tenant-b".into(),
            "tenant-c".into()
        ]),
        "union over every organization a group belongs to"
    );

    fake.emit(
        "MODIFIED",
        org(
            "team-a",
            json!(["tenant-a", "tenant-x"]),
            json!({"viewers": ["team-a"]}),
        ),
    );
    eventually(async || {
        tenants(&resolver, &["team-a"]).await == Ok(vec!["tenant-a".into(), "tenant-x".into()])
    })
    .await;

    fake.emit("DELETED", org("team-b", json!([]), json!({})));
    eventually(async || tenants(&resolver, &["team-b"]).await == Ok(vec![])).await;

    // a tenant name Mimir would refuse never reaches a request
    fake.emit(
        "ADDED",
        org("evil", json!(["a|b", "ok"]), json!({"viewers": ["evil"]})),
    );
    eventually(async || tenants(&resolver, &["evil"]).await == Ok(vec!["ok".into()])).await;
}

#[tokio::test]
async fn api_failure_serves_stale_state_then_fails_closed() {
    let (fake, resolver) = start(Duration::from_secs(2)).await;
    eventually(async || resolver.health().is_ok() && fake.events.receiver_count() > 0).await;
    fake.failing.store(true, Ordering::SeqCst);
    let _ = fake.events.send(None); // ends the open watch: the watcher must go back to the API
    eventually(async || resolver.sync.lock().expect("lock").failing_since.is_some()).await;
    assert_eq!(
        tenants(&resolver, &["team-a"]).await,
        Ok(vec!["tenant-a".into()]),
        "within max_staleness the last state is served"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let refused = tenants(&resolver, &["team-a"])
        .await
        .expect_err("stale beyond the bound");
    assert!(refused.contains("max_staleness"), "{refused}");
    fake.failing.store(false, Ordering::SeqCst);
    eventually(async || resolver.health().is_ok()).await;
    assert_eq!(
        tenants(&resolver, &["team-a"]).await,
        Ok(vec!["tenant-a".into()]),
        "recovers"
    );
}
