//! The OpenAI-compatible endpoint and the MCP server on both backends, with a local server
//! speaking the OpenAI protocol as the tenant's provider: answers from memory (extractive
//! and by the model, whole and streamed), usage and cost in OpenAI's shape, budgets, and the
//! hostile cases — no key, another tenant's assistant, malformed and oversized input, a
//! viewer asking for work — each refused in the protocol's own shape.

mod common;

use common::*;
use morningai_conformance::fake_openai::{FakeOpenAi, Reply};
use reqwest::StatusCode;
use serde_json::{Value, json};

mod openai {
    use super::*;
    running_on_both_backends!(super::priced_app; openai_answers_from_memory_and_refuses_in_openais_shape);
}

mod mcp {
    use super::*;
    on_both_backends!(mcp_refuses_strangers_and_reports_tool_errors_as_results);
}

/// Asserts OpenAI's error shape.
fn assert_openai_error(status: StatusCode, body: &Value, want: StatusCode, kind: &str) {
    assert_eq!(status, want, "{body}");
    assert_eq!(body["error"]["type"], kind, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

/// A streamed completion's `data:` payloads, `[DONE]` last.
async fn stream(app: &TestApp, key: &str, body: Value) -> (StatusCode, Vec<String>) {
    let res = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let data = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
        .map(str::to_owned)
        .collect();
    (status, data)
}

/// The content of a stream's chunks, and the chunks as JSON (without `[DONE]`).
fn reassemble(data: &[String]) -> (String, Vec<Value>) {
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{data:?}");
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    (text, chunks)
}

async fn openai_answers_from_memory_and_refuses_in_openais_shape(app: TestApp) {
    let fake = FakeOpenAi::start().await;
    let a = app.signup("oai-a").await;
    let b = app.signup("oai-b").await;
    remember(&app, &a).await;
    remember(&app, &b).await;
    let key = app.api_key(&a, None).await;
    let ask = |model: &str| {
        json!({"model": model, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "How are jobs retried?"}]}]})
    };

    // The built-in assistant and the tenant's own `faq` assistants are the models.
    let (s, assistant) = app
        .post(
            "/api/v1/assistants",
            &a.access,
            json!({"graph_id": "faq", "name": "Queue docs"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{assistant}");
    let aid = assistant["assistant_id"].as_str().unwrap();
    let (s, models) = app.get("/v1/models", &key).await;
    assert_eq!(s, StatusCode::OK, "{models}");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    assert_eq!(ids, ["faq", aid], "{models}");
    let (_, theirs) = app.get("/v1/models", &b.access).await;
    assert_eq!(theirs["data"].as_array().unwrap().len(), 1, "{theirs}");

    // Without a model: extractive, said so, with real citations and no tokens.
    let (s, whole) = app.post("/v1/chat/completions", &key, ask(aid)).await;
    assert_eq!(s, StatusCode::OK, "{whole}");
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(whole["system_fingerprint"], "morningai-extractive");
    assert_eq!(whole["morningai"]["generated_by"], "extractive");
    // The quoted lines of the one source: its heading and the sentence that answers.
    let cited = whole["morningai"]["citations"].clone();
    assert_eq!(cited, json!(["docs/queue.md:3-3", "docs/queue.md:1-1"]));
    assert_eq!(whole["usage"]["total_tokens"], 0);
    let answer = whole["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(answer.contains("exponential backoff"), "{answer}");
    let (s, data) = stream(
        &app,
        &key,
        json!({"stream": true, "model": "faq", "messages": ask("faq")["messages"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (text, chunks) = reassemble(&data);
    assert_eq!(text, answer, "the stream carries the same answer");
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["morningai"]["citations"], cited);

    // With the tenant's model: its answer, its usage, its cost, metered against the budget.
    let put = json!({"base_url": fake.base_url(), "model": "fake-model", "api_key": "sk-a",
                     "budget": {"daily_tokens": 2000}});
    let (s, e) = app.put("/api/v1/tenant/ai", &a.access, put).await;
    assert_eq!(s, StatusCode::OK, "{e}");
    fake.push([Reply::answer(
        "Jobs are retried with exponential backoff [docs/queue.md:1-3].",
        1_200,
        300,
    )]);
    let (s, whole) = app.post("/v1/chat/completions", &key, ask("faq")).await;
    assert_eq!(s, StatusCode::OK, "{whole}");
    assert_eq!(whole["system_fingerprint"], "morningai-model");
    assert_eq!(
        whole["usage"],
        json!({"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500})
    );
    assert_eq!(whole["morningai"]["model"], "fake-model-2026-01-01");
    assert_eq!(
        whole["morningai"]["citations"],
        json!(["docs/queue.md:1-3"])
    );
    assert!((whole["morningai"]["cost_usd"].as_f64().unwrap() - 0.0048).abs() < 1e-12);
    let prompt = fake.seen()[0].body["messages"][1]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(prompt.contains("How are jobs retried?"), "{prompt}");
    let (_, usage) = app.get("/api/v1/usage", &a.access).await;
    assert_eq!(usage["total"]["total_tokens"], 1500, "{usage}");
    // Over budget: refused before anything is sent, whole or streamed, in OpenAI's shape.
    for streamed in [false, true] {
        let mut body = ask("faq");
        body["stream"] = json!(streamed);
        let (s, e) = app.post("/v1/chat/completions", &key, body).await;
        assert_openai_error(s, &e, StatusCode::TOO_MANY_REQUESTS, "insufficient_quota");
        assert_eq!(e["error"]["code"], "budget_exceeded", "{e}");
    }
    assert_eq!(fake.seen().len(), 1, "nothing was sent");

    // Streamed by the model: its deltas as they come, then usage.
    let (s, e) = app
        .put(
            "/api/v1/tenant/ai",
            &b.access,
            json!({"base_url": fake.base_url(), "model": "fake-model"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{e}");
    fake.push([Reply::streamed(
        &["Jobs are retried ", "with backoff [docs/queue.md:1-3]."],
        40,
        12,
    )]);
    // An assistant of B's, with its own prompt addition and temperature.
    let config = json!({"system_prompt": "Answer in one sentence.", "temperature": 0.7});
    let (s, mine) = app
        .post(
            "/api/v1/assistants",
            &b.access,
            json!({"graph_id": "faq", "name": "Brief", "config": config}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let mut body = ask(mine["assistant_id"].as_str().unwrap());
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let (s, data) = stream(&app, &b.access, body).await;
    let sent = fake.seen().last().unwrap().body.clone();
    assert_eq!(sent["temperature"], 0.7, "{sent}");
    let system = sent["messages"][0]["content"].as_str().unwrap();
    assert!(system.ends_with("\n\nAnswer in one sentence."), "{system}");
    assert_eq!(s, StatusCode::OK, "{data:?}");
    let (text, chunks) = reassemble(&data);
    assert_eq!(text, "Jobs are retried with backoff [docs/queue.md:1-3].");
    assert!(
        chunks.len() >= 5,
        "role, two deltas, stop, usage: {chunks:?}"
    );
    assert!(
        chunks
            .iter()
            .all(|c| c["system_fingerprint"] == "morningai-model")
    );
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"]["total_tokens"], 52, "{usage}");

    // Hostile input.
    let (s, e) = app
        .call(reqwest::Method::GET, "/v1/models", None, None)
        .await;
    assert_openai_error(s, &e, StatusCode::UNAUTHORIZED, "authentication_error");
    let (s, e) = app.post("/v1/chat/completions", &b.access, ask(aid)).await;
    assert_openai_error(s, &e, StatusCode::NOT_FOUND, "not_found_error");
    assert_eq!(
        e["error"]["code"], "model_not_found",
        "another tenant's assistant: {e}"
    );
    let (s, e) = app.post("/v1/chat/completions", &key, ask("gpt-4")).await;
    assert_eq!(
        (s, &e["error"]["code"]),
        (StatusCode::NOT_FOUND, &json!("model_not_found"))
    );
    let many: Vec<Value> = (0..300)
        .map(|_| json!({"role": "user", "content": "hi"}))
        .collect();
    for (body, param) in [
        (json!({"model": 5, "messages": []}), "model"),
        (json!({"model": "faq", "messages": []}), "messages"),
        (json!({"model": "faq", "messages": many}), "messages"),
        (
            json!({"model": "faq", "messages": [{"role": "assistant", "content": "hi"}]}),
            "messages",
        ),
        (
            json!({"model": "faq", "messages": [{"role": "user", "content": "x".repeat(5000)}]}),
            "messages",
        ),
        (
            json!({"model": "faq", "messages": [{"role": "user", "content": 7}]}),
            "messages[0].content",
        ),
    ] {
        let (s, e) = app.post("/v1/chat/completions", &key, body.clone()).await;
        assert_openai_error(s, &e, StatusCode::BAD_REQUEST, "invalid_request_error");
        assert_eq!(e["error"]["param"], param, "{body}: {e}");
    }
    let res = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .body("{\"model\": \"faq\", \"messages\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let e: Value = res.json().await.unwrap();
    assert_eq!(e["error"]["code"], "malformed_json", "{e}");
    let huge =
        json!({"model": "faq", "messages": [{"role": "user", "content": "x".repeat(100_000)}]});
    let (s, e) = app.post("/v1/chat/completions", &key, huge).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{e}");
    assert!(e["error"]["message"].is_string(), "{e}");
    // No embedding model in this deployment: a clear 503.
    let (s, e) = app
        .post(
            "/v1/embeddings",
            &key,
            json!({"model": "all-MiniLM-L6-v2", "input": "hello"}),
        )
        .await;
    assert_openai_error(s, &e, StatusCode::SERVICE_UNAVAILABLE, "server_error");
    assert_eq!(e["error"]["code"], "no_embedding_model", "{e}");
    let (s, e) = app
        .post(
            "/v1/embeddings",
            &key,
            json!({"model": "m", "input": [1, 2]}),
        )
        .await;
    assert_openai_error(s, &e, StatusCode::BAD_REQUEST, "invalid_request_error");
}

/// One JSON-RPC request to `/mcp`; the status and the body (JSON, or the last SSE message).
async fn mcp(app: &TestApp, key: Option<&str>, body: &str) -> (StatusCode, Value) {
    let mut req = app
        .client
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .header("content-type", "application/json")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_owned());
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .rfind(|d| !d.trim().is_empty())
        .unwrap_or(&text)
        .trim()
        .to_owned();
    (
        status,
        serde_json::from_str(&json).unwrap_or(Value::String(text)),
    )
}

async fn call_tool(app: &TestApp, key: &str, name: &str, args: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": name, "arguments": args}});
    let (s, r) = mcp(app, Some(key), &body.to_string()).await;
    assert_eq!(s, StatusCode::OK, "{name}: {r}");
    r["result"].clone()
}

fn tool_error(result: &Value) -> String {
    assert_eq!(result["isError"], true, "{result}");
    result["content"][0]["text"].as_str().unwrap().to_owned()
}

async fn mcp_refuses_strangers_and_reports_tool_errors_as_results(app: TestApp) {
    let a = app.signup("mcp-a").await;
    let b = app.signup("mcp-b").await;
    let viewer = app.member(&a, "mcp-v", "viewer").await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).to_string();

    // The key is checked before the body is read.
    let (s, e) = mcp(&app, None, &list).await;
    assert_problem(s, &e, StatusCode::UNAUTHORIZED, "unauthorized");
    let (s, e) = mcp(&app, Some("mai_not_a_key"), &list).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{e}");

    let (s, tools) = mcp(&app, Some(&a.access), &list).await;
    assert_eq!(s, StatusCode::OK, "{tools}");
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names.len(), 8, "{names:?}");

    // Tool errors are results the caller reads, with the reason.
    let (s, task) = app
        .post(
            "/api/v1/tasks",
            &a.access,
            json!({"kind": "echo", "input": {"n": 1}}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{task}");
    let id = task["id"].as_str().unwrap();
    let mine = call_tool(&app, &a.access, "get_task", json!({"task_id": id})).await;
    assert_eq!(mine["structuredContent"]["id"], id, "{mine}");
    let theirs = call_tool(&app, &b.access, "get_task", json!({"task_id": id})).await;
    assert!(tool_error(&theirs).contains("not found"), "{theirs}");
    let project = app
        .post("/api/v1/projects", &a.access, json!({"name": "p"}))
        .await
        .1["id"]
        .clone();
    let refused = call_tool(
        &app,
        &viewer.access,
        "ask",
        json!({"question": "Why?", "project": project}),
    )
    .await;
    assert!(tool_error(&refused).contains("forbidden"), "{refused}");
    for (name, args, says) in [
        (
            "search_memory",
            json!({"query": "x", "k": 500}),
            "between 1 and 50",
        ),
        (
            "search_memory",
            json!({"query": "x", "limit": 5}),
            "invalid arguments",
        ),
        ("get_task", json!({"task_id": 5}), "invalid arguments"),
        ("search_memory", json!({"query": "a\u{0}b"}), "query"),
        (
            "ask",
            json!({"question": "why\u{0}", "project": project}),
            "question",
        ),
        (
            "get_document",
            json!({"document_id": uuid::Uuid::nil()}),
            "not found",
        ),
        (
            "decide_approval",
            json!({"approval_id": uuid::Uuid::nil(), "approved": true}),
            "not found",
        ),
        ("no_such_tool", json!({}), "no tool named"),
    ] {
        let r = call_tool(&app, &a.access, name, args).await;
        assert!(tool_error(&r).contains(says), "{name}: {r}");
    }

    // Malformed and oversized bodies: refused, never a failure of the server.
    let (s, e) = mcp(&app, Some(&a.access), "{\"jsonrpc\": \"2.0\", ").await;
    assert!(
        s.is_client_error() || e["error"]["code"] == -32700,
        "{s} {e}"
    );
    let big = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                     "params": {"name": "search_memory", "arguments": {"query": "x".repeat(100_000)}}});
    let (s, _) = mcp(&app, Some(&a.access), &big.to_string()).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
}
