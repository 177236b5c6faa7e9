//! The OpenAI-compatible surface at `/v1`: the tenant's answering assistants as models,
//! chat completions (streamed or not) answered from the tenant's memory with citations, and
//! embeddings from the deployment's local model. Authentication is the API's (an API key as
//! `Authorization: Bearer`, which is what OpenAI clients send); errors leave in OpenAI's
//! shape (`{"error": {message, type, param, code}}`), validation errors as 400.
//!
//! These routes are not in `/api/v1/openapi.json`: their contract is OpenAI's.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::Json;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use futures_util::StreamExt;
use morningai_agents::answer::GeneratedBy;
use morningai_app::chat::Reply;
use morningai_app::trace::{current_trace_id, with_trace_id};
use morningai_core::Error;
use morningai_core::ai::TokenUsage;
use serde::Deserialize;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages one request may carry, and their total length in characters.
const MAX_MESSAGES: usize = 256;
const MAX_CONVERSATION_CHARS: usize = 200_000;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/models", get(models))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
}

/// Under `/v1/`, rewrites the API's problem documents (the edge's refusals included: it is
/// the outermost layer) into OpenAI's error shape; 422 becomes 400.
pub async fn openai_errors(req: Request, next: Next) -> Response {
    let ours = req.uri().path().starts_with("/v1/");
    let res = next.run(req).await;
    if !ours {
        return res;
    }
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !is_problem {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let problem: Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let status = match parts.status {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        s => s,
    };
    let kind = match status.as_u16() {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "insufficient_quota",
        s if s >= 500 => "server_error",
        _ => "invalid_request_error",
    };
    let body = json!({"error": {
        "message": problem["detail"],
        "type": kind,
        "param": problem["errors"][0]["field"],
        "code": problem["code"],
        "trace_id": problem["trace_id"],
    }});
    parts.status = status;
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body.to_string()))
}

/// Unknown models are OpenAI's `model_not_found`.
fn model_error(model: &str) -> impl FnOnce(Error) -> ApiError + '_ {
    move |e| match e {
        Error::NotFound("model") => ApiError::new(
            StatusCode::NOT_FOUND,
            "model_not_found",
            format!("the model `{model}` does not exist or you do not have access to it"),
        ),
        e => e.into(),
    }
}

async fn models(State(state): State<AppState>, who: Caller) -> ApiResult<axum::Json<Value>> {
    let mut data: Vec<Value> = state
        .chat_assistants(&who)
        .await?
        .into_iter()
        .map(|a| {
            json!({"id": a.id, "object": "model", "created": a.created_at.timestamp(),
                   "owned_by": "morningai", "name": a.name})
        })
        .collect();
    if let Some((name, dims)) = state.embedding_model() {
        data.push(json!({"id": name, "object": "model", "created": 0,
                         "owned_by": "morningai", "dimensions": dims}));
    }
    Ok(axum::Json(json!({"object": "list", "data": data})))
}

#[derive(Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default)]
    pub stream: bool,
    pub stream_options: Option<StreamOptions>,
}

#[derive(Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

#[derive(Deserialize)]
pub struct Message {
    pub role: String,
    #[serde(default)]
    pub content: Option<Content>,
}

/// A message's content: text, or parts of which the text ones are read.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
pub struct Part {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub text: Option<String>,
}

impl Content {
    fn text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter(|p| p.kind == "text")
                .filter_map(|p| p.text.as_deref())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// The question: the last user message, after the conversation's bounds are checked.
fn question(messages: &[Message]) -> ApiResult<String> {
    if messages.is_empty() || messages.len() > MAX_MESSAGES {
        return Err(ApiError::invalid(
            "messages",
            format!("give 1 to {MAX_MESSAGES} messages"),
        ));
    }
    let total: usize = messages
        .iter()
        .filter_map(|m| m.content.as_ref())
        .map(|c| c.text().chars().count())
        .sum();
    if total > MAX_CONVERSATION_CHARS {
        return Err(ApiError::invalid(
            "messages",
            format!("the conversation is longer than {MAX_CONVERSATION_CHARS} characters"),
        ));
    }
    messages
        .iter()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.as_ref())
        .map(Content::text)
        .ok_or_else(|| ApiError::invalid("messages", "there is no user message to answer"))
}

