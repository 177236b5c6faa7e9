//! Runs of graphs as queued jobs (task kind `graph_run`), and the thread and run documents
//! they update. A worker killed mid-run leaves its checkpoints behind; the job runs again
//! elsewhere and continues from the last checkpoint instead of starting over.

use crate::langgraph::catalog::Catalog;
use async_trait::async_trait;
use morningai_core::checkpoint::{Checkpointer, Interrupt};
use morningai_core::objects::StoredObject;
use morningai_core::{Store, TenantCtx};
use morningai_graph::{GraphError, Resume, RunConfig, Runner, State};
use morningai_worker::{Handler, JobContext, JobError};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

pub const THREAD: &str = "thread";
pub const RUN: &str = "run";
pub const APPROVAL: &str = "approval";

pub fn doc(kind: &str, id: Uuid, parent: Option<Uuid>, status: &str, body: Value) -> StoredObject {
    let now = morningai_core::now();
    StoredObject {
        kind: kind.into(),
        id,
        parent,
        status: status.into(),
        body,
        created_at: now,
        updated_at: now,
    }
}

/// Writes a document, stamping `status` and `updated_at` into its body too.
pub async fn save(
    store: &dyn Store,
    cx: TenantCtx,
    mut o: StoredObject,
) -> morningai_core::Result<StoredObject> {
    o.updated_at = morningai_core::now();
    o.body["status"] = json!(o.status);
    o.body["updated_at"] = json!(o.updated_at);
    store.put_object(cx, &o).await?;
    Ok(o)
}

pub fn interrupts_json(interrupts: &[Interrupt]) -> Value {
    let mut by_task: serde_json::Map<String, Value> = serde_json::Map::new();
    for i in interrupts {
        let list = by_task
            .entry(i.task_id.clone())
            .or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            a.push(json!({"value": i.value, "id": i.id}));
        }
    }
    Value::Object(by_task)
}

/// The strings of a JSON array (empty for anything else).
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

#[derive(Clone)]
pub struct GraphRuns {
    pub store: Arc<dyn Store>,
    pub checkpointer: Arc<dyn Checkpointer>,
    pub catalog: Arc<Catalog>,
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::fatal(e.to_string())
}

fn retry(e: impl std::fmt::Display) -> JobError {
    JobError::retryable(e.to_string())
}

#[async_trait]
impl Handler for GraphRuns {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        let run_id: Uuid = ctx.input["run_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| fatal("graph_run needs run_id"))?;
        self.execute(&ctx, run_id).await
    }
}

