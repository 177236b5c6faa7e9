//! The agents: the documentation agent (`faq`) and the code generation agent (`codegen`),
//! each a graph run as a LangGraph run of its own, and what they share — their
//! dependencies, the trusted scope of a run, the assistant's configuration, retrieval over
//! the tenant's collections, and the task handler that starts an agent's run.

pub mod codegen;
pub mod faq;
pub mod render;

use crate::assistants::AssistantConfig;
use crate::documents::Documents;
use crate::graphs::catalog::{Catalog, Entry};
use crate::graphs::execute::{GraphRuns, fatal, retry};
use crate::graphs::records::{
    Metadata, MultitaskStrategy, Run, RunConfigRequest, RunRequest, RunStatus, Thread,
};
use crate::models::Models;
use morningai_agents::Retriever;
use morningai_core::memory::{ChunkHit, SearchMode, SearchScope};
use morningai_core::{CollectionId, Error, TaskId, TenantCtx, TenantId};
use morningai_graph::{Command, NodeContext, NodeError};
use morningai_worker::{Handler, JobContext, JobError};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The assistant configuration of the run: trusted, read from the tenant's store by the
/// run handler (never from the caller's input); the defaults without one.
pub(crate) fn assistant_of(ctx: &NodeContext) -> AssistantConfig {
    serde_json::from_value(ctx.config["assistant"].clone()).unwrap_or_default()
}

/// An agent's system prompt with the assistant's addition.
pub(crate) fn system_prompt(base: &str, cfg: &AssistantConfig) -> String {
    match cfg
        .system_prompt
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        Some(extra) => format!("{base}\n\n{extra}"),
        None => base.to_owned(),
    }
}

/// Whether the run needs a person's approval (asked for, or required by the assistant).
pub(crate) fn needs_approval(ctx: &NodeContext) -> bool {
    ctx.state["require_approval"] == json!(true) || assistant_of(ctx).require_approval
}

/// What the agent's nodes use.
pub struct AgentDeps {
    pub retriever: Arc<Retriever>,
    pub documents: Arc<Documents>,
    pub models: Arc<Models>,
}

pub(crate) fn fail(e: impl std::fmt::Display) -> NodeError {
    NodeError::fatal(e.to_string())
}

pub(crate) fn update(pairs: Vec<(&str, Value)>) -> Command {
    Command::update(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
    )
}

/// The tenant and task of the run, from the trusted part of its configuration (the run
/// handler sets them; a caller's configuration cannot).
pub(crate) fn scope(ctx: &NodeContext) -> Result<(TenantCtx, Option<TaskId>), NodeError> {
    let tenant: TenantId = ctx.config["tenant_id"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| fail("the run has no tenant"))?;
    let task = ctx.config["task_id"].as_str().and_then(|s| s.parse().ok());
    Ok((TenantCtx::new(tenant), task))
}

/// The strings of a JSON array (empty for anything else).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The built-in graphs with the agents among them.
pub fn catalog(deps: Arc<AgentDeps>, config: &crate::config::Config) -> Catalog {
    let mut catalog = Catalog::default();
    catalog.add(
        "faq",
        Entry {
            graph: Arc::new(faq::graph(deps.clone())),
            description: "Documentation agent: answers a question about the tenant's indexed sources with a cited, versioned document.",
            approvals: crate::members_decide(),
        },
    );
    catalog.add(
        "codegen",
        Entry {
            graph: Arc::new(codegen::graph(deps, config.index_roots.clone())),
            description: "Code generation agent: a unified diff against the indexed tree that applies cleanly and parses, with a plan and an explanation.",
            approvals: crate::members_decide(),
        },
    );
    catalog
}

/// Passages retrieved for a document.
const K: usize = 8;

impl AgentDeps {
    /// The run's chat model — the assistant's model name on the tenant's provider, metered
    /// for the run's task — or None when no model is configured.
    pub(crate) async fn model(
        &self,
        ctx: &NodeContext,
    ) -> Result<Option<Arc<dyn morningai_core::ai::ChatModel>>, NodeError> {
        let (cx, task) = scope(ctx)?;
        self.models
            .chat_as(cx, task, assistant_of(ctx).model.as_deref())
            .await
            .map_err(fail)
    }

    /// Passages for `query` from the assistant's collections, else the input's collection,
    /// else every collection but the published documents; and the names of the collections
    /// they came from.
    pub(crate) async fn sources(
        &self,
        cx: TenantCtx,
        query: &str,
        cfg: &AssistantConfig,
        input_collection: Option<CollectionId>,
    ) -> Result<(Vec<ChunkHit>, String), Error> {
        let k = cfg.k.unwrap_or(K);
        let mode = cfg.mode.unwrap_or(SearchMode::Hybrid);
        let names: BTreeMap<CollectionId, String> = self
            .retriever
            .memory()
            .list_collections(cx)
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        let chosen: Vec<Option<CollectionId>> = if !cfg.collections.is_empty() {
            cfg.collections.iter().copied().map(Some).collect()
        } else {
            vec![input_collection]
        };
        let mut lists = Vec::new();
        for c in &chosen {
            if let Some(id) = c
                && !names.contains_key(id)
            {
                return Err(Error::NotFound("collection"));
            }
            let scope = SearchScope {
                collection: *c,
                k: if c.is_some() { k } else { k * 2 },
                ..Default::default()
            };
            let found = self.retriever.search(cx, query, mode, scope).await?;
            // Published documents are answers, not sources.
            lists.push(
                found
                    .hits
                    .into_iter()
                    .filter(|h| {
                        !names
                            .get(&h.collection_id)
                            .is_some_and(|n| n.starts_with("documents-"))
                    })
                    .collect::<Vec<_>>(),
            );
        }
        let hits = if lists.len() == 1 {
            lists
                .pop()
                .unwrap_or_default()
                .into_iter()
                .take(k)
                .collect()
        } else {
            morningai_agents::fuse(&lists, k)
        };
        let searched: BTreeSet<&str> = hits
            .iter()
            .filter_map(|h: &ChunkHit| names.get(&h.collection_id).map(String::as_str))
            .chain(
                chosen
                    .iter()
                    .flatten()
                    .filter_map(|c| names.get(c).map(String::as_str)),
            )
            .collect();
        Ok((hits, searched.into_iter().collect::<Vec<_>>().join(", ")))
    }
}

