//! The LangGraph Server API surface the official `langgraph-sdk` client calls: assistants,
//! threads (state, history), runs (create, list, get, cancel, join, stream, wait) and the
//! stateless `/runs/stream` and `/runs/wait`. Auth is the platform's (x-api-key or bearer);
//! everything is tenant-scoped.

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json as Body, Path};
use crate::langgraph::catalog::assistant_id;
use crate::langgraph::runs::{RUN, THREAD, doc, save};
use crate::state::AppState;
use axum::Json;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::Event;
use axum::response::{IntoResponse, Response};
use morningai_core::entities::NewTask;
use morningai_core::events::TaskEventKind;
use morningai_core::objects::StoredObject;
use morningai_core::{Priority, Role, TaskId, TenantCtx};
use morningai_graph::{StateSnapshot, get_state, history, update_state};
use serde_json::{Value, json};
use std::time::Duration;
use uuid::Uuid;

fn assistant_json(graph_id: &str, description: &str) -> Value {
    json!({
        "assistant_id": assistant_id(graph_id),
        "graph_id": graph_id,
        "config": {},
        "context": {},
        "metadata": {"created_by": "system"},
        "version": 1,
        "name": graph_id,
        "description": description,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    })
}

pub async fn search_assistants(
    AxState(state): AxState<AppState>,
    who: Principal,
) -> ApiResult<Json<Value>> {
    let mut out: Vec<Value> = state
        .catalog
        .all()
        .map(|(id, e)| assistant_json(id, e.description))
        .collect();
    let uploaded = state
        .store
        .list_objects(
            who.cx(),
            crate::langgraph::catalog::TENANT_GRAPH,
            None,
            None,
            1000,
            0,
        )
        .await?;
    out.extend(uploaded.into_iter().map(|d| d.body));
    out.extend(
        crate::assistants::list(&*state.store, who.cx())
            .await?
            .iter()
            .map(crate::assistants::Assistant::langgraph_json),
    );
    Ok(Json(Value::Array(out)))
}

/// `POST /assistants`: a tenant assistant of an agent graph, configured by
/// `config.configurable` (admin+).
pub async fn create_assistant(
    AxState(state): AxState<AppState>,
    who: Principal,
    Body(req): Body<Value>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Admin)?;
    let graph_id = req["graph_id"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("graph_id", "required"))?;
    let config: crate::assistants::AssistantConfig = match &req["config"]["configurable"] {
        Value::Null => Default::default(),
        v => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::invalid("config.configurable", e.to_string()))?,
    };
    let a = crate::assistants::create(
        &*state.store,
        who.cx(),
        graph_id,
        req["name"].as_str().unwrap_or(graph_id),
        req["description"].as_str().map(str::to_owned),
        config,
        req["metadata"].clone(),
    )
    .await?;
    Ok(Json(a.langgraph_json()))
}

pub async fn get_assistant(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    let r = state
        .catalog
        .resolve(&*state.store, who.cx(), &id)
        .await
        .ok_or_else(|| ApiError::not_found("assistant"))?;
    if let Ok(a) = crate::assistants::get(&*state.store, who.cx(), r.assistant_id).await {
        return Ok(Json(a.langgraph_json()));
    }
    let mut a = assistant_json(&r.graph_id, &r.description);
    a["assistant_id"] = json!(r.assistant_id);
    Ok(Json(a))
}

fn uuid_of(field: &str, v: &Value) -> ApiResult<Option<Uuid>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(field, "must be a UUID")),
        _ => Err(ApiError::invalid(field, "must be a UUID string")),
    }
}

async fn thread(state: &AppState, cx: TenantCtx, id: Uuid) -> ApiResult<StoredObject> {
    state
        .store
        .get_object(cx, THREAD, id)
        .await?
        .ok_or_else(|| ApiError::not_found("thread"))
}

