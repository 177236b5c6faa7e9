//! The OpenAI-compatible provider against a local server speaking the OpenAI protocol:
//! requests on the wire, streaming, tool calls, JSON mode, retries (429 with Retry-After,
//! 5xx, timeouts), malformed answers, the circuit breaker, embeddings, and the metered
//! model's budgets and cost on a real SQLite ledger.

use morningai_ai::{Metered, OpenAiProvider, ProviderConfig};
use morningai_conformance::fake_openai::{FakeOpenAi, Reply};
use morningai_core::Error;
use morningai_core::ai::{
    ChatMessage, ChatModel, ChatRequest, Embedder, ResponseFormat, ToolCall, ToolSpec,
};
use morningai_core::usage::{Budget, PriceTable, UsageGroup, UsageLedger};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn config(fake: &FakeOpenAi) -> ProviderConfig {
    ProviderConfig {
        timeout: Duration::from_secs(5),
        retry_base: Duration::from_millis(10),
        ..ProviderConfig::new(fake.base_url(), Some("sk-test".into()))
    }
}

fn ask(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::system("Be brief."), ChatMessage::user(text)],
        ..ChatRequest::default()
    }
}

fn code(e: &Error) -> &'static str {
    match e {
        Error::Unavailable { code, .. } | Error::LimitExceeded { code, .. } => code,
        other => panic!("unexpected error {other:?}"),
    }
}

#[tokio::test]
async fn a_completion_sends_the_openai_request_and_reads_usage() {
    let fake = FakeOpenAi::start().await;
    fake.push([Reply::answer("{\"ok\": true}", 12, 5)]);
    let model = OpenAiProvider::new(config(&fake))
        .unwrap()
        .chat_model("fake-model");
    let req = ChatRequest {
        response_format: ResponseFormat::JsonObject,
        temperature: Some(0.2),
        max_tokens: Some(64),
        ..ask("Answer in JSON")
    };
    let r = model.chat(&req, None).await.unwrap();
    assert_eq!(r.content, "{\"ok\": true}");
    assert_eq!(
        r.model, "fake-model-2026-01-01",
        "the model the provider reports"
    );
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    let usage = r.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (12, 5));

    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/v1/chat/completions");
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-test");
    let body = &seen[0].body;
    assert_eq!(body["model"], "fake-model");
    assert_eq!(
        body["messages"][0],
        json!({"role": "system", "content": "Be brief."})
    );
    assert_eq!(body["messages"][1]["role"], "user");
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["temperature"], 0.2, "as written, not widened from f32");
    assert!(body.get("stream").is_none());
}

#[tokio::test]
async fn streaming_passes_each_delta_on_and_ends_with_usage() {
    let fake = FakeOpenAi::start().await;
    fake.push([Reply::streamed(&["The ", "queue ", "is durable."], 30, 7)]);
    let model = OpenAiProvider::new(config(&fake))
        .unwrap()
        .chat_model("fake-model");
    let pieces = Mutex::new(Vec::new());
    let sink = |d: &str| pieces.lock().unwrap().push(d.to_owned());
    let r = model.chat(&ask("Tell me"), Some(&sink)).await.unwrap();
    assert_eq!(*pieces.lock().unwrap(), ["The ", "queue ", "is durable."]);
    assert_eq!(r.content, "The queue is durable.");
    assert_eq!(r.finish_reason.as_deref(), Some("stop"));
    assert_eq!(r.usage.unwrap().total(), 37);
    let body = &fake.seen()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
}

