//! Task events as Server-Sent Events: `GET /tasks/{id}/events` and `GET /events` (the
//! whole tenant). Every frame has an `id:`; reconnecting with `Last-Event-ID` resumes after
//! it. The application's tail (`morningai_app::events::Tail`) delivers each stored event
//! exactly once, whatever order the database committed them in.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, Problem};
use crate::extract::Path;
use crate::state::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use morningai_app::events::Tail;
use morningai_core::events::TaskEvent;
use morningai_core::{TaskId, TenantCtx};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;

pub(crate) fn last_event_id(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    headers
        .get("last-event-id")
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request(
                        "invalid_last_event_id",
                        "Last-Event-ID must be an event id from this stream",
                    )
                })
        })
        .transpose()
}

fn frame(e: &TaskEvent) -> Event {
    Event::default()
        .id(e.id.to_string())
        .event(e.kind.as_str())
        .json_data(e)
        .unwrap_or_else(|_| Event::default().comment("unencodable event"))
}

/// The frames `rx` delivers as an SSE response, with heartbeats, until the sender is done or
/// the server shuts down (a client reconnects elsewhere with `Last-Event-ID`).
pub(crate) fn sse(
    state: &AppState,
    rx: mpsc::Receiver<Event>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + use<>> {
    let closing = state.closing.clone();
    let stream = futures_util::stream::unfold((rx, closing), |(mut rx, closing)| async move {
        let next = tokio::select! {
            e = rx.recv() => e,
            () = closing.cancelled() => None,
        };
        next.map(|e| (Ok(e), (rx, closing)))
    });
    Sse::new(stream).keep_alive(
        KeepAlive::new()
            .interval(Duration::from_secs(state.config.sse_heartbeat_secs.max(1)))
            .text("heartbeat"),
    )
}

/// Streams events of the tenant (optionally one task) after `after`, until the client leaves.
/// `announce` first sends a frame with only `id: after` (no data, so no event is dispatched):
/// a client that connected without `Last-Event-ID` and sees no event before the connection
/// drops still knows where to resume, and loses nothing in between.
fn spawn_stream(
    state: AppState,
    cx: TenantCtx,
    task: Option<TaskId>,
    after: i64,
    announce: bool,
) -> mpsc::Receiver<Event> {
    let (tx, rx) = mpsc::channel(256);
    if announce {
        // The channel is new and empty: this cannot fail.
        let _ = tx.try_send(Event::default().id(after.to_string()));
    }
    let mut tail = Tail::new(
        state.store.clone(),
        state.tasks.bus.subscribe(),
        cx,
        task,
        after,
    );
    tokio::spawn(async move {
        loop {
            let batch = tokio::select! {
                b = tail.next() => b,
                _ = tx.closed() => return,
            };
            match batch {
                None => return,
                Some(Ok(events)) => {
                    for e in &events {
                        if tx.send(frame(e)).await.is_err() {
                            return;
                        }
                    }
                }
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "reading task events for a stream failed")
                }
            }
        }
    });
    rx
}

/// The events of one task, from the start (or after `Last-Event-ID`), then live.
#[utoipa::path(get, path = "/api/v1/tasks/{id}/events", tag = "tasks", params(("id" = String, Path, format = Uuid),
        ("Last-Event-ID" = Option<i64>, Header, description = "resume after this event id")),
    responses((status = 200, description = "text/event-stream of TaskEvent frames (event = kind, id = event id)", content_type = "text/event-stream"),
              (status = 404, body = Problem)), security(("bearer" = [])))]
pub async fn task_events(
    State(state): State<AppState>,
    who: Caller,
    Path(id): Path<TaskId>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let after = last_event_id(&headers)?.unwrap_or(0);
    state.store.task(who.cx(), id).await?;
    let rx = spawn_stream(state.clone(), who.cx(), Some(id), after, false);
    Ok(sse(&state, rx))
}

/// Every task event of the caller's tenant from now on (or after `Last-Event-ID`). Without
/// `Last-Event-ID` the first frame is `id: <latest event id>` alone, the position to resume
/// from.
#[utoipa::path(get, path = "/api/v1/events", tag = "tasks",
    params(("Last-Event-ID" = Option<i64>, Header, description = "resume after this event id")),
    responses((status = 200, description = "text/event-stream of TaskEvent frames", content_type = "text/event-stream")),
    security(("bearer" = [])))]
pub async fn tenant_events(
    State(state): State<AppState>,
    who: Caller,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let (after, announce) = match last_event_id(&headers)? {
        Some(id) => (id, false),
        None => (state.store.last_task_event_id(who.cx()).await?, true),
    };
    let rx = spawn_stream(state.clone(), who.cx(), None, after, announce);
    Ok(sse(&state, rx))
}
