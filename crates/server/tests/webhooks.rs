//! Tenant webhooks on both backends: a subscriber's endpoint (a local server) receives
//! each event once, signed so that the Standard Webhooks reference library accepts it; a
//! failing endpoint gets the queue's retries, the delivery log shows every attempt, and a
//! redelivery goes out under the same webhook-id. Then what another tenant or a member
//! may not do, and URLs that are refused.

mod common;

use common::{Account, Backend, TestApp, assert_problem, wait_finished};
use morningai_conformance::fake_openai::{FakeOpenAi as Endpoint, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

per_backend!(deliveries_are_signed_logged_retried_and_redelivered);

/// Checks a received delivery with the `standardwebhooks` reference library; its payload.
fn verified(secret: &str, seen: &morningai_conformance::fake_openai::Seen) -> Value {
    let header = |k: &str| seen.headers[k].to_str().unwrap().to_owned();
    let python = std::env::var("MORNINGAI_SDK_PYTHON").expect(
        "MORNINGAI_SDK_PYTHON is not set: run the suite with scripts/test.sh, which installs standardwebhooks",
    );
    let out = std::process::Command::new(python)
        .args([
            "-c",
            "import sys, json; from standardwebhooks.webhooks import Webhook; \
             h = {'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], 'webhook-signature': sys.argv[4]}; \
             print(json.dumps(Webhook(sys.argv[1]).verify(sys.argv[5], h)))",
            secret,
            &header("webhook-id"),
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &seen.raw,
        ])
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "the reference library refused the delivery: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn deliveries(app: &TestApp, who: &Account, hook: &str) -> Vec<Value> {
    let (s, log) = app
        .get(&format!("/api/v1/webhooks/{hook}/deliveries"), &who.access)
        .await;
    assert_eq!(s, StatusCode::OK, "{log}");
    log.as_array().unwrap().clone()
}

/// Waits until the newest delivery is no longer pending; the log.
async fn settled(app: &TestApp, who: &Account, hook: &str, n: usize) -> Vec<Value> {
    for _ in 0..400 {
        let log = deliveries(app, who, hook).await;
        if log.len() >= n && log.iter().all(|d| d["status"] != "pending") {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries did not settle: {:?}",
        deliveries(app, who, hook).await
    );
}

async fn echo(app: &TestApp, who: &Account, input: Value) -> Value {
    let (s, t) = app
        .post(
            "/api/v1/tasks",
            &who.access,
            json!({"kind": "echo", "input": input}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{t}");
    wait_finished(app, who, t["id"].as_str().unwrap()).await
}

async fn deliveries_are_signed_logged_retried_and_redelivered(backend: Backend) {
    let app = common::spawn_app_with(backend, |c| {
        c.worker_concurrency = 2;
        c.retry_base_ms = 50;
    })
    .await;
    let endpoint = Endpoint::start().await;
    let admin = app.signup("hooks-admin").await;
    let url = format!("http://{}/morningai/events", endpoint.addr);
    let (s, hook) = app
        .post(
            "/api/v1/webhooks",
            &admin.access,
            json!({"url": url, "events": ["task.succeeded", "document.published"], "description": "CI"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let id = hook["id"].as_str().unwrap().to_owned();
    let (_, shown) = app
        .get(&format!("/api/v1/webhooks/{id}"), &admin.access)
        .await;
    assert!(shown.get("secret").is_none() && !shown.to_string().contains(&secret));
    assert_eq!(shown["secret_hint"], hook["secret_hint"]);

    // A task succeeds: one signed delivery, its own delivery task makes no other.
    endpoint.push([Reply::json(200, json!({}))]);
    let task = echo(&app, &admin, json!({"n": 1})).await;
    let log = settled(&app, &admin, &id, 1).await;
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!(log[0]["status"], "delivered");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 1);
    let seen = endpoint.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/morningai/events");
    let payload = verified(&secret, &seen[0]);
    assert_eq!(payload["type"], "task.succeeded");
    assert_eq!(payload["data"]["task_id"], task["id"]);
    assert_eq!(payload["data"]["kind"], "echo");
    assert_eq!(
        seen[0].headers["webhook-id"].to_str().unwrap(),
        log[0]["msg_id"]
    );
    // Another secret does not verify it.
    let other_secret = format!("whsec_{}", "A".repeat(32));
    let tampered = morningai_conformance::fake_openai::Seen {
        raw: seen[0].raw.replace("task.succeeded", "task.failed"),
        ..seen[0].clone()
    };
    for (s, d) in [(&other_secret, &seen[0]), (&secret, &tampered)] {
        let python = std::env::var("MORNINGAI_SDK_PYTHON").unwrap();
        let ok = std::process::Command::new(python)
            .args(["-c", "import sys; from standardwebhooks.webhooks import Webhook; \
                Webhook(sys.argv[1]).verify(sys.argv[5], {'webhook-id': sys.argv[2], 'webhook-timestamp': sys.argv[3], 'webhook-signature': sys.argv[4]})",
                s, d.headers["webhook-id"].to_str().unwrap(), d.headers["webhook-timestamp"].to_str().unwrap(),
                d.headers["webhook-signature"].to_str().unwrap(), &d.raw])
            .output()
            .unwrap();
        assert!(
            !ok.status.success(),
            "a wrong secret or body must not verify"
        );
    }

    // The endpoint fails every attempt: the queue's retries, each logged, then failed.
    endpoint.push((0..3).map(|_| Reply::json(500, json!({"error": "down"}))));
    echo(&app, &admin, json!({"n": 2})).await;
    let log = settled(&app, &admin, &id, 2).await;
    let failed = &log[0];
    assert_eq!(failed["status"], "failed", "{log:?}");
    let attempts = failed["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{failed}");
    assert!(attempts.iter().all(|a| a["status"] == 500));
    let ids: Vec<String> = endpoint.seen()[1..]
        .iter()
        .map(|s| s.headers["webhook-id"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(
        ids.iter().all(|i| *i == failed["msg_id"]),
        "one webhook-id for every retry"
    );

    // Redelivered by hand once the endpoint is back: the same id, delivered.
    endpoint.push([Reply::json(204, json!({}))]);
    let (s, again) = app
        .post(
            &format!(
                "/api/v1/webhooks/{id}/deliveries/{}/redeliver",
                failed["id"].as_str().unwrap()
            ),
            &admin.access,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{again}");
    let log = settled(&app, &admin, &id, 2).await;
    assert_eq!(log[0]["status"], "delivered", "{log:?}");
    assert_eq!(log[0]["attempts"].as_array().unwrap().len(), 4);
    let last = endpoint.seen().last().unwrap().clone();
    assert_eq!(
        last.headers["webhook-id"].to_str().unwrap(),
        failed["msg_id"]
    );
    verified(&secret, &last);

    // A published document is an event; a failed task is not subscribed here.
    endpoint.push([Reply::json(200, json!({}))]);
    let (_, project) = app
        .post("/api/v1/projects", &admin.access, json!({"name": "Docs"}))
        .await;
    let (s, doc) = app
        .post(
            "/api/v1/documents",
            &admin.access,
            json!({"project_id": project["id"], "title": "Retries", "kind": "faq", "text": "# Retries\n\nWith backoff.\n"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{doc}");
    let doc_id = doc["document"]["id"].as_str().unwrap();
    let (s, _) = app
        .post(
            &format!("/api/v1/documents/{doc_id}/publish"),
            &admin.access,
            json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let log = settled(&app, &admin, &id, 3).await;
    assert_eq!(log[0]["event"], "document.published");
    let payload = verified(&secret, endpoint.seen().last().unwrap());
    assert_eq!(payload["data"]["document_id"], doc_id);
    assert_eq!(payload["data"]["version"], 1);

    // Another tenant sees none of it; a member may not manage webhooks.
    let other = app.signup("hooks-other").await;
    let delivery = log[0]["id"].as_str().unwrap();
    for (s, b) in [
        app.get(&format!("/api/v1/webhooks/{id}"), &other.access)
            .await,
        app.get(&format!("/api/v1/webhooks/{id}/deliveries"), &other.access)
            .await,
        app.post(
            &format!("/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver"),
            &other.access,
            json!({}),
        )
        .await,
        app.delete(&format!("/api/v1/webhooks/{id}"), &other.access)
            .await,
    ] {
        assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    }
    // Their own webhook cannot redeliver this tenant's delivery either.
    let (_, theirs) = app
        .post(
            "/api/v1/webhooks",
            &other.access,
            json!({"url": "https://example.com/h", "events": ["task.failed"]}),
        )
        .await;
    let (s, b) = app
        .post(
            &format!(
                "/api/v1/webhooks/{}/deliveries/{delivery}/redeliver",
                theirs["id"].as_str().unwrap()
            ),
            &other.access,
            json!({}),
        )
        .await;
    assert_problem(s, &b, StatusCode::NOT_FOUND, "not_found");
    let member = app.member(&admin, "hooks-member", "member").await;
    let (s, b) = app.get("/api/v1/webhooks", &member.access).await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");
    let (s, b) = app
        .post(
            "/api/v1/webhooks",
            &member.access,
            json!({"url": "https://example.com/h", "events": ["task.failed"]}),
        )
        .await;
    assert_problem(s, &b, StatusCode::FORBIDDEN, "forbidden");

    for (body, field) in [
        (
            json!({"url": "ftp://example.com/h", "events": ["task.failed"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "events": ["task.failed"]}),
            "url",
        ),
        (
            json!({"url": format!("https://example.com/{}", "a".repeat(2_000)), "events": ["task.failed"]}),
            "url",
        ),
        (
            json!({"url": "https://example.com/h", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["task.deleted"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com/h", "events": ["task.failed"], "description": "d".repeat(501)}),
            "description",
        ),
    ] {
        let (s, b) = app.post("/api/v1/webhooks", &admin.access, body).await;
        assert_problem(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed");
        assert_eq!(b["errors"][0]["field"], field, "{b}");
    }
    let (s, b) = app
        .post(
            "/api/v1/webhooks",
            &admin.access,
            json!({"url": "https://example.com/h", "events": "task.failed"}),
        )
        .await;
    assert!(s.is_client_error(), "{b}");

    // Unsubscribed: nothing more is sent.
    let (s, _) = app
        .delete(&format!("/api/v1/webhooks/{id}"), &admin.access)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let before = endpoint.seen().len();
    echo(&app, &admin, json!({"n": 3})).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(endpoint.seen().len(), before);
}
