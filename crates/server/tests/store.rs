//! LangGraph's long-term store API (`/store/*`) on both backends: put/get/delete by
//! namespace and key, prefix search with filters and pagination, semantic search with the
//! real MiniLM weights (and word matching without a model), namespaces with prefix, suffix
//! and depth, TTLs, tenant isolation, and bad input.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

mod semantic {
    use super::*;
    running_on_both_backends!(super::with_model; store_api_end_to_end);
}

mod lexical {
    use super::*;
    on_both_backends!(without_a_model_queries_match_words);
}

async fn put(app: &TestApp, who: &Account, ns: &[&str], key: &str, value: Value) {
    let (s, b) = app
        .call(
            Method::PUT,
            "/store/items",
            Some(&who.access),
            Some(json!({"namespace": ns, "key": key, "value": value})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
}

async fn search(app: &TestApp, who: &Account, body: Value) -> Vec<Value> {
    let (s, b) = app.post("/store/items/search", &who.access, body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["items"].as_array().unwrap().clone()
}

async fn namespaces(app: &TestApp, who: &Account, body: Value) -> Value {
    let (s, r) = app.post("/store/namespaces", &who.access, body).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    r["namespaces"].clone()
}

fn keys(items: &[Value]) -> Vec<&str> {
    items.iter().map(|i| i["key"].as_str().unwrap()).collect()
}

async fn store_api_end_to_end(app: TestApp) {
    let a = app.signup("store-a").await;
    let b = app.signup("store-b").await;
    let mem = ["users", "alice", "memories"];
    put(
        &app,
        &a,
        &mem,
        "tea",
        json!({"text": "Alice drinks green tea every morning", "kind": "habit", "n": 1}),
    )
    .await;
    put(
        &app,
        &a,
        &mem,
        "bike",
        json!({"text": "Alice cycles to the office along the river", "kind": "habit", "n": 2}),
    )
    .await;
    put(
        &app,
        &a,
        &mem,
        "rust",
        json!({"text": "Alice writes services in Rust", "kind": "work", "n": 3}),
    )
    .await;
    put(
        &app,
        &a,
        &["users", "alice", "prefs"],
        "theme",
        json!({"text": "dark mode"}),
    )
    .await;
    put(
        &app,
        &a,
        &["users", "alicia"],
        "x",
        json!({"text": "someone else"}),
    )
    .await;
    put(
        &app,
        &b,
        &mem,
        "secret",
        json!({"text": "tenant B's own tea note"}),
    )
    .await;

    // Get by namespace (dotted) and key.
    let (s, item) = app
        .get(
            "/store/items?namespace=users.alice.memories&key=tea",
            &a.access,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{item}");
    assert_eq!(item["namespace"], json!(mem));
    assert_eq!(item["value"]["kind"], "habit");
    assert!(item["created_at"].is_string() && item["updated_at"].is_string());
    let (s, e) = app
        .get(
            "/store/items?namespace=users.alice.memories&key=tea",
            &b.access,
        )
        .await;
    assert_problem(s, &e, StatusCode::NOT_FOUND, "not_found");

    // Semantic search ranks by meaning: a question about drinks finds the tea habit.
    let hits = search(
        &app,
        &a,
        json!({"namespace_prefix": ["users", "alice"], "query": "what beverage does she like?"}),
    )
    .await;
    assert_eq!(hits[0]["key"], "tea", "{hits:?}");
    assert!(hits[0]["score"].as_f64().unwrap() > hits[1]["score"].as_f64().unwrap());
    let hits = search(
        &app,
        &a,
        json!({"namespace_prefix": ["users"], "query": "commute by bicycle", "limit": 1}),
    )
    .await;
    assert_eq!(keys(&hits), ["bike"]);
    // An item written with index=false is never embedded; it is still found by prefix.
    let (s, _) = app
        .call(Method::PUT, "/store/items", Some(&a.access),
              Some(json!({"namespace": mem, "key": "raw", "value": {"text": "green tea"}, "index": false})))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);

    // Prefix, filters and pagination (newest first without a query).
    let all = search(
        &app,
        &a,
        json!({"namespace_prefix": ["users", "alice"], "limit": 100}),
    )
    .await;
    assert_eq!(
        keys(&all),
        ["raw", "theme", "rust", "bike", "tea"],
        "not users.alicia"
    );
    let habits = search(
        &app,
        &a,
        json!({"namespace_prefix": mem, "filter": {"kind": "habit"}}),
    )
    .await;
    assert_eq!(keys(&habits), ["bike", "tea"]);
    let big = search(
        &app,
        &a,
        json!({"namespace_prefix": mem, "filter": {"n": {"$gte": 2}, "kind": {"$ne": "work"}}}),
    )
    .await;
    assert_eq!(keys(&big), ["bike"]);
    let page = search(
        &app,
        &a,
        json!({"namespace_prefix": ["users"], "limit": 2, "offset": 2}),
    )
    .await;
    assert_eq!(
        keys(&page),
        ["theme", "rust"],
        "raw, x, | theme, rust | bike, tea"
    );
    assert_eq!(
        keys(&search(&app, &b, json!({"query": "tea"})).await),
        ["secret"],
        "B sees only B's"
    );

    // Namespaces.
    let ns = |body: Value| namespaces(&app, &a, body);
    assert_eq!(
        ns(json!({})).await,
        json!([
            ["users", "alice", "memories"],
            ["users", "alice", "prefs"],
            ["users", "alicia"]
        ])
    );
    assert_eq!(
        ns(json!({"prefix": ["users", "alice"]})).await,
        json!([["users", "alice", "memories"], ["users", "alice", "prefs"]])
    );
    assert_eq!(
        ns(json!({"suffix": ["prefs"]})).await,
        json!([["users", "alice", "prefs"]])
    );
    assert_eq!(
        ns(json!({"prefix": ["users", "*", "memories"]})).await,
        json!([["users", "alice", "memories"]])
    );
    assert_eq!(
        ns(json!({"max_depth": 2})).await,
        json!([["users", "alice"], ["users", "alicia"]])
    );

    // Replace, TTL, delete.
    put(
        &app,
        &a,
        &mem,
        "tea",
        json!({"text": "Alice switched to coffee"}),
    )
    .await;
    let (_, item) = app
        .get(
            "/store/items?namespace=users.alice.memories&key=tea",
            &a.access,
        )
        .await;
    assert_eq!(item["value"], json!({"text": "Alice switched to coffee"}));
    // A 0.6 s TTL: alive at once (checked only if the machine got there in time), then gone.
    let written = std::time::Instant::now();
    let (s, _) = app
        .call(
            Method::PUT,
            "/store/items",
            Some(&a.access),
            Some(json!({"namespace": ["tmp"], "key": "short", "value": {"v": 1}, "ttl": 0.01})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .get(
            "/store/items?namespace=tmp&key=short&refresh_ttl=false",
            &a.access,
        )
        .await;
    if written.elapsed() < std::time::Duration::from_millis(600) {
        assert_eq!(s, StatusCode::OK, "alive within its 0.6 s");
    }
    loop {
        // Reads that refresh the TTL would keep it alive: these do not.
        let (s, _) = app
            .get(
                "/store/items?namespace=tmp&key=short&refresh_ttl=false",
                &a.access,
            )
            .await;
        if s == StatusCode::NOT_FOUND {
            break;
        }
        assert!(
            written.elapsed() < std::time::Duration::from_secs(10),
            "never expired"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        written.elapsed() >= std::time::Duration::from_millis(600),
        "expired early"
    );
    let del = json!({"namespace": mem, "key": "tea"});
    let (s, _) = app
        .call(
            Method::DELETE,
            "/store/items",
            Some(&b.access),
            Some(del.clone()),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::NO_CONTENT,
        "idempotent, and B's delete touches nothing of A's"
    );
    let (s, _) = app
        .get(
            "/store/items?namespace=users.alice.memories&key=tea",
            &a.access,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .call(Method::DELETE, "/store/items", Some(&a.access), Some(del))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app
        .get(
            "/store/items?namespace=users.alice.memories&key=tea",
            &a.access,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Bad input.
    for (body, field) in [
        (
            json!({"namespace": ["a.b"], "key": "k", "value": {}}),
            "namespace",
        ),
        (
            json!({"namespace": [], "key": "k", "value": {}}),
            "namespace",
        ),
        (json!({"namespace": ["a"], "key": "", "value": {}}), "key"),
        (
            json!({"namespace": ["a"], "key": "k", "value": {}, "ttl": -1}),
            "ttl",
        ),
    ] {
        let (s, e) = app
            .call(Method::PUT, "/store/items", Some(&a.access), Some(body))
            .await;
        assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(e["errors"][0]["field"], field, "{e}");
    }
    let (s, _) = app
        .call(
            Method::PUT,
            "/store/items",
            Some(&a.access),
            Some(json!({"namespace": ["a"], "key": "k", "value": [1, 2]})),
        )
        .await;
    assert!(s.is_client_error(), "a value must be an object");
    let (s, e) = app
        .post(
            "/store/items/search",
            &a.access,
            json!({"filter": {"n": {"$near": 1}}}),
        )
        .await;
    assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let (s, e) = app
        .post("/store/items/search", &a.access, json!({"limit": 0}))
        .await;
    assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    let viewer = app.member(&a, "store-viewer", "viewer").await;
    let (s, e) = app
        .call(
            Method::PUT,
            "/store/items",
            Some(&viewer.access),
            Some(json!({"namespace": ["a"], "key": "k", "value": {}})),
        )
        .await;
    assert_problem(s, &e, StatusCode::FORBIDDEN, "forbidden");
}

async fn without_a_model_queries_match_words(app: TestApp) {
    let a = app.signup("store-lex").await;
    put(
        &app,
        &a,
        &["notes"],
        "a",
        json!({"text": "the release checklist"}),
    )
    .await;
    put(
        &app,
        &a,
        &["notes"],
        "b",
        json!({"text": "deploy the release on friday"}),
    )
    .await;
    put(&app, &a, &["notes"], "c", json!({"text": "lunch menu"})).await;
    let hits = search(&app, &a, json!({"query": "deploy release"})).await;
    assert_eq!(keys(&hits[..2]), ["b", "a"], "{hits:?}");
    assert_eq!(hits[0]["score"], 1.0);
    assert_eq!(hits[2]["score"], 0.0);
}