pub async fn create_thread(
    AxState(state): AxState<AppState>,
    who: Principal,
    Body(req): Body<Value>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Member)?;
    let id = uuid_of("thread_id", &req["thread_id"])?.unwrap_or_else(Uuid::now_v7);
    if let Some(existing) = state.store.get_object(who.cx(), THREAD, id).await? {
        if req["if_exists"] == "do_nothing" {
            return Ok(Json(existing.body));
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "thread_exists",
            "a thread with this id exists",
        ));
    }
    let now = morningai_core::now();
    let body = json!({"thread_id": id, "created_at": now, "updated_at": now, "metadata": req["metadata"].as_object().cloned().unwrap_or_default(), "status": "idle", "values": {}, "interrupts": {}});
    Ok(Json(
        save(&*state.store, who.cx(), doc(THREAD, id, None, "idle", body))
            .await?
            .body,
    ))
}

pub async fn get_thread(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    Ok(Json(thread(&state, who.cx(), id).await?.body))
}

pub async fn patch_thread(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
    Body(req): Body<Value>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Member)?;
    let mut t = thread(&state, who.cx(), id).await?;
    if let (Some(meta), Some(new)) = (
        t.body["metadata"].as_object_mut(),
        req["metadata"].as_object(),
    ) {
        meta.extend(new.clone());
    }
    Ok(Json(save(&*state.store, who.cx(), t).await?.body))
}