/// Who wrote the answer, as `system_fingerprint` says it.
fn fingerprint(by: &GeneratedBy) -> &'static str {
    match by {
        GeneratedBy::Extractive => "morningai-extractive",
        GeneratedBy::Model { .. } => "morningai-model",
    }
}

fn usage(by: &GeneratedBy) -> Value {
    let u = match by {
        GeneratedBy::Model { usage: Some(u), .. } => *u,
        _ => TokenUsage::default(),
    };
    json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens,
           "total_tokens": u.total()})
}

/// The `morningai` extension: how the answer was made and what it rests on.
fn extension(r: &Reply) -> Value {
    let (generated_by, model) = match &r.answer.generated_by {
        GeneratedBy::Extractive => ("extractive", Value::Null),
        GeneratedBy::Model { model, .. } => ("model", json!(model)),
    };
    json!({
        "generated_by": generated_by,
        "model": model,
        "citations": r.answer.citations.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "sources": r.hits.iter().map(|h| json!({"citation": h.citation, "score": h.chunk.score})).collect::<Vec<_>>(),
        "searched": r.searched,
        "cost_usd": r.cost_usd,
        "trace_id": current_trace_id(),
    })
}

fn completion_id() -> String {
    format!("chatcmpl-{}", uuid::Uuid::now_v7().simple())
}

async fn chat_completions(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<ChatCompletionRequest>,
) -> ApiResult<Response> {
    let q = question(&req.messages)?;
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        return stream_completion(state, who, req.model, q, include_usage).await;
    }
    let r = state
        .reply(&who, &req.model, &q, None)
        .await
        .map_err(model_error(&req.model))?;
    let by = &r.answer.generated_by;
    Ok(axum::Json(json!({
        "id": completion_id(),
        "object": "chat.completion",
        "created": chrono::Utc::now().timestamp(),
        "model": r.assistant,
        "system_fingerprint": fingerprint(by),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": r.answer.text},
                     "finish_reason": "stop", "logprobs": null}],
        "usage": usage(by),
        "morningai": extension(&r),
    }))
    .into_response())
}

/// What the answering task sends the stream: text as a chat model writes it, then the reply.
enum Piece {
    Delta(String),
    Done(morningai_core::Result<Reply>),
}