impl GraphRuns {
    /// Runs (or resumes) the run `run_id` as the job `ctx`.
    pub async fn execute(&self, ctx: &JobContext, run_id: Uuid) -> Result<Value, JobError> {
        let cx = TenantCtx::new(ctx.tenant_id);
        let store = self.store.as_ref();
        let Some(mut run) = store.get_object(cx, RUN, run_id).await.map_err(retry)? else {
            return Err(fatal("the run no longer exists"));
        };
        if matches!(
            run.status.as_str(),
            "success" | "error" | "interrupted" | "timeout"
        ) {
            return Ok(json!({"run_id": run_id, "status": run.status}));
        }
        let thread_id = run.parent.ok_or_else(|| fatal("run without thread"))?;
        // One run at a time per thread, in order: wait while an older run of the thread is
        // still pending or running (multitask_strategy "enqueue").
        loop {
            let mut active = store
                .list_objects(cx, RUN, Some(thread_id), Some("running"), 100, 0)
                .await
                .map_err(retry)?;
            active.extend(
                store
                    .list_objects(cx, RUN, Some(thread_id), Some("pending"), 100, 0)
                    .await
                    .map_err(retry)?,
            );
            if !active.iter().any(|o| o.id < run_id) {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                _ = ctx.cancel.cancelled() => return Err(fatal("cancelled while waiting for the thread")),
            }
        }
        let graph_id = run.body["graph_id"].as_str().unwrap_or_default().to_owned();
        let entry = self
            .catalog
            .resolve(store, cx, &graph_id)
            .await
            .ok_or_else(|| fatal(format!("unknown graph {graph_id:?}")))?;
        run.status = "running".into();
        run = save(store, cx, run).await.map_err(retry)?;
        let mut thread = store
            .get_object(cx, THREAD, thread_id)
            .await
            .map_err(retry)?
            .ok_or_else(|| fatal("the thread no longer exists"))?;
        thread.status = "busy".into();
        thread = save(store, cx, thread).await.map_err(retry)?;

        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut runner =
            Runner::new(entry.graph.clone(), self.checkpointer.clone(), cx).with_events(tx);
        runner.cancel = ctx.cancel.clone();
        runner.metadata = json!({"run_id": run_id});
        let forward = {
            let ctx = ctx.clone();
            tokio::spawn(async move {
                while let Some(e) = rx.recv().await {
                    ctx.progress(json!({"mode": e.mode, "ns": e.ns, "data": e.data}))
                        .await;
                }
            })
        };
        let kwargs = run.body["kwargs"].clone();
        let mut config = RunConfig::new(thread_id.to_string());
        if let Some(limit) = kwargs["config"]["recursion_limit"].as_u64() {
            config.recursion_limit = limit as usize;
        }
        config.config = kwargs["config"]["configurable"].clone();
        // Trusted: the tenant and task come from the job, never from the caller's config.
        if !config.config.is_object() {
            config.config = json!({});
        }
        config.config["tenant_id"] = json!(cx.tenant_id);
        config.config["task_id"] = json!(ctx.task_id);
        // A tenant assistant's configuration, from the tenant's own store.
        config.config["assistant"] = match run.body["assistant_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
        {
            Some(aid) => match crate::assistants::get(store, cx, aid).await {
                Ok(a) => serde_json::to_value(a.config).unwrap_or_default(),
                Err(morningai_core::Error::NotFound(_)) => Value::Null,
                Err(e) => return Err(retry(e)),
            },
            None => Value::Null,
        };
        config.interrupt_before = strings(&kwargs["interrupt_before"]);
        config.interrupt_after = strings(&kwargs["interrupt_after"]);
        config.checkpoint_id = kwargs["checkpoint_id"]
            .as_str()
            .and_then(|s| s.parse().ok());
        // Resume after a crash when this run already wrote checkpoints; else start it.
        let latest = self
            .checkpointer
            .thread_checkpoints(cx, &config.thread_id)
            .await
            .map_err(retry)?;
        let already_started = latest
            .iter()
            .max_by_key(|c| c.id)
            .is_some_and(|c| c.metadata["run_id"] == json!(run_id));
        // As in LangGraph, a resume object keyed by pending interrupt ids answers them one by
        // one; any other value answers the single pending interrupt.
        let pending: Vec<String> = if kwargs["command"]["resume"].is_object() {
            let snap = morningai_graph::get_state(
                &entry.graph,
                &*self.checkpointer,
                cx,
                &config.thread_id,
                None,
            )
            .await
            .map_err(retry)?;
            snap.map(|s| s.interrupts.into_iter().map(|i| i.id).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let resume = match &kwargs["command"]["resume"] {
            Value::Null => None,
            Value::Object(m) if !m.is_empty() && m.keys().all(|k| pending.contains(k)) => {
                Some(Resume::ById(
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect::<HashMap<_, _>>(),
                ))
            }
            v => Some(Resume::Value(v.clone())),
        };
        let input: Option<State> = kwargs["input"].as_object().cloned();
        let outcome = if already_started {
            config.checkpoint_id = None;
            runner.run(None, None, &config).await
        } else if resume.is_some() {
            runner.run(None, resume, &config).await
        } else {
            runner
                .run(Some(input.unwrap_or_default()), None, &config)
                .await
        };
        drop(runner);
        let _ = forward.await;
        let (run_status, thread_status, result) = match &outcome {
            Ok(o) if !o.interrupts.is_empty() => ("interrupted", "interrupted", Ok(())),
            Ok(_) => ("success", "idle", Ok(())),
            Err(GraphError::Cancelled) => ("interrupted", "idle", Err(fatal("cancelled"))),
            Err(e) => ("error", "error", Err(fatal(e))),
        };
        let values = match &outcome {
            Ok(o) => Value::Object(o.state.clone()),
            Err(_) => thread.body["values"].clone(),
        };
        let interrupts = outcome
            .as_ref()
            .map(|o| o.interrupts.clone())
            .unwrap_or_default();
        thread.status = thread_status.into();
        thread.body["values"] = values;
        thread.body["interrupts"] = interrupts_json(&interrupts);
        save(store, cx, thread).await.map_err(retry)?;
        run.status = run_status.into();
        if let Err(e) = &outcome {
            run.body["error"] = json!(e.to_string());
        }
        let run = save(store, cx, run).await.map_err(retry)?;
        for i in &interrupts {
            let body = json!({
                "id": Uuid::now_v7(),
                "thread_id": thread_id,
                "run_id": run_id,
                "graph_id": graph_id,
                "assistant_id": entry.assistant_id,
                "interrupt_id": i.id,
                "value": i.value,
                "requested_by": run.body["created_by"],
                "created_at": morningai_core::now(),
                "expires_at": entry.approvals.expires_after.map(|d| morningai_core::now() + chrono::Duration::from_std(d).unwrap_or_default()),
            });
            let id = body["id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(Uuid::now_v7);
            save(
                store,
                cx,
                doc(APPROVAL, id, Some(thread_id), "pending", body),
            )
            .await
            .map_err(retry)?;
        }
        result.map(|()| json!({"run_id": run_id, "status": run_status}))
    }
}