#[tokio::test]
async fn tool_calls_arrive_whole_or_in_streamed_fragments() {
    let fake = FakeOpenAi::start().await;
    fake.push([Reply::json(
        200,
        json!({"model": "m", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "search", "arguments": "{\"q\":\"queue\"}"}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4}}),
    )]);
    // Streamed: the name first, the arguments in pieces; a vLLM-style empty finish_reason.
    let chunk = |delta: serde_json::Value, finish: &str| {
        json!({"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}).to_string()
    };
    fake.push([Reply::Sse(vec![
        chunk(json!({"tool_calls": [{"index": 0, "id": "call_b", "function": {"name": "read_file", "arguments": ""}}]}), ""),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"path\":"}}]}), ""),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"src/lib.rs\"}"}}]}), ""),
        chunk(json!({}), "tool_calls"),
        "[DONE]".into(),
    ])]);
    let model = OpenAiProvider::new(config(&fake)).unwrap().chat_model("m");
    let tools = vec![ToolSpec {
        name: "search".into(),
        description: "Search the code".into(),
        parameters: json!({"type": "object", "properties": {"q": {"type": "string"}}}),
    }];
    let mut req = ChatRequest {
        tools: tools.clone(),
        ..ask("find the queue")
    };
    let r = model.chat(&req, None).await.unwrap();
    assert_eq!(r.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(
        r.tool_calls,
        [ToolCall {
            id: "call_a".into(),
            name: "search".into(),
            arguments: "{\"q\":\"queue\"}".into()
        }]
    );
    assert_eq!(
        fake.seen()[0].body["tools"][0]["function"]["name"],
        "search"
    );

    // The conversation continues with the call and its result on the wire.
    let mut call = ChatMessage::assistant("");
    call.tool_calls = r.tool_calls.clone();
    req.messages.push(call);
    req.messages
        .push(ChatMessage::tool("call_a", "src/queue.rs:1-40"));
    let streamed = model.chat(&req, Some(&|_: &str| {})).await.unwrap();
    assert_eq!(
        streamed.tool_calls,
        [ToolCall {
            id: "call_b".into(),
            name: "read_file".into(),
            arguments: "{\"path\":\"src/lib.rs\"}".into()
        }]
    );
    assert!(streamed.usage.is_none(), "this stream reported no usage");
    let body = &fake.seen()[1].body;
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"q\":\"queue\"}"
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "content": "src/queue.rs:1-40", "tool_call_id": "call_a"})
    );
}