/// A streamed completion. The first piece is awaited before the response starts, so a
/// refusal (unknown model, budget) is still an HTTP error; later failures arrive as an
/// `error` chunk.
async fn stream_completion(
    state: AppState,
    who: Caller,
    model: String,
    q: String,
    include_usage: bool,
) -> ApiResult<Response> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let app = state.app.clone();
    let asked = model.clone();
    // Spawned work keeps the request's trace id.
    let trace = current_trace_id();
    tokio::spawn(with_trace_id(trace.clone(), async move {
        let sink = |d: &str| {
            let _ = tx.send(Piece::Delta(d.to_owned()));
        };
        let r = app.reply(&who, &asked, &q, Some(&sink)).await;
        let _ = tx.send(Piece::Done(r));
    }));
    let first = match rx.recv().await {
        Some(Piece::Done(Err(e))) => return Err(model_error(&model)(e)),
        Some(p) => p,
        None => return Err(ApiError::internal("chat completion", "the answer was lost")),
    };
    let (id, created) = (completion_id(), chrono::Utc::now().timestamp());
    let chunk = move |fp: &str, delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "system_fingerprint": fp, "choices": [{"index": 0, "delta": delta,
               "finish_reason": finish, "logprobs": null}]})
    };
    let (frames_tx, frames_rx) = mpsc::channel::<Value>(64);
    tokio::spawn(with_trace_id(trace, async move {
        let mut next = Some(first);
        let mut streamed = false;
        loop {
            let piece = match next.take() {
                Some(p) => p,
                None => match rx.recv().await {
                    Some(p) => p,
                    None => return,
                },
            };
            let frames = match piece {
                Piece::Delta(d) => {
                    let mut out = Vec::new();
                    if !streamed {
                        out.push(chunk(
                            "morningai-model",
                            json!({"role": "assistant", "content": ""}),
                            Value::Null,
                        ));
                        streamed = true;
                    }
                    out.push(chunk("morningai-model", json!({"content": d}), Value::Null));
                    out
                }
                Piece::Done(Ok(r)) => {
                    let fp = fingerprint(&r.answer.generated_by);
                    let mut out = Vec::new();
                    if !streamed {
                        out.push(chunk(
                            fp,
                            json!({"role": "assistant", "content": ""}),
                            Value::Null,
                        ));
                        // An extractive answer is whole at once: sent a paragraph at a time.
                        out.extend(
                            r.answer
                                .text
                                .split_inclusive("\n\n")
                                .map(|p| chunk(fp, json!({"content": p}), Value::Null)),
                        );
                    }
                    let mut last = chunk(fp, json!({}), json!("stop"));
                    last["morningai"] = extension(&r);
                    out.push(last);
                    if include_usage {
                        let mut u = chunk(fp, json!({}), Value::Null);
                        u["choices"] = json!([]);
                        u["usage"] = usage(&r.answer.generated_by);
                        out.push(u);
                    }
                    out
                }
                Piece::Done(Err(e)) => {
                    let e = ApiError::from(e);
                    vec![
                        json!({"error": {"message": e.detail, "type": "server_error", "code": e.code}}),
                    ]
                }
            };
            for f in frames {
                if frames_tx.send(f).await.is_err() {
                    return;
                }
            }
        }
    }));
    let events = tokio_stream_of(frames_rx)
        .map(|v| Ok::<_, Infallible>(Event::default().data(v.to_string())))
        .chain(futures_util::stream::once(async {
            Ok(Event::default().data("[DONE]"))
        }));
    let heartbeat = Duration::from_secs(state.config.sse_heartbeat_secs.max(1));
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(heartbeat))
        .into_response())
}

/// A receiver as a stream.
fn tokio_stream_of<T: Send + 'static>(
    mut rx: mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

#[derive(Deserialize)]
pub struct EmbeddingRequest {
    pub model: String,
    pub input: EmbeddingInput,
    pub encoding_format: Option<String>,
    pub dimensions: Option<u32>,
}

/// One text or a list of texts (token arrays are not taken: our tokenizer is not OpenAI's).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    One(String),
    Many(Vec<String>),
}

async fn embeddings(
    State(state): State<AppState>,
    _who: Caller,
    Json(req): Json<EmbeddingRequest>,
) -> ApiResult<axum::Json<Value>> {
    let texts = match req.input {
        EmbeddingInput::One(t) => vec![t],
        EmbeddingInput::Many(ts) => ts,
    };
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::invalid(
                "encoding_format",
                "must be float or base64",
            ));
        }
    };
    let embedded = state
        .embed_texts(&req.model, &texts)
        .await
        .map_err(model_error(&req.model))?;
    if let Some(d) = req.dimensions
        && embedded
            .vectors
            .first()
            .is_some_and(|v| v.len() != d as usize)
    {
        return Err(ApiError::invalid(
            "dimensions",
            format!(
                "{} has {} dimensions only",
                req.model,
                embedded.vectors[0].len()
            ),
        ));
    }
    let data: Vec<Value> = embedded
        .vectors
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(v)
            };
            json!({"object": "embedding", "index": i, "embedding": embedding})
        })
        .collect();
    Ok(axum::Json(json!({
        "object": "list",
        "data": data,
        "model": req.model,
        "usage": {"prompt_tokens": embedded.tokens, "total_tokens": embedded.tokens},
    })))
}
