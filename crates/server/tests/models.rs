//! Model providers over HTTP on both backends, with a local server speaking the OpenAI
//! protocol: a tenant's own provider (key encrypted at rest, never shown), grounded answers
//! from memory, cost recorded from the provider's usage and reported by `/api/v1/usage`,
//! budgets refusing before anything is sent, a failing provider as a clear 503, and the
//! offline extractive answer for a tenant without a model.

mod common;

use common::*;
use morningai_conformance::fake_openai::{FakeOpenAi, Reply};
use reqwest::StatusCode;
use serde_json::json;

mod priced {
    use super::*;
    running_on_both_backends!(super::priced_app; tenant_models_usage_and_budgets);
}

mod defaults {
    use super::*;
    on_both_backends!(a_failing_provider_is_a_clear_503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_refuses_internal_provider_addresses() {
    let app = spawn_app_with(Backend::Sqlite, |c| {
        c.env = morningai_app::config::Environment::Production;
    })
    .await;
    let a = app.signup("models-prod").await;
    for url in [
        "http://127.0.0.1:11434/v1",
        "http://169.254.169.254/v1",
        "http://localhost/v1",
        "http://[::1]/v1",
    ] {
        let (s, e) = app
            .put(
                "/api/v1/tenant/ai",
                &a.access,
                json!({"base_url": url, "model": "m", "api_key": "k"}),
            )
            .await;
        assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert!(e["detail"].as_str().unwrap().contains("private"), "{e}");
    }
    let (s, _) = app
        .put("/api/v1/tenant/ai", &a.access, json!({"base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini", "api_key": "k"}))
        .await;
    assert_eq!(s, StatusCode::OK);
}

async fn tenant_models_usage_and_budgets(app: TestApp) {
    let fake = FakeOpenAi::start().await;
    let a = app.signup("models-a").await;
    let b = app.signup("models-b").await;
    remember(&app, &a).await;
    remember(&app, &b).await;

    // Nobody has a model: the offline provider answers, and says it is extractive.
    let (s, ans) = app
        .post(
            "/api/v1/memory/answer",
            &b.access,
            json!({"query": "How are jobs retried?"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ans}");
    assert_eq!(ans["answer"]["generated_by"]["kind"], "extractive");
    assert!(
        ans["answer"]["text"]
            .as_str()
            .unwrap()
            .contains("exponential backoff")
    );
    assert_eq!(ans["answer"]["citations"][0]["source"], "docs/queue.md");
    let (_, settings) = app.get("/api/v1/tenant/ai", &b.access).await;
    assert_eq!(settings["effective"]["kind"], "extractive");

    // Tenant A brings its own provider and a daily budget.
    let put = json!({"base_url": fake.base_url(), "model": "fake-model", "api_key": "sk-tenant-a-secret",
                     "budget": {"daily_tokens": 2000}});
    let (s, settings) = app.put("/api/v1/tenant/ai", &a.access, put.clone()).await;
    assert_eq!(s, StatusCode::OK, "{settings}");
    assert_eq!(settings["api_key_set"], true);
    assert_eq!(settings["api_key_hint"], "…cret");
    assert_eq!(settings["effective"]["model"], "fake-model");
    assert!(!settings.to_string().contains("sk-tenant"), "{settings}");
    // At rest the key is encrypted.
    let cx = morningai_core::TenantCtx::new(a.tenant_id.parse().unwrap());
    let stored = app
        .store
        .get_object(cx, "ai_settings", cx.tenant_id.0)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !stored.body.to_string().contains("sk-tenant"),
        "{}",
        stored.body
    );
    // Re-saving without the key keeps it (same base URL).
    let mut again = put.clone();
    again.as_object_mut().unwrap().remove("api_key");
    let (s, settings) = app.put("/api/v1/tenant/ai", &a.access, again).await;
    assert_eq!(
        (s, &settings["api_key_set"]),
        (StatusCode::OK, &json!(true))
    );

    // A grounded answer: the tenant's key on the wire, the passage in the prompt, the
    // citation recognised.
    fake.push([Reply::answer(
        "Jobs are retried with exponential backoff [docs/queue.md:1-3].",
        1_200,
        300,
    )]);
    let (s, ans) = app
        .post(
            "/api/v1/memory/answer",
            &a.access,
            json!({"query": "How are jobs retried?"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{ans}");
    assert_eq!(ans["answer"]["generated_by"]["kind"], "model");
    assert_eq!(
        ans["answer"]["generated_by"]["model"],
        "fake-model-2026-01-01"
    );
    assert_eq!(
        ans["answer"]["citations"],
        json!([{"source": "docs/queue.md", "start_line": 1, "end_line": 3}])
    );
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers["authorization"],
        "Bearer sk-tenant-a-secret"
    );
    let prompt = seen[0].body["messages"][1]["content"].as_str().unwrap();
    assert!(
        prompt.contains("[docs/queue.md:1-3]") && prompt.contains("exponential backoff"),
        "{prompt}"
    );

    // 1,500 tokens used; the next answer may add 1,024: over 2,000, refused unsent.
    let (s, e) = app
        .post(
            "/api/v1/memory/answer",
            &a.access,
            json!({"query": "And leases?"}),
        )
        .await;
    assert_problem(s, &e, StatusCode::TOO_MANY_REQUESTS, "budget_exceeded");
    assert!(
        e["detail"]
            .as_str()
            .unwrap()
            .contains("daily token budget (2000)"),
        "{e}"
    );
    assert_eq!(fake.seen().len(), 1, "nothing was sent");

    // The usage report, from the provider's counts and the price table.
    let (s, u) = app.get("/api/v1/usage?group_by=model", &a.access).await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["rows"].as_array().unwrap().len(), 1, "{u}");
    let row = &u["rows"][0];
    assert_eq!(row["key"], "fake-model-2026-01-01");
    assert_eq!(
        (
            row["calls"].as_u64(),
            row["prompt_tokens"].as_u64(),
            row["completion_tokens"].as_u64()
        ),
        (Some(1), Some(1_200), Some(300))
    );
    // 1,200 × $2/M + 300 × $8/M = $0.0048
    assert!(
        (row["cost_usd"].as_f64().unwrap() - 0.0048).abs() < 1e-12,
        "{row}"
    );
    assert_eq!(u["total"]["total_tokens"], 1_500);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let (_, by_day) = app
        .get(
            &format!("/api/v1/usage?from={today}&to={today}&group_by=day"),
            &a.access,
        )
        .await;
    assert_eq!(by_day["rows"][0]["key"], today.as_str(), "{by_day}");
    let (_, by_task) = app.get("/api/v1/usage?group_by=task", &a.access).await;
    assert_eq!(
        by_task["rows"][0]["key"], "",
        "an answer outside a task: {by_task}"
    );
    // Tenant B's report is its own (empty).
    let (_, ub) = app.get("/api/v1/usage", &b.access).await;
    assert_eq!(ub["rows"], json!([]), "{ub}");
    assert_eq!(ub["total"]["calls"], 0);

    // Bad input.
    for (query, field) in [
        ("from=2026-02-01&to=2026-01-01", "from"),
        ("from=yesterday", "from"),
        ("from=2020-01-01&to=2026-01-01", "from"),
    ] {
        let (s, e) = app.get(&format!("/api/v1/usage?{query}"), &a.access).await;
        assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(e["errors"][0]["field"], field, "{e}");
    }
    let (s, _) = app.get("/api/v1/usage?group_by=week", &a.access).await;
    assert!(s.is_client_error());
    for (body, field) in [
        (
            json!({"base_url": "ftp://models.example", "model": "m"}),
            "base_url",
        ),
        (json!({"base_url": fake.base_url()}), "model"),
        (json!({"budget": {"daily_usd": -1.0}}), "budget"),
    ] {
        let (s, e) = app.put("/api/v1/tenant/ai", &a.access, body).await;
        assert_problem(s, &e, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(e["errors"][0]["field"], field, "{e}");
    }
    let (s, _) = app
        .put(
            "/api/v1/tenant/ai",
            &a.access,
            json!({"budget": {"weekly_usd": 1.0}}),
        )
        .await;
    assert!(s.is_client_error(), "unknown budget fields are refused");
    let member = app.member(&a, "models-member", "member").await;
    let (s, e) = app
        .put("/api/v1/tenant/ai", &member.access, json!({}))
        .await;
    assert_problem(s, &e, StatusCode::FORBIDDEN, "forbidden");
    let (_, still) = app.get("/api/v1/tenant/ai", &member.access).await;
    assert_eq!(still["model"], "fake-model", "{still}");
}

async fn a_failing_provider_is_a_clear_503(app: TestApp) {
    let fake = FakeOpenAi::start().await;
    let a = app.signup("models-down").await;
    remember(&app, &a).await;
    let (s, _) = app
        .put(
            "/api/v1/tenant/ai",
            &a.access,
            json!({"base_url": fake.base_url(), "model": "fake-model", "api_key": "sk-x"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // The default app retries 3 times: four 500s, then a clear error.
    fake.push((0..4).map(|_| Reply::error(500, "model overloaded", vec![])));
    let (s, e) = app
        .post(
            "/api/v1/memory/answer",
            &a.access,
            json!({"query": "How are jobs retried?"}),
        )
        .await;
    assert_problem(
        s,
        &e,
        StatusCode::SERVICE_UNAVAILABLE,
        "provider_unavailable",
    );
    let detail = e["detail"].as_str().unwrap();
    assert!(
        detail.contains("model overloaded") && detail.contains("4 attempts"),
        "{e}"
    );
    assert!(!detail.contains("sk-x"));
    assert_eq!(fake.seen().len(), 4);
    // A provider that rejects the key is named as such.
    fake.push([Reply::error(401, "Incorrect API key provided", vec![])]);
    let (s, e) = app
        .post(
            "/api/v1/memory/answer",
            &a.access,
            json!({"query": "How are jobs retried?"}),
        )
        .await;
    assert_problem(s, &e, StatusCode::SERVICE_UNAVAILABLE, "provider_auth");
}
