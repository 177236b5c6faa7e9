//! Vector memory over HTTP against the real server on both backends, with the real MiniLM
//! weights: collections, items chunked and embedded on upload, hybrid search with
//! citations, tenant isolation on every id, bad input; and the lexical-only mode when no
//! model is configured.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

mod with_a_model {
    use super::*;
    running_on_both_backends!(super::with_model; memory_api_end_to_end);
}

mod indexing {
    use super::*;
    running_on_both_backends!(super::indexing_app; index_tasks_read_only_under_the_configured_roots);
}

mod lexical_only {
    use super::*;
    on_both_backends!(without_a_model_search_is_lexical_and_readyz_says_so);
}

/// Workers on, a database of its own, and `index_roots` set to a scratch directory.
async fn indexing_app(backend: Backend) -> TestApp {
    let db = own_database(backend).await;
    let root = temp_dir("index-root");
    spawn_app_full(
        backend,
        |c| {
            c.worker_concurrency = 2;
            c.index_roots = vec![root];
            if db.is_some() {
                c.database_url = db;
            }
        },
        morningai_worker::Registry::builtin(),
    )
    .await
}

async fn index_tasks_read_only_under_the_configured_roots(app: TestApp) {
    let a = app.signup("index").await;
    let root = app.config.index_roots[0].clone();
    let repo = root.join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(
        repo.join("README.md"),
        "# Gizmo\n\nThe gizmo calibrates flux capacitors.\n",
    )
    .unwrap();
    std::fs::write(repo.join("src/lib.rs"), "pub fn calibrate() {}\n").unwrap();
    let (s, t) = app
        .post(
            "/api/v1/tasks",
            &a.access,
            json!({"kind": "index", "input": {"path": repo, "collection": "repo"}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    let done = wait_finished(&app, &a, t["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["result"]["report"]["indexed"], 2, "{done}");
    // The last progress event is the finished pass, however short the run.
    let cx = morningai_core::TenantCtx::new(a.tenant_id.parse().unwrap());
    let events = app
        .store
        .task_events(
            cx,
            Some(t["id"].as_str().unwrap().parse().unwrap()),
            0,
            1000,
        )
        .await
        .unwrap();
    let last = events
        .iter()
        .rev()
        .find(|e| e.kind.as_str() == "progress")
        .expect("progress events");
    assert_eq!(
        (&last.data["pass"], &last.data["done"], &last.data["total"]),
        (&json!("files"), &json!(2), &json!(2)),
        "{:?}",
        last.data
    );
    let (_, r) = search(&app, &a, json!({"query": "flux capacitors"})).await;
    assert_eq!(r["hits"][0]["source"], "README.md", "{r}");
    // Outside the roots, and a missing path: the task fails with the reason, not retried.
    for (path, why) in [
        ("/etc", "not under an allowed index root"),
        ("/nonexistent/dir", "No such file"),
    ] {
        let (_, t) = app
            .post(
                "/api/v1/tasks",
                &a.access,
                json!({"kind": "index", "input": {"path": path, "collection": "repo"}}),
            )
            .await;
        let done = wait_finished(&app, &a, t["id"].as_str().unwrap()).await;
        assert_eq!(done["status"], "failed", "{done}");
        assert!(done["error"].as_str().unwrap().contains(why), "{done}");
    }
    // Input is checked when the task is created.
    let (s, p) = app
        .post(
            "/api/v1/tasks",
            &a.access,
            json!({"kind": "index", "input": {"path": ""}}),
        )
        .await;
    assert_problem(s, &p, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}

const DOCS: &[(&str, &str, &str)] = &[
    (
        "docs/auth.md",
        "guide",
        "# Authentication\n\nClients authenticate with an API key in the x-api-key header, or with a bearer JWT from the login endpoint.",
    ),
    (
        "docs/queue.md",
        "guide",
        "# Job queue\n\nJobs are leased to workers.\n\n## Retries\n\nFailed jobs are retried with exponential backoff, then dead-lettered.",
    ),
    (
        "src/main.rs",
        "code",
        "fn main() {\n    let server = Server::bind(\"127.0.0.1:8080\");\n    server.run();\n}",
    ),
];

async fn seed(app: &TestApp, who: &Account) -> String {
    let (s, c) = app
        .post(
            "/api/v1/memory/collections",
            &who.access,
            json!({"name": "docs"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let id = c["id"].as_str().unwrap().to_owned();
    for (source, kind, text) in DOCS {
        let (s, item) = app
            .post(
                &format!("/api/v1/memory/collections/{id}/items"),
                &who.access,
                json!({"source": source, "text": text, "metadata": {"kind": kind}}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{item}");
        assert!(item["chunks"].as_u64().unwrap() >= 1);
    }
    id
}

async fn search(app: &TestApp, who: &Account, body: Value) -> (StatusCode, Value) {
    app.post("/api/v1/memory/search", &who.access, body).await
}

async fn memory_api_end_to_end(app: TestApp) {
    let a = app.signup("mem-a").await;
    let b = app.signup("mem-b").await;
    let id = seed(&app, &a).await;
    let (_, c) = app
        .get(&format!("/api/v1/memory/collections/{id}"), &a.access)
        .await;
    assert_eq!(
        (c["embed_model"].as_str(), c["dims"].as_u64()),
        (Some("all-MiniLM-L6-v2"), Some(384))
    );
    // Items added through the API are embedded before they are stored.
    assert_eq!(c["dense"]["embedded"], c["dense"]["total"], "{c}");
    assert!(c["dense"]["total"].as_u64() >= Some(3), "{c}");
    let (s, dup) = app
        .post(
            "/api/v1/memory/collections",
            &a.access,
            json!({"name": "docs"}),
        )
        .await;
    assert_problem(s, &dup, StatusCode::CONFLICT, "collection_exists");

    for mode in ["hybrid", "dense", "lexical"] {
        let (s, r) = search(
            &app,
            &a,
            json!({"query": "how do clients authenticate with an API key?", "mode": mode, "k": 3}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{r}");
        assert_eq!(r["mode"], mode);
        assert_eq!(r["warning"], Value::Null, "{r}");
        match mode {
            "lexical" => assert_eq!(r["dense"], Value::Null, "{r}"),
            _ => assert_eq!(r["dense"], c["dense"], "{r}"),
        }
        let top = &r["hits"][0];
        assert_eq!(top["source"], "docs/auth.md", "{mode}: {r}");
        assert_eq!(top["citation"], "docs/auth.md:1-3");
        assert_eq!(top["heading"], "Authentication");
    }
    // Metadata filter and collection scope apply inside the search.
    let (_, r) = search(
        &app,
        &a,
        json!({"query": "server bind run", "filter": {"kind": "code"}, "collection": id}),
    )
    .await;
    let hits = r["hits"].as_array().unwrap();
    assert!(
        !hits.is_empty() && hits.iter().all(|h| h["metadata"]["kind"] == "code"),
        "{r}"
    );

    // Tenant B: A's collection does not exist, and B's searches find nothing of A's.
    let (s, p) = app
        .get(&format!("/api/v1/memory/collections/{id}"), &b.access)
        .await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not_found");
    let (s, p) = app
        .post(
            &format!("/api/v1/memory/collections/{id}/items"),
            &b.access,
            json!({"source": "x", "text": "y"}),
        )
        .await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not_found");
    let (s, p) = app
        .delete(&format!("/api/v1/memory/collections/{id}"), &b.access)
        .await;
    assert_problem(s, &p, StatusCode::NOT_FOUND, "not_found");
    for mode in ["hybrid", "dense", "lexical"] {
        let (s, r) = search(
            &app,
            &b,
            json!({"query": "API key authenticate", "mode": mode, "collection": id}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(r["hits"], json!([]), "{mode}");
        let (_, r) = search(
            &app,
            &b,
            json!({"query": "API key authenticate", "mode": mode}),
        )
        .await;
        assert_eq!(r["hits"], json!([]), "{mode}");
    }

    // Bad input: clear problems, nothing stored.
    for (body, field) in [
        (json!({"query": "x", "k": 0}), "k"),
        (json!({"query": "x", "k": 51}), "k"),
        (json!({"query": "   "}), "query"),
        (
            json!({"query": "x", "filter": {"kind": {"$ne": 1}}}),
            "filter",
        ),
    ] {
        let (s, p) = search(&app, &a, body).await;
        assert_problem(s, &p, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(p.to_string().contains(field), "{p}");
    }
    let (s, p) = search(&app, &a, json!({"query": 5})).await;
    assert!(s.is_client_error(), "{p}");
    let (s, p) = app
        .post(
            &format!("/api/v1/memory/collections/{id}/items"),
            &a.access,
            json!({"source": "s", "text": "t", "metadata": [1]}),
        )
        .await;
    assert_problem(s, &p, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
    // Viewers search but do not write.
    let viewer = app.member(&a, "mem-viewer", "viewer").await;
    let (s, _) = search(&app, &viewer, json!({"query": "jobs"})).await;
    assert_eq!(s, StatusCode::OK);
    let (s, p) = app
        .post(
            &format!("/api/v1/memory/collections/{id}/items"),
            &viewer.access,
            json!({"source": "s", "text": "t"}),
        )
        .await;
    assert_problem(s, &p, StatusCode::FORBIDDEN, "forbidden");

    // Deleting an item removes it from every mode.
    let (_, items) = app
        .get(&format!("/api/v1/memory/collections/{id}/items"), &a.access)
        .await;
    let auth = items["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["source"] == "docs/auth.md")
        .unwrap();
    let (s, _) = app
        .delete(
            &format!(
                "/api/v1/memory/collections/{id}/items/{}",
                auth["id"].as_str().unwrap()
            ),
            &a.access,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, r) = search(&app, &a, json!({"query": "API key authenticate", "k": 5})).await;
    assert!(
        r["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["source"] != "docs/auth.md"),
        "{r}"
    );
    let (s, _) = app
        .delete(&format!("/api/v1/memory/collections/{id}"), &a.access)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

async fn without_a_model_search_is_lexical_and_readyz_says_so(app: TestApp) {
    let (s, r) = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(r["embeddings"], "lexical-only");
    assert!(r["warnings"][0].as_str().unwrap().contains("lexical"));
    let a = app.signup("lex").await;
    seed(&app, &a).await;
    let (s, r) = search(&app, &a, json!({"query": "exponential backoff retries"})).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(r["mode"], "lexical");
    assert!(r["warning"].as_str().unwrap().contains("lexical"));
    assert_eq!(r["hits"][0]["source"], "docs/queue.md");
    assert_eq!(r["hits"][0]["heading"], "Job queue > Retries");
    let (s, p) = search(&app, &a, json!({"query": "retries", "mode": "dense"})).await;
    assert_problem(s, &p, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
}