pub async fn delete_thread(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<StatusCode> {
    who.require(Role::Member)?;
    thread(&state, who.cx(), id).await?;
    state
        .checkpointer
        .delete_thread(who.cx(), &id.to_string())
        .await?;
    for r in state
        .store
        .list_objects(who.cx(), RUN, Some(id), None, 10_000, 0)
        .await?
    {
        state.store.delete_object(who.cx(), RUN, r.id).await?;
    }
    state.store.delete_object(who.cx(), THREAD, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn search_threads(
    AxState(state): AxState<AppState>,
    who: Principal,
    Body(req): Body<Value>,
) -> ApiResult<Json<Value>> {
    let limit = req["limit"].as_u64().unwrap_or(10).min(1000) as u32;
    let offset = req["offset"].as_u64().unwrap_or(0) as u32;
    let status = req["status"].as_str();
    let all = state
        .store
        .list_objects(who.cx(), THREAD, None, status, 10_000, 0)
        .await?;
    let wanted = req["metadata"].as_object().cloned().unwrap_or_default();
    let hits: Vec<Value> = all
        .into_iter()
        .filter(|t| {
            wanted
                .iter()
                .all(|(k, v)| t.body["metadata"].get(k) == Some(v))
        })
        .skip(offset as usize)
        .take(limit as usize)
        .map(|t| t.body)
        .collect();
    Ok(Json(Value::Array(hits)))
}

async fn graph_of(
    state: &AppState,
    cx: TenantCtx,
    thread: &StoredObject,
) -> Option<std::sync::Arc<morningai_graph::Graph>> {
    let gid = thread.body["metadata"]["graph_id"].as_str()?;
    state
        .catalog
        .resolve(&*state.store, cx, gid)
        .await
        .map(|r| r.graph)
}

fn state_json(thread_id: Uuid, s: &StateSnapshot) -> Value {
    let c = &s.checkpoint;
    let tasks: Vec<Value> = s
        .next
        .iter()
        .map(|t| {
            let intr: Vec<Value> = s.interrupts.iter().filter(|i| i.task_id == t.id).map(|i| json!({"value": i.value, "id": i.id})).collect();
            json!({"id": t.id, "name": t.node, "error": null, "interrupts": intr, "checkpoint": null, "state": null, "result": null})
        })
        .collect();
    json!({
        "values": s.values,
        "next": s.next.iter().map(|t| t.node.clone()).collect::<Vec<_>>(),
        "tasks": tasks,
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": c.id, "checkpoint_map": null},
        "metadata": c.metadata,
        "created_at": c.created_at,
        "parent_checkpoint": c.parent_id.map(|p| json!({"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": p, "checkpoint_map": null})),
        "interrupts": s.interrupts.iter().map(|i| json!({"value": i.value, "id": i.id})).collect::<Vec<_>>(),
    })
}

fn empty_state() -> Value {
    json!({"values": {}, "next": [], "tasks": [], "checkpoint": null, "metadata": {}, "created_at": null, "parent_checkpoint": null, "interrupts": []})
}

async fn thread_state(
    state: &AppState,
    who: &Principal,
    id: Uuid,
    checkpoint: Option<Uuid>,
) -> ApiResult<Value> {
    let t = thread(state, who.cx(), id).await?;
    let Some(graph) = graph_of(state, who.cx(), &t).await else {
        return Ok(empty_state());
    };
    let snap = get_state(
        &graph,
        state.checkpointer.as_ref(),
        who.cx(),
        &id.to_string(),
        checkpoint,
    )
    .await
    .map_err(|e| ApiError::internal("read thread state", e))?;
    Ok(snap.map_or_else(empty_state, |s| state_json(id, &s)))
}

pub async fn get_thread_state(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    Ok(Json(thread_state(&state, &who, id, None).await?))
}

pub async fn get_thread_state_at(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path((id, cp)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(thread_state(&state, &who, id, Some(cp)).await?))
}

pub async fn update_thread_state(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
    Body(req): Body<Value>,
) -> ApiResult<Json<Value>> {
    who.require(Role::Member)?;
    let t = thread(&state, who.cx(), id).await?;
    guard_agent_approval(&state, who.cx(), &t).await?;
    let graph = graph_of(&state, who.cx(), &t)
        .await
        .ok_or_else(|| ApiError::invalid("thread_id", "the thread has not run a graph yet"))?;
    let values = req["values"].as_object().cloned().unwrap_or_default();
    let checkpoint = uuid_of("checkpoint_id", &req["checkpoint_id"])?.or(uuid_of(
        "checkpoint_id",
        &req["checkpoint"]["checkpoint_id"],
    )?);
    let cp = update_state(
        &graph,
        state.checkpointer.as_ref(),
        who.cx(),
        &id.to_string(),
        values,
        req["as_node"].as_str(),
        checkpoint,
    )
    .await
    .map_err(|e| ApiError::invalid("values", e.to_string()))?;
    Ok(Json(
        json!({"checkpoint": {"thread_id": id, "checkpoint_ns": "", "checkpoint_id": cp, "checkpoint_map": null}}),
    ))
}

pub async fn thread_history(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(id): Path<Uuid>,
    body: Option<axum::Json<Value>>,
) -> ApiResult<Json<Value>> {
    let req = body.map(|b| b.0).unwrap_or(Value::Null);
    let limit = req["limit"].as_u64().unwrap_or(10).min(1000) as usize;
    let t = thread(&state, who.cx(), id).await?;
    let Some(graph) = graph_of(&state, who.cx(), &t).await else {
        return Ok(Json(json!([])));
    };
    let h = history(
        &graph,
        state.checkpointer.as_ref(),
        who.cx(),
        &id.to_string(),
        limit,
    )
    .await
    .map_err(|e| ApiError::internal("read history", e))?;
    Ok(Json(Value::Array(
        h.iter().map(|s| state_json(id, s)).collect(),
    )))
}

// ---- runs -------------------------------------------------------------------------------

/// Creates a run on `thread_id` and queues its job. Applies `multitask_strategy`.
/// The agents' interrupts are approvals: while one is pending, the thread is resumed and
/// its state changed only through `/api/v1/approvals` (which applies the approver rules).
async fn guard_agent_approval(state: &AppState, cx: TenantCtx, t: &StoredObject) -> ApiResult<()> {
    let graph = t.body["metadata"]["graph_id"].as_str().unwrap_or_default();
    if !crate::assistants::AGENT_GRAPHS.contains(&graph) {
        return Ok(());
    }
    let pending = state
        .store
        .list_objects(
            cx,
            crate::langgraph::runs::APPROVAL,
            Some(t.id),
            Some("pending"),
            1,
            0,
        )
        .await?;
    if pending.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        "approval_pending",
        format!(
            "this {graph} run waits for approval {}: approve or reject it through /api/v1/approvals",
            pending[0].id
        ),
    ))
}

async fn create_run(
    state: &AppState,
    who: &Principal,
    thread_id: Uuid,
    req: &Value,
    via_approval: bool,
) -> ApiResult<StoredObject> {
    who.require(Role::Member)?;
    let cx = who.cx();
    let mut t = thread(state, cx, thread_id).await?;
    if !via_approval {
        guard_agent_approval(state, cx, &t).await?;
    }
    let assistant = req["assistant_id"]
        .as_str()
        .ok_or_else(|| ApiError::invalid("assistant_id", "required"))?;
    let resolved = state
        .catalog
        .resolve(&*state.store, cx, assistant)
        .await
        .ok_or_else(|| ApiError::not_found("assistant"))?;
    let graph_id = resolved.graph_id.as_str();
    let strategy = req["multitask_strategy"].as_str().unwrap_or("enqueue");
    if !["reject", "interrupt", "rollback", "enqueue"].contains(&strategy) {
        return Err(ApiError::invalid(
            "multitask_strategy",
            "reject, interrupt, rollback or enqueue",
        ));
    }
    let mut active = state
        .store
        .list_objects(cx, RUN, Some(thread_id), Some("pending"), 100, 0)
        .await?;
    active.extend(
        state
            .store
            .list_objects(cx, RUN, Some(thread_id), Some("running"), 100, 0)
            .await?,
    );
    if !active.is_empty() {
        match strategy {
            "reject" => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "thread_busy",
                    "the thread has a run in progress (multitask_strategy=reject)",
                ));
            }
            "interrupt" | "rollback" => {
                for r in active {
                    cancel_run_job(state, cx, &r).await?;
                    if strategy == "rollback" {
                        state.store.delete_object(cx, RUN, r.id).await?;
                    } else {
                        save(
                            &*state.store,
                            cx,
                            StoredObject {
                                status: "interrupted".into(),
                                ..r
                            },
                        )
                        .await?;
                    }
                }
            }
            _ => {}
        }
    }
    if t.body["metadata"]["graph_id"].is_null() {
        t.body["metadata"]["graph_id"] = json!(graph_id);
        t.body["metadata"]["assistant_id"] = json!(resolved.assistant_id);
        save(&*state.store, cx, t).await?;
    }
    let run_id = Uuid::now_v7();
    let task_id = TaskId::new();
    let now = morningai_core::now();
    let kwargs = json!({
        "input": req["input"], "command": req["command"], "config": req["config"], "stream_mode": req["stream_mode"],
        "stream_subgraphs": req["stream_subgraphs"], "interrupt_before": req["interrupt_before"],
        "interrupt_after": req["interrupt_after"], "checkpoint_id": req["checkpoint_id"],
    });
    let body = json!({
        "run_id": run_id, "thread_id": thread_id, "assistant_id": resolved.assistant_id, "graph_id": graph_id,
        "created_at": now, "updated_at": now, "status": "pending", "metadata": req["metadata"].as_object().cloned().unwrap_or_default(),
        "kwargs": kwargs, "multitask_strategy": strategy, "task_id": task_id, "created_by": who.user_id,
    });
    let run = save(
        &*state.store,
        cx,
        doc(RUN, run_id, Some(thread_id), "pending", body),
    )
    .await?;
    let task = NewTask {
        id: task_id,
        kind: "graph_run".into(),
        priority: Priority::default(),
        project_id: None,
        trace_id: crate::trace::current_trace_id(),
        input: json!({"run_id": run_id}),
        idempotency_key: None,
        created_by: Some(who.user_id),
    };
    state.tasks.submit(cx, task).await?;
    Ok(run)
}