/// The input fields the agents share: `project_id` (required) and `collection_id` as
/// UUIDs, `regenerate` and `require_approval` as booleans.
pub fn check_ids(input: &Value, kind: &str) -> Result<(), String> {
    let uuid = |field: &str, required: bool| match input.get(field) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::String(s)) if s.parse::<uuid::Uuid>().is_ok() => Ok(()),
        _ => Err(format!("{kind} needs {field} as a UUID")),
    };
    uuid("project_id", true)?;
    uuid("collection_id", false)?;
    uuid("assistant_id", false)?;
    for flag in ["regenerate", "require_approval"] {
        if !matches!(input.get(flag), None | Some(Value::Null | Value::Bool(_))) {
            return Err(format!("{flag} must be true or false"));
        }
    }
    Ok(())
}

/// Task kinds `faq` and `codegen`: an agent's graph as a LangGraph run of its own (the
/// thread and run ids are the task's id), so its state, history and approvals are the
/// LangGraph API's; a re-delivered job continues from the run's last checkpoint. The
/// result is the run's final values.
pub struct AgentTask {
    pub runs: GraphRuns,
    pub graph: &'static str,
}

/// What an agent task's result keeps of its run's final values.
const RESULT_KEYS: [&str; 8] = [
    "status",
    "document",
    "metadata",
    "diff",
    "plan",
    "explanation",
    "files",
    "model",
];

impl AgentTask {
    /// The assistant configuring the run: the task's (it must configure this graph), else
    /// the graph's built-in one.
    async fn assistant(&self, cx: TenantCtx, input: &Value) -> Result<uuid::Uuid, JobError> {
        let Some(aid) = input["assistant_id"].as_str().and_then(|s| s.parse().ok()) else {
            return Ok(crate::graphs::catalog::assistant_id(self.graph));
        };
        let a = crate::assistants::get(&*self.runs.store, cx, aid)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => fatal("the assistant does not exist"),
                e => retry(e),
            })?;
        if a.graph_id != self.graph {
            return Err(fatal(format!(
                "assistant {aid} configures {}, not {}",
                a.graph_id, self.graph
            )));
        }
        Ok(aid)
    }

    /// The thread and run of the task (both with the task's id), unless a first attempt
    /// already wrote them.
    async fn open_run(&self, ctx: &JobContext, cx: TenantCtx) -> Result<(), JobError> {
        let store = &*self.runs.store;
        let id = ctx.task_id.0;
        if crate::graphs::get::<Run>(store, cx, id)
            .await
            .map_err(retry)?
            .is_some()
        {
            return Ok(());
        }
        let mut input = ctx.input.clone();
        input["task_id"] = json!(ctx.task_id);
        input["trace_id"] = json!(ctx.trace_id);
        let assistant = self.assistant(cx, &ctx.input).await?;
        let mut meta = Metadata::new();
        meta.insert("graph_id".into(), json!(self.graph));
        meta.insert("assistant_id".into(), json!(assistant));
        meta.insert("task_id".into(), json!(ctx.task_id));
        let mut thread = Thread::new(id, meta);
        crate::graphs::put(store, cx, &mut thread)
            .await
            .map_err(retry)?;
        let now = morningai_core::now();
        let mut run = Run {
            run_id: id,
            thread_id: id,
            assistant_id: assistant,
            graph_id: self.graph.to_owned(),
            created_at: now,
            updated_at: now,
            status: RunStatus::Pending,
            metadata: Metadata::new(),
            kwargs: RunRequest {
                assistant_id: assistant.to_string(),
                input: Some(input),
                config: Some(RunConfigRequest::default()),
                ..RunRequest::default()
            },
            multitask_strategy: MultitaskStrategy::Reject,
            task_id: ctx.task_id,
            created_by: ctx.created_by,
            error: None,
            answers: None,
        };
        crate::graphs::put(store, cx, &mut run).await.map_err(retry)
    }
}

#[async_trait::async_trait]
impl Handler for AgentTask {
    async fn run(&self, ctx: JobContext) -> Result<Value, JobError> {
        let cx = TenantCtx::new(ctx.tenant_id);
        self.open_run(&ctx, cx).await?;
        let id = ctx.task_id.0;
        let out = self.runs.execute(&ctx, id).await?;
        let thread = crate::graphs::get::<Thread>(&*self.runs.store, cx, id)
            .await
            .map_err(retry)?
            .ok_or_else(|| fatal("the run's thread is gone"))?;
        let mut result = json!({
            "thread_id": id,
            "run_id": id,
            "run_status": out["status"],
            "interrupts": thread.interrupts,
        });
        if let Some(nodes) = out.get("waiting_on") {
            result["waiting_on"] = nodes.clone();
        }
        for key in RESULT_KEYS {
            if let Some(v) = thread.values.get(key) {
                result[key] = v.clone();
            }
        }
        Ok(result)
    }
}
