//! A local server that speaks the OpenAI HTTP protocol (`/v1/chat/completions`, with SSE
//! streaming, and `/v1/embeddings`) from a script, for tests of the production clients: each
//! request takes the next scripted reply and is recorded (path, headers, JSON body). Any
//! JSON API can be scripted the same way: the chat-platform tests use it as Slack,
//! Telegram, LINE and Messenger, the webhook tests as a subscriber's endpoint.

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Response, StatusCode, Uri};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One scripted reply.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A status, extra headers and a body sent as is.
    Raw {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// `text/event-stream`: each item becomes `data: <item>\n\n`.
    Sse(Vec<String>),
    /// Wait this long before replying with the next scripted reply (a slow provider).
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Self::Raw {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// An OpenAI error body with the given status and headers.
    pub fn error(status: u16, message: &str, headers: Vec<(&'static str, String)>) -> Self {
        Self::Raw {
            status,
            headers,
            body: json!({"error": {"message": message, "type": "server_error"}}).to_string(),
        }
    }

    /// A complete chat answer with usage.
    pub fn answer(content: &str, prompt_tokens: u64, completion_tokens: u64) -> Self {
        Self::json(
            200,
            json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "fake-model-2026-01-01",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens},
            }),
        )
    }

    /// A streamed chat answer: the pieces as deltas, then a usage chunk and `[DONE]`.
    pub fn streamed(pieces: &[&str], prompt_tokens: u64, completion_tokens: u64) -> Self {
        let chunk = |delta: Value, finish: Value| {
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model-2026-01-01",
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
            .to_string()
        };
        let mut events = vec![chunk(
            json!({"role": "assistant", "content": ""}),
            Value::Null,
        )];
        events.extend(
            pieces
                .iter()
                .map(|p| chunk(json!({"content": p}), Value::Null)),
        );
        events.push(chunk(json!({}), json!("stop")));
        events.push(
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "fake-model-2026-01-01",
                   "choices": [], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": prompt_tokens + completion_tokens}})
            .to_string(),
        );
        events.push("[DONE]".into());
        Self::Sse(events)
    }
}

/// What the server received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
    /// The body's bytes as sent (what a signature covers).
    pub raw: String,
}

#[derive(Default)]
struct Script {
    replies: Mutex<VecDeque<Reply>>,
    seen: Mutex<Vec<Seen>>,
}

/// The running server; it stops when dropped.
pub struct FakeOpenAi {
    pub addr: SocketAddr,
    script: Arc<Script>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeOpenAi {
    pub async fn start() -> Self {
        let script = Arc::new(Script::default());
        let app = Router::new()
            .fallback(axum::routing::any(handle))
            .with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake OpenAI server");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, script, task }
    }

    /// The base URL clients are configured with (`http://127.0.0.1:PORT/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Appends replies to the script.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.script
            .replies
            .lock()
            .expect("script lock")
            .extend(replies);
    }

    /// Every request so far, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.script.seen.lock().expect("seen lock").clone()
    }

    /// Replies not yet taken.
    pub fn pending(&self) -> usize {
        self.script.replies.lock().expect("script lock").len()
    }
}

async fn handle(
    State(script): State<Arc<Script>>,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response<Body> {
    script.seen.lock().expect("seen lock").push(Seen {
        path: uri.path().to_owned(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: String::from_utf8_lossy(&body).into_owned(),
    });
    let next = script.replies.lock().expect("script lock").pop_front();
    let mut reply =
        next.unwrap_or_else(|| Reply::error(500, "the fake's script is exhausted", vec![]));
    while let Reply::Delay(d, then) = reply {
        tokio::time::sleep(d).await;
        reply = *then;
    }
    let build = |status: u16, content_type: &str, body: String| {
        Response::builder()
            .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("valid response")
    };
    match reply {
        Reply::Raw {
            status,
            headers,
            body,
        } => {
            let mut res = build(status, "application/json", body);
            for (name, value) in headers {
                res.headers_mut()
                    .insert(name, value.parse().expect("header value"));
            }
            res
        }
        Reply::Sse(events) => build(
            200,
            "text/event-stream",
            events.iter().map(|e| format!("data: {e}\n\n")).collect(),
        ),
        Reply::Delay(..) => unreachable!("delays are unwrapped above"),
    }
}