async fn cancel_run_job(state: &AppState, cx: TenantCtx, run: &StoredObject) -> ApiResult<()> {
    if let Some(task) = run.body["task_id"]
        .as_str()
        .and_then(|s| s.parse::<TaskId>().ok())
    {
        match state.tasks.cancel(cx, task).await {
            Ok(_) | Err(morningai_core::Error::Conflict { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn run_headers(res: &mut Response, thread_id: Uuid, run_id: Uuid, stream: bool) {
    let base = format!("/threads/{thread_id}/runs/{run_id}");
    if let Ok(v) = HeaderValue::from_str(&base) {
        res.headers_mut().insert("content-location", v);
    }
    if stream && let Ok(v) = HeaderValue::from_str(&format!("{base}/stream")) {
        res.headers_mut().insert("location", v);
    }
}

pub async fn create_thread_run(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(tid): Path<Uuid>,
    Body(req): Body<Value>,
) -> ApiResult<Response> {
    let run = create_run(&state, &who, tid, &req, false).await?;
    let mut res = Json(run.body).into_response();
    run_headers(&mut res, tid, run.id, false);
    Ok(res)
}

pub async fn list_runs(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(tid): Path<Uuid>,
) -> ApiResult<Json<Value>> {
    thread(&state, who.cx(), tid).await?;
    let runs = state
        .store
        .list_objects(who.cx(), RUN, Some(tid), None, 100, 0)
        .await?;
    Ok(Json(Value::Array(
        runs.into_iter().map(|r| r.body).collect(),
    )))
}

async fn run_of(state: &AppState, cx: TenantCtx, tid: Uuid, rid: Uuid) -> ApiResult<StoredObject> {
    let r = state
        .store
        .get_object(cx, RUN, rid)
        .await?
        .ok_or_else(|| ApiError::not_found("run"))?;
    if r.parent != Some(tid) {
        return Err(ApiError::not_found("run"));
    }
    Ok(r)
}

pub async fn get_run(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(run_of(&state, who.cx(), tid, rid).await?.body))
}

pub async fn cancel_run(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
) -> ApiResult<StatusCode> {
    who.require(Role::Member)?;
    let run = run_of(&state, who.cx(), tid, rid).await?;
    cancel_run_job(&state, who.cx(), &run).await?;
    if matches!(run.status.as_str(), "pending" | "running") {
        save(
            &*state.store,
            who.cx(),
            StoredObject {
                status: "interrupted".into(),
                ..run
            },
        )
        .await?;
    }
    Ok(StatusCode::ACCEPTED)
}

const TERMINAL: [&str; 4] = ["success", "error", "interrupted", "timeout"];

async fn wait_done(state: &AppState, cx: TenantCtx, rid: Uuid) -> ApiResult<StoredObject> {
    let start = std::time::Instant::now();
    loop {
        let r = state
            .store
            .get_object(cx, RUN, rid)
            .await?
            .ok_or_else(|| ApiError::not_found("run"))?;
        if TERMINAL.contains(&r.status.as_str()) {
            return Ok(r);
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "run_timeout",
                "the run did not finish within 10 minutes",
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn final_values(state: &AppState, cx: TenantCtx, run: &StoredObject) -> ApiResult<Value> {
    if run.status == "error" {
        return Ok(json!({"__error__": {"error": "GraphError", "message": run.body["error"]}}));
    }
    let t = thread(state, cx, run.parent.unwrap_or_default()).await?;
    Ok(t.body["values"].clone())
}

pub async fn join_run(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
) -> ApiResult<Json<Value>> {
    run_of(&state, who.cx(), tid, rid).await?;
    let run = wait_done(&state, who.cx(), rid).await?;
    Ok(Json(final_values(&state, who.cx(), &run).await?))
}

pub async fn wait_thread_run(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(tid): Path<Uuid>,
    Body(req): Body<Value>,
) -> ApiResult<Response> {
    let run = create_run(&state, &who, tid, &req, false).await?;
    let done = wait_done(&state, who.cx(), run.id).await?;
    let mut res = Json(final_values(&state, who.cx(), &done).await?).into_response();
    run_headers(&mut res, tid, run.id, false);
    Ok(res)
}

/// Stateless runs get a fresh thread of their own.
async fn stateless_thread(state: &AppState, who: &Principal) -> ApiResult<Uuid> {
    who.require(Role::Member)?;
    let id = Uuid::now_v7();
    let now = morningai_core::now();
    let body = json!({"thread_id": id, "created_at": now, "updated_at": now, "metadata": {"stateless": true}, "status": "idle", "values": {}, "interrupts": {}});
    save(&*state.store, who.cx(), doc(THREAD, id, None, "idle", body)).await?;
    Ok(id)
}

pub async fn wait_stateless(
    AxState(state): AxState<AppState>,
    who: Principal,
    Body(req): Body<Value>,
) -> ApiResult<Response> {
    let tid = stateless_thread(&state, &who).await?;
    wait_thread_run(AxState(state), who, Path(tid), Body(req)).await
}

fn modes(req: &Value) -> Vec<String> {
    match &req["stream_mode"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => vec!["values".to_owned()],
    }
}

/// SSE of a run: `metadata` first, then the requested modes, then `error` if it failed.
fn stream_run(
    state: AppState,
    cx: TenantCtx,
    run: StoredObject,
    modes: Vec<String>,
    subgraphs: bool,
    after: i64,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(256);
    let task = run.body["task_id"]
        .as_str()
        .and_then(|s| s.parse::<TaskId>().ok());
    let run_id = run.id;
    let heartbeat = state.config.sse_heartbeat_secs;
    let mut bus = state.tasks.bus.subscribe();
    tokio::spawn(async move {
        if after == 0
            && tx
                .send(
                    Event::default()
                        .event("metadata")
                        .json_data(json!({"run_id": run_id, "attempt": 1}))
                        .unwrap_or_default(),
                )
                .await
                .is_err()
        {
            return;
        }
        let Some(task) = task else { return };
        let mut last = after;
        loop {
            let events = state
                .store
                .task_events(cx, Some(task), last, 500)
                .await
                .unwrap_or_default();
            for e in &events {
                last = e.id;
                match e.kind {
                    TaskEventKind::Progress => {
                        let mode = e.data["mode"].as_str().unwrap_or_default();
                        if !modes
                            .iter()
                            .any(|m| m == mode || (m == "messages" && mode == "messages"))
                        {
                            continue;
                        }
                        let ns: Vec<&str> = e.data["ns"]
                            .as_array()
                            .map(|a| a.iter().filter_map(Value::as_str).collect())
                            .unwrap_or_default();
                        if !ns.is_empty() && !subgraphs {
                            continue;
                        }
                        let name = if ns.is_empty() {
                            mode.to_owned()
                        } else {
                            format!("{mode}|{}", ns.join("|"))
                        };
                        let frame = Event::default()
                            .id(e.id.to_string())
                            .event(name)
                            .json_data(&e.data["data"])
                            .unwrap_or_default();
                        if tx.send(frame).await.is_err() {
                            return;
                        }
                    }
                    TaskEventKind::Succeeded | TaskEventKind::Cancelled => return,
                    TaskEventKind::Failed => {
                        let run = state.store.get_object(cx, RUN, run_id).await.ok().flatten();
                        let message = run
                            .map(|r| r.body["error"].clone())
                            .unwrap_or(e.data["error"].clone());
                        let _ = tx
                            .send(
                                Event::default()
                                    .event("error")
                                    .json_data(json!({"error": "GraphError", "message": message}))
                                    .unwrap_or_default(),
                            )
                            .await;
                        return;
                    }
                    _ => {}
                }
            }
            if events.len() == 500 {
                continue;
            }
            if !crate::routes::events::wake(&mut bus, cx, Some(task), &tx).await {
                return;
            }
        }
    });
    crate::routes::events::sse(heartbeat, rx).into_response()
}

pub async fn stream_thread_run(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path(tid): Path<Uuid>,
    Body(req): Body<Value>,
) -> ApiResult<Response> {
    let run = create_run(&state, &who, tid, &req, false).await?;
    let rid = run.id;
    let mut res = stream_run(
        state,
        who.cx(),
        run,
        modes(&req),
        req["stream_subgraphs"] == true,
        0,
    );
    run_headers(&mut res, tid, rid, true);
    Ok(res)
}

pub async fn stream_stateless(
    AxState(state): AxState<AppState>,
    who: Principal,
    Body(req): Body<Value>,
) -> ApiResult<Response> {
    let tid = stateless_thread(&state, &who).await?;
    stream_thread_run(AxState(state), who, Path(tid), Body(req)).await
}

/// Re-attach to a run's stream (`Last-Event-ID` resumes after that event).
pub async fn join_stream(
    AxState(state): AxState<AppState>,
    who: Principal,
    Path((tid, rid)): Path<(Uuid, Uuid)>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let run = run_of(&state, who.cx(), tid, rid).await?;
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let modes = modes(&run.body["kwargs"]);
    let sub = run.body["kwargs"]["stream_subgraphs"] == true;
    Ok(stream_run(state, who.cx(), run, modes, sub, after))
}

/// Used by approvals: resumes a thread's pending interrupt as a new run.
pub async fn resume_thread(
    state: &AppState,
    who: &Principal,
    thread_id: Uuid,
    graph_id: &str,
    interrupt_id: &str,
    answer: Value,
) -> ApiResult<StoredObject> {
    let req = json!({"assistant_id": graph_id, "command": {"resume": {interrupt_id: answer}}});
    create_run(state, who, thread_id, &req, true).await
}