#[tokio::test]
async fn rate_limits_are_retried_after_the_time_the_provider_asks() {
    let fake = FakeOpenAi::start().await;
    fake.push([
        Reply::error(429, "Rate limit reached", vec![("retry-after", "1".into())]),
        Reply::error(
            429,
            "Rate limit reached",
            vec![("retry-after-ms", "50".into())],
        ),
        Reply::answer("done", 1, 1),
    ]);
    let model = OpenAiProvider::new(config(&fake)).unwrap().chat_model("m");
    let started = Instant::now();
    let r = model.chat(&ask("hi"), None).await.unwrap();
    assert_eq!(r.content, "done");
    assert_eq!(fake.seen().len(), 3);
    assert!(
        started.elapsed() >= Duration::from_millis(1_050),
        "waited {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_retry_after_longer_than_we_wait_fails_at_once() {
    let fake = FakeOpenAi::start().await;
    fake.push([Reply::error(
        429,
        "quota",
        vec![("retry-after", "3600".into())],
    )]);
    let model = OpenAiProvider::new(config(&fake)).unwrap().chat_model("m");
    let e = model.chat(&ask("hi"), None).await.unwrap_err();
    assert_eq!(code(&e), "provider_rate_limited");
    assert!(e.to_string().contains("retry after 3600 s"), "{e}");
    assert_eq!(fake.seen().len(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_and_then_reported_clearly() {
    let fake = FakeOpenAi::start().await;
    fake.push([
        Reply::error(500, "boom", vec![]),
        Reply::error(503, "overloaded", vec![]),
        Reply::answer("recovered", 1, 1),
    ]);
    let model = OpenAiProvider::new(config(&fake)).unwrap().chat_model("m");
    assert_eq!(
        model.chat(&ask("hi"), None).await.unwrap().content,
        "recovered"
    );
    assert_eq!(fake.seen().len(), 3);

    fake.push((0..4).map(|_| Reply::error(502, "bad gateway", vec![])));
    let e = model.chat(&ask("hi"), None).await.unwrap_err();
    assert_eq!(code(&e), "provider_unavailable");
    assert!(
        e.to_string().contains("failed 4 attempts")
            && e.to_string().contains("HTTP 502: bad gateway"),
        "{e}"
    );
    assert_eq!(fake.seen().len(), 7);
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_retried_then_reported() {
    let fake = FakeOpenAi::start().await;
    let slow = || {
        Reply::Delay(
            Duration::from_secs(3),
            Box::new(Reply::answer("late", 1, 1)),
        )
    };
    fake.push([slow(), slow()]);
    let cfg = ProviderConfig {
        timeout: Duration::from_millis(200),
        max_retries: 1,
        ..config(&fake)
    };
    let model = OpenAiProvider::new(cfg).unwrap().chat_model("m");
    let started = Instant::now();
    let e = model.chat(&ask("hi"), None).await.unwrap_err();
    assert_eq!(code(&e), "provider_unavailable");
    assert!(e.to_string().contains("no answer within 200 ms"), "{e}");
    assert_eq!(fake.seen().len(), 2);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_answers_and_auth_errors_are_clear_and_not_retried() {
    let fake = FakeOpenAi::start().await;
    fake.push([
        Reply::Raw {
            status: 200,
            headers: vec![],
            body: "{\"choices\": [".into(),
        },
        Reply::Sse(vec![
            "{\"choices\": [{\"delta\": {\"content\": \"ok\"}}]}".into(),
            "not json".into(),
        ]),
        Reply::error(401, "Incorrect API key provided", vec![]),
        Reply::json(200, json!({"model": "m", "choices": []})),
    ]);
    let model = OpenAiProvider::new(config(&fake)).unwrap().chat_model("m");
    let e = model.chat(&ask("hi"), None).await.unwrap_err();
    assert_eq!(code(&e), "provider_bad_response", "{e}");
    let e = model
        .chat(&ask("hi"), Some(&|_: &str| {}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "provider_bad_response", "{e}");
    assert!(e.to_string().contains("not json"), "{e}");
    let e = model.chat(&ask("hi"), None).await.unwrap_err();
    assert_eq!(code(&e), "provider_auth");
    assert!(e.to_string().contains("Incorrect API key provided"), "{e}");
    let e = model.chat(&ask("hi"), None).await.unwrap_err();
    assert!(e.to_string().contains("no choices"), "{e}");
    // A stream cut off before a finish reason is not an answer.
    fake.push([Reply::Sse(vec![
        "{\"choices\": [{\"delta\": {\"content\": \"half an ans\"}}]}".into(),
    ])]);
    let e = model
        .chat(&ask("hi"), Some(&|_: &str| {}))
        .await
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("ended before the answer was complete"),
        "{e}"
    );
    assert_eq!(fake.seen().len(), 5, "none of these is retried");
}

/// Two server errors in a row (the breaker's threshold in the test below).
async fn trip(fake: &FakeOpenAi, chat: &morningai_ai::OpenAiChat) {
    fake.push([
        Reply::error(500, "down", vec![]),
        Reply::error(500, "down", vec![]),
    ]);
    for _ in 0..2 {
        chat.chat(&ask("hi"), None).await.unwrap_err();
    }
}

async fn refused_by_breaker(chat: &morningai_ai::OpenAiChat) -> bool {
    chat.chat(&ask("hi"), None)
        .await
        .is_err_and(|e| e.to_string().contains("circuit breaker"))
}

#[tokio::test]
async fn the_circuit_breaker_fails_fast_while_the_provider_is_down_then_probes() {
    let fake = FakeOpenAi::start().await;
    let cfg = ProviderConfig {
        max_retries: 0,
        breaker_threshold: 2,
        breaker_cooldown: Duration::from_millis(1000),
        ..config(&fake)
    };
    let provider = OpenAiProvider::new(cfg).unwrap();
    let (chat, other) = (provider.chat_model("m"), provider.chat_model("other-model"));
    fake.push([
        Reply::error(500, "down", vec![]),
        Reply::error(500, "down", vec![]),
    ]);
    for _ in 0..2 {
        assert_eq!(
            code(&chat.chat(&ask("hi"), None).await.unwrap_err()),
            "provider_unavailable"
        );
    }
    // Open: no request leaves, for any model of this provider.
    let e = other.chat(&ask("hi"), None).await.unwrap_err();
    assert!(e.to_string().contains("circuit breaker"), "{e}");
    assert_eq!(fake.seen().len(), 2);
    // After the cooldown one probe goes through; a failed probe opens it again at once.
    tokio::time::sleep(Duration::from_millis(1050)).await;
    fake.push([Reply::error(500, "still down", vec![])]);
    chat.chat(&ask("hi"), None).await.unwrap_err();
    assert!(refused_by_breaker(&chat).await);
    assert_eq!(fake.seen().len(), 3);
    // A probe answered with a 4xx shows the provider is up: the breaker closes (it must not
    // stay half-open forever).
    tokio::time::sleep(Duration::from_millis(1050)).await;
    fake.push([
        Reply::error(400, "bad request", vec![]),
        Reply::answer("after 4xx", 1, 1),
    ]);
    assert_eq!(
        code(&chat.chat(&ask("hi"), None).await.unwrap_err()),
        "provider_rejected"
    );
    assert_eq!(
        chat.chat(&ask("hi"), None).await.unwrap().content,
        "after 4xx"
    );
    // A probe whose caller gives up (its future dropped) does not hold the breaker
    // half-open for good: after a cooldown another call probes.
    trip(&fake, &chat).await;
    tokio::time::sleep(Duration::from_millis(1050)).await;
    fake.push([Reply::Delay(
        Duration::from_secs(2),
        Box::new(Reply::answer("late", 1, 1)),
    )]);
    let abandoned =
        tokio::time::timeout(Duration::from_millis(50), chat.chat(&ask("hi"), None)).await;
    assert!(abandoned.is_err(), "the probe was dropped");
    assert!(refused_by_breaker(&chat).await);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    fake.push([Reply::answer("recovered", 1, 1)]);
    assert_eq!(
        chat.chat(&ask("hi"), None).await.unwrap().content,
        "recovered"
    );
    // Open it again, then a successful probe closes it.
    trip(&fake, &chat).await;
    assert!(refused_by_breaker(&chat).await);
    tokio::time::sleep(Duration::from_millis(1050)).await;
    fake.push([Reply::answer("up", 1, 1), Reply::answer("again", 1, 1)]);
    assert_eq!(chat.chat(&ask("hi"), None).await.unwrap().content, "up");
    assert_eq!(chat.chat(&ask("hi"), None).await.unwrap().content, "again");
}

#[tokio::test]
async fn embeddings_come_back_in_input_order_and_unit_length() {
    let fake = FakeOpenAi::start().await;
    fake.push([
        // Out of order on purpose: the client orders by `index`.
        Reply::json(
            200,
            json!({"object": "list", "model": "e", "data": [
            {"object": "embedding", "index": 1, "embedding": [0.0, 3.0, 4.0]},
            {"object": "embedding", "index": 0, "embedding": [2.0, 0.0, 0.0]}],
            "usage": {"prompt_tokens": 4, "total_tokens": 4}}),
        ),
        Reply::json(
            200,
            json!({"data": [{"index": 0, "embedding": [1.0, 2.0]}]}),
        ),
    ]);
    let provider = OpenAiProvider::new(config(&fake)).unwrap();
    let e = provider.embedder("text-embedding-3-small", 3, 8191);
    let v = e.embed(&["a".into(), "b".into()]).await.unwrap();
    assert_eq!(v, vec![vec![1.0, 0.0, 0.0], vec![0.0, 0.6, 0.8]]);
    let seen = fake.seen();
    assert_eq!(seen[0].path, "/v1/embeddings");
    assert_eq!(seen[0].body["input"], json!(["a", "b"]));
    assert_eq!(seen[0].body["dimensions"], 3);
    let err = e.embed(&["c".into()]).await.unwrap_err();
    assert!(err.to_string().contains("2-dimensional"), "{err}");
}

#[tokio::test]
async fn metered_calls_record_cost_from_usage_and_budgets_refuse_before_sending() {
    let fake = FakeOpenAi::start().await;
    let dir = std::env::temp_dir().join(format!(
        "morningai-metered-{}",
        morningai_core::TaskId::new()
    ));
    let store = morningai_sqlite::SqliteStore::open(dir.join("db.sqlite"))
        .await
        .unwrap();
    let (a, _) = morningai_conformance::two_tenants(Arc::new(store.clone())).await;
    let ledger: Arc<dyn UsageLedger> = Arc::new(store);
    let prices: PriceTable = serde_json::from_value(
        json!({"fake-model": {"input_per_mtok": 1.0, "output_per_mtok": 4.0}}),
    )
    .unwrap();
    let metered = |budget| Metered {
        inner: Arc::new(
            OpenAiProvider::new(config(&fake))
                .unwrap()
                .chat_model("fake-model"),
        ),
        ledger: ledger.clone(),
        cx: a,
        task: None,
        prices: Arc::new(prices.clone()),
        budget,
    };
    let budget = Budget {
        daily_tokens: Some(1_000),
        ..Budget::default()
    };
    fake.push([Reply::answer("first", 600, 300)]);
    metered(budget).chat(&ask("one"), None).await.unwrap();

    // 900 used; a call that may add 200 more would pass 1,000: refused, nothing sent.
    let req = ChatRequest {
        max_tokens: Some(200),
        ..ask("two")
    };
    let e = metered(budget).chat(&req, None).await.unwrap_err();
    assert_eq!(code(&e), "budget_exceeded");
    assert!(e.to_string().contains("daily token budget (1000)"), "{e}");
    assert!(e.to_string().contains("no request was sent"), "{e}");
    assert_eq!(fake.seen().len(), 1);

    // A money budget: $0.0018 spent (600 × $1/M + 300 × $4/M) against $0.001.
    let money = Budget {
        monthly_usd: Some(0.001),
        ..Budget::default()
    };
    assert_eq!(
        code(&metered(money).chat(&ask("three"), None).await.unwrap_err()),
        "budget_exceeded"
    );
    assert_eq!(fake.seen().len(), 1);

    let now = morningai_core::now();
    let rows = ledger
        .usage_report(
            a,
            now - chrono::Duration::hours(1),
            now + chrono::Duration::hours(1),
            UsageGroup::Model,
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (
            r.key.as_str(),
            r.calls,
            r.prompt_tokens,
            r.completion_tokens
        ),
        ("fake-model-2026-01-01", 1, 600, 300)
    );
    assert_eq!(
        r.cost_nanousd, 1_800_000,
        "priced by the longest matching name"
    );
    let _ = std::fs::remove_dir_all(dir);
}

/// Hosted providers are `https://`: the client opens a TLS connection (a ClientHello
/// reaches the server, with the provider's host name), and a server that is not TLS gives a
/// clear, retried-then-reported error.
#[tokio::test]
async fn https_providers_are_reached_over_tls() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hello = tokio::spawn(async move {
        // Nothing arrives when the client cannot speak TLS (it refuses the URL).
        let Ok(accepted) = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await
        else {
            return Vec::new();
        };
        let (mut socket, _) = accepted.unwrap();
        let mut first = vec![0u8; 512];
        let n = socket.read(&mut first).await.unwrap();
        first.truncate(n);
        first
    });
    let provider = OpenAiProvider::new(ProviderConfig {
        timeout: Duration::from_secs(2),
        max_retries: 0,
        ..ProviderConfig::new(
            format!("https://localhost:{port}/v1"),
            Some("sk-test".into()),
        )
    })
    .unwrap();
    let err = provider.models().await.unwrap_err();
    let first = hello.await.unwrap();
    // A TLS handshake record (0x16), version 3.x, carrying the host name (SNI).
    assert_eq!(
        &first[..2],
        &[0x16, 0x03],
        "not a TLS ClientHello: {first:?}"
    );
    assert!(
        first.windows(9).any(|w| w == b"localhost"),
        "no server name in the ClientHello"
    );
    assert!(err.to_string().contains("cannot reach"), "{err}");
}
