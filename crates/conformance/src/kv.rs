//! The conformance suite of the `KeyValueStore` port. The macro's expression yields
//! `(tenant A, tenant B, store)`: two tenants that exist in the backend.

use chrono::{Duration, TimeZone, Utc};
use morningai_core::TenantCtx;
use morningai_core::kv::{KeyValueStore, KvItem};
use serde_json::json;
use std::sync::Arc;

pub type Setup = (TenantCtx, TenantCtx, Arc<dyn KeyValueStore>);

#[macro_export]
macro_rules! kv_conformance {
    ($make:expr) => {
        $crate::kv_conformance!($make;
            items_round_trip_by_namespace_and_key,
            prefixes_ttl_and_tenants_bound_what_is_seen,
        );
    };
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let setup: $crate::kv::Setup = $make.await;
                $crate::kv::$case(setup).await;
            }
        )*
    };
}

fn ns(labels: &[&str]) -> Vec<String> {
    labels.iter().map(|s| s.to_string()).collect()
}

fn item(labels: &[&str], key: &str, value: serde_json::Value, minute: i64) -> KvItem {
    let at = Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap() + Duration::minutes(minute);
    KvItem {
        namespace: ns(labels),
        key: key.into(),
        value,
        created_at: at,
        updated_at: at,
        ttl_minutes: None,
        expires_at: None,
        embedding: None,
    }
}

pub async fn items_round_trip_by_namespace_and_key((a, b, kv): Setup) {
    let now = Utc.with_ymd_and_hms(2026, 5, 2, 0, 0, 0).unwrap();
    let mut first = item(
        &["users", "u1", "memories"],
        "m1",
        json!({"text": "likes tea"}),
        0,
    );
    first.embedding = Some(vec![0.6, 0.8]);
    kv.kv_put(a, &first).await.unwrap();
    assert_eq!(
        kv.kv_get(a, &first.namespace, "m1", now).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        kv.kv_get(a, &first.namespace, "m2", now).await.unwrap(),
        None
    );
    assert_eq!(
        kv.kv_get(a, &ns(&["users", "u1"]), "m1", now)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        kv.kv_get(b, &first.namespace, "m1", now).await.unwrap(),
        None,
        "tenant B"
    );

    // Replacing keeps created_at.
    let second = item(
        &["users", "u1", "memories"],
        "m1",
        json!({"text": "likes coffee"}),
        5,
    );
    kv.kv_put(a, &second).await.unwrap();
    let got = kv
        .kv_get(a, &first.namespace, "m1", now)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.value, json!({"text": "likes coffee"}));
    assert_eq!(
        (got.created_at, got.updated_at),
        (first.created_at, second.updated_at)
    );
    assert_eq!(got.embedding, None);

    assert!(
        !kv.kv_delete(b, &first.namespace, "m1").await.unwrap(),
        "B cannot delete A's item"
    );
    assert!(kv.kv_delete(a, &first.namespace, "m1").await.unwrap());
    assert!(!kv.kv_delete(a, &first.namespace, "m1").await.unwrap());
    assert_eq!(
        kv.kv_get(a, &first.namespace, "m1", now).await.unwrap(),
        None
    );
}

pub async fn prefixes_ttl_and_tenants_bound_what_is_seen((a, b, kv): Setup) {
    let now = Utc.with_ymd_and_hms(2026, 5, 1, 13, 0, 0).unwrap();
    for (i, (labels, key)) in [
        (&["users", "u1", "memories"][..], "m1"),
        (&["users", "u1", "prefs"][..], "p1"),
        (&["users", "u10"][..], "x"),
        (&["docs"][..], "d"),
    ]
    .into_iter()
    .enumerate()
    {
        kv.kv_put(a, &item(labels, key, json!({"i": i}), i as i64))
            .await
            .unwrap();
    }
    kv.kv_put(b, &item(&["users", "u1", "memories"], "b1", json!({}), 0))
        .await
        .unwrap();
    // Expired 10 minutes ago, and one with a TTL still alive.
    let mut expired = item(&["users", "u1", "memories"], "old", json!({}), 0);
    (expired.ttl_minutes, expired.expires_at) = (Some(1.0), Some(now - Duration::minutes(10)));
    kv.kv_put(a, &expired).await.unwrap();
    let mut living = item(&["users", "u1", "memories"], "ttl", json!({}), 10);
    (living.ttl_minutes, living.expires_at) = (Some(30.0), Some(now + Duration::minutes(5)));
    kv.kv_put(a, &living).await.unwrap();

    let keys = |items: Vec<KvItem>| items.into_iter().map(|i| i.key).collect::<Vec<_>>();
    assert_eq!(
        keys(
            kv.kv_scan(a, &ns(&["users", "u1"]), now, 100)
                .await
                .unwrap()
        ),
        ["ttl", "p1", "m1"],
        "newest first; not u10, not expired, not tenant B's"
    );
    assert_eq!(
        keys(kv.kv_scan(a, &[], now, 100).await.unwrap()),
        ["ttl", "d", "x", "p1", "m1"]
    );
    assert_eq!(
        keys(kv.kv_scan(a, &[], now, 2).await.unwrap()),
        ["ttl", "d"]
    );
    assert_eq!(keys(kv.kv_scan(b, &[], now, 100).await.unwrap()), ["b1"]);
    assert_eq!(
        kv.kv_namespaces(a, now).await.unwrap(),
        vec![
            ns(&["docs"]),
            ns(&["users", "u1", "memories"]),
            ns(&["users", "u1", "prefs"]),
            ns(&["users", "u10"])
        ]
    );
    assert_eq!(
        kv.kv_get(a, &expired.namespace, "old", now).await.unwrap(),
        None
    );

    // A refresh moves the expiry to now + TTL; items without a TTL stay without.
    let later = now + Duration::minutes(20);
    kv.kv_refresh(
        a,
        &[
            (living.namespace.clone(), "ttl".into()),
            (ns(&["docs"]), "d".into()),
        ],
        now,
    )
    .await
    .unwrap();
    let refreshed = kv
        .kv_get(a, &living.namespace, "ttl", later)
        .await
        .unwrap()
        .expect("alive after refresh");
    assert_eq!(refreshed.expires_at, Some(now + Duration::minutes(30)));
    assert_eq!(
        kv.kv_get(a, &ns(&["docs"]), "d", later)
            .await
            .unwrap()
            .unwrap()
            .expires_at,
        None
    );

    // Re-putting an expired key starts a new item.
    let mut reborn = item(
        &["users", "u1", "memories"],
        "old",
        json!({"new": true}),
        50,
    );
    reborn.created_at = now;
    kv.kv_put(a, &reborn).await.unwrap();
    assert_eq!(
        kv.kv_get(a, &reborn.namespace, "old", now)
            .await
            .unwrap()
            .unwrap()
            .created_at,
        now
    );
}
