//! LangGraph runs over HTTP: create, list, get, cancel, join, wait, and streams of a run's
//! events in the shapes the official `langgraph-sdk` clients parse. A stream is the run's
//! task events, followed with the application's one tail (so a `Last-Event-ID` reconnect
//! resumes exactly where it left off).

use crate::auth::Caller;
use crate::error::{ApiResult, Problem};
use crate::extract::{Json, Path};
use crate::routes::events::{last_event_id, sse};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use morningai_app::events::Tail;
use morningai_app::graphs::records::{Run, RunRequest, StreamMode, StreamModes};
use morningai_core::TenantCtx;
use morningai_core::events::{TaskEvent, TaskEventKind};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use uuid::Uuid;

/// `Content-Location` names the run; `Location` (for streams) where to re-attach.
fn run_headers(res: &mut Response, thread_id: Uuid, run_id: Uuid, stream: bool) {
    let base = format!("/threads/{thread_id}/runs/{run_id}");
    if let Ok(v) = HeaderValue::from_str(&base) {
        res.headers_mut().insert("content-location", v);
    }
    if stream && let Ok(v) = HeaderValue::from_str(&format!("{base}/stream")) {
        res.headers_mut().insert("location", v);
    }
}

/// Creates a run and queues it.
#[utoipa::path(post, path = "/threads/{id}/runs", tag = "langgraph", params(("id" = Uuid, Path)), request_body = RunRequest,
    responses((status = 200, body = Run), (status = 404, body = Problem), (status = 409, body = Problem, description = "thread_busy (multitask_strategy reject) or approval_pending"),
              (status = 422, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn create(
    State(state): State<AppState>,
    who: Caller,
    Path(tid): Path<Uuid>,
    Json(req): Json<RunRequest>,
) -> ApiResult<Response> {
    let run = state.graphs.create_run(&who, tid, req).await?;
    let rid = run.run_id;
    let mut res = axum::Json(run).into_response();
    run_headers(&mut res, tid, rid, false);
    Ok(res)
}

/// The thread's runs, newest first.
#[utoipa::path(get, path = "/threads/{id}/runs", tag = "langgraph", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Run>), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn list(
    State(state): State<AppState>,
    who: Caller,
    Path(tid): Path<Uuid>,
) -> ApiResult<axum::Json<Vec<Run>>> {
    Ok(axum::Json(state.graphs.runs(who.cx(), tid).await?))
}

#[utoipa::path(get, path = "/threads/{id}/runs/{run}", tag = "langgraph", params(("id" = Uuid, Path), ("run" = Uuid, Path)),
    responses((status = 200, body = Run), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn get(
    State(state): State<AppState>,
    who: Caller,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
) -> ApiResult<axum::Json<Run>> {
    Ok(axum::Json(state.graphs.run(who.cx(), tid, rid).await?))
}

/// Stops the run (its task is cancelled; an unfinished run becomes `interrupted`).
#[utoipa::path(post, path = "/threads/{id}/runs/{run}/cancel", tag = "langgraph", params(("id" = Uuid, Path), ("run" = Uuid, Path)),
    responses((status = 202), (status = 404, body = Problem)), security(("bearer" = []), ("api_key" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    who: Caller,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    state.graphs.cancel_run(&who, tid, rid).await?;
    Ok(StatusCode::ACCEPTED)
}

/// Waits for the run and answers its final values (`{"__error__": …}` when it failed).
#[utoipa::path(get, path = "/threads/{id}/runs/{run}/join", tag = "langgraph", params(("id" = Uuid, Path), ("run" = Uuid, Path)),
    responses((status = 200, description = "the thread's values after the run", body = Object), (status = 404, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn join(
    State(state): State<AppState>,
    who: Caller,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
) -> ApiResult<axum::Json<Value>> {
    state.graphs.run(who.cx(), tid, rid).await?;
    let done = state.graphs.wait(who.cx(), rid).await?;
    Ok(axum::Json(
        state.graphs.final_values(who.cx(), &done).await?,
    ))
}

async fn wait_on(
    state: &AppState,
    who: &Caller,
    tid: Uuid,
    req: RunRequest,
) -> ApiResult<Response> {
    let run = state.graphs.create_run(who, tid, req).await?;
    let done = state.graphs.wait(who.cx(), run.run_id).await?;
    let mut res = axum::Json(state.graphs.final_values(who.cx(), &done).await?).into_response();
    run_headers(&mut res, tid, run.run_id, false);
    Ok(res)
}

/// Creates a run and answers its final values when it has finished.
#[utoipa::path(post, path = "/threads/{id}/runs/wait", tag = "langgraph", params(("id" = Uuid, Path)), request_body = RunRequest,
    responses((status = 200, description = "the thread's values after the run", body = Object), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn wait(
    State(state): State<AppState>,
    who: Caller,
    Path(tid): Path<Uuid>,
    Json(req): Json<RunRequest>,
) -> ApiResult<Response> {
    wait_on(&state, &who, tid, req).await
}

/// As `/threads/{id}/runs/wait`, on a fresh thread of its own.
#[utoipa::path(post, path = "/runs/wait", tag = "langgraph", request_body = RunRequest,
    responses((status = 200, description = "the values after the run", body = Object), (status = 404, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn wait_stateless(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<RunRequest>,
) -> ApiResult<Response> {
    let thread = state.graphs.stateless_thread(&who).await?;
    wait_on(&state, &who, thread.thread_id, req).await
}

const STREAM_DOC: &str = "text/event-stream: `metadata` ({run_id, attempt}) first, then one frame per engine event in the requested modes \
(`values`: the state; `updates`: {node: writes}; `messages`: {node, content} token deltas; `messages-tuple`: event `messages` with \
[{type: AIMessageChunk, content}, {langgraph_node}]; `custom`: what nodes emitted), named `mode|namespace` for subgraphs; \
`error` ({error, message}) when the run failed. Every frame after `metadata` has an `id:` for Last-Event-ID.";

async fn stream_on(
    state: AppState,
    who: Caller,
    tid: Uuid,
    req: RunRequest,
) -> ApiResult<Response> {
    let run = state.graphs.create_run(&who, tid, req).await?;
    let rid = run.run_id;
    let mut res = stream(state, who.cx(), run, 0);
    run_headers(&mut res, tid, rid, true);
    Ok(res)
}

/// Creates a run and streams its events.
#[utoipa::path(post, path = "/threads/{id}/runs/stream", tag = "langgraph", params(("id" = Uuid, Path)), request_body = RunRequest,
    responses((status = 200, description = STREAM_DOC, content_type = "text/event-stream"), (status = 404, body = Problem), (status = 409, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn stream_thread(
    State(state): State<AppState>,
    who: Caller,
    Path(tid): Path<Uuid>,
    Json(req): Json<RunRequest>,
) -> ApiResult<Response> {
    stream_on(state, who, tid, req).await
}

/// As `/threads/{id}/runs/stream`, on a fresh thread of its own.
#[utoipa::path(post, path = "/runs/stream", tag = "langgraph", request_body = RunRequest,
    responses((status = 200, description = STREAM_DOC, content_type = "text/event-stream"), (status = 404, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn stream_stateless(
    State(state): State<AppState>,
    who: Caller,
    Json(req): Json<RunRequest>,
) -> ApiResult<Response> {
    let thread = state.graphs.stateless_thread(&who).await?;
    stream_on(state, who, thread.thread_id, req).await
}

/// Re-attaches to a run's stream; `Last-Event-ID` resumes after that event.
#[utoipa::path(get, path = "/threads/{id}/runs/{run}/stream", tag = "langgraph", params(("id" = Uuid, Path), ("run" = Uuid, Path),
        ("Last-Event-ID" = Option<i64>, Header, description = "resume after this event id")),
    responses((status = 200, description = STREAM_DOC, content_type = "text/event-stream"), (status = 400, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = []), ("api_key" = [])))]
pub async fn join_stream(
    State(state): State<AppState>,
    who: Caller,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let after = last_event_id(&headers)?.unwrap_or(0);
    let run = state.graphs.run(who.cx(), tid, rid).await?;
    Ok(stream(state, who.cx(), run, after))
}

/// What a task event of a run becomes on its stream.
enum Frame {
    Send(Event),
    Skip,
    /// The run finished.
    End,
    /// The run failed.
    Failed,
}

/// Token deltas in LangGraph's `messages-tuple` shape: the chunk and its metadata.
fn message_tuple(data: &Value, run_id: Uuid) -> Value {
    json!([
        {"type": "AIMessageChunk", "content": data["content"], "id": format!("run-{run_id}")},
        {"langgraph_node": data["node"], "run_id": run_id},
    ])
}

fn frame(e: &TaskEvent, modes: &[StreamMode], subgraphs: bool, run_id: Uuid) -> Frame {
    match e.kind {
        TaskEventKind::Progress => {}
        TaskEventKind::Succeeded | TaskEventKind::Cancelled => return Frame::End,
        TaskEventKind::Failed => return Frame::Failed,
        _ => return Frame::Skip,
    }
    let engine_mode = e.data["mode"].as_str().unwrap_or_default();
    let Some(mode) = modes.iter().find(|m| m.engine_mode() == engine_mode) else {
        return Frame::Skip;
    };
    let ns: Vec<&str> = e.data["ns"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !ns.is_empty() && !subgraphs {
        return Frame::Skip;
    }
    let (name, data) = match mode {
        StreamMode::MessagesTuple => ("messages", message_tuple(&e.data["data"], run_id)),
        _ => (engine_mode, e.data["data"].clone()),
    };
    let name = if ns.is_empty() {
        name.to_owned()
    } else {
        format!("{name}|{}", ns.join("|"))
    };
    Frame::Send(
        Event::default()
            .id(e.id.to_string())
            .event(name)
            .json_data(&data)
            .unwrap_or_default(),
    )
}

/// SSE of a run: `metadata` first (unless resuming), the requested modes, then `error` if
/// it failed.
fn stream(state: AppState, cx: TenantCtx, run: Run, after: i64) -> Response {
    let (tx, rx) = mpsc::channel::<Event>(256);
    let modes = StreamModes::list(run.kwargs.stream_mode.as_ref());
    let subgraphs = run.kwargs.stream_subgraphs == Some(true);
    let mut tail = Tail::new(
        state.store.clone(),
        state.tasks.bus.subscribe(),
        cx,
        Some(run.task_id),
        after,
    );
    let response_state = state.clone();
    tokio::spawn(async move {
        if after == 0 {
            let meta = Event::default()
                .event("metadata")
                .json_data(json!({"run_id": run.run_id, "attempt": 1}))
                .unwrap_or_default();
            if tx.send(meta).await.is_err() {
                return;
            }
        }
        loop {
            let batch = tokio::select! {
                b = tail.next() => b,
                _ = tx.closed() => return,
            };
            let events = match batch {
                None => return,
                Some(Ok(events)) => events,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading a run's events failed");
                    continue;
                }
            };
            for e in &events {
                match frame(e, &modes, subgraphs, run.run_id) {
                    Frame::Send(f) => {
                        if tx.send(f).await.is_err() {
                            return;
                        }
                    }
                    Frame::Skip => {}
                    Frame::End => return,
                    Frame::Failed => {
                        let message = match state.graphs.run(cx, run.thread_id, run.run_id).await {
                            Ok(r) => json!(r.error),
                            Err(_) => e.data["error"].clone(),
                        };
                        let error = Event::default()
                            .event("error")
                            .json_data(json!({"error": "GraphError", "message": message}))
                            .unwrap_or_default();
                        let _ = tx.send(error).await;
                        return;
                    }
                }
            }
        }
    });
    sse(&response_state, rx).into_response()
}
